"""The merge rule, counters and re-keying of the archive, with hand-computed expectations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepstone.archive import AddStatus, Archive, better
from stepstone.errors import ConfigError


def test_merge_rule():
    assert better(10, 50, 5, 10)  # higher score wins even if longer
    assert better(10, 40, 10, 50)  # equal score, shorter wins
    assert not better(10, 50, 10, 50)  # a tie keeps the incumbent
    assert not better(10, 60, 10, 50)
    assert not better(5, 1, 10, 50)  # lower score loses even if much shorter


def test_offer_replaces_and_forgets_old_snapshot():
    a = Archive()
    assert a.offer("c", 0.0, 10, node=1, snapshot=b"s1") is AddStatus.NEW
    first = a.get("c").snap
    assert a.snapshots[first] == b"s1"
    assert a.offer("c", 0.0, 12, node=2, snapshot=b"s2") is AddStatus.NOT_ADDED  # longer
    assert a.offer("c", 0.0, 8, node=3, snapshot=b"s3") is AddStatus.IMPROVED  # shorter
    e = a.get("c")
    assert (e.length, e.node, a.snapshots[e.snap]) == (8, 3, b"s3")
    assert first not in a.snapshots  # the replaced snapshot is gone
    assert len(a.snapshots) == 1


def test_best_and_metrics():
    a = Archive()
    a.offer("a", 100.0, 30, 1, b"", metrics={"level": 0, "room": 1})
    a.offer("b", 100.0, 20, 1, b"", metrics={"level": 0, "room": 2})
    a.offer("c", 50.0, 5, 1, b"", metrics={"level": 1, "room": 1})
    a.offer("d", 0.0, 5, 1, b"")  # a state that reports nothing
    assert a.cells[a.best()] == "b"  # highest score, then shortest
    assert a.distinct(("level", "room")) == 3  # (0,1), (0,2), (1,1)
    assert a.distinct(("room",)) == 2
    assert a.highest("level") == 1 and a.highest("doors") is None
    assert a.get("c").metrics == {"level": 1, "room": 1} and a.get("d").metrics == {}
    a.offer("c", 60.0, 5, 1, b"", metrics={"room": 4})  # an improvement reports anew
    assert a.get("c").metrics == {"room": 4} and a.highest("level") == 0
    b = Archive()
    b.offer("x", 0.0, 0, 0, b"")
    assert b.distinct(("level", "room")) is None and b.highest("level") is None


def test_metric_names_must_be_column_names():
    a = Archive()
    for bad in ("score", "Room", "two words", "idx"):
        with pytest.raises(ConfigError, match="metric name"):
            a.offer(bad, 0.0, 0, 0, b"", metrics={bad: 1})


def test_metrics_survive_growth_and_rekeying():
    a = Archive()
    for i in range(1500):  # past the first 1024 rows
        a.offer(("c", i), float(i % 7), 10, 1, b"", metrics={"room": i % 5} if i % 2 else None)
    assert a.distinct(("room",)) == 5 and a.get(("c", 1200)).metrics == {}
    assert a.get(("c", 1201)).metrics == {"room": 1201 % 5}
    a.rekey(lambda i: a.cells[i][1] % 10)  # ten cells, each the best of its group
    for e in a:
        rooms = {i % 5 for i in range(1500) if i % 10 == e.cell and i % 2}
        assert e.metrics.get("room", -1) in rooms | {-1}
        assert ("room" in e.metrics) == (e.cell % 2 == 1)


def test_rekey_merges_by_rule_and_sums_counters():
    a = Archive()
    a.offer("a1", 10.0, 30, 1, b"A1")
    a.offer("a2", 10.0, 20, 2, b"A2")
    a.offer("b", 5.0, 5, 3, b"B")
    a.times_seen[:3] = [1, 2, 4]
    a.times_chosen[:3] = [3, 0, 1]
    a.rekey(lambda i: a.cells[i][0])  # "a1", "a2" -> "a"
    assert sorted(a.cells) == ["a", "b"]
    e = a.get("a")
    assert (e.length, e.node) == (20, 2)  # the shorter of the two
    assert (e.times_seen, e.times_chosen) == (3, 3)
    assert sorted(a.snapshots.values()) == [b"A2", b"B"]  # the loser's snapshot was dropped
    assert a.rekeyed


def test_rekey_under_reset_on_update_keeps_the_best_entrys_counters():
    """The reference's grid recomputation under --reset_cell_on_update (goexplore.py,
    maybe_split_dynamic_state) sets a merged cell's counts to those of the entry it accepts
    and adds nothing from the others; without the flag they add up."""
    for summed in (True, False):
        a = Archive()
        a.offer("a1", 3.0, 30, 1, b"A1")  # the best: the higher score
        a.offer("a2", 1.0, 5, 2, b"A2")
        a.times_seen[:2], a.times_chosen[:2], a.discoveries[:2] = [7, 5], [4, 2], [1, 3]
        a.rekey(lambda i: "a", sum_counters=summed)  # both merge into "a"
        e = a.get("a")
        assert (e.score, e.length) == (3.0, 30)
        assert (e.times_seen, e.times_chosen) == ((12, 6) if summed else (7, 4))
        assert a.discoveries[0] == (4 if summed else 1)


offers = st.lists(
    st.tuples(st.sampled_from("abcd"), st.integers(0, 3), st.integers(0, 9)), max_size=60
)


@given(offers)
def test_archive_holds_the_best_offer_per_cell(seq):
    a = Archive()
    for n, (cell, score, length) in enumerate(seq):
        a.offer(cell, float(score), length, node=n, snapshot=bytes([n % 256]))
    for cell in set(c for c, _, _ in seq):
        candidates = [(s, n_, i) for i, (c, s, n_) in enumerate(seq) if c == cell]
        best_score = max(s for s, _, _ in candidates)
        best_len = min(n_ for s, n_, _ in candidates if s == best_score)
        first = min(i for s, n_, i in candidates if (s, n_) == (best_score, best_len))
        e = a.get(cell)
        assert (e.score, e.length, e.node) == (best_score, best_len, first)
    assert len(a.snapshots) == len(a)
