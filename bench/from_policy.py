"""Return by the robustified policy (--from-policy) against return by restoring, same frames.

For each repeat, two `stepstone explore` runs of the environment a policy was robustified on
(its run's env, seed, cells, selector, goal and imports), both under sticky actions: one
returns to cells by restoring them (Phase 1), one by running the policy from reset
(learn/returner.py). Prints per run: cells, doors opened (MiniGrid cells count open doors:
MultiRoom's rooms are doors + 1; Montezuma's RAM cells have no such field), whether and when
the goal was reached, rooms, best score, explorations, the share of returns that reached
their cell, CPU time.

The run's seed is the policy's (it fixes the layout the policy was trained on), so repeats
differ only by the order two worker processes deliver results in.

    python bench/from_policy.py /tmp/p2c/multiroom-s1 --frames 100k --repeats 3 \
        --out /tmp/frompolicy/mr
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from stepstone.store.sqlite import RunStore

BENCH = Path(__file__).resolve().parent


def explore(source, out: Path, frames: str, sticky: float, policy: bool, workers: int) -> dict:
    config = RunStore.open(source).config
    argv = [sys.executable, "-m", "stepstone.cli", "explore", config.env, "--seed",
            str(config.seed), "--selector", config.selector, "--sticky", str(sticky),
            "--frames", frames, "--workers", str(workers), "--run-dir", str(out),
            "--no-progress"]  # fmt: skip
    for module in config.imports:
        argv += ["--import", module]
    argv += ["--cells", config.cells, "--explore-steps", str(config.explore_steps),
             "--repeat-prob", str(config.repeat_prob)]  # fmt: skip
    for name, value in config.cell_params.items():
        argv += ["--cell-param", f"{name}={value}"]
    if config.goal is not None:
        argv += ["--goal", config.goal]
    if config.reset_on_update:
        argv += ["--reset-on-update"]
    if policy:
        argv += ["--from-policy", str(source)]
    t0 = time.monotonic()
    before = _children_cpu()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=BENCH)
    cpu = _children_cpu() - before
    summary = json.loads((out / "summary.json").read_text())
    archive = RunStore.open(out).load_archive()
    doors = max((c[-1] for c in archive.cells if isinstance(c, tuple)), default=None)
    if not config.env.startswith("MiniGrid"):
        doors = None
    return {
        "return": "policy" if policy else "restore",
        "frames": summary["frames"],
        "cells": summary["cells"],
        "doors": doors,
        "rooms": summary["rooms"],
        "best_score": summary["best_score"],
        "explorations": summary["explorations"],
        "goal": summary["success"],
        "goal_frame": summary["frames_to_success"],
        "return_success": summary.get("return_success", 1.0),
        "cpu_s": round(cpu, 1),
        "wall_s": round(time.monotonic() - t0, 1),
    }


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="a run directory that stepstone robustify trained")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--frames", default="100k")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--first", type=int, default=0, help="number of the first repeat")
    p.add_argument("--sticky", type=float, default=0.25)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    rows = []
    for r in range(args.first, args.first + args.repeats):
        for policy in (False, True):
            name = f"{'policy' if policy else 'restore'}-r{r}"
            row = explore(args.source, args.out / name, args.frames, args.sticky, policy,
                          args.workers)  # fmt: skip
            rows.append({"run": name, **row})
            print(json.dumps(rows[-1]), flush=True)
    print(f"{'run':<12}{'cells':>7}{'rooms':>7}{'doors':>7}{'score':>9}{'goal at':>10}"
          f"{'explorations':>14}{'returns ok':>12}{'cpu s':>8}")  # fmt: skip
    for row in rows:
        goal = f"{row['goal_frame']:,}" if row["goal"] else "-"
        print(f"{row['run']:<12}{row['cells']:>7}{row['rooms']!s:>7}{row['doors']!s:>7}"
              f"{row['best_score']:>9.4g}{goal:>10}{row['explorations']:>14,}"
              f"{row['return_success']:>12.0%}{row['cpu_s']:>8}")  # fmt: skip


if __name__ == "__main__":
    main()
