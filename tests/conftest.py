"""Shared test fixtures and the rule for what a test may skip.

Where ../shared is (VIDFIQA_SHARED overrides it), the models loaded once per session for every
test that uses them, and the helpers a test calls when it needs something from outside the
repository: ``need`` (a shared file), ``need_module`` (an optional Python package),
``need_tool`` (a program on PATH), ``need_chromium``, ``need_rtsp_server``, ``need_mosquitto``.

Outside CI each such gap is a skip with its reason.  Under ``CI=true`` it is a FAILURE: a CI run
that skips the tests on real data, the page render or the RTSP camera would pass hollow.  As a
safety net, under CI any other skip (a ``skipif`` mark, a bare ``pytest.skip``, an
``importorskip``) fails too, unless it was raised with :func:`skip_anywhere` for a condition that
is no gap in the set-up (a GPU decoder being usable, say).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

# pytest imports this file as `tests.conftest` (importlib mode, see pyproject.toml); tests write
# `from conftest import ...`: both names are this one module, so its state exists once.
sys.modules.setdefault("conftest", sys.modules[__name__])

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models"
DATA = SHARED / "data"
MOBILEFACENET_PT = MODELS / "mobilefacenet_foamliu.pt"
MOBILEFACENET_ONNX = MODELS / "mobilefacenet_foamliu.onnx"
YUNET_ONNX = MODELS / "face_detection_yunet_2026may.onnx"
GLINT = DATA / "glint24_aligned"
SYSTEM_PYTHON = "/usr/bin/python3"  # the interpreter with Debian's GStreamer bindings

#: True when the suite runs in CI (the CI sets CI=true): missing set-up fails instead of skipping.
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


# ----------------------------------------------------------------------------- skip or fail
def _skip(reason: str, allowed_in_ci: bool = False):
    # Reported at the test's own location, not at this helper's line.
    exc = pytest.skip.Exception(reason, _use_item_location=True)
    exc.allowed_in_ci = allowed_in_ci
    raise exc


def skip_anywhere(reason: str):
    """Skip, in CI as well: for a condition that is not a gap in the set-up (a GPU is there)."""
    _skip(reason, allowed_in_ci=True)


def missing(reason: str):
    """The calling test cannot run here: skip with ``reason``, or fail under CI=true."""
    if IN_CI:
        pytest.fail(f"CI=true, so this is a failure, not a skip: {reason}", pytrace=False)
    _skip(reason)


def need(path: Path) -> Path:
    """``path`` (shared test data or a model) must exist; skip or, under CI=true, fail if not."""
    path = Path(path)
    if not path.exists():
        missing(f"needs ../shared test data: {path} is absent (set VIDFIQA_SHARED to its folder)")
    return path


def need_module(name: str, reason: str | None = None):
    """``pytest.importorskip`` that fails under CI=true: the imported module."""
    try:
        return __import__(name, fromlist=["_"])
    except ImportError as exc:
        error = str(exc)
    missing(f"needs the Python package {name} ({reason or error})")


def need_tool(name: str, hint: str) -> str:
    """The program ``name`` on PATH (its path); ``hint`` says how to install it."""
    path = shutil.which(name)
    if path is None:
        missing(f"needs {name} on PATH ({hint})")
    return path


def need_chromium() -> str:
    """Headless Chromium, which renders the gallery page."""
    return need_tool("chromium", "Debian's chromium package; .ci/run installs it")


@functools.cache
def rtsp_server_available() -> bool:
    """Whether /usr/bin/python3 has GStreamer's RTSP server (what tests/support/rtsp_server.py needs)."""
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


def need_rtsp_server() -> str:
    """The system Python that can run tests/support/rtsp_server.py."""
    if not rtsp_server_available():
        missing("needs GStreamer's RTSP server for /usr/bin/python3 (Debian: python3-gi gir1.2-gst-rtsp-server-1.0 "
                "gstreamer1.0-rtsp gstreamer1.0-plugins-{base,good,bad}; .ci/run installs them)")
    return SYSTEM_PYTHON


