"""Every setting of `vidfiqa run`, in one flat dataclass, and how presets (TOML) and overrides
combine: built-in defaults < ``--config`` preset < command-line options / keyword arguments.

The TOML files group settings into tables (``[decode]``, ``[detect]`` ...) for people to read;
the tables are only headings: every key name is unique across them.
Values must have the setting's type, in a preset as in a keyword argument
(:mod:`vidfiqa.config_values`: ``write_series = "yes"`` is refused, naming the file and key).
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package
    import tomli as tomllib  # type: ignore[import-not-found]

from ..config_values import coerce
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..select.rule import SelectionRule

# The presets live in the repository's configs/; vidfiqa/presets links to them so that wheels
# carry them too (setuptools copies the files behind the link).
CONFIG_DIR = Path(__file__).resolve().parents[1] / "presets"


def _f(default: Any, help: str):
    """A setting with its help text (shown by `vidfiqa run --help`)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class RunSettings:
    # ---- decode
    decoder: str = _f("auto", 'Video decoder: auto, pyav, decord or gpu (NVDEC).')
    stride: int = _f(1, 'Process every Nth frame only (the others are decoded but skipped); fps_cap may raise it.')
    fps_cap: float = _f(5.0, 'Analyse at most this many frames per second of video: the stride becomes at least ceil(video fps / fps_cap) (0: every frame, or every stride-th).')
    decode_threads: int = _f(0, "Decoder threads (0: FFmpeg's choice).")
    video_stream: int | None = _f(None, 'For a file with several video streams: the index of the one to read (default: the largest; the manifest says which).')
    fps: float | None = _f(None, 'Frame rate of an image-sequence folder (default: timestamps unknown).')
    # ---- detect
    detector: str = _f("retinaface", 'Face detector: retinaface or yunet.')
    detector_model: str | None = _f(None, 'Detector weights (required for yunet).')
    input_size: int = _f(640, 'Most pixels on the long side of the frame the detector sees (larger frames are shrunk to it, smaller ones searched at their own size).')
    detect_score: float = _f(0.3, 'Lowest detector confidence kept (low-confidence faces may only continue tracks).')
    detect_every: int = _f(1, 'Search the whole frame every Nth processed frame; in between, re-find tracked faces near their predicted place.')
    small_faces: bool = _f(True, 'Frames at least 2.5 times input_size (1080p, not 720p, at 640) get a second, closer look at the unsure candidates of the first pass, so small faces are found.')
    roi_input_size: int = _f(192, 'Detector input size for the regions around tracked faces.')
    # ---- track
    track_high_score: float = _f(0.6, 'Detections this confident are matched to tracks first.')
    track_new_score: float = _f(0.85, 'Confidence a detection needs to start a new track.')
    lost_after_s: float = _f(1.0, 'Seconds a face may be missing before its track ends.')
    scene_cut: float = _f(3.0, "A frame whose content change is this many times the shot's recent mean change starts a new shot (hard cut); cross-dissolves are found too (0: both off).")
    min_track_detections: int = _f(3, 'Tracks with fewer detections are dropped as spurious.')
    identity_split: float = _f(0.35, "Split a track where its face embedding's cosine to the track's template stays below this (another person took over; 0: off).")
    identity_confirm: int = _f(3, 'Scored faces in a row that must disagree with the track before it is split (one blurred frame never splits).')
    # ---- score
    quality_method: str = _f("ediffiqa", 'Quality method that ranks the frames: ediffiqa (the bundled student) or any `vidfiqa score --method`; diversity always uses the student\'s embeddings.')
    quality_model: str | None = _f(None, 'eDifFIQA ONNX model (default: the bundled student).')
    student_int8: bool = _f(True, "Run the bundled student in int8: twice as fast on a CPU, the same ranking within measurement (benchmarks/student_int8.py); false: in float.")
    score_every: int = _f(1, "Score a track's face on every Nth detection only, unless its quality is changing (see score_change).")
    score_change: float = _f(0.05, "A track whose last two scores differ by more than this is scored on every detection until it settles (1: never).")
    batch_size: int = _f(32, 'Face crops per quality-model call.')
    max_wait_s: float = _f(0.5, 'Seconds a crop may wait for a full batch.')
    threads: int = _f(0, "onnxruntime threads per model (0: all CPUs).")
    device: str = _f("cpu", 'cpu, cuda or auto (cuda when onnxruntime-gpu sees a GPU).')
    # ---- gates
    min_face_size: float = _f(24.0, 'Faces whose box is smaller (shorter side, pixels) are tracked but not scored.')
    face_gate: bool = _f(True, 'Move tracks that are not face-like (the quality model and the detector both doubt them) from the gallery to the manifest\'s rejected list.')
    max_yaw: float | None = _f(None, 'Picks must face the camera within this many degrees sideways (head pose from the landmarks; none: no limit).')
    max_pitch: float | None = _f(None, 'Picks must face the camera within this many degrees up or down (none: no limit).')
    min_inter_eye_px: float | None = _f(None, 'Picks need at least this many pixels between the eyes in the analysed frame (none: no limit).')
    min_quality: float | None = _f(0.05, 'Smoothed quality a frame needs to be selected (measured: keeps every usable face, low-resolution ones too; none: no minimum).')
    # ---- smooth
    smooth_window: int = _f(5, 'Running median over this many detections (odd; 1: off).')
    smooth_sigma: float = _f(1.0, 'Then a Gaussian of this sigma, in detections (0: off).')
    # ---- select
    top_k: int = _f(3, 'Frames to keep per track.')
    diversity: float = _f(0.3, 'Selection trade-off: 0 = quality only, 1 = difference only.')
    time_scale_s: float = _f(2.0, 'Seconds over which two frames stop counting as close in time.')
    embedding_weight: float = _f(0.5, 'Weight of embedding similarity (vs closeness in time) in frame similarity.')
    min_gap_s: float = _f(0.25, 'Selected frames are at least this many seconds apart.')
    candidates: int = _f(32, 'Candidate frames per track kept in memory (spread over the track).')
    # ---- persons
    person_threshold: float = _f(0.375, "Cosine similarity of two tracks' templates (student embeddings) at or above which they are one person (1: link only identical templates).")
    # ---- output
    context_scale: float = _f(2.2, "Context image side, relative to the face box's longer side.")
    context_size: int = _f(256, 'Context images are at most this many pixels wide.')
    write_series: bool = _f(True, 'Write a per-frame quality CSV for every track.')

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def selection_rule(self) -> "SelectionRule":
        """The smoothing and selection settings, as the one rule every selection uses (tracks,
        persons, `vidfiqa eval ytf --rule selected`)."""
        from ..select.rule import SelectionRule

        from ..components import ComponentLimits

        limits = ComponentLimits(self.max_yaw, self.max_pitch, self.min_inter_eye_px)
        return SelectionRule(**{f.name: getattr(self, f.name) for f in fields(SelectionRule) if f.name != "limits"}, limits=limits)

    def stride_for(self, fps: float | None) -> int:
        """The stride a video of this frame rate is analysed at: ``stride``, raised so that at most
        ``fps_cap`` frames a second are analysed (a source whose rate is unknown keeps ``stride``)."""
        if not self.fps_cap or not fps or fps <= 0:
            return self.stride
        return max(self.stride, math.ceil(fps / self.fps_cap - 1e-6))

    def validate(self) -> "RunSettings":
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(self.decoder in ("auto", "pyav", "decord", "gpu"), f"decoder must be auto, pyav, decord or gpu, not {self.decoder!r}")
        need(self.detector in ("retinaface", "yunet"), f"detector must be retinaface or yunet, not {self.detector!r}")
        need(self.device in ("cpu", "cuda", "auto"), f"device must be cpu, cuda or auto, not {self.device!r}")
        for name in ("stride", "detect_every", "score_every", "batch_size", "top_k", "candidates", "min_track_detections", "identity_confirm"):
            need(getattr(self, name) >= 1, f"{name} must be at least 1")
        need(self.smooth_window >= 1 and self.smooth_window % 2 == 1, "smooth_window must be an odd number >= 1")
        need(32 <= self.input_size <= 4096 and 32 <= self.roi_input_size <= 4096, "input sizes must be within 32..4096 pixels")
        for name in ("detect_score", "track_high_score", "track_new_score", "diversity", "embedding_weight", "identity_split", "person_threshold",
                     "score_change"):
            need(0.0 <= getattr(self, name) <= 1.0, f"{name} must be within 0..1")
        need(self.candidates >= self.top_k, "candidates must be at least top_k")
        for name in ("max_yaw", "max_pitch"):
            need(getattr(self, name) is None or 0 <= getattr(self, name) <= 90, f"{name} must be within 0..90 degrees")
        need(self.min_inter_eye_px is None or self.min_inter_eye_px >= 0, "min_inter_eye_px must not be negative")
        for name in ("max_wait_s", "lost_after_s", "time_scale_s", "min_gap_s", "smooth_sigma", "min_face_size"):
            need(getattr(self, name) >= 0, f"{name} must not be negative")
        need(self.time_scale_s > 0, "time_scale_s must be positive")
        need(self.scene_cut == 0 or self.scene_cut >= 1.0, "scene_cut must be 0 (off) or a ratio of at least 1")
        need(self.context_scale >= 1.0 and self.context_size >= 32, "context_scale must be >= 1 and context_size >= 32")
        need(self.fps is None or self.fps > 0, "fps must be positive")
        need(self.fps_cap >= 0, "fps_cap must not be negative (0: no cap)")
        need(self.video_stream is None or self.video_stream >= 0, "video_stream must be a stream index (0 or more)")
        need(self.threads >= 0 and self.decode_threads >= 0, "threads must not be negative")
        return self


