"""Inverse-dynamics labelling: actions for trajectories that were recorded without them.

Semi-supervised offline RL (Zheng et al. 2023, "Semi-Supervised Offline Reinforcement
Learning with Action-Free Trajectories") trains an inverse dynamics model (IDM),
p(a_t | s_t, s_t+1), on the few trajectories that have actions and uses it to label the rest,
which then train a policy like any labelled data. Here: a Minari dataset's episodes are split
into a labelled fraction and an action-free remainder (whose actions are hidden from
training and used only to measure the labels); the IDM is a small MLP on (s_t, s_t+1 - s_t)
with a cross-entropy loss; a tenth of the labelled transitions is held out to report its
accuracy on labelled data it did not train on. The relabelled dataset is written back with
Minari's API. Discrete action spaces only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError


@dataclass
class LabelReport:
    episodes: int
    labelled_episodes: int
    transitions: int
    held_out_accuracy: float  # on labelled transitions kept out of training
    label_accuracy: float  # on the action-free episodes' hidden true actions
    majority_baseline: float  # always predicting the most common labelled action


def _flat(obs: Any) -> np.ndarray:
    """Observations of one episode (T+1 steps) as a float matrix, dict fields side by side."""
    if isinstance(obs, dict):
        return np.concatenate([_flat(obs[k]) for k in sorted(obs)], axis=1)
    arr = np.asarray(obs, dtype=np.float32)
    return arr.reshape(len(arr), -1)


def transitions(episode: Any) -> tuple[np.ndarray, np.ndarray]:
    s = _flat(episode.observations)
    return np.concatenate([s[:-1], s[1:] - s[:-1]], axis=1), np.asarray(episode.actions)


def train(x: np.ndarray, y: np.ndarray, n_actions: int, epochs: int, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, n_actions),
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt = torch.tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.int64)
    for _ in range(epochs):
        for batch in torch.randperm(len(xt)).split(128):
            loss = torch.nn.functional.cross_entropy(model(xt[batch]), yt[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = model(torch.tensor((z - mean) / std, dtype=torch.float32))
        return logits.argmax(dim=1).numpy()

    return predict


def label(
    dataset_id: str, labelled: float = 0.1, out_id: str | None = None, epochs: int = 200,
    seed: int = 0,
) -> LabelReport:  # fmt: skip
    try:
        import minari
        import torch  # noqa: F401
    except ImportError:
        raise ConfigError(
            "labelling needs minari and torch: pip install 'stepstone[all]'"
        ) from None
    if not 0 < labelled < 1:
        raise ConfigError(f"--labelled is a fraction between 0 and 1, not {labelled}")
    try:
        dataset = minari.load_dataset(dataset_id)
    except Exception as e:  # Minari raises several types for a missing or broken dataset
        raise ConfigError(f"cannot load Minari dataset {dataset_id!r}: {e}") from e
    import gymnasium as gym

    space = dataset.action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise ConfigError(f"inverse dynamics here needs discrete actions, not {space}")
    episodes = list(dataset.iterate_episodes())
    rng = np.random.default_rng(seed)
    n_lab = max(1, round(labelled * len(episodes)))
    if n_lab >= len(episodes):
        raise ConfigError(f"{len(episodes)} episodes leave none to label at {labelled:.0%}")
    order = rng.permutation(len(episodes))
    lab, free = set(order[:n_lab].tolist()), order[n_lab:].tolist()
    xs, ys = zip(*(transitions(episodes[i]) for i in sorted(lab)), strict=True)
    x, y = np.concatenate(xs), np.concatenate(ys)
    held = rng.random(len(x)) < 0.1
    if held.all() or not held.any():
        held[:] = False
        held[: max(1, len(x) // 10)] = True
    predict = train(x[~held], y[~held], int(space.n), epochs, seed)
    held_acc = float((predict(x[held]) == y[held]).mean())
    majority = float((y[held] == np.bincount(y[~held], minlength=int(space.n)).argmax()).mean())

    labels, correct, total = {}, 0, 0
    for i in free:
        xi, yi = transitions(episodes[i])
        labels[i] = predict(xi)
        correct += int((labels[i] == yi).sum())
        total += len(yi)
    if out_id:
        _write(dataset, episodes, labels, out_id)
    return LabelReport(len(episodes), n_lab, len(x) + total, held_acc, correct / total, majority)


def _write(dataset: Any, episodes: list, labels: dict, out_id: str) -> None:
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    meta = list(dataset.storage.get_episode_metadata(range(len(episodes))))
    buffers = [
        EpisodeBuffer(
            id=i,
            seed=meta[i].get("seed"),
            observations=ep.observations,
            actions=labels.get(i, np.asarray(ep.actions)),
            rewards=list(ep.rewards),
            terminations=list(ep.terminations),
            truncations=list(ep.truncations),
            infos=ep.infos or {},
        )  # fmt: skip
        for i, ep in enumerate(episodes)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari's reminders of optional metadata
        minari.create_dataset_from_buffers(
            out_id, buffers, env=dataset.spec.env_spec,
            observation_space=dataset.observation_space, action_space=dataset.action_space,
            algorithm_name="stepstone label (inverse dynamics)", author="stepstone",
            description=f"{dataset.spec.dataset_id} with IDM-labelled actions",
            data_format="arrow",
        )  # fmt: skip
