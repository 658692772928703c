"""The Go-Explore loop as ask/tell: ``ask()`` chooses cells to return to, ``tell()`` merges.

Pure: the engine never touches an environment, a process or a file. ``ask`` returns ``Task``
objects (a snapshot to restore and a seed for the explorer); whoever runs them (a worker in this
process, a process pool, Ray actors) sends back ``Result`` objects, in any order, and ``tell``
merges each exactly once. A user can drive the engine from their own loop::

    from stepstone import Archive, Engine, ExploreConfig, TrajectoryTree, Worker
    from stepstone.selectors import CountBased

    worker = Worker.from_config(ExploreConfig(env="CartPole-v1", seed=0))
    engine = Engine(Archive(), TrajectoryTree(), CountBased(), seed=0)
    engine.add_root(worker.root())
    while engine.frames < 5_000:
        for task in engine.ask(8):
            engine.tell(worker.run(task))

``loop.py`` runs the same loop through an executor (the CLI's runner and the bench scripts);
``state()``/``from_state()`` are what a run directory keeps of the engine besides its tables.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .archive import AddStatus, Archive
from .errors import ConfigError
from .selectors.base import Selector
from .trajectories import ROOT, TrajectoryTree


@dataclass(slots=True)
class Task:
    """Return to ``cell`` (by restoring ``snapshot``) and explore with ``explore_seed``."""

    task_id: int
    cell: Hashable
    snapshot: bytes
    score: float
    length: int
    node: int
    explore_seed: int
    cell_shape: tuple | None = None  # parameters of an adaptive cell function, if any
    # What the worker's copy of the archive table lacks (table.TableDelta), set by the executor
    # as it sends the task; the worker then ships snapshots only of cells new or better by it.
    table: Any = None


@dataclass(slots=True)
class Found:
    """A cell reached during one exploration, at its best point within that exploration."""

    cell: Hashable
    reward: float  # reward collected since the task's start state
    steps: int  # explore actions taken to get here
    snapshot: bytes
    terminal: bool = False
    success: bool | None = None  # the run's goal reached here; None: no goal applies (goals.py)
    source: bytes | None = None  # what the cell was computed from (adaptive cells only)
    # What the environment reports of the state (Explorable.metrics(): level, room...).
    metrics: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Result:
    task_id: int
    actions: np.ndarray  # every action of the exploration, in order
    frames: int  # emulator frames spent, returning included
    found: list[Found]
    seen: list[Hashable] = field(default_factory=list)  # cells visited (for times_seen)
    samples: list[bytes] = field(default_factory=list)  # frames sampled for adaptive cells
    # A return by replay reached another cell than the task's (an environment that does not
    # replay the same, worker.py): nothing was explored, since what it found would be credited
    # with the task's score and length, which are not this state's.
    missed: bool = False
    # A return by the policy (--from-policy, learn/returner.py): how many of ``actions`` it
    # took. The exploration continues that episode, not the task's entry, so ``actions`` and
    # what was found (the return's cells too) count from the reset.
    returned: int | None = None


@dataclass(slots=True)
class TellStats:
    new_cells: int = 0
    improved: int = 0
    duplicate: bool = False


@runtime_checkable
class CellRule(Protocol):
    """Maps the cells workers report to archive cells, for cell kinds decided in the driver
    against the whole archive (novelty and learned cells: cells/novelty.py, cells/learned.py)."""

    def key_for(self, cell: Hashable, archive: Archive, goal: bool = False) -> Hashable | None:
        """The archive cell a reported cell belongs to (itself when it is a new one), or None
        when the state is not to be archived; ``goal``: the state reaches the goal."""
        ...

    def nearest(self, cells: list[Hashable], archive: Archive) -> list[Hashable]:
        """The archive cell nearest each of ``cells`` (for ``times_seen``)."""
        ...

    def source(self, cell: Hashable) -> bytes:
        """What the cell was computed from, kept to re-key the archive later."""
        ...

    # Between iterations (the runner): the rule adapts, and its state goes with the commit.
    def adapt(self, new_cells: int, archive: Archive) -> None:
        """Adjust to the new cells the last iteration found (e.g. a novelty threshold)."""
        ...

    def state(self) -> dict | None:
        """The rule's state as plain data, or None when unchanged since the last call."""
        ...

    def metrics(self) -> dict:
        """Values for the iteration's metrics row."""
        ...


