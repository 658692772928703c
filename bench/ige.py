"""Intelligent Go-Explore against count-based selection with random actions, on text tasks.

    python bench/ige.py ENDPOINT MODEL [--methods count+random,ige+llm+judge] [--llm-budget N]
    python bench/ige.py ENDPOINT MODEL --setting ige --tasks game24   # IGE's Game of 24 table

ENDPOINT is any OpenAI-compatible base URL (vLLM, Ollama, llama.cpp server, a hosted API;
the key from OPENAI_API_KEY) or local:DIR for a transformers model directory. Tasks:

* Game of 24, ``--setting hardest`` (default): the 100 puzzles people found hardest (lowest
  solve rate in the 4nums.com data that Tree of Thoughts (Yao et al. 2023) ranks by
  difficulty; listed below), fractions allowed, one run each with ``--steps-24`` environment
  steps (one step = one arithmetic operation);
* Game of 24, ``--setting ige``: Intelligent Go-Explore's own setting (game_of_24/run.py:
  ``main``): Tree of Thoughts' puzzles 900-999 of ``24.csv`` (``--min_idx 900
  --num_problems 100``), integer division (``game24:...:int``, envs/game24.py) and
  ``--max_actions 700`` operations per puzzle, so a user with a model can set the rows beside
  the paper's;
* TextWorld: a treasure hunter and a coin collector game made here with tw-make
  (``--tw-level``), ``--tw-runs`` runs each (seeds 0..) with ``--steps-tw`` steps.

Methods are SELECTOR+EXPLORER[+judge]: ``count+random`` is Go-Explore (count-based selection,
random actions), ``ige+llm+judge`` is Intelligent Go-Explore (Lu, Hu & Clune 2024: the model
picks the state to return to, the actions, and which new states to keep); ``lfg+llm``,
``count+llm``, ``ige+random`` and so on take the roles one at a time. Every method gets the same
environment-step budget. Reported per task and method: success rate, mean environment steps
and mean model answers to success (among successes; answers include those served from the
cache, so they are what a fresh run pays), model calls made now, tokens, and fallbacks (replies
that named nothing valid).

Cost control: all model replies are cached in OUT/llm_cache.sqlite, so re-running (or
resuming an interrupted bench) asks nothing twice; ``--llm-budget N`` stops the bench after N
new model calls in total (the table so far is printed; run again with a larger budget to go
on), and ``--calls-per-run`` caps the answers one run may use (a run over it counts as failed).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from stepstone.archive import Archive
from stepstone.config import ExploreConfig
from stepstone.engine import Engine
from stepstone.executors.inline import InlineExecutor
from stepstone.llm import BudgetExhausted, ModelUnavailable, Settings
from stepstone.llm.judge import Judge
from stepstone.llm.memory import Memory
from stepstone.llm.view import Describer, goal
from stepstone.loop import drive
from stepstone.selectors import make as make_selector
from stepstone.selectors import uses_model as selector_uses_model
from stepstone.trajectories import TrajectoryTree
from stepstone.worker import Worker

# Tree of Thoughts' data/24/24.csv, puzzles 900-999 (0-based, as game_of_24/run.py reads them
# with Game24Task.get_input(idx)): the set of IGE's and ToT's Game of 24 results.
IGE_24 = """
4,5,6,10 1,2,4,7 2,5,8,11 3,4,4,13 6,7,8,9 1,11,11,13 1,8,10,11 2,3,6,9 1,3,5,9 3,3,7,12
4,5,7,9 1,2,8,13 4,6,6,9 1,4,4,8 1,5,10,11 3,4,6,11 2,4,8,9 1,4,5,13 2,2,7,12 3,3,6,7
1,5,9,13 5,6,7,13 5,5,8,10 2,4,6,12 6,7,8,11 7,9,9,13 3,6,9,12 6,9,12,13 4,7,9,13 5,6,8,12
2,4,6,7 2,5,10,10 6,6,7,12 6,9,9,11 5,8,11,12 5,6,8,10 6,11,12,13 2,2,8,8 2,7,12,13 2,6,8,12
3,4,9,13 4,5,10,12 1,2,7,11 4,5,6,8 6,10,12,13 1,3,9,9 1,4,4,11 2,3,9,10 1,2,3,13 1,6,6,6
1,2,2,9 1,3,6,11 5,10,12,13 2,3,6,6 6,7,10,12 7,8,8,12 3,4,6,8 1,7,9,11 2,3,6,13 2,2,5,12
2,6,8,13 8,8,10,12 1,3,8,13 4,4,7,10 1,7,10,13 1,9,10,13 3,3,4,11 2,5,7,7 3,9,10,13 2,3,4,7
4,4,8,12 1,2,6,10 1,5,12,12 5,6,6,8 7,7,8,11 1,3,7,10 3,3,9,12 3,5,7,10 4,10,12,13 2,3,10,12
3,4,6,6 5,8,8,8 6,8,8,12 2,3,4,9 2,6,7,11 5,9,12,12 1,2,7,12 2,4,5,6 5,5,8,13 2,3,3,10
3,4,8,12 2,4,6,11 2,2,8,9 1,5,6,7 5,8,10,11 4,4,9,12 2,5,6,6 2,4,9,12 4,8,11,13 4,9,10,13
""".split()  # noqa: SIM905
IGE_STEPS_24 = 700  # game_of_24/run.py: main(), --max_actions

# The 100 lowest human solve rates of the 1,362 puzzles in Tree of Thoughts' data/24/24.csv
# (4nums.com; ties by their difficulty rank), hardest first.
HARDEST_24 = """
2,3,5,12 2,5,5,10 3,5,7,13 2,9,13,13 2,4,10,10 3,7,9,13 5,5,7,11 1,3,4,6 2,7,7,10 3,6,6,11
5,7,7,11 3,3,7,13 9,11,12,13 2,4,7,12 1,4,5,6 3,8,8,10 1,8,12,12 4,8,8,13 3,3,5,7 7,8,8,13
1,6,6,8 7,8,10,11 4,8,8,11 2,2,10,11 3,3,8,8 6,9,9,10 2,3,8,13 2,5,7,8 2,2,6,13 5,6,9,11
5,8,9,13 5,7,10,11 1,4,7,11 6,11,12,12 5,6,8,13 4,7,11,13 2,2,13,13 7,10,12,13 6,12,12,13
3,5,8,12 4,5,6,11 1,6,11,13 5,10,10,13 4,4,7,7 2,4,11,12 5,7,9,12 4,4,10,10 2,7,8,9 2,2,11,11
4,6,6,10 3,4,6,13 6,7,8,12 1,3,9,10 3,3,7,7 5,10,10,11 1,7,13,13 3,5,8,13 4,6,7,9 6,7,7,11
8,9,10,12 5,9,10,11 4,9,11,11 1,5,11,11 1,5,5,5 2,5,6,9 4,5,6,12 1,2,9,11 5,5,8,11 6,7,11,11
7,8,9,12 7,9,11,12 3,6,6,10 2,4,7,7 4,7,9,11 2,2,3,5 2,2,6,9 2,5,7,9 2,2,7,10 3,8,10,12
4,4,7,13 6,6,9,13 3,5,10,10 2,5,8,12 4,10,10,11 2,2,3,10 1,2,7,7 1,4,6,10 1,7,12,13 8,8,9,12
3,6,7,10 2,3,7,9 3,9,11,13 2,5,12,13 3,3,6,6 2,6,9,9 8,9,11,11 6,6,7,11 2,3,13,13 5,6,6,9
9,11,12,12
""".split()  # noqa: SIM905


@dataclass
class Method:
    selector: str
    explorer: str
    judge: bool

    @classmethod
    def parse(cls, text: str) -> Method:
        parts = text.split("+")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "judge"):
            raise SystemExit(f"a method is SELECTOR+EXPLORER[+judge], e.g. ige+llm+judge: {text}")
        return cls(parts[0], parts[1], len(parts) == 3)

    def __str__(self) -> str:
        return f"{self.selector}+{self.explorer}" + ("+judge" if self.judge else "")


@dataclass
class Tally:
    runs: int = 0
    steps: list[int] = field(default_factory=list)  # to success, one per success
    answers: list[int] = field(default_factory=list)
    calls: int = 0
    tokens: int = 0
    fallbacks: int = 0


def spent(model) -> dict[str, int]:
    """A client's answers, calls, tokens and fallbacks so far (the bench keeps one client)."""
    u = model.usage
    fallbacks = sum(v for k, v in model.counts.items() if k.endswith("_fallbacks"))
    return {"answers": u.calls + u.cached, "calls": u.calls,
            "tokens": u.prompt_tokens + u.completion_tokens, "fallbacks": fallbacks}  # fmt: skip


