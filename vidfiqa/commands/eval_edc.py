"""`vidfiqa eval edc`: FNMR-EDC and pAUC of quality scores on an identity-labelled photo set.

Every photo's largest face is detected and aligned (or taken as an aligned crop with
``--aligned``), embedded with the comparator model and scored by each ``--methods`` scorer;
``--scores NAME=FILE.csv`` adds precomputed scores.  A photo any method has no score for (no face
found) is dropped for *all* methods, so every method is judged on the same pairs.  The metric
itself lives in :mod:`vidfiqa.eval.edc`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np

from .common import ImageStats, detector_from_options, detector_options, make_console, make_progress
from ..errors import ConfigError, InputError

BASELINES = ("sharpness", "face_size", "detector_confidence", "embedding_norm", "random")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


# ----------------------------------------------------------------------------- option parsing
def parse_methods(text: str | None, aligned: bool) -> list[str]:
    """The --methods list; by default every baseline that can run on these inputs."""
    from ..quality import SCORERS

    if text is None:
        names = list(BASELINES)
        if aligned:  # face size / detector score mean nothing for crops taken as given
            names = [n for n in names if n not in ("face_size", "detector_confidence")]
        return names
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise ConfigError(f"--methods names a method twice: {text}")
    for name in names:
        if name not in SCORERS:
            raise ConfigError(f"unknown quality method {name!r} in --methods: choose from {', '.join(sorted(SCORERS))}")
    return names


def parse_score_files(specs: tuple[str, ...], methods: list[str]) -> dict[str, Path]:
    """--scores NAME=FILE.csv options -> {name: path}; names must be unique and not a method."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise ConfigError(f"--scores expects NAME=FILE.csv, got {spec!r}")
        if not _NAME.match(name):
            raise ConfigError(f"--scores name {name!r} may use only letters, digits and _ . + -")
        if name == "floor":
            raise ConfigError("--scores name 'floor' is reserved for the perfect-order reference")
        if name in out or name in methods:
            raise ConfigError(f"--scores name {name!r} is used twice; give each score a distinct name")
        if not Path(path).is_file():
            raise InputError(f"--scores {name}: {path}: no such file", path=path)
        out[name] = Path(path)
    return out


def build_scorers(methods: list[str], aligned: bool, embedder, model: str, seed: int) -> dict:
    """One scorer per method through make_scorer; a method whose module is not there yet is a
    one-line ConfigError rather than an ImportError traceback."""
    from ..quality import make_scorer

    scorers = {}
    for name in methods:
        options = {}
        if name == "embedding_norm" and model != "dlib":
            options["embedder"] = embedder  # the comparator's own backbone, loaded once
        elif name == "random":
            options["seed"] = seed
        try:
            scorer = make_scorer(name, **options)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"quality method {name!r} is not available in this version ({exc.name} is missing)") from None
        if aligned and getattr(scorer, "needs_faces", False):
            raise ConfigError(f"quality method {name!r} needs detected faces (landmarks, detector scores); drop it or drop --aligned")
        scorers[name] = scorer
    return scorers


# ----------------------------------------------------------------------------- photo processing
@dataclass
class PhotoScores:
    """Per photo (in input order): embedding (NaN rows where no face) and each method's quality."""

    embeddings: np.ndarray
    found: np.ndarray
    quality: dict[str, np.ndarray] = field(default_factory=dict)


class _BatchScorer:
    """Buffers one face per photo and scores them in batches (neural scorers want batches)."""

    def __init__(self, scorers: dict, n_photos: int, batch: int):
        self.scorers, self.batch = scorers, batch
        self.quality = {name: np.full(n_photos, np.nan) for name in scorers}
        self._index: list[int] = []
        self._faces: list = []

    def add(self, index: int, faces) -> None:
        self._index.append(index)
        self._faces.append(faces)
        if len(self._index) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self._index:
            return
        from ..faces import Faces

        faces = Faces.concat(self._faces)
        for name, scorer in self.scorers.items():
            values = np.asarray(scorer.score(faces.crops, faces), dtype=np.float64).reshape(-1)
            if values.shape != (len(faces),):
                raise ConfigError(f"quality method {name!r} returned {values.size} scores for {len(faces)} faces")
            self.quality[name][self._index] = values
        self._index, self._faces = [], []


