"""Go-Explore Phase 2: a policy that reproduces the best trajectory under noise.

The backward algorithm (Salimans & Chen 2018, "Learning Montezuma's Revenge from a Single
Demonstration"; Go-Explore's Phase 2, Ecoffet et al. 2019, sec. 2.2): PPO episodes start from
a state on the demonstration, first near its end; once the agent matches the demonstration's
return from there in ``advance_rate`` of its recent episodes, the start moves ``step`` actions
back, until the agent starts from the reset state itself. SnapshotRL (2024) starts students
from a teacher's states by the same mechanism. Start states are restored from snapshots,
which the environments stepstone explores all have. What the papers' code adds, each an
option: start points spread over a window (starts.py), self-imitation and more entropy after
the start point (ppo.py), several demonstrations at once (``demonstrations``).

Training is resumable: each method's whole state goes to ``D/robustify/checkpoint-NAME.pt``
every ``checkpoint_every`` seconds (checkpoint.py), and a run that finds it continues it.

On Atari the policy sees the console's 128 bytes of RAM, as bits, rather than the screen (the
papers train a convolutional network on frames, which this CPU-only setting cannot afford).

Noise, during training and evaluation, is that of the ALE evaluation protocol (Machado et al.
2018): sticky actions, each emulator frame repeating the previous frame's action with
probability 0.25 (a step is 4 frames on Atari, one elsewhere), and for Atari up to 30 random
no-ops at the start. Two baselines on the same budget: behaviour cloning of the
demonstration, and PPO from the usual start state. PPO itself follows CleanRL's single-file
version (clipped objective, GAE, one small actor-critic MLP).

Success, in training and evaluation, is the run's goal (stepstone/goals.py) when the
demonstration reaches it: a time penalty (MiniGrid) or a cost per step (MountainCar) then does
not move the bar with the demonstration's length. A demonstration that stops short of the goal
(``--demo-score``) or a run without one is matched by return instead, as in the papers.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from ..config import parse_count
from ..envs.ale import AtariEnv
from ..errors import ConfigError
from ..goals import Goal
from ..options import KEY, option
from ..progress import duration, human
from ..store.sqlite import RunStore
from ..trajectories import TrajectoryTree
from ..worker import Worker
from .checkpoint import load as load_file
from .checkpoint import save as save_checkpoint
from .checkpoint import to_bytes, to_tensor
from .ppo import (
    FORMAT,
    Architecture,
    Imitation,
    SelfImitation,
    act,
    act_batch,
    discounted,
    policy_network,
    update,
)
from .starts import Starts

POLICY = "policy.pt"  # the backward algorithm's policy, its architecture and what success is
POLICY_INFO = "policy.json"  # the same information in words, for people and older readers
BEST = "policy-best.pt"  # --eval-every: the policy that did best in those evaluations
EVALUATIONS = "evaluations.json"  # --eval-every: each evaluation's steps, success and score
CHECKPOINT = "checkpoint-{}.pt"  # each method's training state, in D/robustify/
# --ram; a policy's features are "ram-" + it
RAM_FEATURES: tuple[str, ...] = ("bits", "bits+bytes", "bits+score")
STICKY_UNITS: tuple[str, ...] = ("frame", "action")  # --sticky-unit
LIFE_LOSS: tuple[str, ...] = ("end", "continue")  # --life-loss
SIL_SAMPLES: tuple[str, ...] = ("all", "window")  # --sil-sample
ANNEAL: tuple[str, ...] = ("none", "linear")  # --anneal
REWARDS: tuple[str, ...] = ("auto", "sign", "raw", "scaled")  # --rewards
# --rewards scaled: Go-Explore's Phase 2 scales rewards so that the demonstrations' discounted
# return from a step averages this (phase2_atari.sh: --autoscale=10 --autoscale_fn=mean
# --autoscale_value; atari-reset's train_atari.py, get_mean_reward and train).
AUTOSCALE = 10.0
# Go-Explore's Phase 2 imitates by replaying the demonstration in 2 environments beside its 32
# (phase2_atari.sh: --n_sil_envs=2 --nenvs=32; atari-reset's train_atari.py adds them), each
# from up to 10 actions before its start point (extra_sil_before_demo_max) to 32 past it (the
# number of environments), or from reset to the same place, chosen so that 30% of the
# imitated steps come from reset (extra_sil_from_start_prob=0.3, normalised by steps:
# atari_reset/wrappers.py, ReplayResetEnv.reset). Its loss is a mean over the whole batch
# (atari_reset/ppo.py, Model.__init__, SIL_VALID), in which those steps are 2 in 34.
SIL_BEFORE, SIL_AFTER, SIL_FROM_RESET, SIL_SHARE = 10, 32, 0.3, 2 / 34


@dataclass(frozen=True)
class RobustifyConfig:
    """Phase 2's settings; those with an ``option`` are options of ``stepstone robustify``."""

    frames: int = option(  # environment steps of training (each method gets the same)
        200_000, type=str, convert=lambda text: parse_count(text, "--frames"),
        help="training steps for each method",
    )  # fmt: skip
    sticky: float = option(0.25, help="repeat-action probability")
    sticky_unit: str = option(
        "frame", help="what a sticky repeat holds on Atari: one emulator frame of the 4 a step "
        "takes (frame), as ALE's sticky actions and Go-Explore's Phase 2 do, or the whole step "
        "(action: stepstone's rule before, a harsher noise). Elsewhere a step is one frame",
        names=lambda: STICKY_UNITS, choices=True,
    )  # fmt: skip
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
    gamma: float = option(
        0.99, help="discount of rewards in PPO and self-imitation; Go-Explore's Phase 2 on "
        "Atari used 0.999 (robustified/phase2_atari.sh), which keeps a reward hundreds of "
        "actions away from vanishing (0.99**300 = 0.05)",
    )  # fmt: skip
    lam: float = 0.95
    clip: float = 0.2
    anneal: str = option(
        "none", help="linear: PPO's step size and clipping range shrink with the training "
        "steps left, times 1 - steps/--frames, as PPO's own Atari setting (Schulman et al. "
        "2017, table 5) and OpenAI baselines' ppo2 do, so that the last policy is a settled "
        "one, not the jitter of one update (a larger --frames on continuing widens them again); "
        "none: constant, as Go-Explore's Phase 2",
        names=lambda: ANNEAL, choices=True,
    )  # fmt: skip
    entropy: float = option(0.01, help="PPO's entropy bonus (keeps it trying actions)")
    eval_episodes: int = option(20, help="evaluation episodes from reset, for each method")
    eval_every: int = option(
        0, type=str, convert=lambda text: parse_count(text, "--eval-every"),
        help="training steps between evaluations from reset during the backward training "
        "(--eval-episodes each, the same noise each time; training goes on unchanged): the "
        "best policy so far is kept as D/robustify/policy-best.pt, run it with 'stepstone "
        "evaluate D --best'. 0: none",
    )  # fmt: skip
    seed: int = option(0, help="seeds training and evaluation")
    demo_score: float | None = option(
        None, type=float,
        help="demonstrate the shortest archived path reaching this score (default: the best)",
    )  # fmt: skip
    demos: int = option(
        1, help="train on the best N trajectories of the archive at once, each episode on one "
        "drawn at random (Go-Explore's Phase 2 used several; it keeps the policy from "
        "over-fitting one)",
    )  # fmt: skip
    start_window: int = option(
        0, help="start episodes at points spread over this many actions behind the start "
        "point, which moves where their success says (--advance-rate: the share of the "
        "window's summed success; 0: every episode at one point, moved by --step-back). "
        "Go-Explore's Atari setting: 40 actions (160 frames) with --advance-rate 0.1",
    )  # fmt: skip
    sil: float = option(
        0.0, help="weight of self-imitation learning on the demonstrations beside PPO "
        "(Go-Explore's Phase 2: 0.1)",
    )  # fmt: skip
    sil_sample: str = option(
        "all", help="where self-imitation looks, and how much it weighs: all (every "
        "demonstrated step alike, at the full --sil weight), or window, as Go-Explore's Phase 2 "
        "does (around the start points and, for 30%% of the steps, from reset up to them; its "
        "loss a mean over a batch in which those steps are 2 in 34). On Montezuma's first room "
        "all moved the start point back further at 1.3M steps (bench/README.md)",
        names=lambda: SIL_SAMPLES, choices=True,
    )  # fmt: skip
    sil_value: float = 0.01  # SIL's value-loss weight (Go-Explore's phase2_atari.sh)
    sil_entropy: float = 1e-5  # SIL's entropy weight (the same)
    entropy_boost: int = option(
        0, help="halve the policy's logits (more entropy) for this many actions past the "
        "start point (the papers' code: 100)",
    )  # fmt: skip
    max_steps: int = option(
        0, help="actions an episode may take, in evaluation from reset and in training from "
        "any start point (0: twice the demonstration's and 20 more); e.g. 120, "
        "MiniGrid-MultiRoom-N6-v0's registered limit, when the run explored a longer-limit copy",
    )  # fmt: skip
    lag: int = option(
        0, help="end a training episode once its score lags the demonstration's by this many "
        "actions: below every return the demonstration had from LAG actions before to LAG "
        "after the same point of its path (0: off; Go-Explore's Phase 2 used 50). Where the "
        "only reward is at the goal, LAG actions more than the demonstration took. Tightens "
        "the limit where --max-steps is loose, as far from the goal a fixed cap must be",
    )  # fmt: skip
    ram: str = option(
        "bits", help="what an Atari policy sees of the console's 128 RAM bytes: bits (1,024 "
        "inputs), bits+bytes (each byte also scaled to [0, 1], 1,152 inputs: a position "
        "then varies smoothly too, as timing a jump over a moving enemy asks), or bits+score "
        "(1,025 inputs: the episode's score so far, log10(1 + score), as the screen Go-Explore's "
        "policy sees shows it: a place passed before and after a reward differs in one input "
        "more than in the few RAM bits the reward flips)",
        names=lambda: RAM_FEATURES, choices=True,
    )  # fmt: skip
    hidden: str = option(
        "64,64", type=str, convert=lambda text: widths(text),
        help="the policy's hidden layers, their widths comma-separated (Go-Explore's Phase 2 "
        "network is far larger: a CNN on the screen, a 1,024-wide layer and an 800-unit GRU, "
        "atari_reset/policies.py)",
    )  # fmt: skip
    rewards: str = option(
        "auto", help="what training sees of a reward: sign (DQN's clipping to -1, 0 or 1), raw, "
        "or scaled (Go-Explore's Phase 2 on Atari: times one factor that makes the "
        "demonstrations' discounted return from a step average 10, so Montezuma's door, 300, "
        "stays three times the key, 100); auto: sign on Atari, raw elsewhere",
        names=lambda: REWARDS, choices=True,
    )  # fmt: skip
    life_loss: str = option(
        "continue", help="what a lost life does to an Atari training episode: continue, as "
        "Go-Explore's Phase 2 does (phase2_atari.sh --no_game_over_on_life_loss) and as an "
        "evaluation plays, from where the game puts the player back; or end it (DQN's rule, "
        "stepstone's before), which on Montezuma made the door after a risky jump worth nothing",
        names=lambda: LIFE_LOSS, choices=True,
    )  # fmt: skip
    from_reset: float = option(
        0.0, help="share of the training steps spent in episodes from reset (with no-ops), "
        "beside those from the demonstrations' start points: Go-Explore's Phase 2 "
        "(phase2_atari.sh --test_from_start) adds such a 'demonstration from the start' and "
        "draws it so that it gets as many steps as the demonstrations, 0.5. They play as an "
        "evaluation does, past lost lives to the step limit, neither ended by --lag nor moving "
        "a start point; the progress line shows their success",
    )  # fmt: skip
    envs: int = option(
        8, help="environments stepped together, one batched forward pass for all, each "
        "episode from its own start point (the papers' many workers; 1: as before)",
    )  # fmt: skip
    threads: int = option(
        1, help="torch threads (not every core: the network is small and the machine shared)"
    )
    checkpoint_every: float = option(
        120.0, help="seconds between checkpoints in D/robustify/ (a kill loses at most this)"
    )


