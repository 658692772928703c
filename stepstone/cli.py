"""The command line: ``stepstone explore | resume | report | replay``.

Users' scripts rely on these commands, options and JSON fields: change them only compatibly.
Errors a user can fix print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

from .config import CELL_KINDS, EXPLORERS, ExploreConfig, parse_count
from .errors import ConfigError, StepstoneError
from .executors import BACKENDS, check_workers
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
    p.add_argument(
        "--backend", default="processes", choices=BACKENDS,
        help="where explorations run: inline (this process), processes (one per worker) or ray",
    )  # fmt: skip
    p.add_argument(
        "--address",
        default=None,
        help="with --backend ray: 'auto' or HOST:PORT of a running cluster (default: local)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log lines")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="merge results in task order, so a seed reproduces the run byte for byte at any "
        "--workers (without it, only --workers 1 does); costs some throughput (bench/README.md)",
    )
    p.add_argument(
        "--no-filter",
        action="store_true",
        help="workers send every cell they found, not only those new or better by their copy "
        "of the archive (the same run, more bytes; for measuring, bench/README.md)",
    )
    p.add_argument(
        "--trust-run-dir",
        action="store_true",
        help="allow resuming a run whose snapshots are pickles (--return deepcopy): restoring "
        "them runs code from the run directory, so only for directories you trust",
    )
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
    p.add_argument(
        "--llm-retries", type=int, default=8,
        help="attempts after a failed model request (rate limit, 5xx, bad body, timeout), "
        "1, 2, 4 ... 60 s apart or as the server's Retry-After asks; then the run is saved "
        "and stops, resumable",
    )  # fmt: skip
    p.add_argument("--llm-concurrency", type=int, default=8, help="model requests at once")
    p.add_argument(
        "--llm-max-tokens", type=int, default=None,
        help="tokens per reply, reasoning included (default: the server's; local:DIR 256)",
    )  # fmt: skip


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default where it has one (not None, False or an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        d = action.default
        if d is None or d is False or d == [] or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="stepstone", description="Archive-based exploration (Go-Explore) on any environment."
    )
    parser.add_argument("--version", action="version", version=f"stepstone {__version__}")
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
    p.add_argument(
        "--seed", type=int, default=0,
        help="seeds the environment's reset and the run's choices; every trajectory replays "
        "from it",
    )  # fmt: skip
    p.add_argument("--run-dir", type=Path, default=None, help="default: runs/ENV-sSEED-TIME")
    p.add_argument(
        "--env-arg",
        dest="env_args",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a keyword argument of gymnasium.make, e.g. map_name=8x8 or is_slippery=false; "
        "repeatable; kept with the run",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (e.g. one that registers your environment; the current "
        "directory is searched too); repeatable",
    )
    p.add_argument(
        "--explore-steps", type=int, default=100,
        help="actions taken from a chosen cell in one exploration",
    )  # fmt: skip
    p.add_argument(
        "--repeat-prob", type=float, default=0.95,
        help="probability that a random exploration repeats its previous action",
    )  # fmt: skip
    p.add_argument(
        "--end-on-life-loss",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="end an exploration when a life is lost (as Go-Explore Phase 1 does)",
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
    p.add_argument(
        "--cell", default="best", choices=("best", "all"),
        help="best: the best entry's trajectory; all: every cell's (slower)",
    )  # fmt: skip
    p.add_argument(
        "--gif", type=Path, default=None,
        help="write a GIF of the best trajectory as the environment draws it (rgb_array)",
    )  # fmt: skip

    p = sub.add_parser(
        "migrate", help="convert a run directory of an older stepstone to the current format"
    )
    p.add_argument("run_dir", type=Path)
    p.add_argument(
        "--trust-run-dir",
        action="store_true",
        help="required: format 1 pickled its cells, and converting unpickles them",
    )

    p = sub.add_parser("view", help="write one HTML page to look at a run (and serve it)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, default=None, help="the page (default: D/view.html)")
    p.add_argument(
        "--max-frames", type=int, default=500,
        help="cells whose frame is replayed into the page (the best first)",
    )  # fmt: skip
    p.add_argument("--serve", action="store_true", help="serve the page on a local port")
    p.add_argument("--port", type=int, default=8000, help="the port of --serve")

    p = sub.add_parser("export", help="write trajectories as a dataset (Minari, JSONL, Parquet)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--format", required=True, choices=("minari", "jsonl", "parquet"))
    p.add_argument("--select", default="best", choices=("best", "all-cells", "top-k"))
    p.add_argument("--k", type=int, default=10, help="how many entries with --select top-k")
    p.add_argument("--dataset-id", default=None, help="Minari id (default stepstone/ENV-SELECT-v0)")
    p.add_argument("--out", type=Path, default=None, help="JSONL/Parquet file (default in D)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file or Minari dataset of the same id",
    )
    p.add_argument(
        "--pairs", action="store_true", help="also write preference pairs (success vs. failure)"
    )
    p.add_argument(
        "--hindsight", action="store_true",
        help="write each failed trajectory as a success at what it achieved, its label as the "
        "task (OS-Genesis reverse task synthesis)",
    )  # fmt: skip
    p.add_argument("--llm-url", default=None, help="label trajectories with this model endpoint")
    p.add_argument("--llm-model", default=None, help="the model to label with")
    p.add_argument("--author", default=None, help="Minari metadata: who made the dataset")
    p.add_argument("--author-email", default=None, help="Minari metadata: a contact address")
    p.add_argument(
        "--code-permalink", default=None,
        help="Minari metadata: a link to the code that made the run (default: stepstone==VERSION)",
    )  # fmt: skip

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
    for command in sub.choices.values():
        command.formatter_class = _Help
    return parser


def parse_cell_params(items: list[str]) -> dict:
    return parse_params(items, "--cell-param", "width=16")


def parse_params(items: list[str], option: str, example: str) -> dict:
    """NAME=VALUE pairs; values are JSON where they parse (numbers, true), else strings."""
    params = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ConfigError(f"{option} takes NAME=VALUE, e.g. {example}, not {item!r}")
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
        env_args=parse_params(args.env_args, "--env-arg", "map_name=8x8"),
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
    check_workers(args.workers, args.backend)
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
    check_workers(args.workers, args.backend)
    config = store.config
    llm = None
    if config.uses_model:
        url = args.llm_url or store.meta("llm_url")
        llm_budget = args.llm_budget or store.meta("llm_budget")
        llm = _llm_settings(args, url, config.llm_model, llm_budget)
    return _run(store, frames, args, report, llm)


def _llm_settings(args: argparse.Namespace, url, model, budget):
    """The model's settings from the options (the environment fills what they leave out)."""
    from .llm.client import Settings

    if args.llm_timeout <= 0:
        raise ConfigError(f"--llm-timeout must be > 0 seconds, got {args.llm_timeout}")
    if args.llm_concurrency < 1:
        raise ConfigError(f"--llm-concurrency must be >= 1, got {args.llm_concurrency}")
    if args.llm_retries < 0:
        raise ConfigError(f"--llm-retries must be >= 0, got {args.llm_retries}")
    if args.llm_max_tokens is not None and args.llm_max_tokens < 1:
        raise ConfigError(f"--llm-max-tokens must be >= 1, got {args.llm_max_tokens}")
    calls = parse_count(budget, "--llm-budget") if budget is not None else None
    return Settings(url, model, args.llm_key, budget=calls, timeout=args.llm_timeout,
                    retries=args.llm_retries, concurrency=args.llm_concurrency,
                    max_tokens=args.llm_max_tokens).resolved()  # fmt: skip


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


