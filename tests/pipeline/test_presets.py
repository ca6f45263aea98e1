"""Presets and overrides of `vidfiqa run` settings."""

from __future__ import annotations

import pytest

from conftest import REPO
from vidfiqa.errors import ConfigError
from vidfiqa.pipeline.settings import make_settings, presets


def test_presets_and_overrides():
    assert {"default", "fast", "accurate"} <= set(presets())
    default = make_settings("default")
    assert default == make_settings(), "configs/default.toml lists the built-in defaults"
    fast = make_settings("fast", detect_every=2)
    assert fast.input_size == 480 and fast.score_every == 3 and fast.detect_every == 2
    assert make_settings("accurate").fps_cap == 0 and make_settings().stride_for(25.0) == 5 and make_settings().stride_for(30.0) == 6
    assert make_settings(stride=8).stride_for(25.0) == 8 and make_settings(fps_cap=0.0).stride_for(25.0) == 1
    assert make_settings(REPO / "configs" / "accurate.toml").top_k == 5
    with pytest.raises(ConfigError, match="unknown setting"):
        make_settings(topk=3)
    with pytest.raises(ConfigError, match="smooth_window"):
        make_settings(smooth_window=4)
    with pytest.raises(ConfigError, match="top_k: expected an int"):
        make_settings(top_k="three")
