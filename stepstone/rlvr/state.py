"""Per-prompt state of an RLVR run, persisted with the run: the prompts are the archive.

Each visit of a prompt (one training step that sampled rollouts for it) is a row: how many
rollouts, how many succeeded, mean and spread of the reward, mean response length, the step.
The allocators read their estimates per prompt from here: Knapsack RL the success rate pooled
over the prompt's most recent rollouts (``pooled``, ``seen``), XRPO the reward mean and
standard deviation of its latest visit.

``PromptStore(run_dir)`` keeps ``run_dir/rlvr.sqlite`` in WAL mode and writes each step in one
transaction, so a run killed at any moment reopens with every committed step and nothing half
written. ``PromptStore(None)`` keeps the same tables in memory (tests, quick experiments).
Not here: sampling, rewards or any torch code.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EmptyGroupError, RewardError

DB_NAME = "rlvr.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS visits (
    step INTEGER NOT NULL, prompt TEXT NOT NULL, n INTEGER NOT NULL, successes INTEGER NOT NULL,
    reward_mean REAL NOT NULL, reward_std REAL NOT NULL, length_mean REAL NOT NULL,
    PRIMARY KEY (prompt, step));
CREATE TABLE IF NOT EXISTS prompts (
    prompt TEXT PRIMARY KEY, visits INTEGER NOT NULL, rollouts INTEGER NOT NULL,
    successes INTEGER NOT NULL, last_step INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def check_rewards(rewards: Iterable, where: str = "reward function") -> np.ndarray:
    """Rewards as a float array; refuses non-numbers, NaN/inf and empty groups."""
    values = list(rewards)
    if not values:
        raise EmptyGroupError(
            f"{where} got an empty group; give every prompt at least one rollout "
            "(min_per_prompt >= 1) or drop the prompt from the batch"
        )
    out = np.empty(len(values))
    for i, r in enumerate(values):
        if isinstance(r, bool | np.bool_):
            out[i] = float(r)
            continue
        try:
            out[i] = float(r)
        except (TypeError, ValueError):
            raise RewardError(
                f"{where} returned {r!r} ({type(r).__name__}) at position {i}; "
                "return one int or float per completion (e.g. 1.0 if correct else 0.0)"
            ) from None
        if not math.isfinite(out[i]):
            raise RewardError(
                f"{where} returned {r!r} at position {i}; rewards must be finite numbers"
            )
    return out


@dataclass(frozen=True)
class Visit:
    """One prompt's rollouts in one step, summarised."""

    prompt: str
    step: int
    n: int
    successes: int
    reward_mean: float
    reward_std: float
    length_mean: float

    @classmethod
    def from_group(
        cls,
        prompt: str,
        step: int,
        rewards: Sequence[float] | np.ndarray,
        lengths: Sequence[int] | np.ndarray | None = None,
        success_threshold: float = 0.5,
    ) -> Visit:
        r = check_rewards(rewards, where=f"rewards of prompt {prompt!r}")
        length = float(np.mean(lengths)) if lengths is not None and len(lengths) else 0.0
        return cls(
            prompt=prompt,
            step=step,
            n=len(r),
            successes=int((r > success_threshold).sum()),
            reward_mean=float(r.mean()),
            reward_std=float(r.std()),
            length_mean=length,
        )


@dataclass(frozen=True)
class PromptStats:
    """What the allocators know about a batch of prompts, aligned with ``prompts``.

    ``rate`` is the success rate at the latest visit (NaN if never visited), ``n`` the number of
    rollouts behind it, ``mean``/``std`` the reward statistics of that visit, ``last_step`` the
    step of that visit (-1 if never). ``pooled`` is the success rate over the prompt's most
    recent rollouts (``PromptStore.stats(window=...)``), ``seen`` its rollouts over the run.
    """

    prompts: tuple[str, ...]
    rate: np.ndarray
    n: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    last_step: np.ndarray
    pooled: np.ndarray
    seen: np.ndarray

    @classmethod
    def unseen(cls, prompts: Sequence[str]) -> PromptStats:
        k = len(prompts)
        nan = np.full(k, np.nan)
        return cls(
            tuple(prompts), nan, np.zeros(k, int), nan.copy(), nan.copy(), np.full(k, -1),
            nan.copy(), np.zeros(k, int),
        )  # fmt: skip

    @classmethod
    def from_rates(cls, rates: Sequence[float], n: int | Sequence[int] = 8) -> PromptStats:
        """Stats for binary rewards with known success rates (tests and what-if analysis); a NaN
        rate is a prompt never visited."""
        p = np.asarray(rates, dtype=float)
        n_arr = np.where(np.isnan(p), 0, np.broadcast_to(np.asarray(n), p.shape)).astype(int)
        return cls(
            tuple(f"p{i}" for i in range(len(p))),
            p,
            n_arr.copy(),
            p.copy(),
            np.sqrt(p * (1 - p)),
            np.zeros(len(p), int),
            p.copy(),
            n_arr.copy(),
        )

    def __len__(self) -> int:
        return len(self.prompts)


