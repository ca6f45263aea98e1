"""Teacher signals, the eDifFIQA network layout and its training loop."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA, MOBILEFACENET_PT, need
from vidfiqa import degrade
from vidfiqa.train.teacher import certainty_ratio, intra_class_weights, rank_normalise, relative_position_correction


def _glint_crops(n_people=4, per_person=6):
    from PIL import Image

    root = need(DATA / "glint24_aligned")
    crops, names = [], []
    for person in sorted(p for p in root.iterdir() if p.is_dir())[:n_people]:
        for path in sorted(person.glob("*.png"))[:per_person]:
            crops.append(np.asarray(Image.open(path).convert("RGB")))
            names.append(person.name)
    return np.stack(crops), names


# ------------------------------------------------------------------------------- teacher
def test_relative_position_correction_toy():
    # Identity A: three samples on the centre direction, one off to the side; B alone.
    emb = np.array([[1, 0], [1, 0.01], [1, -0.01], [0, 1], [1, 1]], dtype=np.float32)
    ids = ["A", "A", "A", "A", "B"]
    labels = np.array([0.9, 0.8, 0.7, 0.9, 0.5], np.float32)
    corrected, distance = relative_position_correction(labels, emb, ids, beta=0.5, epsilon=0.5)
    # The top-2 of A by label are samples 0 and 3: centre at 45 degrees.
    assert distance[4] == pytest.approx(0.0, abs=1e-6)  # B is its own centre
    assert distance[0] == pytest.approx(1 - np.cos(np.pi / 4), abs=1e-4)
    assert np.all(corrected <= labels + 1e-7) and np.all((corrected >= 0) & (corrected <= 1))
    assert corrected[0] == pytest.approx(0.9 - 0.5 * distance[0], abs=1e-6)


def test_certainty_ratio_and_weights_on_real_faces(mfn_onnx):
    crops, names = _glint_crops()
    emb = mfn_onnx.embed(crops)
    cr = certainty_ratio(emb, names)
    assert np.all(np.isfinite(cr)) and np.all(cr > 0)
    # A crop with a wrong identity label is less certain than the correctly labelled crops.
    wrong = list(names)
    wrong[0] = names[-1]
    cr_wrong = certainty_ratio(emb, wrong)
    assert cr_wrong[0] < np.median(cr)
    w = intra_class_weights(emb, names)
    assert np.all((w >= 0) & (w <= 1))
    assert np.allclose(rank_normalise(np.array([3.0, 1.0, 2.0])), [1.0, 0.0, 0.5])


# ------------------------------------------------------------------------------- network layout
def test_official_layout_checkpoint_loads_unchanged(tmp_path):
    """An S-variant state_dict with the authors' keys (random weights) loads and scores the same."""
    import torch

    from vidfiqa.quality.ediffiqa import EDifFIQA, build_model

    torch.manual_seed(0)
    model = build_model("S").eval()
    state = model.state_dict()
    assert {k.split(".")[0] for k in state} == {"base_model", "mlp"}
    assert {"mlp.l1.weight", "mlp.l1.bias", "mlp.l2.weight", "mlp.l2.bias"} <= set(state)
    assert state["mlp.l1.weight"].shape == (1024, 512) and state["mlp.l2.weight"].shape == (1, 1024)
    torch.save(state, tmp_path / "ediffiqa_s.pth")
    scorer = EDifFIQA(checkpoint=tmp_path / "ediffiqa_s.pth", variant="S")
    crops = np.random.default_rng(0).integers(0, 255, (3, 112, 112, 3), dtype=np.uint8)
    q, e = scorer.score_and_embed(crops)
    with torch.no_grad():
        e_ref, q_ref = model(torch.from_numpy(scorer.preprocessing(crops)))
    assert np.allclose(q, q_ref.numpy(), atol=1e-5) and np.allclose(e, e_ref.numpy(), atol=1e-5)
    bad = {k.replace("mlp.l1", "mlp.fc1"): v for k, v in state.items()}
    torch.save(bad, tmp_path / "bad.pth")
    from vidfiqa.errors import WeightsError

    with pytest.raises(WeightsError, match="not an eDifFIQA checkpoint"):
        EDifFIQA(checkpoint=tmp_path / "bad.pth", variant="S")


def test_student_onnx_export_matches_torch(tmp_path):
    import torch

    from vidfiqa.backbones.preprocess import IMAGENET
    from vidfiqa.quality.ediffiqa import EDifFIQA, build_model, export_onnx

    model = build_model("T").eval()
    model.base_model.load_state_dict(torch.load(need(MOBILEFACENET_PT), map_location="cpu", weights_only=True))
    path = export_onnx(model, tmp_path / "student.onnx")
    crops, _ = _glint_crops(2, 3)
    q, e = EDifFIQA(onnx=path).score_and_embed(crops)
    with torch.no_grad():
        e_ref, q_ref = model(torch.from_numpy(IMAGENET(crops)))
    assert np.abs(q - q_ref.numpy()).max() < 1e-4 and np.abs(e - e_ref.numpy()).max() < 1e-4


