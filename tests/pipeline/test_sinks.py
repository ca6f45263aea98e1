"""A sink written here alone, in the test file, plugged into `vidfiqa run` and `vidfiqa watch`
on a real multi-person clip: it sees every record of the run, accepted and rejected, the same
records the built-in sinks turned into the manifest and the events, and is closed once, last."""

from __future__ import annotations

import json
import threading

from conftest import SHARED, LogLines, events_of, need
from vidfiqa.live.config import load_stream
from vidfiqa.live.watch import Logger, Watcher
from vidfiqa.pipeline import make_settings
from vidfiqa.pipeline.run import VideoPipeline
from vidfiqa.select import TRACK_ENDS, TrackRecord


class ListSink:
    """Keeps what it is given; every record must be complete when it arrives."""

    name = "list"

    def __init__(self) -> None:
        self.records: list[TrackRecord] = []
        self.closed = 0
        self.emitted_after_close = 0
        self._lock = threading.Lock()

    def emit(self, record: TrackRecord) -> None:
        assert record.result.ended in TRACK_ENDS
        assert (record.rejected is None) == record.accepted
        if record.is_event or record.accepted:
            assert record.template is None or record.template.template() is not None
        with self._lock:
            self.emitted_after_close += self.closed
            self.records.append(record)

    def close(self) -> None:
        self.closed += 1

    def summary(self) -> dict:
        return {"records": len(self.records)}


def test_a_sink_of_its_own_sees_every_record_of_a_run(tmp_path):
    clip = need(SHARED / "data" / "edited_videos" / "azurevi_friends_cuts.mp4")
    sink = ListSink()
    manifest = VideoPipeline(make_settings()).run(clip, tmp_path / "g", sinks=[sink])
    assert sink.closed == 1 and sink.emitted_after_close == 0
    accepted = {r.track_id: r for r in sink.records if r.accepted}
    rejected = {r.track_id: r for r in sink.records if not r.accepted}
    assert len(sink.records) == len(accepted) + len(rejected), "one record per track"
    assert sorted(accepted) == [t["track_id"] for t in manifest["tracks"]]
    assert sorted(rejected) == [t["track_id"] for t in manifest["rejected"]]
    assert len(accepted) >= 10, "a multi-person clip with cuts: many tracks"
    for entry in manifest["tracks"]:
        record = accepted[entry["track_id"]]
        assert [s["frame_index"] for s in entry["selected"]] == [int(i) for i in record.picks.frame_index]
        assert record.stream is None and record.event_id is None and record.person_id is None  # persons: over the whole input
        assert (entry["template"] is None) == (record.template is None)
    for entry in manifest["rejected"]:
        assert rejected[entry["track_id"]].rejected == entry["reason"]


def test_a_sink_of_its_own_sees_every_record_of_a_watch(tmp_path):
    clip = need(SHARED / "data" / "edited_videos" / "azurevi_friends_cuts.mp4")
    path = tmp_path / "cam.toml"
    path.write_text(f'[stream]\nname = "tv"\nurl = "{clip}"\n')  # a recording, played once as a camera
    sink, lines = ListSink(), []
    watcher = Watcher([load_stream(path)], tmp_path / "out", extra_sinks=[sink], log=Logger("json", stream=LogLines(lines)))
    summary = watcher.run(duration_s=120)  # ends when the recording does
    assert sink.closed == 1 and sink.emitted_after_close == 0
    stream = summary["streams"]["tv"]
    assert len(sink.records) == stream["tracks"] >= 5, (stream, lines[-5:])
    events = events_of(tmp_path / "out")
    assert [r.event_id for r in sink.records if r.is_event] == [e["event_id"] for e in events] and len(events) == stream["events"]
    for record, event in zip([r for r in sink.records if r.is_event], events):
        assert record.stream == "tv" and record.person_id == event["person_id"] and isinstance(record.person_id, int)
        assert [int(i) for i in record.picks.frame_index] == [s["frame_index"] for s in event["selected"]]
        assert record.wall_of(0.0) == record.wall_start and record.emitted_at is not None
    assert all(not r.is_event and (r.rejected or not len(r.picks)) for r in sink.records if r.event_id not in {e["event_id"] for e in events})
    assert summary["list"] == {"records": len(sink.records)}, "a sink's summary is the watch summary's entry under its name"
    assert json.loads((tmp_path / "out" / "watch_summary.json").read_text())["list"] == summary["list"]