class PromptStore:
    """Visits per prompt in SQLite (``run_dir/rlvr.sqlite``, WAL), one transaction per step."""

    def __init__(self, run_dir: str | Path | None = None):
        if run_dir is None:
            self.path = None
            self.db = sqlite3.connect(":memory:")
        else:
            d = Path(run_dir)
            d.mkdir(parents=True, exist_ok=True)
            self.path = d / DB_NAME
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.isolation_level = None  # explicit BEGIN/COMMIT below
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> PromptStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def record(self, visits: Iterable[Visit], meta: dict[str, str] | None = None) -> None:
        """Write one step's visits (and optional run metadata) atomically."""
        rows = list(visits)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for v in rows:
                self.db.execute(
                    "INSERT OR REPLACE INTO visits VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (v.step, v.prompt, v.n, v.successes, v.reward_mean, v.reward_std,
                     v.length_mean),
                )  # fmt: skip
                self.db.execute(
                    "INSERT INTO prompts VALUES (?, 1, ?, ?, ?) ON CONFLICT(prompt) DO UPDATE SET"
                    " visits = visits + 1, rollouts = rollouts + excluded.rollouts,"
                    " successes = successes + excluded.successes,"
                    " last_step = MAX(last_step, excluded.last_step)",
                    (v.prompt, v.n, v.successes, v.step),
                )
            for k, val in (meta or {}).items():
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, str(val)))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def last_step(self) -> int:
        """The latest committed step, -1 for a new run (a resumed run continues after it)."""
        row = self.db.execute("SELECT MAX(step) FROM visits").fetchone()
        return -1 if row[0] is None else int(row[0])

    def stats(self, prompts: Sequence[str], window: int = 16) -> PromptStats:
        """The latest visit of each prompt, and its success rate pooled over recent rollouts.

        ``pooled`` follows Knapsack RL's estimate (liziniu/KnapsackRL,
        ``verl/utils/dataset/rl_dataset.py``, ``update_sample_state`` with their defaults
        ``epoch_estimation`` and ``robust_epoch_estimation`` on, ``reward_buffer_length=16``): the
        latest visit's rate if it had at least ``window`` rollouts, else the mean of the last
        ``window`` rewards across visits, newest first. Their code takes the newest rewards of
        a visit cut by the window in list order; the rollouts of one visit are sampled together
        and exchangeable, so here such a visit counts pro rata (its success share times the
        rollouts taken). NaN rates for prompts never visited.
        """
        out = PromptStats.unseen(prompts)
        index = {p: i for i, p in enumerate(prompts)}
        q = (
            "SELECT v.prompt, v.n, v.successes, v.reward_mean, v.reward_std, v.step FROM visits v"
            " JOIN prompts p ON p.prompt = v.prompt AND p.last_step = v.step"
        )
        for prompt, n, s, mean, std, step in self.db.execute(q):
            i = index.get(prompt)
            if i is None:
                continue
            out.rate[i], out.n[i], out.mean[i] = s / n, n, mean
            out.std[i], out.last_step[i] = std, step
            out.pooled[i], out.seen[i] = self._pooled_rate(prompt, window)
        return out

    def _pooled_rate(self, prompt: str, window: int) -> tuple[float, int]:
        """(success rate over the last ``window`` rollouts, rollouts over the run)."""
        rows = self.db.execute(
            "SELECT n, successes FROM visits WHERE prompt = ? ORDER BY step DESC", (prompt,)
        ).fetchall()
        seen = sum(n for n, _ in rows)
        if rows[0][0] >= window:
            return rows[0][1] / rows[0][0], seen
        taken = successes = 0.0
        for n, s in rows:
            part = min(n, window - taken)
            successes += s * part / n
            taken += part
            if taken >= window:
                break
        return successes / taken, seen

    def history(self, prompt: str) -> list[Visit]:
        rows = self.db.execute(
            "SELECT prompt, step, n, successes, reward_mean, reward_std, length_mean FROM visits"
            " WHERE prompt = ? ORDER BY step",
            (prompt,),
        ).fetchall()
        return [Visit(*r) for r in rows]

    def totals(self, prompt: str) -> tuple[int, int, int]:
        """(visits, rollouts, successes) over the whole run."""
        row = self.db.execute(
            "SELECT visits, rollouts, successes FROM prompts WHERE prompt = ?", (prompt,)
        ).fetchone()
        return (0, 0, 0) if row is None else tuple(row)
