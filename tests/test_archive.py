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
        room = {"room": i % 5} if i % 2 else None
        a.offer(("c", i), float(i % 7), 10, 1, b"", source=str(i).encode(), metrics=room)
    assert a.distinct(("room",)) == 5 and a.get(("c", 1200)).metrics == {}
    assert a.get(("c", 1201)).metrics == {"room": 1201 % 5}
    a.rekey(lambda source: int(source) % 10)  # ten cells, each the best of its group
    for e in a:
        rooms = {i % 5 for i in range(1500) if i % 10 == e.cell and i % 2}
        assert e.metrics.get("room", -1) in rooms | {-1}
        assert ("room" in e.metrics) == (e.cell % 2 == 1)


def test_rekey_merges_by_rule_and_sums_counters():
    a = Archive()
    a.offer("a1", 10.0, 30, 1, b"A1", source=b"a1")
    a.offer("a2", 10.0, 20, 2, b"A2", source=b"a2")
    a.offer("b", 5.0, 5, 3, b"B", source=b"b")
    a.times_seen[:3] = [1, 2, 4]
    a.times_chosen[:3] = [3, 0, 1]
    a.rekey(lambda source: source.decode()[0])  # "a1", "a2" -> "a"
    assert sorted(a.cells) == ["a", "b"]
    e = a.get("a")
    assert (e.length, e.node) == (20, 2)  # the shorter of the two
    assert (e.times_seen, e.times_chosen) == (3, 3)
    assert a.rekeyed
    # The loser is kept aside with its snapshot and trajectory, its counters in the winner's.
    assert len(a.retired) == 1 and a.retired.row(0)["node"] == 1
    assert a.retired.row(0)["times_seen"] == 0
    assert sorted(a.snapshots.values()) == [b"A1", b"A2", b"B"]


def test_rekey_under_reset_on_update_keeps_the_best_entrys_counters():
    """The reference's grid recomputation under --reset_cell_on_update (goexplore.py,
    maybe_split_dynamic_state) sets a merged cell's counts to those of the entry it accepts
    and adds nothing from the others; without the flag they add up."""
    for summed in (True, False):
        a = Archive()
        a.offer("a1", 3.0, 30, 1, b"A1", source=b"a1")  # the best: the higher score
        a.offer("a2", 1.0, 5, 2, b"A2", source=b"a2")
        a.times_seen[:2], a.times_chosen[:2], a.discoveries[:2] = [7, 5], [4, 2], [1, 3]
        a.rekey(lambda source: "a", sum_counters=summed)  # both merge into "a"
        e = a.get("a")
        assert (e.score, e.length) == (3.0, 30)
        assert (e.times_seen, e.times_chosen) == ((12, 6) if summed else (7, 4))
        assert a.discoveries[0] == (4 if summed else 1)


def test_entries_put_aside_by_a_coarse_shape_come_back_under_a_finer_one():
    """Issue 20: re-choosing cells loses no entry's best trajectory. The reference keeps every
    former archive and re-keys them all at each new shape (go-explore, robustified/goexplore_py/
    goexplore.py, FormerGrids and maybe_split_dynamic_state)."""
    a = Archive()
    for i, (score, length) in enumerate([(5.0, 9), (7.0, 20), (7.0, 15), (1.0, 3)]):
        a.offer(f"c{i}", score, length, 10 + i, f"S{i}".encode(), source=str(i).encode())
    a.times_chosen[:4] = [1, 2, 3, 4]
    a.rekey(lambda source: "all")  # the coarsest shape: one cell
    assert a.cells == ["all"] and (a.get("all").node, a.get("all").times_chosen) == (12, 10)
    assert len(a.retired) == 3
    a.offer("new", 2.0, 4, 20, b"S4", source=b"4")  # found under the coarse shape
    a.rekey(lambda source: int(source))  # a shape as fine as the first: every entry back
    assert sorted(a.cells) == [0, 1, 2, 3, 4] and len(a.retired) == 0
    assert [a.get(c).node for c in range(5)] == [10, 11, 12, 13, 20]
    assert [a.snapshot(a.index[c]) for c in range(5)] == [b"S0", b"S1", b"S2", b"S3", b"S4"]
    # Counters were added up once, into the winner: the entries back start at zero.
    assert a.get(2).times_chosen == 10 and a.times_chosen[:5].sum() == 10
    a.rekey(lambda source: int(source) % 2)  # halves: 0, 2, 4 and 1, 3
    assert (a.get(0).node, a.get(1).node) == (12, 11)  # (7.0, 15) and (7.0, 20) win
    assert len(a.retired) == 3


def test_an_entry_without_a_source_is_dropped_by_a_rekey():
    a = Archive()
    a.offer("x", 1.0, 2, 1, b"X", source=b"x")
    a.offer("y", 2.0, 2, 2, None)  # no snapshot, so no source either
    a.rekey(lambda source: source)
    assert a.cells == [b"x"] and len(a.retired) == 0


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
