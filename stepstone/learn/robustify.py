"""Go-Explore Phase 2: a policy that reproduces the best trajectory under noise.

The backward algorithm (Salimans & Chen 2018, "Learning Montezuma's Revenge from a Single
Demonstration"; Go-Explore's Phase 2, Ecoffet et al. 2019, sec. 2.2): PPO episodes start from
a state on the demonstration, first near its end; once the agent matches the demonstration's
return from there in ``advance_rate`` of its recent episodes, the start moves ``step`` actions
back, until the agent starts from the reset state itself. SnapshotRL (2024) starts students
from a teacher's states by the same mechanism. Start states are restored from snapshots,
which the environments stepstone explores all have.

On Atari the policy sees the console's 128 bytes of RAM, as bits, rather than the screen (the papers
train a convolutional network on frames, which this CPU-only setting cannot afford).

Noise, during training and evaluation, is that of the ALE evaluation protocol (Machado et al.
2018): sticky actions, the previous action repeated with probability 0.25, and for Atari up to
30 random no-ops at the start. Two baselines on the same budget: behaviour cloning of the
demonstration, and PPO from the usual start state. PPO itself follows CleanRL's single-file
version (clipped objective, GAE, one small actor-critic MLP).

Success, in training and evaluation, is the run's goal (stepstone/goals.py) when the
demonstration reaches it: a time penalty (MiniGrid) or a cost per step (MountainCar) then does
not move the bar with the demonstration's length. A demonstration that stops short of the goal
(``--demo-score``) or a run without one is matched by return instead, as in the papers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import parse_count
from ..envs.ale import AtariEnv
from ..errors import ConfigError
from ..goals import Goal
from ..options import option
from ..store.sqlite import RunStore
from ..trajectories import TrajectoryTree
from ..worker import Worker

POLICY = "policy.pt"  # the backward algorithm's policy: a state dict, in D/robustify/
POLICY_INFO = "policy.json"  # what it takes to run it again (learn/evaluate.py)


@dataclass(frozen=True)
class RobustifyConfig:
    """Phase 2's settings; those with an ``option`` are options of ``stepstone robustify``."""

    frames: int = option(  # environment steps of training (each method gets the same)
        200_000, type=str, convert=lambda text: parse_count(text, "--frames"),
        help="training steps for each method",
    )  # fmt: skip
    sticky: float = option(0.25, help="repeat-action probability")
    max_noops: int = 30  # Atari only (action 0 is NOOP there)
    advance_rate: float = option(
        0.5, help="share of recent episodes matching the demonstration before its start moves "
        "back (Go-Explore's own Phase 2 used 0.1 on Atari)",
    )  # fmt: skip
    window: int = 20  # recent episodes judged at each start point
    step: int = option(
        0, flag="--step-back",
        help="actions the start moves back each time (default: a twentieth of the "
        "demonstration; fewer where each stretch holds a skill of its own, such as Montezuma's "
        "jumps)",
    )  # fmt: skip
    rollout: int = 512
    epochs: int = 4
    minibatch: int = 128
    lr: float = 2.5e-4
    gamma: float = 0.99
    lam: float = 0.95
    clip: float = 0.2
    entropy: float = option(0.01, help="PPO's entropy bonus (keeps it trying actions)")
    eval_episodes: int = option(20, help="evaluation episodes from reset, for each method")
    seed: int = option(0, help="seeds training and evaluation")
    demo_score: float | None = option(
        None, type=float,
        help="demonstrate the shortest archived path reaching this score (default: the best)",
    )  # fmt: skip


def demonstration(archive: Any, demo_score: float | None) -> int:
    """The entry to demonstrate: the best one reaching the goal, else the best one, or the
    shortest whose score reaches ``demo_score``. A long run's best trajectory can be thousands
    of actions; a nearer goal (Montezuma's first room, say) is what a few hours of CPU can
    robustify."""
    if demo_score is None:
        goal = archive.goal_entry()
        return int(archive.best()) if goal is None else goal
    n = len(archive)
    reach = np.flatnonzero(archive.score[:n] >= demo_score)
    if len(reach) == 0:
        raise ConfigError(
            f"no trajectory in the archive scores {demo_score:g} (best "
            f"{archive.score[archive.best()]:g}): lower --demo-score or explore longer"
        )
    return int(reach[np.argmin(archive.length[reach])])


@dataclass
class Demo:
    snapshots: list[bytes]  # state after t actions, t = 0..T
    returns: list[float]  # reward collected after t actions
    observations: list[np.ndarray]
    actions: np.ndarray
    goals: list[bool | None]  # whether the goal is reached after t actions (None: no goal)

    def prefix(self, t: int) -> Demo:
        """The first ``t`` actions."""
        return Demo(self.snapshots[: t + 1], self.returns[: t + 1], self.observations[: t + 1],
                    self.actions[:t], self.goals[: t + 1])  # fmt: skip

    @property
    def reaches_goal(self) -> bool:
        return bool(self.goals[-1])

    def success(self, runner: Runner) -> Callable[[float], bool]:
        return success_test(runner, self.reaches_goal, self.returns[-1])


