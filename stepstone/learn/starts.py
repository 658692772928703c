"""Where the backward algorithm starts its episodes on one demonstration, and when that moves.

Two rules. ``span == 0``, stepstone's first: every episode starts at one point, which moves
``step`` actions back once ``rate`` of the last ``judge`` episodes from it matched the
demonstration. ``span > 0``, the rule of the papers' code: episodes start at points spread
over a window of ``span`` actions behind the current start, and the window moves where the
success measured at each point says it can (below).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Salimans & Chen's code starts a fifth of the episodes anywhere between a worker's point and
# the end of the demonstration (openai/atari-reset, atari_reset/wrappers.py,
# ReplayResetEnv.__init__, frac_sample=0.2; the same in Go-Explore's fork).
SPREAD = 0.2
# With nothing to move back to, the window moves forward this far (ResetManager.proc_infos).
FORWARD = 100


@dataclass
class Starts:
    """The start point of one demonstration of ``length`` actions."""

    length: int
    step: int
    rate: float
    judge: int  # span 0: recent episodes judged at the start point
    span: int = 0
    start: int = -1  # the latest point episodes start from (-1: set from length)
    recent: list[bool] = field(default_factory=list)
    success: dict[int, float] = field(default_factory=dict)  # span > 0: rate at each point
    wins: dict[int, list[int]] = field(default_factory=dict)  # this period's [wins, episodes]

    def __post_init__(self) -> None:
        if self.start < 0:
            first = self.length - 1 if self.span else self.length - self.step
            self.start = max(0, first)

    def sample(self, rng: np.random.Generator) -> int:
        """The point an episode starts from. With a window, as in Salimans & Chen's workers
        (ReplayResetEnv.reset): a point of the window behind the start, or with probability
        SPREAD any point from there to the demonstration's end."""
        if not self.span:
            return self.start
        point = int(rng.integers(max(0, self.start - self.span + 1), self.start + 1))
        if rng.random() < SPREAD:
            point = int(rng.integers(point, self.length))
        return point

    def record(self, point: int, matched: bool) -> bool:
        """An episode from ``point`` ended; True if the start point moved (span 0 only: a
        window moves in ``update``)."""
        if self.span:
            w = self.wins.setdefault(point, [0, 0])
            w[0] += matched
            w[1] += 1
            return False
        if point != self.start:
            return False
        self.recent = [*self.recent[-(self.judge - 1) :], matched]
        if self.start > 0 and len(self.recent) == self.judge and np.mean(self.recent) >= self.rate:
            self.start = max(0, self.start - self.step)
            self.recent = []
            return True
        return False

    def update(self) -> bool:
        """End of a period (a rollout): with a window, move it. After Go-Explore's fork of
        atari-reset (uber-research/atari-reset, atari_reset/wrappers.py,
        ResetManager.proc_infos): each point's success is its rate over this period's
        episodes (kept from earlier periods where none ran); the window's latest point goes
        to the first point at which the success summed from the demonstration's start reaches
        ``rate`` times the window's width; where none does, it moves FORWARD actions on. Our
        one change: within ``span`` of the reset state the width is that of the window cut
        there (the reference, whose workers all pile up at 0, never asks that of point 0)."""
        if not self.span:
            return False
        for point, (won, ran) in self.wins.items():
            self.success[point] = won / ran
        self.wins = {}
        total, new = 0.0, None
        for point in sorted(self.success):
            total += self.success[point]
            if total / min(self.span, point + 1) >= self.rate:
                new = point
                break
        if new is None:
            new = min(self.start + FORWARD, self.length - 1)
        moved = new != self.start
        self.start = new
        return moved

    def state(self) -> dict:
        return {"start": self.start, "recent": [bool(x) for x in self.recent],
                "success": [[p, r] for p, r in sorted(self.success.items())],
                "wins": [[p, w, n] for p, (w, n) in sorted(self.wins.items())]}  # fmt: skip

    def restore(self, state: dict) -> None:
        self.start = int(state["start"])
        self.recent = [bool(x) for x in state["recent"]]
        self.success = {int(p): float(r) for p, r in state["success"]}
        self.wins = {int(p): [int(w), int(n)] for p, w, n in state["wins"]}
