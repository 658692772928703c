"""`python bench/cells.py`: `--cells auto` with defaults only, before and after adaptive bins.

Issue 20's targets, defaults only (no --cell-param, no domain knowledge), 3 seeds each:
MountainCar-v0 reaches the flag within 300k steps; CartPole-v1 keeps the archive under 5,000
cells at 100k steps and finds a 500-step episode; FrozenLake8x8-v1, MiniGrid-DoorKey-8x8-v0 and
Hopper-v5 (distance covered, against --cells novelty) report their figures; Ant-v5 and
Humanoid-v5 likewise (not named by the issue: many joints). "old" is main's
`auto` (ExploreConfig.cells_auto=1: the observation rounded to one decimal), "new" today's
(cells_auto=2: adaptive per-dimension bins where the observation has floats). Where both mean
the same cells (FrozenLake's Discrete state, MiniGrid's own cells) the run is made once and
shown as "old = new auto". Runs go two at a time, each in its own process with one inline
worker; each row is printed as its run ends.

    nice -n 10 python bench/cells.py [--seeds 3] [--scale 1.0] [--jobs 2]
        [--selectors count,clustered] [--variants "new auto"]

``--scale`` multiplies every budget (0.1 for a quick look); ``--selectors`` runs each variant
under each selector (default: count, the default selector); ``--variants`` keeps some.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

# (task, environment, frame budget, stop at the goal, environment arguments)
TASKS = [
    ("MountainCar", "MountainCar-v0", 300_000, True, {}),
    ("CartPole", "CartPole-v1", 100_000, False, {}),
    ("FrozenLake8x8", "FrozenLake8x8-v1", 100_000, True, {}),
    ("DoorKey-8x8", "MiniGrid-DoorKey-8x8-v0", 100_000, True, {}),
    ("Hopper", "Hopper-v5", 50_000, False, {}),
    # many joints: every dimension at once leaves most states alone in a cell (bins.py)
    ("Ant", "Ant-v5", 50_000, False, {}),
    ("Humanoid", "Humanoid-v5", 50_000, False, {}),
]
# the robots: distance covered, and --cells novelty beside
MUJOCO = ("Hopper", "Ant", "Humanoid")
VARIANTS = {"old auto": ("auto", 1), "new auto": ("auto", 2)}


def distance(config, store) -> float:
    """The farthest x any archived state of a MuJoCo run reached (restored from its snapshot)."""
    from stepstone.worker import Worker

    worker = Worker.from_config(config)
    archive = store.load_archive()
    best = -float("inf")
    for i in range(len(archive)):
        worker.env.restore(archive.snapshot(i))
        best = max(best, float(worker.env.descriptor()[0]))
    worker.close()
    return best


def one(job: tuple) -> dict:
    from stepstone.config import ExploreConfig, RunOptions
    from stepstone.runner import open_run, run

    task, env, frames, stop, env_args, variant, cells, auto, selector, seed = job
    config = ExploreConfig(env=env, seed=seed, cells=cells, cells_auto=auto, selector=selector,
                           stop_on_success=stop, env_args=env_args)  # fmt: skip
    if selector != "count":
        variant = f"{variant}, {selector}"
    with tempfile.TemporaryDirectory() as d:
        store = open_run(config, Path(d) / "run")
        t0 = time.process_time()
        last = run(store, RunOptions(frames=frames, workers=1, backend="inline", progress=False))
        cpu = time.process_time() - t0
        out = {
            "task": task, "variant": variant, "seed": seed, "frames": last["frames"],
            "cells": last["cells"], "best": last["best_score"],
            "success": last["success_frame"], "cpu": cpu,
            "choices": len(store.extra("cell_choices") or []),
            "shape": store.state().get("cell_shape"),
        }  # fmt: skip
        if task in MUJOCO:
            out["distance"] = distance(config, store)
        store.close()
        out["mb"] = sum(f.stat().st_size for f in (Path(d) / "run").iterdir()) / 2**20
    return out


def same_cells(env: str) -> bool:
    """Whether main's auto and today's resolve to the same cells for ``env``."""
    from stepstone import cells, envs

    adapter = envs.make(envs.EnvSpec(env, 0))
    try:
        return cells.resolve("auto", {}, adapter, 1) == cells.resolve("auto", {}, adapter, 2)
    finally:
        adapter.close()


def row(r: dict) -> str:
    dist = f"{r['distance']:.2f}" if "distance" in r else ""
    success = f"{r['success']:,}" if r["success"] is not None else "no"
    shape = tuple(r["shape"]) if r["shape"] is not None else ""
    if len(shape) > 16:  # a robot's many dimensions: how many are cut (OFF: ignored)
        from stepstone.cells.bins import OFF

        shape = f"{len(shape)} dimensions, {sum(v != OFF for v in shape)} cut"
    cols = [r["task"], r["variant"], r["seed"], f"{r['frames']:,}", f"{r['cells']:,}",
            f"{r['best']:g}", success, dist, r["choices"], shape, f"{r['cpu']:.0f}",
            f"{r['mb']:.0f}"]  # fmt: skip
    return "| " + " | ".join(map(str, cols)) + " |"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--only", default=None, help="comma-separated task names")
    p.add_argument("--selectors", default="count", help="comma-separated selector names")
    p.add_argument("--variants", default=None, help="comma-separated variant names")
    args = p.parse_args()
    jobs = []
    for task, env, frames, stop, env_args in TASKS:
        if args.only and task not in args.only.split(","):
            continue
        variants = dict(VARIANTS)
        if same_cells(env):
            variants = {"old = new auto": VARIANTS["new auto"]}
        if task in MUJOCO:
            variants["novelty"] = ("novelty", 2)
        if args.variants:
            keep = args.variants.split(",")
            # a name kept keeps "old = new auto" too when it is part of it
            variants = {v: c for v, c in variants.items() if any(k in v for k in keep)}
        for variant, (cells, auto) in variants.items():
            for selector in args.selectors.split(","):
                for seed in range(args.seeds):
                    budget = int(frames * args.scale)
                    jobs.append((task, env, budget, stop, env_args, variant, cells, auto,
                                 selector, seed))  # fmt: skip
    print("| task | cells | seed | frames | cells in archive | best score | goal at frame | "
          "distance | re-choices | final shape | CPU s | run dir MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    with Pool(args.jobs) as pool:
        for r in pool.imap(one, jobs):
            print(row(r), flush=True)


if __name__ == "__main__":
    main()
