"""Phase 2 survives being stopped: checkpoints, continuing, and the policy file it leaves."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stepstone.cli import main
from stepstone.store.sqlite import RunStore

torch = pytest.importorskip("torch")


@pytest.fixture
def corridor_run(tmp_path, user_env_module) -> Path:
    run = tmp_path / "run"
    argv = f"explore UserCorridor-v0 --import {user_env_module} --frames 20k --workers 1"
    argv += f" --goal terminated --run-dir {run} --no-progress"
    assert main(argv.split()) == 0
    return run


def weights(run: Path) -> dict:
    return torch.load(run / "robustify" / "policy.pt", weights_only=True)["state_dict"]


@pytest.mark.parametrize(
    "from_reset, eval_every, anneal",
    [(0.0, 0, "none"), (0.5, 0, "none"), (0.0, 1_000, "none"), (0.0, 0, "linear")],
)
def test_an_interrupted_training_continues_to_the_policy_of_an_uninterrupted_one(
    corridor_run, from_reset, eval_every, anneal
):
    from stepstone.learn.robustify import RobustifyConfig, robustify

    store = RunStore.open(corridor_run)
    cfg = RobustifyConfig(frames=4_000, step=5, window=10, eval_episodes=5, checkpoint_every=0,
                          from_reset=from_reset, eval_every=eval_every,
                          anneal=anneal)  # fmt: skip
    whole = robustify(store, cfg, baselines=("ppo",), fresh=True)
    expected = weights(corridor_run)

    calls = []

    def stop_at_third(line: str) -> None:
        calls.append(line)
        if len(calls) == 3:  # after the third rollout's update, before its checkpoint
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        robustify(store, cfg, baselines=("ppo",), status=stop_at_third, fresh=True)
    assert re.match(r"backward: 1.54k/4k steps, [\d.k]+ steps/s, start \d+/39", calls[-1])
    notes: list[str] = []
    again = robustify(store, cfg, baselines=("ppo",), log=notes.append)
    notes = [n for n in notes if not n.startswith("evaluated at")]  # (--eval-every's)
    assert notes == ["backward: continued from its checkpoint at 1,024 steps"]
    got = weights(corridor_run)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in got)
    for key in ("start_moves", "success_backward", "score_backward", "success_ppo_from_reset"):
        assert again[key] == whole[key]
    assert again.get("evaluations") == whole.get("evaluations")  # --eval-every's record too
    assert ("evaluations" in whole) == bool(eval_every)
    # Done: a third call trains nothing more and gives the same result.
    assert robustify(store, cfg, baselines=("ppo",))["start_moves"] == whole["start_moves"]


def test_eval_every_keeps_the_best_policy_and_changes_nothing_in_the_training(corridor_run, capsys):
    """--eval-every evaluates the policy from reset as training goes, keeps the best one, and
    leaves the training as it was: the same final weights, start moves and evaluation."""
    from dataclasses import replace

    from stepstone.learn.evaluate import load_policy
    from stepstone.learn.robustify import (
        EVAL_RUNNER,
        RobustifyConfig,
        Runner,
        episode_limit,
        evaluate,
        robustify,
        success_test,
    )

    store = RunStore.open(corridor_run)
    cfg = RobustifyConfig(frames=4_000, step=5, window=10, eval_episodes=5)
    plain = robustify(store, cfg, baselines=(), fresh=True)
    expected = weights(corridor_run)
    assert "evaluations" not in plain
    assert not (corridor_run / "robustify" / "policy-best.pt").exists()
    notes: list[str] = []
    cfg = replace(cfg, eval_every=1_000)
    result = robustify(store, cfg, baselines=(), fresh=True, log=notes.append)
    got = weights(corridor_run)
    assert all(torch.equal(got[k], expected[k]) for k in got)
    assert (result["start_moves"], result["success_backward"], result["score_backward"]) == (
        plain["start_moves"], plain["success_backward"], plain["score_backward"])  # fmt: skip
    # Rollouts of 512 steps: the first past each multiple of 1,000.
    rows = json.loads((corridor_run / "robustify" / "evaluations.json").read_text())
    assert [r["frames"] for r in rows] == [1_024, 2_048, 3_072, 4_096]
    assert result["evaluations"] == rows
    best = max(rows, key=lambda r: (r["success"], r["score"]))  # the first of the best
    assert result["best"] == best
    assert len(notes) == 4 and notes[0].startswith("evaluated at 1,024 steps: success ")
    assert sum("(the best so far: kept)" in n for n in notes) >= 1
    info = json.loads((corridor_run / "robustify" / "policy-best.json").read_text())
    assert info["frames"] == best["frames"]
    # The kept policy is the one evaluated: with the same noise it scores the same again.
    model, _ = load_policy(corridor_run / "robustify" / "policy-best.pt")
    runner = Runner(store, cfg, EVAL_RUNNER)
    success = success_test(runner, info["goal"], info["demo_return"])
    torch.manual_seed(cfg.seed)
    rate, score = evaluate(runner, model, 5, episode_limit(info["demo_length"]), success)
    runner.worker.close()
    assert (rate, score) == (best["success"], best["score"])
    store.close()
    capsys.readouterr()
    assert main(["evaluate", str(corridor_run), "--best", "--episodes", "3"]) == 0
    assert f"after {best['frames']:,} training steps" in capsys.readouterr().out
    # --fresh forgets the evaluations and the kept policy of the training it replaces.
    store = RunStore.open(corridor_run)
    robustify(store, replace(cfg, eval_every=0, frames=600), baselines=(), fresh=True)
    assert not (corridor_run / "robustify" / "policy-best.pt").exists()
    store.close()
    capsys.readouterr()
    assert main(["evaluate", str(corridor_run), "--best"]) == 2
    assert "has no best policy: run 'stepstone robustify" in capsys.readouterr().err


def test_a_stop_request_checkpoints_the_rollout_under_way_and_loses_nothing(corridor_run):
    """SIGTERM or Ctrl-C (``stop``) between checkpoints: the rollout under way is learned from
    and checkpointed, so continuing reaches the weights of a run never stopped."""
    from stepstone.learn.robustify import RobustifyConfig, Stopped, robustify

    store = RunStore.open(corridor_run)
    # No timed checkpoint in 4k steps: only the stop request can write one before the end.
    cfg = RobustifyConfig(frames=4_000, step=5, window=10, eval_episodes=5,
                          checkpoint_every=3_600)  # fmt: skip
    whole = robustify(store, cfg, baselines=("ppo",), fresh=True)
    expected = weights(corridor_run)
    lines: list[str] = []
    with pytest.raises(Stopped) as stopped:
        robustify(store, cfg, baselines=("ppo",), status=lines.append, fresh=True,
                  stop=lambda: len(lines) >= 3)  # fmt: skip
    assert (stopped.value.name, stopped.value.frames, stopped.value.total) == (
        "backward", 1_536, 4_000)  # fmt: skip
    ckpt = corridor_run / "robustify" / "checkpoint-backward.pt"
    assert json.loads(torch.load(ckpt, weights_only=True)["state"])["frames"] == 1_536
    assert torch.load(ckpt.with_name("policy.pt"), weights_only=True)["frames"] == 1_536
    notes: list[str] = []
    again = robustify(store, cfg, baselines=("ppo",), log=notes.append)
    assert notes == ["backward: continued from its checkpoint at 1,536 steps"]
    got = weights(corridor_run)
    assert all(torch.equal(got[k], expected[k]) for k in got)
    for key in ("start_moves", "success_backward", "success_ppo_from_reset"):
        assert again[key] == whole[key]
    # The baseline's training stops the same way, at its own checkpoint.
    lines.clear()
    with pytest.raises(Stopped) as stopped:
        robustify(store, cfg, baselines=("ppo",), status=lines.append, fresh=True,
                  stop=lambda: len(lines) >= 9)  # fmt: skip
    assert (stopped.value.name, stopped.value.frames) == ("ppo_from_reset", 512)
    store.close()


def test_sigterm_stops_robustify_with_its_checkpoint_and_says_how_to_continue(corridor_run):
    """A scheduler's SIGTERM between timed checkpoints: exit 130, the rollout under way
    checkpointed, the command that continues it named."""
    out = corridor_run / "robustify"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-m", "stepstone.cli", "robustify", str(corridor_run),
            "--frames", "1M", "--checkpoint-every", "3600", "--baselines", "none",
            "--step-back", "5", "--eval-every", "512", "--eval-episodes", "1"]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600  # a loaded machine starts torch slowly
        while not (out / "evaluations.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # the first rollout is done: the training is under way
        assert not (out / "checkpoint-backward.pt").exists()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 130, err.decode()
    saved = json.loads(torch.load(out / "checkpoint-backward.pt", weights_only=True)["state"])
    assert saved["frames"] >= 512 and saved["frames"] % 512 == 0
    assert (f"robustify: backward stopped at {saved['frames']:,} of 1,000,000 steps, its "
            f"checkpoint written to {out}; 'stepstone robustify {corridor_run}' continues it"
            ) in err.decode()  # fmt: skip


def test_kill_9_loses_at_most_the_last_checkpoint_and_the_run_continues(corridor_run, capsys):
    """A real SIGKILL mid-training; then `stepstone robustify D` continues from the file."""
    ckpt = corridor_run / "robustify" / "checkpoint-backward.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-m", "stepstone.cli", "robustify", str(corridor_run),
            "--frames", "1M", "--checkpoint-every", "0", "--baselines", "none", "--step-back", "5",
            ]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600  # a loaded machine starts torch slowly
        frames = 0
        while frames < 1_024 and time.monotonic() < deadline:
            time.sleep(0.2)
            if ckpt.exists():
                try:
                    state = torch.load(ckpt, weights_only=True)["state"]
                except Exception:  # noqa: BLE001 -- replaced under our feet: read it again
                    continue
                frames = json.loads(state)["frames"]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and frames >= 1_024
    assert not list(ckpt.parent.glob("*.tmp")) or ckpt.exists()  # never half a checkpoint
    saved = json.loads(torch.load(ckpt, weights_only=True)["state"])["frames"]
    # The policy is written with every checkpoint: a training stopped (or under way) evaluates.
    policy = torch.load(ckpt.with_name("policy.pt"), weights_only=True)
    assert 0 < policy["frames"] <= saved and policy["frames"] % 512 == 0
    capsys.readouterr()
    assert main(["evaluate", str(corridor_run), "--episodes", "1"]) == 0
    assert f"the policy after {policy['frames']:,} training steps" in capsys.readouterr().out
    # The same settings, a budget one rollout past the checkpoint: it continues, not restarts.
    args = ["robustify", str(corridor_run), "--frames", str(saved + 512), "--checkpoint-every",
            "0", "--baselines", "none", "--step-back", "5", "--eval-episodes", "2"]  # fmt: skip
    assert main(args) == 0
    assert f"continued from its checkpoint at {saved:,} steps" in capsys.readouterr().err
    result = json.loads((corridor_run / "robustify" / "result.json").read_text())
    assert result["frames_backward"] == saved + 512

    # Other settings are refused with the fix named; --fresh starts over.
    assert main([*args, "--entropy", "0.05"]) == 2
    err = capsys.readouterr().err
    assert "was trained with --entropy 0.01 (now 0.05)" in err and "--fresh" in err
    assert main([*args, "--entropy", "0.05", "--frames", "1024", "--fresh"]) == 0
    assert "continued" not in capsys.readouterr().err
    assert (
        json.loads((corridor_run / "robustify" / "result.json").read_text())["frames_backward"]
        == 1024
    )


def test_policy_file_rebuilds_its_network_alone_and_old_policies_still_evaluate(
    corridor_run, capsys
):
    from stepstone.learn.evaluate import load_policy

    args = ["robustify", str(corridor_run), "--frames", "1k", "--baselines", "none",
            "--eval-episodes", "2", "--threads", "1", "--fresh"]  # fmt: skip
    assert main([*args, "--no-progress"]) == 0
    assert "backward:" not in capsys.readouterr().err
    assert main(args) == 0
    assert re.search(r"backward: 512/1k steps, .* steps/s, start \d+/39", capsys.readouterr().err)
    assert torch.get_num_threads() == 1
    policy = corridor_run / "robustify" / "policy.pt"
    data = torch.load(policy, weights_only=True)
    assert data["architecture"] == {"kind": "mlp-tanh", "inputs": 40, "actions": 2,
                                    "hidden": [64, 64], "features": "vector"}  # fmt: skip
    (corridor_run / "robustify" / "policy.json").unlink()  # policy.pt alone suffices
    model, info = load_policy(policy)
    assert info["inputs"] == 40 and sum(p.numel() for p in model.parameters()) > 0
    capsys.readouterr()
    assert main(["evaluate", str(corridor_run), "--episodes", "3"]) == 0
    *first, steps = capsys.readouterr().out.splitlines()  # and a line on failures, if any
    assert steps == "the policy after 1,024 training steps"

    # A policy saved before the architecture was (a bare state dict, sizes in policy.json).
    torch.save(data["state_dict"], policy)
    old = {k: data[k] for k in ("inputs", "actions", "demo_length", "demo_return", "goal",
                                "sticky")}  # fmt: skip
    (corridor_run / "robustify" / "policy.json").write_text(json.dumps(old))
    assert main(["evaluate", str(corridor_run), "--episodes", "3"]) == 0
    assert capsys.readouterr().out.splitlines() == first  # the same network, the same episodes
    assert main(["evaluate", str(corridor_run), "--max-steps", "-1"]) == 2


def test_a_checkpoint_from_before_batching_continues_with_one_environment(corridor_run, capsys):
    """A checkpoint written before --envs (one environment under singular keys, no "envs"
    setting) continues as --envs 1, to the weights of an uninterrupted --envs 1 training;
    with another --envs given it is refused, naming the option."""
    from stepstone.learn.robustify import RobustifyConfig, robustify

    store = RunStore.open(corridor_run)
    cfg = RobustifyConfig(frames=2_048, step=5, eval_episodes=1, checkpoint_every=0, envs=1)
    robustify(store, cfg, baselines=(), fresh=True)
    expected = weights(corridor_run)
    robustify(store, RobustifyConfig(**{**cfg.__dict__, "frames": 1_024}), baselines=(), fresh=True)
    ckpt = corridor_run / "robustify" / "checkpoint-backward.pt"
    data = torch.load(ckpt, weights_only=True)
    state, settings = json.loads(data["state"]), json.loads(data["settings"])
    assert len(state["episodes"]) == len(data["snapshots"]) == 1
    for key in ("episode", "prev", "runner_rng"):
        state[key] = state.pop(key + "s")[0]
    del settings["envs"]
    data.update(state=json.dumps(state), settings=json.dumps(settings))
    data["snapshot"] = data.pop("snapshots")[0]
    torch.save(data, ckpt)

    args = ["robustify", str(corridor_run), "--frames", "2048", "--step-back", "5",
            "--baselines", "none", "--eval-episodes", "1", "--no-progress"]  # fmt: skip
    assert main([*args, "--envs", "4"]) == 2
    assert "was trained with --envs 1 (now 4)" in capsys.readouterr().err
    notes: list[str] = []
    robustify(store, cfg, baselines=(), log=notes.append)
    assert notes == ["backward: continued from its checkpoint at 1,024 steps"]
    got = weights(corridor_run)
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_robustify_d_alone_continues_with_the_options_and_budget_it_was_begun_with(
    corridor_run, capsys
):
    """`stepstone robustify D`, nothing more, continues a stopped training as it was begun:
    its options and its --frames. An option given another value is refused, by its flag."""
    from stepstone.learn.robustify import RobustifyConfig, robustify

    store = RunStore.open(corridor_run)
    cfg = RobustifyConfig(frames=2_048, step=5, start_window=6, sil=0.1, envs=2,
                          eval_episodes=1, checkpoint_every=0)  # fmt: skip
    seen = []

    def stop_at_second(line: str) -> None:
        seen.append(line)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        robustify(store, cfg, baselines=(), status=stop_at_second, fresh=True)
    capsys.readouterr()
    assert main(["robustify", str(corridor_run), "--baselines", "none", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "continued from its checkpoint at 512 steps" in err
    assert ("with the options it was begun with: --step-back 5, --start-window 6, --sil 0.1, "
            "--envs 2, --frames 2048") in err  # fmt: skip
    result = json.loads((corridor_run / "robustify" / "result.json").read_text())
    assert result["frames_backward"] == 2_048
    assert {k: result["config"][k] for k in ("step", "start_window", "sil", "envs")} == {
        "step": 5, "start_window": 6, "sil": 0.1, "envs": 2}  # fmt: skip
    assert main(["robustify", str(corridor_run), "--step-back", "3", "--baselines", "none"]) == 2
    assert "was trained with --step-back 5 (now 3)" in capsys.readouterr().err


def test_a_preset_training_continues_with_or_without_the_preset(corridor_run, capsys):
    """--preset expands into the options it sets, so the checkpoint holds them: the training
    continues with the preset named again or with nothing named, and refuses another value."""
    base = ["robustify", str(corridor_run), "--baselines", "none", "--no-progress",
            "--eval-episodes", "1"]  # fmt: skip
    assert main([*base, "--preset", "go-explore", "--frames", "1024"]) == 0
    result = json.loads((corridor_run / "robustify" / "result.json").read_text())
    assert {k: result["config"][k] for k in ("entropy", "lag", "hidden", "anneal")} == {
        "entropy": 1e-5, "lag": 50, "hidden": "256,256", "anneal": "linear"}  # fmt: skip
    capsys.readouterr()
    assert main([*base, "--preset", "go-explore", "--frames", "1536"]) == 0
    assert "continued from its checkpoint at 1,024 steps" in capsys.readouterr().err
    assert main([*base, "--frames", "2048"]) == 0
    err = capsys.readouterr().err
    assert "continued from its checkpoint at 1,536 steps" in err and "--lag 50" in err
    assert main([*base, "--preset", "go-explore", "--lag", "10"]) == 2
    assert "was trained with --lag 50 (now 10)" in capsys.readouterr().err


def test_a_branched_checkpoint_continues_with_the_changed_setting_only(corridor_run, tmp_path):
    """bench/branch.py: a copy of a training's checkpoint with one setting changed, which
    robustify continues with that setting and refuses to with another; the original stays."""
    from stepstone.learn.robustify import RobustifyConfig, robustify

    store = RunStore.open(corridor_run)
    robustify(store, RobustifyConfig(frames=1_024, step=5, eval_episodes=1), baselines=())
    ckpt = corridor_run / "robustify" / "checkpoint-backward.pt"
    before = ckpt.read_bytes()
    branch = tmp_path / "branch"
    shutil.copytree(corridor_run, branch)
    script = Path(__file__).resolve().parent.parent / "bench" / "branch.py"
    out = subprocess.run([sys.executable, script, ckpt, branch / "robustify" / ckpt.name,
                          "lag=3"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "branched at 1,024 steps with lag=3" in out
    assert ckpt.read_bytes() == before
    argv = ["robustify", str(branch), "--frames", "2k", "--baselines", "none"]
    assert main([*argv, "--lag", "5"]) == 2  # another value: refused
    notes: list[str] = []
    cfg = RobustifyConfig(frames=2_048, eval_episodes=1)  # the defaults: the branch's are taken
    result = robustify(RunStore.open(branch), cfg, baselines=(), log=notes.append)
    assert "--lag 3" in notes[0] and "continued from its checkpoint at 1,024 steps" in notes[1]
    assert result["frames_backward"] == 2_048 and result["config"]["lag"] == 3
    bad = subprocess.run([sys.executable, script, ckpt, ckpt, "lag=3"], capture_output=True)
    assert bad.returncode == 2 and ckpt.read_bytes() == before
