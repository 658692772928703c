"""Phase 2 under the issue's protocol: train on an explored run, then `stepstone evaluate`.

For each training seed the run directory is copied to OUT/NAME-sSEED (a copy continues from
its checkpoints if the script is run again), `stepstone robustify` trains the backward
algorithm (with the options after ``--``) and the baselines on the same budget, and
`stepstone evaluate` runs the saved policy from reset: sticky actions 0.25, 20 episodes,
success = the environment's goal where the demonstration reaches it. Prints one row per seed
and the training's CPU time and steps/s.

    python bench/phase2.py /tmp/p2/multiroom --name multiroom --frames 100k --seeds 0 \
        --max-steps 120 -- --start-window 40 --advance-rate 0.1 --sil 0.1 --entropy-boost 100

``--speed 1,8,16`` instead measures the backward algorithm's training throughput with that
many environments stepped together, side by side in one process (steps per CPU second, so
that other jobs on the machine disturb it less), and trains nothing else.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from contextlib import redirect_stdout
from dataclasses import replace
from io import StringIO
from pathlib import Path

import numpy as np

from stepstone.cli import main as stepstone


def run_seed(args: argparse.Namespace, extra: list[str], seed: int) -> dict:
    copy = args.out / f"{args.name}-s{seed}"
    if not copy.exists():
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(args.run, copy, ignore=shutil.ignore_patterns("robustify", "lock"))
    limit = ["--max-steps", str(args.max_steps)] if args.max_steps else []
    cmd = ["robustify", str(copy), "--frames", args.frames, "--seed", str(seed), "--threads",
           "1", "--baselines", args.baselines, "--eval-episodes", "20", "--sticky", "0.25",
           "--no-progress", *limit, *extra]  # fmt: skip
    print("stepstone " + " ".join(cmd), file=sys.stderr, flush=True)
    t0 = time.process_time()
    if stepstone(cmd) != 0:
        raise SystemExit(f"robustify failed on {copy}")
    cpu = time.process_time() - t0
    result = json.loads((copy / "robustify" / "result.json").read_text())
    out = StringIO()
    with redirect_stdout(out):
        stepstone(["evaluate", str(copy), "--episodes", "20", "--sticky", "0.25", *limit])
    m = re.search(r"success ([\d.]+) \((.*)\), mean score (\S+)", out.getvalue())
    assert m, out.getvalue()
    moves = result["start_moves"]
    return {
        "seed": seed,
        "evaluate": float(m[1]),
        "criterion": m[2],
        "score": float(m[3]),
        "bc": result.get("success_bc"),
        "ppo": result.get("success_ppo_from_reset"),
        "start": moves[-1]["start"] if moves else None,
        "demo": result["demo_length"],
        "reached_reset": result["reached_reset"],
        "cpu_s": cpu,
        "steps_per_cpu_s": (result["frames_backward"] - result["resumed_at_backward"])
        / max(result["cpu_seconds_backward"], 1e-9),
        "start_moves": moves,
    }


def speed(args: argparse.Namespace, extra: list[str]) -> None:
    """Steps per CPU second of the backward algorithm's training for each ``--envs`` count,
    alternated over ``--repeats`` rounds in this one process."""
    from stepstone.cli import build_parser
    from stepstone.learn import robustify as rb
    from stepstone.options import build
    from stepstone.store.sqlite import RunStore

    store = RunStore.open(args.run)
    counts = [int(n) for n in args.speed.split(",")]
    ns = build_parser().parse_args(["robustify", str(args.run), "--frames", args.frames, *extra])
    base = build(rb.RobustifyConfig, ns)
    runner = rb.Runner(store, base)
    archive = store.load_archive()
    best = rb.demonstration(archive, base.demo_score)
    demos = rb.demonstrations(runner, archive, rb.TrajectoryTree(store.nodes), best, base)
    rates: dict[int, list[float]] = {n: [] for n in counts}
    import torch

    torch.set_num_threads(1)
    for _ in range(args.repeats):
        for n in counts:
            cfg = replace(base, envs=n)
            t = rb.ppo(rb.Runner(store, cfg), demos, cfg, True)
            rates[n].append(t.frames / t.cpu_seconds)
    print(
        f"{args.name}: backward training, {args.frames} steps a measurement, "
        f"{args.repeats} rounds alternated, options {' '.join(extra) or '(none)'}"
    )
    for n in counts:
        r = sorted(rates[n])
        print(
            f"--envs {n:<3} {np.median(r):7.0f} steps per CPU s (median; "
            f"{r[0]:.0f}-{r[-1]:.0f}), x{np.median(r) / np.median(rates[counts[0]]):.2f}"
        )


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="an explored run directory")
    ap.add_argument("--name", required=True)
    ap.add_argument("--frames", default="100k", help="training steps of each method")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--max-steps", type=int, default=0, help="the evaluation's step limit")
    ap.add_argument("--baselines", default="bc,ppo")
    ap.add_argument("--out", type=Path, default=Path("bench/out/phase2"))
    ap.add_argument("--speed", help="measure steps per CPU s with these --envs counts instead")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of --speed")
    args = ap.parse_args(argv)
    if args.speed:
        return speed(args, extra)
    rows = [run_seed(args, extra, int(s)) for s in args.seeds.split(",")]
    print(f"{args.name}: {args.frames} steps per method, options {' '.join(extra) or '(none)'}; "
          f"20 episodes from reset, sticky 0.25, success = {rows[0]['criterion']}")  # fmt: skip
    print("seed  evaluate  mean score  bc    ppo_from_reset  start/demo  cpu s  steps/cpu s")
    for r in rows:
        bc = "-" if r["bc"] is None else f"{r['bc']:.2f}"
        ppo = "-" if r["ppo"] is None else f"{r['ppo']:.2f}"
        start = "0" if r["reached_reset"] else str(r["start"])
        where = f"{start}/{r['demo']}"
        print(f"{r['seed']:<5} {r['evaluate']:<9.2f} {r['score']:<11g} {bc:<5} {ppo:<15} "
              f"{where:<11} {r['cpu_s']:<6.0f} {r['steps_per_cpu_s']:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
