"""A ByteTrack-style multi-face tracker (Zhang et al., "ByteTrack: Multi-Object Tracking by
Associating Every Detection Box", ECCV 2022), written for :class:`~vidfiqa.faces.Faces`.

Why ByteTrack: faces that turn away, blur or are partly covered get *low* detector scores.  A
tracker that drops them loses the identity exactly where the quality stage needs the whole
sequence.  ByteTrack keeps those boxes, but only lets them *continue* tracks that are already
being followed, never start new ones, so they fill gaps without adding false tracks.

One :meth:`ByteTracker.update` per processed frame:

1. predict every track one step ahead with a constant-velocity Kalman filter;
2. match high-score detections to the confirmed tracks, tracked and lost alike (IoU, optionally
   weighted by detection score);
3. recover lost tracks from their last *observed* box: confident detections still unmatched are
   matched to unmatched lost tracks by IoU with the box where each was last seen (as in OC-SORT's
   observation-centric recovery).  A face that stops for a moment while hidden is otherwise lost
   for good: its Kalman prediction keeps drifting with the old velocity, and a person standing in
   a crowd came back as a new track at the same spot.  A recovered track restarts its filter
   there, with no velocity;
4. match low-score detections to the still-unmatched tracks that were seen in the previous
   update (not to lost ones: an old prediction plus an unsure box is too weak a link);
5. match the remaining high-score detections to the tracks born in the previous update; those
   that find nothing are removed, so a one-frame false positive does not linger;
6. start a track for every remaining detection confident enough, and end tracks that have been
   lost for longer than the buffer.

Every new track gets its id and is reported at once, so each id the caller sees is also reported
in ``ended`` exactly once, whatever the reason it ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import linear_sum_assignment

from ..boxes import iou_matrix
from ..faces import Faces


@dataclass(frozen=True)
class TrackerSettings:
    """Thresholds of the tracker; the defaults are ByteTrack's (MOT17 settings)."""

    high_score: float = 0.6  # detections >= this take part in the first association and may start tracks
    low_score: float = 0.3  # detections in [low_score, high_score) only take part in the second association
    new_track_score: float = 0.7  # a detection that matches nothing starts a track only if its score >= this
    match_iou: float = 0.2  # first association: accept a pair only if IoU >= this (cost 1 - IoU <= 0.8)
    low_match_iou: float = 0.5  # second association: low-score detections vs unmatched tracked tracks
    recover_iou: float = 0.3  # lost tracks vs leftover confident detections, by IoU with the track's last observed box
    unconfirmed_match_iou: float = 0.3  # tracks seen only once vs leftover high-score detections
    lost_after_s: float = 1.0  # a track unmatched for longer than this (seconds of video) is ended
    fuse_score: bool = True  # multiply IoU by detection score in the first association

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score:
            raise ValueError(f"need 0 <= low_score <= high_score; got {self.low_score}, {self.high_score}")
        if self.lost_after_s < 0:
            raise ValueError(f"lost_after_s must not be negative; got {self.lost_after_s}")


# --------------------------------------------------------------------------- box geometry
def _xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """Boxes as (centre x, centre y, aspect w/h, height): the Kalman filter's measurement.

    Sizes are floored at a thousandth of a pixel so that a degenerate box cannot make the
    height-scaled noise zero (a singular covariance).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    w = np.maximum(boxes[..., 2] - boxes[..., 0], 1e-3)
    h = np.maximum(boxes[..., 3] - boxes[..., 1], 1e-3)
    return np.stack([boxes[..., 0] + w / 2, boxes[..., 1] + h / 2, w / h, h], axis=-1)


def _xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    cx, cy, a, h = np.moveaxis(xyah[..., :4], -1, 0)
    w = a * h
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


# --------------------------------------------------------------------------- Kalman filter
# State: (cx, cy, a, h) and their velocities per update; constant-velocity motion.  Noise is
# proportional to the box height (as in DeepSORT / ByteTrack), so near and far faces are treated
# alike; the aspect ratio gets small fixed noise because a face's w/h hardly changes.
_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160
_MOTION = np.eye(8) + np.eye(8, k=4)  # x' = x + v
_OBSERVE = np.eye(4, 8)  # we measure the position part only


def _kalman_initiate(xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """State of a new track: measured position, zero velocity, wide velocity uncertainty."""
    h = xyah[3]
    std = np.array([
        2 * _STD_POSITION * h, 2 * _STD_POSITION * h, 1e-2, 2 * _STD_POSITION * h,
        10 * _STD_VELOCITY * h, 10 * _STD_VELOCITY * h, 1e-5, 10 * _STD_VELOCITY * h,
    ])
    return np.r_[xyah, np.zeros(4)], np.diag(std**2)


def _kalman_multi_predict(means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One step ahead for all tracks at once: (K, 8) means, (K, 8, 8) covariances."""
    h = means[:, 3]
    ones = np.ones_like(h)
    std = np.stack([
        _STD_POSITION * h, _STD_POSITION * h, 1e-2 * ones, _STD_POSITION * h,
        _STD_VELOCITY * h, _STD_VELOCITY * h, 1e-5 * ones, _STD_VELOCITY * h,
    ], axis=1)
    noise = np.zeros_like(covs)
    diag = np.arange(8)
    noise[:, diag, diag] = std**2
    return means @ _MOTION.T, _MOTION @ covs @ _MOTION.T + noise


