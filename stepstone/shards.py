"""Archive shards: the archive split by cell hash over processes, for a driver of many workers.

With ``--shards K`` the driver (the *coordinator*) no longer holds the archive. Shard ``i`` owns
the cells whose stable hash (CRC-32 of the cell's data encoding, codec.py) is ``i`` modulo K:
their entries, counters, trajectory segments and snapshots, in its own process and its own run
store ``D/shards/i``. The coordinator keeps what is global: frames, explorations, task ids, the
tasks in flight (so a result is merged at most once) and each shard's total selection weight.

Selection: the coordinator picks a shard with probability proportional to its weight total, the
shard picks a cell within itself by weight. For a selector whose weight of a cell depends on that
cell's counters only (``Selector.shardable``: count, seen, uniform) that is exactly weighted
sampling over the whole archive, ``w_c / sum(w)``; any other selector is refused (config.py),
not changed.

Merging: the worker splits what it found and saw by shard and pickles each part (``split``), so
the coordinator forwards bytes it never unpickles. Every shard with a part merges it; the task's
own shard always gets the result, to count the choice. A trajectory starting in another shard
is copied into the merging shard (one node per task holding the whole prefix), so each shard's
store replays its entries alone. Two counters of the chosen cell learn one batch late that the
exploration found something in another shard (``credits``). Snapshot and node ids of shard ``i``
start at ``i << ID_BITS``: ids stay unique across shards, and readers union the stores
(store/sqlite.py).

Commits: each iteration, every shard commits its store, then the coordinator its own
(``D/run.sqlite``: configuration, counters, metrics). A crash between them leaves shards a few
results ahead of the coordinator's counters, never an entry without its trajectory.
Not here: the loop (loop.py), workers (worker.py), executors.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import signal
import threading
import time
import traceback
import zlib
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import codec, errors, selectors
from .archive import MISSING, Archive
from .config import ExploreConfig
from .engine import Found, Result, Task, TellStats
from .errors import RunDirError, StepstoneError
from .executors.base import dumps, loads
from .table import CellTable, TableDelta, TableFeed
from .trajectories import ROOT

SHARDS_DIR = "shards"
ID_BITS = 40  # shard i numbers its snapshots and trajectory nodes from i << ID_BITS
PATHS = 4096  # trajectories a shard keeps at hand for the tasks it makes


@functools.lru_cache(maxsize=2**16)  # a worker meets the same cells again and again
def shard_of(cell: Hashable, k: int) -> int:
    """The shard owning ``cell``: the same in every process and run (not Python's hash())."""
    return zlib.crc32(codec.pack(cell)) % k


def check_shardable(config: ExploreConfig, worker: Any) -> None:
    """Refuse cells or roles shards cannot hold (cells re-chosen or decided against the whole
    archive, a model's roles); called before a run directory is written, and on resume.

    Raises:
        ConfigError: with ``--shards`` above 1 and such cells (``worker``'s) or a model.
    """
    if config.shards == 1:
        return
    from .cells import DriverDecidedCells

    if worker.adaptive is not None or isinstance(worker.cell_fn, DriverDecidedCells):
        raise errors.ConfigError(
            f"--cells {config.cells} are re-chosen or decided against the whole archive, "
            "which shards cannot do; drop --shards or choose fixed cells"
        )
    if config.uses_model:
        raise errors.ConfigError("a model's roles are not wired through shards yet; drop --shards")


@dataclass(slots=True)
class Parts:
    """A result as a worker of a sharded run sends it: what it found and saw split by the shard
    owning each cell, each part pickled by the worker as (found, seen, actions or None), b""
    where a shard has nothing; the coordinator forwards bytes it never unpickles."""

    task_id: int
    frames: int
    parts: list[bytes]


def split(result: Result, k: int) -> Parts:
    """``result`` split by shard (worker side); a part carries the actions if it has cells
    found (their trajectories), none if only cells seen."""
    found: list[list[Found]] = [[] for _ in range(k)]
    seen: list[list[Hashable]] = [[] for _ in range(k)]
    for f in result.found:
        found[shard_of(f.cell, k)].append(f)
    for c in result.seen:
        seen[shard_of(c, k)].append(c)
    parts = [
        dumps((f, s, result.actions if f else None)) if f or s else b""
        for f, s in zip(found, seen, strict=True)
    ]
    return Parts(result.task_id, result.frames, parts)


class ShardTables(CellTable):
    """A worker's copies of every shard's table (table.py); a task carries a list of
    ``(shard, TableDelta)``."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.parts = [CellTable() for _ in range(k)]

    def apply(self, deltas: Any) -> None:
        for s, d in deltas:
            self.parts[s].apply(d)

    def keeps(self, cell: Hashable, score: float, length: int, goal: bool) -> bool:
        return self.parts[shard_of(cell, self.k)].keeps(cell, score, length, goal)


class ShardFeed:
    """The coordinator's feed (executors/base.py ``Feed``): each shard's table versions as the
    shards send them; a worker holds a version per shard."""

    def __init__(self, k: int) -> None:
        self.log: list[list[TableDelta]] = [[] for _ in range(k)]

    def attach(self, task: Any, known: Any) -> tuple[Any, Any]:
        held = known or (0,) * len(self.log)
        deltas = [(s, d) for s, log in enumerate(self.log) for d in log[held[s] :]]
        if not deltas:
            return task, known
        return replace(task, table=deltas), tuple(len(log) for log in self.log)


# -- one shard, in its own process -------------------------------------------------------------
class Shard:
    """One shard's engine over its own run store ``D/shards/i``."""

    def __init__(self, run_dir: Path, config: ExploreConfig, index: int, pickled: bool,
                 trusted: bool) -> None:  # fmt: skip
        from .store.sqlite import DB_NAME, RunStore

        k = config.shards
        path = Path(run_dir) / SHARDS_DIR / str(index)
        mark = f"{index}/{k}"
        if (path / DB_NAME).exists():
            store = RunStore.open(path, write=True)
            if (held := store.meta("shard")) != mark:
                store.close()
                raise RunDirError(
                    f"{path} is shard {held} of another sharding than this run's "
                    f"{k} shards; the run directory is damaged: restore it from a backup"
                )
            store.upgrade()
        else:
            store = RunStore.create(path, config)
            store.set_meta("shard", mark)
        if pickled:
            store.use_pickled_snapshots(trusted)
        self.store = store
        self.index, self.k = index, k
        engine = store.load_engine(
            selectors.make(config.selector, **config.selector_params), seed=config.seed * k + index,
            reset_on_update=config.reset_on_update,
        )  # fmt: skip
        if engine.trajectories.next_id < index << ID_BITS:  # a new shard: its own id range
            engine.trajectories.next_id = engine.archive.next_snap = index << ID_BITS
        self.engine = engine
        self.feed = TableFeed(engine.archive)
        self.sent: Any = None  # the table version last sent to the coordinator
        self.paths: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def add_root(self, root: Found, frames: int) -> dict:
        self.engine.add_root(root)
        return self.commit(frames, [])

    def set_start(self, root: Found) -> None:
        self.engine.set_start(root)

    def ask(self, n: int, first_id: int) -> tuple[list[Task], list[np.ndarray]]:
        """``n`` tasks numbered from ``first_id``, with each one's whole trajectory (another
        shard merging what it finds keeps a copy)."""
        e = self.engine
        e.next_task = first_id
        tasks = e.ask(n)
        e.pending.clear()  # the coordinator holds the tasks in flight
        return tasks, [self.path(t.node, t.length) for t in tasks]

    def path(self, node: int, length: int) -> np.ndarray:
        """A trajectory's actions, remembered for the cells asked most (``PATHS``): read from
        the store, a path costs a query per segment."""
        paths = self.paths
        key = (node, length)
        p = paths.get(key)
        if p is None:
            p = paths[key] = self.engine.trajectories.actions(node, length)
            if len(paths) > PATHS:
                paths.popitem(last=False)
        else:
            paths.move_to_end(key)
        return p

    def tell(self, items: list[tuple], credits: list[tuple]) -> tuple[list[tuple], dict]:
        """Merge this shard's parts of a batch of results; the entries each one added and
        improved, and this shard's totals."""
        e = self.engine
        self.credit(credits)
        results = []
        end = None
        for tid, cell, score, length, node, path, shape, before, frames, part in items:
            found, seen, actions = loads(part) if part else ([], [], None)
            if path is not None:  # another shard's cell: its trajectory copied here
                node = e.trajectories.add(ROOT, 0, path) if found else ROOT
            if end is None:
                e.frames = before
                end = before
            e.pending[tid] = Task(tid, cell, b"", score, length, node, 0, shape)
            if actions is None:
                actions = np.zeros(0, dtype=np.int64)
            # Frames spent since the previous part this shard saw: entries are stamped with
            # the run's frame count, as one archive stamps them.
            results.append(Result(tid, actions, before + frames - end, found, seen))
            end = before + frames
        stats = e.tell_many(results)
        # Only the items that changed something (most change nothing: workers filter), so the
        # coordinator's work per reply follows the changes, not the results.
        changed = [
            (j, s.new_cells, s.improved) for j, s in enumerate(stats) if s.new_cells or s.improved
        ]
        return changed, self.totals()

    def credit(self, credits: Iterable[tuple[Hashable, bool, bool]]) -> None:
        """Explorations from these cells found something in other shards that this one did not
        count: (cell, whether they found anything, whether they added a cell)."""
        a = self.engine.archive
        for cell, found, added in credits:
            i = a.index.get(cell)
            if i is not None:
                a.new_finds[i] += added
                if found:
                    a.discoveries[i] += 1
                    a.times_chosen_since_new[i] = 0
                a.dirty.add(i)

    def totals(self) -> dict:
        """What the coordinator keeps of this shard: weight total, size, best, goal, and the
        table version workers lack."""
        e = self.engine
        a = e.archive
        n = len(a)
        w = 0.0
        if n:
            weights = e.selector.weights(a)
            w = float(np.where(a.terminal[:n], 0.0, weights).sum())
        out: dict[str, Any] = {
            "weight": w,
            "cells": n,
            "best": float(a.score[a.best()]) if n else None,
            "success_frame": e.success_frame,
            "goal_known": e.goal_known,
            "delta": None,
        }
        d = self.feed.delta(self.sent)
        if d is not None:
            self.sent = (d.epoch, d.version)
            out["delta"] = d
        return out

    def commit(self, frames: int, credits: list[tuple]) -> dict:
        """Write this shard's changes; its totals with the (level, room) pairs it reached."""
        self.credit(credits)
        self.engine.frames = frames
        self.store.commit(self.engine)
        a = self.engine.archive
        cols = [c for c in (a.metric("level"), a.metric("room")) if c is not None]
        rooms = set()
        if len(cols) == 2:
            rows = np.stack(cols, axis=1)
            rooms = {tuple(r) for r in rows[(rows != MISSING).any(axis=1)].tolist()}
        return {**self.totals(), "rooms": rooms, "level": a.highest("level")}

    def cpu(self) -> float:
        return time.process_time()

    def close(self) -> None:
        self.store.close()


def serve(conn: Any, args: tuple) -> None:
    """A shard process: build the shard, then answer the coordinator's calls until it closes
    the pipe (or dies: what the shard committed stays)."""
    # Ctrl-C reaches the whole process group: the coordinator stops the run and commits
    # through its shards, which must still be there to answer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        shard = Shard(*args)
    except StepstoneError as e:
        conn.send(("error", (type(e).__name__, str(e))))
        return
    except Exception:
        conn.send(("error", ("", f"shard {args[2]} failed to start: {traceback.format_exc()}")))
        return
    conn.send(("ok", shard.totals()))
    try:
        while True:
            try:
                op, params = conn.recv()
            except (EOFError, OSError):
                return
            if op == "close":
                return
            try:
                conn.send(("ok", getattr(shard, op)(*params)))
            except StepstoneError as e:
                conn.send(("error", (type(e).__name__, str(e))))
            except Exception:
                why = f"shard {shard.index} failed: {traceback.format_exc()}"
                conn.send(("error", ("", why)))
    finally:
        shard.close()


# -- the coordinator ---------------------------------------------------------------------------
@contextlib.contextmanager
def _deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then act on them as their handlers would."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    kinds = (signal.SIGINT, signal.SIGTERM)
    before = {k: signal.signal(k, lambda signum, frame: held.append(signum)) for k in kinds}
    try:
        yield
    finally:
        for k, handler in before.items():
            signal.signal(k, handler)
        for signum in held[:1]:
            handler = before[signal.Signals(signum)]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


class _Observer:
    """``drive`` tells the selector each exploration; shardable selectors ignore it."""

    def observe(self, task: Any, result: Any) -> None:
        pass


class ShardedEngine:
    """The coordinator: the ``Engine`` interface ``loop.drive`` uses (ask, tell_many, pending,
    abandon), over K shard processes.

    Args:
        run_dir: the run directory; shard ``i`` keeps its store in ``run_dir/shards/i``.
        config: the run's configuration (``config.shards`` > 1).
        state: the coordinator's stored state (``RunStore.state()``; ``{}``: a new run).
        pickled, trusted: snapshots are pickled (``--return deepcopy``) and the directory trusted.

    Raises:
        RunDirError: a shard store is missing, damaged, or of another sharding.
    """

    def __init__(self, run_dir: Path, config: ExploreConfig, state: dict,
                 pickled: bool = False, trusted: bool = False) -> None:  # fmt: skip
        k = self.k = config.shards
        run_dir = self.run_dir = Path(run_dir)
        from .store.sqlite import DB_NAME

        if state:  # a run committed before: every shard's store is there, and no other
            stores = (run_dir / SHARDS_DIR).glob(f"*/{DB_NAME}")
            found = sorted(int(n) for p in stores if (n := p.parent.name).isdigit())
            if found != list(range(k)):
                raise RunDirError(
                    f"{run_dir / SHARDS_DIR} holds the stores of shards {found}, this run has "
                    f"{k} (0 to {k - 1}); the run directory is damaged: restore it from a backup"
                )
        self.frames = int(state.get("frames", 0))
        self.next_task = int(state.get("next_task", 1))
        self.explorations = int(state.get("explorations", 0))
        self.rng = np.random.default_rng(config.seed)
        if state.get("rng") is not None:
            self.rng.bit_generator.state = state["rng"]
        self.pending: dict[int, Task] = {}
        self.origin: dict[int, tuple[int, np.ndarray]] = {}  # task -> its shard, trajectory
        self.start_shard = 0  # the reset state's: set by add_root, or set_start on resume
        self.credits: list[list[tuple]] = [[] for _ in range(k)]  # Shard.credit's, by shard
        self.selector = _Observer()
        self.rule = None
        self.archive = Archive()  # the coordinator holds no entries (RunStore.commit)
        self.feed = ShardFeed(k)
        self.success_frame: int | None = state.get("success_frame")
        self.goal_known = bool(state.get("goal_known", False))
        self.places: dict = {}
        ctx = multiprocessing.get_context("spawn")  # no fork of a process holding Ray threads
        self.conns, self.procs = [], []
        for i in range(k):
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=serve, args=(theirs, (run_dir, config, i, pickled, trusted)),
                            name=f"stepstone-shard-{i}", daemon=True)  # fmt: skip
            p.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(p)
        self.totals: list[dict] = []
        try:
            self.totals = [self._recv(i) for i in range(k)]
        except BaseException:
            self.close()
            raise
        for i, t in enumerate(self.totals):
            self._take(i, t)

    # -- talking to shards -------------------------------------------------------------------
    def _send(self, i: int, op: str, *params: Any) -> None:
        try:
            self.conns[i].send((op, params))
        except (BrokenPipeError, OSError):
            self._gone(i)

    def _recv(self, i: int) -> Any:
        try:
            status, value = self.conns[i].recv()
        except (EOFError, OSError):
            self._gone(i)
        if status == "error":  # (the error's class name, its message)
            kind = getattr(errors, value[0], StepstoneError)
            raise (kind if isinstance(kind, type) and issubclass(kind, StepstoneError)
                   else StepstoneError)(value[1])  # fmt: skip
        return value

    def _gone(self, i: int) -> NoReturn:
        p = self.procs[i]
        p.join(1.0)
        raise StepstoneError(
            f"archive shard {i} stopped (exit code {p.exitcode}); what every shard committed "
            f"is kept: continue with 'stepstone resume {self.run_dir}'"
        )

    def _call_all(self, op: str, per_shard: list[tuple | None]) -> list[Any]:
        """Send each shard its call (None: none), then gather the replies: shards work at once.
        Ctrl-C and SIGTERM wait until every reply is in: a call cut halfway would leave a
        reply in the pipe for the next call to take as its own."""
        with _deferred_signals():
            for i, params in enumerate(per_shard):
                if params is not None:
                    self._send(i, op, *params)
            return [None if p is None else self._recv(i) for i, p in enumerate(per_shard)]

    def _take(self, i: int, totals: dict) -> None:
        self.totals[i] = totals
        d = totals.pop("delta", None)
        if d is not None:
            self.feed.log[i].append(d)
        self.goal_known = self.goal_known or totals["goal_known"]
        s = totals["success_frame"]
        if s is not None and (self.success_frame is None or s < self.success_frame):
            self.success_frame = s

    # -- the Engine interface ----------------------------------------------------------------
    @property
    def cells(self) -> int:
        return sum(t["cells"] for t in self.totals)

    def best_score(self) -> float:
        best = [t["best"] for t in self.totals if t["best"] is not None]
        return max(best) if best else 0.0

    def add_root(self, root: Found) -> None:
        i = self.start_shard = shard_of(root.cell, self.k)
        self._send(i, "add_root", root, self.frames)
        self._take(i, self._recv(i))

    def set_start(self, root: Found) -> None:
        """A resumed run's reset state, kept by the shard owning its cell (``ask``)."""
        i = self.start_shard = shard_of(root.cell, self.k)
        self._send(i, "set_start", root)
        self._recv(i)

    def ask(self, n: int) -> list[Task]:
        w = np.array([t["weight"] for t in self.totals])
        if w.sum() <= 0:  # every entry terminal: the reset state's shard explores from it
            w = np.zeros(self.k)
            w[self.start_shard] = 1.0
        counts = self.rng.multinomial(n, w / w.sum())
        calls: list[tuple | None] = []
        for c in counts.tolist():
            calls.append((c, self.next_task) if c else None)
            self.next_task += c
        tasks = []
        for i, reply in enumerate(self._call_all("ask", calls)):
            if reply is None:
                continue
            for t, path in zip(*reply, strict=True):
                self.pending[t.task_id] = t
                self.origin[t.task_id] = (i, path)
                tasks.append(t)
        return tasks

    def tell(self, result: Result) -> TellStats:
        return self.tell_many([result])[0]

    def tell_many(self, results: Iterable[Parts | Result]) -> list[TellStats]:
        """Merge each result at most once: its parts go to the shards owning them. The loop
        below runs once per result on the coordinator's one core, so it does the least it can:
        shards answer only for the items that changed something (``Shard.tell``)."""
        k = self.k
        items: list[list[tuple]] = [[] for _ in range(k)]
        where: list[list[int]] = [[] for _ in range(k)]  # result of each item
        stats: list[TellStats] = []
        owner: list[tuple[int, Hashable] | None] = []  # each result's shard and cell
        pending, origin = self.pending, self.origin
        for j, r in enumerate(results):
            task = pending.pop(r.task_id, None)
            stats.append(TellStats(duplicate=task is None))
            if task is None:
                owner.append(None)
                continue
            tid = task.task_id
            own, path = origin.pop(tid)
            owner.append((own, task.cell))
            before = self.frames
            self.frames += r.frames
            parts = r.parts if isinstance(r, Parts) else split(r, k).parts
            head = (tid, task.cell, task.score, task.length, task.node)
            tail = (task.cell_shape, before, r.frames)
            for i, part in enumerate(parts):
                if i == own:
                    items[i].append((*head, None, *tail, part))
                elif part:
                    items[i].append((*head, path, *tail, part))
                else:
                    continue
                where[i].append(j)
        self.explorations += sum(o is not None for o in owner)
        calls = [(items[i], self.credits[i]) if items[i] else None for i in range(k)]
        replies = self._call_all("tell", calls)
        found_by: dict[int, set[int]] = {}  # result -> shards where it changed something
        added_by: dict[int, set[int]] = {}  # result -> shards where it added a cell
        for i, reply in enumerate(replies):
            if reply is None:
                continue
            self.credits[i] = []
            changed, totals = reply
            self._take(i, totals)
            for n, new, improved in changed:
                j = where[i][n]
                stats[j].new_cells += new
                stats[j].improved += improved
                found_by.setdefault(j, set()).add(i)
                if new:
                    added_by.setdefault(j, set()).add(i)
        for j, shards in found_by.items():
            mine = owner[j]
            if mine is None:
                continue
            found = mine[0] not in shards  # else the own shard counted it in its tell
            added = j in added_by and mine[0] not in added_by[j]
            if found or added:
                self.credits[mine[0]].append((mine[1], found, added))
        return stats

    def abandon(self, task_id: int) -> Task | None:
        self.origin.pop(task_id, None)
        return self.pending.pop(task_id, None)

    def abandon_all(self) -> None:
        self.pending.clear()
        self.origin.clear()

    # -- the run directory -------------------------------------------------------------------
    def state(self) -> dict:
        """What the coordinator's own store keeps (keys as ``Engine.state``'s)."""
        return {
            "frames": self.frames,
            "next_task": self.next_task,
            "rng": self.rng.bit_generator.state,
            "explorations": self.explorations,
            "success_frame": self.success_frame,
            "goal_known": self.goal_known,
            "shards": self.k,
        }

    def commit_shards(self) -> None:
        """Every shard commits (first: a crash before the coordinator's commit loses none of
        their entries); their (level, room) pairs and highest level are kept for the metrics."""
        replies = self._call_all("commit", [(self.frames, self.credits[i]) for i in range(self.k)])
        rooms: set = set()
        levels = []
        for i, r in enumerate(replies):
            self.credits[i] = []
            rooms |= r.pop("rooms")
            level = r.pop("level")
            if level is not None:
                levels.append(level)
            self._take(i, r)
        self.places = {"rooms": len(rooms) or None, "level": max(levels) if levels else None}

    def cpu(self) -> list[float]:
        """Each shard process's CPU seconds so far (bench/scaling.py)."""
        return self._call_all("cpu", [()] * self.k)

    def close(self) -> None:
        for c in self.conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                c.send(("close", ()))
        for p in self.procs:
            p.join(10.0)
            if p.is_alive():
                p.terminate()
                p.join(1.0)
        for c in self.conns:
            c.close()