def process_photos(paths, embedder, detector, scorers: dict, aligned: bool, batch: int, console) -> PhotoScores:
    """Detect + align the largest face of each photo, embed it and score it with every scorer."""
    from ..photos import PhotoPipeline

    pipeline = PhotoPipeline(detector, stages=[embedder], largest_only=True, aligned_input=aligned, chunk_size=batch)
    where = {Path(p).resolve(): i for i, p in enumerate(paths)}
    scoring = _BatchScorer(scorers, len(paths), batch)
    vectors: dict[int, np.ndarray] = {}
    stats = ImageStats()
    with make_progress(console) as progress:
        task = progress.add_task("embed + score", total=len(paths), rate="")
        for result in pipeline.run(paths):
            progress.advance(task)
            stats.add(result, console)
            if result.faces is None or len(result.faces) == 0:
                continue
            i = where[Path(result.path).resolve()]
            assert result.faces.embeddings is not None  # set by the embedder stage
            vectors[i] = result.faces.embeddings[0]
            scoring.add(i, result.faces[:1])
        scoring.flush()
    dim = len(next(iter(vectors.values()))) if vectors else 0
    emb = np.full((len(paths), dim), np.nan, np.float32)
    for i, v in vectors.items():
        emb[i] = v
    found = np.zeros(len(paths), bool)
    found[list(vectors)] = True
    return PhotoScores(embeddings=emb, found=found, quality=scoring.quality)


def restrict_pairs(pairs, keep: np.ndarray):
    """Pairs among the kept photos, re-indexed to the kept photos' positions."""
    from ..eval.verification import Pairs

    new_index = np.cumsum(keep) - 1
    ok = keep[pairs.first] & keep[pairs.second]
    return Pairs(first=new_index[pairs.first[ok]], second=new_index[pairs.second[ok]], genuine=pairs.genuine[ok]), int((~ok).sum())


# ----------------------------------------------------------------------------- output
def print_table(report: dict, console) -> None:
    from rich.table import Table

    limits = report["limits"]
    table = Table(
        title=f"EDC normalised pAUC, comparator {report['comparator']['model']}",
        caption="lower is better; random ~ 1.00; floor = perfect order",
    )
    table.add_column("method", no_wrap=True)
    for entry in report["fmr"]:
        for limit in limits:
            table.add_column(f"FMR {entry['fmr']:g}\n@{limit:g}", justify="right")

    def fmt(v):
        return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"

    for name in report["methods"]:
        table.add_row(name, *[fmt(e["methods"][name]["normalised"][f"{limit:g}"]) for e in report["fmr"] for limit in limits])

    def spread(r):
        return f"[dim]{r['mean']:.2f}±{r['std']:.2f}[/]" if np.isfinite(r["std"]) else "-"

    table.add_row("[dim]random photo scores[/]", *[spread(e["random"][f"{limit:g}"]) for e in report["fmr"] for limit in limits])
    table.add_row("[dim]floor (perfect)[/]", *[f"[dim]{fmt(e['floor'][f'{limit:g}']['normalised'])}[/]" for e in report["fmr"] for limit in limits])
    console.print(table)
    c = report["counts"]
    console.print(
        f"{c['photos']} photos, {c['embedded']} with a face, {c['used']} used; "
        f"{report['pairs']['genuine']:,} genuine and {report['pairs']['impostor']:,} impostor pairs"
    )
    for e in report["fmr"]:
        note = "" if e["fmr_resolved"] else f" [yellow](too few impostor pairs for FMR {e['fmr']:g}: realised {e['realised_fmr']:.2g})[/]"
        console.print(f"FMR {e['fmr']:g}: threshold {e['threshold']:.4f}, FNMR0 {e['fnmr0']:.3f}{note}")