def _kalman_update(mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard Kalman correction with one measurement (cx, cy, a, h)."""
    h = mean[3]
    measurement_noise = np.diag(np.array([_STD_POSITION * h, _STD_POSITION * h, 1e-1, _STD_POSITION * h]) ** 2)
    projected_mean = _OBSERVE @ mean
    projected_cov = _OBSERVE @ cov @ _OBSERVE.T + measurement_noise
    factor = cho_factor(projected_cov, lower=True, check_finite=False)
    gain = cho_solve(factor, (cov @ _OBSERVE.T).T, check_finite=False).T
    return mean + gain @ (xyah - projected_mean), cov - gain @ projected_cov @ gain.T


# --------------------------------------------------------------------------- association
def _assign(cost: np.ndarray, max_cost: float) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    """Minimum-cost matching that only accepts pairs with ``cost <= max_cost``.

    Returns (matched (row, col) pairs, unmatched rows, unmatched cols).  Pairs over the limit are
    made prohibitively expensive *before* solving, so the solver never trades an acceptable pair
    for one that would be rejected afterwards.
    """
    rows, cols = np.arange(cost.shape[0]), np.arange(cost.shape[1])
    if cost.size == 0:
        return [], rows, cols
    r, c = linear_sum_assignment(np.where(cost <= max_cost, cost, max_cost + 1e6))
    keep = cost[r, c] <= max_cost
    r, c = r[keep], c[keep]
    return list(zip(r.tolist(), c.tolist())), np.setdiff1d(rows, r), np.setdiff1d(cols, c)


@dataclass(eq=False)
class _Track:
    """One followed face: its Kalman state and bookkeeping (internal, mutated by the tracker)."""

    track_id: int
    mean: np.ndarray
    covariance: np.ndarray
    last_seen: int  # number of the update in which it was last matched
    last_box: np.ndarray  # xyxy of the detection it was last matched with
    confirmed: bool = False  # matched in at least two updates
    lost: bool = False  # unmatched in the latest update

    @property
    def box(self) -> np.ndarray:
        return _xyah_to_xyxy(self.mean)


# --------------------------------------------------------------------------- tracker
class ByteTracker:
    """Assign persistent ``track_id`` s to the faces of successive frames.

    ``step_s`` is the video time between two :meth:`update` calls (``N / fps`` when only every
    Nth frame is detected); with it ``settings.lost_after_s`` becomes a buffer of
    ``ceil(lost_after_s / step_s)`` (at least 1) updates that a lost track may stay unmatched
    before it is ended.  Ids start at 1 and are never reused by one tracker.
    """

    def __init__(self, settings: TrackerSettings | None = None, step_s: float = 1 / 30):
        if not step_s > 0:
            raise ValueError(f"step_s must be positive; got {step_s}")
        self.settings = settings or TrackerSettings()
        # The small tolerance keeps e.g. 1.1 / 0.1 = 11.000000000000002 from becoming 12.
        self.buffer = max(1, math.ceil(self.settings.lost_after_s / step_s - 1e-9))
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._update_count = 0

    @property
    def active_ids(self) -> list[int]:
        """Ids of the tracks currently followed, whether matched in the last update or lost."""
        return sorted(t.track_id for t in self._tracks)

    def predicted_boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids (T,), boxes (T, 4) xyxy) where each track is expected at the next update.

        Lets a caller look for known faces in small regions instead of the whole frame; the
        tracker's own state is not advanced.
        """
        if not self._tracks:
            return np.zeros(0, np.int64), np.zeros((0, 4))
        means = np.stack([t.mean for t in self._tracks])
        covs = np.stack([t.covariance for t in self._tracks])
        means[[t.lost for t in self._tracks], 7] = 0.0
        means, _ = _kalman_multi_predict(means, covs)
        return np.array([t.track_id for t in self._tracks], np.int64), _xyah_to_xyxy(means)

    def reset(self) -> list[int]:
        """End every track now (e.g. at a scene cut) and return their ids, sorted."""
        ended = self.active_ids
        self._tracks = []
        return ended

    def finish(self) -> list[int]:
        """End of input: end every track and return their ids, sorted."""
        return self.reset()

    def relabel(self, track_id: int) -> int:
        """A fresh id for the track now called ``track_id`` (another person took its place: the
        caller split it); the track goes on under the new id.  Returns the new id, also when
        ``track_id`` is no longer followed (the id is then only reserved)."""
        new_id = self._next_id
        self._next_id += 1
        for track in self._tracks:
            if track.track_id == track_id:
                track.track_id = new_id
        return new_id

    def update(self, faces: Faces) -> tuple[Faces, list[int]]:
        """Track the detections of one frame.

        Returns (tracked, ended): ``tracked`` holds the input rows that belong to a track, in
        input order, unchanged except for ``track_id``; ``ended`` the sorted ids of the tracks
        removed by this call.  ``faces`` itself is not modified.
        """
        s = self.settings
        self._update_count += 1
        self._predict()
        boxes = np.asarray(faces.boxes, dtype=np.float64)
        scores = np.asarray(faces.scores, dtype=np.float64)
        ids = np.full(len(faces), -1, dtype=np.int64)
        high = np.flatnonzero(scores >= s.high_score)
        low = np.flatnonzero((scores >= s.low_score) & (scores < s.high_score))

        # 1. confident detections vs every confirmed track, lost ones included (re-activation).
        confirmed = [t for t in self._tracks if t.confirmed]
        unmatched_tracks, unmatched_high = self._match(confirmed, boxes, scores, high, s.match_iou, s.fuse_score, ids)
        # 1b. lost tracks vs the confident leftovers, by where each was last seen.
        lost = [t for t in unmatched_tracks if t.lost]
        still_lost, unmatched_high = self._match(lost, boxes, scores, unmatched_high, s.recover_iou, False, ids, recover=True)
        unmatched_tracks = [t for t in unmatched_tracks if not t.lost] + still_lost
        # 2. unsure detections may only continue tracks that were matched in the previous update.
        recent = [t for t in unmatched_tracks if not t.lost]
        for track in self._match(recent, boxes, scores, low, s.low_match_iou, False, ids)[0]:
            track.lost = True
        # 3. tracks born last update get the confident leftovers; a track not seen again is dropped.
        newborn = [t for t in self._tracks if not t.confirmed]
        not_seen_again, leftover = self._match(newborn, boxes, scores, unmatched_high, s.unconfirmed_match_iou, False, ids)
        removed = {t.track_id for t in not_seen_again}
        # 4. what is still unexplained and confident enough starts a track; old lost tracks end.
        for d in leftover[scores[leftover] >= s.new_track_score]:
            ids[d] = self._start_track(boxes[d])
        removed.update(t.track_id for t in self._tracks if self._update_count - t.last_seen > self.buffer)
        self._tracks = [t for t in self._tracks if t.track_id not in removed]

        keep = ids >= 0
        return faces[keep].replace(track_id=ids[keep]), sorted(removed)

    # ----------------------------------------------------------------- steps of update()
    def _predict(self) -> None:
        """Move every track one update ahead.

        Lost tracks keep their position velocity but not their height velocity, as in ByteTrack,
        so a face that is gone for a while does not keep growing or shrinking.
        """
        if not self._tracks:
            return
        means = np.stack([t.mean for t in self._tracks])
        covs = np.stack([t.covariance for t in self._tracks])
        means[[t.lost for t in self._tracks], 7] = 0.0
        means, covs = _kalman_multi_predict(means, covs)
        for track, mean, cov in zip(self._tracks, means, covs):
            track.mean, track.covariance = mean, cov

    def _match(
        self,
        tracks: list[_Track],
        boxes: np.ndarray,
        scores: np.ndarray,
        candidates: np.ndarray,
        min_iou: float,
        fuse_score: bool,
        ids: np.ndarray,
        recover: bool = False,
    ) -> tuple[list[_Track], np.ndarray]:
        """Associate ``tracks`` with the detections ``candidates`` (row indices) by IoU.

        Matched tracks are corrected with their detection and the detection's row in ``ids`` is
        set.  ``recover``: compare with each track's last observed box instead of its prediction,
        and restart the filter of a matched track at its detection.  Returns the unmatched tracks
        and the unmatched candidate rows.
        """
        if not tracks or not len(candidates):
            return list(tracks), candidates
        track_boxes = np.array([t.last_box if recover else t.box for t in tracks]).reshape(-1, 4)
        similarity = iou_matrix(track_boxes, boxes[candidates])
        if fuse_score:
            similarity = similarity * scores[candidates][None, :]
        pairs, free_tracks, free_dets = _assign(1.0 - similarity, 1.0 - min_iou)
        for ti, di in pairs:
            row = candidates[di]
            if recover:
                tracks[ti].mean, tracks[ti].covariance = _kalman_initiate(_xyxy_to_xyah(boxes[row]))
            self._continue_track(tracks[ti], boxes[row])
            ids[row] = tracks[ti].track_id
        return [tracks[i] for i in free_tracks], candidates[free_dets]

    def _continue_track(self, track: _Track, box: np.ndarray) -> None:
        track.mean, track.covariance = _kalman_update(track.mean, track.covariance, _xyxy_to_xyah(box))
        track.last_seen = self._update_count
        track.last_box = np.array(box, np.float64)
        track.lost = False
        track.confirmed = True

    def _start_track(self, box: np.ndarray) -> int:
        mean, cov = _kalman_initiate(_xyxy_to_xyah(box))
        track = _Track(self._next_id, mean, cov, last_seen=self._update_count, last_box=np.array(box, np.float64))
        self._next_id += 1
        self._tracks.append(track)
        return track.track_id
