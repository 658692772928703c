"""The command line: ``stepstone explore | resume | report | replay``.

Users' scripts rely on these commands, options and JSON fields: change them only compatibly.
Errors a user can fix print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from .config import CELL_KINDS, EXPLORERS, ExploreConfig, parse_count
from .errors import ConfigError, StepstoneError
from .executors import BACKENDS
from .goals import GOAL_REACHED
from .selectors import MODEL_SELECTORS
from .selectors import REGISTRY as SELECTORS


def _default_run_dir(env: str, seed: int) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", env).strip("-").lower()
    return Path("runs") / f"{slug}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def _add_run_options(p: argparse.ArgumentParser, frames_default: str | None) -> None:
    p.add_argument(
        "--frames",
        default=frames_default,
        help="total frame budget, e.g. 200k or 5M (one frame = one step outside Atari)",
    )
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: cores)")
    p.add_argument("--backend", default="processes", choices=BACKENDS)
    p.add_argument(
        "--address",
        default=None,
        help="with --backend ray: 'auto' or HOST:PORT of a running cluster (default: local)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log lines")
    p.add_argument(
        "--llm-url",
        default=None,
        help="OpenAI-compatible base URL (http://HOST:PORT/v1) or local:DIR for a transformers "
        "model directory (default: $STEPSTONE_LLM_URL; resume: the run's)",
    )
    p.add_argument(
        "--llm-budget",
        default=None,
        help="model calls for the whole run, e.g. 500; the run stops there, resumable "
        "(cached answers are free; resume: the run's)",
    )
    p.add_argument(
        "--llm-key",
        default=None,
        help="API key (default: $OPENAI_API_KEY, which is safer: options show in the process "
        "list); never written to the run directory",
    )
    p.add_argument("--llm-timeout", type=float, default=60.0, help="seconds per model request")
    p.add_argument("--llm-concurrency", type=int, default=8, help="model requests at once")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stepstone", description="Archive-based exploration (Go-Explore) on any environment."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("explore", help="start a run")
    p.add_argument("env", help="a Gymnasium id (ALE/MontezumaRevenge-v5) or alias (montezuma)")
    p.add_argument(
        "--cells",
        default="auto",
        help=f"cell kind: {', '.join(CELL_KINDS)}, or module:function of your own",
    )
    p.add_argument(
        "--cell-param",
        dest="cell_params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the cell kind, e.g. width=16 or every=20; repeatable",
    )
    p.add_argument("--selector", default="count", help=f"one of {', '.join(SELECTORS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", type=Path, default=None, help="default: runs/ENV-sSEED-TIME")
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (e.g. one that registers your environment); repeatable",
    )
    p.add_argument("--explore-steps", type=int, default=100)
    p.add_argument("--repeat-prob", type=float, default=0.95)
    p.add_argument(
        "--end-on-life-loss",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="end an exploration when a life is lost (Go-Explore Phase 1 default)",
    )
    p.add_argument(
        "--death-window",
        type=int,
        default=0,
        help="drop the cells reached in the last N steps before a life is lost (doomed states)",
    )
    p.add_argument(
        "--reset-on-update",
        action="store_true",
        help="zero a cell's visit counts when a better trajectory replaces it (as Go-Explore's "
        "reference Montezuma runs did)",
    )
    p.add_argument(
        "--return",
        dest="return_method",
        default="auto",
        help="non-Atari environments: auto, deepcopy or replay",
    )
    p.add_argument(
        "--explorer", default="random", choices=EXPLORERS,
        help="random: Go-Explore's repeated random actions; llm: a model picks the actions",
    )  # fmt: skip
    p.add_argument("--llm-model", default=None, help="the model (default: $STEPSTONE_LLM_MODEL)")
    p.add_argument(
        "--llm-judge", action="store_true",
        help="a model decides whether each new cell is interesting enough to archive (IGE)",
    )  # fmt: skip
    p.add_argument("--llm-actions", type=int, default=1, help="actions the model picks per call")
    p.add_argument(
        "--llm-samples", type=int, default=4,
        help="replies per state the llm explorer draws from (1: temperature 0 only, cheapest, "
        "but every exploration from a cell then repeats)",
    )  # fmt: skip
    p.add_argument(
        "--llm-prompts", type=Path, default=None, metavar="FILE.json",
        help="prompt templates replacing the defaults: {role: template}, roles system, "
        "select, act, judge, score",
    )  # fmt: skip
    p.add_argument(
        "--goal", default=None,
        help="what success is: score>=NUMBER, score>NUMBER or terminated (default: the "
        "environment's own goal, or info['is_success'] where it sets it)",
    )  # fmt: skip
    p.add_argument(
        "--stop-on-success", action="store_true",
        help="end the run when the goal is first reached, before the frame budget",
    )  # fmt: skip
    _add_run_options(p, "1M")

    p = sub.add_parser("resume", help="continue a run from its last commit")
    p.add_argument("run_dir", type=Path)
    _add_run_options(p, None)

    p = sub.add_parser("report", help="write plots and a summary of a run")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    p = sub.add_parser("replay", help="replay stored trajectories from their seed and check them")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--cell", default="best", choices=("best", "all"))
    p.add_argument("--gif", type=Path, default=None, help="write a GIF of the best trajectory")

    p = sub.add_parser("export", help="write trajectories as a dataset (Minari, JSONL, Parquet)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--format", required=True, choices=("minari", "jsonl", "parquet"))
    p.add_argument("--select", default="best", choices=("best", "all-cells", "top-k"))
    p.add_argument("--k", type=int, default=10, help="how many entries with --select top-k")
    p.add_argument("--dataset-id", default=None, help="Minari id (default stepstone/ENV-SELECT-v0)")
    p.add_argument("--out", type=Path, default=None, help="JSONL/Parquet file (default in D)")
    p.add_argument(
        "--pairs", action="store_true", help="also write preference pairs (success vs. failure)"
    )
    p.add_argument("--llm-url", default=None, help="label trajectories with this model endpoint")
    p.add_argument("--llm-model", default=None, help="the model to label with")

    p = sub.add_parser("robustify", help="train a policy from the best trajectory (Phase 2)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--frames", default="200k", help="training steps for each method")
    p.add_argument("--sticky", type=float, default=0.25, help="repeat-action probability")
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--advance-rate",
        type=float,
        default=0.5,
        help="share of recent episodes matching the demonstration before its start moves back "
        "(Go-Explore's own Phase 2 used 0.1 on Atari)",
    )
    p.add_argument(
        "--step-back",
        type=int,
        default=0,
        help="actions the start moves back each time (default: a twentieth of the demonstration; "
        "fewer where each stretch holds a skill of its own, such as Montezuma's jumps)",
    )
    p.add_argument(
        "--entropy", type=float, default=0.01, help="PPO's entropy bonus (keeps it trying actions)"
    )
    p.add_argument(
        "--demo-score",
        type=float,
        default=None,
        help="demonstrate the shortest archived path reaching this score (default: the best)",
    )
    p.add_argument(
        "--baselines",
        default="bc,ppo",
        help="baselines trained on the same budget: bc, ppo (from reset), both, or none",
    )

    p = sub.add_parser("evaluate", help="run the policy robustify saved, under sticky actions")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--episodes", type=int, default=20, help="episodes from reset")
    p.add_argument(
        "--sticky", type=float, default=None,
        help="repeat-action probability (default: the one the policy was trained with)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gif", type=Path, default=None, help="write a GIF of the first episode")

    p = sub.add_parser("label", help="label action-free trajectories by inverse dynamics")
    p.add_argument("dataset_id", help="a Minari dataset (e.g. one written by stepstone export)")
    p.add_argument("--labelled", type=float, default=0.1, help="fraction of episodes with actions")
    p.add_argument("--out-id", default=None, help="write the relabelled dataset under this id")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    return parser


def parse_cell_params(items: list[str]) -> dict:
    """NAME=VALUE pairs; values are JSON where they parse (numbers, true), else strings."""
    params = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ConfigError(f"--cell-param takes NAME=VALUE, e.g. width=16, not {item!r}")
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    return params


def cmd_explore(args: argparse.Namespace) -> int:
    from . import report, runner

    env = args.env
    if env.startswith("textworld:"):  # the run must find its game from any directory
        env = "textworld:" + str(Path(env.partition(":")[2]).resolve())
    llm = _llm_settings(args, args.llm_url, args.llm_model, args.llm_budget)
    wants_model = args.selector in MODEL_SELECTORS or args.explorer == "llm" or args.llm_judge
    config = ExploreConfig(
        env=env,
        seed=args.seed,
        cells=args.cells,
        cell_params=parse_cell_params(args.cell_params),
        selector=args.selector,
        explore_steps=args.explore_steps,
        repeat_prob=args.repeat_prob,
        end_on_life_loss=args.end_on_life_loss,
        death_window=args.death_window,
        reset_on_update=args.reset_on_update,
        return_method=args.return_method,
        imports=tuple(args.imports),
        explorer=args.explorer,
        llm_model=llm.model if wants_model else None,
        llm_actions=args.llm_actions,
        llm_samples=args.llm_samples,
        llm_judge=args.llm_judge,
        llm_prompts=_prompts(args.llm_prompts),
        goal=args.goal,
        stop_on_success=args.stop_on_success,
    )
    frames = parse_count(args.frames, "--frames")
    run_dir = args.run_dir or _default_run_dir(args.env, args.seed)
    _check_workers(args.workers)
    # Validate the environment and cells before anything is written to disk.
    from .worker import Worker

    worker = Worker.from_config(config)
    try:
        if config.stop_on_success and worker.root().success is None:
            note = f"{config.env} has no goal stepstone knows; unless it sets info['is_success']"
            print(f"stepstone: note: {note}, --stop-on-success needs --goal", file=sys.stderr)
    finally:
        worker.close()
    if config.uses_model:
        llm.check()  # nothing listening, or no such model: said now, before a run is written
    store = runner.open_run(config, run_dir)
    return _run(store, frames, args, report, llm if config.uses_model else None)


def cmd_resume(args: argparse.Namespace) -> int:
    from . import report, runner

    store = runner.open_run(None, args.run_dir)
    budget = int(store.meta("budget", "0"))
    frames = parse_count(args.frames, "--frames") if args.frames is not None else budget
    _check_workers(args.workers)
    config = store.config
    llm = None
    if config.uses_model:
        url = args.llm_url or store.meta("llm_url")
        budget = args.llm_budget or store.meta("llm_budget")
        llm = _llm_settings(args, url, config.llm_model, budget)
    return _run(store, frames, args, report, llm)


def _llm_settings(args: argparse.Namespace, url, model, budget):
    """The model's settings from the options (the environment fills what they leave out)."""
    from .llm.client import Settings

    if args.llm_timeout <= 0:
        raise ConfigError(f"--llm-timeout must be > 0 seconds, got {args.llm_timeout}")
    if args.llm_concurrency < 1:
        raise ConfigError(f"--llm-concurrency must be >= 1, got {args.llm_concurrency}")
    calls = parse_count(budget, "--llm-budget") if budget is not None else None
    return Settings(url, model, args.llm_key, budget=calls, timeout=args.llm_timeout,
                    concurrency=args.llm_concurrency).resolved()  # fmt: skip