# Filters the entries a result would add: admit(found, task, archive) -> the ones to keep
# (e.g. a model judging interestingness, llm/judge.py). Passed in, never imported here.
Admit = Callable[[list[Found], Task, Archive], Iterable[Found]]


class Engine:
    """Holds the archive, the trajectory tree, the selector and the counters of one run.

    Args:
        archive: the cells found so far (empty for a new run).
        trajectories: the action segments the archive's entries point into.
        selector: chooses the cells ``ask`` returns to.
        seed: seeds the engine's own generator (which cells, which explore seeds).
        cell_shape: the current parameters of an adaptive cell function (dynamic
            downscaling); tasks carry them, and results made under others are not merged.
        rule: a :class:`CellRule`, for cells decided in the driver.
        admit: an :data:`Admit` filter on the entries a result would add.
        reset_on_update: zero a cell's counters when an exploration adds its entry or
            replaces it with a better trajectory (the reference code's
            ``--reset_cell_on_update``, used in its released Montezuma and downscaled-frame
            runs): the cell now holds another state, worth exploring afresh. Any cell kind.

    Raises:
        ConfigError: an argument of the wrong kind.
    """

    def __init__(
        self,
        archive: Archive,
        trajectories: TrajectoryTree,
        selector: Selector,
        *,
        seed: int = 0,
        cell_shape: Sequence[int] | None = None,
        rule: CellRule | None = None,
        admit: Admit | None = None,
        reset_on_update: bool = False,
    ):
        if not isinstance(archive, Archive) or not isinstance(trajectories, TrajectoryTree):
            raise ConfigError(
                f"Engine takes an Archive and a TrajectoryTree, not {type(archive).__name__} "
                f"and {type(trajectories).__name__}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, not {seed!r}")
        if cell_shape is not None and not (
            len(cell_shape) > 0 and all(isinstance(v, int | np.integer) for v in cell_shape)
        ):
            raise ConfigError(f"cell_shape must be a tuple of integers, not {cell_shape!r}")
        if rule is not None and not isinstance(rule, CellRule):
            raise ConfigError(
                f"rule {rule!r} is not a CellRule (key_for, nearest, source, adapt, state, "
                "metrics); cells/novelty.py's NoveltyRule is one"
            )
        if admit is not None and not callable(admit):
            raise ConfigError(f"admit must be a function (found, task, archive), not {admit!r}")
        self.archive = archive
        self.trajectories = trajectories
        self.selector = selector
        self.rng = np.random.default_rng(seed)
        self.cell_shape = None if cell_shape is None else tuple(int(v) for v in cell_shape)
        self.rule = rule
        self.admit = admit
        self.reset_on_update = bool(reset_on_update)
        self.frames = 0
        self.next_task = 1
        self.pending: dict[int, Task] = {}
        self.explorations = 0
        self.missed_returns = 0
        self.success_frame: int | None = None
        self.goal_known = False  # whether any state reported so far had a goal to test
        self.start: Found | None = None  # the reset state (``set_start``), see ``ask``

    # -- what a run directory keeps ----------------------------------------------------------
    def state(self) -> dict:
        """Everything to continue this engine besides the archive's and trajectories' own
        rows, as plain data (numbers, strings, lists, dicts). Tasks in flight are not kept:
        a resumed run asks afresh."""
        state = {
            "frames": self.frames,
            "next_task": self.next_task,
            "rng": self.rng.bit_generator.state,
            "next_snap": self.archive.next_snap,
            "next_node": self.trajectories.next_id,
            "explorations": self.explorations,
            "success_frame": self.success_frame,
            "goal_known": self.goal_known,
            "cell_shape": None if self.cell_shape is None else list(self.cell_shape),
        }
        if self.missed_returns:  # kept only when there were some: states stay as they were
            state["missed_returns"] = self.missed_returns
        return state

    @classmethod
    def from_state(
        cls,
        state: dict,
        archive: Archive,
        trajectories: TrajectoryTree,
        selector: Selector,
        **options: Any,
    ) -> Engine:
        """The engine :meth:`state` described, over its archive and trajectories.

        ``options`` are the constructor's; a stored ``cell_shape`` replaces the given one (the
        given one is where a new run starts). Keys missing from an older ``state`` take what a
        new engine has; ``{}`` is a new run.

        Raises:
            ValueError: ``state`` is not one :meth:`state` wrote.
        """
        if state.get("cell_shape") is not None:
            options["cell_shape"] = state["cell_shape"]
        engine = cls(archive, trajectories, selector, **options)
        try:
            if state.get("rng") is not None:
                engine.rng.bit_generator.state = state["rng"]
            archive.next_snap = int(state.get("next_snap", archive.next_snap))
            trajectories.next_id = int(state.get("next_node", trajectories.next_id))
            engine.frames = int(state.get("frames", 0))
            engine.next_task = int(state.get("next_task", 1))
            engine.explorations = int(state.get("explorations", 0))
            engine.missed_returns = int(state.get("missed_returns", 0))
            success = state.get("success_frame")
            engine.success_frame = None if success is None else int(success)
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"not an engine state ({type(e).__name__}: {e})") from None
        # Written before goals were tracked: a goal applied if one was reached.
        engine.goal_known = bool(state.get("goal_known", engine.success_frame is not None))
        return engine

    # -- ask / tell --------------------------------------------------------------------------
    def set_start(self, root: Found) -> Found:
        """Keep the reset state to explore from when every entry ends an episode (``ask``);
        a resumed run gives it again, its cell computed as the archive's are now."""
        if (rule := self.rule) is not None:
            cell = rule.key_for(root.cell, self.archive)
            if cell is None:  # not novel: explorations from it count for its nearest cell
                cell = rule.nearest([root.cell], self.archive)[0]
            root = replace(root, cell=cell, source=rule.source(root.cell))
        self.start = root
        return root

    def add_root(self, root: Found) -> None:
        """Enter the reset state as the first cell (score 0, empty trajectory)."""
        root = self.set_start(root)
        self.archive.offer(
            root.cell, 0.0, 0, ROOT, root.snapshot, 0,
            source=root.source, goal=bool(root.success), metrics=root.metrics,
        )  # fmt: skip
        self._note_goal(root)

    def ask(self, n: int) -> list[Task]:
        """Choose ``n`` cells to return to (with replacement) and make one task for each.

        When every entry ends an episode (each cell's best state is terminal: a reward paid
        at the end, coarse cells), the tasks start from the reset state instead: exploring on
        from a terminal state steps past the episode's end, which Gymnasium leaves undefined
        (a corridor's end paid again and again, scores no episode can reach)."""
        a = self.archive
        start = self.start
        if start is not None and len(a) and a.terminal[: len(a)].all():
            starts = [(start.cell, start.snapshot, 0.0, 0, ROOT)] * n
        else:
            picks = self.selector.select(a, n, self.rng)
            starts = [(a.cells[i], a.snapshots[int(a.snap[i])], float(a.score[i]),
                       int(a.length[i]), int(a.node[i])) for i in picks]  # fmt: skip
        tasks = []
        for cell, snapshot, score, length, node in starts:
            task = Task(
                task_id=self.next_task,
                cell=cell,
                snapshot=snapshot,
                score=score,
                length=length,
                node=node,
                explore_seed=int(self.rng.integers(2**63)),
                cell_shape=self.cell_shape,
            )
            self.next_task += 1
            self.pending[task.task_id] = task
            tasks.append(task)
        return tasks

    def tell(self, result: Result) -> TellStats:
        """Merge one result; a result for an unknown or already merged task is ignored."""
        return self.tell_many([result])[0]

    def tell_many(self, results: Iterable[Result]) -> list[TellStats]:
        """Merge results exactly as ``tell`` would one after another, with the selection
        counters of the whole batch updated in one vectorised pass (``_Counts``)."""
        counts = _Counts()
        stats: list[TellStats] = []
        try:
            for r in results:
                stats.append(self._merge(r, counts))
        finally:  # what was merged before an error (a judge's model gone) is counted
            counts.apply(self.archive)
        return stats

    def _merge(self, result: Result, counts: _Counts) -> TellStats:
        """Merge one result's cells; its counter updates go to ``counts``."""
        stats = TellStats()
        task = self.pending.pop(result.task_id, None)
        if task is None:
            stats.duplicate = True
            return stats
        a = self.archive
        self.frames += result.frames
        self.explorations += 1
        self.missed_returns += result.missed
        # Cells computed with parameters that have since changed belong to another key space.
        current = task.cell_shape == self.cell_shape
        found = result.found
        for f in found:
            self._note_goal(f)
        if self.rule is not None:  # cells decided against the archive (novelty cells)
            rule, keyed = self.rule, []
            for f in found:
                if (key := rule.key_for(f.cell, a, bool(f.success))) is not None:
                    keyed.append(replace(f, cell=key, source=rule.source(f.cell)))
            found = keyed
        from_reset = result.returned is not None
        score, length = (0.0, 0) if from_reset else (task.score, task.length)
        accepted = [
            f
            for f in found
            if current and a.accepts(f.cell, score + f.reward, length + f.steps, bool(f.success))
        ]
        if accepted and self.admit is not None:
            counts.apply(a)  # the judge sees the counters as they are at this result
            accepted = list(self.admit(accepted, task, a))
        updated: list[Hashable] = []  # entries this result added or improved
        added_at: list[int] = []  # steps into the exploration at which it added a cell
        if accepted:
            upto = max(f.steps for f in accepted)
            start, at = (ROOT, 0) if from_reset else (task.node, task.length)
            node = self.trajectories.add(start, at, result.actions[:upto])
            for f in accepted:
                status = a.offer(
                    f.cell,
                    score + f.reward,
                    length + f.steps,
                    node,
                    f.snapshot,
                    frame=self.frames,
                    terminal=f.terminal,
                    source=f.source,
                    goal=bool(f.success),
                    metrics=f.metrics,
                )
                if status is AddStatus.NEW:
                    stats.new_cells += 1
                    updated.append(f.cell)
                    added_at.append(f.steps)
                elif status is AddStatus.IMPROVED:
                    stats.improved += 1
                    updated.append(f.cell)
        i = a.index.get(task.cell)
        if i is not None:  # None only if a re-keying merged the cell away meanwhile
            counts.chosen.append(i)
            # What a return by the policy passed on its way is not this cell's discovery.
            returned = result.returned or 0
            counts.discovered.append(any(f.steps > returned for f in accepted))
            counts.added.append(any(steps > returned for steps in added_at))
        seen: Iterable[Hashable] = result.seen if current else []
        if self.rule is not None:
            seen = set(self.rule.nearest(list(seen), a))
        index = a.index
        counts.seen.extend([index[c] for c in seen if c in index])
        if self.reset_on_update and updated:
            # As the reference's run_cycle (robustified/goexplore_py/goexplore.py): every cell
            # whose entry was accepted, new or improved, ends with its counters at 0, this
            # exploration's visit included. It resets after a whole batch; here after each
            # result, so that a batch merges as its results told one by one. ``discoveries``
            # goes too, or knapsack's rate (discoveries + 1) / (chosen + 2) could pass 1.
            counts.apply(a)
            for cell in updated:
                j = a.index[cell]
                a.times_chosen[j] = a.times_chosen_since_new[j] = a.times_seen[j] = 0
                a.discoveries[j] = a.new_finds[j] = 0
        return stats

    def _note_goal(self, found: Found) -> None:
        """Record that a goal applies and, the first time it is reached, the frame count.
        A goal reached in a cell the archive does not take still counts: it was reached."""
        if found.success is not None:
            self.goal_known = True
        if found.success and self.success_frame is None:
            self.success_frame = self.frames

    def rekey(self, cell_shape: tuple, key_of_source) -> None:
        """Adopt new cell parameters and re-key the archive from each entry's source; merged
        cells add their counters up, or keep the best entry's under ``reset_on_update``; the
        entries that lose their cell are kept aside for the next re-key (Archive.rekey)."""
        self.archive.rekey(key_of_source, not self.reset_on_update)
        self.cell_shape = tuple(cell_shape)
        if self.start is not None and self.start.source is not None:
            self.start = replace(self.start, cell=key_of_source(self.start.source))

    def abandon(self, task_id: int) -> Task | None:
        """Forget a task whose worker is gone; the caller may re-issue it."""
        return self.pending.pop(task_id, None)

    def abandon_all(self) -> None:
        """Forget every task in flight (the run stops; their results are not needed)."""
        self.pending.clear()


