"""The action-segment tree: any (node, length) reads back exactly the actions taken."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from stepstone.trajectories import ROOT, TrajectoryTree


def test_prefixes_and_truncation():
    t = TrajectoryTree()
    a = t.add(ROOT, 0, np.array([1, 2, 3]))
    b = t.add(a, 2, np.array([7, 8]))  # [1, 2] + [7, 8]
    c = t.add(b, 3, np.array([9]))  # [1, 2, 7] + [9]
    assert t.actions(a).tolist() == [1, 2, 3]
    assert t.actions(b).tolist() == [1, 2, 7, 8]
    assert t.actions(c).tolist() == [1, 2, 7, 9]
    assert t.actions(c, 2).tolist() == [1, 2]
    assert t.actions(b, 3).tolist() == [1, 2, 7]
    assert t.actions(ROOT).tolist() == []


def test_extending_past_the_parent_is_refused():
    t = TrajectoryTree()
    a = t.add(ROOT, 0, np.array([1]))
    try:
        t.add(a, 5, np.array([2]))
    except ValueError as e:
        assert "only 1 actions" in str(e)
    else:
        raise AssertionError("extending beyond the parent's length must fail")


@given(
    st.lists(
        st.tuples(
            st.integers(0, 1000), st.integers(0, 1000), st.lists(st.integers(0, 17), max_size=6)
        ),
        max_size=40,
    )
)
def test_random_trees_match_explicit_lists(steps):
    t = TrajectoryTree()
    explicit = {ROOT: []}
    for pick, cut, seg in steps:
        parent = list(explicit)[pick % len(explicit)]
        plen = cut % (len(explicit[parent]) + 1)
        node = t.add(parent, plen, np.array(seg, dtype=np.uint8))
        explicit[node] = explicit[parent][:plen] + seg
    for node, acts in explicit.items():
        for length in {0, len(acts) // 2, len(acts)}:
            assert t.actions(node, length).tolist() == acts[:length]
