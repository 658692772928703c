"""The command line: ``stepstone explore | resume | report | replay | ...``.

Users' scripts rely on these commands, options and JSON fields: change them only compatibly.
Each command's options are the fields of dataclasses (``COMMANDS``; options.py makes the
parser): explore's are ``ExploreConfig`` (stored with the run), ``RunOptions`` and
``ModelOptions`` (how to run it) and ``Explore``. Errors a user can fix print one line on
stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import ExploreConfig, RunOptions, check_backend, parse_count
from .errors import ConfigError, StepstoneError
from .executors import check_workers
from .goals import GOAL_REACHED
from .learn.robustify import PRESETS, STICKY_UNITS, RobustifyConfig, with_preset
from .llm.settings import Settings
from .options import add_options, build, option, values

_SETTINGS = Settings()  # the model options' defaults


def _default_run_dir(env: str, seed: int) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", env).strip("-").lower()
    return Path("runs") / f"{slug}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


@dataclass(frozen=True)
class ModelOptions:
    """Where the model is and how to call it: run options of explore and resume, which make
    the run's ``llm.settings.Settings`` (their defaults are its own)."""

    llm_url: str | None = option(
        None, help="OpenAI-compatible base URL (http://HOST:PORT/v1) or local:DIR for a "
        "transformers model directory (default: $STEPSTONE_LLM_URL; resume: the run's)",
    )  # fmt: skip
    llm_budget: str | None = option(
        None, shown="no limit; resume: the run's",
        help="model calls for the whole run, e.g. 500; the run stops there, resumable "
        "(cached answers are free)",
    )  # fmt: skip
    llm_key: str | None = option(
        None, help="API key (default: $OPENAI_API_KEY, which is safer: options show in the "
        "process list); never written to the run directory",
    )  # fmt: skip
    llm_timeout: float = option(_SETTINGS.timeout, help="seconds per model request")
    llm_retries: int = option(
        _SETTINGS.retries,
        help="attempts after a failed model request (rate limit, 5xx, bad body, timeout), "
        "1, 2, 4 ... 60 s apart or as the server's Retry-After asks; then the run is saved "
        "and stops, resumable",
    )  # fmt: skip
    llm_concurrency: int = option(_SETTINGS.concurrency, help="model requests at once")
    llm_max_tokens: int | None = option(
        None, type=int,
        help="tokens per reply, reasoning included (default: the server's; local:DIR 256)",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.llm_timeout <= 0:
            raise ConfigError(f"--llm-timeout must be > 0 seconds, got {self.llm_timeout}")
        if self.llm_concurrency < 1:
            raise ConfigError(f"--llm-concurrency must be >= 1, got {self.llm_concurrency}")
        if self.llm_retries < 0:
            raise ConfigError(f"--llm-retries must be >= 0, got {self.llm_retries}")
        if self.llm_max_tokens is not None and self.llm_max_tokens < 1:
            raise ConfigError(f"--llm-max-tokens must be >= 1, got {self.llm_max_tokens}")

    def settings(
        self, model: str | None, url: str | None = None, budget: str | None = None
    ) -> Settings:
        """The model's settings; what the options leave out is ``url`` and ``budget`` (the
        run's, on resume), then the environment variables."""
        url, budget = self.llm_url or url, self.llm_budget or budget
        calls = parse_count(budget, "--llm-budget") if budget is not None else None
        return Settings(url, model, self.llm_key, budget=calls, timeout=self.llm_timeout,
                        retries=self.llm_retries, concurrency=self.llm_concurrency,
                        max_tokens=self.llm_max_tokens).resolved()  # fmt: skip


# The other commands' options, one dataclass each (with the parts COMMANDS lists).

RUN_DIR = "the run directory"


@dataclass(frozen=True)
class Explore:
    """explore's options besides ExploreConfig's and the run options."""

    run_dir: Path | None = option(None, type=Path, help="default: runs/ENV-sSEED-TIME")
    web_reset: str | None = option(
        None, metavar="URL|MODULE:FUNCTION", shown="none",
        help="web:URL apps: called before each episode (a URL is POSTed to; a function of "
        "yours gets the seed) so that every episode starts from the same state",
    )  # fmt: skip
    web_values: Path | None = option(
        None, type=Path, metavar="FILE.json", shown="the page's own options",
        help='web:URL apps: what to type in each field, {"name, id or label": [values], '
        '"*": [values]} (kept with the run)',
    )  # fmt: skip
    web_task: str | None = option(
        None, metavar="TEXT", shown="from --goal",
        help="web:URL apps: the task in words, for language models and exported data "
        "(e.g. 'Reach a page that shows \"Order placed\".')",
    )  # fmt: skip


@dataclass(frozen=True)
class Resume:
    run_dir: Path = option(flag="", type=Path, help=RUN_DIR)


@dataclass(frozen=True)
class Report:
    run_dir: Path = option(flag="", type=Path, help=RUN_DIR)
    json: bool = option(False, help="print the summary as one JSON object")


@dataclass(frozen=True)
class Replay:
    run_dir: Path = option(flag="", type=Path, help=RUN_DIR)
    cell: str = option(
        "best", names=lambda: ("best", "goal", "all"), choices=True,
        help="best: the best entry's trajectory; goal: the best that reaches the run's goal; "
        "all: every cell's (slower)",
    )  # fmt: skip
    gif: Path | None = option(
        None, type=Path, shown="no GIF",
        help="write a GIF of the best trajectory as the environment draws it (rgb_array)",
    )  # fmt: skip


@dataclass(frozen=True)
class Migrate:
    run_dir: Path = option(flag="", type=Path, help=RUN_DIR)
    trust_run_dir: bool = option(
        False, help="required: format 1 pickled its cells, and converting unpickles them"
    )


@dataclass(frozen=True)
class View:
    run_dir: Path = option(flag="", type=Path, help=RUN_DIR)
    out: Path | None = option(None, type=Path, help="the page (default: D/view.html)")
    max_frames: int = option(
        500, help="cells whose frame is replayed into the page (the best first)"
    )
    serve: bool = option(False, help="serve the page on a local port")
    port: int = option(8000, help="the port of --serve")


@dataclass(frozen=True)
class Export:
    run_dir: Path = option(flag="", type=Path, help=RUN_DIR)
    format: str | None = option(
        None, names=lambda: ("minari", "jsonl", "parquet"), choices=True, required=True,
        help="the dataset's format (required)",
    )  # fmt: skip
    select: str = option(
        "auto", names=lambda: ("auto", "best", "goal", "all-cells", "top-k"), choices=True,
        help="auto: goal when the run reached its goal, else best; best: the best entry; "
        "goal: the best that reaches the run's goal; all-cells: every cell's; top-k: the --k best",
    )  # fmt: skip
    k: int = option(10, help="how many entries with --select top-k")
    dataset_id: str | None = option(
        None, help="Minari id (default stepstone/ENV-SELECT-v0, auto naming goal or best)"
    )
    out: Path | None = option(None, type=Path, help="JSONL/Parquet file (default in D)")
    overwrite: bool = option(
        False, help="replace an existing --out file or Minari dataset of the same id"
    )
    pairs: bool = option(False, help="also write preference pairs (success vs. failure)")
    step_pairs: bool = option(
        False, help="also write step-wise preference pairs: at a state a success and a failure "
        "share, the success's next action against the failure's (SPORT)",
    )  # fmt: skip
    hindsight: bool = option(
        False, help="write each failed trajectory as a success at what it achieved, its label "
        "as the task (OS-Genesis reverse task synthesis)",
    )  # fmt: skip
    llm_url: str | None = option(
        None, shown="no labels", help="label trajectories with this model endpoint"
    )
    llm_model: str | None = option(None, shown="the server's", help="the model to label with")
    author: str | None = option(None, help="Minari metadata: who made the dataset")
    author_email: str | None = option(None, help="Minari metadata: a contact address")
    code_permalink: str | None = option(
        None, help="Minari metadata: a link to the code that made the run (default: "
        "stepstone==VERSION)",
    )  # fmt: skip


@dataclass(frozen=True)
class Robustify:
    """robustify's options besides RobustifyConfig's."""

    run_dir: Path = option(flag="", type=Path, help=RUN_DIR)
    baselines: str = option(
        "bc,ppo", help="baselines trained on the same budget: bc, ppo (from reset), both, or none"
    )
    fresh: bool = option(
        False, help="delete the checkpoints in D/robustify/ and train from scratch (default: "
        "continue each training from its last checkpoint)",
    )  # fmt: skip
    progress: bool = option(True, flag="--no-progress", help="no status line")
    preset: str = option(
        "none", help="a bundle of the options below (one also given keeps its value): "
        "go-explore is Go-Explore's Phase 2 on Atari with a 256-256 network and --anneal linear, "
        "which with --frames 20M held Montezuma's first room from reset (README.md lists the "
        "options it sets)", names=lambda: PRESETS, choices=True,
    )  # fmt: skip


@dataclass(frozen=True)
class Evaluate:
    run_dir: Path = option(flag="", type=Path, help=RUN_DIR)
    episodes: int = option(20, help="episodes from reset")
    sticky: float | None = option(
        None, type=float,
        help="repeat-action probability (default: the one the policy was trained with)",
    )  # fmt: skip
    sticky_unit: str | None = option(
        None, shown="the training's",
        help="what a sticky repeat holds on Atari: frame (ALE's protocol) or action",
        names=lambda: STICKY_UNITS, choices=True,
    )  # fmt: skip
    seed: int = option(0, help="seeds the episodes")
    best: bool = option(
        False, help="the policy that did best in robustify's --eval-every evaluations "
        "(D/robustify/policy-best.pt) instead of the last one",
    )  # fmt: skip
    gif: Path | None = option(
        None, type=Path, shown="no GIF", help="write a GIF of the first episode"
    )
    max_steps: int = option(
        0, help="actions an episode may take (default: the training's --max-steps, else twice "
        "the demonstration's and 20 more); e.g. 120 for MiniGrid-MultiRoom-N6-v0's limit",
    )  # fmt: skip
    greedy: bool = option(
        False, help="take the policy's most probable action at each step instead of sampling "
        "one (sticky actions still apply)",
    )  # fmt: skip


@dataclass(frozen=True)
class Label:
    dataset_id: str = option(
        flag="", help="a Minari dataset (e.g. one written by stepstone export)"
    )
    labelled: float = option(0.1, help="fraction of episodes with actions")
    out_id: str | None = option(
        None, shown="not written", help="write the relabelled dataset under this id"
    )
    epochs: int = option(200, help="training epochs of the inverse dynamics model")
    seed: int = option(0, help="seeds the split and the training")


def _web_args(args: argparse.Namespace) -> dict:
    """--web-reset, --web-values and --web-task as the web app's arguments; the values file is
    read now and kept with the run, so that its trajectories replay after the file changes."""
    out: dict = {}
    if args.web_reset:
        out["reset"] = args.web_reset
    if args.web_task:
        out["task"] = args.web_task
    elif args.env.startswith("web:") and args.goal:  # the goal, said in words
        kind, _, query = args.goal.strip().partition(":")
        if kind == "text":
            out["task"] = f"Reach a page that shows {query.strip()!r}."
        elif kind == "css":
            out["task"] = f"Reach a page with an element matching {query.strip()!r}."
    if args.web_values is not None:
        try:
            out["values"] = json.loads(args.web_values.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(
                f"--web-values {args.web_values}: cannot read it as JSON ({e})"
            ) from None
    if out and not args.env.startswith("web:"):
        raise ConfigError("--web-* options apply to web:URL environments only")
    return out


def cmd_explore(args: argparse.Namespace) -> int:
    from . import report, runner

    env = args.env
    if env.startswith("textworld:"):  # the run must find its game from any directory
        env = "textworld:" + str(Path(env.partition(":")[2]).resolve())
    llm = build(ModelOptions, args).settings(args.llm_model)
    env_args = {**values(ExploreConfig, args)["env_args"], **_web_args(args)}
    config = build(ExploreConfig, args, env=env, env_args=env_args, llm_model=llm.model)
    if not config.uses_model:  # a model named (or in the environment) but not asked
        config = replace(config, llm_model=None)
    options = build(RunOptions, args, llm=llm if config.uses_model else None)
    run_dir = args.run_dir or _default_run_dir(args.env, args.seed)
    check_workers(options.workers, options.backend)
    check_backend(config, options)
    # Validate the environment and cells (and a --from-policy policy) before anything is
    # written to disk.
    from .shards import check_shardable
    from .worker import Worker

    worker = Worker.from_config(config)
    try:
        check_shardable(config, worker)  # adaptive cells: refused before the run directory
        worker.policy_return()  # --from-policy: a missing or unfitting policy, said now
        if config.stop_on_success and worker.root().success is None:
            from .envs.generic import INFO_GOALS

            keys = " or ".join(f"info[{k!r}]" for k in INFO_GOALS)
            note = f"{config.env} has no goal stepstone knows; unless it sets {keys}"
            print(f"stepstone: note: {note}, --stop-on-success needs --goal", file=sys.stderr)
    finally:
        worker.close()
    if config.uses_model:
        llm.check()  # nothing listening, or no such model: said now, before a run is written
    store = runner.open_run(config, run_dir)  # a run already there with this config goes on
    return _run(store, options, report, budget=not _spent(store, options.frames, "--frames"))


def cmd_resume(args: argparse.Namespace) -> int:
    from . import report, runner

    store = runner.open_run(None, args.run_dir)
    options = build(RunOptions, args)
    if options.frames is None:
        options.frames = int(store.meta("budget", "0"))
    asked = "--frames" if args.frames is not None else "its budget of"
    spent = _spent(store, options.frames, asked)
    check_workers(options.workers, options.backend)
    config = store.config
    check_backend(config, options)
    if config.uses_model:
        stored = store.meta("llm_url"), store.meta("llm_budget")
        options.llm = build(ModelOptions, args).settings(config.llm_model, *stored)
    return _run(store, options, report, budget=not spent)


def _spent(store, frames: int, asked: str) -> bool:
    """Whether the run is already at ``frames``, said so; not an error: the run stands, and so
    does its budget (``explore`` again into its directory with a smaller --frames lowered it)."""
    done = int(store.state().get("frames", 0))
    if frames > done:
        return False
    print(
        f"nothing to run: {store.path} is at {done:,} frames, past {asked} {frames:,}; give a "
        "larger --frames to explore on",
        file=sys.stderr,
    )
    return True


def _run(store, options: RunOptions, report, budget: bool = True) -> int:
    """Run (or go on with) a run to ``options.frames``, kept as its budget unless ``budget``
    is false (a resume asked for fewer frames than it has)."""
    from .runner import run

    if budget:
        store.set_meta("budget", str(options.frames))
    llm = options.llm
    if llm is not None:
        if llm.url:
            store.set_meta("llm_url", llm.stored_url)  # without the credentials it may carry
        if llm.budget is not None:
            store.set_meta("llm_budget", str(llm.budget))
    try:
        last = run(store, options)
        if last.get("interrupted"):
            print(
                f"interrupted at {last['frames']:,} frames, everything merged is committed; "
                f"continue with: stepstone resume {store.path}",
                file=sys.stderr,
            )
            return 130
        if last.get("stopped") == GOAL_REACHED:
            print(f"stopped: the goal was reached at {last['success_frame']:,} frames "
                  "(--stop-on-success; that answer stands, resuming does not explore on: to go "
                  "past the goal, explore again without --stop-on-success)",
                  file=sys.stderr)  # fmt: skip
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

    _check_file(args.gif, "--gif", suffix=".gif")
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
    from .envs.mujoco import headless_gl

    config = store.config
    shape = store.state().get("cell_shape")
    if shape is not None and worker.adaptive is not None:
        worker.adaptive.set_shape(tuple(shape))
    best = archive.entry(archive.best())
    entries = list(archive) if args.cell == "all" else [best]
    if args.cell == "goal":
        reached = archive.goal_entry()
        if reached is None:
            raise ConfigError(f"no trajectory of {args.run_dir} reaches its goal: --cell best")
        best = archive.entry(reached)
        entries = [best]
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
        headless_gl()
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
    _check_file(args.out, "--out")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port is a TCP port, 0 to 65535 (0: any free one), not {args.port}")
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
    if args.format == "minari" and (args.pairs or args.step_pairs or args.hindsight):
        raise ConfigError(
            "--pairs, --step-pairs and --hindsight make chat data: use --format jsonl or parquet"
        )
    archive = store.load_archive()
    how = export.resolve(archive, args.select)
    chosen = export.episodes(store, how, args.k, archive)
    start = export.start_score(archive)
    if how == "best" and chosen and chosen[0].score <= start:  # what robustify refuses
        print(
            f"warning: the best trajectory scores {chosen[0].score:g}, no more than the start "
            f"state's {start:g} ({len(chosen[0].actions)} step(s)): explore longer or give a "
            "--goal, or export every cell's trajectory with --select all-cells",
            file=sys.stderr,
        )
    if args.format == "minari":
        from .export import minari

        name = re.sub(r"[^A-Za-z0-9_]+", "_", config.env).strip("_")
        dataset_id = args.dataset_id or f"stepstone/{name}-{how}-v0"
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
        from .llm.settings import Settings

        cache = store.path / "llm_cache.sqlite"
        labeller = Settings(args.llm_url, args.llm_model, cache=cache).connect()
    out = args.out or store.path / f"{how}.{args.format}"
    _check_out(out, args.overwrite)
    written = jsonl.export(
        config,
        chosen,
        out,
        args.format,
        args.pairs,
        labeller,
        relabel=args.hindsight,
        steps=args.step_pairs,
    )
    for path, rows in written.items():
        print(f"{rows} records -> {path}")
    return 0


def _check_file(path: str | Path | None, option: str, example: str = "", suffix: str = "") -> None:
    """A file a command will write (--gif, --out), checked before the work: a path that cannot
    be written is said at once, not as a traceback once the frames are drawn. A `suffix` the
    file's format needs is asked for: a GIF named x.png misleads what opens it by name."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        e_g = f", e.g. {path / example}" if example else ""
        raise ConfigError(f"{option} {path} is a directory; give a file{e_g}")
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write {option} {path}: {path.parent} is not a directory")
    if suffix and path.suffix.lower() != suffix:
        raise ConfigError(
            f"{option} {path}: the file is a {suffix[1:].upper()}; "
            f"name it {path.with_suffix(suffix)}"
        )


def _check_out(out: Path, overwrite: bool) -> None:
    """An export's file: as _check_file, and refused if it exists without --overwrite."""
    _check_file(out, "--out", "best.jsonl")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; add --overwrite to replace it, or give another --out")


def _clear_dataset(dataset_id: str, overwrite: bool) -> None:
    """A Minari id already taken is refused, or with --overwrite deleted first."""
    try:
        import minari
    except ImportError:
        raise ConfigError("--format minari needs Minari: pip install 'stepstone[minari]'") from None
    if importlib.util.find_spec("pyarrow") is None:  # Minari installed without its arrow extra
        raise ConfigError(
            "--format minari needs Minari's pyarrow, not installed: pip install 'stepstone[minari]'"
            " (or 'minari[arrow]')"
        )
    from minari.dataset.minari_dataset import parse_dataset_id
    from minari.storage.local import get_dataset_path

    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError):  # TypeError: no -vN, which Minari needs
        raise ConfigError(
            f"{dataset_id!r} is not a Minari dataset id: give --dataset-id as "
            "(namespace/)name-vN, e.g. stepstone/pong-best-v0 (a namespace has 2+ characters)"
        ) from None
    # Minari's own test of a dataset's presence (local.load_dataset); listing every local
    # dataset instead fails on any malformed directory a user has under ~/.minari.
    if not (get_dataset_path(dataset_id) / "data").exists():
        return
    if not overwrite:
        raise ConfigError(
            f"a Minari dataset {dataset_id!r} exists; add --overwrite to replace it, or give "
            "another --dataset-id"
        )
    minari.delete_dataset(dataset_id)


@contextlib.contextmanager
def stop_requests() -> Iterator[Callable[[], bool]]:
    """A function that turns true once SIGTERM or Ctrl-C arrives, for a training that
    checkpoints before it stops (a kill by a scheduler loses nothing). A second Ctrl-C
    interrupts at once. Outside the main thread signals cannot be caught: never true."""
    import signal
    import threading

    asked: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def ask(signum, frame):
        asked.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the second Ctrl-C

    before = {k: signal.signal(k, ask) for k in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: bool(asked)
    finally:
        for k, handler in before.items():
            signal.signal(k, handler)


def cmd_robustify(args: argparse.Namespace) -> int:
    from .learn.robustify import Stopped, robustify
    from .progress import StatusLine
    from .store.sqlite import RunStore

    store = RunStore.open(args.run_dir)
    if not 0 <= args.sticky < 1:
        raise ConfigError(f"--sticky is a probability in [0, 1), not {args.sticky}")
    cfg = with_preset(build(RobustifyConfig, args), args.preset)
    counts = (cfg.step, cfg.start_window, cfg.entropy_boost, cfg.max_steps, cfg.lag)
    if min(cfg.entropy, cfg.sil, *counts) < 0:
        raise ConfigError("--step-back, --entropy, --sil, --start-window, --entropy-boost, "
                          "--max-steps and --lag must be >= 0")  # fmt: skip
    if not 0 < cfg.advance_rate <= 1:
        raise ConfigError(f"--advance-rate is a share in (0, 1], not {cfg.advance_rate}")
    if not 0 < cfg.gamma <= 1:
        raise ConfigError(f"--gamma is a discount in (0, 1], not {cfg.gamma}")
    if min(cfg.demos, cfg.threads, cfg.envs) < 1:
        raise ConfigError("--demos, --threads and --envs must be >= 1")
    if cfg.eval_every and cfg.eval_episodes < 1:
        raise ConfigError("--eval-every needs --eval-episodes >= 1")
    baselines = set() if args.baselines == "none" else set(args.baselines.split(","))
    if baselines - {"bc", "ppo"}:
        raise ConfigError(f"--baselines takes bc, ppo, bc,ppo or none, not {args.baselines!r}")
    status = StatusLine()
    try:
        with stop_requests() as stop:
            result = robustify(store, cfg, baselines, status=status if args.progress else None,
                               fresh=args.fresh, log=status.note, stop=stop)  # fmt: skip
    except Stopped as e:
        status.close()
        print(f"stepstone: robustify: {e}, its checkpoint written to {store.path / 'robustify'}; "
              f"'stepstone robustify {store.path}' continues it", file=sys.stderr)  # fmt: skip
        return 130
    finally:
        status.close()
    (store.path / "robustify" / "result.json").write_text(json.dumps(result, indent=1))
    print(
        f"demonstration: {result['demo_length']} actions, return {result['demo_return']:g}"
        + (f" (and {len(result['demos']) - 1} more)" if len(result["demos"]) > 1 else "")
        + f"; start moved {len(result['start_moves'])} times"
        + (", to the reset state" if result["reached_reset"] else "")
    )
    used = result["config"]  # the options a continued training was begun with
    per = f" per {result['sticky_unit']}" if result["sticky_unit"] else ""
    print(f"under noise (sticky actions {used['sticky']:g}{per}), "
          f"{used['eval_episodes']} episodes from reset, "
          f"success = {result['success_criterion']}:")  # fmt: skip
    for name in ("backward", "bc", "ppo_from_reset"):
        if f"success_{name}" in result:
            print(
                f"  {name:<16} success {result[f'success_{name}']:.2f}  "
                f"mean score {result[f'score_{name}']:g}"
            )
    print(f"policy: {store.path / 'robustify' / 'policy.pt'}")
    if "best" in result:
        b = result["best"]
        print(f"best of {len(result['evaluations'])} evaluations during training (--eval-every): "
              f"success {b['success']:.2f}, mean score {b['score']:g} at {b['frames']:,} steps, "
              f"{store.path / 'robustify' / 'policy-best.pt'}; 'stepstone evaluate "
              f"{store.path} --best --seed 1' measures it on other episodes")  # fmt: skip
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .learn.evaluate import run_policy
    from .store.sqlite import RunStore

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    if args.sticky is not None and not 0 <= args.sticky < 1:
        raise ConfigError(f"--sticky is a probability in [0, 1), not {args.sticky}")
    store = RunStore.open(args.run_dir)
    if args.max_steps < 0:
        raise ConfigError(f"--max-steps must be >= 0, got {args.max_steps}")
    _check_file(args.gif, "--gif", suffix=".gif")
    r = run_policy(store, args.episodes, args.sticky, args.seed, args.gif, args.max_steps,
                   args.sticky_unit, args.best, args.greedy)  # fmt: skip
    per = f" per {r['sticky_unit']}" if r["sticky_unit"] else ""
    how = ", the most probable actions" if r["greedy"] else ""
    print(
        f"{r['episodes']} episodes from reset, sticky actions {r['sticky']:g}{per}{how}: "
        f"success {r['success']:.2f} ({r['success_criterion']}), mean score {r['score']:g}"
    )
    f = r["failures"]
    if f["episodes"]:
        line = (f"failed {f['episodes']}: {f['at_step_limit']} at the {f['step_limit']:,}-action "
                f"limit, {f['ended']} ended by the environment")  # fmt: skip
        if losses := f.get("first_life_lost"):
            line += (f"; {len(losses)} lost a life, the first at action {losses[0]:,} to "
                     f"{losses[-1]:,} (median {statistics.median_low(losses):,})")  # fmt: skip
        print(line)
    if r["frames"] is not None:  # None: a policy saved before policies recorded it
        print(f"the policy after {r['frames']:,} training steps")
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


@dataclass(frozen=True)
class Command:
    """A subcommand: what runs it, and the dataclasses whose fields are its options."""

    run: Callable[[argparse.Namespace], int]
    help: str
    parts: tuple[type, ...]
    defaults: dict[str, Any] = field(default_factory=dict)  # replacing the fields' own


COMMANDS = {
    "explore": Command(cmd_explore, "start a run",
                       (ExploreConfig, Explore, RunOptions, ModelOptions), {"frames": "1M"}),
    "resume": Command(cmd_resume, "continue a run from its last commit",
                      (Resume, RunOptions, ModelOptions)),
    "report": Command(cmd_report, "write plots and a summary of a run", (Report,)),
    "replay": Command(cmd_replay, "replay stored trajectories from their seed and check them",
                      (Replay,)),
    "migrate": Command(cmd_migrate, "convert a run directory of an older stepstone to the "
                       "current format", (Migrate,)),
    "view": Command(cmd_view, "write one HTML page to look at a run (and serve it)", (View,)),
    "export": Command(cmd_export, "write trajectories as a dataset (Minari, JSONL, Parquet)",
                      (Export,)),
    "robustify": Command(cmd_robustify, "train a policy from the best trajectory (Phase 2)",
                         (Robustify, RobustifyConfig)),
    "evaluate": Command(cmd_evaluate, "run the policy robustify saved, under sticky actions",
                        (Evaluate,)),
    "label": Command(cmd_label, "label action-free trajectories by inverse dynamics", (Label,)),
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="stepstone", description="Archive-based exploration (Go-Explore) on any environment."
    )
    parser.add_argument("--version", action="version", version=f"stepstone {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help)
        for part in command.parts:
            add_options(p, part, **command.defaults)
    return parser


def user_modules(argv: list[str] | None) -> tuple[str, ...]:
    """The modules given with ``--import``: imported before the parser is built, so that the
    selectors, cell kinds and explorers they register are among its choices and help."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--import", dest="imports", action="append", default=[])
    return tuple(pre.parse_known_args(argv)[0].imports)


def main(argv: list[str] | None = None) -> int:
    if modules := user_modules(argv):
        from .envs import import_modules

        try:
            import_modules(modules)
        except StepstoneError as e:
            print(f"stepstone: error: {e}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
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
