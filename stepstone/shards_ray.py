"""Archive shards as Ray actors (``--backend ray --shards K``): snapshots and results' parts go
between shards and workers through Ray's object store, never through the coordinator.

shards.py's coordinator forwards every task (with its 7.7 kB snapshot) and every part of every
result through itself: over Ray that costs it ~0.85 ms a call, past a thousand workers' worth of
its core (bench/README.md). Here:

- a task is a ``Ticket`` (its id) until a call to a worker is made up with it: then one shard,
  chosen by its weight total, is named to make the call's tasks, and the worker asks it for
  them (``run_call``, ``RayShard.make``): they go from the shard to the worker;
- the worker runs them and returns K+1 objects: for the coordinator each task's id, frames and
  the shards it has parts for; for each shard, its parts;
- the coordinator passes each shard the objects of its parts with the (task id, frames) to merge
  (``RayShard.merge``), without waiting: the shard's reply (weight total, table delta, tasks
  that found something for the chosen cell's counters) is taken in at a later poll.

The coordinator keeps what shards.py's does: frames, task ids, the tickets in flight (a result is
forwarded at most once; a dead worker's ticket is re-run, and its shard makes the same task
again), weight totals. A shard merges a task's part at most once too. Parts' objects are the
coordinator's (Ray: a caller owns what its calls return), so they outlive a worker that dies
after answering. Ray keeps objects under ``INLINE`` bytes in the caller's memory: a local
instance is started with that limit lowered, so parts go to the object store; a cluster keeps
its own setting (100 kB unless ``RAY_max_direct_call_object_size`` says otherwise), with which
parts of a call under it pass through the coordinator's memory, still unread.
Not here: the shards' engines and stores (shards.py), the loop (loop.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from .config import ExploreConfig
from .engine import Found, TellStats
from .errors import StepstoneError
from .executors.base import dumps, loads
from .executors.ray import Route, init
from .shards import Shard, ShardedEngine, shard_of

INLINE = 4096  # bytes: objects Ray passes through the caller, in a local instance started here
MERGE, MERGE_SECONDS = 256, 0.2  # results told, or seconds, before the shards merge them
LAG = 4  # merges a shard may have queued before the coordinator waits for the oldest
RECENT = 1 << 16  # task ids a shard remembers: merged (a part told twice) or awaiting credit


@dataclass(slots=True)
class Ticket:
    """A task as the coordinator holds it: its id, and the shard that makes it once a call
    was made up with it (the worker asks that shard for it, again if the task is re-run)."""

    task_id: int
    shard: int = -1

    @property
    def cell(self) -> str:
        """What the coordinator can say of the task's cell (given-up tasks are named by it)."""
        return f"<a cell of shard {self.shard}>"


@dataclass(slots=True)
class Done:
    """A result as the coordinator sees it: frames, the shards it has parts for, and the
    objects of the call's parts (one per shard)."""

    task_id: int
    frames: int
    to: list[int]
    parts: list[Any]


def run_call(worker: Any, k: int, head: bytes, shards: list | None) -> tuple:
    """Worker side: ask the shards for the call's tasks, run them; ``run_tasks``' objects."""
    import ray

    refs, picks = fetch(worker, head, shards)
    return run_tasks(worker, k, ray.get(refs), picks)


def fetch(worker: Any, head: bytes, shards: list | None) -> tuple[list, list]:
    """Take the call's table deltas and the shards' handles (sent when the worker lacks them)
    and ask each shard named in ``head`` for its tasks (``RayShard.make``): the objects asked
    for, and where each task is in them."""
    if shards is not None:
        worker.shard_actors = shards
    deltas, groups = loads(head)
    if deltas:
        worker.table.apply(deltas)
    refs = [worker.shard_actors[i].make.remote(ids) for i, ids in groups]
    picks = [(b, p) for b, (_, ids) in enumerate(groups) for p in range(len(ids))]
    return refs, picks


