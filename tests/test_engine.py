"""The ask/tell engine driven by hand-made results, no environment involved."""

from __future__ import annotations

import copy
import json
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepstone import engine as engine_module
from stepstone.archive import Archive
from stepstone.engine import Engine, Found, Result
from stepstone.errors import ConfigError
from stepstone.selectors import Uniform, make
from stepstone.trajectories import TrajectoryTree


def engine(**options) -> Engine:
    e = Engine(Archive(), TrajectoryTree(), Uniform(), seed=0, **options)
    e.add_root(Found("root", 0.0, 0, b"snap-root"))
    return e


def test_ask_hands_out_the_chosen_cell():
    e = engine()
    (task,) = e.ask(1)
    assert (task.cell, task.snapshot, task.score, task.length) == ("root", b"snap-root", 0, 0)
    assert task.task_id in e.pending


def test_tell_merges_relative_to_the_task_and_stores_one_node():
    e = engine()
    (t1,) = e.ask(1)
    actions = np.array([3, 3, 1, 2, 2], dtype=np.uint8)
    found = [Found("a", 0.0, 2, b"A"), Found("b", 100.0, 4, b"B", success=True)]
    stats = e.tell(Result(t1.task_id, actions, frames=20, found=found, seen=["root", "a"]))
    assert (stats.new_cells, stats.improved, stats.duplicate) == (2, 0, False)
    b = e.archive.get("b")
    assert (b.score, b.length) == (100.0, 4)
    assert e.trajectories.actions(b.node, b.length).tolist() == [3, 3, 1, 2]
    # The node holds the exploration's actions up to the furthest accepted finding, no more.
    assert len(e.trajectories.nodes[b.node].actions) == 4
    assert e.frames == 20 and e.success_frame == 20
    root = e.archive.get("root")
    assert (root.times_chosen, root.times_chosen_since_new, root.times_seen) == (1, 0, 1)

    # Exploring from "b" (score 100, length 4): a finding there adds to that prefix.
    e.selector.weights = lambda a: np.array([0.0, 0.0, 1.0])  # always "b"
    (t2,) = e.ask(1)
    assert t2.cell == "b"
    e.tell(Result(t2.task_id, np.array([5], dtype=np.uint8), 4, [Found("c", 1.0, 1, b"C")]))
    c = e.archive.get("c")
    assert (c.score, c.length) == (101.0, 5)
    assert e.trajectories.actions(c.node, c.length).tolist() == [3, 3, 1, 2, 5]


def test_nothing_new_increments_since_new_and_creates_no_node():
    e = engine()
    nodes = len(e.trajectories.nodes)
    (t,) = e.ask(1)
    e.tell(Result(t.task_id, np.zeros(3, np.uint8), 12, [Found("root", 0.0, 3, b"x")]))
    root = e.archive.get("root")
    assert (root.times_chosen, root.times_chosen_since_new) == (1, 1)
    assert len(e.trajectories.nodes) == nodes


def test_duplicate_and_unknown_results_are_ignored():
    e = engine()
    (t,) = e.ask(1)
    r = Result(t.task_id, np.zeros(1, np.uint8), 4, [Found("a", 0.0, 1, b"A")])
    e.tell(r)
    again = e.tell(r)
    assert again.duplicate and e.frames == 4 and len(e.archive) == 2
    assert e.tell(Result(999, np.zeros(0, np.uint8), 4, [])).duplicate
    assert e.frames == 4


def test_results_under_old_cell_parameters_are_not_merged():
    e = Engine(Archive(), TrajectoryTree(), Uniform(), cell_shape=(11, 8, 8))
    e.add_root(Found("root", 0.0, 0, b"snap-root", source=b"root"))
    (t,) = e.ask(1)
    assert t.cell_shape == (11, 8, 8)
    e.rekey((5, 5, 4), bytes.decode)  # parameters changed while the task was out
    assert e.cell_shape == (5, 5, 4) and "root" in e.archive
    e.tell(Result(t.task_id, np.zeros(1, np.uint8), 4, [Found("a", 0.0, 1, b"A")]))
    assert "a" not in e.archive and e.frames == 4


def test_reset_on_update_zeroes_the_counters_of_an_improved_cell_only():
    for reset in (False, True):
        e = engine(reset_on_update=reset)
        e.selector.weights = lambda a: np.eye(len(a))[0]  # always explore from "root"
        (t,) = e.ask(1)
        e.tell(Result(t.task_id, np.zeros(3, np.uint8), 12, [Found("a", 0.0, 3, b"A")], ["a"]))
        (t,) = e.ask(1)  # "a" seen again, now with a higher score; "root" not improved
        better = [Found("a", 5.0, 2, b"A2"), Found("root", 0.0, 1, b"R")]
        e.tell(Result(t.task_id, np.zeros(2, np.uint8), 8, better, ["a", "root"]))
        a, root = e.archive.get("a"), e.archive.get("root")
        assert (a.score, a.length) == (5.0, 2)
        assert (a.times_chosen, a.times_seen) == ((0, 0) if reset else (0, 2))
        assert (root.times_chosen, root.times_seen) == (2, 1)


