"""The run summary (markdown and JSON) and its curves (cells, best score, rooms vs frames).

Reads only the run directory, so it works on a finished run, a running one (SQLite readers do
not block the writer), or one that crashed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from . import envs
from .archive import Archive
from .cells.downscale import picture_text
from .charts import curves
from .config import ExploreConfig
from .errors import RunDirError
from .goals import GOAL_REACHED, Goal
from .progress import human, room_count
from .store.lock import writer
from .store.sqlite import RunStore


def places(archive: Archive) -> dict:
    """The summary's ``rooms`` (distinct (level, room) pairs: the rooms of every level) and
    ``level`` (the highest), from the metrics adapters report under those names (Atari games
    with a RAM layout); None where no entry reports them."""
    return {"rooms": archive.distinct(("level", "room")), "level": archive.highest("level")}


def summary(store: RunStore) -> dict:
    """The run's key facts as one JSON-ready dict."""
    config = store.config
    archive = store.load_archive()
    state = store.state()
    history = store.metrics()
    last = history[-1] if history else {}
    seconds = last.get("seconds", 0.0)
    frames = state.get("frames", 0)
    best = archive.best() if len(archive) else None
    success_frame = state.get("success_frame")
    # Runs written before goals were tracked: a goal applied if one was reached.
    known = state.get("goal_known", success_frame is not None) or config.goal is not None
    return {
        "env": config.env,
        "cells_kind": config.cells,
        "cells_resolved": store.meta("cells_resolved"),  # what auto meant; None if not auto
        "cell_params": dict(config.cell_params),  # what the user pinned (--cell-param)
        "score_cells": config.score_cells,  # the score is part of each key (--score-cells)
        # Adaptive cells: their current parameters and every re-choice (frames, shape, sampled
        # states, archive size before and after), cells/schedule.py; None for other kinds.
        "cell_shape": state.get("cell_shape"),
        "cell_choices": store.extra("cell_choices"),
        "selector": config.selector,
        "selector_params": dict(config.selector_params),  # --selector-param
        "seed": config.seed,
        "frames": frames,
        "frames_budget": int(store.meta("budget", "0")),
        "writer": writer(store.path),  # another process running it now (its last commit here)
        "seconds": seconds,
        "frames_per_second": round(frames / seconds, 1) if seconds > 0 else None,
        "explorations": state.get("explorations", 0),
        "iterations": last.get("iteration", 0),
        "cells": len(archive),
        "best_score": float(archive.score[best]) if best is not None else 0.0,
        "best_length": int(archive.length[best]) if best is not None else 0,
        "lowest_score": float(archive.score[: len(archive)].min()) if len(archive) else 0.0,
        **places(archive),
        "goal": Goal.parse(config.goal).describe(known),
        "goal_words": store.meta("goal_words") if config.goal is None else None,
        "success": (success_frame is not None) if known else None,
        "frames_to_success": success_frame,
        "goal_cell": goal_cell(archive),
        "stopped_on_success": last.get("stopped") == GOAL_REACHED,
        "run_dir": str(store.path),
        # Worker processes that died and were replaced, the tasks they held that were run
        # again, and tasks given up after killing three workers (executors/processes.py).
        "workers_replaced": last.get("workers_replaced", 0),
        "tasks_reissued": last.get("reissued", 0),
        "tasks_failed": last.get("tasks_failed", 0),
        # Returns by replay that reached another cell than the chosen one (worker.py).
        "returns_missed": state.get("missed_returns", 0),
        **policy_returns(config, state),
        **llm_summary(config, store, last),
    }


def policy_returns(config: ExploreConfig, state: dict) -> dict:
    """With --from-policy: the policy, the noise, and the share of returns that reached the
    chosen cell (learn/returner.py); nothing for runs that return by restoring."""
    if config.from_policy is None:
        return {}
    n = state.get("explorations", 0)
    rate = 1 - state.get("missed_returns", 0) / n if n else 0.0
    return {"from_policy": config.from_policy, "sticky": config.sticky,
            "return_success": round(rate, 4)}  # fmt: skip