# --preset: named bundles of the options above. go-explore is Go-Explore's Phase 2 on Atari
# (robustified/phase2_atari.sh: --move_threshold=0.1, --gamma=0.999, --ent_coef=1e-05,
# --sil_coef=0.1, --autoscale=10, --nrstartsteps=160 (40 actions), --no_game_over_on_life_loss;
# its atari-reset fork's train_atari.py, --allowed_lag default 50; wrappers.py, ReplayResetEnv:
# more entropy for 100 actions), with what bench/README.md (issue 21) measured on Montezuma's
# first room in place of the rest: a 256-256 MLP on the RAM bits for its CNN and GRU on the
# screen, PPO's linear annealing, and no --test_from_start (--from-reset 0.5 made no
# difference). With --frames 20M it held the room from reset on 2 of 3 training seeds.
PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "go-explore": {
        "advance_rate": 0.1, "start_window": 40, "entropy_boost": 100, "sil": 0.1,
        "entropy": 1e-5, "gamma": 0.999, "rewards": "scaled", "life_loss": "continue",
        "lag": 50, "hidden": "256,256", "anneal": "linear",
    },
}  # fmt: skip


def with_preset(cfg: RobustifyConfig, name: str) -> RobustifyConfig:
    """``cfg`` with the preset's values wherever it leaves an option at its default: an option
    given on the command line stays as given."""
    if name not in PRESETS:
        raise ConfigError(f"--preset takes {', '.join(PRESETS)}, not {name!r}")
    default = RobustifyConfig()
    return replace(cfg, **{k: v for k, v in PRESETS[name].items()
                           if getattr(cfg, k) == getattr(default, k)})  # fmt: skip


