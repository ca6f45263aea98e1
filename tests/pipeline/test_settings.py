"""Typed setting values: presets, keyword arguments and the command line share one strict check."""

from __future__ import annotations

import numpy as np
import pytest

from vidfiqa.config_values import coerce
from vidfiqa.errors import ConfigError
from vidfiqa.pipeline.settings import load_config, make_settings


@pytest.mark.parametrize("value, kind, expected", [
    (True, "bool", True),
    (3, "int", 3),
    (3.0, "int", 3),  # an integral float is the integer it spells
    (np.int64(3), "int", 3),
    (2, "float", 2.0),
    (0.5, "float | None", 0.5),
    (None, "float | None", None),
    (None, "str | None", None),
    ("fast", "str", "fast"),
])
def test_accepted_values(value, kind, expected):
    got = coerce(value, kind, "key")
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("value, kind", [
    ("yes", "bool"), (1, "bool"), ("true", "bool"),
    (True, "int"), (2.5, "int"), ("3", "int"),
    (False, "float"), ("0.5", "float"), (None, "float"),
    (3, "str"), (None, "str"),
])
def test_refused_values_name_the_file_and_key(value, kind):
    with pytest.raises(ConfigError) as err:
        coerce(value, kind, "some_key", where="some/file.toml")
    message = str(err.value)
    assert message.startswith("some/file.toml: some_key: expected ") and repr(value) in message and "\n" not in message


def test_a_preset_with_a_wrong_type_is_refused(tmp_path):
    for table, line, key in [("select", 'top_k = "3"', "top_k"), ("output", 'write_series = "yes"', "write_series"),
                             ("detect", "input_size = 640.5", "input_size"), ("gates", "min_quality = true", "min_quality")]:
        preset = tmp_path / f"{key}.toml"
        preset.write_text(f"[{table}]\n{line}\n")
        with pytest.raises(ConfigError) as err:
            make_settings(preset)
        assert f"{preset}: {key}: expected" in str(err.value), str(err.value)


def test_a_preset_with_an_unknown_key_names_the_file(tmp_path):
    preset = tmp_path / "typo.toml"
    preset.write_text("[select]\ntopk = 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'topk'") as err:
        load_config(preset)
    assert str(preset) in str(err.value)


def test_keyword_values_are_checked_the_same_way():
    for kwargs in ({"write_series": "yes"}, {"top_k": True}, {"top_k": 2.5}, {"min_quality": "0.3"}, {"detector": 1}):
        with pytest.raises(ConfigError, match=f"setting {next(iter(kwargs))}: expected"):
            make_settings(**kwargs)
    settings = make_settings(top_k=np.int64(4), stride=2.0, fps=24, min_quality=0)
    assert (settings.top_k, settings.stride, settings.fps, settings.min_quality) == (4, 2, 24.0, 0.0)
    assert type(settings.min_quality) is float
    assert type(settings.stride) is int and type(settings.fps) is float


def test_command_line_values_pass_the_check():
    """click types `vidfiqa run`'s options already; what it hands over must be accepted as is."""
    from vidfiqa.commands.run import run

    args = ["clip.mp4", "-o", "out", "--top-k", "4", "--min-quality", "0.2", "--no-write-series", "--fps", "25",
            "--detector", "yunet", "--quality-model", "q.onnx", "--min-face-size", "30"]
    params = run.make_context("run", args).params
    settings = make_settings(params.pop("config"), **{k: v for k, v in params.items() if k not in ("source", "output", "quiet", "main", "main_offset")})
    assert (settings.top_k, settings.min_quality, settings.write_series, settings.fps) == (4, 0.2, False, 25.0)
    assert (settings.detector, settings.quality_model, settings.min_face_size) == ("yunet", "q.onnx", 30.0)


def test_a_setting_that_is_not_a_finite_number_is_refused_everywhere(tmp_path):
    """`--fps-cap inf` ran and wrote a manifest holding `Infinity` (which browsers, JSON.parse and
    jq refuse); `--min-quality nan` ran and picked nothing.  A float setting that is NaN or
    infinite is now one line and exit 2, from the command line, a preset and a stream file alike,
    before any output is made."""
    import subprocess
    import sys

    from conftest import REPO
    from vidfiqa.live.config import load_stream

    sample = REPO / "samples" / "astronaut.mp4"
    for args in (["--fps-cap", "inf"], ["--min-quality", "nan"], ["--min-gap-s", "inf"], ["--lost-after-s", "-inf"]):
        out = tmp_path / "g"
        res = subprocess.run([sys.executable, "-m", "vidfiqa", "run", str(sample), "-o", str(out), "-q", *args],
                             capture_output=True, text=True, timeout=120)
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.returncode == 2 and len(lines) == 1 and "finite" in lines[0] and args[0][2:].replace("-", "_") in lines[0], res.stderr
        assert not out.exists(), "refused before any output"
    preset = tmp_path / "preset.toml"
    preset.write_text("[select]\nmin_gap_s = inf\n")
    with pytest.raises(ConfigError, match=r"preset.toml: min_gap_s: expected a finite number"):
        make_settings(preset)
    for text, key in (("[pipeline]\nmin_quality = nan\n", "min_quality"), ("open_timeout_s = inf\n", "open_timeout_s")):
        stream = tmp_path / "cam.toml"
        stream.write_text(f'[stream]\nname = "cam"\nurl = "rtsp://127.0.0.1:8554/x"\n{text}')
        with pytest.raises(ConfigError) as err:
            load_stream(stream)
        assert str(stream) in str(err.value) and key in str(err.value) and "finite" in str(err.value)
    with pytest.raises(ConfigError, match="finite"):
        make_settings(score_change=float("nan"))


def test_every_json_file_of_a_run_is_strict_json(tmp_path):
    """What a strict reader (a browser's JSON.parse, jq) accepts: no NaN or Infinity anywhere in
    the manifest or a track's file of a real run."""
    import json

    from conftest import REPO
    from vidfiqa.pipeline.run import VideoPipeline

    VideoPipeline(make_settings()).run(REPO / "samples" / "astronaut.mp4", tmp_path / "g")

    def refuse(constant):
        raise ValueError(f"{constant} is not strict JSON")

    files = [tmp_path / "g" / "manifest.json", *sorted((tmp_path / "g" / "tracks").glob("*/track.json"))]
    assert len(files) >= 2
    for path in files:
        json.loads(path.read_text(), parse_constant=refuse)