def success_test(runner: Runner, goal: bool, demo_return: float) -> Callable[[float], bool]:
    """Success of an episode from reset, given its return so far: the run's goal where the
    demonstration reaches it (``goal``), else the demonstration's return."""
    if goal:
        return lambda score: bool(runner.reached(score))
    return lambda score: score >= demo_return


def criterion(goal: bool, demo_return: float) -> str:
    """``success_test``'s rule in words."""
    return "goal" if goal else f"return >= {demo_return:g}"


def features(obs: Any, space: Any = None) -> np.ndarray:
    """An observation as a float vector: one-hot for a discrete one, dict fields side by side,
    text left out."""
    import gymnasium as gym

    if isinstance(space, gym.spaces.Discrete):
        v = np.zeros(int(space.n), dtype=np.float32)
        v[int(obs) - int(space.start)] = 1.0
        return v
    if isinstance(obs, dict):
        sub = space.spaces if isinstance(space, gym.spaces.Dict) else {}
        parts = [features(obs[k], sub.get(k)) for k in sorted(obs) if not isinstance(obs[k], str)]
        return np.concatenate(parts) if parts else np.zeros(1, dtype=np.float32)
    return np.asarray(obs, dtype=np.float32).ravel()


class Runner:
    """The run's environment with noise, observations as features, starts from snapshots."""

    def __init__(self, store: RunStore, cfg: RobustifyConfig):
        self.worker = Worker.from_config(store.config)
        self.env = self.worker.env
        self.seed = store.config.seed
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.atari = isinstance(self.env, AtariEnv)
        inner = getattr(self.env, "env", None)
        self.space = getattr(inner, "observation_space", None)
        self.n_actions = int(self.env.action_space.n)
        self.life_lost = False
        self.goal = Goal.parse(store.config.goal)
        self.terminated = False
        self.noops_taken = 0
        self.prev = 0

    def obs(self) -> np.ndarray:
        # Atari: the 128 RAM bytes as 1,024 bits, not 100,800 pixel values (a policy a CPU
        # can train). Bits, not bytes scaled to [0, 1]: a pixel of x is then a flipped input
        # rather than a change of 1/255, and on Montezuma the start point stalled without it.
        if self.atari:
            return np.unpackbits(self.env.ram()).astype(np.float32)
        return features(self.env.observe(), self.space)

    def demo(self, actions: np.ndarray) -> Demo:
        env = self.env
        env.reset(self.seed)
        snaps, rets, obs = [env.snapshot()], [0.0], [self.obs()]
        goals = [self.goal.reached(env, 0.0, False)]
        for a in actions:
            r, term, _ = env.step(a)
            snaps.append(env.snapshot())
            rets.append(rets[-1] + r)
            obs.append(self.obs())
            goals.append(self.goal.reached(env, rets[-1], term))
        return Demo(snaps, rets, obs, np.asarray(actions), goals)

    def start(self, demo: Demo, t: int, noops: bool) -> None:
        self.env.restore(demo.snapshots[t])
        self.prev = int(demo.actions[t - 1]) if t > 0 else 0
        self.terminated = False
        if noops and self.atari and t == 0:
            self.noops()

    def from_reset(self) -> None:
        """An evaluation episode: the reset state, then (Atari) up to 30 random no-ops."""
        self.env.reset(self.seed)
        self.prev = 0
        self.terminated = False
        self.noops_taken = 0
        if self.atari:
            self.noops()

    def noops(self) -> None:
        self.noops_taken = int(self.rng.integers(self.cfg.max_noops + 1))
        for _ in range(self.noops_taken):
            self.env.step(0)

    def reached(self, score: float) -> bool | None:
        """Whether the state now reaches the run's goal, ``score`` being the return from
        reset (None: no goal applies)."""
        return self.goal.reached(self.env, score, self.terminated)

    def step(self, action: int) -> tuple[float, bool]:
        if self.rng.random() < self.cfg.sticky:
            action = self.prev
        self.prev = action
        lives = self.env.lives() if self.atari else 0
        r, term, trunc = self.env.step(action)
        self.terminated = term
        self.life_lost = self.atari and self.env.lives() < lives
        return r, term or trunc


def policy_network(n_in: int, n_actions: int, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)

    class ActorCritic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Linear(n_in, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh()
            )
            self.pi = torch.nn.Linear(64, n_actions)
            self.v = torch.nn.Linear(64, 1)

        def forward(self, x: Any) -> tuple[Any, Any]:
            h = self.body(x)
            return self.pi(h), self.v(h).squeeze(-1)

    return ActorCritic()