def run_tasks(worker: Any, k: int, blobs: list, picks: list) -> tuple:
    """Run the tasks at ``picks`` in ``blobs`` (shards' ``make`` lists); return what the
    coordinator reads (each task's id, frames and the shards it has parts for, and the
    seconds taken), then each shard's parts as {task id: (part, None)} for the shard that made
    the task, {task id: (part, (cell, score, length, trajectory, cell shape))} for others."""
    start = time.perf_counter()
    meta = []
    out: list[dict] = [{} for _ in range(k)]
    for b, p in picks:
        task, path = blobs[b][p]
        parts = worker.run(task)
        own = shard_of(task.cell, k)
        info = (task.cell, task.score, task.length, path, task.cell_shape)
        to = []
        for i, part in enumerate(parts.parts):
            if i == own:
                out[i][task.task_id] = (part, None)
            elif part:
                out[i][task.task_id] = (part, info)
            else:
                continue
            to.append(i)
        meta.append((task.task_id, parts.frames, to))
    return (dumps((meta, time.perf_counter() - start)), *out)


class RayShard(Shard):
    """A shard as a Ray actor: ``Shard`` plus the calls of this data path."""

    def __init__(self, *args: Any) -> None:
        # As an exploration actor (executors/ray.py): Ray's niceness 15 would starve it.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        # Ctrl-C reaches the whole process group; the coordinator commits through the shards.
        with contextlib.suppress(ValueError):  # (not the main thread: nothing to ignore)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.error: StepstoneError | None = None
        try:
            super().__init__(*args)
        except StepstoneError as e:  # said by the first call (an actor's own error is lost)
            self.error = e
            return
        self.spent = {"make": 0.0, "merge": 0.0}  # CPU seconds in each (bench/scaling.py)
        self.asked: dict[int, Any] = {}  # tasks made, until their own part is merged
        self.merged: OrderedDict[int, None] = OrderedDict()  # foreign parts merged
        self.waiting: OrderedDict[int, Any] = OrderedDict()  # own task -> cell, for credits

    def totals(self) -> dict:
        if self.error is not None:
            raise self.error
        return super().totals()

    def close(self) -> None:
        if self.error is None:
            super().close()

    def make(self, ids: list[int]) -> list[tuple]:
        """Tasks numbered ``ids``, each with its trajectory: what a worker's call runs. Asked
        again (a dead worker's task re-run), the same tasks."""
        c0 = time.process_time()
        asked = self.asked
        if ids[0] in asked:
            return [asked[tid] for tid in ids]
        e = self.engine
        tasks = e.ask(len(ids))
        e.pending.clear()
        out = []
        for t, tid in zip(tasks, ids, strict=True):
            t.task_id = tid
            asked[tid] = item = (t, self.path(t.node, t.length))
            out.append(item)
        self.spent["make"] += time.process_time() - c0
        return out

    def merge(self, items: list[tuple], credits: list[int], *blobs: dict) -> tuple:
        """Merge the parts of ``items`` (task id, frames before, frames) found in ``blobs``,
        each at most once; the new and improved entries, the tasks of other shards that
        changed something here (by their shard), and this shard's totals."""
        c0 = time.process_time()
        self.credit_tasks(credits)
        parts: dict[int, tuple] = {}
        for b in blobs:
            parts.update(b)
        rows = []
        for tid, before, frames in items:
            part, info = parts[tid]
            if info is None:
                t = self.asked.pop(tid, (None,))[0]
                if t is None:
                    continue
                rows.append((tid, t.cell, t.score, t.length, t.node, None, t.cell_shape,
                             before, frames, part))  # fmt: skip
                _remember(self.waiting, tid, t.cell)
            else:
                if tid in self.merged:
                    continue
                _remember(self.merged, tid, None)
                cell, score, length, path, shape = info
                rows.append((tid, cell, score, length, 0, path, shape, before, frames, part))
        changed, totals = self.tell(rows, [])
        new = improved = 0
        found_for: dict[int, list[int]] = {}
        for j, n, m in changed:
            new += n
            improved += m
            tid, cell, path = rows[j][0], rows[j][1], rows[j][5]
            if path is None:  # its own cell's counters already know
                self.waiting.pop(tid, None)
            else:
                found_for.setdefault(shard_of(cell, self.k), []).append(tid)
        self.spent["merge"] += time.process_time() - c0
        return new, improved, found_for, totals

    def cpu_by_call(self) -> dict:
        """CPU seconds so far: in ``make``, in ``merge`` (besides Ray's work around them)."""
        return {**self.spent, "all": time.process_time()}

    def credit_tasks(self, tids: Iterable[int]) -> None:
        """Explorations of these tasks (made here) found something in another shard: credit
        their cells once (``Shard.credit``)."""
        waiting = self.waiting
        self.credit([c for t in tids if (c := waiting.pop(t, None)) is not None])

    def commit_tasks(self, frames: int, credits: list[int]) -> dict:
        self.credit_tasks(credits)
        return self.commit(frames, [])


