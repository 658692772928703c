"""Exports: Minari datasets that replay exactly, chat JSONL/Parquet with pairs and labels."""

from __future__ import annotations

import json
import sys

import gymnasium as gym
import numpy as np
import pytest

from stepstone.cli import main
from stepstone.store.sqlite import RunStore


def explore(tmp_path, env: str, frames: str, capsys) -> str:
    run = tmp_path / "run"
    args = ["explore", env, "--frames", frames, "--workers", "1", "--run-dir", str(run)]
    assert main([*args, "--no-progress"]) == 0
    capsys.readouterr()
    return str(run)


def test_minari_round_trip(tmp_path, monkeypatch, capsys):
    """Every exported episode, replayed from its seed, gives the stored observations/rewards."""
    minari = pytest.importorskip("minari")
    pytest.importorskip("minigrid")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    run = explore(tmp_path, "MiniGrid-DoorKey-5x5-v0", "20k", capsys)
    assert main(["export", run, "--format", "minari", "--select", "all-cells"]) == 0
    dataset_id = "stepstone/MiniGrid_DoorKey_5x5_v0-all-cells-v0"
    assert dataset_id in capsys.readouterr().out
    dataset = minari.load_dataset(dataset_id)
    cells = len(RunStore.open(run).load_archive())
    assert dataset.total_episodes == cells - 1  # every cell but the start state
    requirements = dataset.storage.metadata["requirements"]
    assert {r.split("==")[0] for r in requirements} == {"gymnasium", "minigrid"}
    env = dataset.recover_environment()  # the mission text filtered out, as stored
    seeds = [m["seed"] for m in dataset.storage.get_episode_metadata(range(cells - 1))]
    assert set(seeds) == {0}
    for episode, seed in zip(dataset.iterate_episodes(), seeds, strict=True):
        obs, _ = env.reset(seed=seed)
        assert np.array_equal(obs["image"], episode.observations["image"][0])
        for t, action in enumerate(episode.actions):
            obs, reward, term, trunc, _ = env.step(action)
            assert np.array_equal(obs["image"], episode.observations["image"][t + 1])
            assert reward == episode.rewards[t] and term == episode.terminations[t]
        assert episode.terminations[-1] or episode.truncations[-1]
    best = max(dataset.iterate_episodes(), key=lambda e: e.rewards.sum())
    assert best.rewards.sum() == pytest.approx(RunStore.open(run).load_archive().score.max())


def test_atari_export_round_trips_bit_exactly(tmp_path, monkeypatch, capsys):
    """Frames are stored as they are (Minari would JPEG-encode them by default) and the dataset
    rebuilds its own environment: each episode replayed from its seed gives it back exactly."""
    minari = pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    run = str(tmp_path / "run")
    # fixed cells: many in 400 frames (dynamic ones are chosen from the first 1,000 steps)
    argv = ["explore", "ALE/Pong-v5", "--frames", "400", "--explore-steps", "20", "--cells",
            "downscale"]  # fmt: skip
    assert main([*argv, "--workers", "1", "--run-dir", run, "--no-progress"]) == 0
    argv = ["export", run, "--format", "minari", "--select", "all-cells"]
    assert main([*argv, "--author-email", "me@example.org"]) == 0
    assert "warning:" not in capsys.readouterr().err  # every field Minari asks for is filled
    dataset = minari.load_dataset("stepstone/ALE_Pong_v5-all-cells-v0")
    assert dataset.total_steps > 100
    meta = dataset.storage.metadata
    assert meta["jpeg_encoding"] is False
    assert meta["author_email"] == {"me@example.org"}
    assert meta["code_permalink"].startswith("stepstone==")
    names = {r.split("==")[0] for r in meta["requirements"]}
    assert names == {"ale-py", "gymnasium"}
    env = dataset.recover_environment()
    episodes = range(dataset.total_episodes)
    seeds = [m["seed"] for m in dataset.storage.get_episode_metadata(episodes)]
    for episode, seed in zip(dataset.iterate_episodes(), seeds, strict=True):
        obs, _ = env.reset(seed=int(seed))
        frames, rewards, ends = [obs], [], []
        for action in episode.actions:
            obs, reward, term, _, _ = env.step(action)
            frames.append(obs)
            rewards.append(reward)
            ends.append(term)
        assert episode.observations.dtype == np.uint8
        assert np.array_equal(np.stack(frames), episode.observations)
        assert np.array_equal(rewards, episode.rewards)
        assert np.array_equal(ends, episode.terminations)


