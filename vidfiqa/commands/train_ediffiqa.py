"""`vidfiqa train ediffiqa`: distil teacher labels into an eDifFIQA student (resumable)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click
import numpy as np

from ..errors import ConfigError, InputError


def load_labels(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        raise InputError(f"{path}: no such labels file", path=path)
    with open(path, newline="") as handle:
        return {row["key"]: row for row in csv.DictReader(handle)}


def monotone_labels(keys: np.ndarray, label: np.ndarray, margin: float) -> np.ndarray:
    """Labels where every degraded copy (key ``source|degradations``) sits at least ``margin``
    below its clean source's label when the source is among ``keys``: the teacher (an FR model's
    own signals) barely marks down damage the FR model is robust to, such as JPEG or
    over-exposure, yet no damage makes a face better."""
    out = np.asarray(label, np.float32).copy()
    row = {str(k): i for i, k in enumerate(keys)}
    for i, key in enumerate(keys):
        source, sep, _ = str(key).partition("|")
        if sep and source in row:
            out[i] = min(out[i], out[row[source]] - margin)
    return np.clip(out, 0.0, 1.0)


def teacher_label(rows: list[dict[str, str]], teacher: str) -> np.ndarray:
    """The teacher label per row: one column, or ``a+b`` for the mean of rank-normalised columns."""
    from ..train.teacher import minmax, rank_normalise

    names = teacher.split("+")
    missing = [n for n in names if n not in rows[0]]
    if missing:
        raise ConfigError(f"--teacher: column(s) {', '.join(missing)} not in the labels file (has {', '.join(rows[0])})")
    columns = [np.array([float(r[n]) for r in rows]) for n in names]
    if len(columns) == 1:
        label = minmax(columns[0])  # the paper min-max normalises the teacher's scores
    else:
        label = minmax(np.nanmean([rank_normalise(c) for c in columns], axis=0))
    # Identity-based signals do not exist for faces without an identity (crowd clips): those
    # fall back to the rank of their embedding norm, the label-free signal.
    missing = ~np.isfinite(label)
    if missing.any():
        label[missing] = rank_normalise(np.array([float(r["embedding_norm"]) for r in rows]))[missing]
    return label


@click.command("ediffiqa")
@click.option("--cropset", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Crop set .npz (training/build_cropset.py).")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Teacher labels CSV (key, split, teacher columns).")
@click.option("--teacher", default="embedding_norm", show_default=True, help="Label column, or a+b for the mean of rank-normalised columns.")
@click.option("--init-weights", type=click.Path(dir_okay=False, path_type=Path), default=None, help="FR backbone weights to start from (default: the registry's file).")
@click.option("--variant", type=click.Choice(["T", "S", "M", "L"]), default="T", show_default=True)
@click.option("--epochs", type=click.IntRange(1, 1000), default=8, show_default=True)
@click.option("--batch-size", type=click.IntRange(2, 4096), default=64, show_default=True)
@click.option("--lr-backbone", type=float, default=5e-5, show_default=True)
@click.option("--lr-head", type=float, default=1e-3, show_default=True)
@click.option("--theta", type=float, default=0.5, show_default=True, help="Weight of representation consistency.")
@click.option("--epsilon", type=float, default=0.5, show_default=True, help="Strength of the relative-position (C3) correction.")
@click.option("--beta", type=float, default=0.2, show_default=True, help="Top fraction of an identity that defines its centre.")
@click.option("--ig-weighting/--no-ig-weighting", default=False, show_default=True, help="IG-FIQA-style weights by intra-class spread.")
@click.option("--train-from", type=click.IntRange(0, 15), default=12, show_default=True, help="First trainable MobileFaceNet block; 0 trains the whole backbone (paper; use with a GPU).")
@click.option("--monotone-margin", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="A degraded copy's label is at most its clean source's minus this (0: off): damage never raises quality.")
@click.option("--align-jitter", type=click.FloatRange(0, 0.3), default=0.0, show_default=True,
              help="Also train on re-alignments with landmarks moved by this fraction of the eye distance (0: off): the same face found a little differently gets the same quality.")
@click.option("--jitter-copies", type=click.IntRange(1, 8), default=2, show_default=True, help="Fixed jittered copies per crop (with --align-jitter).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto (a GPU when PyTorch sees one).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run folder (last.pt, history.json, model.onnx, model.json); rerun to resume.")
def ediffiqa(cropset, labels, teacher, init_weights, variant, epochs, batch_size, lr_backbone, lr_head, theta, epsilon, beta, ig_weighting, train_from, monotone_margin,
             align_jitter, jitter_copies, seed, device, out_dir):
    """Train an eDifFIQA student on a crop set with teacher labels; exports ONNX at the end."""
    import torch

    from ..atomic import atomic_write_text
    from ..backbones.registry import find_weights, get_spec, sha256_file, torch_device
    from ..quality.ediffiqa import VARIANTS, export_onnx
    from ..train.cropset import CropSet
    from ..train.ediffiqa import TrainConfig, TrainData, evaluate, frozen_embeddings, train
    from ..train.teacher import intra_class_weights, relative_position_correction

    if not cropset.is_file():
        raise InputError(f"{cropset}: no such crop set (build it with training/build_cropset.py)", path=cropset)
    cs = CropSet.load(cropset)
    table = load_labels(labels)
    missing = [k for k in cs.keys if k not in table]
    if missing:
        raise InputError(f"{labels}: {len(missing)} crops of the crop set have no label (first: {missing[0]})", path=labels)
    rows = [table[k] for k in cs.keys]
    torch_device(device)  # a GPU that is not there: refused before any work
    split = np.array([r["split"] for r in rows])
    identity = np.array(cs.identity)
    q = teacher_label(rows, teacher)
    crops = np.asarray(cs.crops)
    backbone_name, preprocessing = VARIANTS[variant]
    spec = get_spec(backbone_name)
    weights_path = find_weights(spec, init_weights)
    init_state = torch.load(weights_path, map_location="cpu", weights_only=True)
    # The representation-consistency targets (and the identity centres of the label correction)
    # are the starting backbone's own embeddings: 128-d for T, 512-d for S/M/L.
    emb_cache = cropset.with_name(f"{cropset.stem}_{backbone_name}_{sha256_file(weights_path)[:12]}_embeddings.npz")
    mfn_cache = cropset.with_name(cropset.stem + "_mfn_embeddings.npz")  # training/label_teachers.py writes it for T
    if variant == "T" and mfn_cache.is_file():
        emb_cache = mfn_cache
    if emb_cache.is_file():
        with np.load(emb_cache) as z:
            plain, flip = z["plain"], z["flip"]
    else:
        click.echo(f"embedding {len(crops)} crops and their flips with {backbone_name} (the consistency targets) -> {emb_cache.name}", err=True)
        if spec.builder is None:
            raise ConfigError(f"variant {variant}: backbone {backbone_name} has no PyTorch builder")
        backbone = spec.builder()
        backbone.load_state_dict(init_state, strict=True)
        plain, flip = frozen_embeddings(backbone, preprocessing, crops, device=device)
        from ..atomic import atomic_open

        with atomic_open(emb_cache, "wb") as handle:
            np.savez(handle, plain=plain, flip=flip)

    keys = np.array(cs.keys)

    def subset(mask) -> TrainData:
        corrected, _ = relative_position_correction(q[mask], plain[mask], identity[mask], beta=beta, epsilon=epsilon)
        if monotone_margin:
            corrected = monotone_labels(keys[mask], corrected, monotone_margin)
        weight = intra_class_weights(plain[mask], identity[mask]) if ig_weighting else np.ones(mask.sum(), np.float32)
        return TrainData(crops[mask], plain[mask], flip[mask], corrected, weight)

    train_data, dev_data = subset(split == "train"), subset(split == "dev")
    config = TrainConfig(variant=variant, epochs=epochs, batch_size=batch_size, lr_backbone=lr_backbone, lr_head=lr_head, theta=theta, epsilon=epsilon, beta=beta,
                         ig_weighting=ig_weighting, seed=seed, train_from=train_from if variant == "T" else 0, device=device,
                         align_jitter=align_jitter, jitter_copies=jitter_copies)
    click.echo(f"train {len(train_data.crops)} crops, dev {len(dev_data.crops)}; teacher {teacher}; init {weights_path}", err=True)
    model, history = train(train_data, preprocessing, init_state, out_dir, config, dev=dev_data, log=lambda m: click.echo(m, err=True), stem_cache_dir=cropset.parent / "stem_cache")
    onnx_path = export_onnx(model, out_dir / "model.onnx")
    meta = {
        "variant": variant,
        "backbone": backbone_name,
        "embedding_dim": model.embedding_dim,
        "preprocessing": {"mean": list(preprocessing.mean), "std": list(preprocessing.std), "input_size": 112, "channel_order": "RGB"},
        "init_weights": {"file": weights_path.name, "sha256": sha256_file(weights_path)},
        "teacher": teacher,
        "monotone_margin": monotone_margin,
        "align_jitter": align_jitter,
        "labels": labels.name,
        "cropset": {"file": cropset.name, "crops": len(cs), "train": int(len(train_data.crops)), "dev": int(len(dev_data.crops))},
        "config": config.__dict__,
        "history": history,
        "final_dev": evaluate(model, preprocessing, dev_data),
    }
    atomic_write_text(out_dir / "model.json", json.dumps(meta, indent=1, default=str))
    click.echo(f"exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB) and {out_dir / 'model.json'}", err=True)