def need_mosquitto() -> str:
    """The mosquitto MQTT broker (for tests of MQTT output)."""
    return need_tool("mosquitto", "Debian's mosquitto package")


@pytest.fixture(scope="session")
def chromium() -> str:
    return need_chromium()


@pytest.fixture(scope="session")
def rtsp_python() -> str:
    return need_rtsp_server()


@pytest.fixture(scope="session")
def mosquitto() -> str:
    return need_mosquitto()


def _ci_failure(report, excinfo) -> None:
    """Under CI=true, turn a skip that was not raised by skip_anywhere into a failure."""
    if not IN_CI or not report.skipped or hasattr(report, "wasxfail"):
        return
    if excinfo is not None and getattr(excinfo.value, "allowed_in_ci", False):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"CI=true, so a skip is a failure (use conftest.skip_anywhere for a legitimate one): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _ci_failure(outcome.get_result(), call.excinfo)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped:  # a module-level importorskip or skip
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI=true, so a skipped module is a failure: {reason}"


# ----------------------------------------------------------------------------- shared data
@pytest.fixture(scope="session")
def shared_models() -> Path:
    return need(MODELS)


@pytest.fixture
def weights_env(monkeypatch, shared_models):
    """Point VIDFIQA_WEIGHTS at ../shared/models, the way a user points it at their weights."""
    monkeypatch.setenv("VIDFIQA_WEIGHTS", str(shared_models))
    return shared_models


@pytest.fixture(scope="session")
def astronaut():
    skimage_data = need_module("skimage.data", "scikit-image is a test dependency")
    return skimage_data.astronaut()  # RGB uint8, public domain (NASA)


# ----------------------------------------------------------------------------- models, loaded once
# Each is stateless once built (or the tests that change a setting restore it), so one instance
# serves the whole session instead of one per module or per test.
@pytest.fixture(scope="session")
def retinaface():
    """The default RetinaFace detector."""
    from vidfiqa.detect import RetinaFaceDetector

    return RetinaFaceDetector()


@pytest.fixture(scope="session")
def mfn_torch():
    """MobileFaceNet (../shared weights), PyTorch backend."""
    from vidfiqa.embed import TorchEmbedder

    return TorchEmbedder("mobilefacenet", weights=need(MOBILEFACENET_PT))


@pytest.fixture(scope="session")
def mfn_onnx():
    """MobileFaceNet (../shared weights), exported once to ONNX and run with onnxruntime."""
    from vidfiqa.embed import make_embedder

    return make_embedder("mobilefacenet", weights=need(MOBILEFACENET_PT), backend="onnx")


@pytest.fixture(scope="session")
def student():
    """The bundled eDifFIQA student (its ONNX file ships with the package)."""
    from vidfiqa.quality.ediffiqa import BUNDLED_ONNX, EDifFIQA

    if not BUNDLED_ONNX.is_file():
        missing(f"bundled student {BUNDLED_ONNX.name} not in this checkout")
    return EDifFIQA()


def wait_for(condition, timeout: float, step: float = 0.2) -> bool:
    """Poll ``condition()`` until it is true (True) or ``timeout`` seconds pass (False)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def events_of(out: Path) -> list[dict]:
    """The events a watch wrote to ``out/events.jsonl`` so far."""
    import json

    path = out / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class LogLines:
    """A stream for ``Logger`` that keeps every line written in ``lines`` (a list of one's own)."""

    def __init__(self, lines: list | None = None):
        self.lines = [] if lines is None else lines

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def small_disk(path: Path, kilobytes: int, read_only: bool = False):
    """A real tmpfs of ``kilobytes`` at ``path`` (yields True), or nothing (False) where this
    machine does not let us mount one (not root, no mount namespace)."""
    path.mkdir()
    mounted = shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k,mode=0777", "tmpfs", str(path)], capture_output=True).returncode == 0
    if mounted and read_only:
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


# ----------------------------------------------------------------------------- live cameras
# The GStreamer RTSP test server and a `vidfiqa watch` process, shared by the camera tests
# (tests/live/).
SERVER = REPO / "tests" / "support" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def gst_available() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


needs_rtsp = pytest.mark.skipif(not gst_available(), reason="needs GStreamer's RTSP server for /usr/bin/python3 (Debian: python3-gi "
                                "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,bad}; .ci/run installs them)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    def __init__(self, clip: Path, port: int, main: Path | None = None):
        self.clip, self.port, self.main, self.process = clip, port, main, None

    @property
    def url(self) -> str:
        return f"rtsp://viewer:hunter2@127.0.0.1:{self.port}/cam"

    @property
    def main_url(self) -> str:
        return f"rtsp://viewer:hunter2@127.0.0.1:{self.port}/main"

    def start(self) -> "RtspServer":
        extra = [str(self.main)] if self.main is not None else []
        self.process = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), str(self.clip), str(self.port), *extra], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)