# The roles' counts of replies without a readable answer (explorers/llm.py, selectors/ige.py,
# llm/judge.py, selectors/lfg.py).
FALLBACK_KEYS = ("llm_act_fallbacks", "llm_select_fallbacks", "llm_judge_fallbacks",
                 "llm_score_fallbacks")  # fmt: skip


def goal_cell(archive) -> dict | None:
    """The best entry that reaches the goal: its return may be below the best score (every
    step costs 1 on MountainCar), so it is shown on its own."""
    i = archive.goal_entry()
    if i is None:
        return None
    e = archive.entry(i)
    return {"score": e.score, "length": e.length, "found_frame": e.found_frame}


def past(best: float) -> str:
    """The round number just above ``best`` (5,900 -> 6000, 21 -> 30, 0 -> 1, -183 -> -100):
    the example goal a run without one is shown, one step past what it found."""
    step = 10.0 ** math.floor(math.log10(abs(best))) if best else 1.0
    value = (math.floor(best / step) + 1) * step
    return str(int(value)) if value.is_integer() else f"{value:.3g}"


def success_row(s: dict) -> str:
    """Whether and when the goal was met, in words: report.md, the summary line and the
    view page all say it this way."""
    if s["success"] is None:
        if s.get("lowest_score", 0) < 0 and s["best_length"] == 0:  # Pendulum, CliffWalking
            return (
                "no goal (nothing found scores above the reset state's 0, so a score goal "
                "is met at once or never; --goal terminated asks for an episode's end)"
            )
        example = past(s.get("best_score") or 0)
        return f"no goal (give one with --goal, e.g. --goal 'score>={example}')"
    goal = f"{s['goal']}: {s['goal_words']}" if s.get("goal_words") else s["goal"]
    if not s["success"]:
        return f"not reached (goal: {goal})"
    text = f"yes, at {s['frames_to_success']:,} frames (goal: {goal})"
    cell = s["goal_cell"]
    if cell is not None:
        text += (f"; best goal trajectory: score {cell['score']:g}, {cell['length']} steps, "
                 f"found at {cell['found_frame']:,} frames")  # fmt: skip
    if s["stopped_on_success"]:
        text += "; the run stopped there (--stop-on-success)"
    if cell is not None and cell["length"] == 0:  # score>=-20 where every step costs
        text += (
            "; the reset state meets this goal, so every run reaches it at once (for "
            "an episode's end, --goal terminated)"
        )
    return text


def best_trajectory(s: dict) -> str:
    """The best entry's length, or why it is the reset state: where every step costs (Pendulum,
    CliffWalking), nothing scores above the start, which a bare "0 steps" hides."""
    if s["best_length"] or s["cells"] <= 1:
        return f"trajectory of {s['best_length']} steps"
    return "the reset state: no trajectory found scores above it"


def _values(shape: tuple | list) -> str:
    """A shape as a tuple, its first values only when long (a float picture's thousands)."""
    shape = tuple(shape)
    if len(shape) <= 16:
        return str(shape)
    return f"({', '.join(map(str, shape[:8]))}, ... {len(shape):,} values)"


def shape_row(s: dict) -> str:
    """The adaptive cells' shape and when it was chosen, in words where the run stored them
    (``text``: a float's bits and a picture's width are otherwise one bare tuple)."""
    shape = tuple(s["cell_shape"])
    choices = s.get("cell_choices") or []
    bare = _values(shape)
    if (s.get("cells_resolved") or s.get("cells_kind")) == "dynamic":  # (width, height, levels)
        bare = picture_text(shape)
    if not choices:
        return f"{bare} (not re-chosen yet)" if s.get("cell_choices") is not None else bare

    def said(c: dict) -> str:
        return c.get("text") or _values(c["shape"])

    def when(c: dict) -> str:
        return (f"at {c['frames']:,} frames from {c['samples']:,} states "
                f"({c['cells_before']:,} -> {c['cells']:,} cells)")  # fmt: skip

    last = choices[-1]
    now = said(last) if tuple(last["shape"]) == shape else bare
    if len(choices) == 1:
        return f"{now}; chosen once, {when(last)}"
    seen = ", ".join(f"{said(c)} {when(c)}" for c in choices[-3:])
    return f"{now}; {len(choices)} choices, the last {min(3, len(choices))}: {seen}"


