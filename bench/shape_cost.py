"""What a dynamic-downscaling shape costs a run: re-key a copy of a run to that shape and time
its next frames, with numpy's BLAS threads as they come and with ``OPENBLAS_NUM_THREADS=1``.

The copy is made with SQLite's backup (the run may be going on) and re-keyed as the run's own
choice would (``Engine.rekey``); then ``stepstone resume COPY --frames +N`` runs twice from
identical copies, alternating, and the wall and CPU seconds are printed side by side. Run it
with ``PYTHONPATH`` at another checkout to time that code.

    python bench/shape_cost.py /work/runs/p20/dynamic-s1 --shape 4,30,9 --frames 300k
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import stepstone
from stepstone import runner, selectors
from stepstone.config import parse_count
from stepstone.store.sqlite import DB_NAME
from stepstone.worker import Worker


def rekeyed_copy(src: Path, dst: Path, shape: tuple[int, ...]) -> int:
    """``dst``: a copy of the run in ``src`` re-keyed to ``shape``; returns its frames."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    with sqlite3.connect(src / DB_NAME) as a, sqlite3.connect(dst / DB_NAME) as b:
        a.backup(b)
    store = runner.open_run(None, dst)
    cells = Worker.from_config(store.config).adaptive
    if cells is None:
        sys.exit(f"{src} does not use adaptive cells")
    engine = store.load_engine(
        selectors.make(store.config.selector),
        reset_on_update=store.config.reset_on_update,
        cell_shape=cells.shape,
    )
    cells.set_shape(shape)
    engine.rekey(shape, cells.key_from_source)
    store.commit(engine, None, {"cell_update_frame": engine.frames})
    store.close()
    return engine.frames


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU seconds (the child and its worker processes) of one command, run where
    ``python -m stepstone.cli`` finds the stepstone this script imported (``-m`` puts the
    working directory first on the path)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    root = Path(stepstone.__file__).resolve().parents[1]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, cwd=root)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--shape", required=True, help="width,height,levels")
    ap.add_argument("--frames", default="300k", help="frames run after the re-key")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/shape_cost"))
    args = ap.parse_args()
    args.run_dir, args.out = args.run_dir.resolve(), args.out.resolve()
    if not (args.run_dir / DB_NAME).exists():
        ap.error(f"{args.run_dir} holds no run ({DB_NAME}); give a run directory")
    try:
        shape = tuple(int(v) for v in args.shape.split(","))
    except ValueError:
        ap.error(f"--shape {args.shape!r}: give width,height,levels as integers, e.g. 4,30,9")
    base = dict(os.environ)
    arms = {
        "BLAS threads as they come": {
            k: v for k, v in base.items() if not k.endswith("_NUM_THREADS")
        },
        "OPENBLAS_NUM_THREADS=1": {**base, "OPENBLAS_NUM_THREADS": "1"},
    }
    print(f"# {args.run_dir} re-keyed to {shape}, then {args.frames} frames, "
          f"{args.workers} workers")  # fmt: skip
    print(f"{'arm':<28} {'repeat':>6} {'wall s':>8} {'CPU s':>8}")
    for r in range(args.repeats):
        for name, env in arms.items():
            copy = args.out / "copy"
            start = rekeyed_copy(args.run_dir, copy, shape)
            cmd = [sys.executable, "-m", "stepstone.cli", "resume", str(copy), "--frames",
                   str(start + parse_count(args.frames)), "--workers", str(args.workers),
                   "--no-progress"]  # fmt: skip
            wall, cpu = timed(cmd, env)
            print(f"{name:<28} {r:>6} {wall:>8.1f} {cpu:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
