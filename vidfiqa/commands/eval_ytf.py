"""`vidfiqa eval ytf`: YouTube Faces template verification with quality-, random- and first-k frames.

Reads per-frame quality and embeddings written by `vidfiqa rescore`, builds one template per video
from k of its frames and scores the protocol pairs whose two videos are present (with a face).
A copy on disk usually holds part of YTF only, so the report says first how many protocol pairs
could be evaluated and why the rest could not.  The metric lives in :mod:`vidfiqa.eval.setverify`.
"""

from __future__ import annotations

import click

from .common import make_console
from ..errors import ConfigError


def parse_ks(values: tuple[str, ...]) -> tuple[int | None, ...]:
    """--k values: positive integers or 'all' (None); default 1, 3, 5, all."""
    if not values:
        return (1, 3, 5, None)
    ks: list[int | None] = []
    for value in values:
        if value.strip().lower() == "all":
            k = None
        else:
            try:
                k = int(value)
            except ValueError:
                raise ConfigError(f"--k expects a positive integer or 'all', got {value!r}") from None
            if k < 1:
                raise ConfigError(f"--k must be at least 1, got {k}")
        if k not in ks:
            ks.append(k)
    return tuple(sorted((k for k in ks if k is not None))) + ((None,) if None in ks else ())


def _read_protocol(path: str):
    try:
        from ..ytf.protocol import read_protocol
    except ModuleNotFoundError as exc:
        raise ConfigError(f"the YouTube Faces protocol reader is not available in this version ({exc.name} is missing)") from None
    return read_protocol(path)


@click.command()
@click.argument("scores_file", metavar="SCORES.parquet", type=click.Path(exists=True, dir_okay=False))
@click.option("--protocol", "protocol_path", type=click.Path(exists=True), required=True, help="YTF protocol: bob.db.youtube export folder or meta_and_splits.mat.")
@click.option("--extra-pairs", is_flag=True, help="Also score every pair of the videos present (an optimistic extra group, for small subsets).")
@click.option("--k", "k_values", multiple=True, metavar="K", help="Frames per template: an integer or 'all' (repeatable) [default: 1, 3, 5, all].")
@click.option("--rule", "rules", multiple=True, type=click.Choice(["quality", "random", "first", "weighted", "selected", "product"]),
              help="Template rules to compare (repeatable); product: the template vidfiqa run and watch ship [default: all six].")
@click.option("--temperature", type=click.FloatRange(0, min_open=True), default=None,
              help="The weighted rule's softmax temperature, in quality units [default: the one chosen for the student].")
@click.option("-c", "--config", "config", default=None,
              help="Preset name or TOML whose selection settings the selected rule uses, as `vidfiqa run --config` would [default: the defaults].")
@click.option("--diversity-scores", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A rescore parquet of the same frames whose embeddings keep the selected rule's frames apart (the student's, as in `vidfiqa run`) [default: SCORES' own].")
@click.option("--bootstrap", type=click.IntRange(0), default=1000, show_default=True, help="Draws for 95 % intervals over videos on the extra pairs (0: none).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for random frames and the EDC's frame sample.")
@click.option("--edc-frames", type=click.IntRange(0), default=20, show_default=True, help="Frames per video for the frame-level EDC (0 = no EDC).")
@click.option("-o", "--output", "out_file", type=click.Path(dir_okay=False), required=True, help="Report JSON.")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False), default=None, help="Report as markdown.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None, help="PNG: accuracy against k, one line per frame selection.")
def ytf(scores_file, protocol_path, extra_pairs, k_values, rules, temperature, config, diversity_scores, bootstrap, seed, edc_frames, out_file, markdown_file, plot_file):
    """Template verification on YouTube Faces from SCORES.parquet (`vidfiqa rescore` output).

    Each video's template is the normalised mean embedding of k frames: the k best by quality,
    k random or the first k (frames without a face are never used).  Accuracy follows the
    10-fold protocol (threshold from the other folds); TAR at FAR 1e-2 is reported too.
    """
    console = make_console()
    ks = parse_ks(k_values)

    import dataclasses

    import numpy as np

    from ..eval import setverify as sv
    from ..pipeline import make_settings

    # The selected rule is the pipeline's own, from the same settings: it cannot drift from `vidfiqa run`.
    selection = make_settings(config).selection_rule()

    videos: dict = sv.read_scores(scores_file)
    rules = tuple(rules) or sv.SELECTIONS
    temperature = sv.DEFAULT_TEMPERATURE if temperature is None else temperature
    if diversity_scores:
        other = sv.read_scores(diversity_scores)
        frames, other_frames = sv.source_frames(scores_file), sv.source_frames(diversity_scores)
        for key, (quality, embeddings) in list(videos.items()):
            if key not in other or len(other[key][1]) != len(embeddings):
                raise ConfigError(f"--diversity-scores {diversity_scores}: video {key} is missing there or has other frames")
            if frames is not None and other_frames is not None and not np.array_equal(frames[key], other_frames[key]):
                raise ConfigError(f"--diversity-scores {diversity_scores}: video {key} holds other frames than {scores_file} "
                                  "(rescore both with the same --max-frames)")
            videos[key] = (quality, embeddings, other[key][1])
    protocol = _read_protocol(protocol_path)
    with_face = {key for key, entry in videos.items() if np.isfinite(entry[0]).any()}
    usable, counts = protocol.evaluable(with_face)
    coverage = {**counts, **sv.protocol_coverage([(p.key1, p.key2) for p in protocol.pairs], set(videos), with_face)}
    pairs = [(p.key1, p.key2, p.same, p.fold) for p in usable]

    result = {
        "inputs": {"scores": str(scores_file), "protocol": str(protocol_path)},
        "videos": {"in_scores": len(videos), "with_face": len(with_face)},
        "ks": list(ks),
        "seed": seed,
        "coverage": coverage,
        "rules": list(rules),
        "temperature": temperature,
        "selection": {"config": config, **dataclasses.asdict(selection)},
        "protocol": sv.evaluate(videos, pairs, ks=ks, rules=rules, seed=seed, temperature=temperature, selection=selection) if pairs else None,
    }
    if extra_pairs:
        result["extra"] = sv.evaluate_extra(videos, sv.extra_pairs(with_face), ks=ks, rules=rules, seed=seed, temperature=temperature,
                                            bootstrap=bootstrap, selection=selection)
    if edc_frames:
        faces = {key: videos[key] for key in with_face}
        result["frame_edc"] = sv.frame_level_edc(faces, {key: sv.person_of(key) for key in faces}, frames_per_video=edc_frames, seed=seed)
    sv.write_report(result, out_file, markdown_file, plot_file)

    console.print(
        f"{coverage['evaluable']} of {coverage['total']} protocol pairs evaluable; "
        f"{coverage['pairs_missing_video']} reference a video absent from {scores_file}, "
        f"{coverage['pairs_video_without_face']} a video without a face",
        soft_wrap=True,
    )
    console.print(f"-> {', '.join(str(p) for p in (out_file, markdown_file, plot_file) if p)}")