def attempt(env: str, method: Method, steps: int, explore_steps: int, seed: int, model,
            cap: int) -> tuple[int | None, dict[str, int]]:  # fmt: skip
    """One run until success or ``steps``: (steps to success or None, what the model cost)."""
    uses_model = selector_uses_model(method.selector) or method.explorer == "llm" or method.judge
    config = ExploreConfig(env=env, seed=seed, selector=method.selector,
                           explorer=method.explorer, llm_judge=method.judge,
                           llm_model=model.model if uses_model else None,
                           explore_steps=explore_steps)  # fmt: skip
    worker = Worker.from_config(config)
    before = spent(model)
    task = goal(worker.env)
    if method.explorer == "llm":
        worker.explorer.model = model
    memory = Memory()  # one history for the selector and the judge, as IGE keeps one
    kwargs = {"model": model, "goal": task} if selector_uses_model(method.selector) else {}
    if method.selector == "ige":
        kwargs.update(memory=memory, describe=Describer(worker.env))
    judge = Judge(model, task, memory=memory) if method.judge else None
    selector = make_selector(method.selector, **kwargs)
    engine = Engine(Archive(), TrajectoryTree(), selector, seed=seed, admit=judge)

    def cost() -> dict[str, int]:
        return {k: v - before[k] for k, v in spent(model).items()}

    try:
        engine.add_root(worker.root())
        more = lambda: engine.frames < steps and cost()["answers"] < cap  # noqa: E731
        drive(engine, InlineExecutor(lambda: worker), 1, more,
              done=lambda: engine.success_frame is not None)  # fmt: skip
    finally:
        worker.env.close()  # the model client is the bench's, kept for the next run
    return engine.success_frame, cost()


