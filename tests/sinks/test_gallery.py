"""The gallery sink: records become manifest entries, images and series; tracks the chain's gate
rejected go to ``rejected`` with their reason."""

from __future__ import annotations

import json

import numpy as np

from vidfiqa.faces import Faces, object_column
from vidfiqa.pipeline import RunSettings
from vidfiqa.select import EndOfTrack, InputPersons, TrackResult
from vidfiqa.select.result import QualitySeries
from vidfiqa.export import read_manifest
from vidfiqa.sinks.gallery import GallerySink


def _series(n: int, quality: float) -> QualitySeries:
    q = np.full(n, quality)
    return QualitySeries(frame_index=np.arange(n), pts=np.arange(n) / 25.0, quality=q, quality_smoothed=q,
                         detector_score=np.full(n, 0.9), boxes=np.tile([10.0, 10, 30, 30], (n, 1)))


def test_a_track_with_nothing_scored_is_rejected_not_a_crash(tmp_path):
    """Faces all smaller than min_face_size are tracked but never scored: no pick, no template.
    Such a track (common for distant faces in a crowd at 720p) is listed under ``rejected`` with
    the reason, next to a normal track, and the manifest stays readable."""
    settings = RunSettings()
    persons = InputPersons(settings.selection_rule(), settings.person_threshold, fps=25.0)
    end_of_track = EndOfTrack.of(settings, persons)
    writer = GallerySink(tmp_path / "g", source={"path": "x.mp4"}, settings={}, persons=persons)
    unscored = TrackResult(track_id=1, ended="lost", series=_series(6, np.nan), chosen=Faces.empty(), chosen_smoothed=np.zeros(0))
    crop = np.full((1, 112, 112, 3), 128, np.uint8)
    chosen = Faces.create([[10, 10, 60, 60]], np.zeros((1, 5, 2)), [0.9], frame_index=2, timestamp=0.08, track_id=2,
                          crops=crop, quality=[0.5], embeddings=np.ones((1, 4)), context=object_column([crop[0]]))
    good = TrackResult(track_id=2, ended="lost", series=_series(5, 0.5), chosen=chosen, chosen_smoothed=np.array([0.5]),
                       link_template=np.array([0.5, 0.5, 0.5, 0.5]))
    writer.emit(end_of_track(unscored))
    writer.emit(end_of_track(good))
    writer.finish("complete", None, {})
    manifest = read_manifest(tmp_path / "g" / "manifest.json")
    assert [t["track_id"] for t in manifest["tracks"]] == [2] and manifest["tracks"][0]["person_id"] == 1
    (rejected,) = manifest["rejected"]
    assert rejected["track_id"] == 1 and rejected["selected"] == [] and "no detection was scored" in rejected["reason"]
    assert json.loads((tmp_path / "g" / "tracks" / "0001" / "track.json").read_text())["selected"] == []
    assert (tmp_path / "g" / manifest["tracks"][0]["selected"][0]["crop"]).is_file()


def test_gallery_files_have_the_modes_a_plain_open_gives(tmp_path):
    """Atomic writes go through mkstemp (mode 0600), which kept a web server running as another
    user from serving the gallery.  Every file of a real run ends with 0666 less the umask."""
    import os
    import stat
    from pathlib import Path

    from vidfiqa.atomic import atomic_write_text
    from vidfiqa.pipeline import make_settings
    from vidfiqa.pipeline.run import VideoPipeline

    sample = Path(__file__).resolve().parents[2] / "samples" / "astronaut.mp4"
    previous = os.umask(0o027)
    try:
        VideoPipeline(make_settings()).run(sample, tmp_path / "g")
        os.umask(0o022)
        atomic_write_text(tmp_path / "plain.txt", "x")
    finally:
        os.umask(previous)
    files = [p for p in (tmp_path / "g").rglob("*") if p.is_file()]
    assert len(files) > 8 and any(p.suffix == ".png" for p in files) and any(p.name == "index.html" for p in files)
    modes = {p.relative_to(tmp_path).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o640"}, modes
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o644