def _remember(d: OrderedDict, key: int, value: Any) -> None:
    d[key] = value
    if len(d) > RECENT:
        d.popitem(last=False)


class RayShardedEngine(ShardedEngine):
    """The coordinator over K shard actors (``ShardedEngine``'s interface and bookkeeping);
    ``route`` is what the Ray executor is given in place of a feed.

    Args:
        run_dir, config, state, pickled, trusted: as ``ShardedEngine``'s.
        address: the Ray cluster (``--address``; None: a local instance, started here). Shards
            run on this machine (they write the run directory), taking no CPU of Ray's.
    """

    def __init__(self, run_dir: Path, config: ExploreConfig, state: dict,
                 pickled: bool = False, trusted: bool = False,
                 address: str | None = None) -> None:  # fmt: skip
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray = ray
        self.started_ray = init(address, max_direct_call_object_size=INLINE)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        cls = ray.remote(RayShard).options(num_cpus=0, max_restarts=0, scheduling_strategy=here)
        args = (run_dir, config)
        self.actors: list[Any] = [
            cls.remote(*args, i, pickled, trusted) for i in range(config.shards)
        ]
        self.replies: deque[tuple[int, Any]] = deque()  # merges sent, oldest first
        self.found = 0  # new cells the replies taken in since the last tell reported
        self.items: list[list[tuple]] = [[] for _ in range(config.shards)]  # to merge, a shard
        self.blobs: list[dict] = [{} for _ in range(config.shards)]  # their parts' objects
        self.held, self.since = 0, 0.0  # results told since the last merge, and since when
        try:
            super().__init__(run_dir, config, state, pickled, trusted)
        except BaseException:
            self.close()
            raise

    def route(self, filtered: bool = True) -> ShardRoute:
        """What the Ray executor is given in place of a feed (``filtered``: workers are sent
        the shards' tables, ``--filter``)."""
        return ShardRoute(self, filtered)

    # -- talking to shards (``ShardedEngine``'s pipes, here Ray calls) ---------------------------
    def _start(self, run_dir: Path, config: ExploreConfig, pickled: bool, trusted: bool) -> None:
        self.conns, self.procs = [], []

    def _first(self) -> list[dict]:
        return self._call_all("totals", [()] * self.k)

    def _get(self, i: int, ref: Any) -> Any:
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # the shard raised: its error, as it is
            cause = e.cause if isinstance(e.cause, BaseException) else None
            if isinstance(cause, StepstoneError):
                raise cause from None
            raise StepstoneError(f"archive shard {i} failed: {e}") from e
        except ray.exceptions.RayActorError:
            self._gone(i)

    def _gone(self, i: int) -> NoReturn:
        raise StepstoneError(
            f"archive shard {i} stopped; what every shard committed is kept: continue with "
            f"'stepstone resume {self.run_dir}'"
        )

    def _call_all(self, op: str, per_shard: list[tuple | None]) -> list[Any]:
        refs = [None if p is None else getattr(self.actors[i], op).remote(*p)
                for i, p in enumerate(per_shard)]  # fmt: skip
        return [None if r is None else self._get(i, r) for i, r in enumerate(refs)]

    def add_root(self, root: Found) -> None:
        i = shard_of(root.cell, self.k)
        self._take(i, self._get(i, self.actors[i].add_root.remote(root, self.frames)))

    # -- the Engine interface ----------------------------------------------------------------
    def ask(self, n: int) -> list[Any]:
        """``n`` tickets: the shard and cell of each are chosen when its call is made up."""
        first = self.next_task
        self.next_task += n
        tickets = [Ticket(tid) for tid in range(first, first + n)]
        self.pending.update((t.task_id, t) for t in tickets)  # type: ignore[misc]
        return tickets  # type: ignore[return-value]

    def choose(self) -> int:
        """A shard, with probability proportional to its weight total."""
        w = np.array([t["weight"] for t in self.totals])
        if w.sum() <= 0:  # every entry terminal: as Selector.select, any shard with cells
            w = np.array([float(t["cells"] > 0) for t in self.totals])
        return int(self.rng.choice(self.k, p=w / w.sum()))

    def tell_many(self, results: Iterable[Any]) -> list[TellStats]:
        """Forward each result's parts (once) to the shards holding them, in merges of
        ``MERGE`` results or ``MERGE_SECONDS`` (a Ray call costs each side as much as merging
        tens of results); take in the replies that are in. The loop below runs once per
        result: it touches ids and counts only."""
        self.collect(wait=False)
        items, blobs = self.items, self.blobs
        stats: list[TellStats] = []
        pending = self.pending
        frames = self.frames
        for r in results:
            if pending.pop(r.task_id, None) is None:
                stats.append(TellStats(duplicate=True))
                continue
            stats.append(TellStats())
            for i in r.to:
                items[i].append((r.task_id, frames, r.frames))
                blobs[i][r.parts[i]] = None
            frames += r.frames
        told = sum(not s.duplicate for s in stats)
        self.explorations += told
        self.frames = frames
        if told and not self.held:
            self.since = time.monotonic()
        self.held += told
        if self.held >= MERGE or (self.held and time.monotonic() - self.since >= MERGE_SECONDS):
            self.flush()
        if self.found and stats:  # cells the shards reported since: counted with this batch
            stats[0].new_cells, self.found = self.found, 0
        while len(self.replies) > LAG * self.k:  # shards behind: wait for them
            self.collect(wait=True, oldest=True)
        return stats

    def flush(self) -> None:
        """Send each shard the merge of what it was told since the last."""
        for i in range(self.k):
            if self.items[i]:
                call = self.actors[i].merge.remote(self.items[i], self.credits[i], *self.blobs[i])
                self.items[i], self.blobs[i], self.credits[i] = [], {}, []
                self.replies.append((i, call))
        self.held = 0

    def collect(self, wait: bool, oldest: bool = False) -> None:
        """Take in the shards' replies, in the order sent: those that are in (all, when
        ``wait``; the oldest only, when ``oldest``)."""
        replies = self.replies
        if not replies:
            return
        if not wait:
            ready = set(self.ray.wait([r for _, r in replies], num_returns=len(replies),
                                      timeout=0)[0])  # fmt: skip
        while replies and (wait or replies[0][1] in ready):
            i, ref = replies.popleft()
            new, _improved, found_for, totals = self._get(i, ref)
            self.found += new
            self._take(i, totals)
            for own, tids in found_for.items():
                self.credits[own].extend(tids)
            if oldest:
                return

    def abandon(self, task_id: int) -> Any:
        return self.pending.pop(task_id, None)

    def abandon_all(self) -> None:
        self.pending.clear()

    # -- the run directory -------------------------------------------------------------------
    def commit_shards(self) -> None:
        self.flush()
        self.collect(wait=True)
        self._commit("commit_tasks")

    def close(self) -> None:
        ray = self.ray
        with contextlib.suppress(Exception):
            ray.get([a.close.remote() for a in self.actors], timeout=60)
        for a in self.actors:
            with contextlib.suppress(Exception):
                ray.kill(a)
        self.actors = []
        if self.started_ray:
            ray.shutdown()


class ShardRoute(Route):
    """Calls to workers made up from tickets: the fresh tickets of a call are given one shard,
    chosen by weight, which the worker asks for their tasks; the workers' parts come back as
    one object per shard (``run_call``)."""

    def __init__(self, engine: RayShardedEngine, filtered: bool) -> None:
        self.engine, self.filtered = engine, filtered
        self.returns = 1 + engine.k  # type: ignore[misc]

    def args(self, tasks: list[Any], known: Any) -> tuple[tuple, Any]:
        e = self.engine
        fresh = [t for t in tasks if t.shard < 0]
        if fresh:
            i = e.choose()
            for t in fresh:
                t.shard = i
        groups: dict[int, list[int]] = {}
        for t in tasks:  # usually one shard; tasks re-run after a worker died may be of two
            groups.setdefault(t.shard, []).append(t.task_id)
        deltas, held = e.feed.missing(known and known[0]) if self.filtered else (None, None)
        head = dumps((deltas, list(groups.items())))
        # A new or restarted worker (``known`` None) is sent the shards' handles.
        return (run_call, e.k, head, None if known else e.actors), (held, True)

    def results(self, value: Any, refs: list[Any]) -> list[Any]:
        return [Done(tid, frames, to, refs) for tid, frames, to in value]
