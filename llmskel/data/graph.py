"""Graphs over a layout's joints: the adjacency that graph convolutions use.

``Graph(layout, mode="spatial")`` gives ``A`` of shape (K, V, V), K = 3 subsets of ST-GCN's spatial
partition: self links, inward edges (towards the centre joint) and outward edges (away from it).
Each directed subset is normalised so that every column with edges sums to one
(``A_k = E_k D_k^-1``, the ST-GCN convention): a node's output is the mean over the neighbours of
that subset. ``mode="uniform"`` gives one subset (I + E, column-normalised), ``mode="binary"`` the
raw symmetric adjacency without self links.
"""

from __future__ import annotations

import numpy as np

from .layouts import Layout, get_layout


def edge_matrix(num_joints: int, edges) -> np.ndarray:
    """Directed 0/1 matrix with ``M[j, i] = 1`` for an edge i -> j (row = target, column = source)."""
    m = np.zeros((num_joints, num_joints), dtype=np.float32)
    for i, j in edges:
        m[j, i] = 1.0
    return m


def normalize_columns(m: np.ndarray) -> np.ndarray:
    """Divide each column by its sum (columns that sum to zero stay zero)."""
    s = m.sum(axis=0, keepdims=True)
    return np.divide(m, s, out=np.zeros_like(m), where=s > 0)


def hop_distance(num_joints: int, edges, max_hop: int | None = None) -> np.ndarray:
    """Shortest path lengths (in edges) between joints of an undirected graph; inf if unreachable."""
    a = np.eye(num_joints, dtype=bool)
    for i, j in edges:
        a[i, j] = a[j, i] = True
    dist = np.full((num_joints, num_joints), np.inf)
    reach = np.eye(num_joints, dtype=bool)
    dist[reach] = 0
    hop, limit = 0, max_hop if max_hop is not None else num_joints
    while hop < limit:
        hop += 1
        new = (reach.astype(np.int32) @ a.astype(np.int32)) > 0
        fresh = new & ~reach
        if not fresh.any():
            break
        dist[fresh] = hop
        reach = new
    return dist


class Graph:
    """Adjacency for a layout. ``A`` is a float32 array (K, V, V), see the module docstring."""

    def __init__(self, layout: str | Layout = "ntu25", mode: str = "spatial"):
        self.layout = get_layout(layout)
        self.mode = mode
        v = self.layout.num_joints
        self.num_joints = v
        self.self_link = np.eye(v, dtype=np.float32)
        # bones are (child, parent): inward edges point child -> parent (towards the centre)
        self.inward = edge_matrix(v, self.layout.bones)
        self.outward = self.inward.T.copy()
        self.binary = self.inward + self.outward  # symmetric, no self links
        if mode == "spatial":
            self.A = np.stack(
                [self.self_link, normalize_columns(self.inward), normalize_columns(self.outward)]
            )
        elif mode == "uniform":
            self.A = normalize_columns(self.self_link + self.binary)[None]
        elif mode == "binary":
            self.A = self.binary[None].copy()
        else:
            raise ValueError(f"unknown graph mode {mode!r}; valid modes: spatial, uniform, binary")
        self.A = self.A.astype(np.float32)

    @property
    def num_subsets(self) -> int:
        return self.A.shape[0]

    def __repr__(self) -> str:
        return f"Graph(layout={self.layout.name!r}, mode={self.mode!r}, A={tuple(self.A.shape)})"
