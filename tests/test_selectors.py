"""Selection weights against the formula written out by hand."""

from __future__ import annotations

import numpy as np

from stepstone.archive import Archive
from stepstone.selectors import CountBased, Uniform, make


def archive_with(counts: list[tuple[int, int, int]], terminal=()) -> Archive:
    a = Archive()
    for i, (chosen, since_new, seen) in enumerate(counts):
        a.offer(f"c{i}", 0.0, 0, 0, b"", terminal=i in terminal)
        a.times_chosen[i], a.times_chosen_since_new[i], a.times_seen[i] = chosen, since_new, seen
    return a


def test_count_based_weights_hand_computed():
    a = archive_with([(0, 0, 0), (4, 4, 16)])
    w = CountBased().weights(a)
    # 1 + 0.1 / sqrt(0 + 0.001) + 0 * ... + 0.3 / sqrt(0 + 0.001) + 3 * 1e-5
    fresh = 1 + 0.1 / 0.001**0.5 + 0.3 / 0.001**0.5 + 3e-5
    # 1 + 0.1 / sqrt(4.001) + 0.3 / sqrt(16.001) + 3 * 1e-5
    used = 1 + 0.1 / 4.001**0.5 + 0.3 / 16.001**0.5 + 3e-5
    assert np.allclose(w, [fresh, used])
    assert w[0] > 10 * w[1]


def test_uniform_and_registry():
    a = archive_with([(0, 0, 0)] * 3)
    assert Uniform().weights(a).tolist() == [1.0, 1.0, 1.0]
    assert isinstance(make("count"), CountBased)


def test_terminal_entries_are_never_selected():
    a = archive_with([(0, 0, 0), (9, 9, 9), (0, 0, 0)], terminal={0, 2})
    picks = CountBased().select(a, 200, np.random.default_rng(0))
    assert set(picks.tolist()) == {1}


def test_selection_is_reproducible_and_follows_weights():
    a = archive_with([(0, 0, 0), (100, 100, 100)])
    p1 = CountBased().select(a, 2000, np.random.default_rng(7))
    p2 = CountBased().select(a, 2000, np.random.default_rng(7))
    assert np.array_equal(p1, p2)
    w = CountBased().weights(a)
    share = (p1 == 0).mean()
    assert abs(share - w[0] / w.sum()) < 0.03
