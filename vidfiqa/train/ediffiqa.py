"""Training the eDifFIQA student (paper loss), resumable, on a cached crop set and teacher labels.

Loss per sample x (eDifFIQA, TBIOM 2024):
    θ · (1 − cos(ê_x, e_x)) + (1 − θ) · |q̂_x − q°_x|,    θ = 0.5
where ê_x is the student's embedding, e_x the frozen FR model's embedding of the same (possibly
flipped) crop, and q°_x the teacher label corrected by the relative-position term (see
:func:`vidfiqa.train.teacher.relative_position_correction`).  Optional IG-FIQA-style weights
down-weight identities with a large intra-class spread.

BatchNorm statistics of the backbone stay frozen: batches are small and mixed with degraded
copies, and moving statistics would shift every embedding away from the FR model's.

On a CPU, training the whole backbone costs ~150 ms per crop here (depthwise-convolution
backward passes are slow in PyTorch on CPU); with ``train_from = k`` the stem (conv1, dw_conv,
features[:k]) is frozen and its output computed once per crop and flip, and only features[k:],
the embedding layers and the head are trained (~12x faster at k = 12).  ``train_from = 0``
trains the whole network, as in the paper, for machines with a GPU.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text


@dataclass
class TrainConfig:
    variant: str = "T"
    epochs: int = 8
    batch_size: int = 64
    lr_backbone: float = 5e-5
    lr_head: float = 1e-3
    weight_decay: float = 1e-4
    theta: float = 0.5
    epsilon: float = 0.5
    beta: float = 0.2
    ig_weighting: bool = False
    flip_prob: float = 0.5
    # Alignment jitter (0: off): each training crop also exists as ``jitter_copies`` re-alignments
    # with landmarks moved by ``align_jitter`` x the eye distance (align.jittered_crops, fixed
    # per copy so the frozen stem can be cached); a sample is drawn from them with
    # ``jitter_prob``, with the clean crop's label and target embedding: the same face found a
    # little differently must get the same quality (another detector, the next frame).
    align_jitter: float = 0.0
    jitter_copies: int = 2
    jitter_prob: float = 0.5
    seed: int = 0
    threads: int = 0
    train_from: int = 12  # first trainable MobileFaceNet block; 0 = whole backbone (paper)
    device: str = "cpu"  # cpu, cuda, cuda:N or auto
    extra: dict = field(default_factory=dict)


@dataclass
class TrainData:
    """Everything the loop needs, as arrays (train and dev rows already separated)."""

    crops: np.ndarray  # uint8 (N, 112, 112, 3)
    target_embedding: np.ndarray  # frozen FR embedding of each crop (N, D)
    target_embedding_flip: np.ndarray  # ... of its horizontal flip
    label: np.ndarray  # corrected label q° in [0, 1]
    weight: np.ndarray  # per-sample loss weight


def _set_bn_eval(module) -> None:
    import torch

    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.eval()


def train(
    data: TrainData,
    preprocessing,
    init_backbone_state: dict,
    out_dir: Path,
    config: TrainConfig,
    dev: TrainData | None = None,
    log=print,
    stem_cache_dir: Path | None = None,
):
    """Train (or resume) into ``out_dir``: ``last.pt`` each epoch, ``history.json``; returns the model."""
    import torch

    from ..quality.ediffiqa import build_model

    out_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    from ..backbones.registry import torch_device

    device = torch_device(config.device)
    model = build_model(config.variant)
    model.base_model.load_state_dict(init_backbone_state, strict=True)
    model.to(device)
    head_params = list(model.mlp.parameters())
    optimiser = torch.optim.AdamW(
        [
            {"params": list(model.base_model.parameters()), "lr": config.lr_backbone},
            {"params": head_params, "lr": config.lr_head},
        ],
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = math.ceil(len(data.crops) / config.batch_size)
    total = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    history, start_epoch = [], 0
    last = out_dir / "last.pt"
    if last.is_file():
        state = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        history, start_epoch = state["history"], state["epoch"]
        log(f"resumed from {last} after epoch {start_epoch}")
    k = config.train_from
    if k:
        for p in list(model.base_model.conv1.parameters()) + list(model.base_model.dw_conv.parameters()) + list(model.base_model.features[:k].parameters()):
            p.requires_grad_(False)
        log(f"caching the frozen stem (features[:{k}]) of {len(data.crops)} crops and their flips")
        cached = _stem_cache(model, preprocessing, data.crops, k, stem_cache_dir)
        cached_flip = _stem_cache(model, preprocessing, np.ascontiguousarray(data.crops[:, :, ::-1]), k, stem_cache_dir)
        jittered = [(_stem_cache(model, preprocessing, view, k, stem_cache_dir),
                     _stem_cache(model, preprocessing, np.ascontiguousarray(view[:, :, ::-1]), k, stem_cache_dir))
                    for view in jitter_views(data.crops, config)]
        dev_cached = _stem_cache(model, preprocessing, dev.crops, k, stem_cache_dir) if dev is not None else None
    rng = np.random.default_rng(config.seed + start_epoch)
    target = torch.from_numpy(data.target_embedding).to(device)
    target_flip = torch.from_numpy(data.target_embedding_flip).to(device)
    labels = torch.from_numpy(data.label).to(device)
    weights = torch.from_numpy(data.weight).to(device)
    for epoch in range(start_epoch, config.epochs):
        model.train()
        _set_bn_eval(model.base_model)
        order = rng.permutation(len(data.crops))
        sums = np.zeros(3)
        started = time.time()
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            flip = rng.random(len(idx)) < config.flip_prob
            flip_t = torch.from_numpy(flip).to(device)
            e_target = torch.where(flip_t[:, None], target_flip[idx], target[idx])
            # Which view of each sample: the crop (-1) or one of its jittered re-alignments.
            view = np.full(len(idx), -1)
            if config.align_jitter:  # drawn only then: runs without jitter keep their random sequence
                view = np.where(rng.random(len(idx)) < config.jitter_prob, rng.integers(0, config.jitter_copies, len(idx)), -1)
            if k:
                h = np.where(flip[:, None, None, None], cached_flip[idx], cached[idx])
                for j, (plain_j, flip_j) in enumerate(jittered):
                    rows = view == j
                    if rows.any():
                        h[rows] = np.where(flip[rows, None, None, None], flip_j[idx[rows]], plain_j[idx[rows]])
                embedding, quality = model.top(torch.from_numpy(h.astype(np.float32)).to(device), k)
            else:
                crops = data.crops[idx].copy()
                moved = view >= 0
                if moved.any():
                    crops[moved] = jittered_crops_for(crops[moved], config, rng)
                crops[flip] = crops[flip][:, :, ::-1]
                embedding, quality = model(torch.from_numpy(preprocessing(crops)).to(device))
            consistency = 1 - torch.nn.functional.cosine_similarity(embedding, e_target, dim=1)
            regression = (quality - labels[idx]).abs()
            w = weights[idx]
            loss = (w * (config.theta * consistency + (1 - config.theta) * regression)).sum() / w.sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            sums += [loss.item(), consistency.mean().item(), regression.mean().item()]
            if step % 20 == 0:
                log(f"epoch {epoch + 1}/{config.epochs} step {step}/{steps_per_epoch} loss {sums[0] / (step + 1):.4f} ({time.time() - started:.0f}s)")
        record = {"epoch": epoch + 1, "loss": sums[0] / steps_per_epoch, "consistency": sums[1] / steps_per_epoch, "l1": sums[2] / steps_per_epoch,
                  "seconds": time.time() - started, "device": str(device)}
        if dev is not None:
            record.update(evaluate(model, preprocessing, dev, stem=(dev_cached, k) if k else None))
        history.append(record)
        log(json.dumps(record))
        tmp = out_dir / "last.pt.part"
        torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(), "history": history, "epoch": epoch + 1, "config": asdict(config)}, tmp)
        tmp.replace(last)
        atomic_write_text(out_dir / "history.json", json.dumps(history, indent=1))
    return model.eval().cpu(), history


def jitter_views(crops: np.ndarray, config: TrainConfig) -> list[np.ndarray]:
    """The fixed jittered copies of the training crops (none when jitter is off), seeded by the
    run's seed and the copy's number, so a resumed run sees the same copies."""
    from ..align import jittered_crops

    if not config.align_jitter:
        return []
    return [jittered_crops(crops, config.align_jitter, np.random.default_rng([config.seed, 7919, j])) for j in range(config.jitter_copies)]


def jittered_crops_for(crops: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Fresh jitter for a batch (training the whole network: no stem to cache)."""
    from ..align import jittered_crops

    return jittered_crops(crops, config.align_jitter, rng)


