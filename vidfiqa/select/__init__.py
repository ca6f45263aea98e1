"""Selection and the end of a track.

While a track is open: its bounded candidate pool and quality series (``pool.py``), its identity
reference (``identity.py``) and its template (``template_rules.py``).  When it ends: smoothing
and the choice of its best, mutually different frames (``finish.py``, by the selection rule of
``rule.py`` and ``diverse.py``), then the end-of-track chain (``chain.py``): the face gate
(``gate.py``), the person (``persons.py``, ``people.py``), and one :class:`TrackRecord` for every
sink (``vidfiqa/sinks/``).

The names of the three vectors a track has: its *template* (every scored face weighted by
quality: what manifests and events give users), its *link template* (what tracks are linked into
persons by) and, while it is open, its identity *reference* (what splits a track when another
person takes over).
"""

from .chain import EndOfTrack, InputPersons, StreamPersons, TrackRecord
from .diverse import frame_similarity, select_diverse
from .finish import finish_track
from .pool import TrackHistory
from .result import TRACK_ENDS, QualitySeries, TrackEnd, TrackResult
from .rule import DEFAULT_FPS, SelectionRule, frame_times, merit
from .smoothing import smooth_quality

__all__ = ["DEFAULT_FPS", "EndOfTrack", "InputPersons", "QualitySeries", "SelectionRule", "StreamPersons", "TRACK_ENDS", "TrackEnd",
           "TrackHistory", "TrackRecord", "TrackResult", "finish_track", "frame_similarity", "frame_times", "merit", "select_diverse",
           "smooth_quality"]