class _Counts:
    """Counter updates of a batch of results, applied to the archive in one numpy pass.

    Per result: ``times_chosen`` +1 for the cell explored from, ``discoveries`` +1 and
    ``times_chosen_since_new`` back to 0 when the exploration added or improved an entry (else
    +1), ``new_finds`` +1 when it added one, and ``times_seen`` +1 for each archive cell it
    visited.
    """

    SMALL = 32  # updates below which numpy's per-call overhead costs more than a loop

    def __init__(self) -> None:
        self.chosen: list[int] = []  # rows explored from, in merge order
        self.discovered: list[bool] = []  # whether that exploration found something
        self.added: list[bool] = []  # whether it found a new cell
        self.seen: list[int] = []  # rows visited

    def apply(self, a: Archive) -> None:
        if len(self.chosen) + len(self.seen) < self.SMALL:
            self._apply_each(a)
        else:
            self._apply_vectorised(a)
        self.chosen, self.discovered, self.added, self.seen = [], [], [], []

    def _apply_each(self, a: Archive) -> None:
        for i, hit, added in zip(self.chosen, self.discovered, self.added, strict=True):
            a.times_chosen[i] += 1
            a.new_finds[i] += added
            if hit:
                a.times_chosen_since_new[i] = 0
                a.discoveries[i] += 1
            else:
                a.times_chosen_since_new[i] += 1
        for j in self.seen:
            a.times_seen[j] += 1
        a.dirty.update(self.chosen)
        a.dirty.update(self.seen)

    def _apply_vectorised(self, a: Archive) -> None:
        if self.chosen:
            rows = np.array(self.chosen, dtype=np.int64)
            hit = np.array(self.discovered, dtype=bool)
            cells, inv = np.unique(rows, return_inverse=True)
            n = len(cells)
            a.times_chosen[cells] += np.bincount(inv, minlength=n)
            a.discoveries[cells] += np.bincount(inv[hit], minlength=n)
            a.new_finds[cells] += np.bincount(inv[np.array(self.added, dtype=bool)], minlength=n)
            # since_new ends as the misses after a cell's last hit, or grows by all its misses.
            order = np.arange(len(rows))
            last = np.full(n, -1)
            np.maximum.at(last, inv[hit], order[hit])
            after = np.bincount(inv[order > last[inv]], minlength=n)
            since = a.times_chosen_since_new
            since[cells] = np.where(last >= 0, after, since[cells] + after)
            a.dirty.update(cells.tolist())
        if self.seen:
            cells, counts = np.unique(np.array(self.seen, dtype=np.int64), return_counts=True)
            a.times_seen[cells] += counts
            a.dirty.update(cells.tolist())
