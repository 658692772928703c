"""Does it matter how many episodes the window's rule judges at a time? A simulation of
stepstone's window (stepstone/learn/starts.py) under a fixed policy, whose success from a point
is a step function of the point: where the window settles, for 5 to 260 episodes a period.

stepstone judges the window after every rollout (512 steps: ~5 Montezuma episodes); Go-Explore's
Phase 2 every 200 steps of its 34 environments per GPU (`--steps_per_demo=200`,
atari_reset/wrappers.py, ResetManager.step), tens to hundreds of episodes. No training here:
the policy stands still, so this shows the rule's noise alone.

    python bench/window_period.py [--episodes 200000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepstone.learn.starts import Starts  # noqa: E402

# Success from a point of a 471-action demonstration (Montezuma's, bench/README.md): easy past
# the second skull jump, hard on the floor before it, harder before the key.
PROFILE = ((250, 0.5), (200, 0.12), (0, 0.03))


def success(point: int) -> float:
    return next(p for low, p in PROFILE if point >= low)


def settle(per_period: int, episodes: int, seed: int) -> np.ndarray:
    """The window's top after each period, past the first fifth (its way down)."""
    rng = np.random.default_rng(seed)
    s = Starts(471, 1, 0.1, 20, span=40)  # --advance-rate 0.1 --start-window 40
    tops = []
    for _ in range(episodes // per_period):
        for _ in range(per_period):
            point = s.sample(rng)
            s.record(point, bool(rng.random() < success(point)))
        s.update()
        tops.append(s.start)
    return np.array(tops[len(tops) // 5 :])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=200_000, help="episodes a simulation")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    print("episodes a period | window top: mean, 10th-90th percentile (each seed)")
    for k in (5, 20, 65, 260):
        cells = []
        for seed in range(args.seeds):
            t = settle(k, args.episodes, seed)
            cells.append(f"{t.mean():.0f} ({np.percentile(t, 10):.0f}-{np.percentile(t, 90):.0f})")
        print(f"{k:>17} | " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
