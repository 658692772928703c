"""Return to a cell by running the policy ``stepstone robustify`` saved, not by restoring it.

Phase 1 returns by restoring a snapshot, which a stochastic world (sticky actions, a real
robot) does not allow. Go-Explore's policy-based variant (Ecoffet et al., "First return, then
explore", Nature 2021, "policy-based Go-Explore"; uber-research/go-explore, ``policy_based/``)
returns with a goal-conditioned policy trained alongside the exploration, and DTSIL (Guo et
al. 2019, "Efficient Exploration with Self-Imitation Learning via Trajectory-Conditioned
Policy") with one conditioned on a past trajectory: both self-improving demonstrations.

The policy here is conditioned on nothing: it follows the demonstration it was trained on. So a
return is what that policy can honestly do: reset, run it under the run's sticky actions, and
stop the first time the state's cell is the chosen one. A chosen cell the policy does not pass
within the steps it was trained to take (``max_steps`` of policy.pt, else twice the
demonstration and 20) is a failed return, and nothing is explored from it: the reference ends
the episode likewise when a return lags its trajectory
(``policy_based/goexplore_py/ge_wrappers.py``, ``GoalConGoExploreEnv.step``: ``done`` once
``actions_to_sub_goal`` passes ``max_actions_to_goal``), and what an exploration from elsewhere
finds would be credited to a cell it did not start from. The failure is counted against the
cell (chosen, not discovering: what the return found on its way is not the chosen cell's
discovery), so count-based and knapsack weights move the choice towards cells the policy does
reach, as the reference weighs cells by ``nb_chosen``/``nb_reached`` (``archives.py``,
``update_goal_info``).

The cells a return passes are archived as an exploration's are, a failed return's included: the
reference adds every step of its rollouts to the archive, the return's too (``archives.py``,
``update_archive``). A lost life does not end a return: the policy plays on as robustify
trained it (``--life-loss continue``) and as ``stepstone evaluate`` scores it. Montezuma's
policy in bench/README.md loses a life right after the key and opens the door from where the
game puts the player back, about 13 steps away. (The reference ends its episodes on death,
``run_policy_based_ge_montezuma.sh --end_on_death``, and trains its policy under that rule.)
Under ``--end-on-life-loss`` the exploration after the return ends at the next life lost.

The actions are recorded as taken (a sticky repeat as the action repeated), from reset: what a
return and its exploration find is an entry whose (seed, actions) replays wherever the
environment itself is deterministic, which ``stepstone replay`` checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .evaluate import load_policy
from .ppo import act
from .robustify import episode_limit, policy_input


@dataclass
class Return:
    actions: list[int]  # from reset, as taken
    reward: float
    reached: bool  # the chosen cell was reached (else nothing is explored)


class PolicyReturn:
    """The saved policy, checked against the run's environment, walking back to cells."""

    def __init__(self, env: Any, path: str, env_id: str, seed: int, sticky: float):
        import torch

        torch.set_num_threads(1)  # one small network a worker: a thread each is plenty
        file = Path(path)
        if not file.is_file():
            raise ConfigError(
                f"--from-policy {path}: no policy there; give a run directory that "
                "'stepstone robustify D' trained, or its robustify/policy.pt"
            )
        self.model, info = load_policy(file, seed)
        _check_source(file, env_id, seed)
        inner = getattr(env, "env", None)
        self.space = getattr(inner, "observation_space", None)
        self.features = info.get("features") or "ram-bits"  # what it was trained to read
        env.reset(seed)
        n_in = len(policy_input(env, self.space, self.features))
        n_act = int(getattr(env.action_space, "n", 0))
        if (n_in, n_act) != (info["inputs"], info["actions"]):
            raise ConfigError(
                f"--from-policy {path} takes {info['inputs']} inputs and {info['actions']} "
                f"actions, {env_id} gives {n_in} and {n_act}; robustify a run of {env_id}"
            )
        self.limit = int(info["max_steps"] or episode_limit(int(info["demo_length"])))
        self.sticky = sticky

    def go(self, env: Any, seed: int, target: Any, cell_fn: Any, noise: Any,
           visit: Any) -> Return:  # fmt: skip
        """Reset with ``seed`` and run the policy until ``cell_fn(env) == target`` (the reset
        state counts), the episode ends, or ``limit`` actions. ``noise`` (a numpy Generator)
        draws the sticky repeats and seeds the policy's own sampling. ``visit(cell, reward,
        steps, terminated, truncated)`` is told the reset state and each step that changes
        something (a cell, a reward, the end), as an exploration's steps are."""
        import torch

        torch.manual_seed(int(noise.integers(2**62)))
        env.reset(seed)
        actions: list[int] = []
        total, prev = 0.0, 0  # robustify's Runner starts an episode with action 0 as "previous"
        cell = cell_fn(env)
        visit(cell, 0.0, 0, False, False)
        while cell != target:
            if len(actions) >= self.limit:
                return Return(actions, total, False)
            a, _, _ = act(self.model, policy_input(env, self.space, self.features, total))
            if noise.random() < self.sticky:
                a = prev
            reward, terminated, truncated = env.step(a)
            actions.append(a)
            prev = a
            total += reward
            last, cell = cell, cell_fn(env)
            if cell != last or reward != 0 or terminated or truncated:
                visit(cell, total, len(actions), terminated, truncated)
            if (terminated or truncated) and cell != target:
                return Return(actions, total, False)
        return Return(actions, total, True)


def _check_source(path: Path, env_id: str, seed: int) -> None:
    """Refuse a policy trained on another environment or reset: it follows a demonstration
    from that run's reset, which this run's reset is not. A policy file away from its run
    directory is checked by its input and action sizes only."""
    run_dir = path.parent.parent
    if path.parent.name != "robustify" or not (run_dir / "run.sqlite").is_file():
        return
    from ..store.sqlite import RunStore

    store = RunStore.open(run_dir)
    try:
        source = store.config
    finally:
        store.close()
    if source.env != env_id:
        raise ConfigError(
            f"--from-policy {path} was trained on {source.env}, this run explores {env_id}; "
            f"robustify a run of {env_id}, or explore {source.env}"
        )
    if source.seed != seed:
        raise ConfigError(
            f"--from-policy {path} follows a demonstration from the reset of seed "
            f"{source.seed}, this run resets with seed {seed}; give --seed {source.seed}"
        )