# Each field's annotation as written (a string: this module uses postponed annotations).
FIELD_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(RunSettings)}


def presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml")) if CONFIG_DIR.is_dir() else []


def read_toml(path: Path, missing: str) -> dict[str, Any]:
    """A TOML file's tables; a missing or malformed file is a one-line ConfigError."""
    if not path.is_file():
        raise ConfigError(f"{missing}: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None


def load_config(config: str | Path | None) -> dict[str, Any]:
    """Flat {setting: value} from a preset name (``fast``) or a TOML file path."""
    if config is None:
        return {}
    path = Path(config)
    if not path.suffix and not path.exists():
        path = CONFIG_DIR / f"{config}.toml"
        if not path.is_file():
            raise ConfigError(f"no preset named {config!r}: choose one of {', '.join(presets()) or '(none installed)'} or give a .toml path")
    tables = read_toml(path, missing="config file not found")
    flat: dict[str, Any] = {}
    for key, value in tables.items():
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for name, item in items:
            if name in flat:
                raise ConfigError(f"{path}: {name!r} is set twice")
            if name not in FIELD_TYPES:
                raise ConfigError(f"{path}: unknown setting {name!r}")
            flat[name] = coerce(item, FIELD_TYPES[name], name, where=str(path))
    return flat


def make_settings(config: str | Path | None = None, **overrides: Any) -> RunSettings:
    """Defaults, then the preset, then ``overrides`` (entries that are None are ignored).

    Preset and override values must have their setting's type (:mod:`vidfiqa.config_values`).
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(FIELD_TYPES))
    if unknown:
        raise ConfigError(f"unknown setting{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    values = load_config(config)
    values.update({k: coerce(v, FIELD_TYPES[k], k) for k, v in overrides.items()})
    return replace(RunSettings(), **values).validate()
