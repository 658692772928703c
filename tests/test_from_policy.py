"""--from-policy: Phase 1 returns to cells by running the robustified policy from reset."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from conftest import USER_ENV_MODULE

from stepstone import replay
from stepstone.archive import Archive
from stepstone.cli import main
from stepstone.config import ExploreConfig
from stepstone.engine import Engine, Task
from stepstone.selectors import CountBased
from stepstone.store.sqlite import RunStore
from stepstone.trajectories import TrajectoryTree
from stepstone.worker import Worker

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory):
    """A corridor explored and robustified (a policy walking right to the end, under sticky
    actions 0.25), as tests/test_robustify.py trains one; once for the module (25 s)."""
    from stepstone.learn.robustify import RobustifyConfig, robustify

    home = tmp_path_factory.mktemp("from_policy")
    (home / "user_envs.py").write_text(USER_ENV_MODULE)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(home))
        run = home / "demo"
        argv = "explore UserCorridor-v0 --import user_envs --frames 20k --workers 1"
        argv += f" --goal terminated --run-dir {run} --no-progress"
        assert main(argv.split()) == 0
        cfg = RobustifyConfig(frames=8_000, step=5, window=10, eval_episodes=10)
        assert robustify(RunStore.open(run), cfg, baselines=())["success_backward"] >= 0.8
        yield run, "user_envs"


def test_returns_by_the_policy_explore_replay_and_resume(policy_run, tmp_path, capsys):
    demo, module = policy_run
    run = tmp_path / "sid"
    argv = [
        "explore", "UserCorridor-v0", "--import", module, "--goal", "terminated",
        "--from-policy", str(demo), "--sticky", "0.25", "--explore-steps", "5",
        "--frames", "1500", "--workers", "1", "--backend", "inline", "--run-dir", str(run),
        "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    store = RunStore.open(run)
    config = store.config
    assert config.from_policy == str(demo / "robustify" / "policy.pt") and config.sticky == 0.25
    summary = json.loads((run / "summary.json").read_text())
    # Every cell of the corridor lies on the policy's way, so returns reach it; the rate is
    # what the run measured, and the missed returns are counted in the engine's state.
    n, missed = summary["explorations"], store.state().get("missed_returns", 0)
    assert summary["return_success"] == round(1 - missed / n, 4) >= 0.9
    assert "returns by policy" in (run / "report.md").read_text()
    cells_before = summary["cells"]
    assert cells_before > 10
    # Entries found after a return by the policy are stored from reset, and replay to their
    # cell and score (the actions as taken, sticky repeats included).
    archive, tree = store.load_archive(), TrajectoryTree(store.nodes)
    worker = Worker.from_config(config)
    replayed = list(replay.check(worker, config.seed, tree, archive))
    assert replayed and all(r.ok for r in replayed)
    assert main(["replay", str(run)]) == 0
    frames = store.state()["frames"]
    store.close()

    # resume continues the run with the policy its configuration keeps
    resume = ["resume", str(run), "--frames", "3000", "--workers", "1", "--backend", "inline"]
    assert main([*resume, "--no-progress"]) == 0
    store = RunStore.open(run)
    assert store.state()["frames"] > max(frames, 3000 - 200)
    assert len(store.load_archive()) >= cells_before
    store.close()


def _replays(worker, actions, found):
    """Each entry's actions from reset reach its cell with its reward (the corridor is
    deterministic: the sticky repeats are in the actions as taken)."""
    env = worker.env
    for f in found:
        env.reset(0)
        reward = sum(env.step(int(a))[0] for a in actions[: f.steps])
        assert (worker.cell_fn(env), reward) == (f.cell, f.reward), f


def test_a_return_keeps_the_cells_it_passes_and_a_missed_one_explores_nothing(policy_run):
    """As the reference archives every step of its rollouts, the return's too
    (policy_based/goexplore_py/archives.py, update_archive), a return keeps the cells it
    passes; one that misses explores nothing from where it ended, and is no discovery."""
    demo, module = policy_run
    config = ExploreConfig(env="UserCorridor-v0", imports=(module,), goal="terminated",
                           from_policy=str(demo), sticky=0.25)  # fmt: skip
    worker = Worker.from_config(config)
    limit = worker.policy_return().limit
    engine = Engine(Archive(), TrajectoryTree(), CountBased(), seed=0)
    engine.add_root(worker.root())
    # A cell nowhere on the corridor: the policy walks to the end, where the episode ends.
    (task,) = engine.ask(1)
    result = worker.run(replace(task, cell=999))
    assert result.missed and result.returned == len(result.actions) == result.frames
    assert 39 <= result.frames <= limit
    # Every one of the corridor's 40 cells was passed; the last ends it with reward 1.
    assert len(result.found) == 40  # the reset's cell too: this worker has no table yet
    end = max(result.found, key=lambda f: f.steps)
    assert (end.reward, end.steps, end.terminal, end.success) == (1.0, result.returned, True, True)
    _replays(worker, result.actions, result.found)
    engine.tell(result)
    archive = engine.archive
    assert len(archive) == 40 and engine.missed_returns == 1 and engine.success_frame
    root = archive.index[task.cell]
    assert (archive.times_chosen[root], archive.discoveries[root]) == (1, 0)
    # Their trajectories start at the reset and replay to each cell and score.
    checked = list(replay.check(worker, 0, engine.trajectories, archive))
    assert len(checked) == 40 and all(r.ok for r in checked)

    # A cell on the way, 20 steps right of the start: reached, and explored from; the
    # result's actions are the return's and then the exploration's, all from reset.
    (task,) = engine.ask(1)
    env = worker.env
    env.reset(0)
    for _ in range(20):
        env.step(1)
    task = engine.pending[task.task_id] = replace(task, cell=worker.cell_fn(env))
    result = worker.run(task)
    n = result.returned
    assert not result.missed and 20 <= n < len(result.actions) == result.frames
    env.reset(0)
    for a in result.actions[:n]:
        env.step(int(a))
    assert worker.cell_fn(env) == task.cell
    _replays(worker, result.actions, result.found)
    worker.close()


def test_a_return_plays_on_after_a_lost_life_and_the_exploration_ends_at_the_next(
    policy_run, tmp_path
):
    """The policy plays on after a life lost, as robustify trained it and evaluate scores it;
    under --end-on-life-loss the exploration after the return ends at the next life lost,
    not at once (a life the return lost is not the exploration's)."""
    demo, module = policy_run
    loose = tmp_path / "policy.pt"  # a corridor policy, on the corridor that takes lives
    shutil.copy(demo / "robustify" / "policy.pt", loose)
    config = ExploreConfig(env="UserLivesCorridor-v0", imports=(module,), goal="terminated",
                           from_policy=str(loose), sticky=0.25, end_on_life_loss=True)  # fmt: skip
    worker = Worker.from_config(config)
    root = worker.root()
    env = worker.env
    env.reset(0)
    for _ in range(20):
        env.step(1)
    twenty = worker.cell_fn(env)  # past the life lost at 10
    for seed in range(5):
        result = worker.run(Task(seed, twenty, root.snapshot, 0.0, 0, 0, explore_seed=seed))
        n = result.returned
        assert not result.missed and n >= 20 and result.frames == len(result.actions)
        # Where the walker stood after each step (the corridor moves it by one).
        explored = _positions(result.actions)[n:]
        assert len(explored) >= 1
        # It stopped at the second life (position 24), or the episode's 60 steps ran out.
        assert explored[-1] == 24 or len(result.actions) == 60, explored
        assert 24 not in explored[:-1]
        _replays(worker, result.actions, result.found)
    worker.close()


def _positions(actions):
    """The corridor's position after each action (a wall at 0)."""
    pos, out = 0, []
    for a in actions:
        pos = max(0, pos + (1 if a == 1 else -1))
        out.append(pos)
    return np.array(out)


def test_bad_policies_and_refused_combinations_write_nothing(policy_run, tmp_path, capsys):
    demo, module = policy_run
    run = tmp_path / "never"
    base = ["explore", "UserCorridor-v0", "--import", module, "--frames", "200",
            "--run-dir", str(run), "--no-progress"]  # fmt: skip
    cases = {
        ("--from-policy", str(tmp_path / "nothing")): "no policy there",
        ("--from-policy", str(demo), "--seed", "3"): "give --seed 0",
        ("--from-policy", str(demo), "--shards", "2"): "drop --shards",
        ("--from-policy", str(demo), "--backend", "ray"): "use --backend processes or inline",
        ("--from-policy", str(demo / "run.sqlite")): "run robustify again",
        ("--from-policy", str(demo), "--sticky", "1"): "--sticky is a probability",
    }
    for extra, words in cases.items():
        capsys.readouterr()
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, (extra, err)
        assert not run.exists()
    # another environment: refused by its run's configuration, or, for a policy file away
    # from its run directory, by the sizes of its input and output
    loose = tmp_path / "policy.pt"
    shutil.copy(demo / "robustify" / "policy.pt", loose)
    lake = ["explore", "FrozenLake-v1", "--frames", "200", "--run-dir", str(run), "--no-progress"]
    for policy, words in (
        (demo, "was trained on UserCorridor-v0"),
        (loose, "takes 40 inputs and 2 actions, FrozenLake-v1 gives 16 and 4"),
    ):
        capsys.readouterr()
        assert main([*lake, "--from-policy", str(policy)]) == 2
        assert words in capsys.readouterr().err
        assert not run.exists()


def test_runs_without_the_policy_store_their_configuration_as_before():
    data = json.loads(ExploreConfig(env="CartPole-v1").to_json())
    assert "from_policy" not in data and "sticky" not in data
    assert ExploreConfig.from_json(ExploreConfig(env="CartPole-v1").to_json()).sticky == 0.0
    assert np.isclose(ExploreConfig(env="CartPole-v1", sticky=0.25).sticky, 0.25)