def make_games(out: Path, level: int) -> dict[str, Path]:
    tw_make = shutil.which("tw-make") or str(Path(sys.executable).parent / "tw-make")
    games = {}
    for name, kind in (("treasure hunter", "tw-treasure_hunter"),
                       ("coin collector", "tw-coin_collector")):  # fmt: skip
        path = out / f"{kind}-level{level}.z8"
        if not path.exists():
            subprocess.run([tw_make, kind, "--level", str(level), "--seed", "1", "--output",
                            str(path), "-f", "--silent"], check=True)  # fmt: skip
        games[name] = path
    return games


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("endpoint", help="OpenAI-compatible base URL, or local:DIR")
    ap.add_argument("model")
    ap.add_argument("--methods", default="count+random,ige+llm+judge")
    ap.add_argument("--tasks", default="game24,treasure,coin")
    ap.add_argument("--setting", default="hardest", choices=("hardest", "ige"),
                    help="Game of 24: the 100 hardest puzzles with fractions, or IGE's setting "
                    "(puzzles 900-999, integer division, 700 steps)")  # fmt: skip
    ap.add_argument("--puzzles", type=int, default=100, help="how many of the setting's puzzles")
    ap.add_argument(
        "--steps-24",
        type=int,
        default=None,
        help="environment steps per puzzle (default: 60; 700 with --setting ige)",
    )
    ap.add_argument("--tw-level", type=int, default=10)
    ap.add_argument("--tw-runs", type=int, default=5)
    ap.add_argument("--steps-tw", type=int, default=1000, help="environment steps per game run")
    ap.add_argument("--explore-steps-tw", type=int, default=10)
    ap.add_argument("--llm-budget", type=int, default=None, help="new model calls, in total")
    ap.add_argument("--calls-per-run", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("bench/out/ige"))
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    settings = Settings(args.endpoint, args.model, budget=args.llm_budget,
                        cache=args.out / "llm_cache.sqlite").resolved()  # fmt: skip
    settings.check()
    model = settings.connect()  # one client (one local model in memory) for every run
    methods = [Method.parse(m) for m in args.methods.split(",")]
    tasks: list[tuple[str, list[tuple[str, int]], int, int]] = []  # name, (env, seed), steps
    wanted = args.tasks.split(",")
    if "game24" in wanted:
        if args.setting == "ige":
            envs = [(f"game24:{p}:int", 0) for p in IGE_24[: args.puzzles]]
            steps, name = args.steps_24 or IGE_STEPS_24, f"game24 (IGE's {len(envs)})"
        else:
            envs = [(f"game24:{p}", 0) for p in HARDEST_24[: args.puzzles]]
            steps, name = args.steps_24 or 60, f"game24 ({len(envs)} hardest)"
        tasks.append((name, envs, steps, 3))
    games = make_games(args.out, args.tw_level) if {"treasure", "coin"} & set(wanted) else {}
    for key, name in (("treasure", "treasure hunter"), ("coin", "coin collector")):
        if key in wanted:
            runs = [(f"textworld:{games[name].resolve()}", s) for s in range(args.tw_runs)]
            tasks.append((f"{name} L{args.tw_level}", runs, args.steps_tw, args.explore_steps_tw))

    print(f"# {time.strftime('%Y-%m-%d')}: {args.model} at {args.endpoint}")
    print(f"# {' '.join(sys.argv)}")
    head = (f"{'task':<24} {'method':<16} {'solved':>7} {'rate':>6} {'steps':>8} {'answers':>8} "
            f"{'calls':>6} {'tokens':>9} {'fallbk':>6} {'x rate':>7}")  # fmt: skip
    print(head)
    stopped = None
    for name, runs, steps, explore_steps in tasks:
        base_rate = None
        for method in methods:
            tally = Tally()
            for env, seed in runs:
                try:
                    success, cost = attempt(env, method, steps, explore_steps, seed, model,
                                            args.calls_per_run)  # fmt: skip
                except (BudgetExhausted, ModelUnavailable) as e:
                    stopped = str(e)
                    break
                tally.runs += 1
                tally.calls += cost["calls"]
                tally.tokens += cost["tokens"]
                tally.fallbacks += cost["fallbacks"]
                if success is not None:
                    tally.steps.append(success)
                    tally.answers.append(cost["answers"])
            rate = len(tally.steps) / tally.runs if tally.runs else 0.0
            base_rate = rate if base_rate is None else base_rate
            ratio = f"{rate / base_rate:.2f}" if base_rate else "n/a"
            mean = lambda xs: f"{sum(xs) / len(xs):.1f}" if xs else "-"  # noqa: E731
            cut = f"  (cut short: {tally.runs} of {len(runs)} runs)" if stopped else ""
            print(f"{name:<24} {str(method):<16} {len(tally.steps):>3}/{tally.runs:<3} "
                  f"{rate:>6.2f} {mean(tally.steps):>8} {mean(tally.answers):>8} "
                  f"{tally.calls:>6} {tally.tokens:>9} {tally.fallbacks:>6} {ratio:>7}{cut}",
                  flush=True)  # fmt: skip
            if stopped:
                break
        if stopped:
            break
    if stopped:
        print(f"# stopped: {stopped}; the answers so far are in {settings.cache}: the same "
              "command (with a larger --llm-budget) goes on where this one stopped")  # fmt: skip


if __name__ == "__main__":
    main()
