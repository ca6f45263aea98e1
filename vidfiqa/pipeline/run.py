"""The video pipeline: a short loop that composes the stages.

    frames -> scene cut? -> detect (full frame, or around tracked faces) -> track -> gate
           -> align -> queue -> score in batches -> track records -> (track ends) smooth
           -> select diverse best frames -> gallery

Every stage takes and returns :class:`~vidfiqa.faces.Faces`.  A track's selection is written to
the gallery as soon as the track ends, so a long video or a crash never holds (or loses) more
than the tracks still open.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from ..align import Aligner
from ..errors import VidfiqaError
from ..faces import Faces
from ..redact import redact_text, redact_url
from .gallery import GalleryWriter
from .prefetch import Prefetcher
from .scenecut import SceneCutDetector
from .scoring import ScoringQueue
from .selection import select_diverse
from .settings import RunSettings
from .smoothing import smooth_quality
from .tracks import Candidate, TrackRecord

DEFAULT_FPS = 25.0  # assumed only to turn frame numbers into seconds when a source has no timing

Progress = Callable[[int, int | None], None]  # (frames processed, frames expected or None)


@dataclass
class StageTimes:
    """Wall-clock seconds spent in each stage of the main loop."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextlib.contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.seconds.items()}


def context_crop(frame: np.ndarray, box: np.ndarray, scale: float, max_size: int) -> np.ndarray:
    """A square view ``scale`` times the box's longer side around the face, at most
    ``max_size`` pixels (never enlarged); outside the frame is black."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * scale
    out = int(min(max_size, math.ceil(side)))
    k = out / side
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    matrix = np.array([[k, 0, out / 2 - cx * k], [0, k, out / 2 - cy * k]])
    return cv2.warpAffine(frame, matrix, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


class VideoPipeline:
    """Builds the stages once; :meth:`run` processes one input into one gallery.

    ``detector``, ``roi_detector`` and ``scorer`` may be passed in (tests, a long-running
    service); by default they are built from ``settings``.
    """

    def __init__(self, settings: RunSettings, detector=None, roi_detector=None, scorer=None):
        from ..detect import make_detector
        from ..onnx_session import default_threads
        from ..quality.ediffiqa import EDifFIQA
        from .roi import RegionRedetector

        self.settings = s = settings.validate()
        # The decoder runs in its own thread; models that also take every core make both slower
        # (measured on 2 cores: 115 vs 74 frames/s for the fast preset).
        threads = s.threads or max(1, default_threads() - 1)
        common = dict(model_path=s.detector_model, device=s.device, score_threshold=s.detect_score, threads=threads)
        self.detector = detector or make_detector(s.detector, input_size=s.input_size, **common)
        if s.detect_every > 1:
            self.redetector = RegionRedetector(roi_detector or make_detector(s.detector, input_size=s.roi_input_size, **common), size=s.roi_input_size)
        else:
            self.redetector = None
        self.scorer = scorer or EDifFIQA(onnx=s.quality_model, device=s.device, batch_size=s.batch_size, threads=threads)
        self.aligner = Aligner()

    # ------------------------------------------------------------------ one input
    def run(self, source: str | Path, out_dir: str | Path, progress: Progress | None = None) -> dict[str, Any]:
        """Process ``source`` into a gallery at ``out_dir``; returns the manifest (a dict)."""
        from ..video import open_source

        s = self.settings
        started = time.perf_counter()
        # Stream URLs may carry credentials: they must not reach messages or the manifest.
        shown = redact_url(str(source))
        try:
            video = open_source(source, decoder=s.decoder, stride=s.stride, fps=s.fps, threads=s.decode_threads)
        except VidfiqaError as err:
            raise type(err)(redact_text(str(err), str(source))) from None
        info = video.info
        fps = info.fps or s.fps or DEFAULT_FPS
        try:
            writer = GalleryWriter(out_dir, source={**info.to_dict(), "path": shown, "uri": shown}, settings=s.to_dict())
        except BaseException:
            video.close()
            raise
        run = TrackProcessor(self, writer.add_track, step_s=s.stride / fps, fps=fps)
        times = run.times
        frames = Prefetcher(video, depth=4)
        status, message, last_index = "complete", None, -1
        expected = math.ceil(info.frame_count / s.stride) if info.frame_count else None
        try:
            while True:
                with times("wait_for_decode"):
                    frame = next(frames, None)
                if frame is None:
                    break
                last_index = frame.index
                run.process(frame)
                if progress is not None:
                    progress(run.processed, expected)
            run.finish("end_of_input")
            if video.stopped_early:
                status, message = "stopped_early", video.stopped_early
        except KeyboardInterrupt:
            # Keep what was seen: score what is queued and write every open track, then stop.
            run.finish("interrupted")
            status, message = "interrupted", f"interrupted after {run.processed} frames"
            raise
        except BaseException as err:
            status, message = "failed", f"{type(err).__name__}: {err}"
            raise
        finally:
            frames.close()
            video.close()
            elapsed = time.perf_counter() - started
            times.seconds["decode_thread_busy"] = frames.busy_s
            decoded = max(video.frames_read, last_index + 1)  # sources that do not count report what we saw
            stats = {
                "frames_decoded": decoded,
                "frames_processed": run.processed,
                "full_detections": run.full_detections,
                "detections": run.detections,
                "faces_scored": run.scored,
                "tracks_written": len(writer.manifest["tracks"]),
                "tracks_dropped_short": run.dropped_short,
                "elapsed_s": round(elapsed, 3),
                "frames_per_s": round(run.processed / elapsed, 2) if elapsed > 0 else None,
                "input_frames_per_s": round(decoded / elapsed, 2) if elapsed > 0 else None,
                "stage_seconds": times.as_dict(),
            }
            if status == "complete" and run.processed == 0:
                status, message = "stopped_early", "no frame could be decoded"
            writer.finish(status, message, stats, source_updates={"frames_decoded": decoded})
        return writer.manifest


TrackSink = Callable[[dict, list, "dict | None"], Any]  # (manifest entry, [(crop, context)], series)


class TrackProcessor:
    """Everything that happens to one stream of frames: scene cuts, detection, tracking, scoring,
    track records; each finished track's selection goes to ``on_track`` (the gallery writer for
    `vidfiqa run`, the event sinks for `vidfiqa watch`).

    ``step_s`` is the video time between two :meth:`process` calls, ``fps`` turns frame numbers
    into seconds for sources without timestamps.  The models come from ``pipeline`` and may be
    shared by several processors in different threads (onnxruntime sessions are thread-safe).
    """

    def __init__(self, pipeline: VideoPipeline, on_track: TrackSink, step_s: float, fps: float):
        from ..track import ByteTracker, TrackerSettings

        s = pipeline.settings
        self.p, self.s, self.on_track, self.fps = pipeline, s, on_track, fps
        self.tracker = ByteTracker(
            TrackerSettings(high_score=s.track_high_score, low_score=s.detect_score, new_track_score=s.track_new_score, lost_after_s=s.lost_after_s),
            step_s=step_s,
        )
        self.cut_detector = SceneCutDetector(s.scene_cut)
        self.queue = ScoringQueue(pipeline.scorer, s.batch_size, s.max_wait_s)
        self.contexts: list[np.ndarray] = []  # one per queued face, in queue order
        self.tracks: dict[int, TrackRecord] = {}
        self.times = StageTimes()
        self.processed = self.full_detections = self.detections = self.scored = self.dropped_short = self.tracks_emitted = 0
        self._since_full = s.detect_every  # frames since the last full-frame search: search the first

    def process(self, frame) -> None:
        """One frame (a ``vidfiqa.video.Frame``) through detection, tracking and scoring."""
        times, p = self.times, self.p
        with times("scene_cut"):
            cut = self.cut_detector(frame.image)
        if cut:
            self.end_tracks(self.tracker.reset(), "scene_cut")
        full = cut or p.redetector is None or self._since_full >= self.s.detect_every - 1
        if full:
            with times("detect"):
                faces = p.detector.detect([frame.image], [frame.index], [frame.pts])
            self.full_detections += 1
            self._since_full = 0
        else:
            with times("redetect"):
                _, boxes = self.tracker.predicted_boxes()
                faces = p.redetector(frame.image, boxes, frame.index, frame.pts)
            self._since_full += 1
        with times("track"):
            tracked, ended = self.tracker.update(faces)
        self.add_faces(tracked, frame.image)
        self.end_tracks(ended, "lost")
        self.processed += 1

    def finish(self, reason: str) -> None:
        """End every open track now (end of input, a long gap in a stream, shutdown)."""
        self.end_tracks(self.tracker.reset(), reason)
        self.cut_detector.reset()
        self._since_full = self.s.detect_every  # search the next frame whole

    def open_track_ids(self) -> list[int]:
        return sorted(self.tracks)

    def add_faces(self, faces: Faces, frame: np.ndarray) -> None:
        """Record tracked faces; queue the ones that pass the size gate for scoring."""
        s = self.s
        self.detections += len(faces)
        for tid in np.unique(faces.track_id):
            self.tracks.setdefault(int(tid), TrackRecord(int(tid), capacity=s.candidates))
        big = np.minimum(faces.widths, faces.heights) >= s.min_face_size
        turn = np.zeros(len(faces), bool)  # a track's 1st, (N+1)th, ... detection is scored
        for i, tid in enumerate(faces.track_id):
            record = self.tracks[int(tid)]
            turn[i] = record.detections_seen % s.score_every == 0
            record.detections_seen += 1
        big &= turn
        for i in np.flatnonzero(~big):  # seen but too small to judge (or skipped): in the series, unscored
            self.tracks[int(faces.track_id[i])].observe(faces.frame_index[i], faces.timestamp[i], faces.boxes[i], faces.scores[i], np.nan)
        faces = faces[big]
        if len(faces):
            with self.times("align"):
                aligned = self.p.aligner(faces, {int(faces.frame_index[0]): frame})
                self.contexts.extend(context_crop(frame, box, s.context_scale, s.context_size) for box in faces.boxes)
            self.queue.put(aligned)
        if self.queue.due():
            self.score_queued()

    def score_queued(self) -> None:
        if len(self.queue) == 0:
            return
        with self.times("score"):
            scored = self.queue.flush()
        contexts, self.contexts = self.contexts, []
        self.scored += len(scored)
        for i in range(len(scored)):
            record = self.tracks[int(scored.track_id[i])]
            pts, index, quality = float(scored.timestamp[i]), int(scored.frame_index[i]), float(scored.quality[i])
            record.observe(index, pts, scored.boxes[i], scored.scores[i], quality)
            time_s = pts if math.isfinite(pts) else index / self.fps
            if record.wants(time_s, quality):
                record.offer(Candidate(index, pts, time_s, scored.boxes[i].copy(), scored.landmarks[i].copy(), float(scored.scores[i]),
                                       quality, scored.embeddings[i].copy(), scored.crops[i].copy(), contexts[i]))

    def end_tracks(self, track_ids: list[int], reason: str, keep_open: bool = False) -> None:
        """Select and hand over these tracks.  ``keep_open``: the tracker keeps following them
        and a fresh record starts (a long track emitted in segments)."""
        track_ids = [t for t in track_ids if t in self.tracks]
        if not track_ids:
            return
        self.score_queued()  # their last faces may still be waiting for a batch
        with self.times("select_and_write"):
            for tid in track_ids:
                self._finish_track(self.tracks.pop(tid), reason)
                if keep_open:
                    self.tracks[tid] = TrackRecord(tid, capacity=self.s.candidates)

    def _finish_track(self, record: TrackRecord, reason: str) -> None:
        s = self.s
        if len(record) < s.min_track_detections:
            self.dropped_short += 1
            return
        order = np.argsort(record.frame_index, kind="stable")
        series = {
            "frame_index": np.asarray(record.frame_index)[order],
            "pts": np.asarray(record.pts, np.float64)[order],
            "quality": np.asarray(record.quality, np.float64)[order],
            "detector_score": np.asarray(record.detector_score, np.float64)[order],
            "boxes": np.asarray(record.boxes, np.float64).reshape(-1, 4)[order],
        }
        series["quality_smoothed"] = smooth_quality(series["quality"], s.smooth_window, s.smooth_sigma).astype(np.float64)
        candidates = record.candidates()
        position = {int(f): i for i, f in enumerate(series["frame_index"])}
        smoothed = np.array([series["quality_smoothed"][position[c.frame_index]] for c in candidates])
        raw = np.array([c.quality for c in candidates])
        merit = np.minimum(raw, smoothed)
        eligible = np.ones(len(candidates), bool) if s.min_quality is None else smoothed >= s.min_quality
        picks = select_diverse(
            merit, np.array([c.time_s for c in candidates]), np.stack([c.embedding for c in candidates]) if candidates else np.zeros((0, 1)),
            top_k=s.top_k, diversity=s.diversity, time_scale_s=s.time_scale_s, embedding_weight=s.embedding_weight,
            min_gap_s=s.min_gap_s, eligible=eligible,
        ) if candidates else []
        selected, images = [], []
        for rank, k in enumerate(picks):
            c = candidates[k]
            selected.append({
                "rank": rank + 1,
                "frame_index": c.frame_index,
                "pts": _num(c.pts),
                "bbox": [round(float(v), 2) for v in c.box],
                "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in c.landmarks],
                "detector_score": _num(c.detector_score),
                "quality": _num(c.quality),
                "quality_smoothed": _num(smoothed[k]),
            })
            images.append((c.crop, c.context))
        scored = np.isfinite(series["quality"])
        entry = {
            "track_id": record.track_id,
            "first_frame": int(series["frame_index"][0]),
            "last_frame": int(series["frame_index"][-1]),
            "first_pts": _num(series["pts"][0]),
            "last_pts": _num(series["pts"][-1]),
            "num_detections": len(record),
            "num_scored": int(scored.sum()),
            "quality_max": _num(np.nanmax(series["quality_smoothed"])) if scored.any() else None,
            "quality_mean": _num(np.nanmean(series["quality"])) if scored.any() else None,
            "ended": reason,
            "selected": selected,
        }
        self.tracks_emitted += 1
        self.on_track(entry, images, series if s.write_series else None)


def _num(value, digits: int = 6):
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None
