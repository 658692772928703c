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

Each run of a (task, seed, method) appends one JSON line to ``--results``
(bench/results/web.jsonl, kept in the repository); a run already there with the same settings
is skipped, so the protocol goes in pieces across sessions, and the table is printed over what
is done, with the count done of the protocol's 840. Runs go seed by seed (every task's seed 0
first) so a partial table covers all tasks. A run whose browser failed beyond the adapter's
own restart is tried once more in a fresh browser, else left for the next session. A solved
line keeps its ``path``, the actions (indices into the admissible list) from ``reset(seed)``
to the goal, the shortest the run found: training data for a policy, replayable in the browser.

    python bench/web.py                                   # the full protocol (hours; resumes)
    python bench/web.py --table                           # the table of what is done
    python bench/web.py --stride 6 --seeds 1 --steps 200 --results /tmp/sub.jsonl  # a subset
    python bench/web.py --speed                           # our step against the package's
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

import numpy as np

from stepstone.archive import Archive
from stepstone.config import ExploreConfig
from stepstone.engine import Engine
from stepstone.envs.browser import parse
from stepstone.envs.miniwob import NO_TIMER_MS, MiniWoBTask
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
    a, won = engine.archive, engine.archive.goal_entry()
    path = [] if won is None else engine.trajectories.actions(a.node[won], a.length[won])
    return {"solved": engine.success_frame is not None, "steps_to_success": engine.success_frame,
            "steps": engine.frames, "cells": len(engine.archive), "browser_s": browser,
            "engine_s": engine_s, "path": [int(x) for x in path]}  # fmt: skip


def random_agent(worker: Worker, seed: int, budget: int, episode: int) -> dict:
    """Uniform random admissible actions from reset, episodes of at most ``episode`` actions."""
    env, rng = worker.env, np.random.default_rng(seed)
    steps, first, t = 0, None, time.perf_counter()
    while steps < budget and first is None:
        env.reset(seed)
        path = []
        for _ in range(episode):
            here = env.admissible()
            if not here or steps >= budget:
                break
            path.append(here[int(rng.integers(len(here)))][0])
            _, term, _ = env.step(path[-1])
            steps += 1
            if env.goal():
                first = steps
                break
            if term:
                break
    return {"solved": first is not None, "steps_to_success": first, "steps": steps,
            "cells": None, "browser_s": time.perf_counter() - t, "engine_s": 0.0,
            "path": path if first is not None else []}  # fmt: skip


RESULTS = Path(__file__).parent / "results" / "web.jsonl"
COMMIT = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                        cwd=Path(__file__).parent).stdout.strip()  # fmt: skip


# The admissible actions' version: 2 since a text field is clickable too (liu18's set; before,
# a field could only be filled, and focus-text could not be solved). Lines without it are 1.
ACTIONS = 2


def settings(args: argparse.Namespace) -> dict:
    """What makes two lines comparable (``steps`` in a line is the steps a run took)."""
    return {"budget": args.steps, "explore_steps": args.explore_steps,
            "repeat_prob": args.repeat_prob, "actions": ACTIONS}  # fmt: skip


