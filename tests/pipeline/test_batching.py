"""Cross-stream batching (pipeline/batching.py): the same tracks as unbatched analysis, fair
service, errors reach every caller; and a watch of several cameras under overload stays fair."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, need
from vidfiqa.pipeline.batching import BatchedModels, StreamBatcher
from vidfiqa.pipeline.models import Models
from vidfiqa.pipeline.processor import TrackProcessor
from vidfiqa.pipeline.settings import RunSettings
from vidfiqa.video.pyav_source import PyAVSource

CLIPS = {
    "crowd": DATA / "videos" / "facenetpytorch_street_crowd.mp4",
    "s18": DATA / "videos" / "liveportrait_s18.mp4",
    "friends": DATA / "edited_videos" / "azurevi_friends_cuts.mp4",
}


def frames_of(path: Path, stride: int, count: int) -> list:
    source = PyAVSource(str(need(path)), stride=stride)
    try:
        return [f for _, f in zip(range(count), source)]
    finally:
        source.close()


def tracks_of(models: Models, settings: RunSettings, frames: list, fps: float) -> list:
    results: list = []
    processor = TrackProcessor(models, settings, results.append, step_s=5 / fps, fps=fps, video_clock=True)
    for frame in frames:
        processor.process(frame)
    processor.finish("end_of_input")
    return results


def summary(results: list) -> list[tuple]:
    """What an event says about a track: its frames, its picks and their qualities."""
    return sorted((r.first_pts, r.last_pts, r.ended, tuple(int(i) for i in r.chosen.frame_index), tuple(np.round(r.chosen.quality, 3)))
                  for r in results)


@pytest.fixture(scope="module")
def clips():
    rates = {"crowd": 25.0, "s18": 30.0, "friends": 30.0}
    return {name: (frames_of(path, 5, 40), rates[name]) for name, path in CLIPS.items()}


def test_batched_streams_give_the_same_tracks_as_each_stream_alone(clips):
    settings = RunSettings()
    models = Models.build(settings)
    alone = {name: summary(tracks_of(models, settings, frames, fps)) for name, (frames, fps) in clips.items()}
    assert all(alone.values()), "every clip has faces to track"

    batched = BatchedModels.wrap(models, max_wait_s=0.05)
    together: dict[str, list] = {}
    errors: list[BaseException] = []

    def one(name: str) -> None:
        frames, fps = clips[name]
        batched.register()
        try:
            together[name] = summary(tracks_of(batched.models, settings, frames, fps))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            batched.unregister()

    threads = [threading.Thread(target=one, args=(name,)) for name in clips]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    batched.close()
    assert not errors, errors
    detect = batched.batchers[0]
    assert detect.requests > detect.calls, "frames of several streams shared detector calls"
    for name in clips:
        assert len(together[name]) == len(alone[name]), name
        for a, b in zip(together[name], alone[name]):
            assert a[:4] == b[:4], name  # the same tracks, ended the same way, the same frames picked
            assert np.allclose(a[4], b[4], atol=2e-3), name


def test_the_batcher_serves_every_stream_in_turn_and_bounds_the_wait():
    calls: list[int] = []

    def slow_double(payloads: list[int]) -> list[int]:
        calls.append(len(payloads))
        time.sleep(0.02)  # a model call
        return [2 * p for p in payloads]

    batcher = StreamBatcher("test", slow_double, max_items=4, max_wait_s=0.01)
    served: dict[int, int] = {}
    worst: dict[int, float] = {}
    wrong: list[tuple[int, int]] = []
    stop = time.monotonic() + 1.5

    def stream(k: int) -> None:
        batcher.register()
        n = 0
        while time.monotonic() < stop:
            start = time.monotonic()
            value = k * 1000 + n
            if batcher(value) != 2 * value:
                wrong.append((k, n))
            worst[k] = max(worst.get(k, 0.0), time.monotonic() - start)
            n += 1
        served[k] = n
        batcher.unregister()

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert not wrong, "each caller gets its own answer"
    assert max(calls) == 4 and statistics.mean(calls) > 3, "batches fill up under load"
    counts = sorted(served.values())
    assert counts[0] >= 0.8 * counts[-1], f"no stream is served much less than another: {served}"
    # Ten streams, four per call of 20 ms: a request waits for at most the calls ahead of it.
    assert max(worst.values()) < 0.25, worst


def test_an_error_in_a_batched_call_reaches_every_caller_and_the_batcher_goes_on():
    def fails_on_negative(payloads: list[int]) -> list[int]:
        time.sleep(0.05)
        if any(p < 0 for p in payloads):
            raise ValueError("bad input in the batch")
        return payloads

    batcher = StreamBatcher("test", fails_on_negative, max_items=8, max_wait_s=0.2)
    for _ in range(3):
        batcher.register()
    outcomes: dict[int, object] = {}

    def call(value: int) -> None:
        try:
            outcomes[value] = batcher(value)
        except ValueError as err:
            outcomes[value] = err

    threads = [threading.Thread(target=call, args=(v,)) for v in (1, -1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert batcher.calls == 1 and all(isinstance(o, ValueError) for o in outcomes.values()), outcomes
    assert batcher(5) == 5  # the next batch is served as usual
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher(6)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_cameras_under_overload_share_the_box_fairly(tmp_path, batched):
    """Four cameras replayed live and analysed at every frame (fps_cap 0): far more than two cores
    can analyse.  Every camera drops its oldest frames, none starves, and each one's frame
    latency stays bounded by its short queue."""
    from vidfiqa.live.config import load_stream
    from vidfiqa.sinks import WatchOutputs
    from vidfiqa.live.watch import Logger, Watcher

    clip = need(CLIPS["s18"])
    configs = []
    for k in range(4):
        path = tmp_path / f"cam{k}.toml"
        path.write_text(f'[stream]\nname = "cam{k}"\nurl = "{clip}"\nloop = true\n[pipeline]\nfps_cap = 0\n')
        configs.append(load_stream(path))
    watcher = Watcher(configs, tmp_path / "out", WatchOutputs(), log=Logger(stream=open(tmp_path / "log", "w")), metrics_port=None,
                      batch_streams=batched)
    summary = watcher.run(duration_s=15)
    streams = summary["streams"]
    analysed = [s["frames_processed"] for s in streams.values()]
    assert all(s["frames_dropped_overload"] > 0 for s in streams.values()), "overloaded: every camera drops frames"
    assert min(analysed) >= 0.75 * max(analysed), f"no camera starves: {analysed}"
    assert min(analysed) >= 10
    for name, s in streams.items():
        assert s["frame_latency_s"]["p95"] < 5.0, (name, s["frame_latency_s"])
    if batched:
        batching = summary["batching"]
        assert batching["detect"]["requests"] > batching["detect"]["calls"], "the cameras' frames were detected together"
    else:
        assert summary["batching"] is None
