"""Inverse-dynamics labelling: actions for trajectories that were recorded without them.

Semi-supervised offline RL (Zheng et al. 2023, "Semi-Supervised Offline Reinforcement
Learning with Action-Free Trajectories") trains an inverse dynamics model (IDM),
p(a_t | s_t, s_t+1), on the few trajectories that have actions and uses it to label the rest,
which then train a policy like any labelled data. Here: a Minari dataset's episodes are split
into a labelled fraction and an action-free remainder (whose actions are hidden from
training and used only to measure the labels); the IDM is a small MLP on (s_t, s_t+1 - s_t)
with a cross-entropy loss. Discrete action spaces only.

The episodes of an all-cells export are branches of one tree: they share their prefixes, so
most of an action-free episode's transitions are often the very transitions a labelled one
trained on. The model trains on each distinct transition once, and its accuracy is measured
on the distinct action-free transitions whose pair of observations never occurs in training,
beside the majority-action baseline on the same transitions. The relabelled dataset, written
with Minari's API, marks each step whose action was inferred (info ``action_inferred``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError


@dataclass
class LabelReport:
    episodes: int
    labelled_episodes: int
    transitions: int  # distinct transitions in the dataset
    trained_on: int  # distinct labelled transitions the model learnt from
    unseen: int  # distinct action-free transitions whose observations training never had
    unseen_accuracy: float  # the labels' accuracy on those (nan when there are none)
    majority_baseline: float  # always answering the most common trained action, on those
    label_accuracy: float  # on every action-free step, seen in training or not


def _flat(obs: Any) -> np.ndarray:
    """Observations of one episode (T+1 steps) as a float matrix, dict fields side by side."""
    if isinstance(obs, dict):
        return np.concatenate([_flat(obs[k]) for k in sorted(obs)], axis=1)
    arr = np.asarray(obs, dtype=np.float32)
    return arr.reshape(len(arr), -1)


def transitions(episode: Any) -> tuple[np.ndarray, np.ndarray]:
    s = _flat(episode.observations)
    return np.concatenate([s[:-1], s[1:] - s[:-1]], axis=1), np.asarray(episode.actions)


def _keys(x: np.ndarray) -> list[bytes]:
    """Each transition's identity: the bytes of its two observations (the IDM's input)."""
    return [row.tobytes() for row in x]


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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains faster on one thread (10x on 2 cores)
    try:
        for _ in range(epochs):
            for batch in torch.randperm(len(xt)).split(128):
                loss = torch.nn.functional.cross_entropy(model(xt[batch]), yt[batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)

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
        # Minari's "Use download=True" names its API, not an option of this command
        said = str(e).replace(" Use download=True to download the dataset.", "").rstrip(". ")
        hint = ""
        if (Path(dataset_id) / "run.sqlite").exists():  # a run directory given for a dataset
            hint = (
                f"; {dataset_id} is a run directory: export it first ('stepstone export "
                f"{dataset_id}') and label the dataset id that prints"
            )
        raise ConfigError(f"cannot load Minari dataset {dataset_id!r}: {said}{hint}") from e
    import gymnasium as gym

    space = dataset.action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise ConfigError(f"inverse dynamics here needs discrete actions, not {space}")
    episodes = list(dataset.iterate_episodes())
    if len(episodes) < 2:
        raise ConfigError(
            f"{dataset_id} holds {len(episodes)} episode: labelling needs episodes with actions "
            "to learn from and others to label; export the run with --select all-cells"
        )
    rng = np.random.default_rng(seed)
    n_lab = max(1, round(labelled * len(episodes)))
    if n_lab >= len(episodes):
        raise ConfigError(f"{len(episodes)} episodes leave none to label at {labelled:.0%}")
    order = rng.permutation(len(episodes))
    lab, free = sorted(order[:n_lab].tolist()), order[n_lab:].tolist()
    start = int(space.start)
    data = {i: transitions(episodes[i]) for i in range(len(episodes))}
    train_set: dict[tuple[bytes, int], np.ndarray] = {}
    for i in lab:
        x, y = data[i]
        for key, row, a in zip(_keys(x), x, y, strict=True):
            train_set.setdefault((key, int(a)), row)
    x_train = np.stack(list(train_set.values()))
    y_train = np.array([a - start for _, a in train_set], dtype=np.int64)
    predict = train(x_train, y_train, int(space.n), epochs, seed)
    majority = int(np.bincount(y_train, minlength=int(space.n)).argmax())

    seen = {key for key, _ in train_set}
    labels, unseen, every = {}, {}, set()
    correct = total = 0
    for i in free:
        x, y = data[i]
        labels[i] = predict(x) + start
        correct += int((labels[i] == y).sum())
        total += len(y)
        for key, a, guess in zip(_keys(x), y, labels[i], strict=True):
            every.add((key, int(a)))
            if key not in seen:
                unseen[(key, int(a))] = int(guess) == int(a)
    every.update(train_set)
    truth = np.array([a - start for _, a in unseen])
    if out_id:
        _write(dataset, episodes, labels, out_id)
    return LabelReport(
        episodes=len(episodes),
        labelled_episodes=n_lab,
        transitions=len(every),
        trained_on=len(train_set),
        unseen=len(unseen),
        unseen_accuracy=float(np.mean(list(unseen.values()))) if unseen else float("nan"),
        majority_baseline=float(np.mean(truth == majority)) if unseen else float("nan"),
        label_accuracy=correct / total,
    )


def _write(dataset: Any, episodes: list, labels: dict, out_id: str) -> None:
    """The dataset again, with inferred actions where ``labels`` has them, marked per step."""
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    from ..export.minari import storable

    meta = list(dataset.storage.get_episode_metadata(range(len(episodes))))
    source = dataset.storage.metadata
    buffers = []
    for i, ep in enumerate(episodes):
        infos = dict(ep.infos or {})
        infos["action_inferred"] = np.full(len(ep.actions) + 1, i in labels)
        buffers.append(EpisodeBuffer(
            id=i,
            seed=meta[i].get("seed"),
            observations=ep.observations,
            actions=labels.get(i, np.asarray(ep.actions)),
            rewards=list(ep.rewards),
            terminations=list(ep.terminations),
            truncations=list(ep.truncations),
            infos=storable(infos),
        ))  # fmt: skip
    inferred = ", ".join(map(str, sorted(labels)))
    minari.create_dataset_from_buffers(
        out_id, buffers, env=dataset.spec.env_spec, eval_env=dataset.spec.env_spec,
        observation_space=dataset.observation_space, action_space=dataset.action_space,
        algorithm_name="stepstone label (inverse dynamics)",
        author=source.get("author") or "stepstone",
        author_email=source.get("author_email"),
        code_permalink=source.get("code_permalink"),
        requirements=source.get("requirements"),
        description=f"{dataset.spec.dataset_id} with the actions of episodes {inferred} "
        "inferred by an inverse dynamics model (info action_inferred marks them)",
        data_format="arrow",
        jpeg_encoding=False,
    )  # fmt: skip
