"""Cross-stream batching: the model calls of many cameras combined into shared, batched calls.

    camera 1 worker --detect(frame)-->  \\
    camera 2 worker --detect(frame)-->   StreamBatcher (one thread per model) --> one detector call
    camera 3 worker --score(faces)--->  /                                         for all of them

Each camera's worker stays synchronous: it hands its frame (or its queued faces) to the batcher
and waits for its own part of the answer, so its tracking and selection are exactly what they
would be unbatched.  The batcher's thread takes the waiting requests in arrival order and runs
them as one call when ``max_items`` are waiting, when every registered stream is waiting (no one
else can join), or when the oldest has waited ``max_wait_s``; while a call runs, new requests
queue up and become the next batch, so batches grow with the load and an idle box adds no wait.

Fairness: a worker has at most one request in a batcher at a time and requests are served in
arrival order, so a camera waits for at most the batch ahead of its own; no camera can starve
another.  Overload is still absorbed per camera, by dropping its oldest frames (live/stream.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Sequence, TypeVar

import numpy as np

from ..faces import Faces
from .models import Models

P = TypeVar("P")
R = TypeVar("R")

BatchObserver = Callable[[str, int, int, float], None]  # (model, requests, items, seconds waited by the oldest)


@dataclass(eq=False)
class _Request(Generic[P]):
    payload: P
    items: int
    arrived: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class StreamBatcher(Generic[P, R]):
    """Combines calls from many threads into calls of ``run_batch(payloads) -> results``.

    ``items_of(payload)`` sizes a request (frames, faces); a batch holds at least one request and
    stops growing at ``max_items``.  An error in a batched call is raised in every caller whose
    request was in it (each camera's worker then restarts its analysis, as it would unbatched).
    """

    def __init__(self, name: str, run_batch: Callable[[list[P]], Sequence[R]], max_items: int, max_wait_s: float,
                 items_of: Callable[[P], int] = lambda p: 1, observe: BatchObserver | None = None):
        self.name = name
        self._run_batch, self._items_of, self._observe = run_batch, items_of, observe
        self.max_items, self.max_wait_s = max(1, int(max_items)), max(0.0, float(max_wait_s))
        self._pending: list[_Request[P]] = []
        self._cond = threading.Condition()
        self._clients = 0
        self._closed = False
        self.calls = 0  # batched calls made
        self.requests = 0  # requests served
        self._thread = threading.Thread(target=self._serve, name=f"vidfiqa-batch-{name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ callers
    def register(self) -> None:
        """A stream that will call: the batcher stops waiting once every registered stream waits."""
        with self._cond:
            self._clients += 1

    def unregister(self) -> None:
        with self._cond:
            self._clients = max(0, self._clients - 1)
            self._cond.notify_all()

    def __call__(self, payload: P) -> R:
        request = _Request(payload, max(1, int(self._items_of(payload))))
        with self._cond:
            if self._closed:
                raise RuntimeError(f"the {self.name} batcher is closed")
            self._pending.append(request)
            self._cond.notify_all()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def close(self) -> None:
        """Serve what is waiting, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    # ------------------------------------------------------------------ the batcher's thread
    def _serve(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            waited = time.monotonic() - batch[0].arrived
            try:
                results = list(self._run_batch([r.payload for r in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"{self.name}: a batched call gave {len(results)} results for {len(batch)} requests")
                for request, result in zip(batch, results):
                    request.result = result
            except BaseException as err:  # each caller raises it: never a caller left waiting
                for request in batch:
                    request.error = err
            self.calls += 1
            self.requests += len(batch)
            if self._observe is not None:
                self._observe(self.name, len(batch), sum(r.items for r in batch), waited)
            for request in batch:
                request.done.set()

    def _next_batch(self) -> list[_Request[P]] | None:
        with self._cond:
            while not self._pending:
                if self._closed:
                    return None
                self._cond.wait()
            deadline = self._pending[0].arrived + self.max_wait_s
            while not self._closed and self._waiting_items() < self.max_items and len(self._pending) < self._clients:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch: list[_Request[P]] = []
            items = 0
            while self._pending and (not batch or items + self._pending[0].items <= self.max_items):
                request = self._pending.pop(0)
                batch.append(request)
                items += request.items
            return batch

    def _waiting_items(self) -> int:
        return sum(r.items for r in self._pending)


# ---------------------------------------------------------------------- the models, batched
DetectRequest = tuple[list[np.ndarray], list[int], list[float]]


class BatchedDetector:
    """A whole-frame detector whose calls from many streams are batched.

    Frames of different streams may carry the same frame number, so the batched call numbers
    them 0..n-1 and each caller's faces get its own numbers and timestamps back."""

    def __init__(self, detector: Any, max_frames: int, max_wait_s: float, observe: BatchObserver | None = None):
        self._detector = detector
        self.name = getattr(detector, "name", "detector")
        self.settings = getattr(detector, "settings", None)
        self.batcher: StreamBatcher[DetectRequest, Faces] = StreamBatcher(
            "detect", self._run, max_frames, max_wait_s, items_of=lambda r: len(r[0]), observe=observe)

    def detect(self, frames, frame_indices=None, timestamps=None) -> Faces:
        frames = list(frames)
        indices = list(range(len(frames))) if frame_indices is None else [int(i) for i in frame_indices]
        stamps = [float("nan")] * len(frames) if timestamps is None else [float(t) for t in timestamps]
        return self.batcher((frames, indices, stamps))

    __call__ = detect

    def _run(self, requests: list[DetectRequest]) -> list[Faces]:
        frames = [f for r in requests for f in r[0]]
        found = self._detector.detect(frames, list(range(len(frames))))
        results, start = [], 0
        for images, indices, stamps in requests:
            parts = []
            for k, (index, pts) in enumerate(zip(indices, stamps)):
                mine = found.in_frame(start + k)
                parts.append(mine.replace(frame_index=np.full(len(mine), index, dtype=mine.frame_index.dtype),
                                          timestamp=np.full(len(mine), pts, dtype=mine.timestamp.dtype)))
            results.append(Faces.concat(parts) if parts else Faces.empty())
            start += len(images)
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._detector, name)


class BatchedScorer:
    """A quality scorer (or the embedder beside it) whose calls from many streams are batched:
    each stream's queued faces are scored in one call with the other streams' faces, and it gets
    its own rows back (scorers return one row per face, in order)."""

    def __init__(self, scorer: Any, max_faces: int, max_wait_s: float, name: str = "score", observe: BatchObserver | None = None):
        self._scorer = scorer
        self.batcher: StreamBatcher[Faces, Faces] = StreamBatcher(name, self._run, max_faces, max_wait_s, items_of=len, observe=observe)

    def __call__(self, faces: Faces, frames=None) -> Faces:
        if len(faces) == 0:
            return self._scorer(faces)
        return self.batcher(faces)

    def _run(self, requests: list[Faces]) -> list[Faces]:
        scored = self._scorer(Faces.concat(requests))
        if len(scored) != sum(len(r) for r in requests):
            raise RuntimeError(f"{type(self._scorer).__name__} returned {len(scored)} rows for {sum(len(r) for r in requests)} faces")
        results, start = [], 0
        for request in requests:
            results.append(scored[np.arange(start, start + len(request))])
            start += len(request)
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scorer, name)


@dataclass
class BatchedModels:
    """One :class:`Models` bundle shared by many streams, its detector and scorers batched across
    them.  ``models`` is what each stream's processor uses; ``register`` once per stream."""

    models: Models
    batchers: list[StreamBatcher]

    @classmethod
    def wrap(cls, models: Models, max_wait_s: float = 0.02, max_frames: int = 8, max_faces: int = 64,
             observe: BatchObserver | None = None) -> "BatchedModels":
        detector = BatchedDetector(models.detector, max_frames, max_wait_s, observe)
        scorer = BatchedScorer(models.scorer, max_faces, max_wait_s, "score", observe)
        embedder = None if models.embedder is None else BatchedScorer(models.embedder, max_faces, max_wait_s, "embed", observe)
        batched = Models(detector=detector, region_detector=models.region_detector, aligner=models.aligner,  # type: ignore[arg-type]
                         scorer=scorer, embedder=embedder)  # type: ignore[arg-type]
        batchers: list[StreamBatcher] = [detector.batcher, scorer.batcher]
        if embedder is not None:
            batchers.append(embedder.batcher)
        return cls(batched, batchers)

    def register(self) -> None:
        for batcher in self.batchers:
            batcher.register()

    def unregister(self) -> None:
        for batcher in self.batchers:
            batcher.unregister()

    def close(self) -> None:
        for batcher in self.batchers:
            batcher.close()