def act(model: Any, obs: np.ndarray, greedy: bool = False) -> tuple[int, float, float]:
    import torch

    with torch.no_grad():
        logits, value = model(torch.as_tensor(obs).unsqueeze(0))
        dist = torch.distributions.Categorical(logits=logits[0])
        a = int(logits[0].argmax()) if greedy else int(dist.sample())
        return a, float(dist.log_prob(torch.tensor(a))), float(value[0])


def ppo(
    runner: Runner,
    demo: Demo,
    cfg: RobustifyConfig,
    backward: bool,
    log: Callable[[str], None] | None = None,
) -> tuple[Any, list[dict], int]:
    """Train; with ``backward`` start from the demonstration, moving back (else from reset).
    Returns the policy, the moves of the start point, and the start point reached. ``log``
    gets a progress line every 30 s: a long run should say how far it is."""
    import torch

    model = policy_network(len(demo.observations[0]), runner.n_actions, cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=1e-5)
    T = len(demo.actions)
    back = cfg.step or max(1, T // 20)
    start = max(0, T - back) if backward else 0
    history: list[dict] = []  # one row per start-point move
    recent: list[bool] = []
    frames = 0
    t0 = last_log = time.monotonic()
    runner.start(demo, start, noops=True)
    ep_start, ep_return, ep_len = start, 0.0, 0
    obs = runner.obs()
    goal_reached = demo.success(runner) if demo.reaches_goal else None
    while frames < cfg.frames:
        buf: dict[str, list] = {k: [] for k in ("obs", "act", "logp", "val", "rew", "done")}
        for _ in range(cfg.rollout):
            a, logp, v = act(model, obs)
            r, done = runner.step(a)
            frames += 1
            ep_return += r
            ep_len += 1
            if goal_reached is not None:
                matched = goal_reached(demo.returns[ep_start] + ep_return)
            else:
                matched = ep_return >= demo.returns[T] - demo.returns[ep_start] and (
                    demo.returns[T] > demo.returns[ep_start] or done
                )
            # On Atari, as in DQN (Mnih et al. 2015): a lost life ends the training episode,
            # and rewards are clipped to their sign; Montezuma's 100s and 300s would otherwise
            # swamp the shared body with the value loss.
            over = done or runner.life_lost or matched or ep_len >= episode_limit(T - ep_start)
            signal = float(np.sign(r)) if runner.atari else r
            for k, x in zip(buf, (obs, a, logp, v, signal, over), strict=True):
                buf[k].append(x)
            if over:
                if ep_start == start:
                    recent = [*recent[-(cfg.window - 1) :], bool(matched)]
                if (
                    backward
                    and start > 0
                    and len(recent) == cfg.window
                    and np.mean(recent) >= cfg.advance_rate
                ):
                    start = max(0, start - back)
                    recent = []
                    history.append({"frames": frames, "start": start})
                runner.start(demo, start, noops=True)
                ep_start, ep_return, ep_len = start, 0.0, 0
            obs = runner.obs()
        _update(model, opt, buf, obs, cfg)
        if log and time.monotonic() - last_log >= 30:
            last_log = time.monotonic()
            rate = frames / (last_log - t0)
            name = "backward" if backward else "ppo from reset"
            line = f"{name}: {frames:,}/{cfg.frames:,} steps, {rate:,.0f} steps/s"
            line += f", start at action {start} of {T}"
            if recent:
                line += f", {np.mean(recent):.0%} of the last {len(recent)} matched"
            log(line)
    return model, history, start


def _update(model: Any, opt: Any, buf: dict, last_obs: np.ndarray, cfg: RobustifyConfig) -> None:
    import torch

    rew = np.array(buf["rew"], dtype=np.float32)
    done = np.array(buf["done"], dtype=np.float32)
    val = np.array(buf["val"], dtype=np.float32)
    _, _, last_v = act(model, last_obs)
    adv = np.zeros_like(rew)
    gae = 0.0
    for t in reversed(range(len(rew))):
        nxt = last_v if t == len(rew) - 1 else val[t + 1]
        delta = rew[t] + cfg.gamma * nxt * (1 - done[t]) - val[t]
        gae = delta + cfg.gamma * cfg.lam * (1 - done[t]) * gae
        adv[t] = gae
    ret = adv + val
    obs = torch.as_tensor(np.array(buf["obs"]))
    acts = torch.as_tensor(np.array(buf["act"]))
    old_logp = torch.as_tensor(np.array(buf["logp"], dtype=np.float32))
    adv_t, ret_t = torch.as_tensor(adv), torch.as_tensor(ret)
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(obs)).split(cfg.minibatch):
            logits, v = model(obs[idx])
            dist = torch.distributions.Categorical(logits=logits)
            ratio = (dist.log_prob(acts[idx]) - old_logp[idx]).exp()
            a = adv_t[idx]
            a = (a - a.mean()) / (a.std() + 1e-8) if len(a) > 1 else a
            pg = -torch.min(ratio * a, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a).mean()
            loss = pg + 0.5 * ((v - ret_t[idx]) ** 2).mean() - cfg.entropy * dist.entropy().mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()