def llm_summary(config, store: RunStore, last: dict) -> dict:
    """Model calls, tokens and fallbacks of runs with a language model in the loop."""
    if not getattr(config, "uses_model", False):
        return {}
    out = {"llm_model": config.llm_model, "explorer": config.explorer,
           "llm_judge": config.llm_judge}  # fmt: skip
    out.update({k: v for k, v in last.items() if k.startswith("llm_")})
    ledger = store.path / "llm_cache.sqlite"  # counts calls that ended after the last commit
    if ledger.exists():
        from .llm.cache import Cache

        totals = Cache(ledger).totals()
        totals.pop("reserved", None)
        out.update(totals)
        out["llm_tokens"] = totals.get("llm_prompt_tokens", 0) + totals.get(
            "llm_completion_tokens", 0
        )
    for k in ("llm_calls", "llm_cached", "llm_tokens", *FALLBACK_KEYS, "llm_judge_rejected"):
        out.setdefault(k, 0)
    budget = store.meta("llm_budget")
    out["llm_budget"] = int(budget) if budget else None
    out["stopped"] = last.get("stopped")
    return out


def cells_row(s: dict) -> str:
    """The cell kind and its pinned parameters: ``auto: dynamic; levels=16``, and ``+ score``
    when the score is part of the key (what auto meant is not stored for older runs)."""
    kind = s["cells_kind"]
    if s.get("cells_resolved"):
        kind = f"{kind}: {s['cells_resolved']}"
    row = _with_params(kind, s.get("cell_params"))
    return f"{row} + score" if s.get("score_cells") else row


def _with_params(name: str, params: dict | None) -> str:
    pinned = ", ".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
    return f"{name}; {pinned}" if pinned else name


