"""Bytes per archive entry in RAM and on disk, and whether a million cells fit in 24 GiB.

Builds an archive of N synthetic entries shaped like real ones (88-byte downscaled-frame keys,
a real Montezuma snapshot per entry, one trajectory node per entry), measures the driver's
memory for the archive (tracemalloc, numpy columns included), commits it to a run directory
and measures the database file, then reopens it and measures the memory of loading it back.

    python bench/memory.py --entries 1000000
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from stepstone.config import ExploreConfig
from stepstone.selectors import CountBased
from stepstone.store.sqlite import RunStore
from stepstone.worker import Worker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=None, help="where to write the test run")
    args = ap.parse_args()
    n = args.entries

    worker = Worker.from_config(ExploreConfig(env="montezuma"))
    root = worker.root()
    snapshot = root.snapshot
    tmp = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        store = RunStore.create(tmp / "run", ExploreConfig(env="montezuma"))
        engine = store.load_engine(CountBased())
        archive, tree = engine.archive, engine.trajectories
        rng = np.random.default_rng(0)

        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        for i in range(n):
            cell = rng.integers(0, 8, size=88, dtype=np.uint8).tobytes()
            node = tree.add(0, 0, rng.integers(0, 18, size=50, dtype=np.uint8))
            archive.offer(cell, float(i % 1000), 50 + i % 500, node, snapshot, frame=i)
            if (i + 1) % 100_000 == 0:
                store.commit(engine)  # pending snapshots and nodes leave memory here
        store.commit(engine)
        build_s = time.perf_counter() - t0
        gc.collect()
        ram = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        store.close()
        db = tmp / "run" / "run.sqlite"
        disk = db.stat().st_size + sum(
            p.stat().st_size for p in db.parent.glob("run.sqlite-*") if p.exists()
        )

        gc.collect()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        reopened = RunStore.open(tmp / "run")
        loaded = reopened.load_archive()
        load_s = time.perf_counter() - t0
        assert len(loaded) == n
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        print(f"entries                       {n:,}")
        print(f"snapshot bytes (Montezuma)    {len(snapshot):,}")
        print(f"archive RAM per entry         {ram / n:,.0f} B   ({ram / 2**20:,.0f} MiB total)")
        print(f"run directory per entry       {disk / n:,.0f} B   ({disk / 2**30:,.2f} GiB total)")
        print(f"build + commit                {build_s:,.1f} s")
        print(
            f"reopen + load archive         {load_s:,.1f} s, peak RSS now "
            f"{max(rss0, rss1) / 2**20:,.2f} GiB"
        )
        print(f"1M entries in RAM (projected) {ram / n * 1e6 / 2**30:,.2f} GiB of 24 GiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