def edc_panels(report: dict, limit: float) -> list:
    """One plot panel per FMR; legend entries carry the normalised pAUC at ``limit``."""
    from ..eval.edc_plot import Panel

    model = report["comparator"]["model"]
    panels = []
    for e in report["fmr"]:
        labels = {n: f"{n} ({_short(m['normalised'][f'{limit:g}'])})" for n, m in e["methods"].items()}
        labels["floor"] = f"floor, perfect order ({_short(e['floor'][f'{limit:g}']['normalised'])})"
        title = f"FNMR-EDC, FMR {e['fmr']:g} (threshold {e['threshold']:.3f}), comparator {model}"
        panels.append(Panel(title, e["_curves"], labels, legend_title=f"normalised pAUC@{limit:g}"))
    return panels


def _short(v) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.3f}"


# ----------------------------------------------------------------------------- the command
@click.command()
@click.argument("identities_csv", type=str)
@click.option("--pairs", "pairs_file", type=click.Path(dir_okay=False), default=None, help="CSV path_a,path_b,genuine: compare these pairs instead of all pairs of IDENTITIES_CSV.")
@click.option("--model", default="mobilefacenet", show_default=True, help="Comparator face recognition model (see `vidfiqa models`).")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Comparator weights (else looked up in $VIDFIQA_WEIGHTS).")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="onnx", show_default=True)
@click.option("--methods", default=None, help=f"Comma-separated quality methods to score [default: {','.join(BASELINES)}].")
@click.option("--scores", "score_specs", multiple=True, metavar="NAME=FILE.csv", help="Precomputed per-photo scores (columns path, quality; empty = no face). Repeatable.")
@click.option("--aligned", is_flag=True, help="Photos are aligned 112x112 crops: skip detection.")
@click.option("--fmr", "fmrs", type=click.FloatRange(0, 1, min_open=True, max_open=True), multiple=True, help="Target FMR for the fixed threshold (repeatable) [default: 1e-3 and 1e-2].")
@click.option("--limit", "limits", type=click.FloatRange(0, 1, min_open=True), multiple=True, help="pAUC discard limit (repeatable) [default: 0.2 and 0.3].")
@click.option("--max-impostors", type=click.IntRange(1), default=200_000, show_default=True, help="Seeded sample of impostor pairs when there are more.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the random baseline and impostor sampling.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=64, show_default=True)
@click.option("-o", "--output", "out_file", type=click.Path(dir_okay=False), required=True, help="Report JSON.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None, help="PNG of the EDC curves, one panel per FMR.")
@click.option("--max-discard", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True, help="Right end of the plot's x axis.")
@detector_options
def edc(identities_csv, pairs_file, model, weights, backend, methods, score_specs, aligned, fmrs, limits, max_impostors, seed, batch_size, out_file, plot_file, max_discard, detector, detector_model, input_size, score_threshold, device):
    """FNMR-EDC and pAUC of quality scores on IDENTITIES_CSV (path, identity).

    The threshold is fixed once for each --fmr from the impostor scores; genuine pairs are
    discarded lowest pair quality (min of the two photos) first, ties together; the discard
    fraction counts genuine pairs.  With --pairs only the photos named there are used.
    """
    console = make_console()
    # Options first, before importing PyTorch and SciPy: a typo costs no time.
    fmrs = tuple(sorted(set(fmrs))) or (1e-3, 1e-2)  # = vidfiqa.eval.edc.DEFAULT_FMRS
    limits = tuple(sorted(set(limits))) or (0.2, 0.3)  # = vidfiqa.eval.edc.DEFAULT_LIMITS
    method_names = parse_methods(methods, aligned)
    score_files = parse_score_files(score_specs, method_names)
    if not method_names and not score_files:
        raise ConfigError("nothing to evaluate: give --methods or --scores NAME=FILE.csv")

    from ..atomic import atomic_write_text
    from ..datasets import read_identity_csv
    from ..embed import make_embedder
    from ..eval.edc import evaluate, report_json
    from ..eval.edc_inputs import read_pairs_csv, read_quality_csv
    from ..eval.verification import all_pairs, comparison_scores

    # Everything that can fail on a bad option fails here, before minutes of embedding.
    ids = read_identity_csv(identities_csv)
    for rel in ids.missing[:20]:
        console.print(f"[yellow]missing[/] {rel} (listed in {identities_csv})", soft_wrap=True)
    if pairs_file:
        pair_list = read_pairs_csv(pairs_file, extra_bases=[ids.root, ids.root.parent])
        paths, pairs = pair_list.paths, pair_list.pairs
        if pair_list.skipped_rows:
            console.print(f"[yellow]{pair_list.skipped_rows} pairs skipped[/]: {len(pair_list.missing)} files in {pairs_file} do not exist (e.g. {pair_list.missing[0]})", soft_wrap=True)
        labels = None
    else:
        paths, labels, pairs = list(ids.paths), ids.labels, None
    if not paths:
        raise InputError(f"{identities_csv}: no photos to evaluate")
    precomputed = {name: read_quality_csv(path, paths, extra_bases=[ids.root, ids.root.parent]) for name, path in score_files.items()}
    embedder = make_embedder(model, weights=weights, backend=backend, device=device, batch_size=batch_size)
    scorers = build_scorers(method_names, aligned, embedder, model, seed)
    det = None if aligned else detector_from_options(detector, detector_model, input_size, score_threshold, device)

    photos = process_photos(paths, embedder, det, scorers, aligned, batch_size, console)
    if not photos.found.any():
        raise InputError(f"{identities_csv}: no face found in any of {len(paths)} photos")
    quality = {**photos.quality, **precomputed}

    # One photo set for all methods: a photo without a face (for the comparator or any method)
    # leaves every method, so the methods are compared on identical pairs.
    missing = {name: int((photos.found & ~np.isfinite(q)).sum()) for name, q in quality.items()}
    keep = photos.found & np.all([np.isfinite(q) for q in quality.values()], axis=0)
    if pairs is None:
        assert labels is not None  # pairs come from a pairs file or are built from the identity labels
        pairs = all_pairs(labels[keep], max_impostors=max_impostors, seed=seed)
        dropped = 0
    else:
        pairs, dropped = restrict_pairs(pairs, keep)
    n_gen, n_imp = int(pairs.genuine.sum()), int((~pairs.genuine).sum())
    if n_gen == 0 or n_imp == 0:
        raise InputError(f"{identities_csv}: {n_gen} genuine and {n_imp} impostor pairs among the {int(keep.sum())} usable photos; an EDC needs both")

    metric = "euclidean" if model == "dlib" else "cosine"
    comparison = comparison_scores(photos.embeddings[keep], pairs, metric)
    report = evaluate(comparison, pairs, {name: q[keep] for name, q in quality.items()}, fmrs=fmrs, limits=limits, seed=seed)
    report = {
        "comparator": {"model": model, "weights": str(weights) if weights else None, "backend": backend, "metric": metric},
        "inputs": {"identities": str(identities_csv), "pairs": str(pairs_file) if pairs_file else None, "aligned": aligned},
        "counts": {
            "photos": len(paths),
            "missing_files": len(pair_list.missing) if pairs_file else len(ids.missing),
            "embedded": int(photos.found.sum()),
            "excluded_no_quality": int((photos.found & ~keep).sum()),
            "used": int(keep.sum()),
            "identities": int(np.unique(labels[keep]).size) if labels is not None else None,
            "genuine_pairs": n_gen,
            "impostor_pairs": n_imp,
            "pairs_dropped": dropped,
        },
        "methods": {name: {"source": "scorer" if name in scorers else f"csv:{score_files[name]}", "missing": missing[name]} for name in quality},
        **report,
    }
    atomic_write_text(out_file, report_json(report))
    print_table(report, _stdout_console())
    if plot_file:
        from ..eval.edc_plot import write_edc_plot

        write_edc_plot(plot_file, edc_panels(report, max(limits)), max_discard=max_discard)
    console.print(f"-> {out_file}" + (f", {plot_file}" if plot_file else ""))


def _stdout_console():
    from rich.console import Console

    return Console(highlight=False)
