"""A pool of local worker processes, each holding its own environment.

Tasks and results cross the process boundary as pickled bytes. Each process builds its worker
once (the environment stays loaded between tasks). The pool uses 'spawn' so that a worker
starts clean rather than as a copy of a driver that may hold a large archive. A worker whose
driver dies (``kill -9``, OOM) exits within a second instead of running on as an orphan.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from ..errors import StepstoneError
from .base import WorkerFactory, dumps, loads

_worker: Any = None


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _init(factory_bytes: bytes) -> None:
    global _worker
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    _worker = loads(factory_bytes)()
    # Close the environment before the interpreter finalizes: ale-py reports an emulator still
    # alive then as a leak, on every worker's exit.
    atexit.register(_worker.close)


def _run(task_bytes: bytes) -> bytes:
    return dumps(_worker.run(loads(task_bytes)))


class ProcessExecutor:
    def __init__(self, factory: WorkerFactory, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self.pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init,
            initargs=(dumps(factory),),
        )
        self.futures: set[Future] = set()

    def submit(self, task: Any) -> None:
        self.futures.add(self.pool.submit(_run, dumps(task)))

    def poll(self, timeout: float | None = None) -> list[Any]:
        if not self.futures:
            return []
        done, self.futures = wait(self.futures, timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for f in done:
            try:
                out.append(loads(f.result()))
            except StepstoneError:
                raise
            except Exception as e:
                raise StepstoneError(f"a worker process failed: {type(e).__name__}: {e}") from e
        return out

    @property
    def in_flight(self) -> int:
        return len(self.futures)

    @property
    def alive(self) -> int:
        return self.workers

    def close(self) -> None:
        for f in self.futures:
            f.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)
