"""The models a stream of frames needs, built once and shared.

:class:`Models` bundles the detector (and the small one for regions around tracked faces), the
aligner and the quality scorer (and, for scorers that give no embedding, the embedder that feeds
diversity).  :class:`ModelCache` hands cameras whose model settings agree the same bundle, so a
box with many cameras loads each model once.  Sharing across threads is safe: calls are
serialised per model (see ``_shareable``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from ..align import Aligner
from ..components import ComponentMeter
from ..detect.base import FaceDetector
from ..detect.region import RegionRedetector
from ..faces import Faces
from ..quality.base import QualityScorer
from .settings import RunSettings

# The settings that decide which models are loaded: cameras that agree on them share a bundle.
MODEL_SETTINGS = ("detector", "detector_model", "input_size", "small_faces", "detect_score", "roi_input_size", "quality_method",
                  "quality_model", "student_int8", "batch_size", "threads", "device")


class Serialized:
    """Wraps a model that is not safe to call from two threads at once: one call at a time."""

    def __init__(self, model: Any):
        self._model = model
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._model(*args, **kwargs)

    def detect(self, *args: Any, **kwargs: Any) -> Faces:
        with self._lock:
            return self._model.detect(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def _shareable(model: Any) -> Any:
    """Every shared model runs one call at a time.  Even onnxruntime sessions, which allow
    concurrent runs: each concurrent run needs its own activation buffers, and on 2 cores four
    cameras took as long with calls serialised (36.6 s vs 37.3 s for 120 frames each) while
    using 44 MiB less memory.  Models that keep state between calls (OpenCV's YuNet keeps its
    input size; PyTorch scorers) need the lock anyway."""
    return model if isinstance(model, Serialized) else Serialized(model)


@dataclass(frozen=True)
class Models:
    """Everything a :class:`~vidfiqa.pipeline.processor.TrackProcessor` runs, apart from its own
    per-stream state (tracker, queues)."""

    detector: FaceDetector
    region_detector: RegionRedetector | None  # None: every frame is searched whole
    aligner: Aligner
    scorer: QualityScorer
    embedder: Callable[[Faces], Faces] | None = None  # for scorers that give no embedding
    # Built on first use by main_stream_region(): one per bundle, shared by its cameras' cuts.
    main_region: RegionRedetector | None = None
    # Quality components (pose, size, sharpness, exposure, noise, compression, occlusion): a few
    # numpy and OpenCV calls per face, no model but a 129-number head; safe to share.
    components: ComponentMeter | None = None

    @classmethod
    def build(cls, settings: RunSettings, detector: FaceDetector | None = None, roi_detector: FaceDetector | None = None,
              scorer: QualityScorer | None = None, threads: int | None = None) -> "Models":
        """Build the models ``settings`` name; tests and services may pass ready ones in.
        ``threads``: onnxruntime threads per model when the ``threads`` setting is 0 (None: every
        CPU this process may use; a Ray camera actor passes the CPUs it declared)."""
        from ..detect import make_detector
        from ..onnx_session import default_threads

        s = settings
        # Every core: the sessions' idle threads sleep rather than spin (onnx_session.py), so the
        # decoder's thread still gets its share.  With spinning, one thread fewer was faster.
        threads = s.threads or threads or default_threads()
        common: dict[str, Any] = dict(model_path=s.detector_model, device=s.device, score_threshold=s.detect_score, threads=threads)
        detector = detector or make_detector(s.detector, input_size=s.input_size, small_faces=s.small_faces, **common)
        region = None
        if s.detect_every > 1:
            region = RegionRedetector(_shareable(roi_detector or make_detector(s.detector, input_size=s.roi_input_size, **common)),
                                      size=s.roi_input_size)
        scorer = scorer or make_pipeline_scorer(s, threads)
        embedder = None
        if not getattr(scorer, "embeds", False):
            # Diversity compares the student's embeddings, whichever method ranks the frames.
            from ..quality.ediffiqa import EDifFIQA

            embedder = _shareable(EDifFIQA(onnx=s.quality_model, int8=s.student_int8, device=s.device, batch_size=s.batch_size, threads=threads))
        return cls(detector=_shareable(detector), region_detector=region, aligner=Aligner(), scorer=_shareable(scorer), embedder=embedder,
                   components=ComponentMeter(embedding_model_name(s)))


def main_stream_region(models: Models, settings: RunSettings) -> RegionRedetector:
    """The region detector that finds a pick's face again in a main-stream frame (select/recut.py):
    the bundle's own when it has one (``detect_every`` > 1), else one built for it."""
    if models.region_detector is not None:
        return models.region_detector
    if models.main_region is not None:  # cameras sharing a bundle share one session, not one each
        return models.main_region
    from ..detect import make_detector
    from ..onnx_session import default_threads

    s = settings
    detector = make_detector(s.detector, input_size=s.roi_input_size, model_path=s.detector_model, device=s.device,
                             score_threshold=s.detect_score, threads=s.threads or default_threads())
    region = RegionRedetector(_shareable(detector), size=s.roi_input_size)
    object.__setattr__(models, "main_region", region)  # a cache filled on first use: the bundle is otherwise immutable
    return region


def make_pipeline_scorer(settings: RunSettings, threads: int) -> QualityScorer:
    """The quality method the settings name: the bundled student by default, any ``make_scorer``
    method otherwise."""
    import importlib
    import inspect

    from ..quality import SCORERS, make_scorer

    s = settings
    if s.quality_method == "ediffiqa":
        return make_scorer("ediffiqa", onnx=s.quality_model, int8=s.student_int8, device=s.device, batch_size=s.batch_size, threads=threads)
    if s.quality_method not in SCORERS:
        return make_scorer(s.quality_method)  # the one-line error naming the methods
    module, _, factory = SCORERS[s.quality_method].partition(":")
    takes = inspect.signature(getattr(importlib.import_module(module), factory)).parameters
    return make_scorer(s.quality_method, **({"device": s.device} if "device" in takes else {}))


def embedding_model_name(settings: RunSettings) -> str:
    """The model whose embeddings the pipeline keeps (and templates are made of): the student
    (``quality_model``, or the bundled file, int8 or float), whichever method ranks the faces."""
    from pathlib import Path

    if settings.quality_model:
        return Path(settings.quality_model).stem
    return "ediffiqa_t_mfn_int8" if settings.student_int8 else "ediffiqa_t_mfn"


class ModelCache:
    """One :class:`Models` per distinct set of model settings, built on first use (``threads``:
    as :meth:`Models.build`)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self._bundles: dict[tuple, Models] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(settings: RunSettings) -> tuple:
        values = {name: getattr(settings, name) for name in MODEL_SETTINGS}
        values["roi_input_size"] = settings.roi_input_size if settings.detect_every > 1 else None
        return tuple(sorted(values.items()))

    def get(self, settings: RunSettings) -> Models:
        key = self.key(settings)
        with self._lock:  # two cameras starting at once must not both load the models
            if key not in self._bundles:
                self._bundles[key] = Models.build(settings, threads=self.threads)
            return self._bundles[key]

    def __len__(self) -> int:
        return len(self._bundles)
