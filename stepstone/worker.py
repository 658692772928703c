"""A worker: one environment, one cell function, one explorer; runs tasks into results.

This is the only place that steps environments. Executors (inline, processes, Ray) each hold
workers and know nothing of exploration beyond ``Worker.run``.

The inner loop is the hot path of the whole system: per step it does one ``env.step``, one
cell computation and one comparison; snapshots are taken only when a cell is reached for the
first time in this exploration or with more reward than before.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from threadpoolctl import threadpool_limits

from . import cells as cells_mod
from . import envs, explorers
from .archive import better
from .cells import AdaptiveCells, CellFn, DriverDecidedCells
from .config import ExploreConfig
from .engine import Found, Result, Task
from .envs.generic import GymEnv
from .errors import ConfigError, RunDirError, UnknownParameter
from .goals import Goal
from .shards import Parts, ShardTables, split
from .table import CellTable


def action_dtype(space: gym.Space) -> np.dtype:
    """The smallest dtype that holds every action, so trajectories stay compact: an action of
    a Box, MultiDiscrete or MultiBinary space is a row of its dtype; others (Tuple, Dict, Text)
    are objects."""
    if isinstance(space, gym.spaces.Discrete):
        hi = int(space.start) + int(space.n)
        return np.dtype(np.uint8 if int(space.start) >= 0 and hi <= 256 else np.int64)
    if isinstance(space, (gym.spaces.Box, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        return np.dtype(space.dtype)
    return np.dtype(object)


def action_array(actions: list, dtype: np.dtype) -> np.ndarray:
    """``actions`` as one array: rows of ``dtype``, or one object an action (``np.asarray``
    made a (steps, 2) array of Tuple(Discrete, Discrete) actions, which no codec stores)."""
    if dtype.kind != "O":
        return np.asarray(actions, dtype=dtype)
    out = np.empty(len(actions), dtype=object)
    for i, a in enumerate(actions):
        out[i] = a
    return out


class Worker:
    def __init__(self, env: Any, cell_fn: CellFn, explorer: explorers.Explorer,
                 config: ExploreConfig):  # fmt: skip
        self.env = env
        self.cell_fn = cell_fn
        self.explorer = explorer
        self.config = config
        self.cells_kind = config.cells
        self.dtype = action_dtype(env.action_space)
        self.goal = Goal.parse(config.goal)
        # Adaptive cells (dynamic downscaling) keep each cell's frame and sample recent frames.
        self.adaptive = cell_fn if isinstance(cell_fn, AdaptiveCells) else None
        # Cells decided in the driver (novelty, learned) are not what the cell function returns.
        self.decided = isinstance(cell_fn, DriverDecidedCells)
        # A return by replaying actions lands where the task's cell is only if the environment
        # replays the same (a web page may not); restored emulator or copied states always do
        # (and an emulator's screen is not redrawn by a restore, so its cell cannot be asked).
        self.check_return = not self.decided and isinstance(env, GymEnv) and env.method == "replay"
        # The archive's (cell -> score, length) as last sent by the driver (table.py); cells
        # decided in the driver (novelty, learned) are not keys of it, so those send it none.
        self.shards = config.shards
        self.table = CellTable() if self.shards == 1 else ShardTables(self.shards)
        self.sticky = config.sticky
        self.returner: Any = None  # with --from-policy, built on first use: policy_return()
        self.score_cells = config.score_cells
        if self.score_cells and (self.adaptive or self.decided or config.from_policy):
            kind = config.cells if config.cells != "auto" else f"auto ({type(cell_fn).__name__})"
            why = (
                "--from-policy returns by a policy, which keeps no score"
                if config.from_policy
                else f"--cells {kind} are "
                + ("decided in the driver" if self.decided else "re-keyed from stored states")
            )
            raise ConfigError(
                f"--score-cells puts the score into keys the worker computes itself, and {why}; "
                "use --cells downscale, ram, observation, minigrid, text or dom, or drop "
                "--score-cells"
            )

    def key(self, cell: Any, score: float) -> Any:
        """The archive's key of a state in ``cell`` reached with ``score``. With
        ``--score-cells`` the score is part of it, rounded so that a replay, which sums the
        same rewards in another order, lands on the same key."""
        return (cell, round(score, 6)) if self.score_cells else cell

    @classmethod
    def from_config(cls, config: ExploreConfig, llm: Any = None) -> Worker:
        """The worker of a run; ``llm`` (llm.settings.Settings) tells the llm explorer where
        its model is (it connects on first use, in the process that explores).

        A worker is one process on one core, so numpy's BLAS gets one thread: downscaled
        cells are two small matrix products a step, and above OpenBLAS's size threshold
        (a 4 x 30 dynamic shape) its threads, in every worker at once, made a 2-worker run
        7x slower on 2 cores (bench/README.md, "One BLAS thread per worker")."""
        threadpool_limits(1, user_api="blas")
        # The user's modules first, in every process: they may register what the config names.
        envs.import_modules(config.imports)
        spec = envs.EnvSpec(
            config.env, config.seed, config.return_method, config.imports, config.env_args,
            config.web_actions,
        )  # fmt: skip
        env = envs.make(spec)
        kind, params = cells_mod.resolve(
            config.cells, config.cell_params, env, config.cells_auto, config.shards
        )
        try:
            cell_fn = cells_mod.make(kind, env, params)
        except UnknownParameter as e:  # bad values (first_sample=-1, width=abc) pass as they are
            if config.cells == kind or e.close:
                raise  # the kind named, or a name mistyped (wdth: "did you mean width?")
            # parameters meant for a kind auto meant once (gamma=...), or meant elsewhere
            other = ", e.g. --cells downscale" if kind == "dynamic" else ""
            raise ConfigError(
                f"{e}; --cells {config.cells} is {kind} here: name the kind these parameters "
                f"are for{other}"
            ) from e
        worker = cls(env, cell_fn, explorers.make(config, llm), config)
        worker.cells_kind = kind  # what --cells auto resolved to, for the report
        return worker

    def root(self) -> Found:
        """The reset state, as the archive's first cell."""
        env = self.env
        env.reset(self.config.seed)
        source = self.adaptive.source(env) if self.adaptive is not None else None
        success = self.goal.reached(env, 0.0, False)
        return Found(self.key(self.cell_fn(env), 0.0), 0.0, 0, env.snapshot(), False, success,
                     source, env.metrics())  # fmt: skip

    def policy_return(self) -> Any:
        """The run's ``--from-policy`` return (learn/returner.py), loaded and checked against
        the environment on first use (ConfigError naming the fix); None without one. Readers
        of a run (replay, view, export, robustify) never load it."""
        c = self.config
        if self.returner is None and c.from_policy is not None:
            # Imported here, not at the top: torch and Phase 2 load only for such runs.
            from .learn.returner import PolicyReturn

            self.returner = PolicyReturn(self.env, c.from_policy, c.env, c.seed, c.sticky)
        return self.returner

    def run(self, task: Task) -> Result | Parts:
        env, cell_fn, adaptive, goal = self.env, self.cell_fn, self.adaptive, self.goal
        returner = self.policy_return()
        if adaptive is not None and task.cell_shape is not None:
            adaptive.set_shape(task.cell_shape)
        if task.table is not None:  # taken in first: the executor counts it as held
            self.table.apply(task.table)
        # Sticky actions (--sticky) draw from a stream of their own: the explorer's is as before.
        noise = np.random.default_rng([task.explore_seed, 1]) if self.sticky or returner else None
        # Entries are (reward, steps) counted from ``base``: the task's entry after a restore,
        # the reset after a return by the policy, whose steps come first (``off``).
        base_score, base_length = (0.0, 0) if returner else (task.score, task.length)
        death_window = self.config.death_window if self.config.end_on_life_loss else None
        best: dict[Any, float] = {}  # cells visited, with the most reward each was reached with
        found: dict[Any, Found] = {}

        def visit(cell: Any, total: float, steps: int, terminated: bool, truncated: bool) -> None:
            """Keep the state if its cell is new to this episode or reached better; called
            where something changes (a new cell, a reward, the end), which is where every goal
            goals.py knows is reached. The state is terminal when the episode ended either
            way; ``--goal terminated`` is reached only by Gymnasium's ``terminated``, not by a
            time limit's ``truncated``."""
            ended = terminated or truncated
            success = goal.reached(env, base_score + total, terminated)
            old = found.get(cell)
            if old is None:  # the start cell, or a cell new in this episode
                take = cell not in best or better(total, steps, best[cell], 0, bool(success))
            else:
                take = better(total, steps, old.reward, old.steps, bool(success),
                              bool(old.success))  # fmt: skip
            if take:
                best[cell] = max(total, best.get(cell, total))
                found[cell] = Found(
                    cell, total, steps, env.snapshot(), ended, success,
                    adaptive.source(env) if adaptive is not None else None, env.metrics(),
                )  # fmt: skip

        off_score, off_steps, prev, back = 0.0, 0, None, None
        if returner is not None:  # --from-policy: reset and walk there (learn/returner.py)
            back = returner.go(env, self.config.seed, task.cell, cell_fn, noise, visit)
            off_score, off_steps = back.reward, len(back.actions)
            if not back.reached:
                return self._result(task, back.actions, off_steps, found, best, [], True,
                                    base_score, base_length, off_steps)  # fmt: skip
            frames, last = off_steps, task.cell
            if death_window is not None and env.life_lost():
                # The policy plays on after a lost life (learn/returner.py); the exploration
                # ends at the next one, as after restoring a state with fewer lives: restoring
                # this very state makes the environment count lives from here.
                env.restore(env.snapshot())
                frames += env.last_restore_steps
            prev = back.actions[-1] if back.actions else 0
        else:
            try:
                env.restore(task.snapshot)
            except Exception as e:  # bytes an adapter cannot take, or an environment that fails
                # while replaying to the cell (a browser that failed twice): say both
                raise RunDirError(
                    f"the snapshot of cell {task.cell!r} cannot be restored ({type(e).__name__}:"
                    f" {e}); either the environment failed while returning to it (continue with"
                    " stepstone resume) or the run directory is damaged (restore it from a "
                    "backup)"
                ) from None
            frames = env.last_restore_steps
            if self.check_return and self.key(cell_fn(env), task.score) != task.cell:
                return self._result(task, [], frames, {}, {}, [], True, base_score, base_length)
            # Cells decided in the driver: start from the key of the restored state itself.
            last = cell_fn(env) if self.decided else task.cell
            best[last] = 0.0
        rng = np.random.default_rng(task.explore_seed)
        steps_budget = self.config.explore_steps
        sample_at = (
            set(np.flatnonzero(rng.random(steps_budget) < adaptive.sample_prob) + 1)
            if adaptive is not None
            else ()
        )
        samples = []
        sticky, score_cells = self.sticky, self.score_cells
        actions = []
        total = 0.0
        steps = 0
        for action in self.explorer.actions(env, rng, steps_budget):
            if sticky and prev is not None and noise is not None and noise.random() < sticky:
                action = prev  # what was taken is what the trajectory keeps
            prev = action
            reward, terminated, truncated = env.step(action)
            actions.append(action)
            steps += 1
            total += reward
            if death_window is not None and env.life_lost():
                # Cells of the last death_window steps were reached while already dying. (An
                # exploration whose steps run out mid-fall never sees the life go.)
                doomed = off_steps + steps - death_window
                for cell in [c for c, f in found.items() if f.steps >= doomed]:
                    del found[cell]
                break
            cell = cell_fn(env)
            if score_cells:
                cell = (cell, round(base_score + total, 6))
            if cell != last or reward != 0 or terminated or truncated:
                last = cell
                visit(cell, off_score + total, off_steps + steps, terminated, truncated)
            if adaptive is not None and steps in sample_at:
                samples.append(adaptive.source(env))
            if terminated or truncated:
                break
        returned = None
        if back is not None:
            actions, returned = [*back.actions, *actions], off_steps
        return self._result(task, actions, frames + steps, found, best, samples, False,
                            base_score, base_length, returned)  # fmt: skip

    def _result(self, task: Task, actions: list, frames: int, found: dict, best: dict,
                samples: list, missed: bool, base_score: float, base_length: int,
                returned: int | None = None) -> Result | Parts:  # fmt: skip
        """What the worker sends back: the entries the driver's table (as last sent) may still
        take, split by shard when the archive is sharded. A missed return explored nothing:
        what it found would be credited with the task's score and length, which are not this
        state's (a return by the policy, whose entries are from reset, keeps what it passed)."""
        result = Result(
            task_id=task.task_id,
            actions=action_array(actions, self.dtype),
            frames=frames * self.env.frames_per_step,
            found=self.table.filter(found.values(), base_score, base_length),
            seen=list(best),
            samples=samples,
            missed=missed,
            returned=returned,
        )
        return result if self.shards == 1 else split(result, self.shards)

    def close(self) -> None:
        self.env.close()
        self.explorer.close()