def test_state_is_data_and_continues_the_same_random_stream():
    e = engine()
    for _ in range(3):
        (t,) = e.ask(1)
        e.tell(Result(t.task_id, np.zeros(2, np.uint8), 8, [Found(f"c{t.task_id}", 1.0, 2, b"x")]))
    state = json.loads(json.dumps(e.state()))  # what a run directory keeps: plain data
    again = Engine.from_state(state, e.archive, e.trajectories, Uniform(), seed=99)
    assert again.state() == e.state()
    mine, theirs = e.ask(4), again.ask(4)
    assert [(t.task_id, t.cell, t.explore_seed) for t in mine] == [
        (t.task_id, t.cell, t.explore_seed) for t in theirs
    ]


def test_an_empty_state_is_a_new_engine_and_a_stored_cell_shape_wins():
    options = {"seed": 5, "cell_shape": (4, 4, 8)}
    new = Engine.from_state({}, Archive(), TrajectoryTree(), Uniform(), **options)
    fresh = Engine(Archive(), TrajectoryTree(), Uniform(), **options)
    assert new.state() == fresh.state()
    stored = {**new.state(), "cell_shape": [11, 8, 8]}
    again = Engine.from_state(stored, Archive(), TrajectoryTree(), Uniform(), cell_shape=(4, 4, 8))
    assert again.cell_shape == (11, 8, 8)


def test_a_damaged_state_is_refused():
    with pytest.raises(ValueError, match="not an engine state"):
        bad = {"rng": {"bit_generator": "nope"}}
        Engine.from_state(bad, Archive(), TrajectoryTree(), Uniform())


@pytest.mark.parametrize(
    "options, says",
    [
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"cell_shape": ("11", 8)}, "cell_shape"),
        ({"rule": object()}, "CellRule"),
        ({"admit": "judge"}, "admit"),
    ],
)
def test_the_constructor_refuses_options_of_the_wrong_kind(options, says):
    with pytest.raises(ConfigError, match=says):
        Engine(Archive(), TrajectoryTree(), Uniform(), **options)


def test_the_constructor_refuses_a_mapping_for_an_archive():
    with pytest.raises(ConfigError, match="an Archive and a TrajectoryTree"):
        Engine({}, TrajectoryTree(), Uniform())  # type: ignore[arg-type]


def test_the_module_docstring_example_runs_as_written():
    """The loop in engine.py's docstring, executed as a user would paste it."""
    text = engine_module.__doc__.split("::\n", 1)[1].lstrip("\n")
    lines = text.split("\n\n")
    block = []
    for para in lines:  # the indented paragraphs that follow "::"
        if not para.startswith("    "):
            break
        block.append(para)
    namespace: dict = {}
    exec(textwrap.dedent("\n\n".join(block)), namespace)
    e = namespace["engine"]
    assert e.frames >= 5_000 and len(e.archive) > 1 and not e.pending


# -- batches -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded():
    """An engine grown by a short Montezuma run, 40 tasks it asked and their results."""
    from stepstone.config import ExploreConfig
    from stepstone.selectors import CountBased
    from stepstone.worker import Worker

    worker = Worker.from_config(ExploreConfig(env="ALE/MontezumaRevenge-v5", cells="ram"))
    e = Engine(Archive(), TrajectoryTree(), CountBased(), seed=5)
    e.add_root(worker.root())
    for _ in range(15):
        for task in e.ask(4):
            e.tell(worker.run(task))
    results = [worker.run(task) for task in e.ask(40)]
    worker.close()
    return e, results


def frozen(e: Engine) -> tuple:
    a, n = e.archive, len(e.archive)
    columns = {k: v[:n].tolist() for k, v in vars(a).items() if isinstance(v, np.ndarray)}
    return (
        list(a.cells), columns, sorted(a.dirty), dict(a.snapshots), e.frames, e.explorations,
        {k: repr(v) for k, v in e.trajectories.nodes.items()}, sorted(e.pending),
    )  # fmt: skip


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), reset=st.booleans())
def test_a_batch_merges_as_its_results_told_one_by_one(recorded, data, reset):
    grown, results = recorded
    order = data.draw(st.permutations(range(len(results))))
    order += data.draw(st.lists(st.sampled_from(order), max_size=5))  # some told twice
    cuts = sorted(data.draw(st.sets(st.integers(1, len(order) - 1), max_size=6)))
    one, batched = copy.deepcopy(grown), copy.deepcopy(grown)
    one.reset_on_update = batched.reset_on_update = reset
    told = [results[i] for i in order]
    stats = [one.tell(r) for r in told]
    chunks = [told[i:j] for i, j in zip([0, *cuts], [*cuts, len(told)], strict=True)]
    assert [s for c in chunks for s in batched.tell_many(c)] == stats
    assert frozen(batched) == frozen(one)
    assert (
        sum(s.new_cells for s in stats) > 0 and sum(s.duplicate for s in stats) == len(order) - 40
    )