GRID_MODULE = """
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Grid(gym.Env):
    # a 20 x 20 walk to the far corner, moved by a MultiDiscrete, MultiBinary or Tuple action
    def __init__(self, kind="md"):
        self.kind = kind
        self.action_space = {
            "md": spaces.MultiDiscrete([3, 3]), "mb": spaces.MultiBinary(4),
            "tuple": spaces.Tuple((spaces.Discrete(3), spaces.Discrete(3))),
        }[kind]
        self.observation_space = spaces.Box(0, 19, (2,), np.int64)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.p = np.array([0, 0])
        return self.p.copy(), {}

    def step(self, a):
        a = np.asarray(a)
        d = np.array([a[0] - a[1], a[2] - a[3]]) if self.kind == "mb" else a - 1
        self.p = np.clip(self.p + d, 0, 19)
        done = bool((self.p >= 10).all())
        return self.p.copy(), float(done), done, False, {}


for kind in ("md", "mb", "tuple"):
    gym.register(f"StepstoneGrid-{kind}-v0", entry_point="stepstone_grid:Grid",
                 kwargs={"kind": kind}, max_episode_steps=200)
"""


@pytest.mark.parametrize("env", ["StepstoneGrid-md-v0", "StepstoneGrid-mb-v0",
                                 "StepstoneGrid-tuple-v0", "Blackjack-v1"])  # fmt: skip
