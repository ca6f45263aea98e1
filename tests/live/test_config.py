"""Stream files: a value of the wrong type, in [stream] or [pipeline], is refused with file and key."""

from __future__ import annotations

import pytest

from vidfiqa.errors import ConfigError
from vidfiqa.live.config import load_stream

HEAD = '[stream]\nname = "cam"\nurl = "rtsp://127.0.0.1:8554/x"\n'


@pytest.mark.parametrize("text, key", [
    (HEAD + 'loop = "yes"\n', "[stream] loop"),
    (HEAD + "queue_frames = 2.5\n", "[stream] queue_frames"),
    (HEAD + '[pipeline]\nwrite_series = "yes"\n', "[pipeline] write_series"),
    (HEAD + 'write_series = "yes"\n', "[pipeline] write_series"),  # a pipeline key written in [stream]
    (HEAD + '[pipeline]\ntop_k = "3"\n', "[pipeline] top_k"),
])
def test_wrong_types_are_refused_naming_file_and_key(tmp_path, text, key):
    path = tmp_path / "cam.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_stream(path)
    assert str(err.value).startswith(f"{path}: {key}: expected "), str(err.value)


def test_right_types_load(tmp_path):
    path = tmp_path / "cam.toml"
    path.write_text(HEAD + "loop = false\nfps_cap = 5\n[pipeline]\nwrite_series = false\nmin_face_size = 30\n")
    cfg = load_stream(path)
    assert cfg.loop is False and cfg.fps_cap == 5.0 and type(cfg.fps_cap) is float
    assert cfg.settings.write_series is False and cfg.settings.min_face_size == 30.0


def test_component_limits_are_stream_keys_in_either_table(tmp_path):
    """max_yaw and friends may be written in [stream] or [pipeline]; out-of-range values are
    refused naming the key."""
    path = tmp_path / "door.toml"
    path.write_text(HEAD + "max_yaw = 45\n[pipeline]\nmin_inter_eye_px = 20\n")
    settings = load_stream(path).settings
    assert settings.max_yaw == 45 and settings.min_inter_eye_px == 20 and settings.max_pitch is None
    assert settings.selection_rule().limits.max_yaw == 45
    path.write_text(HEAD + "max_pitch = 100\n")
    with pytest.raises(ConfigError, match="max_pitch must be within 0..90"):
        load_stream(path)