def behaviour_cloning(runner: Runner, demo: Demo, cfg: RobustifyConfig) -> Any:
    """The baseline: the same network trained to output the demonstration's actions."""
    import torch

    model = policy_network(len(demo.observations[0]), runner.n_actions, cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.as_tensor(np.array(demo.observations[:-1]))
    y = torch.as_tensor(demo.actions.astype(np.int64))
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(model(x)[0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def evaluate(
    runner: Runner,
    model: Any,
    episodes: int,
    limit: int,
    success: Callable[[float], bool],
    on_episode: Callable[[list[int], float], None] | None = None,
) -> tuple[float, float]:
    """Episodes from reset under sticky actions (and no-ops), each until it succeeds, ends, or
    takes ``limit`` actions: the share that succeed, and the mean return (the game score up to
    success: an episode stops there). ``on_episode`` gets each episode's actions as taken
    (sticky repeats and no-ops included, so they replay it) and its return."""
    wins, returns = 0, []
    for _ in range(episodes):
        runner.from_reset()
        taken = [0] * runner.noops_taken
        total, done, won = 0.0, False, False
        while not done and not won and len(taken) - runner.noops_taken < limit:
            a, _, _ = act(model, runner.obs())  # sampled: a policy, not its argmax
            r, done = runner.step(a)
            taken.append(runner.prev)
            total += r
            won = success(total)
        wins += won
        returns.append(total)
        if on_episode is not None:
            on_episode(taken, total)
    return wins / episodes, float(np.mean(returns))


def episode_limit(demo_length: int) -> int:
    """Actions an episode may take: twice the demonstration's, and 20 more."""
    return 2 * demo_length + 20


def robustify(
    store: RunStore,
    cfg: RobustifyConfig,
    baselines: Collection[str] = ("bc", "ppo"),
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train from the run's best trajectory (or the one ``demo_score`` picks); return success
    rates and scores under noise, and the start point's history."""
    try:
        import torch
    except ImportError:
        raise ConfigError("robustify needs torch: pip install 'stepstone[torch]'") from None
    archive = store.load_archive()
    if len(archive) == 0:
        raise ConfigError(f"{store.path} has no archive yet: run stepstone explore first")
    best = demonstration(archive, cfg.demo_score)
    if archive.score[best] <= 0 and not archive.goal[best]:
        raise ConfigError(
            f"the best trajectory in {store.path} scores {archive.score[best]:g} and reaches no "
            "goal: there is no return to reproduce; explore longer first (or give a --goal)"
        )
    runner = Runner(store, cfg)
    import gymnasium as gym

    if not isinstance(runner.env.action_space, gym.spaces.Discrete):
        raise ConfigError("robustify here trains a policy over discrete actions only")
    tree = TrajectoryTree(store.nodes)
    demo = runner.demo(tree.actions(int(archive.node[best]), int(archive.length[best])))
    if cfg.demo_score is not None:  # up to the action that reaches the score, no further
        demo = demo.prefix(int(np.argmax(np.asarray(demo.returns) >= cfg.demo_score)))
    model, history, reached = ppo(runner, demo, cfg, backward=True, log=log)
    out = store.path / "robustify"
    out.mkdir(exist_ok=True)
    torch.save(model.state_dict(), out / POLICY)
    policy = {"inputs": len(demo.observations[0]), "actions": runner.n_actions,
              "demo_length": len(demo.actions), "demo_return": demo.returns[-1],
              "goal": demo.reaches_goal, "sticky": cfg.sticky}  # fmt: skip
    (out / POLICY_INFO).write_text(json.dumps(policy, indent=1) + "\n")
    result = {
        "config": asdict(cfg),
        "demo_length": len(demo.actions),
        "demo_return": demo.returns[-1],
        "success_criterion": criterion(demo.reaches_goal, demo.returns[-1]),
        "start_moves": history,
        "reached_reset": reached == 0,
    }
    models = {"backward": lambda: model}
    if "bc" in baselines:
        models["bc"] = lambda: behaviour_cloning(runner, demo, cfg)
    if "ppo" in baselines:
        models["ppo_from_reset"] = lambda: ppo(runner, demo, cfg, backward=False, log=log)[0]
    success, limit = demo.success(runner), episode_limit(len(demo.actions))
    for name, train in models.items():
        rate, score = evaluate(runner, train(), cfg.eval_episodes, limit, success)
        result[f"success_{name}"], result[f"score_{name}"] = rate, score
    runner.worker.close()
    return result
