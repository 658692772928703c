"""The run summary (markdown and JSON) and its plots (cells, best score, rooms vs frames).

Reads only the run directory, so it works on a finished run, a running one (SQLite readers do
not block the writer), or one that crashed.
"""

from __future__ import annotations

import json
from pathlib import Path

from .goals import GOAL_REACHED, Goal
from .store.sqlite import RunStore


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
        "selector": config.selector,
        "seed": config.seed,
        "frames": frames,
        "frames_budget": int(store.meta("budget", "0")),
        "seconds": seconds,
        "frames_per_second": round(frames / seconds, 1) if seconds > 0 else None,
        "explorations": state.get("explorations", 0),
        "iterations": last.get("iteration", 0),
        "cells": len(archive),
        "best_score": float(archive.score[best]) if best is not None else 0.0,
        "best_length": int(archive.length[best]) if best is not None else 0,
        "rooms": archive.rooms(),
        "level": archive.max_level(),
        "goal": Goal.parse(config.goal).describe(known),
        "success": (success_frame is not None) if known else None,
        "frames_to_success": success_frame,
        "goal_cell": goal_cell(archive),
        "stopped_on_success": last.get("stopped") == GOAL_REACHED,
        "run_dir": str(store.path),
        **llm_summary(config, store, last),
    }


def goal_cell(archive) -> dict | None:
    """The best entry that reaches the goal: its return may be below the best score (every
    step costs 1 on MountainCar), so it is shown on its own."""
    i = archive.goal_entry()
    if i is None:
        return None
    e = archive.entry(i)
    return {"score": e.score, "length": e.length, "found_frame": e.found_frame}


def _success_row(s: dict) -> str:
    if s["success"] is None:
        return "no goal (give one with --goal, e.g. --goal 'score>=200')"
    if not s["success"]:
        return f"not reached (goal: {s['goal']})"
    text = f"yes, at {s['frames_to_success']:,} frames (goal: {s['goal']})"
    cell = s["goal_cell"]
    if cell is not None:
        text += (f"; best goal trajectory: score {cell['score']:g}, {cell['length']} steps, "
                 f"found at {cell['found_frame']:,} frames")  # fmt: skip
    if s["stopped_on_success"]:
        text += "; the run stopped there (--stop-on-success)"
    return text


def llm_summary(config, store: RunStore, last: dict) -> dict:
    """Model calls, tokens and fallbacks of runs with a language model in the loop."""
    if not getattr(config, "uses_model", False):
        return {}
    out = {"llm_model": config.llm_model, "explorer": config.explorer,
           "llm_judge": config.llm_judge}  # fmt: skip
    out.update({k: v for k, v in last.items() if k.startswith("llm_")})
    ledger = store.path / "llm_cache.sqlite"  # counts calls that ended after the last commit
    if ledger.exists():
        from .llm.client import Cache

        totals = Cache(ledger).totals()
        totals.pop("reserved", None)
        out.update(totals)
        out["llm_tokens"] = totals.get("llm_prompt_tokens", 0) + totals.get(
            "llm_completion_tokens", 0
        )
    for k in ("llm_calls", "llm_cached", "llm_tokens", "llm_act_fallbacks",
              "llm_select_fallbacks"):  # fmt: skip
        out.setdefault(k, 0)
    budget = store.meta("llm_budget")
    out["llm_budget"] = int(budget) if budget else None
    out["stopped"] = last.get("stopped")
    return out


def markdown(s: dict) -> str:
    rows = [
        ("environment", s["env"]),
        ("cells", f"{s['cells']} ({s['cells_kind']})"),
        ("selector", s["selector"]),
        ("frames", f"{s['frames']:,} of {s['frames_budget']:,}"),
        ("frames/s", s["frames_per_second"]),
        ("best score", f"{s['best_score']:g} (trajectory of {s['best_length']} steps)"),
        ("rooms", s["rooms"] if s["rooms"] is not None else "n/a"),
        ("level", s["level"] if s["level"] is not None else "n/a"),
        ("success", _success_row(s)),
    ]
    if "llm_calls" in s:
        rows.append(("model", f"{s['llm_model']} (explorer {s['explorer']})"))
        rows.append(("model calls", f"{s['llm_calls']} ({s['llm_cached']} more from the cache), "
                     f"{s['llm_tokens']:,} tokens"))  # fmt: skip
        rows.append(("fallbacks", f"{s['llm_act_fallbacks']} actions, "
                     f"{s['llm_select_fallbacks']} selections"))  # fmt: skip
        if s.get("stopped"):
            rows.append(("stopped", s["stopped"]))
    lines = [f"# stepstone run: {s['env']}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "![progress](progress.png)", ""]
    return "\n".join(lines)


def plot(store: RunStore, path: Path) -> Path | None:
    """One PNG with cells, best score and (where known) rooms against frames."""
    history = store.metrics()
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [m["frames"] for m in history]
    panels = [("cells", "cells"), ("best_score", "best score")]
    if any(m.get("rooms") is not None for m in history):
        panels.append(("rooms", "rooms"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (key, label) in zip(axes, panels, strict=True):
        ax.plot(frames, [m.get(key) or 0 for m in history], lw=1.6)
        ax.set_xlabel("frames")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{store.config.env} ({store.config.cells} cells, {store.config.selector})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(store: RunStore) -> dict:
    """Write report.md, summary.json and progress.png into the run directory."""
    s = summary(store)
    plot(store, store.path / "progress.png")
    (store.path / "report.md").write_text(markdown(s))
    (store.path / "summary.json").write_text(json.dumps(s, indent=2) + "\n")
    return s
