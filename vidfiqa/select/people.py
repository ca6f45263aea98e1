"""Best frames per person: the finished tracks of a whole input linked into persons
(select/persons.py), and each person's best, mutually different frames chosen over the picks of
all of its tracks with the same rule as a track's (select/diverse.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .diverse import select_diverse
from .persons import TrackSpan, link_persons
from .result import TrackResult
from .rule import SelectionRule, frame_times, merit


@dataclass(frozen=True, eq=False)
class TrackPicks:
    """What grouping keeps of a finished track: when it was seen, its template, and its picks
    (merit, time, embedding per pick, in the track's rank order)."""

    track_id: int
    start_s: float
    end_s: float
    link_template: np.ndarray
    merit: np.ndarray  # (k,) rule.merit of each pick
    times: np.ndarray  # (k,) seconds
    embeddings: np.ndarray  # (k, D)

    @classmethod
    def of(cls, result: TrackResult, fps: float) -> "TrackPicks | None":
        """None for a track with nothing scored (no template, nothing to show)."""
        if result.link_template is None or not len(result.chosen):
            return None
        chosen = result.chosen
        assert chosen.quality is not None and chosen.embeddings is not None
        series_t = frame_times(result.series.pts, result.series.frame_index, fps)
        return cls(result.track_id, float(series_t[0]), float(series_t[-1]), result.link_template,
                   merit(chosen.quality, result.chosen_smoothed),
                   frame_times(chosen.timestamp, chosen.frame_index, fps), chosen.embeddings.astype(np.float64))


@dataclass(frozen=True)
class Person:
    person_id: int  # 1 = the person with the best frame
    track_ids: list[int]  # in order of appearance
    picks: list[tuple[int, int]]  # (track id, rank - 1 of that track's pick), best first


def group_people(tracks: list[TrackPicks], rule: SelectionRule, threshold: float) -> list[Person]:
    """Persons of these tracks, best person (highest merit of a pick) first."""
    if not tracks:
        return []
    spans = [TrackSpan(t.track_id, t.start_s, t.end_s, t.link_template, float(t.merit.max())) for t in tracks]
    person_of = link_persons(spans, threshold)
    members: dict[int, list[TrackPicks]] = {}
    for t in sorted(tracks, key=lambda t: (t.start_s, t.track_id)):
        members.setdefault(person_of[t.track_id], []).append(t)
    people = []
    for pid in sorted(members):  # link_persons numbers persons by their best track
        own = members[pid]
        index = [(t.track_id, k) for t in own for k in range(len(t.merit))]
        merits = np.concatenate([t.merit for t in own])
        times = np.concatenate([t.times for t in own])
        embeddings = np.concatenate([t.embeddings for t in own])
        chosen = select_diverse(merits, times, embeddings, rule)
        people.append(Person(pid, [t.track_id for t in own], [index[i] for i in chosen]))
    return people
