"""The policy of Phase 2 and its update: PPO, with self-imitation of the demonstrations.

PPO follows CleanRL's single-file version (vwxyzjn/cleanrl, ppo.py: clipped objective, GAE, a
small actor-critic MLP). Two additions come from Go-Explore's Phase 2 code, the fork of
atari-reset it runs (uber-research/atari-reset, atari_reset/ppo.py, Model.__init__):

- self-imitation learning (Oh et al. 2018) on the demonstrations beside PPO: the policy's
  log-likelihood of a demonstrated action, weighted by how far the demonstration's discounted
  return from there exceeds the value the network predicts (``relu(R - V)``), plus a value
  loss pulling V up to R (also through a relu), minus an entropy bonus;
- more entropy just after an episode's start point: the logits are halved (policies.py,
  ``tf.where(E>0, pi/2., pi)``) for the first actions of an episode, both when acting and in
  the update, so that the log-probabilities PPO compares are those the actions were drawn from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

HIDDEN = (64, 64)
FORMAT = 1  # of policy.pt; a file without "format" is the bare state dict of before


@dataclass(frozen=True)
class Architecture:
    """What it takes to build the network again: saved in policy.pt beside the weights."""

    inputs: int
    actions: int
    hidden: tuple[int, ...] = HIDDEN
    features: str = "vector"  # "ram-bits" (Atari: the 128 RAM bytes as bits) or "vector"
    kind: str = "mlp-tanh"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "inputs": self.inputs, "actions": self.actions,
                "hidden": list(self.hidden), "features": self.features}  # fmt: skip


def policy_network(n_in: int, n_actions: int, seed: int, hidden: tuple[int, ...] = HIDDEN) -> Any:
    import torch

    torch.manual_seed(seed)

    class ActorCritic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[Any] = []
            width = n_in
            for h in hidden:
                layers += [torch.nn.Linear(width, h), torch.nn.Tanh()]
                width = h
            self.body = torch.nn.Sequential(*layers)
            self.pi = torch.nn.Linear(width, n_actions)
            self.v = torch.nn.Linear(width, 1)

        def forward(self, x: Any) -> tuple[Any, Any]:
            h = self.body(x)
            return self.pi(h), self.v(h).squeeze(-1)

    return ActorCritic()


def act(model: Any, obs: np.ndarray, greedy: bool = False, boost: bool = False) -> tuple:
    """An action, its log-probability and the state's value; ``boost`` halves the logits."""
    a, logp, v = act_batch(model, obs[None], np.array([boost]), greedy)
    return int(a[0]), float(logp[0]), float(v[0])