def _run(store, frames: int, args: argparse.Namespace, report, llm=None) -> int:
    from .runner import RunOptions, run

    store.set_meta("budget", str(frames))
    if llm is not None:
        if llm.url:
            store.set_meta("llm_url", llm.stored_url)  # without the credentials it may carry
        if llm.budget is not None:
            store.set_meta("llm_budget", str(llm.budget))
    opts = RunOptions(
        frames,
        args.workers,
        args.backend,
        not args.no_progress,
        address=args.address,
        llm=llm,
        deterministic=args.deterministic,
        filter=not args.no_filter,
        trust_run_dir=args.trust_run_dir,
    )
    try:
        last = run(store, opts)
        if last.get("interrupted"):
            print(
                f"interrupted at {last['frames']:,} frames, everything merged is committed; "
                f"continue with: stepstone resume {store.path}",
                file=sys.stderr,
            )
            return 130
        if last.get("stopped") == GOAL_REACHED:
            print(f"stopped: the goal was reached at {last['success_frame']:,} frames "
                  "(--stop-on-success)", file=sys.stderr)  # fmt: skip
        elif last.get("stopped"):
            print(f"stopped: {last['stopped']}; continue: stepstone resume {store.path} "
                  "--llm-budget N", file=sys.stderr)  # fmt: skip
        s = report.write(store)
    finally:
        store.close()  # releases the run directory's lock, whatever happened
    print(report.brief(s))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from . import report
    from .store.sqlite import RunStore

    store = RunStore.open(args.run_dir)
    writable = os.access(store.path, os.W_OK)  # a shared read-only copy is reported, not written
    s = report.write(store) if writable else report.summary(store)
    if args.json:
        print(json.dumps(s))
    else:
        print(report.brief(s))
        if not writable:
            print(f"{store.path} is read-only: report.md and progress.svg were not written")
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


def cmd_migrate(args: argparse.Namespace) -> int:
    from .store.migrate import migrate

    print(migrate(args.run_dir, args.trust_run_dir))
    return 0