def markdown(s: dict) -> str:
    rows = [
        ("environment", s["env"]),
        ("cells", f"{s['cells']:,} ({cells_row(s)})"),
        *([("cell shape", shape_row(s))] if s.get("cell_shape") is not None else []),
        ("selector", _with_params(s["selector"], s.get("selector_params"))),
        (
            "frames",
            f"{s['frames']:,} of {s['frames_budget']:,}"
            + (f" (in progress: {s['writer']})" if s.get("writer") else ""),
        ),
        ("frames/s", f"{fps:,.0f}" if (fps := s["frames_per_second"]) else "n/a"),
        ("best score", f"{s['best_score']:g} ({best_trajectory(s)})"),
        ("rooms", s["rooms"] if s["rooms"] is not None else "n/a"),
        ("level", s["level"] if s["level"] is not None else "n/a"),
        ("success", success_row(s)),
    ]
    if s["workers_replaced"] or s["tasks_failed"]:
        faults = (f"{s['workers_replaced']} workers replaced, {s['tasks_reissued']} tasks re-run, "
                  f"{s['tasks_failed']} given up")  # fmt: skip
        rows.append(("worker faults", faults))
    if "return_success" in s:
        rows.append(("returns by policy", f"{s['return_success']:.0%} of "
                     f"{s['explorations']:,} reached the chosen cell ({s['from_policy']}, "
                     f"sticky {s['sticky']:g}); the rest explored nothing"))  # fmt: skip
    elif s["returns_missed"]:
        rows.append(("returns missed", f"{s['returns_missed']:,} of {s['explorations']:,} "
                     "returns by replay reached another cell than the chosen one (the "
                     "environment does not replay the same); not explored from"))  # fmt: skip
    if "llm_calls" in s:
        rows.append(("model", f"{s['llm_model']} (explorer {s['explorer']})"))
        rows.append(("model calls", f"{s['llm_calls']} ({s['llm_cached']} more from the cache), "
                     f"{s['llm_tokens']:,} tokens"))  # fmt: skip
        rows.append(("fallbacks", f"{s['llm_act_fallbacks']} actions, "
                     f"{s['llm_select_fallbacks']} selections, {s['llm_judge_fallbacks']} "
                     f"verdicts, {s['llm_score_fallbacks']} LFG votes (replies without a "
                     "readable answer)"))  # fmt: skip
        if s["llm_judge"]:
            rows.append(("judge", f"{s['llm_judge_rejected']} new states rejected"))
        if s.get("stopped"):
            rows.append(("stopped", s["stopped"]))
    lines = [f"# stepstone run: {s['env']}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "![progress](progress.svg)", ""]
    return "\n".join(lines)


def brief(s: dict) -> str:
    """What a run found, where its files are, and the commands that come next (for people;
    report.md and summary.json hold the full table)."""
    d = s["run_dir"]
    speed = f" ({s['frames_per_second']:,.0f} frames/s)" if s["frames_per_second"] else ""
    where = f" in {room_count(s['rooms'])}" if s["rooms"] is not None else ""
    level = f", level {s['level']} reached" if s["level"] else ""
    # With a goal reached, the trajectory to show and to learn from is the goal's (robustify's
    # demonstration): with a cost per step (Acrobot, MountainCar) the best score is the start.
    show = (f"--cell goal --gif {d}/goal.gif", "goal") if s["success"] else (
        f"--gif {d}/best.gif", "best")  # fmt: skip
    return "\n".join([
        f"{s['env']}: {s['frames']:,} frames{speed}, {s['cells']:,} cells{where}{level}, "
        f"best score {s['best_score']:g} ({best_trajectory(s)})",
        f"goal: {success_row(s)}",
        f"run directory: {d} (report.md, summary.json, progress.svg)",
        *([f"in progress: another process is running it ({s['writer']}); this is its last commit"]
          if s.get("writer") else []),
        "next:",
        f"  stepstone view {d} --serve    # curves, the archive map, every cell",
        f"  stepstone replay {d} {show[0]}",
        *_resume(s),
        *([f"  stepstone export {d} --format jsonl    # chat records for an agent"]
          if envs.shows_text(s["env"]) else
          [f"  stepstone export {d} --format minari",
           f"  stepstone robustify {d}    # a policy from the {show[1]} trajectory"]),
    ])  # fmt: skip


def _resume(s: dict) -> list[str]:
    """The resume line of ``brief``: none for a run under way or stopped at its goal (that
    answer stands), on to its budget for a run stopped short of it, else twice the budget."""
    d, budget = s["run_dir"], s["frames_budget"]
    if s.get("writer") or s["stopped_on_success"]:
        return []
    if s["frames"] < budget:
        return [f"  stepstone resume {d}    # on to its budget of {human(budget)} frames"]
    return [f"  stepstone resume {d} --frames {human(2 * budget)}"]


def plot(store: RunStore, path: Path) -> Path | None:
    """One SVG with cells, best score and (where known) rooms against frames."""
    history = store.metrics()
    if not history:
        return None
    path.write_text(curves(history) + "\n")
    return path


def write(store: RunStore) -> dict:
    """Write report.md, summary.json and progress.svg into the run directory."""
    s = summary(store)
    try:
        plot(store, store.path / "progress.svg")
        (store.path / "report.md").write_text(markdown(s))
        (store.path / "summary.json").write_text(json.dumps(s, indent=2) + "\n")
    except OSError as e:
        raise RunDirError(
            f"cannot write the report into {store.path} ({e.strerror}); free space or fix its "
            "permissions"
        ) from None
    return s
