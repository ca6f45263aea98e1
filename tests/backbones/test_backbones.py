"""Face recognition backbones: layouts, weight handling, ONNX parity, embedding quality, dlib."""

from __future__ import annotations

import os
import sys
from itertools import combinations

import numpy as np
import pytest
import torch

from conftest import DATA, MOBILEFACENET_ONNX, MOBILEFACENET_PT, need, need_module
from vidfiqa.backbones import (
    ARCFACE,
    IMAGENET,
    REGISTRY,
    Preprocessing,
    available_models,
    export_onnx,
    get_spec,
    iresnet18,
    iresnet50,
    iresnet100,
    load_backbone,
    sha256_file,
)
from vidfiqa.embed import OnnxEmbedder, TorchEmbedder, cosine_similarity, make_embedder
from vidfiqa.errors import ConfigError, WeightsError
from vidfiqa.faces import Faces

GLINT = DATA / "glint24_aligned"
MFN_SHA256 = "90a00ba1d8b0b688af3deb731ed53dca582e6106805d1bc3cfdef55f570493f4"


def _read_rgb(path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def glint() -> dict[str, np.ndarray]:
    """A few identities, 4 aligned 112x112 RGB crops each: name -> uint8 (4, 112, 112, 3)."""
    need(GLINT)
    out = {}
    for folder in sorted(p for p in GLINT.iterdir() if p.is_dir())[:5]:
        files = sorted(folder.glob("*.png"), key=lambda p: int(p.stem))[:4]
        out[folder.name] = np.stack([_read_rgb(f) for f in files])
    assert len(out) == 5 and all(v.shape == (4, 112, 112, 3) for v in out.values())
    return out


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


# ----------------------------------------------------------------------------- preprocessing
def test_preprocessing_formulas():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    x = IMAGENET(crops)
    assert x.dtype == np.float32 and x.shape == (3, 3, 112, 112)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = ((crops / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(x, expected, atol=1e-5)
    y = ARCFACE(np.array([[[[0, 255, 128]]]], np.uint8).repeat(112, 1).repeat(112, 2))
    np.testing.assert_allclose(y[0, :, 0, 0], [-1.0, 1.0, 128 / 127.5 - 1], atol=1e-6)
    bgr = Preprocessing(ARCFACE.mean, ARCFACE.std, channel_order="BGR")(crops)
    np.testing.assert_allclose(bgr, ARCFACE(crops)[:, ::-1], atol=1e-6)
    # Other crop sizes are resized to the model's input size.
    assert ARCFACE(crops[:, :96, :96]).shape == (3, 3, 112, 112)


# ----------------------------------------------------------------------------- MobileFaceNet
def test_mobilefacenet_loads_strict_and_matches_reference_onnx(glint):
    ort = need_module("onnxruntime")
    model = load_backbone("mobilefacenet", weights=need(MOBILEFACENET_PT))
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == 999_936
    assert len(model.state_dict()) == 307
    # The same weights, exported by someone else: settles every layout detail numerically.
    session = ort.InferenceSession(str(need(MOBILEFACENET_ONNX)), providers=["CPUExecutionProvider"])
    crops = np.concatenate([faces[:2] for faces in glint.values()])  # 10 real faces
    x = IMAGENET(crops)
    reference = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.inference_mode():
        ours = model(torch.from_numpy(x)).numpy()
    assert ours.shape == reference.shape == (10, 128)
    assert np.abs(reference).max() > 1.0  # a real signal, so the tolerance below means something
    assert np.abs(ours - reference).max() < 1e-4


def test_genuine_cosine_clearly_above_impostor(glint, mfn_torch):
    embeddings = {name: mfn_torch.embed(crops) for name, crops in glint.items()}
    genuine = [
        cosine_similarity(e[i], e[j]) for e in embeddings.values() for i, j in combinations(range(len(e)), 2)
    ]
    impostor = [
        cosine_similarity(embeddings[a][k], embeddings[b][k])
        for a, b in combinations(embeddings, 2)
        for k in range(2)
    ]
    assert np.mean(genuine) - np.mean(impostor) > 0.3, (np.mean(genuine), np.mean(impostor))
    assert np.mean(genuine) > 0.4 and np.mean(impostor) < 0.25


# ----------------------------------------------------------------------------- Embedder stage
def test_embedder_fills_faces_batched_and_empty(glint, mfn_torch):
    crops = np.concatenate(list(glint.values()))[:5]
    faces = Faces.create(np.tile([0, 0, 112, 112], (5, 1)), np.zeros((5, 5, 2)), np.ones(5), crops=crops)
    out = mfn_torch(faces)
    assert faces.embeddings is None  # the input record is not mutated
    assert out.embeddings.shape == (5, 128) and out.embeddings.dtype == np.float32
    mfn_torch.batch_size = 2  # 3 batches of 2, 2, 1 must give the same rows
    try:
        np.testing.assert_allclose(mfn_torch.embed(crops), out.embeddings, atol=1e-4)
    finally:
        mfn_torch.batch_size = 64
    empty = mfn_torch(Faces.empty())
    assert empty.embeddings.shape == (0, 128)
    with pytest.raises(ValueError, match="alignment"):
        mfn_torch(faces.replace(crops=None))


def test_cosine_similarity_rowwise():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    b = np.array([[2.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])
    np.testing.assert_allclose(cosine_similarity(a, b), [1.0, 0.0, -1.0], atol=1e-6)


# ----------------------------------------------------------------------------- ONNX export
def test_mobilefacenet_onnx_backend_matches_torch(glint, mfn_torch, tmp_path):
    crops = np.concatenate([faces[:1] for faces in glint.values()])
    onnx_embedder = make_embedder("mobilefacenet", weights=MOBILEFACENET_PT, backend="onnx", device="cpu", cache_dir=tmp_path)
    assert isinstance(onnx_embedder, OnnxEmbedder)
    assert onnx_embedder.providers == ["CPUExecutionProvider"] and onnx_embedder.embedding_dim == 128
    cached = list(tmp_path.glob("*.onnx"))
    assert [p.name for p in cached] == [f"mobilefacenet-{MFN_SHA256[:16]}-opset17.onnx"]
    np.testing.assert_array_less(np.abs(onnx_embedder.embed(crops) - mfn_torch.embed(crops)), 1e-4)
    # A second request reuses the cached export instead of writing it again.
    mtime = cached[0].stat().st_mtime_ns
    make_embedder("mobilefacenet", weights=MOBILEFACENET_PT, backend="onnx", cache_dir=tmp_path)
    assert cached[0].stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob("*.tmp"))  # atomic write left no temporary file


def _randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Scale-preserving random weights and non-trivial BN statistics, so outputs are O(1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / fan_in**0.5)
            elif isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            elif isinstance(m, torch.nn.PReLU):
                m.weight.copy_(0.25 * torch.rand(m.weight.shape, generator=gen))
    return model.eval()


def test_iresnet18_onnx_export_matches_torch(glint, tmp_path):
    model = _randomise(iresnet18())
    crops = np.concatenate([faces[:1] for faces in glint.values()])  # batch 5: the axis is dynamic
    # Calibrate every BatchNorm on these inputs, as training would: activations stay O(1) all
    # the way through, so an absolute tolerance of 1e-4 is neither trivial nor unfairly tight.
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(ARCFACE(crops)))
    model.eval()
    path = export_onnx(model, tmp_path / "r18.onnx")
    assert path.is_file() and not list(tmp_path.glob("*.tmp"))
    torch_embedder = TorchEmbedder.from_module(model, ARCFACE, name="r18-random")
    onnx_embedder = OnnxEmbedder(path, ARCFACE, providers=["CPUExecutionProvider"])
    assert torch_embedder.embedding_dim == onnx_embedder.embedding_dim == 512
    ours, theirs = torch_embedder.embed(crops), onnx_embedder.embed(crops)
    assert 0.5 < np.abs(ours).max() < 10
    assert np.abs(ours - theirs).max() < 1e-4


# ----------------------------------------------------------------------------- IResNet layout
def test_iresnet_parameter_counts():
    # insightface's published sizes: r50 43.6 M parameters (166 MiB fp32), r100 65.2 M (249 MiB).
    r50, r100 = iresnet50(), iresnet100()
    assert [len(getattr(r50, f"layer{i}")) for i in range(1, 5)] == [3, 4, 14, 3]
    assert [len(getattr(r100, f"layer{i}")) for i in range(1, 5)] == [3, 13, 30, 3]
    assert abs(sum(p.numel() for p in r50.parameters()) - 43.6e6) < 0.1e6
    assert abs(sum(p.numel() for p in r100.parameters()) - 65.2e6) < 0.1e6
    assert r50.fc.in_features == 512 * 7 * 7 and r50.features.num_features == 512


@pytest.mark.parametrize("name,builder", [("iresnet18", iresnet18), ("iresnet50", iresnet50)])
def test_iresnet_state_dict_round_trip(name, builder, tmp_path):
    torch.manual_seed(0)
    state = _randomise(builder()).state_dict()
    for key in ("conv1.weight", "bn1.running_var", "prelu.weight", "layer1.0.prelu.weight", "layer1.0.bn3.weight",
                "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_mean", "bn2.weight", "fc.weight",
                "fc.bias", "features.weight", "features.running_var"):
        assert key in state, key
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)
    model = load_backbone(name, weights=path)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    # Wrapped {'state_dict': ...} checkpoints with DataParallel's 'module.' prefix load too.
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, wrapped)
    assert torch.equal(load_backbone(name, weights=wrapped).fc.weight, state["fc.weight"])
    # A directory given as --weights means <dir>/<weight_file>.
    assert torch.equal(load_backbone(name, weights=tmp_path).features.bias, state["features.bias"])