def test_reset_on_update_follows_the_reference_run_cycle():
    """One exploration traced through the reference's run_cycle (robustified/goexplore_py/
    goexplore.py): the start cell gets chosen +1 and seen +1; each distinct cell visited seen
    +1; a cell added (new) or improved is in ``cells_to_reset``, whose chosen, chosen-since-new
    and seen counts end at 0 under --reset_cell_on_update; without it they keep the visit."""
    for reset in (False, True):
        e = engine(reset_on_update=reset)
        e.selector.weights = lambda a: np.eye(len(a))[0]  # always explore from "root"
        (t,) = e.ask(1)
        first = [Found("a", 0.0, 2, b"A"), Found("c", 0.0, 4, b"C")]
        e.tell(Result(t.task_id, np.zeros(4, np.uint8), 16, first, ["root", "a", "c"]))
        counts = {c: e.archive.get(c).times_seen for c in ("root", "a", "c")}
        assert counts == ({"root": 1, "a": 0, "c": 0} if reset else {"root": 1, "a": 1, "c": 1})
        (t,) = e.ask(1)
        # "a" visited again, no better; "b" new; "c" reached with a higher score.
        second = [Found("a", 0.0, 3, b"A2"), Found("b", 0.0, 1, b"B"), Found("c", 1.0, 5, b"C2")]
        e.tell(Result(t.task_id, np.zeros(5, np.uint8), 20, second, ["root", "a", "b", "c"]))
        rows = {
            c: (x.times_chosen, x.times_chosen_since_new, x.times_seen, x.discoveries)
            for c in ("root", "a", "b", "c")
            for x in [e.archive.get(c)]
        }
        if reset:
            assert rows == {
                "root": (2, 0, 2, 2), "a": (0, 0, 1, 0), "b": (0, 0, 0, 0), "c": (0, 0, 0, 0),
            }  # fmt: skip
        else:
            assert rows == {
                "root": (2, 0, 2, 2), "a": (0, 0, 2, 0), "b": (0, 0, 1, 0), "c": (0, 0, 2, 0),
            }  # fmt: skip
        # The released script's weights, 1 / sqrt(seen + 1): new and improved cells weigh 1.
        w = dict(zip(e.archive.cells, make("seen").weights(e.archive), strict=True))
        assert np.isclose(w["c"], 1.0 if reset else 1 / np.sqrt(3))


def test_new_finds_count_only_explorations_that_add_a_cell():
    """``discoveries`` counts an exploration that only shortens a known cell's path (Go-Explore's
    merge rule takes it); ``new_finds`` does not, and knapsack-new's rate follows it."""
    e = engine()
    e.selector.weights = lambda a: np.eye(len(a))[0]  # always explore from "root"
    for found in (Found("a", 0.0, 2, b"A"), Found("a", 0.0, 1, b"A2"), Found("a", 0.0, 3, b"A3")):
        (t,) = e.ask(1)  # added, then improved (shorter), then nothing
        e.tell(Result(t.task_id, np.zeros(3, np.uint8), 12, [found], ["root", "a"]))
    root = e.archive.get("root")
    assert (root.times_chosen, root.discoveries, root.new_finds) == (3, 2, 1)
    # Beta(1, 1) posterior means: (2 + 1) / (3 + 2) and (1 + 1) / (3 + 2)
    assert np.allclose(make("knapsack").rates(e.archive)[:1], [0.6])
    assert np.allclose(make("knapsack-new").rates(e.archive)[:1], [0.4])


def test_a_rekeying_sums_counters_unless_reset_on_update():
    for reset in (False, True):
        e = Engine(Archive(), TrajectoryTree(), Uniform(), cell_shape=(2,), reset_on_update=reset)
        e.add_root(Found("r", 0.0, 0, b"s", source=b"x"))
        e.archive.offer("q", 1.0, 3, 0, b"t", source=b"x")  # the better entry of the two
        e.archive.times_seen[:2] = [5, 2]
        e.rekey((1,), bytes.decode)  # both now cell "x"
        assert e.archive.cells == ["x"] and e.archive.get("x").score == 1.0
        assert e.archive.get("x").times_seen == (2 if reset else 7)
