"""`vidfiqa run`: one input (file, URL or frame folder) through the loop into one gallery.

    decode (prefetched) -> TrackProcessor (processor.py) -> TrackResult
        -> EndOfTrack (select/chain.py: gate, persons over the whole input) -> TrackRecord
        -> GallerySink (sinks/gallery.py), then any sinks the caller adds

A track's selection is written to the gallery as soon as the track ends, so a long video or a
crash never holds (or loses) more than the tracks still open.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import VidfiqaError
from ..detect.base import FaceDetector
from ..faces import Faces
from ..folder_lock import FolderLock
from ..redact import redact_text, redact_url
from ..select import DEFAULT_FPS, EndOfTrack, InputPersons, TrackResult
from ..select.recut import MainStreamCut
from ..sinks import TrackSink, close_all
from ..sinks.gallery import GallerySink
from ..stopping import stops_deferred
from ..video.main_stream import MainRecording
from ..video.source import Frame
from .models import Models, main_stream_region
from .prefetch import Prefetcher
from .processor import TrackProcessor
from .settings import RunSettings

MAX_LISTED_SKIPS = 100  # unreadable files named in the manifest (all are counted)

Progress = Callable[[int, int | None], None]  # (frames processed, frames expected or None)


def detect_ahead(frames: Iterator[Frame], detector: FaceDetector, seconds: dict[str, float]) -> Iterator[tuple[Frame, Faces]]:
    """Each frame with its whole-frame detection; the time spent detecting is added to
    ``seconds["detect"]`` (the stage times of the processor)."""
    for frame in frames:
        start = time.perf_counter()
        faces = detector.detect([frame.image], [frame.index], [frame.pts])
        seconds["detect"] += time.perf_counter() - start
        yield frame, faces


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
    def run(self, source: str | Path, out_dir: str | Path, progress: Progress | None = None, sinks: list[TrackSink] | None = None,
            main: str | Path | None = None, main_offset_s: float = 0.0) -> dict[str, Any]:
        """Process ``source`` into a gallery at ``out_dir``; returns the manifest (a dict).
        ``sinks``: more sinks, each given every record after the gallery (docs/sinks.md).
        ``main``: a recording of the same camera's main stream: the picks are cut from it
        (select/recut.py), ``main_offset_s`` later than the analysed clock says."""
        from ..video import open_source

        s = self.settings
        started = time.perf_counter()
        # Stream URLs may carry credentials: they must not reach messages or the manifest.
        shown = redact_url(str(source))
        try:
            video = open_source(source, decoder=s.decoder, stride=s.stride, fps=s.fps, threads=s.decode_threads, video_stream=s.video_stream)
        except VidfiqaError as err:
            raise type(err)(redact_text(str(err), str(source))) from None
        info = video.info
        fps = info.fps or s.fps or DEFAULT_FPS
        # fps_cap: the stride follows the frame rate (5 frames a second of 25 fps video is every 5th).
        # Sources read their stride when iterated, so it can be set once the rate is known.
        stride = video.stride = s.stride_for(info.fps or s.fps)
        if stride > 1 and s.scene_cut > 0 and hasattr(video, "thumbnails"):
            # The shot-cut detector sees every decoded frame, not only the analysed ones: at 5
            # analysed frames a second it found 9 of 13 cuts, 13 of 13 with every frame
            # (benchmarks/shots.py).
            video.thumbnails = True
        persons = InputPersons(s.selection_rule(), s.person_threshold, fps)  # linked over the whole input
        lock: FolderLock | None = None
        main_frames: MainRecording | None = None
        cut: MainStreamCut | None = None
        try:
            lock = FolderLock(out_dir)  # before the gallery replaces an old one: it may be another run's
            models = self.models
            described = {**info.to_dict(), "path": shown, "uri": shown}
            if main is not None:
                main_frames = MainRecording(str(main), offset_s=main_offset_s, threads=s.decode_threads)
                cut = MainStreamCut(main_frames, models, s, main_stream_region(models, s), analysed_size=(info.width, info.height))
                assert main_frames.size is not None
                described["main"] = {"path": redact_url(str(main)), "width": main_frames.size[0], "height": main_frames.size[1],
                                     "offset_s": main_offset_s}
            writer = GallerySink(out_dir, source=described, settings=s.to_dict(), persons=persons, write_series=s.write_series)
        except BaseException:
            video.close()
            if main_frames is not None:
                main_frames.close()
            if lock is not None:
                lock.abandon()
            raise
        end_of_track = EndOfTrack.of(s, persons, recut=cut)
        outputs: list[TrackSink] = [writer, *(sinks or [])]

        def on_track(result: TrackResult) -> None:
            record = end_of_track(result)
            for sink in outputs:
                sink.emit(record)

        run = TrackProcessor(models, s, on_track, step_s=stride / fps, fps=fps, video_clock=True)
        times = run.times
        decoding = Prefetcher(video, depth=4)
        # Frames searched whole every time are detected a stage ahead, in a thread of their own:
        # the detector (onnxruntime, no GIL) runs on the next frame while this one is tracked,
        # aligned and scored (measured with benchmarks/bench_run.py while choosing the default).
        ahead = run.searches_every_frame
        frames: Prefetcher = Prefetcher(detect_ahead(decoding, models.detector, times.seconds), depth=2) if ahead else decoding
        waiting = "wait_for_detect" if ahead else "wait_for_decode"
        status, message, last_index = "complete", None, -1
        expected = math.ceil(info.frame_count / stride) if info.frame_count else None
        try:
            while True:
                with times(waiting):
                    item = next(frames, None)
                if item is None:
                    break
                frame, detected = item if ahead else (item, None)
                last_index = frame.index
                run.process(frame, detected)
                if progress is not None:
                    progress(run.counts.processed, expected)
            run.finish("end_of_input")
            if video.stopped_early:
                status, message = "stopped_early", video.stopped_early
        except KeyboardInterrupt:
            # Keep what was seen: score what is queued and write every open track, then stop.
            # The status is set first and a second stop signal is held until the tracks are
            # written (stopping.py): one landing inside the flush lost tracks and left "complete".
            status, message = "interrupted", f"interrupted after {run.counts.processed} frames"
            with stops_deferred():
                run.finish("interrupted")
            raise
        except BaseException as err:
            status, message = "failed", str(err) if isinstance(err, VidfiqaError) else f"{type(err).__name__}: {err}"
            raise
        finally:
            with stops_deferred():
                try:
                    self._close(video, frames, decoding, run, writer, outputs, status, message, started, last_index, stride,
                                main_stream=cut.summary() if cut is not None else None)
                finally:
                    if main_frames is not None:
                        main_frames.close()
                    lock.release()
        return writer.manifest

    @staticmethod
    def _close(video, frames: Prefetcher, decoding: Prefetcher, run: TrackProcessor, writer: GallerySink, outputs: list[TrackSink],
               status: str, message: str | None, started: float, last_index: int, stride: int,
               main_stream: dict[str, Any] | None = None) -> None:
        """Stop the threads, close the input and write the manifest with its stats, whatever ended
        the run (the gallery then says how it ended)."""
        frames.close()  # the detection thread first: it may be waiting for a decoded frame
        decoding.close()
        video.close()
        elapsed = time.perf_counter() - started
        times = run.times
        times.seconds["decode_thread_busy"] = decoding.busy_s
        decoded = max(video.frames_read, last_index + 1)  # sources that do not count report what we saw
        counts = run.counts
        stats = {
            "frames_decoded": decoded,
            "frames_processed": counts.processed,
            "stride": stride,
            "frames_skipped": video.skipped,  # undecodable packets, unreadable image files
            "skipped_files": video.skipped_files[:MAX_LISTED_SKIPS],
            "full_detections": counts.full_detections,
            "detections": counts.detections,
            "faces_scored": counts.scored,
            "tracks_written": len(writer.manifest["tracks"]),
            "tracks_dropped_short": counts.dropped_short,
            "elapsed_s": round(elapsed, 3),
            "frames_per_s": round(counts.processed / elapsed, 2) if elapsed > 0 else None,
            "input_frames_per_s": round(decoded / elapsed, 2) if elapsed > 0 else None,
            "stage_seconds": times.as_dict(),
            **({"main_stream": main_stream} if main_stream is not None else {}),  # picks cut from the main stream, sync error
        }
        if status == "complete" and counts.processed == 0:
            status, message = "stopped_early", "no frame could be decoded"
        try:
            writer.finish(status, message, stats, source_updates={"frames_decoded": decoded})
            close_all(outputs)
        except VidfiqaError:
            if status != "failed":
                raise
            # Failing already (a full disk): the first error is the one to report; the
            # manifest says "failed" if even an in-place rewrite found room (gallery.py).
