"""Trajectories as a tree of action segments.

Every archive entry is reached by (seed, actions) from reset. Storing each entry's full action
list would cost O(cells x length); instead each exploration that improves the archive adds one
*node*: "the first `parent_len` actions of node `parent`, then these `actions`". An entry points
at (node, length): the first `length` actions of that node's path. Entries found by the same
exploration share one node, and all entries share their common prefixes.

The nodes live in any ``MutableMapping[int, Node]``: a dict by default, or the run directory's
SQLite table, so the tree is not bound to memory.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

import numpy as np

ROOT = 0  # the empty trajectory: reset(seed) and nothing else


@dataclass(frozen=True, slots=True)
class Node:
    """The first ``parent_len`` actions of ``parent``'s path, followed by ``actions``."""

    parent: int
    parent_len: int
    actions: np.ndarray

    @property
    def length(self) -> int:
        return self.parent_len + len(self.actions)


class TrajectoryTree:
    """Adds segments and reads back the full action list of any (node, length)."""

    def __init__(self, nodes: MutableMapping[int, Node] | None = None, next_id: int | None = None):
        self.nodes: MutableMapping[int, Node] = nodes if nodes is not None else {}
        if ROOT not in self.nodes:
            self.nodes[ROOT] = Node(ROOT, 0, np.zeros(0, dtype=np.int64))
        self.next_id = next_id if next_id is not None else max(self.nodes) + 1

    def add(self, parent: int, parent_len: int, actions: np.ndarray) -> int:
        """Store a segment extending ``parent``'s first ``parent_len`` actions; return its id."""
        if parent_len > self.nodes[parent].length:
            raise ValueError(f"node {parent} has only {self.nodes[parent].length} actions")
        node_id = self.next_id
        self.next_id += 1
        self.nodes[node_id] = Node(parent, parent_len, np.asarray(actions))
        return node_id

    def actions(self, node: int, length: int | None = None) -> np.ndarray:
        """The first ``length`` actions of ``node``'s path (all of them when None)."""
        n = self.nodes[node]
        if length is None:
            length = n.length
        pieces = []
        while length > 0:
            n = self.nodes[node]
            own = length - n.parent_len
            if own > 0:
                pieces.append(n.actions[:own])
                length = n.parent_len
            else:
                length = min(length, n.parent_len)
            node = n.parent
        if not pieces:
            return self.nodes[ROOT].actions[:0]
        return np.concatenate(pieces[::-1])
