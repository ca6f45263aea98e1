"""Keeping a track to one person: watch its face embeddings and say where another person took over.

A tracker follows boxes, not people: after a missed cut, inside a dissolve, or when two people
cross, the same track id continues on someone else.  Every scored face has the student's
embedding; the track keeps a running *reference* (the mean of its unit embeddings; not a template
for users: those are in template_rules.py).  A face whose cosine to the reference falls below
``threshold`` is a *suspect*.  When ``confirm`` scored faces in a row are suspects and agree with
each other (cosine to their own mean at least ``threshold``), the identity changed between the
last face that agreed with the reference and the first suspect (half-way: the detections in
between were not scored); any face that agrees with the reference again clears the suspects, so one blurred or turned frame never splits a track.  Faces below
``min_quality`` do not vote: a dark, noisy or blurred stretch of one person gives embeddings
that agree with each other and not with the person's reference, and would split the track (seen
on the bundled sample's dark segment, quality -0.08, and on a clip that opens heavily blurred,
quality 0.06-0.18: analysed at 5 frames a second, the blurred faces made the reference and the
sharp ones that followed split the track; at 0.05 they voted, at 0.2 they do not).  A non-face that a track starts on (the
back of a head, quality below 0) does not vote either; the face gate and ``min_quality`` keep
such frames out of the picks.

Measured with the student's embeddings (`benchmarks/identity_split.py`, 10 single-person shared
clips, results/identity_split_vm.json): a frame against its own track's reference has cosine
>= 0.40 (1st percentile 0.48), against another person's reference <= 0.31 (99th percentile 0.24);
0.35 lies between.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..boxes import l2_normalize


@dataclass
class IdentityWatch:
    threshold: float = 0.35
    confirm: int = 3
    min_quality: float = 0.2
    reference: np.ndarray | None = None  # sum of the accepted unit embeddings
    suspects: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (frame index, unit embedding)
    last_agreed: int | None = None  # frame index of the last face that agreed with the reference

    def seed(self, embeddings: np.ndarray) -> None:
        """Start from these faces (the suspects that became a new track)."""
        self.reference = l2_normalize(np.asarray(embeddings, np.float64)).sum(axis=0)
        self.suspects = []

    def check(self, frame_index: int, embedding: np.ndarray, quality: float) -> int | None:
        """Take one scored face (in frame order); returns the frame index where a new identity
        starts when this face confirms a change, else None."""
        if self.threshold <= 0 or not quality >= self.min_quality:
            return None
        unit = l2_normalize(np.asarray(embedding, np.float64))
        if self.reference is None:
            self.reference = unit.copy()
            self.last_agreed = int(frame_index)
            return None
        if float(unit @ l2_normalize(self.reference)) >= self.threshold:
            self.reference = self.reference + unit
            self.suspects = []
            self.last_agreed = int(frame_index)
            return None
        self.suspects.append((int(frame_index), unit))
        if len(self.suspects) < self.confirm:
            return None
        group = np.stack([u for _, u in self.suspects])
        if float((group @ l2_normalize(group.sum(axis=0))).min()) < self.threshold:
            self.suspects = self.suspects[1:]  # the suspects are not one face either: keep watching
            return None
        # The detections between the last face that agreed and the first suspect were not scored
        # (score_every) or did not vote: whose they are is unknown, so the change is placed
        # half-way between the two.
        first = self.suspects[0][0]
        return first if self.last_agreed is None else min(first, (self.last_agreed + first) // 2 + 1)