# ------------------------------------------------------------------------------- training loop
def test_training_learns_labels_keeps_embeddings_and_resumes(tmp_path, shared_models, mfn_onnx):
    import torch

    from vidfiqa.backbones.preprocess import IMAGENET
    from vidfiqa.train.ediffiqa import TrainConfig, TrainData, predict, train

    crops, names = _glint_crops(4, 8)
    rng = np.random.default_rng(0)
    # Half the crops heavily blurred, labelled low; clean ones labelled high.
    blurred = np.array([degrade.apply(c, "blur;sigma=4") for c in crops])
    x = np.concatenate([crops, blurred])
    labels = np.r_[np.full(len(crops), 0.9), np.full(len(crops), 0.1)].astype(np.float32)
    emb = mfn_onnx
    data = TrainData(x, emb.embed(x), emb.embed(np.ascontiguousarray(x[:, :, ::-1])), labels, np.ones(len(x), np.float32))
    init = torch.load(shared_models / "mobilefacenet_foamliu.pt", map_location="cpu", weights_only=True)
    config = TrainConfig(epochs=6, batch_size=16, lr_head=3e-3, seed=int(rng.integers(100)))
    model, history = train(data, IMAGENET, init, tmp_path / "run", config, dev=data, log=lambda m: None)
    assert history[-1]["l1"] < 0.5 * history[0]["l1"] and history[-1]["dev_spearman"] > 0.5
    assert history[-1]["dev_consistency"] > 0.95  # the embedding still agrees with the FR model
    q, _ = predict(model, IMAGENET, x)
    assert q[: len(crops)].mean() > q[len(crops) :].mean()
    # Resume: a seventh epoch continues from the saved state instead of starting over.
    config7 = TrainConfig(**{**config.__dict__, "epochs": 7})
    _, history7 = train(data, IMAGENET, init, tmp_path / "run", config7, dev=data, log=lambda m: None)
    assert len(history7) == 7 and history7[:6] == history


def test_cli_trains_variant_s_on_its_own_512_d_targets(tmp_path):
    """`vidfiqa train ediffiqa --variant S` used to fail (the consistency targets were always
    MobileFaceNet's 128-d embeddings against iresnet18's 512).  A few steps from random iresnet18
    weights: the targets come from that backbone, training runs on the device asked for, and the
    exported student gives 512-d embeddings."""
    import csv
    import json

    import torch
    from click.testing import CliRunner

    from vidfiqa.backbones.registry import get_spec
    from vidfiqa.commands.train_ediffiqa import ediffiqa
    from vidfiqa.quality.ediffiqa import EDifFIQA
    from vidfiqa.train.cropset import CropSet

    crops, names = _glint_crops(4, 3)
    cropset = CropSet()
    for i, (crop, name) in enumerate(zip(crops, names)):
        cropset.add(f"glint24_aligned/{name}/{i}.png#0", crop, name, float("nan"), float("nan"))
    cropset.save(tmp_path / "cs.npz")
    with open(tmp_path / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "identity", "split", "embedding_norm"])
        for i, (key, name) in enumerate(zip(cropset.keys, names)):
            writer.writerow([key, name, "dev" if name == names[-1] else "train", 10 + i])
    torch.manual_seed(0)
    builder = get_spec("iresnet18").builder
    assert builder is not None
    torch.save(builder().state_dict(), tmp_path / "r18.pth")
    out = tmp_path / "run"
    result = CliRunner().invoke(ediffiqa, ["--cropset", str(tmp_path / "cs.npz"), "--labels", str(tmp_path / "labels.csv"), "--variant", "S",
                                           "--init-weights", str(tmp_path / "r18.pth"), "--epochs", "1", "--batch-size", "4", "--device", "cpu", "-o", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    meta = json.loads((out / "model.json").read_text())
    assert meta["embedding_dim"] == 512 and meta["history"][0]["device"] == "cpu" and np.isfinite(meta["history"][0]["loss"])
    assert list(tmp_path.glob("cs_iresnet18_*_embeddings.npz")), "the 512-d targets are cached beside the crop set"
    q, e = EDifFIQA(onnx=out / "model.onnx").score_and_embed(crops[:2])
    assert e.shape == (2, 512) and np.isfinite(q).all()
    if not torch.cuda.is_available():
        refused = CliRunner().invoke(ediffiqa, ["--cropset", str(tmp_path / "cs.npz"), "--labels", str(tmp_path / "labels.csv"), "--device", "cuda",
                                                "-o", str(tmp_path / "gpu")])
        assert refused.exit_code != 0 and "cuda" in str(refused.exception).lower()


def test_monotone_labels_put_every_degraded_copy_below_its_source():
    """On the committed crop-set v2 labels: with a margin, no degraded copy keeps a label above
    its clean source's minus the margin; clean crops and copies already below are untouched."""
    from pathlib import Path

    from vidfiqa.commands.train_ediffiqa import load_labels, monotone_labels, teacher_label

    table = load_labels(Path(__file__).resolve().parents[2] / "training" / "labels" / "candidates_v2.csv")
    keys = np.array(list(table))
    label = teacher_label([table[k] for k in keys], "embedding_norm+certainty_ratio")
    out = monotone_labels(keys, label, 0.1)
    row = {k: i for i, k in enumerate(keys)}
    copies = [i for i, k in enumerate(keys) if "|" in k and k.split("|")[0] in row]
    sources = np.array([row[keys[i].split("|")[0]] for i in copies])
    assert len(copies) > 10_000
    assert np.all(out[copies] <= np.maximum(label[sources] - 0.1, 0) + 1e-6)
    clean = np.array(["|" not in k for k in keys])
    assert np.array_equal(out[clean], np.clip(label[clean], 0, 1))
    untouched = np.array(copies)[label[copies] <= label[sources] - 0.1]
    assert untouched.size and np.allclose(out[untouched], label[untouched])
    # The teacher marks JPEG copies down far less than blur: the margin is what moves them most.
    kind = np.array([k.split("|")[1].split(";")[0] if "|" in k else "" for k in keys])
    moved = label - out
    assert moved[kind == "jpeg"].mean() > moved[kind == "motion_blur"].mean()