@contextlib.contextmanager
def _dataset_warnings():
    """Warnings while writing a dataset (Minari's of metadata left out, such as an author
    e-mail), one line each on stderr rather than a source line and a path."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", UserWarning)
        yield
    for w in said:
        if issubclass(w.category, UserWarning):
            print(f"warning: {' '.join(str(w.message).split())}", file=sys.stderr)


def cmd_view(args: argparse.Namespace) -> int:
    from . import view
    from .store.sqlite import RunStore

    if args.max_frames < 0:
        raise ConfigError(f"--max-frames must be >= 0, got {args.max_frames}")
    page = view.write(RunStore.open(args.run_dir), args.out, args.max_frames)
    print(f"written: {page}")
    if args.serve:
        view.serve(page, args.port)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from . import export
    from .store.sqlite import RunStore

    store = RunStore.open(args.run_dir)
    config = store.config
    if args.format == "minari" and (args.pairs or args.hindsight):
        raise ConfigError("--pairs and --hindsight make chat data: use --format jsonl or parquet")
    chosen = export.episodes(store, args.select, args.k)
    if args.format == "minari":
        from .export import minari

        name = re.sub(r"[^A-Za-z0-9_]+", "_", config.env).strip("_")
        dataset_id = args.dataset_id or f"stepstone/{name}-{args.select}-v0"
        _clear_dataset(dataset_id, args.overwrite)
        with _dataset_warnings():
            dataset = minari.export(
                config, chosen, dataset_id, args.author, args.author_email, args.code_permalink
            )
        print(f"{dataset.total_episodes} episodes, {dataset.total_steps} steps -> {dataset_id}")
        return 0
    from .export import jsonl

    labeller = None
    if args.llm_url or args.llm_model:
        from .llm.client import Cache, ChatClient

        cache = Cache(store.path / "llm_cache.sqlite")
        labeller = ChatClient(args.llm_url, args.llm_model, cache=cache)
    out = args.out or store.path / f"{args.select}.{args.format}"
    _check_out(out, args.overwrite)
    written = jsonl.export(
        config, chosen, out, args.format, args.pairs, labeller, relabel=args.hindsight
    )
    for path, rows in written.items():
        print(f"{rows} records -> {path}")
    return 0


def _check_out(out: Path, overwrite: bool) -> None:
    """An export's file: refused if it is a directory, or exists and --overwrite is not given."""
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file, e.g. {out / 'best.jsonl'}")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; add --overwrite to replace it, or give another --out")
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: {out.parent} is not a directory")


def _clear_dataset(dataset_id: str, overwrite: bool) -> None:
    """A Minari id already taken is refused, or with --overwrite deleted first."""
    try:
        import minari
    except ImportError:
        raise ConfigError("--format minari needs Minari: pip install 'stepstone[minari]'") from None
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError):  # TypeError: no -vN, which Minari needs
        raise ConfigError(
            f"{dataset_id!r} is not a Minari dataset id: give --dataset-id as "
            "(namespace/)name-vN, e.g. stepstone/pong-best-v0 (a namespace has 2+ characters)"
        ) from None
    if dataset_id not in minari.list_local_datasets():
        return
    if not overwrite:
        raise ConfigError(
            f"a Minari dataset {dataset_id!r} exists; add --overwrite to replace it, or give "
            "another --dataset-id"
        )
    minari.delete_dataset(dataset_id)


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

    with _dataset_warnings():
        r = label(args.dataset_id, args.labelled, args.out_id, args.epochs, args.seed)
    print(
        f"{r.labelled_episodes} of {r.episodes} episodes labelled; {r.transitions} distinct "
        f"transitions, {r.trained_on} trained on"
    )
    if r.unseen:
        print(
            f"on the {r.unseen} action-free transitions never seen in training: accuracy "
            f"{r.unseen_accuracy:.3f} (majority-action baseline {r.majority_baseline:.3f})"
        )
    else:
        print("every action-free transition was also seen in training: no accuracy to report "
              "(export independent runs, or label a larger share)")  # fmt: skip
    print(
        f"accuracy on every action-free step, seen in training or not: {r.label_accuracy:.3f}"
        + (f" -> {args.out_id} (info action_inferred marks the inferred actions)"
           if args.out_id else "")
    )  # fmt: skip
    return 0


COMMANDS = {
    "explore": cmd_explore,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
    "label": cmd_label,
    "migrate": cmd_migrate,
    "robustify": cmd_robustify,
    "resume": cmd_resume,
    "report": cmd_report,
    "replay": cmd_replay,
    "view": cmd_view,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except StepstoneError as e:
        print(f"stepstone: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    except KeyboardInterrupt:  # explore and resume commit and say so themselves
        print(f"stepstone: {args.command} interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    sys.exit(main())


if __name__ == "__main__":
    entry()
