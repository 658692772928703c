"""Local worker processes, each holding its own environment; a worker that dies is replaced.

Each worker is a 'spawn'ed process (it starts clean rather than as a copy of a driver that may
hold a large archive) with a pipe to the driver; tasks and results cross it as pickled bytes
(the driver's own objects, never a file's). A worker builds its environment once and runs the
tasks sent to it in order, two at a time in flight so it never waits for the driver.

Faults: the driver watches each process's sentinel. When a worker dies (``kill -9``, the OOM
killer, a crashing emulator), a new process takes its place and the tasks it held are sent
again; the engine merges a task's result at most once, so nothing is counted twice. A task
whose worker dies three times is given up (``failed``) with its cell named, and the run goes
on. A worker whose driver dies exits within a second instead of running on as an orphan.

``deterministic``: results are handed back one at a time in the order the tasks were
submitted, so that the driver merges, and so asks, in the same order whatever the timing:
with a seed, a run is then reproduced byte for byte at any number of workers.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from ..errors import StepstoneError, said
from .base import Executor, Feed, WorkerFactory, dumps, loads
from .inline import InlineExecutor, refuse_remote

DEPTH = 2  # tasks in flight per worker
MAX_DEATHS = 3  # a task that kills this many workers is given up


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _serve(conn: Connection, factory_bytes: bytes, parent: int) -> None:
    """A worker process: build the worker, then run each task received until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    try:
        worker = loads(factory_bytes)()
    except BaseException as e:  # said to the driver, which stops: a replacement would fail too
        conn.send_bytes(b"i" + said(e).encode())
        return
    conn.send_bytes(b"s")  # started: a death from now on is a task's doing
    # Close the environment before the interpreter finalizes: ale-py reports an emulator still
    # alive then as a leak, on every worker's exit.
    atexit.register(worker.close)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not data:
            return
        try:
            reply = b"r" + dumps(worker.run(loads(data)))
        except StepstoneError as e:
            reply = b"u" + str(e).encode()
        except Exception as e:
            reply = b"e" + said(e).encode()
        conn.send_bytes(reply)


@dataclass
class _Slot:
    process: Any
    conn: Connection
    tasks: deque = field(default_factory=deque)  # sent, in the order the worker runs them
    started: bool = False  # built its worker (a death before that is no task's fault)
    known: Any = None  # what the worker holds of the executor's feed