def widths(text: str) -> str:
    """--hidden's value, checked and written the one way a checkpoint compares it."""
    try:
        layers = [int(w) for w in str(text).split(",")]
    except ValueError:
        layers = []
    if not layers or min(layers) < 1:
        raise ConfigError(f"--hidden takes layer widths such as 64,64 or 256,256, not {text!r}")
    return ",".join(map(str, layers))


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


def demonstrations(
    runner: Runner, archive: Any, tree: TrajectoryTree, first: int, cfg: RobustifyConfig
) -> list[Demo]:
    """``first``'s trajectory and the next ones, up to ``cfg.demos`` distinct ones: the
    shortest of those reaching the goal where ``first`` does, else of those reaching
    ``cfg.demo_score`` or ``first``'s score. Each is cut where it first reaches the goal or
    ``cfg.demo_score``: where the goal does not end the episode (Montezuma's ``score>=400``),
    the cells past it hold the paths that reached it with steps added, copies rather than
    other ways there; the shortest entries are the nearest the goal, where the ways differ."""
    by_goal = cfg.demo_score is None and bool(archive.goal[first])
    order = [first]
    if cfg.demos > 1:
        n = len(archive)
        if by_goal:
            pool = np.flatnonzero(archive.goal[:n] > 0)
        else:
            bar = archive.score[first] if cfg.demo_score is None else cfg.demo_score
            pool = np.flatnonzero(archive.score[:n] >= bar)
        ranked = pool[np.argsort(archive.length[pool], kind="stable")]
        order += [int(i) for i in ranked if int(i) != first]
    demos: list[Demo] = []
    seen: set[bytes] = set()
    for i in order[: 20 * cfg.demos]:
        demo = runner.demo(tree.actions(int(archive.node[i]), int(archive.length[i])))
        if by_goal and any(demo.goals):  # up to where it first gets there, no further
            demo = demo.prefix(int(np.argmax([bool(g) for g in demo.goals])))
        elif cfg.demo_score is not None:
            demo = demo.prefix(int(np.argmax(np.asarray(demo.returns) >= cfg.demo_score)))
        key = np.asarray(demo.actions, dtype=np.int64).tobytes()
        if key not in seen:
            seen.add(key)
            demos.append(demo)
        if len(demos) == cfg.demos:
            break
    return demos


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
    if isinstance(space, gym.spaces.Discrete):
        v = np.zeros(int(space.n), dtype=np.float32)
        v[int(obs) - int(space.start)] = 1.0
        return v
    if isinstance(obs, dict):
        sub = space.spaces if isinstance(space, gym.spaces.Dict) else {}
        parts = [features(obs[k], sub.get(k)) for k in sorted(obs) if not isinstance(obs[k], str)]
        return np.concatenate(parts) if parts else np.zeros(1, dtype=np.float32)
    return np.asarray(obs, dtype=np.float32).ravel()


def policy_input(
    env: Any, space: Any = None, kind: str = "ram-bits", score: float = 0.0
) -> np.ndarray:
    """What the policy sees of ``env`` now (``space``: the observation space of its inner
    Gymnasium environment, for one-hot features; ``kind``: the policy's features).

    Atari: the 128 RAM bytes as 1,024 bits, not 100,800 pixel values (a policy a CPU can
    train). Bits, not only bytes scaled to [0, 1]: a pixel of x is then a flipped input rather
    than a change of 1/255, and on Montezuma the start point stalled without it. With
    ``ram-bits+bytes`` the scaled bytes follow the bits: a distance between two positions is
    then a difference of two inputs, which a bit pattern is not. With ``ram-bits+score`` one
    input follows them, sign(score) * log10(1 + |score|), ``score`` being the episode's return
    from reset: Montezuma's key (100) makes it 2, its door (400) 2.6."""
    if isinstance(env, AtariEnv):
        ram = env.ram()
        bits = np.unpackbits(ram).astype(np.float32)
        if kind == "ram-bits+bytes":
            return np.concatenate([bits, ram.astype(np.float32) / 255.0])
        if kind == "ram-bits+score":
            return np.append(bits, np.float32(np.sign(score) * np.log10(1 + abs(score))))
        return bits
    return features(env.observe(), space)


