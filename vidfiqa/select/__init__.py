"""Selection: what is kept of each track while it is open (a bounded candidate pool), smoothing
of its quality series, and the choice of its best, mutually different frames when it ends."""

from .diverse import frame_similarity, select_diverse
from .pool import TrackHistory
from .result import QualitySeries, TrackResult
from .rule import SelectionRule, finish_track
from .smoothing import smooth_quality

__all__ = ["QualitySeries", "SelectionRule", "TrackHistory", "TrackResult", "finish_track", "frame_similarity", "select_diverse", "smooth_quality"]
