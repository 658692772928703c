"""Exploration workers as Ray actors, for a run that outgrows one machine.

Each actor holds one worker (one environment) and runs tasks sent as bytes; results come back
as bytes through Ray's object store, and the archive stays with the driver. The same command
runs on a laptop (a local Ray instance is started) or on a cluster (``--address auto`` or
``HOST:PORT`` of a running head node).

Batches: an actor call costs the driver about 0.7 ms of CPU whatever it carries (submitting it,
waiting for it, fetching its result; bench/README.md), as much as merging twenty results. So
an actor is sent ``per_call`` tasks in one call, runs them in turn and returns their results
together, and has ``DEPTH`` calls in flight so it never waits for the driver. Unless
``--tasks-per-call`` fixes it, ``per_call`` is chosen from the time actors report per task
(``tasks_per_call``): as few as keep the calls' cost a small share of the driver's core, since
the cells of a call are chosen before it starts and the archive table it carries ages while
it runs, and at most what an actor runs in ``CALL_SECONDS``.

Faults: actors are created with unlimited restarts, so Ray replaces a worker process that is
killed, runs out of memory or loses its node. The tasks of the calls it held are re-issued
here, each alone on an actor that holds no other call meanwhile, so that a task that kills
workers is told apart from the tasks batched or queued with it (a killed process may also lose
the reply of the call it finished just before: measured, with the next call's task killing
it). The engine merges each task's result at most once, so a re-issued task can never
double-count. A task that killed three workers is given up (``failed``), as in the process
backend.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
from collections import deque
from typing import Any

from ..config import MAX_PER_CALL, check_tasks_per_call
from ..errors import ConfigError, StepstoneError
from .base import Executor, Feed, WorkerFactory, dumps, loads
from .processes import MAX_DEATHS

DEPTH = 2  # calls in flight per actor
CALL_SECONDS = 1.0  # the work of one call at most, when ``per_call`` is chosen automatically
CALL_CPU = 0.0007  # driver CPU seconds per actor call (bench/README.md, 2026-12-01)
CALL_SHARE = 0.1  # of a driver core the calls may take before tasks are batched


def tasks_per_call(workers: int, per_task: float) -> int:
    """The fewest tasks per call that keep the driver's CPU for calls under ``CALL_SHARE``
    of a core with every actor busy, and no more than an actor runs in ``CALL_SECONDS``:
    few workers keep one task per call (each chosen as late as possible), hundreds share
    a call between many."""
    per_task = max(per_task, 1e-6)
    needed = math.ceil(workers / per_task * CALL_CPU / CALL_SHARE)
    return max(1, min(MAX_PER_CALL, round(CALL_SECONDS / per_task), needed))


class ExploreActor:
    """One exploration worker inside a Ray actor (the process title names it)."""

    def __init__(self, factory_bytes: bytes):
        # Ray starts workers at niceness 15; an exploration worker is the job itself, and at
        # that priority it starves beside any other load (measured: 12x slower).
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        self.worker = loads(factory_bytes)()

    def run(self, tasks_bytes: bytes) -> bytes:
        """Run a batch of tasks in turn: their results, and the seconds they took."""
        start = time.perf_counter()
        results = [self.worker.run(task) for task in loads(tasks_bytes)]
        return dumps((results, time.perf_counter() - start))

    def pid(self) -> int:
        return os.getpid()


def check_reachable(address: str) -> None:
    """A cluster's ``host:port`` that nothing answers at is said at once: ``ray.init`` waits
    minutes on one, printing its own retries (127.0.0.1:1 took over two). Other forms
    (``auto``, ``ray://``) are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in address:
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as e:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address!r} ({e.strerror or e}); start one with "
            "'ray start --head' or omit --address for a local instance"
        ) from None