def test_iresnet_wrong_keys_and_shapes_are_one_line_errors(tmp_path):
    state = iresnet18().state_dict()
    renamed = dict(state)
    renamed["fc.weights"] = renamed.pop("fc.weight")
    torch.save(renamed, tmp_path / "renamed.pth")
    with pytest.raises(WeightsError) as exc:
        load_backbone("iresnet18", weights=tmp_path / "renamed.pth")
    msg = _one_line(exc)
    assert "missing: fc.weight" in msg and "unexpected: fc.weights" in msg
    # iresnet50 weights offered as iresnet18: mismatched layout is caught, not half-loaded.
    torch.save(state, tmp_path / "r18.pth")
    with pytest.raises(WeightsError) as exc:
        load_backbone("iresnet50", weights=tmp_path / "r18.pth")
    assert "missing" in _one_line(exc)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError) as exc:
        load_backbone("iresnet18", weights=tmp_path / "junk.pth")
    assert "cannot read" in _one_line(exc)


# ----------------------------------------------------------------------------- finding weights
def test_missing_weights_one_line_error(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("VIDFIQA_WEIGHTS", str(empty))
    with pytest.raises(WeightsError) as exc:
        load_backbone("mobilefacenet")
    msg = _one_line(exc)
    for part in ("mobilefacenet_foamliu.pt", MFN_SHA256, "VIDFIQA_WEIGHTS", "--weights"):
        assert part in msg
    with pytest.raises(WeightsError) as exc:
        load_backbone("iresnet50")
    assert "iresnet50.pth" in _one_line(exc) and "no published checksum" in str(exc.value)
    with pytest.raises(WeightsError) as exc:
        load_backbone("mobilefacenet", weights=tmp_path / "nope.pt")
    assert "nope.pt" in _one_line(exc)


def test_corrupt_weights_fail_the_checksum(tmp_path, monkeypatch):
    copy = tmp_path / "mobilefacenet_foamliu.pt"
    data = bytearray(need(MOBILEFACENET_PT).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, different content
    copy.write_bytes(bytes(data))
    monkeypatch.setenv("VIDFIQA_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError) as exc:
        load_backbone("mobilefacenet")
    msg = _one_line(exc)
    assert "sha256" in msg and MFN_SHA256 in msg and str(copy) in msg
    # check_sha256=False accepts a different file of the same layout (here it still loads).
    assert load_backbone("mobilefacenet", check_sha256=False) is not None


def test_weights_search_path_and_checksum_cache(tmp_path, monkeypatch):
    models = need(MOBILEFACENET_PT).parent
    monkeypatch.setenv("VIDFIQA_WEIGHTS", os.pathsep.join([str(tmp_path), str(models)]))
    rows = {row["name"]: row for row in available_models()}
    assert rows["mobilefacenet"]["path"] == str(MOBILEFACENET_PT) and rows["mobilefacenet"]["missing"] is None
    assert rows["iresnet100"]["path"] is None and "iresnet100.pth" in rows["iresnet100"]["missing"]
    assert set(REGISTRY) <= set(rows)
    assert sha256_file(MOBILEFACENET_PT) == MFN_SHA256
    # Cached per (path, size, mtime): a second call must not read the file again.
    monkeypatch.setattr("builtins.open", lambda *a, **k: pytest.fail("hashed the file twice"))
    assert sha256_file(MOBILEFACENET_PT) == MFN_SHA256


def test_unknown_model_lists_known_names():
    with pytest.raises(ConfigError) as exc:
        get_spec("facenet512")
    msg = _one_line(exc)
    assert "facenet512" in msg and "mobilefacenet" in msg and "iresnet50" in msg
    with pytest.raises(ConfigError):
        make_embedder("mobilefacenet", backend="tensorrt", weights=MOBILEFACENET_PT)


# ----------------------------------------------------------------------------- dlib
def test_dlib_missing_is_one_line_install_hint(monkeypatch):
    from vidfiqa.backbones.dlib_model import DlibEmbedder

    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` raise ImportError
    with pytest.raises(ConfigError) as exc:
        DlibEmbedder()
    assert 'pip install -e ".[dlib]"' in _one_line(exc)


def test_dlib_descriptors_separate_identities(glint):
    need_module("dlib", "dlib is optional: pip install -e '.[dlib]'")
    embedder = make_embedder("dlib")
    names = list(glint)[:2]
    crops = np.concatenate([glint[n][:3] for n in names])  # 2 identities x 3 images
    n = len(crops)
    # Each crop is its own frame; the box covers the whole 112x112 image.
    faces = Faces.create(np.tile([0, 0, 111, 111], (n, 1)), np.zeros((n, 5, 2)), np.ones(n), frame_index=np.arange(n))
    out = embedder(faces, frames={i: crops[i] for i in range(n)})
    e = out.embeddings
    assert e.shape == (n, 128) and e.dtype == np.float32 and np.isfinite(e).all()
    np.testing.assert_allclose(embedder.embed(crops), e, atol=1e-5)  # same boxes -> same result
    dist = np.linalg.norm(e[:, None] - e[None], axis=-1)
    same = [dist[i, j] for i, j in combinations(range(n), 2) if i // 3 == j // 3]
    different = [dist[i, j] for i in range(3) for j in range(3, 6)]
    assert np.mean(same) < np.mean(different), (np.mean(same), np.mean(different))
    assert embedder(Faces.empty(), frames={}).embeddings.shape == (0, 128)
    with pytest.raises(ValueError, match="frame"):
        embedder(faces, frames={0: crops[0]})


def test_iresnet_block_and_stem_follow_the_insightface_formula():
    """No trained iresnet weights exist here, so check the computation itself against the
    insightface definition written out with torch.nn.functional: block(x) = BN3(conv2(PReLU(BN2(
    conv1(BN1(x)))))) + downsample(x), stem = PReLU(BN(conv(x))), head = features(fc(flatten(BN2)))."""
    import torch
    import torch.nn.functional as F

    from vidfiqa.backbones import iresnet18

    torch.manual_seed(0)
    model = iresnet18().eval()
    with torch.no_grad():  # non-trivial BN statistics and PReLU slopes so every term matters
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
            if isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(0.1, 0.4)

    def bn(x, m):
        return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    def block(x, b):
        out = bn(F.conv2d(bn(x, b.bn1), b.conv1.weight, padding=1), b.bn2)
        out = F.prelu(out, b.prelu.weight)
        out = bn(F.conv2d(out, b.conv2.weight, stride=b.conv2.stride, padding=1), b.bn3)
        identity = x if b.downsample is None else bn(F.conv2d(x, b.downsample[0].weight, stride=b.downsample[0].stride), b.downsample[1])
        return out + identity

    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        h = F.prelu(bn(F.conv2d(x, model.conv1.weight, padding=1), model.bn1), model.prelu.weight)
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            for b in layer:
                h = block(h, b)
        assert h.shape == (2, 512, 7, 7)
        h = F.linear(torch.flatten(bn(h, model.bn2), 1), model.fc.weight, model.fc.bias)
        expected = bn(h, model.features)
        got = model(x)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), (got - expected).abs().max()
