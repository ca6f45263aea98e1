"""DifFIQA: UNet layout vs the authors' checkpoint, the diffusion maths, training/resume, scorer, CLI.

Models here are the tiny config (~0.1 M weights) so the whole file stays well under a minute and a
half on a busy 2-core CPU; the 143 M-parameter authors' UNet is only ever built on the meta device.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import DATA, MOBILEFACENET_PT, need
from vidfiqa.diffusion import (
    AUTHORS_CONFIG,
    SCHEDULE_BUFFERS,
    SMALL_CONFIG,
    TINY_CONFIG,
    GaussianDiffusion,
    TrainSettings,
    UNet,
    authors_checkpoint,
    check_authors_state,
    count_parameters,
    cosine_beta_schedule,
    ddim_time_pairs,
    diffusion_from_checkpoint,
    load_diffusion,
    read_checkpoint,
    reconstruction_psnr,
    train_ddpm,
)
from vidfiqa.errors import WeightsError

GLINT = DATA / "glint24_aligned"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These models are tiny: on a shared 2-core machine OpenMP's second thread mostly waits for
    the other processes (measured 10x slower with 2 threads), so use one and restore after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def glint_crops() -> np.ndarray:
    """64 aligned 112x112 RGB crops from a few identities of ../shared (never copied into the repo)."""
    import cv2

    root = need(GLINT)
    paths = sorted(root.glob("*/*.png"))[::20][:64]
    return np.stack([cv2.imread(str(p))[..., ::-1] for p in paths])


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, glint_crops):
    """A tiny model trained for a few dozen steps (shared by the training and scorer tests)."""
    out = tmp_path_factory.mktemp("ddpm") / "tiny.pt"
    settings = TrainSettings(config=TINY_CONFIG, steps=16, batch_size=2, lr=3e-3, warmup=0, checkpoint_every=16, holdout=8, log_every=0)
    result = train_ddpm(glint_crops, out, settings, log=lambda _: None)
    return out, result


# ------------------------------------------------------------------------------ UNet layout
# Keys and shapes of the authors' diff_pretrain.pt 'model' entry (GaussianDiffusion state of the
# dim=128, mults (1, 2, 4, 8) UNet), spot-checked independently of our module tree.
AUTHORS_KEYS = {
    "model.init_conv.weight": (128, 3, 7, 7),
    "model.time_mlp.1.weight": (512, 128),
    "model.time_mlp.3.weight": (512, 512),
    "model.downs.0.0.mlp.1.weight": (256, 512),
    "model.downs.0.0.block1.proj.weight": (128, 128, 3, 3),
    "model.downs.0.0.block1.norm.weight": (128,),
    "model.downs.0.2.fn.fn.to_qkv.weight": (384, 128, 1, 1),
    "model.downs.0.2.fn.fn.to_out.0.weight": (128, 128, 1, 1),
    "model.downs.0.2.fn.fn.to_out.1.g": (1, 128, 1, 1),
    "model.downs.0.2.fn.norm.g": (1, 128, 1, 1),
    "model.downs.0.3.weight": (128, 128, 4, 4),
    "model.downs.2.3.weight": (512, 256, 4, 4),
    "model.downs.3.3.weight": (1024, 512, 3, 3),
    "model.mid_block1.block2.proj.weight": (1024, 1024, 3, 3),
    "model.mid_attn.fn.fn.to_qkv.weight": (384, 1024, 1, 1),
    "model.mid_attn.fn.fn.to_out.weight": (1024, 128, 1, 1),
    "model.ups.0.0.block1.proj.weight": (1024, 1536, 3, 3),
    "model.ups.0.0.res_conv.weight": (1024, 1536, 1, 1),
    "model.ups.0.3.1.weight": (512, 1024, 3, 3),
    "model.ups.3.3.weight": (128, 128, 3, 3),
    "model.final_res_block.res_conv.weight": (128, 256, 1, 1),
    "model.final_conv.weight": (3, 128, 1, 1),
    "betas": (1000,),
    "p2_loss_weight": (1000,),
}


def _meta_authors_diffusion() -> GaussianDiffusion:
    with torch.device("meta"):
        unet = UNet(AUTHORS_CONFIG)
    return GaussianDiffusion(unet)


def test_authors_unet_layout_on_meta_device():
    diffusion = _meta_authors_diffusion()
    state = diffusion.state_dict()
    assert count_parameters(diffusion.model) == 142_872_835  # "about 143 M" in the notes
    for key, shape in AUTHORS_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    assert set(SCHEDULE_BUFFERS) <= set(state)
    assert len([k for k in state if k.startswith("model.")]) == 276


def test_authors_checkpoint_dict_round_trip():
    diffusion = _meta_authors_diffusion()
    ckpt = authors_checkpoint(diffusion, step=7)
    assert {"model", "ema", "opt", "step"} <= set(ckpt)
    check_authors_state(diffusion, ckpt["model"])  # exact keys and shapes: no exception
    broken = dict(ckpt["model"])
    broken.pop("model.mid_attn.fn.fn.to_out.bias")
    broken["model.extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match="1 missing.*1 unexpected"):
        check_authors_state(diffusion, broken)
    # The SMALL UNet is not the authors' architecture: strict checking says so.
    with torch.device("meta"):
        small = GaussianDiffusion(UNet(SMALL_CONFIG))
    with pytest.raises(WeightsError, match="wrong shape"):
        check_authors_state(small, ckpt["model"])


def test_authors_format_loads_strictly_into_the_model(tmp_path):
    """Full load path (real tensors, through a file) with the tiny architecture standing in for
    the 143 M one."""
    torch.manual_seed(0)
    src = GaussianDiffusion(UNet(TINY_CONFIG))
    ckpt = authors_checkpoint(src, step=3)
    torch.save(ckpt, tmp_path / "diff_pretrain.pt")
    loaded = load_diffusion(tmp_path / "diff_pretrain.pt", config=TINY_CONFIG)
    for key, value in src.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(WeightsError, match="small config"):  # right format, wrong architecture
        load_diffusion(tmp_path / "diff_pretrain.pt", config=SMALL_CONFIG)
    ckpt["model"]["betas"] = torch.linspace(1e-4, 0.02, 1000)  # a linear schedule is not DifFIQA's
    with pytest.raises(WeightsError, match="cosine"):
        diffusion_from_checkpoint(ckpt, config=TINY_CONFIG)


# ------------------------------------------------------------------------------ diffusion maths
def test_cosine_schedule_matches_closed_form():
    T, s = 1000, 0.008
    diffusion = GaussianDiffusion(UNet(TINY_CONFIG))
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 1, 5, 50, 100, 500):
        # alpha_bar after step t (index t) is f(t + 1) / f(0) while no beta was clipped.
        assert diffusion.alphas_cumprod[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-5)
    betas = cosine_beta_schedule(T)
    assert betas.dtype == torch.float64 and betas.max().item() == pytest.approx(0.999)
    assert torch.all(betas[1:] >= betas[:-1])
    assert torch.allclose(diffusion.p2_loss_weight, torch.ones(T))


def test_q_sample_at_t0_is_nearly_identity():
    diffusion = GaussianDiffusion(UNet(TINY_CONFIG))
    x0 = torch.rand(2, 3, 112, 112) * 2 - 1
    noise = torch.randn_like(x0)
    x_t = diffusion.q_sample(x0, 0, noise)
    assert (x_t - x0).abs().max().item() < 0.05  # sqrt(1 - alpha_bar_0) ~ 0.006
    # Without noise only the scale sqrt(alpha_bar_0) = 1 - 2e-5 is left.
    assert torch.allclose(diffusion.q_sample(x0, torch.tensor([0, 0]), torch.zeros_like(x0)), x0, atol=1e-4)


def test_ddim_schedule_and_oracle_reconstruction():
    assert ddim_time_pairs(5) == [(4, 3), (3, 2), (2, 1), (1, 0), (0, 0), (0, -1)]

    class Oracle(torch.nn.Module):
        """Returns the true x0 whatever it is given; records the timesteps it saw."""

        def __init__(self, x0):
            super().__init__()
            self.x0, self.seen = x0, []
            self.anchor = torch.nn.Parameter(torch.zeros(1))
            self.config = TINY_CONFIG

        def forward(self, x, t):
            self.seen.append(int(t[0]))
            return self.x0

    x0 = torch.rand(3, 3, 112, 112) * 2 - 1
    oracle = Oracle(x0)
    diffusion = GaussianDiffusion(oracle)
    x_t = diffusion.q_sample(x0, 5, torch.randn_like(x0))
    for eta in (0.0, 1.0):
        oracle.seen.clear()
        out = diffusion.reconstruct(x_t, 5, eta=eta, generator=torch.Generator().manual_seed(1))
        assert torch.allclose(out, x0, atol=1e-6)
        assert oracle.seen == [4, 3, 2, 1, 0]  # the (0, 0) pair needs no network call


# ------------------------------------------------------------------------------ training
def test_tiny_training_decreases_loss(tiny_checkpoint):
    out, result = tiny_checkpoint
    assert result.step == 16 and len(result.losses) == 16
    assert np.mean(result.losses[-4:]) < 0.7 * np.mean(result.losses[:4])
    ckpt = read_checkpoint(out)
    assert ckpt["format"] == "vidfiqa-ddpm" and ckpt["step"] == 16 and ckpt["opt"] is not None
    assert set(ckpt["data"]["holdout"]).isdisjoint(set(range(64)) - set(ckpt["data"]["holdout"]))
    stats = reconstruction_psnr(load_diffusion(out), np.zeros((1, 112, 112, 3), np.uint8) + 128, t=2)
    assert np.isfinite(stats["psnr"]) and stats["psnr_noisy_input"] > 30


def test_resume_gives_identical_state(tmp_path, glint_crops):
    crops = glint_crops[:16]
    base = dict(config=TINY_CONFIG, batch_size=1, lr=1e-3, warmup=2, holdout=4, log_every=0, checkpoint_every=100)
    straight = train_ddpm(crops, tmp_path / "a.pt", TrainSettings(steps=4, **base), log=lambda _: None)
    train_ddpm(crops, tmp_path / "b.pt", TrainSettings(steps=2, **base), log=lambda _: None)
    resumed = train_ddpm(crops, tmp_path / "b.pt", TrainSettings(steps=4, **base), resume=True, log=lambda _: None)
    assert resumed.step == 4
    assert resumed.losses == straight.losses
    a, b = read_checkpoint(tmp_path / "a.pt"), read_checkpoint(tmp_path / "b.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert torch.equal(a["rng"], b["rng"])
    with pytest.raises(Exception, match="--resume"):
        train_ddpm(crops, tmp_path / "a.pt", TrainSettings(steps=1, **base), log=lambda _: None)


# ------------------------------------------------------------------------------ the scorer
def test_diffiqa_scores_are_deterministic_and_bounded(tiny_checkpoint, glint_crops):
    from vidfiqa.quality import make_scorer

    out, _ = tiny_checkpoint
    weights = need(MOBILEFACENET_PT)
    crops = glint_crops[[0, 40]]
    scorer = make_scorer("diffiqa", diffusion=out, weights=weights, repeats=1, seed=3)
    q = scorer.score(crops)
    assert q.shape == (2,) and q.dtype == np.float32
    assert np.all(q >= -1) and np.all(q <= 1)
    # Same seed, other order and other batching: the same score per face.
    other = make_scorer("diffiqa", diffusion=out, weights=weights, repeats=1, seed=3, batch_size=2)
    assert other.images_per_pass == 1
    np.testing.assert_allclose(other.score(crops[::-1])[::-1], q, atol=1e-5)
    with pytest.raises(Exception, match="unknown option"):
        make_scorer("diffiqa", diffusion=out, weights=weights, nonsense=1)


def test_diffiqa_without_a_model_is_one_line_weights_error(monkeypatch, tmp_path):
    from vidfiqa.quality import diffiqa

    monkeypatch.setattr(diffiqa, "BUNDLED_CHECKPOINT", tmp_path / "diffiqa_small.pt")
    monkeypatch.setenv("VIDFIQA_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError) as err:
        diffiqa._find_checkpoint(None, "authors")
    assert "diff_pretrain.pt" in str(err.value) and "vidfiqa train ddpm" in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------------ the CLI
def test_cli_train_ddpm_writes_a_loadable_checkpoint(tmp_path):
    from click.testing import CliRunner

    from vidfiqa.cli import cli

    folder = need(GLINT / "Barack_Obama")
    out, export = tmp_path / "ckpt.pt", tmp_path / "export.pt"
    args = ["train", "ddpm", str(folder), "--aligned", "--config", "tiny", "-o", str(out), "--steps", "2", "--batch-size", "2",
            "--checkpoint-every", "1", "--holdout", "2", "--eval-crops", "1", "--eval-t", "2", "--export", str(export)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "held-out PSNR at t=2" in result.output
    diffusion = load_diffusion(out)
    assert diffusion.config == TINY_CONFIG
    ckpt = read_checkpoint(export)
    assert ckpt["opt"] is None and next(iter(ckpt["model"].values())).dtype == torch.float16
    assert "t2" in ckpt["metrics"]
    load_diffusion(export)
    # Without --resume an existing checkpoint is never overwritten.
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0