class Runner:
    """The run's environment with noise, observations as features, starts from snapshots."""

    def __init__(self, store: RunStore, cfg: RobustifyConfig, index: int = 0):
        self.store = store
        self.worker = Worker.from_config(store.config)
        self.env = self.worker.env
        self.seed = store.config.seed
        self.cfg = cfg
        # Environment 0 draws its noise as the single environment did (old runs continue).
        self.rng = np.random.default_rng(cfg.seed if index == 0 else [cfg.seed, index])
        self.atari = isinstance(self.env, AtariEnv)
        self.per_frame = self.atari and cfg.sticky_unit == "frame" and cfg.sticky > 0
        self.features = f"ram-{cfg.ram}" if self.atari else "vector"
        inner = getattr(self.env, "env", None)
        self.space = getattr(inner, "observation_space", None)
        space = self.env.action_space
        if not isinstance(space, gym.spaces.Discrete):  # a Box, MultiDiscrete or Tuple action
            self.worker.close()
            raise ConfigError(
                f"robustify trains a policy over discrete actions; {store.config.env}'s are {space}"
            )
        self.n_actions = int(space.n)
        self.life_lost = False
        self.goal = Goal.parse(store.config.goal)
        self.terminated = False
        self.noops_taken = 0
        self.prev = 0
        self.score = 0.0  # the episode's return from reset (a start point's is the demo's)

    def sibling(self, index: int) -> Runner:
        """Another copy of the environment, with noise of its own, for batched training."""
        return Runner(self.store, self.cfg, index)

    def obs(self) -> np.ndarray:
        return policy_input(self.env, self.space, self.features, self.score)

    def demo(self, actions: np.ndarray) -> Demo:
        env = self.env
        env.reset(self.seed)
        self.score = 0.0
        snaps, rets, obs = [env.snapshot()], [0.0], [self.obs()]
        goals = [self.goal.reached(env, 0.0, False)]
        for a in actions:
            r, term, _ = env.step(a)
            snaps.append(env.snapshot())
            rets.append(rets[-1] + r)
            self.score = rets[-1]
            obs.append(self.obs())
            goals.append(self.goal.reached(env, rets[-1], term))
        return Demo(snaps, rets, obs, np.asarray(actions), goals)

    def start(self, demo: Demo, t: int, noops: bool) -> None:
        self.env.restore(demo.snapshots[t])
        self.score = float(demo.returns[t])
        self.prev = int(demo.actions[t - 1]) if t > 0 else 0
        self.terminated = False
        if noops and self.atari and t == 0:
            self.noops()

    def from_reset(self) -> None:
        """An evaluation episode: the reset state, then (Atari) up to 30 random no-ops."""
        self.env.reset(self.seed)
        self.prev = 0
        self.score = 0.0
        self.terminated = False
        self.noops_taken = 0
        if self.atari:
            self.noops()

    def noops(self) -> None:
        self.noops_taken = int(self.rng.integers(self.cfg.max_noops + 1))
        for _ in range(self.noops_taken):
            self.score += self.env.step(0)[0]

    def reached(self, score: float) -> bool | None:
        """Whether the state now reaches the run's goal, ``score`` being the return from
        reset (None: no goal applies)."""
        return self.goal.reached(self.env, score, self.terminated)

    def step(self, action: int) -> tuple[float, bool]:
        lives = self.env.lives() if self.atari else 0
        if self.per_frame:
            repeat = self.rng.random(self.env.frames_per_step) < self.cfg.sticky
            r, term, trunc, self.prev = self.env.step_frames(action, self.prev, repeat)
        else:
            if self.rng.random() < self.cfg.sticky:
                action = self.prev
            self.prev = action
            r, term, trunc = self.env.step(action)
        self.terminated = term
        self.life_lost = self.atari and self.env.lives() < lives
        self.score += r
        return r, term or trunc


def architecture(runner: Runner, demos: list[Demo]) -> Architecture:
    hidden = tuple(int(w) for w in widths(runner.cfg.hidden).split(","))
    return Architecture(len(demos[0].observations[0]), runner.n_actions, hidden, runner.features)


def rewards(demos: list[Demo], atari: bool, cfg: RobustifyConfig) -> Callable[[Any], Any]:
    """A reward as training sees it (``cfg.rewards``). ``scaled`` is atari-reset's autoscale
    (train_atari.py, get_mean_reward: the mean of |G_t| over every step of the demonstrations,
    G_t their discounted return from t with the training's discount), which keeps the rewards'
    proportions where the sign makes Montezuma's door (300) worth its key (100)."""
    rule = cfg.rewards if cfg.rewards != "auto" else ("sign" if atari else "raw")
    if rule == "sign":
        return np.sign
    if rule == "raw":
        return lambda r: r
    factor = scale(demos, cfg.gamma)
    return lambda r: r * factor


def scale(demos: list[Demo], gamma: float) -> float:
    """``--rewards scaled``'s factor (1 where the demonstrations collect nothing)."""
    g = np.concatenate([discounted(np.diff(np.asarray(d.returns, dtype=np.float32)), gamma)
                        for d in demos])  # fmt: skip
    mean = float(np.mean(np.abs(g)))
    return AUTOSCALE / mean if mean > 0 else 1.0


def imitation(demos: list[Demo], runner: Runner, cfg: RobustifyConfig) -> Imitation:
    """Every demonstrated step, with the discounted return from there (rewards as training
    sees them, ``rewards``)."""
    obs, actions, returns = [], [], []
    shape = rewards(demos, runner.atari, cfg)
    for demo in demos:
        r = shape(np.diff(np.asarray(demo.returns, dtype=np.float32)))
        obs += demo.observations[:-1]
        actions.append(demo.actions.astype(np.int64))
        returns.append(discounted(r, cfg.gamma))
    return Imitation(np.array(obs), np.concatenate(actions), np.concatenate(returns))


def self_imitation(
    demos: list[Demo],
    runner: Runner,
    cfg: RobustifyConfig,
    starts: list[Starts],
    rng: np.random.Generator,
) -> SelfImitation:
    """Self-imitation of ``demos`` as ``cfg.sil_sample`` says, around ``starts`` as they move."""
    data = imitation(demos, runner, cfg)
    if cfg.sil_sample == "all":
        return SelfImitation(data, cfg.sil, lambda n: rng.integers(len(data.actions), size=n))
    offsets = np.cumsum([0] + [len(d.actions) for d in demos[:-1]])
    lengths = np.array([len(d.actions) for d in demos])

    def pick(n: int) -> np.ndarray:
        d = rng.integers(len(demos), size=n)
        start = np.array([s.start for s in starts])[d]
        span = np.array([max(1, s.span) for s in starts])[d]
        top = np.minimum(lengths[d], start + SIL_AFTER)
        low = np.maximum(0, start - span + 1 - SIL_BEFORE)
        low = np.where(rng.random(n) < SIL_FROM_RESET, 0, low)
        return offsets[d] + low + (rng.random(n) * (top - low)).astype(np.int64)

    return SelfImitation(data, cfg.sil * SIL_SHARE, pick)


# Options that may change when a run continues from its checkpoint: the rest must match.
CONTINUABLE = ("frames", "threads", "eval_episodes", "checkpoint_every")
# Options kept with a checkpoint (a continued training takes them) that may change all the same:
# they change nothing in the training.
FREE = ("eval_every",)
# Settings added since checkpoints were first written, and the value an older one had.
BEFORE = {"envs": 1, "lag": 0, "ram": "bits", "sticky_unit": "action", "sil_sample": "all",
          "hidden": "64,64", "rewards": "auto", "life_loss": "end", "from_reset": 0.0,
          "anneal": "none"}  # fmt: skip


