"""The end of a track: one chain for files and cameras.

    TrackResult --> face gate --> person --> TrackRecord --> every sink (vidfiqa/sinks/)
                    (gate.py)    (persons.py)

:class:`EndOfTrack` takes each finished :class:`~vidfiqa.select.result.TrackResult` (its picks
and template were chosen when it ended: ``finish.py``), asks the face gate whether it is a face
at all, gives an accepted track its person, and returns one :class:`TrackRecord` that carries
everything a sink needs.  `vidfiqa run` and `vidfiqa watch` (local or Ray) build it the same way
and differ only in how persons are linked:

* a file (:class:`InputPersons`): over the whole input, as tracks arrive; person ids are final only
  at the end, so a record's ``person_id`` is None and the gallery asks :meth:`InputPersons.people`
  whenever it rewrites the manifest;
* a camera (:class:`StreamPersons`): one track at a time as it ends, with bounded memory
  (``PersonMemory``); the id is known at once and travels in the record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Collection, Protocol

from .gate import FaceGate
from .people import Person, TrackPicks, group_people
from .persons import PersonMemory
from .result import TrackResult
from .rule import SelectionRule
from .template_rules import TemplateBuilder, merged

if TYPE_CHECKING:
    from ..faces import Faces
    from ..pipeline.settings import RunSettings


@dataclass(frozen=True, eq=False)
class TrackRecord:
    """One finished track as every sink receives it."""

    result: TrackResult  # the track: its series, its picks (``chosen``), its template
    rejected: str | None = None  # why the face gate turned it away (one line); None: accepted
    person_id: int | None = None  # a camera's person; None for a file's track (see InputPersons) or a rejected one
    stream: str | None = None  # the camera's name; None under `vidfiqa run`
    segment: int = 1  # 1, 2, ...: the parts of a live track longer than max_track_s
    wall_start: float | None = None  # wall-clock seconds at stream time 0 (cameras); None: a file
    # Set by the watch delivery (sinks/outbox.py) when the record enters it: the event's name and
    # the wall-clock time (seconds) it was emitted.  None under `vidfiqa run`.
    event_id: str | None = None
    emitted_at: float | None = None

    @property
    def track_id(self) -> int:
        return self.result.track_id

    @property
    def picks(self) -> "Faces":
        """The chosen frames, best first (``Faces`` rows with crops, context views, quality)."""
        return self.result.chosen

    @property
    def template(self) -> TemplateBuilder | None:
        """The track's template (every scored face, weighted by quality); None: nothing scored."""
        return self.result.template

    @property
    def accepted(self) -> bool:
        return self.rejected is None

    @property
    def is_event(self) -> bool:
        """What `vidfiqa watch` publishes: an accepted track with at least one pick."""
        return self.rejected is None and len(self.result.chosen) > 0

    def wall_of(self, pts: float) -> float:
        """Wall-clock seconds of a stream time (cameras only)."""
        if self.wall_start is None:
            raise ValueError("a file's record has no wall clock")
        return self.wall_start + pts

    def named(self, event_id: str, emitted_at: float) -> "TrackRecord":
        return replace(self, event_id=event_id, emitted_at=emitted_at)


class PersonLinker(Protocol):
    def assign(self, result: TrackResult) -> int | None:
        """The person id of an accepted track, if it is known now."""


class InputPersons:
    """`vidfiqa run`: persons of one input, linked over all of its tracks so far (``people.group_people``):
    constrained agglomerative clustering of the tracks' link templates; each person's picks are
    chosen again over the picks of all of its tracks, by the same rule as a track's."""

    def __init__(self, rule: SelectionRule, threshold: float, fps: float):
        """``fps`` turns frame numbers into seconds for a source without timestamps."""
        self.rule, self.threshold, self.fps = rule, threshold, fps
        self._picks: dict[int, TrackPicks] = {}
        self._templates: dict[int, TemplateBuilder] = {}

    def assign(self, result: TrackResult) -> None:
        picks = TrackPicks.of(result, self.fps)
        if picks is not None:
            self._picks[result.track_id] = picks
        if result.template is not None:
            self._templates[result.track_id] = result.template
        return None  # known only over the whole input: see people()

    def people(self, among: Collection[int] | None = None) -> list["PersonGroup"]:
        """The persons of the tracks so far, best person first (milliseconds for hundreds of
        tracks); ``among``: of these tracks only (a sink's own: those it managed to write)."""
        picks = [p for tid, p in self._picks.items() if among is None or tid in among]
        groups = group_people(picks, self.rule, self.threshold)
        return [PersonGroup(p, merged([self._templates[t] for t in p.track_ids if t in self._templates])) for p in groups]


@dataclass(frozen=True)
class PersonGroup:
    """One person of an input: its tracks, its picks over them, its template."""

    person: Person
    template: TemplateBuilder | None  # every scored face of the person's tracks; None: none

    @property
    def person_id(self) -> int:
        return self.person.person_id

    @property
    def track_ids(self) -> list[int]:
        return self.person.track_ids

    @property
    def picks(self) -> list[tuple[int, int]]:
        return self.person.picks


class StreamPersons:
    """`vidfiqa watch`: persons of a live stream, one track at a time (``persons.PersonMemory``): a person who
    comes back within ``memory_s`` keeps their id."""

    def __init__(self, threshold: float, memory_s: float):
        self.memory = PersonMemory(threshold=threshold, memory_s=memory_s)

    def assign(self, result: TrackResult) -> int | None:
        if result.link_template is None:
            return None  # nothing scored: nothing to link by
        return self.memory.assign(result.link_template, result.first_pts, result.last_pts)


class EndOfTrack:
    """The chain (see the module docstring): ``record = end_of_track(result)``."""

    def __init__(self, gate: FaceGate | None, persons: PersonLinker, stream: str | None = None, wall_start: float | None = None,
                 recut: Callable[[TrackResult], TrackResult] | None = None):
        self.gate, self.persons, self.stream, self.wall_start = gate, persons, stream, wall_start
        # Cuts an accepted track's picks from the main stream (recut.py), after the gate and the
        # person, which judge the analysed faces the picks were chosen on.
        self.recut = recut
        self._segments: dict[int, int] = {}  # track id -> segments emitted so far, while it goes on

    @classmethod
    def of(cls, settings: "RunSettings", persons: PersonLinker, stream: str | None = None, wall_start: float | None = None,
           recut: Callable[[TrackResult], TrackResult] | None = None) -> "EndOfTrack":
        """The chain of these settings (the face gate when ``face_gate`` is on) with ``persons``:
        :class:`InputPersons` for a file, :class:`StreamPersons` for a camera; ``recut``: the
        main-stream cut (recut.py), when there is a main stream."""
        return cls(FaceGate() if settings.face_gate else None, persons, stream=stream, wall_start=wall_start, recut=recut)

    def __call__(self, result: TrackResult) -> TrackRecord:
        tid = result.track_id
        segment = self._segments.pop(tid, 0) + 1
        if result.ended == "max_duration":
            self._segments[tid] = segment  # the track goes on: its next record is the next segment
        reason = self.gate.check(result) if self.gate is not None else None
        person_id = self.persons.assign(result) if reason is None else None
        if reason is None and self.recut is not None:
            result = self.recut(result)
        return TrackRecord(result, rejected=reason, person_id=person_id, stream=self.stream, segment=segment, wall_start=self.wall_start)