def frozen_embeddings(backbone, preprocessing, crops: np.ndarray, device: str = "cpu", batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """The representation-consistency targets: ``backbone``'s embedding of every crop and of its
    horizontal flip (float32).  They must come from the backbone the student is built on (512-d
    for iresnet variants, 128-d for our MobileFaceNet)."""
    import torch

    from ..backbones.registry import torch_device

    dev = torch_device(device)
    backbone = backbone.eval().to(dev)
    out = []
    for view in (crops, np.ascontiguousarray(crops[:, :, ::-1])):
        parts = []
        with torch.inference_mode():
            for i in range(0, len(view), batch):
                parts.append(backbone(torch.from_numpy(preprocessing(view[i : i + batch])).to(dev)).float().cpu().numpy())
        out.append(np.concatenate(parts) if parts else np.zeros((0, 0), np.float32))
    return out[0].astype(np.float32), out[1].astype(np.float32)


def _stem_cache(model, preprocessing, crops: np.ndarray, k: int, cache_dir: Path | None = None, batch: int = 128) -> np.ndarray:
    """Frozen stem output for every crop, float16 (halves memory; the top runs in float32).

    With ``cache_dir`` the result is kept on disk, keyed by the crops and the stem's weights,
    so later runs on the same crop set skip this (slow on a CPU) pass.
    """
    import hashlib

    import torch

    path = None
    if cache_dir is not None:
        digest = hashlib.sha1(crops.tobytes())
        for p in model.stem_parameters(k):
            digest.update(p.detach().cpu().numpy().tobytes())
        path = Path(cache_dir) / f"stem_k{k}_{digest.hexdigest()[:16]}.npy"
        if path.is_file():
            return np.load(path, mmap_mode="r")
    model.eval()
    parts = []
    with torch.inference_mode():
        for i in range(0, len(crops), batch):
            x = torch.from_numpy(preprocessing(crops[i : i + batch])).to(next(model.parameters()).device)
            parts.append(model.stem(x, k).cpu().numpy().astype(np.float16))
    out = np.concatenate(parts)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.npy")
        np.save(tmp, out)
        tmp.replace(path)
    return out


def predict(model, preprocessing, crops: np.ndarray, batch: int = 128, stem=None) -> tuple[np.ndarray, np.ndarray]:
    """Quality and embedding of crops; ``stem=(cached stem outputs, k)`` skips the frozen part."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    qs, es = [], []
    with torch.inference_mode():
        for i in range(0, len(crops), batch):
            if stem is not None:
                e, q = model.top(torch.from_numpy(stem[0][i : i + batch].astype(np.float32)).to(device), stem[1])
            else:
                e, q = model(torch.from_numpy(preprocessing(crops[i : i + batch])).to(device))
            qs.append(q.cpu().numpy())
            es.append(e.cpu().numpy())
    return np.concatenate(qs), np.concatenate(es)


def evaluate(model, preprocessing, dev: TrainData, stem=None) -> dict:
    from scipy.stats import spearmanr

    from ..embed import cosine_similarity

    q, e = predict(model, preprocessing, dev.crops, stem=stem)
    cos = cosine_similarity(e, dev.target_embedding)
    return {"dev_spearman": float(spearmanr(q, dev.label).statistic), "dev_l1": float(np.abs(q - dev.label).mean()), "dev_consistency": float(cos.mean())}
