"""The live progress display of a run: a rich progress bar on a terminal, log lines elsewhere.

On a terminal the bar shows frames, frames/s, cells, rooms or levels where the environment
has them, best score and workers. When output goes to a file or CI log, one plain line is
written every ``log_every`` seconds instead, so logs stay readable.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


def human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


def describe(m: dict, workers: int) -> str:
    seconds = max(m.get("seconds", 0.0), 1e-9)
    parts = [
        f"{human(m['frames'] / seconds)} frames/s",
        f"{m['cells']} cells",
    ]
    if m.get("rooms") is not None:
        parts.append(f"{m['rooms']} rooms")
    if m.get("level") is not None:
        parts.append(f"level {m['level']}")
    parts.append(f"best {m['best_score']:g}")
    if "llm_calls" in m:
        fallbacks = sum(
            v for k, v in m.items() if k.startswith("llm_") and k.endswith("_fallbacks")
        )
        parts.append(f"{m['llm_calls']} llm calls ({m.get('llm_cached', 0)} cached), "
                     f"{human(m.get('llm_tokens', 0))} tokens, {fallbacks} fallbacks")  # fmt: skip
    parts.append(f"{m.get('workers', workers)}/{workers} workers")
    return " | ".join(parts)


class Progress:
    def __init__(self, env: str, total: int, workers: int, enabled: bool = True, log_every=30.0):
        self.env, self.total, self.workers = env, total, workers
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.live = enabled and sys.stderr.isatty()
        self.log_every = log_every
        self._last_log = 0.0
        if self.live:
            self.bar = RichProgress(
                TextColumn(f"[bold]{env}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("frames"),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=self.console,
                transient=False,
            )
            self.task = self.bar.add_task("starting", total=total)
            self.bar.start()

    def update(self, m: dict) -> None:
        if not self.enabled:
            return
        text = describe(m, self.workers)
        if self.live:
            self.bar.update(self.task, completed=min(m["frames"], self.total), description=text)
        elif time.monotonic() - self._last_log >= self.log_every:
            self._last_log = time.monotonic()
            self.console.print(
                f"{self.env}: {human(m['frames'])}/{human(self.total)} frames | {text}"
            )

    def note(self, text: str) -> None:
        if self.enabled:  # unwrapped: a note often ends in a command to copy
            self.console.print(text, soft_wrap=True)

    def close(self, m: dict) -> None:
        if self.live:
            self.update(m)
            self.bar.stop()
        elif self.enabled:
            self._last_log = 0.0
            self.update(m)