class RayExecutor(Executor):
    local = False

    @classmethod
    def create(cls, factory: WorkerFactory, workers: int | None, address: str | None = None,
               deterministic: bool = False, feed: Feed | None = None,
               per_call: int | None = None) -> Executor:  # fmt: skip
        if deterministic:
            raise ConfigError(
                "--deterministic is for local workers; drop it or use --backend processes"
            )
        check_tasks_per_call(per_call)
        return cls(factory, workers, address, feed, per_call)

    def __init__(
        self,
        factory: WorkerFactory,
        workers: int | None = None,
        address: str | None = None,
        feed: Feed | None = None,
        per_call: int | None = None,
    ):
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs Ray: pip install 'stepstone[ray]'") from None
        self.ray = ray
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            os.environ.setdefault("RAY_worker_niceness", "0")  # read by a local instance
            try:
                # No --address: a local instance of our own, not the cluster Ray last
                # recorded in /tmp/ray/ray_current_cluster, which outlives a killed cluster
                # and then hangs ray.init (RAY_ADDRESS, set on purpose, still counts).
                ray.init(
                    address=address or os.environ.get("RAY_ADDRESS") or "local",
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                    configure_logging=False,
                )
            except ConnectionError as e:
                raise ConfigError(
                    f"cannot reach the Ray cluster at {address!r} ({e}); start one with "
                    "'ray start --head' or omit --address for a local instance"
                ) from e
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = workers or max(1, cpus)
        actor_cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(ExploreActor)
        payload = dumps(factory)
        # Any: Ray's stubs do not type an actor handle's methods (``handle.run.remote``).
        self._setup([actor_cls.remote(payload) for _ in range(workers)], feed, per_call)

    def _setup(self, actors: list[Any], feed: Feed | None, per_call: int | None) -> None:
        """The driver's bookkeeping over started actors (also used by bench/scaling.py's
        simulated workers)."""
        self.actors = actors
        self.workers = len(actors)
        self.feed = feed
        self.fixed = per_call is not None
        self.per_call = per_call or 1  # tasks per call; re-chosen as actors report their pace
        self.per_task: float | None = None  # seconds an actor takes per task (moving average)
        self.known: list[Any] = [None] * self.workers  # what each actor holds of the feed
        self.queue: deque[Any] = deque()  # submitted, waiting for a call
        self.inflight: dict[Any, tuple[int, list[Any], int]] = {}  # call -> actor, tasks, seq
        self.tasks = 0  # tasks in those calls
        self.seq = 0  # calls sent so far
        self.calls: list[deque[int]] = [deque() for _ in actors]  # each actor's, oldest first
        self.behind: set[int] = set()  # calls queued behind one that died: never started
        self.load = [0] * self.workers  # calls in flight per actor
        self.freed: deque[int] = deque()  # actors that finished a call, most recent last
        self.broken: set[int] = set()  # actors that died, until a probe finds them restarted
        self.probes: dict[Any, int] = {}  # probe call -> actor (calls sent mid-restart fail)
        self.suspects: deque[Any] = deque()  # tasks of calls that died, to be run alone
        self.alone: set[int] = set()  # actors kept for them: no other call is sent there
        self.solo: set[int] = set()  # those of them running one
        self.failed: list[tuple[Any, str]] = []  # tasks given up: they killed MAX_DEATHS workers
        self.deaths: dict[int, int] = {}
        self.reissued = 0
        self.replaced = 0  # actor deaths (Ray restarts the actor)

    def _pick(self) -> int | None:
        """The least loaded healthy actor with room for a call (None: every one has DEPTH, or
        is kept for suspects). Usually one whose call just finished (O(1)); else found by a
        scan (the first calls, after a death)."""
        while self.freed:
            i = self.freed.popleft()
            if i not in self.broken and i not in self.alone and self.load[i] < DEPTH:
                return i
        if len(self.inflight) >= DEPTH * self.workers:
            return None
        free = (j for j in range(self.workers) if j not in self.alone and j not in self.broken)
        least = min(free, key=lambda j: self.load[j], default=None)
        return least if least is not None and self.load[least] < DEPTH else None

    def _isolate(self) -> None:
        """Run each suspect task alone: keep an actor for each suspect waiting (from the least
        loaded healthy ones), send it no other call, and give it its suspect once it is idle."""
        waiting = len(self.suspects) - len(self.alone - self.solo)
        while waiting > 0:
            free = [j for j in range(self.workers) if j not in self.alone and j not in self.broken]
            if not free:
                break
            self.alone.add(min(free, key=lambda j: self.load[j]))
            waiting -= 1
        for i in list(self.alone):
            if self.load[i] == 0 and i not in self.broken:
                self.solo.discard(i)
                if self.suspects:
                    self._call(i, [self.suspects.popleft()])
                    self.solo.add(i)
                else:
                    self.alone.discard(i)

    def _call(self, i: int, tasks: list[Any]) -> None:
        """Send ``tasks`` to actor ``i`` in one call."""
        sent = tasks
        if self.feed is not None:  # the first task carries what the actor lacks
            first, self.known[i] = self.feed.attach(tasks[0], self.known[i])
            sent = [first, *tasks[1:]]
        ref = self.actors[i].run.remote(dumps(sent))
        self.seq += 1
        self.inflight[ref] = (i, tasks, self.seq)
        self.calls[i].append(self.seq)
        self.tasks += len(tasks)
        self.load[i] += 1

    def _dispatch(self, partial: bool) -> None:
        """Send queued tasks in calls of ``per_call`` to actors with room; a last, smaller
        call too when ``partial`` (the caller has submitted all it will for now)."""
        while self.queue and (partial or len(self.queue) >= self.per_call):
            i = self._pick()
            if i is None:
                return
            n = min(self.per_call, len(self.queue))
            self._call(i, [self.queue.popleft() for _ in range(n)])

    def _pace(self, n: int, seconds: float) -> None:
        """Take in an actor's time for ``n`` tasks; re-choose ``per_call`` (unless fixed)."""
        if n == 0:
            return
        t = seconds / n
        self.per_task = t if self.per_task is None else 0.8 * self.per_task + 0.2 * t
        if not self.fixed:
            self.per_call = tasks_per_call(self.workers, self.per_task)

    @property
    def capacity(self) -> int:
        return DEPTH * self.per_call * self.workers

    def submit(self, task: Any) -> None:
        self.queue.append(task)
        self._dispatch(partial=False)

    def poll(self, timeout: float | None = None) -> list[Any]:
        self._isolate()
        self._dispatch(partial=True)
        if not self.inflight and not self.probes:
            return []
        ray = self.ray
        refs = [*self.inflight, *self.probes]
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            more, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            ready = list(dict.fromkeys(ready + more))
        for ref in [r for r in ready if r in self.probes]:
            self._probed(ref)
        out: list[Any] = []
        # In the order sent: an actor runs its calls in turn, so of those that died with it
        # the first was running and the others had not started.
        for ref in sorted(
            (r for r in ready if r in self.inflight), key=lambda r: self.inflight[r][2]
        ):
            i, tasks, seq = self.inflight.pop(ref)
            running = self.calls[i][0] == seq and seq not in self.behind
            self.calls[i].remove(seq)
            self.behind.discard(seq)
            self.tasks -= len(tasks)
            self.load[i] -= 1
            self.freed.append(i)
            try:
                results, seconds = loads(ray.get(ref))
            except ray.exceptions.RayTaskError as e:
                raise StepstoneError(f"a Ray worker failed running a task: {e}") from e
            except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError):
                self._died(i, tasks, running)
                continue
            self._pace(len(results), seconds)
            out.extend(results)
        self._isolate()
        return out

    def _died(self, i: int, tasks: list[Any], running: bool) -> None:
        """A call to actor ``i`` died with it (Ray restarts the actor): its tasks become
        suspects, to be run again alone. The death counts against the tasks of the call that
        was ``running``, not those queued behind it; a task that kept killing workers is given
        up."""
        if i not in self.broken:
            self.broken.add(i)
            self._probe(i)
        self.known[i] = None  # the restarted actor starts from nothing
        if running:
            self.replaced += 1
            self.behind.update(self.calls[i])
        for task in tasks:
            if running:
                n = self.deaths[task.task_id] = self.deaths.get(task.task_id, 0) + 1
                if n >= MAX_DEATHS:
                    self.failed.append((task, f"it killed {n} worker processes"))
                    continue
            self.reissued += 1
            self.suspects.append(task)

    def _probe(self, i: int) -> None:
        """Ask a dead actor for its pid: the answer says Ray has restarted it."""
        self.probes[self.actors[i].pid.remote()] = i

    def _probed(self, ref: Any) -> None:
        i = self.probes.pop(ref)
        try:
            self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.ObjectLostError):
            self._probe(i)  # sent while it was still restarting: ask again
            return
        self.broken.discard(i)
        self.freed.append(i)

    @property
    def in_flight(self) -> int:
        return len(self.queue) + self.tasks + len(self.suspects)

    @property
    def alive(self) -> int:
        return self.workers - len(self.broken)

    def pids(self) -> list[int]:
        return self.ray.get([a.pid.remote() for a in self.actors])

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        if self.started_ray:
            self.ray.shutdown()
