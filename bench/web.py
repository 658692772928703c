"""MiniWoB++ by exploration: share of (task, seed) pairs solved within a step budget.

Protocol (issue 22): the 56 tasks BrowserGym marks ``webgum_subset`` (ServiceNow/BrowserGym,
``browsergym/experiments/src/browsergym/experiments/task_metadata/miniwob.csv``), each with
its ``-nodelay`` variant where the miniwob package has one; ``--seeds`` seeds per task; a budget
of ``--steps`` browser steps per (task, seed), replay steps of returns included; for each
method the share of pairs whose goal (a positive raw reward) was reached and the steps to the
first success. Methods: Go-Explore with count-based and knapsack selection (DOM cells, liu18
actions, return by replay; envs/miniwob.py) against a uniform random agent over the same
admissible actions, with episodes cut at ``--explore-steps`` actions. The time is split
between the browser (stepping, returning, reading the page: ``Worker.run``) and the engine
(``Engine.ask``/``tell``).

    python bench/web.py                                   # the full protocol (hours)
    python bench/web.py --stride 6 --seeds 1 --steps 200  # a subset: every 6th task
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace

import numpy as np

from stepstone.archive import Archive
from stepstone.config import ExploreConfig
from stepstone.engine import Engine
from stepstone.selectors import make
from stepstone.trajectories import TrajectoryTree
from stepstone.worker import Worker

WEBGUM = (
    "book-flight", "choose-date", "choose-date-easy", "choose-date-medium", "choose-list",
    "click-button", "click-button-sequence", "click-checkboxes", "click-checkboxes-large",
    "click-checkboxes-soft", "click-checkboxes-transfer", "click-collapsible",
    "click-collapsible-2", "click-color", "click-dialog", "click-dialog-2", "click-link",
    "click-menu", "click-option", "click-pie", "click-scroll-list", "click-shades",
    "click-shape", "click-tab", "click-tab-2", "click-tab-2-hard", "click-test", "click-test-2",
    "click-widget", "count-shape", "email-inbox", "email-inbox-forward-nl",
    "email-inbox-forward-nl-turk", "email-inbox-nl-turk", "enter-date", "enter-password",
    "enter-text", "enter-text-dynamic", "enter-time", "focus-text", "focus-text-2",
    "grid-coordinate", "guess-number", "identify-shape", "login-user", "login-user-popup",
    "multi-layouts", "multi-orderings", "navigate-tree", "search-engine", "social-media",
    "social-media-all", "social-media-some", "tic-tac-toe", "use-autocomplete", "use-spinner",
)  # fmt: skip
NODELAY = {"book-flight", "choose-date", "click-collapsible", "click-collapsible-2", "click-pie",
           "use-autocomplete"}  # fmt: skip
assert len(WEBGUM) == 56


def env_id(task: str) -> str:
    return f"miniwob/{task}{'-nodelay' if task in NODELAY else ''}-v1"


def explore(worker: Worker, selector: str, seed: int, budget: int) -> dict:
    """Go-Explore on one (task, seed) until success or ``budget`` steps."""
    worker.config = replace(worker.config, seed=seed, selector=selector)
    engine = Engine(Archive(), TrajectoryTree(), make(selector), seed=seed)
    browser = engine_s = 0.0
    t = time.perf_counter()
    engine.add_root(worker.root())
    browser += time.perf_counter() - t
    while engine.frames < budget and engine.success_frame is None:
        t = time.perf_counter()
        tasks = engine.ask(4)
        engine_s += time.perf_counter() - t
        for task in tasks:
            t = time.perf_counter()
            result = worker.run(task)
            browser += time.perf_counter() - t
            t = time.perf_counter()
            engine.tell(result)
            engine_s += time.perf_counter() - t
    return {"solved": engine.success_frame is not None, "steps_to_success": engine.success_frame,
            "steps": engine.frames, "cells": len(engine.archive), "browser_s": browser,
            "engine_s": engine_s}  # fmt: skip


def random_agent(worker: Worker, seed: int, budget: int, episode: int) -> dict:
    """Uniform random admissible actions from reset, episodes of at most ``episode`` actions."""
    env, rng = worker.env, np.random.default_rng(seed)
    steps, first, t = 0, None, time.perf_counter()
    while steps < budget and first is None:
        env.reset(seed)
        for _ in range(episode):
            here = env.admissible()
            if not here or steps >= budget:
                break
            _, term, _ = env.step(here[int(rng.integers(len(here)))][0])
            steps += 1
            if env.goal():
                first = steps
                break
            if term:
                break
    return {"solved": first is not None, "steps_to_success": first, "steps": steps,
            "cells": None, "browser_s": time.perf_counter() - t, "engine_s": 0.0}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", type=int, default=56, help="the first N tasks of the subset")
    p.add_argument("--stride", type=int, default=1, help="every K-th task (a spread subset)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=1000, help="browser steps per (task, seed)")
    p.add_argument("--selectors", default="count,knapsack")
    p.add_argument("--explore-steps", type=int, default=10)
    p.add_argument("--repeat-prob", type=float, default=0.0)
    p.add_argument("--out", default=None, help="also write one JSON line per (task, seed, method)")
    args = p.parse_args()
    methods = [*args.selectors.split(","), "random"]
    rows = []
    out = open(args.out, "w") if args.out else None  # noqa: SIM115
    for task in WEBGUM[:: args.stride][: args.tasks]:
        config = ExploreConfig(env_id(task), explore_steps=args.explore_steps,
                               repeat_prob=args.repeat_prob)  # fmt: skip
        worker = Worker.from_config(config)
        try:
            for seed in range(args.seeds):
                for m in methods:
                    if m == "random":
                        r = random_agent(worker, seed, args.steps, args.explore_steps)
                    else:
                        r = explore(worker, m, seed, args.steps)
                    r.update(task=task, seed=seed, method=m)
                    rows.append(r)
                    print(json.dumps(r), flush=True)
                    if out:
                        out.write(json.dumps(r) + "\n")
        finally:
            worker.close()
    print(f"\n{'method':10} {'solved':>12} {'median steps':>13} {'steps/s':>8} {'browser':>8}")
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        solved = [r for r in mine if r["solved"]]
        med = statistics.median(r["steps_to_success"] for r in solved) if solved else None
        secs = sum(r["browser_s"] + r["engine_s"] for r in mine)
        rate = sum(r["steps"] for r in mine) / secs
        share = sum(r["browser_s"] for r in mine) / secs
        print(f"{m:10} {len(solved):4d}/{len(mine):<4d} {len(solved) / len(mine):4.0%} "
              f"{med if med is not None else '-':>13} {rate:8.1f} {share:8.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
