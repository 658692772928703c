"""Exploration workers as Ray actors, for a run that outgrows one machine.

Each actor holds one worker (one environment) and runs tasks sent as bytes; results come back
as bytes through Ray's object store, and the archive stays with the driver. The same command
runs on a laptop (a local Ray instance is started) or on a cluster (``--address auto`` or
``HOST:PORT`` of a running head node).

Faults: actors are created with unlimited restarts, so Ray replaces a worker process that is
killed, runs out of memory or loses its node. The task it was running is re-issued here; the
engine merges each task's result at most once, so a re-issued task can never double-count. A
task that killed three workers is given up (``failed``), as in the process backend.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from typing import Any

from ..errors import ConfigError, StepstoneError
from .base import Executor, Feed, WorkerFactory, dumps, loads
from .processes import MAX_DEATHS


class ExploreActor:
    """One exploration worker inside a Ray actor (the process title names it)."""

    def __init__(self, factory_bytes: bytes):
        # Ray starts workers at niceness 15; an exploration worker is the job itself, and at
        # that priority it starves beside any other load (measured: 12x slower).
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        self.worker = loads(factory_bytes)()

    def run(self, task_bytes: bytes) -> bytes:
        return dumps(self.worker.run(loads(task_bytes)))

    def pid(self) -> int:
        return os.getpid()


class RayExecutor(Executor):
    local = False

    @classmethod
    def create(cls, factory: WorkerFactory, workers: int | None, address: str | None = None,
               deterministic: bool = False, feed: Feed | None = None) -> Executor:  # fmt: skip
        if deterministic:
            raise ConfigError(
                "--deterministic is for local workers; drop it or use --backend processes"
            )
        return cls(factory, workers, address, feed)

    def __init__(
        self,
        factory: WorkerFactory,
        workers: int | None = None,
        address: str | None = None,
        feed: Feed | None = None,
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
                ray.init(
                    address=address,
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
        self.workers = workers or max(1, cpus)
        actor_cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(ExploreActor)
        payload = dumps(factory)
        # Any: Ray's stubs do not type an actor handle's methods (``handle.run.remote``).
        self.actors: list[Any] = [actor_cls.remote(payload) for _ in range(self.workers)]
        self.feed = feed
        self.known: list[Any] = [None] * self.workers  # what each actor holds of the feed
        self.inflight: dict[Any, tuple[int, Any]] = {}
        self.load = [0] * self.workers
        self.freed: deque[int] = deque()  # actors that finished a task, most recent last
        self.least = 0  # the lowest load when last scanned
        self.broken: set[int] = set()  # actors whose last task died with them
        self.failed: list[tuple[Any, str]] = []  # tasks given up: they killed MAX_DEATHS workers
        self.deaths: dict[int, int] = {}
        self.reissued = 0
        self.replaced = 0  # actor deaths (Ray restarts the actor)

    def _pick(self, avoid: int | None) -> int:
        """The least loaded healthy actor: usually one whose task just finished (O(1)), else
        found by a scan (the first tasks, after a death)."""
        while self.freed:
            i = self.freed.popleft()
            if i != avoid and i not in self.broken and self.load[i] <= self.least:
                return i
        i = min(range(self.workers), key=lambda i: (i in self.broken, i == avoid, self.load[i]))
        self.least = self.load[i]
        return i

    def _send(self, task: Any, avoid: int | None = None) -> None:
        i = self._pick(avoid)
        sent = task
        if self.feed is not None:
            sent, self.known[i] = self.feed.attach(task, self.known[i])
        ref = self.actors[i].run.remote(dumps(sent))
        self.inflight[ref] = (i, task)
        self.load[i] += 1

    def submit(self, task: Any) -> None:
        self._send(task)

    def poll(self, timeout: float | None = None) -> list[Any]:
        if not self.inflight:
            return []
        ray = self.ray
        ready, _ = ray.wait(list(self.inflight), num_returns=1, timeout=timeout)
        if ready:
            more, _ = ray.wait(list(self.inflight), num_returns=len(self.inflight), timeout=0)
            ready = list(dict.fromkeys(ready + more))
        out = []
        for ref in ready:
            i, task = self.inflight.pop(ref)
            self.load[i] -= 1
            self.freed.append(i)
            try:
                out.append(loads(ray.get(ref)))
                self.broken.discard(i)
            except ray.exceptions.RayTaskError as e:
                raise StepstoneError(f"a Ray worker failed running a task: {e}") from e
            except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError):
                # The worker process died; Ray restarts the actor. Run the task again, unless
                # it is the task that keeps killing workers.
                self.broken.add(i)
                self.known[i] = None  # the restarted actor starts from nothing
                self.replaced += 1
                n = self.deaths[task.task_id] = self.deaths.get(task.task_id, 0) + 1
                if n >= MAX_DEATHS:
                    self.failed.append((task, f"it killed {n} worker processes"))
                    continue
                self.reissued += 1
                self._send(task, avoid=i)
        return out

    @property
    def in_flight(self) -> int:
        return len(self.inflight)

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