def load(path: Path) -> list[dict]:
    """The lines written so far; a line cut short by a killed run is left out."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        f.seek(0, 2)
        if f.tell():  # after a line cut short, start a new one
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write((json.dumps(row) + "\n").encode())


def run_pair(worker: Worker, method: str, seed: int, args: argparse.Namespace) -> dict:
    if method == "random":
        return random_agent(worker, seed, args.steps, args.explore_steps)
    return explore(worker, method, seed, args.steps)


def protocol(args: argparse.Namespace, methods: list[str], tasks: list[str]) -> None:
    same = settings(args)
    done = {(r["task"], r["seed"], r["method"]) for r in load(args.results)
            if all(r.get(k) == v for k, v in same.items())}  # fmt: skip
    for seed in range(args.seeds):
        for task in tasks:
            todo = [m for m in methods if (task, seed, m) not in done]
            if not todo:
                continue
            config = ExploreConfig(env_id(task), explore_steps=args.explore_steps,
                                   repeat_prob=args.repeat_prob)  # fmt: skip
            worker = None
            try:
                for m in todo:
                    for attempt in (1, 2):
                        try:
                            if worker is None:
                                worker = Worker.from_config(config)
                            r = run_pair(worker, m, seed, args)
                            break
                        except Exception:  # a browser beyond the adapter's restart: anew
                            print(f"{task} seed {seed} {m}: attempt {attempt} failed",
                                  file=sys.stderr)  # fmt: skip
                            traceback.print_exc()
                            if worker is not None:
                                close_quietly(worker)
                                worker = None
                    else:
                        continue  # left for the next session
                    r.update(task=task, seed=seed, method=m, **same, commit=COMMIT,
                             date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # fmt: skip
                    append(args.results, r)
                    print(json.dumps(r), flush=True)
            finally:
                if worker is not None:
                    close_quietly(worker)


def close_quietly(worker: Worker) -> None:
    try:
        worker.close()
    except Exception:
        traceback.print_exc()


def task_interval(pairs: list, solved: np.ndarray, draws: int = 10_000) -> tuple[float, float]:
    """95% interval of the share solved, resampling whole tasks: a task's seeds succeed or fail
    together far more often than independent pairs would, so a binomial interval is too narrow."""
    tasks = sorted({t for t, _ in pairs})
    index = {t: i for i, t in enumerate(tasks)}
    per = np.zeros((len(tasks), 2))
    for (t, _), ok in zip(pairs, solved, strict=True):
        per[index[t]] += (ok, 1)
    drawn = per[np.random.default_rng(0).integers(len(tasks), size=(draws, len(tasks)))].sum(axis=1)
    low, high = np.percentile(drawn[:, 0] / drawn[:, 1], [2.5, 97.5])
    return float(low), float(high)


def sign_test(better: int, worse: int) -> float:
    """Two-sided exact sign test on the pairs where the two methods differ."""
    n = better + worse
    tail = sum(math.comb(n, k) for k in range(min(better, worse) + 1)) / 2**n if n else 1.0
    return min(1.0, 2 * tail)


def won(row: dict) -> bool:
    """Solved within the budget: Go-Explore asks for explorations four at a time, so its last
    batch may run past the budget; a success found there does not count."""
    return bool(row["solved"]) and row["steps_to_success"] <= row["budget"]


def table(args: argparse.Namespace, methods: list[str], tasks: list[str]) -> None:
    same = settings(args)
    keep = {(t, s, m) for t in tasks for s in range(args.seeds) for m in methods}
    rows = {}
    for r in load(args.results):
        key = (r["task"], r["seed"], r["method"])
        if key in keep and all(r.get(k) == v for k, v in same.items()):
            rows[key] = r
    total = len(keep)
    where = os.path.relpath(args.results)
    print(f"\n{len(rows)} of {total} (task, seed, method) runs done ({where}; "
          f"steps {args.steps}, explore-steps {args.explore_steps}, "
          f"repeat-prob {args.repeat_prob})")  # fmt: skip
    # Compare methods on the (task, seed) pairs every method has done.
    pairs = {(t, s) for t, s, _ in rows}
    pairs = {p for p in pairs if all((*p, m) in rows for m in methods)}
    print(f"{len(pairs)} (task, seed) pairs done by every method, over "
          f"{len({t for t, _ in pairs})} tasks\n")  # fmt: skip
    order = sorted(pairs)
    solved_by = {m: np.array([won(rows[(*p, m)]) for p in order]) for m in methods}
    every = [p for i, p in enumerate(order) if all(w[i] for w in solved_by.values())]
    print(f"{'method':10} {'solved':>12} {'95% interval':>13} {'median steps':>13} "
          f"{'on pairs all solved':>20} {'steps/s':>8} {'browser':>8}")  # fmt: skip
    for m in methods:
        mine = [rows[(*p, m)] for p in order]
        if not mine:
            continue
        solved = [r for r in mine if won(r)]
        low, high = task_interval(order, solved_by[m])
        med = f"{statistics.median(r['steps_to_success'] for r in solved):g}" if solved else "-"
        both = [rows[(*p, m)]["steps_to_success"] for p in every]
        common = f"{statistics.median(both):g}" if both else "-"
        secs = sum(r["browser_s"] + r["engine_s"] for r in mine)
        rate = sum(r["steps"] for r in mine) / secs
        share = sum(r["browser_s"] for r in mine) / secs
        print(f"{m:10} {len(solved):4d}/{len(mine):<4d} {len(solved) / len(mine):4.0%} "
              f"{f'{low:.0%}-{high:.0%}':>13} {med:>13} {common:>20} {rate:8.1f} "
              f"{share:8.1%}")  # fmt: skip
    base = methods[-1]
    for m in methods[:-1]:
        better = int((solved_by[m] & ~solved_by[base]).sum())
        worse = int((~solved_by[m] & solved_by[base]).sum())
        print(f"{m} against {base}: solved {better} pairs it did not, missed {worse} it solved "
              f"(exact sign test p = {sign_test(better, worse):.2f})")  # fmt: skip
    if args.per_task:
        print("\n| task | " + " | ".join(methods) + " |")
        print("|---|" + "---|" * len(methods))
        for t in tasks:
            seeds = sorted(s for tt, s in pairs if tt == t)
            if not seeds:
                continue
            cells = []
            for m in methods:
                n = sum(won(rows[(t, s, m)]) for s in seeds)
                cells.append(f"{n}/{len(seeds)}")
            print(f"| {t} | " + " | ".join(cells) + " |")


class PackageSteps(MiniWoBTask):
    """The package's own ``reset`` and ``step`` (its Gymnasium API, as envs/miniwob.py used
    them before): the baseline of ``--speed``."""

    def _begin(self, seed):
        self._env.instance.refresh_freq = 1  # a fresh page each episode, as ours
        self.driver.execute_script("core.EPISODE_MAX_TIME = arguments[0];", NO_TIMER_MS)
        obs, info = self._env.reset(seed=seed, options={"record_screenshots": False})
        self.fields = [str(v) for _, v in obs["fields"]]
        self.utterance = str(obs["utterance"])
        return self._observe(False, 0.0, info["root_dom"])

    def _act(self, command):
        kind, ref, value = parse(command)
        if kind == "click":
            act = {"action_type": 1, "ref": int(ref)}  # liu18: CLICK_ELEMENT
        else:
            self.driver.execute_script(
                "var e = core.previousDOMInfo[arguments[0]]; if (e) e.value = '';", int(ref)
            )
            act = {"action_type": 2, "ref": int(ref), "field": self.fields.index(str(value))}
        _, _, done, _, info = self._env.step(act)
        return bool(done), float(info["raw_reward"]), info.get("root_dom")


def shown(env: MiniWoBTask) -> tuple:
    return tuple(e.key() for e in env.page.elements)


def speed(args: argparse.Namespace, tasks: list[str]) -> None:
    """Our step against the package's on the same random action sequences, alternated per
    (task, seed) in one process, and the pages each showed compared after every step as the
    DOM cells see them (element ids left out: a page numbers the elements it creates, and an
    autocomplete creates a different number of them depending on when its timers ran)."""
    spent = {"package": [0.0, 0.0, 0], "ours": [0.0, 0.0, 0]}  # wall s, CPU s, steps
    for task in tasks:
        envs = {"package": PackageSteps(env_id(task)), "ours": MiniWoBTask(env_id(task))}
        try:
            for seed in range(args.seeds):
                pages: dict[str, list] = {}
                for name in ("package", "ours") if seed % 2 else ("ours", "package"):
                    env, rng, seen = envs[name], np.random.default_rng(seed), []
                    wall, cpu = time.perf_counter(), time.process_time()
                    for _ in range(args.episodes):
                        env.reset(seed=seed)
                        seen.append(shown(env))
                        for _ in range(args.explore_steps):
                            if not env.actions:
                                break
                            _, reward, *_ = env.step(int(rng.integers(len(env.actions))))
                            seen.append((shown(env), reward))
                            spent[name][2] += 1
                    spent[name][0] += time.perf_counter() - wall
                    spent[name][1] += time.process_time() - cpu
                    pages[name] = seen
                ours, theirs = pages["ours"], pages["package"]
                n = max(len(ours), len(theirs))
                differ = sum(ours[i : i + 1] != theirs[i : i + 1] for i in range(n))
                same = "identical" if not differ else f"{differ} differ"
                print(f"{task:30} seed {seed}: {n} pages, {same}", flush=True)
        finally:
            for env in envs.values():
                env.close()
    print(f"\n{'step':8} {'steps':>6} {'steps/s':>8} {'CPU ms/step':>12}")
    for name, (wall, cpu, n) in spent.items():
        print(f"{name:8} {n:6d} {n / wall:8.1f} {1000 * cpu / n:12.2f}")
    ratio = (spent["ours"][2] / spent["ours"][0]) / (spent["package"][2] / spent["package"][0])
    print(f"ours / package steps/s: {ratio:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", type=int, default=56, help="the first N tasks of the subset")
    p.add_argument("--stride", type=int, default=1, help="every K-th task (a spread subset)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=1000, help="browser steps per (task, seed)")
    p.add_argument("--only", default="", help="these tasks of the subset (comma-separated)")
    p.add_argument("--selectors", default="count,knapsack")
    p.add_argument("--explore-steps", type=int, default=10)
    p.add_argument("--repeat-prob", type=float, default=0.0)
    p.add_argument("--results", type=Path, default=RESULTS,
                   help="the JSON-lines file appended to and resumed from")  # fmt: skip
    p.add_argument("--table", action="store_true", help="only print the table of what is done")
    p.add_argument("--per-task", action="store_true", help="also the solved seeds per task")
    p.add_argument("--speed", action="store_true",
                   help="time our step against the package's (random actions, --episodes "
                        "episodes of --explore-steps per task and seed)")  # fmt: skip
    p.add_argument("--episodes", type=int, default=10)
    args = p.parse_args()
    methods = [*args.selectors.split(","), "random"]
    tasks = list(WEBGUM[:: args.stride][: args.tasks])
    if args.only:
        tasks = [t for t in tasks if t in args.only.split(",")]
    if args.speed:
        speed(args, tasks)
        return
    if not args.table:
        protocol(args, methods, tasks)
    table(args, methods, tasks)


if __name__ == "__main__":
    main()
