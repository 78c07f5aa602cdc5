"""Who is who across frames.

When the estimator gives track ids (OpenPose ``person_id``, mmpose ``track_id``, a JSON-lines
``id``), they are the person ids. Persons without one are linked by :class:`CentroidTracker`: each
detection goes to the active track whose last centre (the mean of its present joints) is nearest,
greedily by increasing distance, if that distance is below ``max_distance`` times the person's size
(the diagonal of the bounding box of its present joints), so the rule does not depend on the units
(pixels, normalised image coordinates or metres). A detection matched to no track starts a new one.
A track not seen for more than ``max_gap`` frames ends: **a person who leaves and comes back after
that gets a new id** (there is no appearance model to recognise them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class _Track:
    id: int
    centre: np.ndarray
    size: float
    last_seen: int


def centre_and_size(kp: np.ndarray, spatial_dims: int = 2) -> tuple[np.ndarray, float]:
    """Mean of the present joints (any channel non-zero) and the diagonal of their bounding box."""
    present = (kp != 0).any(axis=-1)
    pts = kp[present, :spatial_dims] if present.any() else kp[:, :spatial_dims]
    size = float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
    return pts.mean(axis=0), size


class CentroidTracker:
    """Greedy nearest-centre linking of detections to tracks (see the module docstring)."""

    def __init__(self, max_distance: float = 0.5, max_gap: int = 30, spatial_dims: int = 2):
        self.max_distance = float(max_distance)
        self.max_gap = int(max_gap)
        self.spatial_dims = int(spatial_dims)
        self.tracks: dict[int, _Track] = {}
        self._next = 0
        self._given: set[int] = set()

    def _new_id(self) -> int:
        while self._next in self._given or self._next in self.tracks:
            self._next += 1
        self._next += 1
        return self._next - 1

    def update(
        self, t: int, keypoints: list[np.ndarray], given_ids: list[int | None] | None = None
    ) -> list[int]:
        """Person ids for the detections of frame ``t`` (in order); given ids are kept as they are."""
        given_ids = given_ids or [None] * len(keypoints)
        ids: list[int | None] = list(given_ids)
        for i in list(self.tracks):  # end tracks that have been away too long
            if t - self.tracks[i].last_seen > self.max_gap:
                del self.tracks[i]
        cs = [centre_and_size(k, self.spatial_dims) for k in keypoints]
        for d, g in enumerate(given_ids):
            if g is not None:
                self._given.add(g)
                self.tracks[g] = _Track(g, cs[d][0], cs[d][1], t)
        todo = [d for d, g in enumerate(given_ids) if g is None]
        free = [k for k, tr in self.tracks.items() if tr.last_seen < t and k not in self._given]
        pairs = []
        for d in todo:
            for k in free:
                tr = self.tracks[k]
                dist = float(np.linalg.norm(cs[d][0] - tr.centre))
                if dist <= self.max_distance * max(tr.size, cs[d][1], 1e-6):
                    pairs.append((dist, d, k))
        used_d: set[int] = set()
        used_k: set[int] = set()
        for _, d, k in sorted(pairs):
            if d in used_d or k in used_k:
                continue
            ids[d] = k
            used_d.add(d)
            used_k.add(k)
        for d in todo:
            if ids[d] is None:
                ids[d] = self._new_id()
            k = ids[d]
            self.tracks[k] = _Track(k, cs[d][0], cs[d][1], t)
        return [int(i) for i in ids]

    def ended(self, t: int) -> list[int]:
        """Ids of tracks that are over at frame ``t`` (not seen for more than ``max_gap`` frames)."""
        return [k for k, tr in self.tracks.items() if t - tr.last_seen > self.max_gap]
