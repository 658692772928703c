"""The live progress display of a run: one status line on a terminal, log lines elsewhere.

The line is fitted to the terminal's width: at 80 columns it still shows frames done of the
budget, a bar, frames/s, cells, best score, the goal's state and the time left; wider
terminals add the environment, rooms and level, workers and model calls. When output goes to a
file or a CI log, one plain unwrapped line is written every ``log_every`` seconds instead.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections import deque
from typing import TextIO

BAR_MIN, BAR_MAX = 10, 40
RATE_WINDOW = 60.0  # seconds the speed is measured over


def human(n: float) -> str:
    """Three significant digits and a unit: 1.23M, 12.3k, 950."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            v = n / size
            return f"{v:.3g}{unit}" if v < 1000 else f"{v:.0f}{unit}"
    return f"{n:.0f}"


def duration(seconds: float) -> str:
    s = int(round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def goal_state(m: dict) -> str:
    """The goal's state as the report judges it (the first frame at which it was reached)."""
    frame = m.get("success_frame")
    if frame is not None:
        return f"goal at {human(frame)}"
    return "goal no" if m.get("goal_known", True) else "no goal"


def rate(m: dict, first: dict) -> float | None:
    """Frames per second since row ``first``, None before any."""
    dt = m.get("seconds", 0.0) - first.get("seconds", 0.0)
    df = m["frames"] - first["frames"]
    return df / dt if dt > 0 and df > 0 else None


def llm_state(m: dict) -> str:
    """Model calls, answers from the cache, tokens and the roles' fallbacks ("" without a
    model)."""
    if "llm_calls" not in m:
        return ""
    fallbacks = sum(v for k, v in m.items() if k.startswith("llm_") and k.endswith("_fallbacks"))
    return (f"{m['llm_calls']} llm calls ({m.get('llm_cached', 0)} cached), "
            f"{human(m.get('llm_tokens', 0))} tokens, {fallbacks} fallbacks")  # fmt: skip


def room_count(n: int) -> str:
    return f"{n} room{'s' * (n != 1)}"


def reserved(total: int, env: str, workers: int) -> dict[str, int]:
    """The widest each field gets in a run, so that the bar and the set of fields shown do not
    jump from one update to the next as numbers grow."""
    budget = len(human(total))
    return {
        "env": len(env), "frames": max(budget, 5) + 1 + budget, "speed": len("12.3k/s"),
        "cells": len("123456 cells"), "rooms": len("99 rooms"), "level": len("level 9"),
        "best": len("best 12345"), "goal": len(goal_state({"success_frame": 10**7})),
        "workers": len(f"{workers}/{workers} workers"),
        "llm": len("12345 llm calls (12345 cached), 12.3M tokens, 123 fallbacks"),
        "eta": len("ETA 12:34:56"),
    }  # fmt: skip


def line(m: dict, total: int, first: dict, width: int | None, env: str = "", workers=1) -> str:
    """The status line for metrics row ``m``; ``width`` None: every field and no bar (logs)."""
    speed = rate(m, first)
    eta = duration(max(total - m["frames"], 0) / speed) if speed else "--:--"
    best = m.get("best_score", 0.0)
    fields = {  # in display order; the required ones are what an 80-column line keeps
        "env": env,
        "bar": "",
        "frames": f"{human(m['frames'])}/{human(total)}",
        "speed": f"{human(speed or 0)}/s",
        "cells": f"{m['cells']} cells",
        "rooms": room_count(m["rooms"]) if m.get("rooms") is not None else "",
        "level": f"level {m['level']}" if m.get("level") is not None else "",
        "best": f"best {best:g}" if abs(best) < 1e5 else f"best {human(best)}",
        "goal": goal_state(m),
        "workers": f"{m.get('workers', workers)}/{workers} workers",
        "llm": llm_state(m),
        "eta": f"ETA {eta}",
    }
    optional = ("rooms", "level", "workers", "llm", "env")  # added in this order while they fit
    keep = {"frames", "speed", "cells", "best", "goal", "eta"}
    if width is None:
        keep |= set(optional)
        fields["frames"] += " frames"
    else:
        room = reserved(total, env, workers)
        used = sum(room[k] + 1 for k in keep) + BAR_MIN
        for name in optional:
            if fields[name] and used + room[name] + 1 <= width - 1:
                keep.add(name)
                used += room[name] + 1
        bar_width = min(BAR_MAX, width - 1 - used + BAR_MIN)
        if bar_width >= BAR_MIN:
            done = min(max(m["frames"] / total, 0.0), 1.0) if total else 1.0
            filled = int(done * bar_width)
            fields["bar"] = "#" * filled + "-" * (bar_width - filled)
            keep.add("bar")
    text = " ".join(v for k, v in fields.items() if k in keep and v)
    return text if width is None else text[: width - 1]


class Progress:
    """The progress of one run session: ``update`` with each metrics row, ``close`` at the end."""

    def __init__(self, env: str, total: int, workers: int, enabled: bool = True, log_every=30.0,
                 stream: TextIO | None = None):  # fmt: skip
        self.env, self.total, self.workers = env, total, workers
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.live = enabled and self.stream.isatty()
        self.log_every = log_every
        self._last_log = -float("inf")
        self._recent: deque[dict] = deque()  # this session's rows of the last RATE_WINDOW s
        self._shown = ""

    def _line(self, m: dict, width: int | None) -> str:
        return line(m, self.total, self._recent[0], width, self.env, self.workers)

    def _record(self, m: dict) -> None:
        """Keep the rows of the last ``RATE_WINDOW`` seconds: the speed and the time left are
        measured over them, not the session, so that a run stopped a while (Ctrl-Z, SIGSTOP)
        and continued, or slowing as its archive grows, shows what it does now."""
        recent = self._recent
        if recent and recent[-1] is m:
            return
        recent.append(m)
        now = m.get("seconds", 0.0)
        while len(recent) > 2 and now - recent[0].get("seconds", 0.0) > RATE_WINDOW:
            recent.popleft()  # (the row before is kept: a speed right after a pause)

    def update(self, m: dict) -> None:
        if not self.enabled:
            return
        self._record(m)
        if self.live:
            self._shown = self._line(m, shutil.get_terminal_size().columns)
            self.stream.write("\r\x1b[K" + self._shown)
            self.stream.flush()
        elif time.monotonic() - self._last_log >= self.log_every:
            self._last_log = time.monotonic()
            print(self._line(m, None), file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A message above the status line (unwrapped: a note often ends in a command to copy)."""
        if not self.enabled:
            return
        if self.live:
            self.stream.write(f"\r\x1b[K{text}\n{self._shown}")
            self.stream.flush()
        else:
            print(text, file=self.stream, flush=True)

    def close(self, m: dict) -> None:
        if not self.enabled:
            return
        if not self.live:
            self._last_log = -float("inf")
        self.update(m)
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


class StatusLine:
    """A one-line status that other code words itself (Phase 2's training): rewritten in
    place at most ``every`` seconds on a terminal, else logged every ``log_every`` seconds."""

    def __init__(self, stream: TextIO | None = None, every: float = 1.0, log_every: float = 30.0):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.every = every if self.live else log_every
        self._last = -float("inf")
        self._shown = False

    def __call__(self, text: str) -> None:
        if time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()
        if self.live:
            width = shutil.get_terminal_size().columns
            self.stream.write("\r\x1b[K" + text[: width - 1])
            self._shown = True
        else:
            print(text, file=self.stream)
        self.stream.flush()

    def note(self, text: str) -> None:
        """A message on a line of its own, above the status."""
        self.stream.write(("\r\x1b[K" if self._shown else "") + text + "\n")
        self._shown = False
        self._last = -float("inf")
        self.stream.flush()

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False