class ProcessExecutor(Executor):
    @classmethod
    def create(cls, factory: WorkerFactory, workers: int | None, address: str | None = None,
               deterministic: bool = False, feed: Feed | None = None,
               per_call: int | None = None) -> Executor:  # fmt: skip
        refuse_remote(address, per_call)
        if workers == 1:
            return InlineExecutor(factory, feed)
        return cls(factory, workers, deterministic, feed)

    def __init__(
        self,
        factory: WorkerFactory,
        workers: int | None = None,
        deterministic: bool = False,
        feed: Feed | None = None,
    ):
        self.workers = workers or os.cpu_count() or 1
        self.ctx = mp.get_context("spawn")
        self.payload = dumps(factory)
        self.deterministic = deterministic
        self.feed = feed
        self.queue: deque = deque()  # submitted, not yet sent to a worker
        self.order: deque[int] = deque()  # task ids in submission order (deterministic)
        self.done: dict[int, Any] = {}  # finished, waiting for their turn (deterministic)
        self.deaths: dict[int, int] = {}  # task id -> workers it killed
        self.failed: list[tuple[Any, str]] = []  # (task, why): given up, for the driver to drop
        self.reissued = 0  # tasks sent again because their worker died
        self.replaced = 0  # workers started in place of dead ones
        self.stillborn = 0  # workers in a row that died before they started
        self.slots = [self._start() for _ in range(self.workers)]

    def _start(self) -> _Slot:
        ours, theirs = self.ctx.Pipe()
        p = self.ctx.Process(target=_serve, args=(theirs, self.payload, os.getpid()), daemon=True)
        p.start()
        theirs.close()
        return _Slot(p, ours)

    # -- the Executor interface ---------------------------------------------------------------
    def submit(self, task: Any) -> None:
        self.queue.append(task)
        self.order.append(task.task_id)
        self._dispatch()

    def poll(self, timeout: float | None = None) -> list[Any]:
        out = self._release()
        if out or not self.in_flight:
            return out
        deadline = None if timeout is None else time.monotonic() + timeout
        while not out:
            self._dispatch()
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            busy = [s for s in self.slots if s.tasks]
            ready = set(wait([s.conn for s in busy] + [s.process.sentinel for s in busy], left))
            for s in busy:
                if s.conn in ready:
                    self._receive(s)
            for i, s in enumerate(self.slots):
                if s.process.sentinel in ready or not s.process.is_alive():
                    self._receive(s)  # what it sent before it died still counts
                    if not s.process.is_alive():
                        self._replace(i)
            out = self._release()
            if not ready or (deadline is not None and time.monotonic() >= deadline):
                break
        return out

    @property
    def in_flight(self) -> int:
        """Tasks submitted and not yet handed back (nor given up)."""
        return len(self.order)

    @property
    def alive(self) -> int:
        return sum(s.process.is_alive() for s in self.slots)

    @property
    def capacity(self) -> int:
        """In task order, finished results wait for the slowest one before them, so twice as
        many in flight keep the workers fed."""
        return (2 * DEPTH if self.deterministic else DEPTH) * self.workers

    def close(self) -> None:
        """Idle workers are told to stop (their environments close cleanly); busy ones are
        killed, as their results are no longer wanted."""
        for s in self.slots:
            if s.tasks:
                s.process.kill()
            with contextlib.suppress(OSError):
                s.conn.send_bytes(b"")
        deadline = time.monotonic() + 5
        for s in self.slots:
            s.process.join(max(0.0, deadline - time.monotonic()))
            if s.process.is_alive():
                s.process.kill()
                s.process.join()
            s.conn.close()

    # -- inside --------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Send queued tasks to the least loaded live workers, up to DEPTH each."""
        while self.queue:
            slot = min(self.slots, key=lambda s: len(s.tasks))
            if len(slot.tasks) >= DEPTH:
                return
            task = self.queue.popleft()
            sent, known = task, slot.known
            if self.feed is not None:
                sent, known = self.feed.attach(task, slot.known)
            try:
                slot.conn.send_bytes(dumps(sent))
            except OSError:  # the worker is gone: poll() replaces it and re-sends its tasks
                self.queue.appendleft(task)
                return
            slot.known = known
            slot.tasks.append(task)

    def _receive(self, slot: _Slot) -> None:
        while True:
            try:
                if not slot.conn.poll():
                    return
                data = slot.conn.recv_bytes()
            except (EOFError, OSError):
                return
            kind, body = data[:1], data[1:]
            if kind == b"s":
                slot.started = True
                continue
            if kind == b"i":
                raise StepstoneError(f"a worker process could not start: {body.decode()}")
            task = slot.tasks.popleft()
            if kind == b"r":
                self.done[task.task_id] = loads(body)
                continue
            where = f"exploring from cell {task.cell!r}"
            if kind == b"u":
                raise StepstoneError(f"{body.decode()} ({where})")
            raise StepstoneError(f"a worker failed {where}: {body.decode()}")

    def _replace(self, i: int) -> None:
        """Start a worker in place of slot i's dead one; its tasks go back to the queue."""
        dead = self.slots[i]
        dead.conn.close()
        dead.process.join()
        self.stillborn = 0 if dead.started else self.stillborn + 1
        if self.stillborn >= MAX_DEATHS:  # not a task's fault: no worker gets going at all
            raise StepstoneError(
                f"worker processes die as they start (exit code {dead.process.exitcode}); "
                "run with --workers 1 to see why"
            )
        tasks = list(dead.tasks)
        if tasks and dead.started:  # the first was running when it died: it may be the cause
            culprit = tasks[0]
            n = self.deaths[culprit.task_id] = self.deaths.get(culprit.task_id, 0) + 1
            if n >= MAX_DEATHS:
                tasks.pop(0)
                self.failed.append((culprit, f"it killed {n} worker processes"))
                self.order.remove(culprit.task_id)
        self.queue.extendleft(reversed(tasks))
        self.reissued += len(tasks)
        self.replaced += 1
        self.slots[i] = self._start()

    def _release(self) -> list[Any]:
        """Finished results to hand back: in task order when deterministic, else all."""
        if not self.deterministic:
            out = list(self.done.values())
            for task_id in self.done:
                self.order.remove(task_id)
            self.done.clear()
            return out
        if self.order and self.order[0] in self.done:
            return [self.done.pop(self.order.popleft())]
        return []
