"""Options defined once (options.py): the parser made from the dataclasses shows every default,
parses a command line into the configuration a user would build directly, and stores it as
runs from before stored theirs, so those runs resume."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3

import pytest

from stepstone.cli import COMMANDS, Explore, ModelOptions, build_parser, main
from stepstone.config import ExploreConfig, RunOptions
from stepstone.llm.settings import Settings
from stepstone.options import KEY, add_options, build, option, values
from stepstone.store.sqlite import RunStore


def subparser(name: str) -> argparse.ArgumentParser:
    return build_parser()._subparsers._group_actions[0].choices[name]


def test_every_explore_option_is_in_the_help_with_its_default():
    explore = subparser("explore")
    text = " ".join(explore.format_help().split())
    by_dest = {a.dest: a for a in explore._actions}
    checked = 0
    for part in (ExploreConfig, Explore, RunOptions, ModelOptions):
        for f in dataclasses.fields(part):
            opt = f.metadata.get(KEY)
            if opt is None or opt.flag == "":
                continue
            action = by_dest[f.name]
            assert action.option_strings[0] in text, f.name
            help_ = " ".join(action.help.split())
            assert "default" in help_, f"--help does not say {f.name}'s default"
            default = "1M" if f.name == "frames" else f.default
            if isinstance(default, (int, float, str)) and not isinstance(default, bool):
                assert f"(default: {default})" in help_, (f.name, help_)
            checked += 1
    assert checked == len(explore._actions) - 2  # all but -h and the positional env
    for shown in ("(default: 100; 10 in browser worlds)", "(default: 0.95; 0 in browser worlds)",
                  "(default: auto)", "(default: 60.0)"):  # fmt: skip
        assert shown in text


def test_exploration_defaults_follow_the_environment_and_are_stored_as_numbers(tmp_path):
    """Atari's 100 actions at 95% repeats, but 10 without repeats on a page; what the user
    gives wins, and a stored run keeps the numbers it ran with."""
    assert (ExploreConfig("montezuma").explore_steps, ExploreConfig("montezuma").repeat_prob) == (
        100, 0.95)  # fmt: skip
    page = ExploreConfig("miniwob/click-test-2-v1")
    assert (page.explore_steps, page.repeat_prob) == (10, 0.0)
    assert ExploreConfig("web:http://127.0.0.1:1/").explore_steps == 10
    given = ExploreConfig("miniwob/click-test-2-v1", explore_steps=40, repeat_prob=0.5)
    assert (given.explore_steps, given.repeat_prob) == (40, 0.5)
    stored = json.loads(page.to_json())
    assert (stored["explore_steps"], stored["repeat_prob"]) == (10, 0.0)
    assert ExploreConfig.from_json(page.to_json()) == page
    ns = build_parser().parse_args(["explore", "miniwob/click-test-2-v1", "--explore-steps", "7"])
    assert build(ExploreConfig, ns).explore_steps == 7


def test_explore_options_are_every_field_of_the_config_and_run_options():
    # a field of ExploreConfig that is no option must be one the command line cannot set
    not_options = {f.name for f in dataclasses.fields(ExploreConfig) if KEY not in f.metadata}
    # (cells_auto, web_actions: what --cells auto and a page's actions meant when the run was
    # made, set by the code's version)
    assert not_options == {"batch", "cells_auto", "web_actions"}
    assert {f.name for f in dataclasses.fields(RunOptions) if KEY not in f.metadata} == {"llm"}


def test_defaults_come_from_the_dataclasses():
    ns = build_parser().parse_args(["explore", "Pong"])
    assert build(ExploreConfig, ns) == ExploreConfig(env="Pong")
    model = build(ModelOptions, ns)
    settings = Settings()
    assert (model.llm_timeout, model.llm_retries, model.llm_concurrency) == (
        settings.timeout, settings.retries, settings.concurrency,
    )  # fmt: skip
    assert values(RunOptions, ns) == {
        "frames": 1_000_000, "workers": None, "backend": "processes", "progress": True,
        "address": None, "deterministic": False, "trust_run_dir": False, "filter": True,
        "tasks_per_call": None,
    }  # fmt: skip
    resume = build_parser().parse_args(["resume", "runs/x"])
    assert values(RunOptions, resume)["frames"] is None  # the run's stored budget


SAMPLE = (
    "explore FrozenLake-v1 --seed 3 --cells observation --selector uniform --explore-steps 50 "
    "--repeat-prob 0.5 --no-end-on-life-loss --death-window 2 --reset-on-update --return replay "
    "--env-arg map_name=8x8 --env-arg is_slippery=false --import json --goal score>=1"
)
# What stepstone wrote for SAMPLE and --llm-prompts P before its options were generated from
# the dataclasses (recorded with commit 20aca7f): a run must store the same, or runs written
# before would be refused by resume as a different configuration, and the reverse.
STORED = (
    '{"batch": 100, "cell_params": {}, "cells": "observation", "death_window": 2, '
    '"end_on_life_loss": false, "env": "FrozenLake-v1", "env_args": {"is_slippery": false, '
    '"map_name": "8x8"}, "explore_steps": 50, "explorer": "random", "goal": "score>=1", '
    '"imports": ["json"], "llm_actions": 1, "llm_judge": false, "llm_model": null, '
    '"llm_prompts": {"system": "You play FrozenLake."}, "llm_samples": 4, "repeat_prob": 0.5, '
    '"reset_on_update": true, "return_method": "replay", "seed": 3, "selector": "uniform", '
    '"stop_on_success": false}'
)


def test_a_command_line_parses_to_the_config_built_directly(tmp_path):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"system": "You play FrozenLake."}))
    ns = build_parser().parse_args([*SAMPLE.split(), "--llm-prompts", str(prompts)])
    direct = ExploreConfig(
        env="FrozenLake-v1", seed=3, cells="observation", selector="uniform", explore_steps=50,
        repeat_prob=0.5, end_on_life_loss=False, death_window=2, reset_on_update=True,
        return_method="replay", env_args={"map_name": "8x8", "is_slippery": False},
        imports=("json",), llm_prompts={"system": "You play FrozenLake."}, goal="score>=1",
    )  # fmt: skip
    assert build(ExploreConfig, ns) == direct
    assert direct.to_json() == STORED


def test_a_run_stores_the_config_as_before_and_resumes(tmp_path, capsys):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"system": "You play FrozenLake."}))
    run_dir = tmp_path / "run"
    common = ["--backend", "inline", "--workers", "1", "--no-progress", "--run-dir", str(run_dir)]
    line = [*SAMPLE.split(), "--llm-prompts", str(prompts), *common]
    assert main([*line, "--frames", "1k"]) == 0
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        stored = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0]
    assert stored == STORED
    # the same command line again names the same run (a different one would be refused) ...
    assert main([*line, "--frames", "2k"]) == 0
    assert main([*line, "--seed", "4"]) == 2
    assert "different configuration (seed: stored 3, given 4)" in capsys.readouterr().err
    # ... and resume continues it with the run options alone, the config untouched
    assert main(["resume", str(run_dir), "--frames", "3k", *common[:-2]]) == 0
    store = RunStore.open(run_dir)
    assert store.config.to_json() == STORED
    assert store.metrics()[-1]["frames"] >= 3000
    assert main(["replay", str(run_dir)]) == 0
    capsys.readouterr()


def test_every_command_keeps_its_flags():
    flags = {
        name: {s for a in subparser(name)._actions for s in a.option_strings} for name in COMMANDS
    }
    assert {"--frames", "--workers", "--backend", "--address", "--no-progress",
            "--deterministic", "--trust-run-dir", "--llm-url", "--llm-budget", "--llm-key",
            "--llm-timeout", "--llm-retries", "--llm-concurrency",
            "--llm-max-tokens"} <= flags["resume"] <= flags["explore"]  # fmt: skip
    assert {"--cell-param", "--env-arg", "--import", "--return", "--end-on-life-loss",
            "--no-end-on-life-loss", "--run-dir"} <= flags["explore"]  # fmt: skip
    assert {"--frames", "--sticky", "--eval-episodes", "--seed", "--advance-rate", "--step-back",
            "--entropy", "--demo-score", "--baselines"} <= flags["robustify"]  # fmt: skip
    assert {"--format", "--select", "--k", "--dataset-id", "--out", "--overwrite", "--pairs",
            "--hindsight", "--llm-url", "--llm-model", "--author", "--author-email",
            "--code-permalink"} <= flags["export"]  # fmt: skip


def test_environment_variables_fill_the_model_options(monkeypatch):
    monkeypatch.setenv("STEPSTONE_LLM_MODEL", "m-from-env")
    monkeypatch.setenv("STEPSTONE_LLM_URL", "http://127.0.0.1:9/v1")
    ns = build_parser().parse_args(["explore", "Pong", "--llm-budget", "2k"])
    settings = build(ModelOptions, ns).settings(ns.llm_model)
    assert (settings.model, settings.url, settings.budget) == (
        "m-from-env", "http://127.0.0.1:9/v1", 2000,
    )  # fmt: skip


def test_the_generator_on_a_dataclass_of_ones_own():
    @dataclasses.dataclass
    class Args:
        size: int = option(3, help="how many")
        names: tuple[str, ...] = option((), flag="--name", repeat=True, convert=tuple, help="x")
        fast: bool = option(False, help="hurry")
        kind: str = option("a", names=lambda: ("a", "b"), choices=True, help="one of {names}")

    parser = argparse.ArgumentParser()
    add_options(parser, Args)
    assert build(Args, parser.parse_args([])) == Args()
    ns = parser.parse_args(["--size", "5", "--name", "p", "--name", "q", "--fast", "--kind", "b"])
    assert build(Args, ns) == Args(5, ("p", "q"), True, "b")
    text = " ".join(parser.format_help().split())
    assert "how many (default: 3)" in text and "one of a, b (default: a)" in text
    assert "hurry (default: off)" in text
    with pytest.raises(SystemExit):
        parser.parse_args(["--kind", "c"])
