"""`vidfiqa run`: one input (file, URL or frame folder) through the loop into one gallery.

    decode (prefetched) -> TrackProcessor (processor.py) -> TrackResult -> GalleryWriter

A track's selection is written to the gallery as soon as the track ends, so a long video or a
crash never holds (or loses) more than the tracks still open.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import VidfiqaError
from ..export import GalleryWriter
from ..redact import redact_text, redact_url
from ..select.gate import FaceGate
from .models import Models
from .prefetch import Prefetcher
from .processor import TrackProcessor, selection_rule
from .settings import RunSettings

DEFAULT_FPS = 25.0  # assumed only to turn frame numbers into seconds when a source has no timing

Progress = Callable[[int, int | None], None]  # (frames processed, frames expected or None)


class VideoPipeline:
    """Builds the models once; :meth:`run` processes one input into one gallery.

    ``models`` may be passed in (tests, a long-running service); by default they are built from
    ``settings`` on first use, once the first input has opened: an input that cannot be opened
    is refused at once, without loading a model.
    """

    def __init__(self, settings: RunSettings, models: Models | None = None):
        self.settings = settings.validate()
        self._models = models

    @property
    def models(self) -> Models:
        if self._models is None:
            self._models = Models.build(self.settings)
        return self._models

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
            models = self.models
            writer = GalleryWriter(out_dir, source={**info.to_dict(), "path": shown, "uri": shown}, settings=s.to_dict(),
                                   write_series=s.write_series, gate=FaceGate() if s.face_gate else None,
                                   rule=selection_rule(s), person_threshold=s.person_threshold, fps=fps)
        except BaseException:
            video.close()
            raise
        run = TrackProcessor(models, s, writer.add, step_s=s.stride / fps, fps=fps)
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
                    progress(run.counts.processed, expected)
            run.finish("end_of_input")
            if video.stopped_early:
                status, message = "stopped_early", video.stopped_early
        except KeyboardInterrupt:
            # Keep what was seen: score what is queued and write every open track, then stop.
            run.finish("interrupted")
            status, message = "interrupted", f"interrupted after {run.counts.processed} frames"
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
            counts = run.counts
            stats = {
                "frames_decoded": decoded,
                "frames_processed": counts.processed,
                "full_detections": counts.full_detections,
                "detections": counts.detections,
                "faces_scored": counts.scored,
                "tracks_written": len(writer.manifest["tracks"]),
                "tracks_dropped_short": counts.dropped_short,
                "elapsed_s": round(elapsed, 3),
                "frames_per_s": round(counts.processed / elapsed, 2) if elapsed > 0 else None,
                "input_frames_per_s": round(decoded / elapsed, 2) if elapsed > 0 else None,
                "stage_seconds": times.as_dict(),
            }
            if status == "complete" and counts.processed == 0:
                status, message = "stopped_early", "no frame could be decoded"
            writer.finish(status, message, stats, source_updates={"frames_decoded": decoded})
        return writer.manifest