def _prompts(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read --llm-prompts {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"--llm-prompts {path} is not JSON ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"--llm-prompts {path} must map role names to template strings")
    return data


def _check_workers(workers: int | None) -> None:
    """Checked before anything is written, so that a typo creates no run directory."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")


def _run(store, frames: int, args: argparse.Namespace, report, llm=None) -> int:
    from .runner import RunOptions, run

    store.set_meta("budget", str(frames))
    if llm is not None:
        if llm.url:
            store.set_meta("llm_url", llm.url)
        if llm.budget is not None:
            store.set_meta("llm_budget", str(llm.budget))
    opts = RunOptions(
        frames, args.workers, args.backend, not args.no_progress, address=args.address, llm=llm
    )
    last = run(store, opts)
    if last.get("stopped") == GOAL_REACHED:
        print(f"stopped: the goal was reached at {last['success_frame']:,} frames "
              "(--stop-on-success)", file=sys.stderr)  # fmt: skip
    elif last.get("stopped"):
        print(f"stopped: {last['stopped']}; continue: stepstone resume {store.path} "
              "--llm-budget N", file=sys.stderr)  # fmt: skip
    s = report.write(store)
    print(
        f"{s['env']}: {s['frames']:,} frames, {s['cells']} cells, best score {s['best_score']:g}"
        + (f", {s['rooms']} rooms" if s["rooms"] is not None else "")
        + (f", goal reached at {s['frames_to_success']:,} frames" if s["success"] else "")
        + f" -> {store.path}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from . import report
    from .store.sqlite import RunStore

    store = RunStore.open(args.run_dir)
    s = report.write(store)
    if args.json:
        print(json.dumps(s))
    else:
        print(report.markdown(s))
        print(f"written: {store.path / 'report.md'}, {store.path / 'progress.png'}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .store.sqlite import RunStore
    from .trajectories import TrajectoryTree
    from .worker import Worker

    store = RunStore.open(args.run_dir)
    config = store.config
    archive = store.load_archive()
    tree = TrajectoryTree(store.nodes)
    worker = Worker.from_config(config)
    try:
        return _replay(args, store, archive, tree, worker)
    finally:
        worker.close()


def _replay(args, store, archive, tree, worker) -> int:
    from . import replay as rp

    config = store.config
    shape = store.state().get("cell_shape")
    if shape is not None:
        worker.cell_fn.set_shape(tuple(shape))
    best = archive.entry(archive.best())
    entries = list(archive) if args.cell == "all" else [best]
    checked = 0
    for r in rp.check(worker, config.seed, tree, entries, archive.sources):
        checked += 1
        if not r.ok:
            print(
                f"mismatch: cell {r.expected!r} (score {r.entry.score:g}, "
                f"{r.entry.length} actions) replayed to cell {r.cell!r} with score {r.score:g}",
                file=sys.stderr,
            )
            return 1
    print(f"{checked} trajectories replayed to their cells and scores")
    if args.gif is not None:
        if not os.environ.get("DISPLAY"):  # MuJoCo draws headless through EGL
            os.environ.setdefault("MUJOCO_GL", "egl")
        frames = rp.draw(config, tree.actions(best.node, best.length), best.score)
        rp.write_gif(frames, str(args.gif))
        height, width = frames[0].shape[:2]
        print(f"written: {args.gif} ({len(frames)} frames of {width}x{height})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from . import export
    from .store.sqlite import RunStore

    store = RunStore.open(args.run_dir)
    config = store.config
    chosen = export.episodes(store, args.select, args.k)
    if args.format == "minari":
        from .export import minari

        name = re.sub(r"[^A-Za-z0-9_]+", "_", config.env).strip("_")
        dataset_id = args.dataset_id or f"stepstone/{name}-{args.select}-v0"
        dataset = minari.export(config, chosen, dataset_id)
        print(f"{dataset.total_episodes} episodes, {dataset.total_steps} steps -> {dataset_id}")
        return 0
    from .export import jsonl

    labeller = None
    if args.llm_url or args.llm_model:
        from .llm.client import Cache, ChatClient

        cache = Cache(store.path / "llm_cache.sqlite")
        labeller = ChatClient(args.llm_url, args.llm_model, cache=cache)
    out = args.out or store.path / f"{args.select}.{args.format}"
    written = jsonl.export(config, chosen, out, args.format, args.pairs, labeller)
    for path, rows in written.items():
        print(f"{rows} records -> {path}")
    return 0


def cmd_robustify(args: argparse.Namespace) -> int:
    from .learn.robustify import RobustifyConfig, robustify
    from .store.sqlite import RunStore

    store = RunStore.open(args.run_dir)
    if not 0 <= args.sticky < 1:
        raise ConfigError(f"--sticky is a probability in [0, 1), not {args.sticky}")
    cfg = RobustifyConfig(
        frames=parse_count(args.frames, "--frames"),
        sticky=args.sticky,
        eval_episodes=args.eval_episodes,
        seed=args.seed,
        demo_score=args.demo_score,
        advance_rate=args.advance_rate,
        step=args.step_back,
        entropy=args.entropy,
    )
    if cfg.step < 0 or cfg.entropy < 0:
        raise ConfigError("--step-back (actions) and --entropy (a weight) must be >= 0")
    if not 0 < cfg.advance_rate <= 1:
        raise ConfigError(f"--advance-rate is a share in (0, 1], not {cfg.advance_rate}")
    baselines = set() if args.baselines == "none" else set(args.baselines.split(","))
    if baselines - {"bc", "ppo"}:
        raise ConfigError(f"--baselines takes bc, ppo, bc,ppo or none, not {args.baselines!r}")
    result = robustify(store, cfg, baselines, log=lambda line: print(line, file=sys.stderr))
    (store.path / "robustify" / "result.json").write_text(json.dumps(result, indent=1))
    print(
        f"demonstration: {result['demo_length']} actions, return {result['demo_return']:g}; "
        f"start moved back {len(result['start_moves'])} times"
    )
    print(f"under noise (sticky {cfg.sticky}), {cfg.eval_episodes} episodes from reset, "
          f"success = {result['success_criterion']}:")  # fmt: skip
    for name in ("backward", "bc", "ppo_from_reset"):
        if f"success_{name}" in result:
            print(
                f"  {name:<16} success {result[f'success_{name}']:.2f}  "
                f"mean score {result[f'score_{name}']:g}"
            )
    print(f"policy: {store.path / 'robustify' / 'policy.pt'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .learn.evaluate import run_policy
    from .store.sqlite import RunStore

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    if args.sticky is not None and not 0 <= args.sticky < 1:
        raise ConfigError(f"--sticky is a probability in [0, 1), not {args.sticky}")
    store = RunStore.open(args.run_dir)
    r = run_policy(store, args.episodes, args.sticky, args.seed, args.gif)
    print(
        f"{r['episodes']} episodes from reset, sticky actions {r['sticky']:g}: success "
        f"{r['success']:.2f} ({r['success_criterion']}), mean score {r['score']:g}"
    )
    if "gif" in r:
        print(f"written: {r['gif']} ({r['gif_frames']} frames, the first episode)")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from .learn.idm import label

    r = label(args.dataset_id, args.labelled, args.out_id, args.epochs, args.seed)
    print(
        f"{r.labelled_episodes} of {r.episodes} episodes labelled, {r.transitions} transitions; "
        f"held-out accuracy {r.held_out_accuracy:.3f}, accuracy of the labels given "
        f"{r.label_accuracy:.3f} (majority-action baseline {r.majority_baseline:.3f})"
        + (f" -> {args.out_id}" if args.out_id else "")
    )
    return 0


COMMANDS = {
    "explore": cmd_explore,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
    "label": cmd_label,
    "robustify": cmd_robustify,
    "resume": cmd_resume,
    "report": cmd_report,
    "replay": cmd_replay,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except StepstoneError as e:
        print(f"stepstone: error: {e}", file=sys.stderr)
        return 2


def entry() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    sys.exit(main())


if __name__ == "__main__":
    entry()
