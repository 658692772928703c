"""The merge rule, counters and re-keying of the archive, with hand-computed expectations."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stepstone.archive import AddStatus, Archive, better


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


def test_best_and_rooms():
    a = Archive()
    a.offer("a", 100.0, 30, 1, b"", level=0, room=1)
    a.offer("b", 100.0, 20, 1, b"", level=0, room=2)
    a.offer("c", 50.0, 5, 1, b"", level=1, room=1)
    assert a.cells[a.best()] == "b"  # highest score, then shortest
    assert a.rooms() == 3  # (0,1), (0,2), (1,1)
    assert a.max_level() == 1
    b = Archive()
    b.offer("x", 0.0, 0, 0, b"")
    assert b.rooms() is None and b.max_level() is None


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