def act_batch(
    model: Any, obs: np.ndarray, boost: np.ndarray, greedy: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``act`` for the N environments stepped together: one forward pass for all of them
    (CleanRL's ppo.py, ``get_action_and_value`` on the vectorised observations)."""
    import torch

    with torch.no_grad():
        logits, value = model(torch.as_tensor(obs))
        logits = torch.where(torch.as_tensor(boost).unsqueeze(-1), logits / 2, logits)
        dist = torch.distributions.Categorical(logits=logits)
        a = logits.argmax(-1) if greedy else dist.sample()
        return a.numpy(), dist.log_prob(a).numpy(), value.numpy()


@dataclass(frozen=True)
class Imitation:
    """The demonstrations' steps for self-imitation: observations, actions, and the discounted
    return (rewards as training sees them) from each step to the demonstration's end."""

    obs: np.ndarray
    actions: np.ndarray
    returns: np.ndarray


@dataclass(frozen=True)
class SelfImitation:
    """Self-imitation as an update uses it: the demonstrated steps, the weight of its loss
    beside PPO's, and ``pick(n)``, the indices of ``n`` steps to imitate (where on the
    demonstrations imitation looks is the caller's choice)."""

    data: Imitation
    weight: float
    pick: Callable[[int], np.ndarray]


def discounted(rewards: np.ndarray, gamma: float) -> np.ndarray:
    out = np.zeros(len(rewards), dtype=np.float32)
    acc = 0.0
    for t in reversed(range(len(rewards))):
        acc = rewards[t] + gamma * acc
        out[t] = acc
    return out


def update(
    model: Any,
    opt: Any,
    buf: dict,
    last_obs: np.ndarray,
    cfg: Any,
    sil: SelfImitation | None = None,
) -> None:
    """PPO epochs over one rollout; with ``sil``, each minibatch also takes
    ``sil.weight * (pg + cfg.sil_value * vf - cfg.sil_entropy * H)`` on as many demonstrated
    steps, those ``sil.pick`` draws (atari_reset/ppo.py, Model.__init__, ``sil_loss``)."""
    import torch

    # Columns are [T, N]: T steps of N environments; GAE runs along each environment's own
    # steps, then the rollout is flattened step by step for the minibatches.
    rew = np.asarray(buf["rew"], dtype=np.float32)
    done = np.asarray(buf["done"], dtype=np.float32)
    val = np.asarray(buf["val"], dtype=np.float32)
    _, _, last_v = act_batch(model, last_obs, np.zeros(len(last_obs), dtype=bool))
    adv = np.zeros_like(rew)
    gae = np.zeros(rew.shape[1], dtype=np.float32)
    for t in reversed(range(len(rew))):
        nxt = last_v if t == len(rew) - 1 else val[t + 1]
        delta = rew[t] + cfg.gamma * nxt * (1 - done[t]) - val[t]
        gae = delta + cfg.gamma * cfg.lam * (1 - done[t]) * gae
        adv[t] = gae
    ret = (adv + val).reshape(-1)
    adv = adv.reshape(-1)
    obs = torch.as_tensor(np.asarray(buf["obs"], dtype=np.float32).reshape(len(adv), -1))
    acts = torch.as_tensor(np.asarray(buf["act"], dtype=np.int64).reshape(-1))
    old_logp = torch.as_tensor(np.asarray(buf["logp"], dtype=np.float32).reshape(-1))
    boost = torch.as_tensor(np.asarray(buf["boost"], dtype=bool).reshape(-1))
    adv_t, ret_t = torch.as_tensor(adv), torch.as_tensor(ret)
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(obs)).split(cfg.minibatch):
            logits, v = model(obs[idx])
            logits = torch.where(boost[idx].unsqueeze(-1), logits / 2, logits)
            dist = torch.distributions.Categorical(logits=logits)
            ratio = (dist.log_prob(acts[idx]) - old_logp[idx]).exp()
            a = adv_t[idx]
            a = (a - a.mean()) / (a.std() + 1e-8) if len(a) > 1 else a
            pg = -torch.min(ratio * a, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a).mean()
            loss = pg + 0.5 * ((v - ret_t[idx]) ** 2).mean() - cfg.entropy * dist.entropy().mean()
            if sil is not None and sil.weight > 0:
                loss = loss + sil.weight * sil_loss(model, sil.data, sil.pick(len(idx)), cfg)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()


def sil_loss(model: Any, sil: Imitation, pick: np.ndarray, cfg: Any) -> Any:
    """Self-imitation on the demonstrated steps ``pick``: Go-Explore's Phase 2 settings
    (robustified/phase2_atari.sh: --sil_pg_weight_by_value --sil_vf_relu, sil_vf_coef 0.01,
    sil_ent_coef 1e-5). The weight relu(R - V) stops imitating where the policy's own value
    already reaches the demonstration's return."""
    import torch

    logits, v = model(torch.as_tensor(sil.obs[pick]))
    dist = torch.distributions.Categorical(logits=logits)
    r = torch.as_tensor(sil.returns[pick])
    weight = torch.relu(r - v.detach())
    pg = -(dist.log_prob(torch.as_tensor(sil.actions[pick])) * weight).mean()
    vf = 0.5 * (torch.relu(r - v) ** 2).mean()
    return pg + cfg.sil_value * vf - cfg.sil_entropy * dist.entropy().mean()