def test_multi_and_tuple_spaces_explore_and_round_trip(tmp_path, monkeypatch, capsys, env):
    """MultiDiscrete, MultiBinary and Tuple actions could not be stored ("cannot store a value
    of type ndarray"), and a Tuple observation (Blackjack's) or action was written as one
    array, which Minari refuses: each now explores, and its dataset replays exactly."""
    minari = pytest.importorskip("minari")
    (tmp_path / "stepstone_grid.py").write_text(GRID_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    run = str(tmp_path / "run")
    argv = ["explore", env, "--import", "stepstone_grid", "--frames", "3k", "--goal",
            "terminated", "--backend", "inline"]  # fmt: skip
    assert main([*argv, "--run-dir", run, "--no-progress"]) == 0
    assert main(["replay", run, "--cell", "goal"]) == 0
    assert main(["export", run, "--format", "minari", "--dataset-id", "me/grid-v0"]) == 0
    dataset = minari.load_dataset("me/grid-v0")
    env_ = dataset.recover_environment()
    (episode,) = dataset.iterate_episodes()

    def at(x, i):
        return tuple(at(v, i) for v in x) if isinstance(x, tuple) else x[i]

    obs, _ = env_.reset(seed=0)
    for t in range(len(episode.rewards)):
        action = at(episode.actions, t)
        obs, reward, *_ = env_.step(tuple(map(int, action)) if "tuple" in env else action)
        assert np.array_equal(np.asarray(obs), np.asarray(at(episode.observations, t + 1)))
        assert reward == episode.rewards[t]
    assert episode.terminations[-1] and (episode.rewards.sum() == 1 or "Grid" not in env)
    if "Grid" in env:  # Phase 2's policies choose among n actions: said in one line
        capsys.readouterr()
        assert main(["robustify", run]) == 2
        assert "robustify trains a policy over discrete actions; " in capsys.readouterr().err
    sys.modules.pop("stepstone_grid", None)


def test_chat_export_with_pairs_and_retrospective_labels(tmp_path, capsys):
    run = explore(tmp_path, "game24:4,7,8,8", "3k", capsys)
    out = tmp_path / "chat.jsonl"
    argv = ["export", run, "--format", "jsonl", "--select", "all-cells", "--out", str(out)]
    assert main([*argv, "--pairs"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    solved = [r for r in rows if r["success"]]
    assert solved and len(solved) < len(rows)
    first = solved[0]
    roles = [m["role"] for m in first["messages"]]
    assert roles == ["system", "user"] + ["assistant", "user"] * 3
    assert "make 24" in first["messages"][0]["content"]
    # The assistant turns are the arithmetic steps, ending in 24.
    assert first["messages"][-2]["content"].endswith("=24")
    assert first["label"].endswith("reach 24, combining two numbers at a time.")
    failed = next(r for r in rows if not r["success"] and len(r["actions"]) == 3)
    assert "reach 24" not in failed["label"]  # labelled with what it did reach

    pairs = [json.loads(x) for x in (tmp_path / "chat.pairs.jsonl").read_text().splitlines()]
    assert 0 < len(pairs) <= len(solved)
    by_entry = {r["entry"]: r for r in rows}
    for p in pairs:
        good, bad = (by_entry[e] for e in p["entries"])
        assert good["success"] and not bad["success"]
        n = p["shared_actions"]
        assert len(p["prompt"]) == 2 + 2 * n and p["prompt"][-1]["role"] == "user"
        assert good["messages"][: 2 + 2 * n] == bad["messages"][: 2 + 2 * n]  # the same state
        # Both go on from there, by different commands, and stop on a command of their own.
        assert p["chosen"] and p["rejected"]
        assert p["chosen"][0]["content"] != p["rejected"][0]["content"]
        assert p["chosen"][-1]["role"] == p["rejected"][-1]["role"] == "assistant"
        assert p["chosen"][-1]["content"].endswith("=24")
        assert p["prompt"] + p["chosen"] == good["messages"][:-1]
        assert p["prompt"] + p["rejected"] == bad["messages"][:-1]

    parquet = tmp_path / "top.parquet"
    argv = ["export", run, "--format", "parquet", "--select", "top-k", "--k", "3"]
    assert main([*argv, "--out", str(parquet)]) == 0
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(parquet)
    scores = table.column("score").to_pylist()
    assert table.num_rows == 3 and scores[0] == 1.0 and scores == sorted(scores, reverse=True)


def test_text_export_refuses_non_text_runs(tmp_path, capsys):
    run = explore(tmp_path, "CartPole-v1", "2k", capsys)
    assert main(["export", run, "--format", "jsonl"]) == 2
    assert "--format minari" in capsys.readouterr().err


def test_inverse_dynamics_is_measured_on_transitions_it_never_saw(tmp_path, monkeypatch, capsys):
    """10% of episodes keep their actions; the labels of the rest are scored only where the
    pair of observations never occurs in training (an all-cells export's episodes share their
    prefixes), beside the majority action of training; inferred actions are marked."""
    minari = pytest.importorskip("minari")
    pytest.importorskip("torch")
    pytest.importorskip("minigrid")
    from stepstone.learn.idm import label, transitions

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    run = explore(tmp_path, "MiniGrid-DoorKey-5x5-v0", "20k", capsys)
    assert main(["export", run, "--format", "minari", "--select", "all-cells"]) == 0
    source = "stepstone/MiniGrid_DoorKey_5x5_v0-all-cells-v0"
    report = label(source, 0.1, "stepstone/labelled-v0", epochs=100)
    assert report.labelled_episodes == round(0.1 * report.episodes)
    relabelled = minari.load_dataset("stepstone/labelled-v0")
    assert relabelled.total_episodes == report.episodes
    assert relabelled.total_steps == minari.load_dataset(source).total_steps
    trained, held = {}, {}
    for given, ep in zip(minari.load_dataset(source).iterate_episodes(),
                         relabelled.iterate_episodes(), strict=True):  # fmt: skip
        inferred = ep.infos["action_inferred"]
        assert len(set(inferred)) == 1
        x, y = transitions(given)
        if not inferred[0]:
            assert np.array_equal(ep.actions, given.actions)
            trained.update({(r.tobytes(), int(a)): int(a) for r, a in zip(x, y, strict=True)})
        else:
            held.update({(r.tobytes(), int(a)): int(a) for r, a in zip(x, y, strict=True)})
    assert sum(not ep.infos["action_inferred"][0] for ep in relabelled.iterate_episodes()) == (
        report.labelled_episodes
    )
    seen = {key for key, _ in trained}
    unseen = [a for (key, _), a in held.items() if key not in seen]
    assert report.trained_on == len(trained) and report.unseen == len(unseen) > 0
    majority = np.bincount(list(trained.values())).argmax()
    assert report.majority_baseline == pytest.approx(np.mean(np.array(unseen) == majority))
    assert 0 <= report.unseen_accuracy <= 1
    # Most action-free steps repeat a trained transition: the all-steps figure is inflated.
    assert report.unseen < len(held) and report.label_accuracy > report.unseen_accuracy
    assert main(["label", source, "--labelled", "1.5"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err


def _cartpole(**kwargs):
    return gym.make("CartPole-v1")


def test_an_environment_registered_by_a_function_is_refused_and_no_dataset_is_left(
    tmp_path, monkeypatch, capsys
):
    """Minari stores the spec to rebuild the environment; Gymnasium cannot store a function
    as its entry point, and the export raised mid-write, leaving a half dataset under the id
    (the next export was refused: "a Minari dataset ... exists")."""
    pytest.importorskip("minari")
    from minari.storage.local import get_dataset_path

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    gym.register("UserByFunction-v0", entry_point=_cartpole)
    run = explore(tmp_path, "UserByFunction-v0", "1k", capsys)
    assert main(["export", run, "--format", "minari", "--dataset-id", "me/fn-v0"]) == 2
    err = capsys.readouterr().err
    assert "registered with a function" in err and "entry_point=" in err
    assert not get_dataset_path("me/fn-v0").exists()


def test_minari_without_its_arrow_extra_is_one_line(tmp_path, monkeypatch, capsys):
    """Minari installed on its own (no pyarrow) raised its ImportError as a traceback."""
    import importlib.util

    pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    run = explore(tmp_path, "CartPole-v1", "1k", capsys)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pyarrow" else find_spec(name, *a),
    )
    assert main(["export", run, "--format", "minari"]) == 2
    assert "needs Minari's pyarrow, not installed: pip install 'stepstone[minari]'" in (
        capsys.readouterr().err
    )


def test_label_on_one_episode_says_to_export_all_cells(tmp_path, monkeypatch, capsys):
    pytest.importorskip("minari")
    pytest.importorskip("torch")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    run = explore(tmp_path, "CartPole-v1", "1k", capsys)
    assert main(["export", run, "--format", "minari", "--dataset-id", "me/one-v0"]) == 0
    reminder = capsys.readouterr().err  # Minari's, not hidden, in one line
    assert reminder.startswith("warning: `author_email` is set to None")
    assert reminder.count("\n") == 1
    assert main(["label", "me/one-v0"]) == 2
    err = capsys.readouterr().err
    assert "1 episode" in err and "--select all-cells" in err and err.count("\n") == 1
    # the run directory given for its dataset: said, without Minari's "download=True"
    assert main(["label", run]) == 2
    err = capsys.readouterr().err
    assert f"is a run directory: export it first ('stepstone export {run}')" in err
    assert "download=True" not in err and err.count("\n") == 1


def chat_tokenizer():
    """A character tokenizer with a chat template, built here (nothing downloaded)."""
    import string

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = ["<pad>", "<eos>", *string.printable]
    core = Tokenizer(models.WordLevel({c: i for i, c in enumerate(chars)}, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<eos>", pad_token="<pad>", unk_token="<pad>"
    )
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}a:{% endif %}"
    )
    return tok


def test_preference_pairs_train_a_dpo_step(tmp_path, capsys):
    """TRL's DPOTrainer takes the pairs as they are written: both continuations tokenize to
    something, and one step moves the model."""
    pytest.importorskip("trl")
    torch = pytest.importorskip("torch")
    import copy

    from datasets import Dataset
    from transformers import GPT2Config, GPT2LMHeadModel
    from trl import DPOConfig, DPOTrainer

    run = explore(tmp_path, "game24:4,7,8,8", "3k", capsys)
    out = tmp_path / "chat.jsonl"
    argv = ["export", run, "--format", "jsonl", "--select", "all-cells", "--out", str(out)]
    assert main([*argv, "--pairs"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "chat.pairs.jsonl").read_text().splitlines()]
    data = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    tok = chat_tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_positions=512, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=1, eos_token_id=1, pad_token_id=0)  # fmt: skip
    model = GPT2LMHeadModel(config)
    before = [p.detach().clone() for p in model.parameters()]
    args = DPOConfig(
        output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=1,
        learning_rate=1e-2, report_to=[], use_cpu=True, save_strategy="no",
    )  # fmt: skip
    trainer = DPOTrainer(
        model=model, ref_model=copy.deepcopy(model), args=args, train_dataset=data,
        processing_class=tok,
    )  # fmt: skip
    for example in trainer.train_dataset:
        assert example["chosen_ids"] and example["rejected_ids"]
        assert example["chosen_ids"] != example["rejected_ids"]
    trainer.train()
    assert trainer.state.global_step == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_best_alone_makes_no_pair_and_says_so(tmp_path, capsys):
    run = explore(tmp_path, "game24:4,7,8,8", "3k", capsys)
    out = tmp_path / "best.jsonl"
    assert main(["export", run, "--format", "jsonl", "--pairs", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no preference pair" in err and "--select all-cells" in err
    assert not out.exists()


def test_hindsight_makes_each_failure_a_success_at_what_it_achieved(tmp_path, capsys):
    run = explore(tmp_path, "game24:4,7,8,8", "3k", capsys)
    out = tmp_path / "h.jsonl"
    argv = ["export", run, "--format", "jsonl", "--select", "all-cells", "--out", str(out)]
    assert main([*argv, "--hindsight"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    task = "Use 4 7 8 8 and + - * / to make 24, combining two numbers at a time."
    for r in rows:
        system = r["messages"][0]["content"]
        assert r["relabelled"] == (not r["success"])
        assert system == (task if r["success"] else r["label"])
        if r["relabelled"]:
            # The instruction states the numbers the game shows as left after the last step.
            left = r["messages"][-1]["content"].split("|")[0].removeprefix("left:").split()
            reached = system.partition(" to reach ")[2].partition(", combining")[0].split()
            assert sorted(reached) == sorted(left)
            assert "make 24" not in system
    assert any(r["relabelled"] for r in rows) and not all(r["relabelled"] for r in rows)


def test_chat_records_count_success_by_the_runs_own_goal(tmp_path, capsys):
    """With --goal terminated, a Game of 24 line that ends without making 24 is a success of
    that run, and its record says so; without it, only 24 is."""
    for goal, expect_unsolved_success in ((["--goal", "terminated"], True), ([], False)):
        run = tmp_path / f"run{len(goal)}"
        args = ["explore", "game24:1,1,1,1", "--frames", "400", "--workers", "1"]
        assert main([*args, "--run-dir", str(run), "--no-progress", *goal]) == 0
        out = tmp_path / f"all{len(goal)}.jsonl"
        assert main(["export", str(run), "--format", "jsonl", "--select", "all-cells",
                     "--out", str(out)]) == 0  # fmt: skip
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        unsolved = [r for r in rows if r["score"] == 0 and len(r["actions"]) == 3]
        assert unsolved, "a three-step line that does not make 24"
        assert all(r["success"] is expect_unsolved_success for r in unsolved)
    capsys.readouterr()


def test_a_text_run_points_to_chat_data_not_to_minari_or_robustify(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["explore", "game24:4,7,8,8", "--frames", "300", "--workers", "1",
                 "--run-dir", str(run), "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"stepstone export {run} --format jsonl" in out
    assert "--format minari" not in out and "robustify" not in out
    pytest.importorskip("torch")
    assert main(["robustify", str(run), "--frames", "1k"]) == 2
    err = capsys.readouterr().err
    assert "numeric observations" in err and "--format jsonl" in err and len(err.splitlines()) == 1


def test_by_default_a_run_that_reached_its_goal_exports_the_way_there(
    tmp_path, monkeypatch, capsys
):
    """Every step costs on CliffWalking: the best entry is near the start and not the goal,
    which a bare export wrote as the dataset; the goal's trajectory is what replay and
    robustify take."""
    minari = pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    run = explore(tmp_path, "CliffWalking-v1", "5k", capsys)
    archive = RunStore.open(run).load_archive()
    goal = archive.entry(archive.goal_entry())
    assert main(["export", run, "--format", "minari"]) == 0
    said = capsys.readouterr()
    assert "1 episodes" in said.out and "no more than the start" not in said.err
    (episode,) = minari.load_dataset("stepstone/CliffWalking_v1-goal-v0").iterate_episodes()
    assert len(episode.actions) == goal.length and episode.terminations[-1]
    assert episode.rewards.sum() == goal.score < -1
    assert main(["export", run, "--format", "minari", "--select", "best"]) == 0
    (best,) = minari.load_dataset("stepstone/CliffWalking_v1-best-v0").iterate_episodes()
    assert best.rewards.sum() > goal.score and not best.terminations[-1]  # asked for: as before
    # written as asked, with a word that it scores no more than standing still
    warning = capsys.readouterr().err
    assert (
        f"warning: the best trajectory scores {best.rewards.sum():g}, no more than the " in warning
    )
    assert "start state's 0" in warning and "--select all-cells" in warning
