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