def signalled_watch(streams: Path | list[Path], out: Path, signals: list[signal.Signals], seen_s: float) -> tuple[int, str, float]:
    """`vidfiqa watch STREAMS` in a process of its own, sent ``signals`` (50 ms apart) once a
    camera has been connected ``seen_s`` seconds; returns its exit code, its log and the seconds
    from the first signal to its exit."""
    paths = streams if isinstance(streams, list) else [streams]
    process = subprocess.Popen([sys.executable, "-m", "vidfiqa.cli", "watch", *map(str, paths), "-o", str(out), "--no-metrics", "--log-format", "json"],
                               stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            lines.append(line)
            if '"connected"' in line:
                break
        time.sleep(seen_s)
        signalled = time.monotonic()
        for k, sig in enumerate(signals):
            if k:
                time.sleep(0.05)
            process.send_signal(sig)
        _, rest = process.communicate(timeout=60)
        stop_s = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, "".join(lines) + rest, stop_s


class Broker:
    """Debian's mosquitto on 127.0.0.1:``port``, anonymous, no persistence (a restart forgets
    every session and retained message: only the publisher's own queue can bridge it)."""

    def __init__(self, binary: str, port: int, folder: Path, accept_clients: bool = True):
        """``accept_clients`` False: every client is refused as not authorised (as with a wrong password)."""
        self.binary, self.port, self.conf, self.process = binary, port, folder / "mosquitto.conf", None
        access = f"allow_anonymous {'true' if accept_clients else 'false'}\n"
        self.conf.write_text(f"listener {port} 127.0.0.1\n{access}persistence false\n")

    def start(self) -> "Broker":
        self.process = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(self._listening, 10, step=0.05), "mosquitto did not start"
        return self

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def mqtt_listener(port: int, topic: str = "vidfiqa/#") -> tuple:
    """A real MQTT client subscribed to ``topic``; returns (client, received list of (topic, payload, retain))."""
    import paho.mqtt.client as mqtt

    received: list = []
    ready = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, u, f, rc, p=None: (c.subscribe(topic, qos=1), ready.set())
    client.on_message = lambda c, u, m: received.append((m.topic, m.payload, m.retain))
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert ready.wait(10)
    time.sleep(0.3)  # the SUBACK
    return client, received


# ----------------------------------------------------------------------------- two-stream cameras
STREET_CROWD = DATA / "videos" / "facenetpytorch_street_crowd.mp4"  # 1920x1080, 25 fps, several people


def street_crowd_camera(out: Path, width: int, height: int, repeats: int = 1, skip: int = 0, frames: int | None = None,
                        crf: int = 20) -> Path:
    """The street crowd as an IP camera sends it (H.264, no B-frames, a keyframe every 2 s) at
    ``width`` x ``height``: from its ``skip``-th frame, ``frames`` of them (all: None), played
    ``repeats`` times over.  The same pictures at two sizes are one camera's two streams."""
    import av

    with av.open(str(need(STREET_CROWD))) as src:
        pictures = [f.reformat(width=width, height=height, format="yuv420p").to_ndarray() for f in src.decode(video=0)]
    pictures = pictures[skip:] if frames is None else pictures[skip:skip + frames]
    with av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": "veryfast", "x264-params": "bframes=0:keyint=50"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(repeats):
            for yuv in pictures:
                for packet in stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
                    dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out