def settings(cfg: RobustifyConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k not in CONTINUABLE}


def fingerprint(demos: list[Demo]) -> list[str]:
    return [hashlib.sha256(np.asarray(d.actions, dtype=np.int64).tobytes()).hexdigest()[:16]
            for d in demos]  # fmt: skip


@dataclass
class Trained:
    model: Any
    history: list[dict]  # one row per move of a start point
    start: int  # the earliest start point reached (0: the reset state)
    frames: int
    resumed_at: int = 0  # frames done when this session began (0: from scratch)
    cpu_seconds: float = 0.0  # this process's CPU time over the steps trained in it


class Stopped(Exception):
    """A training asked to stop (``stop``: SIGTERM, Ctrl-C) that wrote its checkpoint at the
    end of the rollout it was in: the same command continues it, losing nothing."""

    def __init__(self, name: str, frames: int, total: int):
        super().__init__(f"{name} stopped at {frames:,} of {total:,} steps")
        self.name, self.frames, self.total = name, frames, total


def ppo(
    runner: Runner,
    demos: list[Demo],
    cfg: RobustifyConfig,
    backward: bool,
    checkpoint: Path | None = None,
    status: Callable[[str], None] | None = None,
    on_save: Callable[[Any, int], None] | None = None,
    on_eval: Callable[[Any, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Trained:
    """Train; with ``backward`` start from the demonstrations, moving back (else from reset).
    ``cfg.envs`` copies of the environment step together, one batched forward pass choosing
    all their actions, each copy's episodes starting at a point of its own drawn from the
    start points: the papers' many workers (atari-reset's PPO runner steps its ``nenvs``
    environments as one batch, atari_reset/ppo.py ``Runner.run``, and each of them restarts
    at a point it samples in the window, atari_reset/wrappers.py ``ReplayResetEnv.reset``;
    Go-Explore's fork, robustified, runs the same). With ``checkpoint``, the whole training
    state (network, optimiser, start points, random generators, each environment's episode
    under way as a snapshot) is written there every ``cfg.checkpoint_every`` seconds and at
    the end, and a run finds it and continues: the result is the one an uninterrupted run
    gets. ``status`` gets a progress line after each rollout, ``on_save`` the model and its
    training steps after each checkpoint, ``on_eval`` the same each time the steps pass a
    multiple of ``cfg.eval_every`` (torch's random state put back after it: the training does
    not change). When ``stop()`` turns true the rollout under way is finished and learned
    from, the checkpoint written, and Stopped raised."""
    import torch

    arch = architecture(runner, demos)
    model = policy_network(arch.inputs, arch.actions, cfg.seed, arch.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=1e-5)
    starts = [
        Starts(len(d.actions), cfg.step or max(1, len(d.actions) // 20), cfg.advance_rate,
               cfg.window, cfg.start_window)
        for d in demos
    ] if backward else []  # fmt: skip
    rng = np.random.default_rng([cfg.seed, 1])  # start points, demonstrations, SIL samples
    sil = self_imitation(demos, runner, cfg, starts, rng) if backward and cfg.sil > 0 else None
    shape = rewards(demos, runner.atari, cfg)
    n = max(1, cfg.envs)
    envs = [runner] + [runner.sibling(i) for i in range(1, n)]
    per_env = max(1, cfg.rollout // n)  # steps of each environment between updates
    history: list[dict] = []
    recent: deque[bool] = deque(maxlen=100)  # episodes from start points: matched or not
    resets: deque[bool] = deque(maxlen=100)  # --from-reset episodes: reached the goal or not
    # [steps, episodes] ended from reset and from start points, for --from-reset's draw.
    spent = {"reset": [0, 0], "demo": [0, 0]}
    frames = 0

    def from_reset() -> bool:
        """Whether the next episode plays from reset (--from-reset). Go-Explore's Phase 2
        draws its virtual demonstration from the start against the real ones with weights
        1 / (its mean episode length so far) (atari_reset/wrappers.py, ReplayResetEnv.reset,
        demo_selection normalize_by_target), which gives both as many steps; here a share
        ``cfg.from_reset`` of them, 0.5 being theirs."""
        if not backward or cfg.from_reset <= 0:
            return False  # draws nothing: runs without the option keep their random stream
        mean = {k: s / n if n else 1.0 for k, (s, n) in spent.items()}
        w = cfg.from_reset / mean["reset"]
        return bool(rng.random() < w / (w + (1 - cfg.from_reset) / mean["demo"]))

    def begin(e: int) -> list:
        fresh = from_reset()
        d = int(rng.integers(len(demos))) if backward and len(demos) > 1 and not fresh else 0
        point = starts[d].sample(rng) if backward and not fresh else 0
        envs[e].start(demos[d], point, noops=True)
        return [d, point, 0.0, 0, fresh]

    name = "backward" if backward else "ppo_from_reset"
    resumed_at = 0
    if checkpoint is not None and checkpoint.exists():
        saved = load_checkpoint(checkpoint, cfg, demos, name)
        state = json.loads(saved["state"])
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        rng.bit_generator.state = state["rng"]
        for s, st in zip(starts, state["starts"], strict=True):
            s.restore(st)
        history, frames = state["history"], int(state["frames"])
        recent.extend(bool(x) for x in state["recent"])
        # A checkpoint from before batching holds its one environment under singular keys.
        episodes = [list(e) for e in state.get("episodes", [state.get("episode")])]
        episodes = [[*e, False][:5] for e in episodes]  # before --from-reset: 4 columns
        resets.extend(bool(x) for x in state.get("resets", []))
        spent.update(state.get("spent", {}))
        snaps = saved["snapshots"] if "snapshots" in saved else [saved["snapshot"]]
        prevs = state.get("prevs", [state.get("prev")])
        noise = state.get("runner_rngs", [state.get("runner_rng")])
        # Checkpoints from before the score was kept: the episode's start and its return.
        scores = state.get("scores") or [demos[e[0]].returns[e[1]] + e[2] for e in episodes]
        for env, snap, prev, r, score in zip(envs, snaps, prevs, noise, scores, strict=True):
            env.env.restore(to_bytes(snap))
            env.prev, env.terminated, env.score = int(prev), False, float(score)
            env.rng.bit_generator.state = r
        resumed_at = frames
    else:
        episodes = [begin(e) for e in range(n)]

    def save() -> None:
        if checkpoint is None:
            return
        state = {"frames": frames, "target": cfg.frames, "history": history,
                 "recent": list(recent), "starts": [s.state() for s in starts],
                 "resets": list(resets), "spent": spent,
                 "episodes": episodes, "prevs": [e.prev for e in envs],
                 "scores": [e.score for e in envs], "rng": rng.bit_generator.state,
                 "runner_rngs": [e.rng.bit_generator.state for e in envs]}  # fmt: skip
        save_checkpoint(checkpoint, {
            "format": FORMAT, "method": name, "settings": json.dumps(settings(cfg)),
            "demos": fingerprint(demos), "model": model.state_dict(),
            "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state(),
            "snapshots": [to_tensor(e.env.snapshot()) for e in envs], "state": json.dumps(state),
        })  # fmt: skip
        if on_save is not None:
            on_save(model, frames)

    obs = np.stack([e.obs() for e in envs])
    t0 = last_save = time.monotonic()
    cpu0 = time.process_time()
    while frames < cfg.frames:
        before = frames
        buf: dict[str, list] = {k: [] for k in BUFFER}
        for _ in range(per_env):
            # More entropy for the first actions after the start point (atari_reset/wrappers.py,
            # ReplayResetEnv.step: 'increase_entropy' while action_nr < starting_point + 100).
            # From reset (--from-reset), the first 100: the reference's virtual demonstration
            # starts at 0.
            boost = np.array([backward and (n_ if fresh else p + n_ - starts[d].start)
                              < cfg.entropy_boost for d, p, _, n_, fresh in episodes],
                             dtype=bool)  # fmt: skip
            actions, logp, v = act_batch(model, obs, boost)
            signals = np.zeros(n, dtype=np.float32)
            overs = np.zeros(n, dtype=bool)
            after = np.empty_like(obs)
            for e, env in enumerate(envs):
                d, point, ep_return, ep_len, fresh = episodes[e]
                demo, T = demos[d], len(demos[d].actions)
                r, done = env.step(int(actions[e]))
                frames += 1
                ep_return += r
                ep_len += 1
                if demo.reaches_goal:
                    matched = bool(env.reached(demo.returns[point] + ep_return))
                else:
                    matched = ep_return >= demo.returns[T] - demo.returns[point] and (
                        demo.returns[T] > demo.returns[point] or done
                    )
                # The task's own step limit (--max-steps) bounds every training episode, not
                # only those from reset: a win that wanders past it would teach nothing the
                # evaluation can use. The papers' code bounds episodes by the demonstration's
                # pace instead (--lag); a demonstration from Phase 1 wanders itself, so its
                # pace is no bound on MultiRoom's 120 steps.
                limit = episode_limit(T - point)
                if cfg.max_steps:
                    limit = min(limit, cfg.max_steps)
                # From reset no lag: the reference's from-start episodes end only by its
                # 'slowstart' rule, which Go-Explore's factor of 2e7 leaves unused.
                at, score = point + ep_len, demo.returns[point] + ep_return
                behind = cfg.lag > 0 and not fresh and lags(demo.returns, at, score, cfg.lag)
                # On Atari a lost life ends the training episode only with --life-loss end
                # (DQN's rule, Mnih et al. 2015), and by default rewards are clipped to their
                # sign; Montezuma's 100s and 300s would otherwise swamp the shared body with
                # the value loss.
                died = env.life_lost and cfg.life_loss == "end"
                overs[e] = done or died or matched or ep_len >= limit or behind
                signals[e] = float(shape(r))
                episodes[e] = [d, point, ep_return, ep_len, fresh]
                if overs[e]:
                    kind = spent["reset" if fresh else "demo"]
                    kind[0], kind[1] = kind[0] + ep_len, kind[1] + 1
                    (resets if fresh else recent).append(matched)
                    if backward and not fresh and starts[d].record(point, matched):
                        history.append(_move(frames, starts, d))
                    episodes[e] = begin(e)
                after[e] = env.obs()
            for k, x in zip(buf, (obs, actions, logp, v, signals, overs, boost), strict=True):
                buf[k].append(x)
            obs = after
        step_cfg = cfg
        if cfg.anneal == "linear":  # by the steps done when the rollout began, as ppo2
            alpha = max(0.0, 1.0 - before / cfg.frames)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * alpha
            step_cfg = replace(cfg, clip=cfg.clip * alpha)
        update(model, opt, buf, obs, step_cfg, sil)
        for d, s in enumerate(starts):
            if s.update():
                history.append(_move(frames, starts, d))
        if status is not None:
            rate = (frames - resumed_at) / max(time.monotonic() - t0, 1e-9)
            status(_status(name, frames, cfg.frames, rate, starts, demos, recent, resets))
        every = cfg.eval_every
        if on_eval is not None and every and frames // every > before // every:
            with torch.random.fork_rng():
                on_eval(model, frames)
        stopping = stop is not None and stop() and frames < cfg.frames
        if stopping or time.monotonic() - last_save >= cfg.checkpoint_every or frames >= cfg.frames:
            save()
            last_save = time.monotonic()
        if stopping:
            for env in envs[1:]:
                env.worker.close()
            raise Stopped(name, frames, cfg.frames)
    for env in envs[1:]:
        env.worker.close()
    start = min((s.start for s in starts), default=0)
    return Trained(model, history, start, frames, resumed_at, time.process_time() - cpu0)


BUFFER = ("obs", "act", "logp", "val", "rew", "done", "boost")  # a rollout's columns


def _move(frames: int, starts: list[Starts], d: int) -> dict:
    row = {"frames": frames, "start": starts[d].start}
    return row if len(starts) == 1 else {**row, "demo": d}


def _status(name, frames, total, rate, starts, demos, recent, resets) -> str:
    line = f"{name}: {human(frames)}/{human(total)} steps, {human(rate)} steps/s"
    if starts:
        points = zip(starts, demos, strict=True)
        line += ", start " + " ".join(f"{s.start}/{len(d.actions)}" for s, d in points)
    if recent:
        line += f", matched {np.mean(recent):.0%} of the last {len(recent)}"
    if resets:
        line += f", from reset {np.mean(resets):.0%} of the last {len(resets)}"
    if rate > 0:
        line += f", ETA {duration(max(total - frames, 0) / rate)}"
    return line


def load_checkpoint(path: Path, cfg: RobustifyConfig, demos: list[Demo], name: str) -> dict:
    """The checkpoint at ``path``, refused (naming --fresh) when it was made with other
    settings or other demonstrations: continuing it would mix two trainings."""
    saved = load_file(path, "a checkpoint written by stepstone robustify")
    if saved.get("format") != FORMAT or saved.get("method") != name:
        raise ConfigError(f"{path} is not a checkpoint of {name}; add --fresh to start over")
    was = json.loads(saved["settings"])
    now = settings(cfg)
    changed = [k for k in now if k not in FREE and was.get(k, BEFORE.get(k)) != now[k]]
    if changed:
        diff = ", ".join(f"{flag(k)} {was.get(k, BEFORE.get(k))} (now {now[k]})" for k in changed)
        raise ConfigError(
            f"{path} was trained with {diff}: give the same options to continue it, or add "
            "--fresh to start over"
        )
    if list(saved["demos"]) != fingerprint(demos):
        raise ConfigError(
            f"{path} was trained on other demonstrations (the archive has changed, or an older "
            "stepstone chose them): add --fresh to start over"
        )
    return saved


def flag(name: str) -> str:
    """The command-line flag of a RobustifyConfig field (``step``: --step-back)."""
    opt = {f.name: f.metadata.get(KEY) for f in fields(RobustifyConfig)}.get(name)
    return opt.flag if opt is not None and opt.flag else "--" + name.replace("_", "-")


def carry_over(
    path: Path, cfg: RobustifyConfig, log: Callable[[str], None] | None
) -> RobustifyConfig:
    """``cfg`` with every option it leaves at its default taken from the checkpoint at
    ``path``, the budget too (--frames): `stepstone robustify D` alone continues the training
    in D, whatever options began it. An option given another value is still refused by
    ``load_checkpoint``, naming --fresh."""
    if not path.exists():
        return cfg
    saved = load_file(path, "a checkpoint written by stepstone robustify")
    was = json.loads(saved.get("settings", "{}"))
    default = RobustifyConfig()
    taken: dict[str, Any] = {}
    for f in fields(RobustifyConfig):
        now = getattr(cfg, f.name)
        if KEY not in f.metadata or f.name in CONTINUABLE or now != getattr(default, f.name):
            continue
        then = was.get(f.name, BEFORE.get(f.name, now))
        if then != now:
            taken[f.name] = then
    target = json.loads(saved.get("state", "{}")).get("target")
    if target is not None and cfg.frames == default.frames and target != cfg.frames:
        taken["frames"] = int(target)
    if taken and log is not None:
        given = ", ".join(f"{flag(k)} {v}" for k, v in taken.items())
        log(
            f"continuing {path.name} with the options it was begun with: {given} (add --fresh "
            "to start over with the defaults)"
        )
    return replace(cfg, **taken)


def behaviour_cloning(runner: Runner, demos: list[Demo], cfg: RobustifyConfig) -> Any:
    """The baseline: the same network trained to output the demonstrations' actions."""
    import torch

    arch = architecture(runner, demos)
    model = policy_network(arch.inputs, arch.actions, cfg.seed, arch.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.as_tensor(np.array([o for d in demos for o in d.observations[:-1]]))
    y = torch.as_tensor(np.concatenate([d.actions for d in demos]).astype(np.int64))
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
    screens: list[np.ndarray] | None = None,
    greedy: bool = False,
    failures: list[dict] | None = None,
) -> tuple[float, float]:
    """Episodes from reset under sticky actions (and no-ops), each until it succeeds, ends, or
    takes ``limit`` actions: the share that succeed, and the mean return (the game score up to
    success: an episode stops there). Actions are sampled from the policy (``greedy``: its
    most probable one). ``on_episode`` gets each episode's actions as taken (sticky repeats
    and no-ops included: they replay it unless repeats are drawn per frame) and its return;
    ``screens`` gets the first episode's screens as it plays (Atari); ``failures`` gets, for
    each episode that fails, how it ended: by the environment or at the step limit, and the
    policy's action at which it first lost a life (Atari), a policy that never recovers from
    an early death being the usual cause on Montezuma."""
    wins, returns = 0, []
    for episode in range(episodes):
        runner.from_reset()
        taken = [0] * runner.noops_taken
        shots = screens if screens is not None and episode == 0 else None
        total, done, won, first_loss = 0.0, False, False, None
        while not done and not won and (n := len(taken) - runner.noops_taken) < limit:
            if shots is not None:
                shots.append(runner.env.observe().copy())
            a, _, _ = act(model, runner.obs(), greedy)
            r, done = runner.step(a)
            taken.append(runner.prev)
            total += r
            won = success(total)
            if runner.life_lost and first_loss is None:
                first_loss = n + 1
        if shots is not None:
            shots.append(runner.env.observe().copy())
        wins += won
        returns.append(total)
        if failures is not None and not won:
            failures.append({"ended": done, "first_life_lost": first_loss})
        if on_episode is not None:
            on_episode(taken, total)
    return wins / episodes, float(np.mean(returns))


def lags(returns: list[float], at: int, score: float, lag: int) -> bool:
    """Whether an episode whose score is ``score`` after ``at`` actions counted from reset
    (the start point's and its own) lags the demonstration, ``returns[t]`` its return after
    t actions, by ``lag`` actions: the score is below every return the demonstration had
    from ``lag`` actions before that point to ``lag`` after. Go-Explore's Phase 2 (its fork
    of atari-reset, atari_reset/wrappers.py, ReplayResetEnv.step, done reason 'badscore',
    ``--allowed_lag`` 50) does this with its own returns indexed one action earlier, from
    ``action_nr - lag`` (clipped to the last) up to ``action_nr + lag``, exclusive, once
    ``action_nr`` passes ``lag``; here the same span of the demonstration's path."""
    if at <= lag:
        return False
    end = len(returns) - 1
    return score < min(returns[min(at - lag + 1, end) : min(at + lag, end) + 1])


EVAL_RUNNER = 10**6  # the index of --eval-every's copy of the environment (its noise)


def _rank(evaluation: dict) -> tuple[float, float]:
    return evaluation["success"], evaluation["score"]


def _evaluations(path: Path) -> list[dict]:
    """--eval-every's record so far (none when missing; refused, naming --fresh, if damaged)."""
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text())
        return [{"frames": int(r["frames"]), "success": float(r["success"]),
                 "score": float(r["score"])} for r in rows]  # fmt: skip
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path} is damaged ({e}); delete it, or add --fresh") from None


def episode_limit(demo_length: int) -> int:
    """Actions an episode may take: twice the demonstration's, and 20 more."""
    return 2 * demo_length + 20


def robustify(
    store: RunStore,
    cfg: RobustifyConfig,
    baselines: Collection[str] = ("bc", "ppo"),
    status: Callable[[str], None] | None = None,
    fresh: bool = False,
    log: Callable[[str], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> dict:
    """Train from the run's best trajectories (or those ``demo_score`` picks); return success
    rates and scores under noise, and the start points' history. Each training continues
    from its checkpoint in D/robustify/ (``fresh``: deletes them first). ``status`` gets a
    progress line after every rollout, ``log`` a message now and then; ``stop`` turning true
    checkpoints the training under way and raises Stopped."""
    try:
        import torch
    except ImportError:
        raise ConfigError("robustify needs torch: pip install 'stepstone[torch]'") from None
    out = store.path / "robustify"
    if not fresh:
        cfg = carry_over(out / CHECKPOINT.format("backward"), cfg, log)
    torch.set_num_threads(cfg.threads)
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
    # A training begun here (a continued one may carry 'end' from before the option existed).
    begun = fresh or not (out / CHECKPOINT.format("backward")).exists()
    if cfg.life_loss == "end" and not runner.atari and begun:
        raise ConfigError(
            f"--life-loss acts on Atari's lives and {store.config.env} has none: leave it out"
        )
    runner.env.reset(runner.seed)
    try:
        runner.obs()
    except (TypeError, ValueError):  # a page or a text game: nothing numeric to train on
        raise ConfigError(
            f"robustify trains on numeric observations and {store.config.env} shows text; "
            f"export its trajectories as chat records for a language-model agent instead: "
            f"stepstone export {store.path} --format jsonl"
        ) from None
    demos = demonstrations(runner, archive, TrajectoryTree(store.nodes), best, cfg)
    demo = demos[0]
    if log is not None and len(demos) < cfg.demos:
        log(f"the archive holds {len(demos)} distinct demonstrations, not {cfg.demos}")
    if log is not None and cfg.rewards == "scaled":
        log(f"rewards scaled by {scale(demos, cfg.gamma):.4g} (--rewards scaled)")
    out.mkdir(exist_ok=True)
    if fresh:
        for name in ("backward", "ppo_from_reset"):
            (out / CHECKPOINT.format(name)).unlink(missing_ok=True)
        for name in (EVALUATIONS, BEST, Path(BEST).with_suffix(".json").name):
            (out / name).unlink(missing_ok=True)
    arch = architecture(runner, demos)
    info = {"inputs": arch.inputs, "actions": arch.actions, "demo_length": len(demo.actions),
            "demo_return": demo.returns[-1], "goal": demo.reaches_goal, "sticky": cfg.sticky,
            "sticky_unit": cfg.sticky_unit, "max_steps": cfg.max_steps}  # fmt: skip

    def write_policy(model: Any, frames: int, name: str = POLICY) -> None:
        # With every checkpoint, so that `stepstone evaluate` can run a training under way
        # (``frames`` says how far it was).
        now = {**info, "frames": frames}
        save_checkpoint(out / name, {"format": FORMAT, "architecture": arch.as_dict(), **now,
                                     "state_dict": model.state_dict()})  # fmt: skip
        info_path = (out / name).with_suffix(".json")
        info_path.write_text(json.dumps({**now, **arch.as_dict()}, indent=1) + "\n")

    limit = cfg.max_steps or episode_limit(len(demo.actions))
    evaluations = [] if fresh else _evaluations(out / EVALUATIONS)

    def evaluate_now(model: Any, frames: int) -> None:
        """--eval-every: the policy from reset, in a copy of the environment whose noise is
        the same at every evaluation; the best so far (success, then score) kept as BEST."""
        # A continued training evaluates again what came after its checkpoint.
        evaluations[:] = [e for e in evaluations if e["frames"] < frames]
        copy = runner.sibling(EVAL_RUNNER)
        try:
            torch.manual_seed(cfg.seed)
            rate, score = evaluate(copy, model, cfg.eval_episodes, limit, demo.success(copy))
        finally:
            copy.worker.close()
        best = max(evaluations, key=_rank, default=None)
        row = {"frames": frames, "success": rate, "score": score}
        evaluations.append(row)
        better = best is None or _rank(row) > _rank(best)
        if better:
            write_policy(model, frames, BEST)
        tmp = out / (EVALUATIONS + ".tmp")  # a kill while writing leaves the last record
        tmp.write_text(json.dumps(evaluations, indent=1) + "\n")
        tmp.replace(out / EVALUATIONS)
        if log is not None:
            kept = " (the best so far: kept)" if better else ""
            log(f"evaluated at {frames:,} steps: success {rate:.2f}, mean score {score:g}{kept}")

    path = out / CHECKPOINT.format("backward")
    trained = ppo(runner, demos, cfg, True, path, status, write_policy, evaluate_now, stop)
    if log is not None and trained.resumed_at:
        log(f"backward: continued from its checkpoint at {trained.resumed_at:,} steps")
    write_policy(trained.model, trained.frames)
    result = {
        "config": asdict(cfg),
        "demo_length": len(demo.actions),
        "demo_return": demo.returns[-1],
        "demos": [{"length": len(d.actions), "return": d.returns[-1]} for d in demos],
        "success_criterion": criterion(demo.reaches_goal, demo.returns[-1]),
        "sticky_unit": cfg.sticky_unit if runner.atari else None,  # a unit only Atari has
        "start_moves": trained.history,
        "reached_reset": trained.start == 0,
        "frames_backward": trained.frames,
        "cpu_seconds_backward": trained.cpu_seconds,  # of the steps trained in this session
        "resumed_at_backward": trained.resumed_at,
    }
    models = {"backward": lambda: trained.model}
    if "bc" in baselines:
        models["bc"] = lambda: behaviour_cloning(runner, demos, cfg)
    if "ppo" in baselines:
        path = out / CHECKPOINT.format("ppo_from_reset")
        models["ppo_from_reset"] = lambda: (
            ppo(runner, demos, cfg, False, path, status, stop=stop).model
        )
    if evaluations:
        result["evaluations"] = evaluations
        result["best"] = max(evaluations, key=_rank)
    success = demo.success(runner)
    for name, train in models.items():
        rate, score = evaluate(runner, train(), cfg.eval_episodes, limit, success)
        result[f"success_{name}"], result[f"score_{name}"] = rate, score
    runner.worker.close()
    return result
