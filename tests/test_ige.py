"""Foundation models in the Go-Explore loop (IGE's three roles, LFG), against a scripted fake
model behind a real chat-completions server on 127.0.0.1 (tests/test_llm_client.py).

Each role is checked by making the fake model answer something specific and finding that
answer in what the engine did: the actions taken, the cells returned to, the cells kept.
"""

from __future__ import annotations

import json
import re
import socket

import numpy as np
import pytest

pytest.importorskip("openai")

from test_llm_client import FakeModel, pauses, serve  # noqa: E402, F401

from stepstone.archive import Archive  # noqa: E402
from stepstone.cli import main  # noqa: E402
from stepstone.config import ExploreConfig  # noqa: E402
from stepstone.engine import Engine  # noqa: E402
from stepstone.llm import Cache, ChatClient, Settings  # noqa: E402
from stepstone.llm.memory import Memory  # noqa: E402
from stepstone.llm.view import Describer  # noqa: E402
from stepstone.selectors import LFG, make  # noqa: E402
from stepstone.store.sqlite import RunStore  # noqa: E402
from stepstone.trajectories import TrajectoryTree  # noqa: E402
from stepstone.worker import Worker  # noqa: E402


def listed(prompt: str, header: str) -> list[str]:
    """The numbered items after ``header`` in a prompt."""
    section = prompt.split(header, 1)[1].strip("\n").split("\n\n")[0]
    return [m.group(1) for m in re.finditer(r"^\d+\. (.*)$", section, re.M)]


ROLES = {"Possible actions:": "act", "States in the archive": "select",
         "New state:": "judge", "most likely to lead": "score",
         "least likely to lead": "score_negative"}  # fmt: skip


def answer(choice, thought: str = "Let me think: 5 * 5 = 25, so not 2.") -> str:
    """A reply as IGE asks for it: reasoning (with numbers in it), then the choice."""
    return json.dumps({"thought": thought, "choice": choice})


def role(prompt: str) -> str:
    for marker, name in ROLES.items():
        if marker in prompt:
            return name
    return "?"


@pytest.fixture
def endpoint():
    model = FakeModel()
    server, url = serve(model)
    yield model, url
    server.shutdown()


def explore(url: str, run, *extra: str, frames: int = 30) -> int:
    argv = ["explore", "game24:4,7,8,8", "--frames", str(frames), "--explore-steps", "3",
            "--workers", "1", "--run-dir", str(run), "--no-progress", "--llm-url", url,
            "--llm-model", "tiny", *extra]  # fmt: skip
    return main(argv)


def summary(run, capsys) -> dict:
    capsys.readouterr()
    assert main(["report", str(run), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


PLAN = ["8 / 8 = 1", "7 - 1 = 6", "6 * 4 = 24"]  # (7 - 8/8) * 4 = 24


def test_the_explorer_takes_the_actions_the_model_names(endpoint, tmp_path, capsys):
    model, url = endpoint

    def act(prompt):
        items = listed(prompt, "Possible actions:")
        return next(str(i + 1) for i, t in enumerate(items) if t in PLAN)

    model.script = act
    run = tmp_path / "run"
    assert explore(url, run, "--explorer", "llm", "--llm-samples", "1") == 0
    s = summary(run, capsys)
    assert s["success"] and s["best_score"] == 1 and s["llm_act_fallbacks"] == 0
    # Only the states along the model's plan were ever reached: every action was the model's.
    store = RunStore.open(run)
    archive = store.load_archive()
    assert set(archive.cells) == {"4 7 8 8", "1 4 7", "4 6", "24"}
    best = archive.entry(archive.best())
    worker = Worker.from_config(store.config)
    worker.env.reset(0)
    commands = []
    for a in TrajectoryTree(store.nodes).actions(best.node, best.length):
        worker.env.step(a)
        commands.append(worker.env.info["command"])
    assert commands == ["8/8=1", "7-1=6", "6*4=24"]
    # Asked once per distinct (state, actions since the return): 3 + 2 + 1 prompts along the
    # plan from its three starting cells; every later exploration was answered by the cache.
    assert s["llm_calls"] == model.requests == 6 and s["llm_cached"] > 0
    assert {f["type"] for f in model.formats} == {"json_schema"}  # structured output asked


def test_a_model_that_never_names_an_action_falls_back_and_is_counted(endpoint, tmp_path, capsys):
    model, url = endpoint
    model.reply = "I would rather think about this some more."
    run = tmp_path / "run"
    assert explore(url, run, "--explorer", "llm") == 0
    s = summary(run, capsys)
    assert s["frames"] >= 30 and s["cells"] > 1  # exploration went on, with random actions
    assert s["llm_act_fallbacks"] == s["frames"]  # one per action taken
    assert RunStore.open(run).metrics()[-1]["llm_act_fallbacks"] == s["frames"]


def test_the_explorer_draws_reproducible_variants_of_each_request(endpoint, tmp_path, capsys):
    """Temperature 0 plus a cache would make every exploration from a cell the same; the
    explorer draws one of --llm-samples variants (seeded), each cached on its own."""
    model, url = endpoint
    model.reply = "1"
    run = tmp_path / "run"
    assert explore(url, run, "--explorer", "llm", "--llm-samples", "3", frames=90) == 0
    assert set(model.sampling) == {(0, None), (0.7, 1), (0.7, 2)}
    prompts = {}
    for asked, sampling in zip(model.asked, model.sampling, strict=True):
        prompts.setdefault(asked, []).append(sampling)
    assert all(len(set(v)) == len(v) for v in prompts.values())  # never asked twice
    assert summary(run, capsys)["llm_cached"] > 0


def test_the_ige_selector_returns_to_the_entry_the_model_picks(endpoint):
    """The model sees every open entry of the archive and its earlier exchanges; the state it
    names in its final answer, not the numbers in its reasoning, is returned to."""
    model, url = endpoint
    picked, shown = [], []

    def select(prompt):
        items = listed(prompt, "the actions already tried there:")
        cells = [t.rsplit(" (score", 1)[0] for t in items]
        shown.append(len(cells))
        choice = max(range(len(cells)), key=lambda i: (len(cells[i]), cells[i]))  # most left
        picked.append(cells[choice])
        return answer(choice + 1, thought=f"1 and {len(cells)} are worse; the best is below.")

    model.script = select
    config = ExploreConfig("game24:4,7,8,8", explore_steps=2)
    worker = Worker.from_config(config)
    selector = make("ige", model=ChatClient(url, "tiny"), goal="make 24", memory=Memory(),
                    describe=Describer(worker.env))  # fmt: skip
    engine = Engine(Archive(), TrajectoryTree(), selector)
    engine.add_root(worker.root())
    for _ in range(8):
        open_ = int((~engine.archive.terminal[: len(engine.archive)]).sum())
        tasks = engine.ask(3)
        assert [t.cell for t in tasks] == [picked[-1]] * 3
        assert shown[-1] == open_  # the whole archive, not a sample
        for t in tasks:
            result = worker.run(t)
            engine.tell(result)
            selector.observe(t, result)
    assert len(picked) == 8 and shown[-1] > 12
    assert "Since your last choice, the explorations found" in model.asked[-1]
    assert "4 7 8 8 (score 0, explored from 3 times; tried: " in model.asked[1]
    assert re.search(r"tried: \d+ [-+*/] \d+ = -?[\d/]+[,)]", model.asked[1])


def test_the_judge_keeps_only_the_states_the_model_finds_interesting(endpoint, tmp_path, capsys):
    model, url = endpoint

    def judge(prompt):
        state = prompt.split("New state: ", 1)[1].split("\n")[0]
        return answer(1 if "8" in state.split() else 0, thought="8 / 8 = 1 would help")

    model.script = judge
    run = tmp_path / "run"
    assert explore(url, run, "--llm-judge", frames=150) == 0
    s = summary(run, capsys)
    archive = RunStore.open(run).load_archive()
    kept = [e for e in archive if e.score == 0]  # better scores enter whatever the model says
    assert len(kept) > 1 and all("8" in e.cell.split() for e in kept)
    assert s["llm_judge_rejected"] > 0 and s["llm_judge"] is True
    assert all(role(p) == "judge" for p in model.asked)
    assert s["llm_judge_fallbacks"] == 0


def test_lfg_polls_positive_and_negative_prompts_once_per_cell(endpoint, tmp_path):
    """LFG (Shah et al. 2023, section 4): each prompt sampled ``samples`` times; a state's
    likelihood is its share of the votes. Here b wins 4 of the 5 positive polls and a 1, c
    loses all 5 negative ones: weights w * (1 + 3 p+) / (1 + 3 p-) = 1.6 w, 3.4 w, w / 4."""
    model, url = endpoint

    def poll(prompt):
        items = listed(prompt, "Frontier states:")
        if "mute" in items:
            return "They all look alike to me."
        seed = model.sampling[-1][1]
        pick = "c" if role(prompt) == "score_negative" else ("a" if seed == 0 else "b")
        return answer(items.index(pick) + 1, thought="3 of them, 2 look close")

    model.script = poll
    cache = tmp_path / "llm.sqlite"
    client = ChatClient(url, "tiny", cache=Cache(cache))
    lfg = LFG(model=client, goal="reach b", beta=3.0, samples=5)
    archive = Archive()
    for cell in ("a", "b", "c"):
        archive.offer(cell, 0.0, 1, 0, None)
    w = lfg.weights(archive)
    assert w[0] == pytest.approx(1.6 * w[2] * 4) and w[1] == pytest.approx(3.4 * w[2] * 4)
    assert model.requests == 10 and {t for t, _ in model.sampling} == {0.7}
    assert lfg.weights(archive) == pytest.approx(w) and model.requests == 10  # scored once
    archive.offer("mute", 0.0, 1, 0, None)
    w = lfg.weights(archive)
    assert model.requests == 20 and w[3] == pytest.approx(w[2] * 4)  # no votes: weight w
    assert client.counts["llm_score_fallbacks"] == 10
    resumed = LFG(model=ChatClient(url, "tiny", cache=Cache(cache)), goal="reach b", samples=5)
    assert resumed.weights(archive) == pytest.approx(w) and model.requests == 20


def test_a_call_budget_stops_the_run_and_resume_continues(endpoint, tmp_path, capsys):
    model, url = endpoint
    model.reply = "1"
    run = tmp_path / "run"
    # Each selection prompt shows fresh counts, so each costs a call.
    assert explore(url, run, "--selector", "ige", "--llm-budget", "6", frames=3000) == 0
    err = capsys.readouterr().err
    assert "budget of 6 model calls is spent" in err and f"stepstone resume {run}" in err
    s = summary(run, capsys)
    assert model.requests == 6 and s["llm_calls"] == 6 and s["llm_budget"] == 6
    assert s["stopped"] and s["frames"] < 3000
    resume = ["resume", str(run), "--workers", "1", "--no-progress"]
    assert main(resume) == 0  # the same budget: spent already, nothing asked
    assert model.requests == 6
    assert main([*resume, "--llm-budget", "10"]) == 0
    t = summary(run, capsys)
    assert model.requests == 10 and t["llm_calls"] == 10 and t["llm_budget"] == 10
    assert t["frames"] > s["frames"] and t["explorations"] > s["explorations"]
    from stepstone.progress import line

    row = RunStore.open(run).metrics()[-1]
    text = line(row, 3000, row, None)  # the progress line
    assert "10 llm calls (" in text and " cached), " in text and " 0 fallbacks" in text


def test_the_key_is_sent_but_never_stored(endpoint, tmp_path, monkeypatch):
    model, url = endpoint
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model.reply = "1"
    run = tmp_path / "run"
    assert explore(url, run, "--explorer", "llm", "--llm-key", "sk-secret-123") == 0
    assert model.keys == {"Bearer sk-secret-123"}
    for f in run.iterdir():
        assert b"sk-secret-123" not in f.read_bytes(), f
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    model.keys.clear()
    assert main(["resume", str(run), "--frames", "60", "--workers", "1", "--no-progress"]) == 0
    assert model.keys == {"Bearer sk-from-env"}  # URL from the run, key from the environment


def test_prompt_overrides_are_used_and_bad_ones_refused(endpoint, tmp_path, capsys):
    model, url = endpoint
    model.reply = "2"
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"act": "PLAN for {goal}\n{actions}\nNumber?"}))
    run = tmp_path / "run"
    assert explore(url, run, "--explorer", "llm", "--llm-prompts", str(prompts)) == 0
    assert model.asked and all(p.startswith("PLAN for Use 4 7 8 8") for p in model.asked)
    prompts.write_text(json.dumps({"act": "{state} {secret}"}))
    assert explore(url, tmp_path / "r2", "--explorer", "llm", "--llm-prompts", str(prompts)) == 2
    assert "uses {secret}" in capsys.readouterr().err
    prompts.write_text(json.dumps({"plan": "x"}))
    assert explore(url, tmp_path / "r3", "--explorer", "llm", "--llm-prompts", str(prompts)) == 2
    assert "unknown prompt 'plan'" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()


def test_bad_endpoints_and_options_are_one_line_errors(endpoint, tmp_path, capsys, monkeypatch):
    _, url = endpoint
    monkeypatch.delenv("STEPSTONE_LLM_MODEL", raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    cases = [
        (["--selector", "ige", "--llm-url", closed], "cannot reach a model endpoint"),
        (["--explorer", "llm", "--llm-model", "huge"], "no model 'huge'; it serves: tiny"),
        (["--explorer", "llm", "--llm-budget", "-3"], "--llm-budget must not be negative"),
        (["--explorer", "llm", "--llm-actions", "0"], "--llm-actions must be >= 1"),
        (["--explorer", "planner"], "invalid choice"),
    ]
    for i, (extra, message) in enumerate(cases):
        run = tmp_path / f"r{i}"
        argv = ["explore", "game24:4,7,8,8", "--run-dir", str(run), "--no-progress",
                "--llm-url", url, "--llm-model", "tiny", *extra]  # fmt: skip
        with pytest.raises(SystemExit) if "invalid choice" in message else _nothing():
            assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and not run.exists()
        if "invalid choice" not in message:
            assert len(err.splitlines()) == 1 and err.startswith("stepstone: error:")
    argv = ["explore", "game24:4,7,8,8", "--selector", "lfg", "--run-dir", str(tmp_path / "m")]
    assert main(argv) == 2
    assert "--llm-model" in capsys.readouterr().err
    # the endpoint's address given as the model: said so, not "no model endpoint"
    monkeypatch.delenv("STEPSTONE_LLM_URL", raising=False)
    argv = ["explore", "game24:4,7,8,8", "--explorer", "llm", "--llm-model", url,
            "--run-dir", str(tmp_path / "a")]  # fmt: skip
    assert main(argv) == 2
    assert f"--llm-model {url} looks like an address: give it as --llm-url" in (
        capsys.readouterr().err
    )


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_textworld_commands_are_what_the_model_names(endpoint, tmp_path, capsys):
    pytest.importorskip("textworld")
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    model, url = endpoint

    def act(prompt):
        items = listed(prompt, "Possible actions:")
        return str(items.index("take coin") + 1) if "take coin" in items else "99"

    model.script = act
    tw_make = shutil.which("tw-make") or str(Path(sys.executable).parent / "tw-make")
    game = tmp_path / "coin.z8"
    subprocess.run([tw_make, "tw-coin_collector", "--level", "1", "--seed", "1", "--output",
                    str(game), "-f", "--silent"], check=True)  # fmt: skip
    run = tmp_path / "run"
    argv = ["explore", f"textworld:{game}", "--explorer", "llm", "--llm-samples", "1",
            "--frames", "5", "--explore-steps", "5", "--workers", "1", "--run-dir", str(run),
            "--no-progress", "--llm-url", url, "--llm-model", "tiny"]  # fmt: skip
    assert main(argv) == 0
    s = summary(run, capsys)
    assert s["success"] and s["frames_to_success"] == 1 and s["llm_act_fallbacks"] == 0
    assert "Please retrieve the coin" in model.asked[0]  # the game's objective as the goal


def test_babyai_levels_are_seen_as_text_and_explored_by_the_model(endpoint):
    pytest.importorskip("minigrid")
    from stepstone.llm import view

    model, url = endpoint

    def act(prompt):
        return str(listed(prompt, "Possible actions:").index("go forward") + 1)

    model.script = act
    config = ExploreConfig("BabyAI-GoToRedBallNoDists-v0", explorer="llm", explore_steps=4,
                           llm_model="tiny")  # fmt: skip
    worker = Worker.from_config(config, llm=Settings(url, "tiny"))
    assert view.goal(worker.env) == "go to the red ball"
    assert "red ball" in view.observation(worker.env)
    assert [t for _, t in view.choices(worker.env)][:3] == ["turn left", "turn right", "go forward"]
    engine = Engine(Archive(), TrajectoryTree(), make("count"))
    engine.add_root(worker.root())
    for task in engine.ask(3):
        result = worker.run(task)
        assert len(result.actions) > 0 and set(result.actions.tolist()) == {2}  # forward
        engine.tell(result)
    assert "Current state: you see a red ball" in model.asked[0]


def test_cells_that_are_not_text_are_shown_as_what_the_agent_sees(endpoint, tmp_path):
    """A MiniGrid cell is (x, y, direction, carried); the model is shown its observation."""
    pytest.importorskip("minigrid")
    model, url = endpoint
    model.script = lambda prompt: answer(1)
    argv = ["explore", "BabyAI-GoToRedBallNoDists-v0", "--selector", "lfg", "--llm-judge",
            "--frames", "40", "--explore-steps", "4", "--workers", "1", "--run-dir",
            str(tmp_path / "run"), "--no-progress", "--llm-url", url,
            "--llm-model", "tiny"]  # fmt: skip
    assert main(argv) == 0
    scored = [t for p in model.asked if role(p) == "score" for t in listed(p, "Frontier states:")]
    judged = [p.split("New state: ")[1] for p in model.asked if role(p) == "judge"]
    assert scored and judged
    assert all(t.startswith("you see") for t in scored + judged)


def test_several_actions_per_call_are_taken_in_order_while_admissible(endpoint):
    model, url = endpoint
    model.reply = "1, 2"

    def commands(puzzle: str) -> list[str]:
        config = ExploreConfig(puzzle, explorer="llm", explore_steps=3, llm_actions=2,
                               llm_samples=1, llm_model="tiny")  # fmt: skip
        worker = Worker.from_config(config, llm=Settings(url, "tiny"))
        engine = Engine(Archive(), TrajectoryTree(), make("count"))
        engine.add_root(worker.root())
        (task,) = engine.ask(1)
        result = worker.run(task)
        worker.env.restore(task.snapshot)
        out = []
        for a in result.actions:
            worker.env.step(a)
            out.append(worker.env.info["command"])
        return out

    # "8 + 8 = 16" then "8 - 8 = 0" (still there: 8 8 16 left): two actions from one reply.
    assert commands("game24:8,8,8,8") == ["8+8=16", "8-8=0", "16+0=16"]
    assert model.requests == 2
    # "4 + 7 = 11" then "4 - 7 = -3" (4 and 7 are gone): the second is not taken, the model
    # is asked again from the new state.
    assert commands("game24:4,7,8,8") == ["4+7=11", "8+8=16", "11+16=27"]
    assert model.requests == 2 + 3


@pytest.mark.parametrize(
    "reply, count, expected",
    [
        ("5 * 5 = 25 is too much, and 1 + 2 = 3 too little; I pick option 3", 9, None),
        ('{"thought": "1/5 leaves 24/5", "choice": 6}', 9, [5]),
        ('```json\n{"thought": "see {x}", "choice": [4, 2, 40]}\n```', 9, [3, 1]),
        ("4 + 4 = 8 first.\nAnswer: 2", 9, [1]),
        ("Reasoning about room 7...\nChoose > 3\nRemove > []", 9, [2]),
        ("**Final answer:** 1", 9, [0]),
        (" 2, 5 ", 9, [1, 4]),
        ('{"thought": "x", "choice": "8 / 8 = 1"}', 9, []),
    ],
)
def test_replies_are_read_by_their_final_answer(reply, count, expected):
    """Only the final answer is read (IGE: the JSON ``choice``; TextWorld: ``Choose > X``);
    numbers in the reasoning never are, and a reply without an answer gives None."""
    from stepstone.llm.prompts import final, indices, verdict

    answer_ = final(reply)
    assert (None if answer_ is None else indices(answer_, count)) == expected
    assert verdict(final("I do not think it is interesting")) is None
    assert verdict(final('{"thought": "it is new", "choice": 0}')) is False
    assert verdict(final("Looks new to me.\nAnswer: 1")) is True


def test_an_unreadable_verdict_rejects_the_state_and_is_asked_again(endpoint, tmp_path, capsys):
    """IGE rejects a state when the filter's reply cannot be read (add_to_archive's except
    branch); the reply is not cached, so each is a call and one fallback, in report.md too."""
    model, url = endpoint
    model.reply = "I do not think it is interesting"
    run = tmp_path / "run"
    assert explore(url, run, "--llm-judge", "--backend", "inline", frames=60) == 0
    s = summary(run, capsys)
    archive = RunStore.open(run).load_archive()
    assert all(e.score > 0 or e.length == 0 for e in archive)  # only the root and progress
    assert s["llm_judge_fallbacks"] == s["llm_calls"] == model.requests > 0
    assert s["llm_judge_rejected"] == 0 and s["llm_cached"] == 0
    report = (run / "report.md").read_text()
    assert f"{s['llm_judge_fallbacks']} verdicts" in report


def test_verdicts_and_the_archive_shown_are_the_papers(endpoint, tmp_path, capsys):
    """The judge sees the whole archive and the run's last exchanges; its verdicts are kept in
    the run directory, so a resumed run does not ask about a state again."""
    model, url = endpoint
    model.script = lambda prompt: answer(0 if "16" in prompt.split("New state:")[1] else 1)
    run = tmp_path / "run"
    assert explore(url, run, "--llm-judge", "--backend", "inline", frames=90) == 0
    archive = RunStore.open(run).load_archive()
    last = model.asked[-1]
    shown = listed(last, "Current archive:")
    assert len(shown) == int((~archive.terminal[: len(archive)]).sum()) > 5
    assert len(model.conversations[-1]) == 1 + 2 * 5 + 1  # system, 5 exchanges, the question
    assert not Cache(run / "llm_cache.sqlite").halted()  # halted while draining, not after
    asked = set(model.asked)
    resume = ["resume", str(run), "--frames", "150", "--workers", "1", "--no-progress",
              "--backend", "inline"]  # fmt: skip
    assert main(resume) == 0
    states = [p.split("New state: ")[1].split("\n")[0] for p in model.asked]
    assert len(states) == len(set(states))  # no state judged twice, across the resumption
    assert len(model.asked) > len(asked)


def test_faults_mid_run_are_retried_and_a_dead_server_stops_the_run_resumably(
    endpoint,
    tmp_path,
    capsys,
    pauses,  # noqa: F811
):
    model, url = endpoint
    model.reply = answer(1)
    model.faults = [None, "html", "empty", (429, "2"), 502]
    run = tmp_path / "run"
    assert explore(url, run, "--selector", "ige", "--backend", "inline", frames=60) == 0
    assert pauses[2] == 2.0 and len(pauses) == 4
    s = summary(run, capsys)
    assert s["frames"] >= 60 and s["llm_calls"] == model.requests - 4
    model.failures = 1000
    resume = ["resume", str(run), "--frames", "200", "--workers", "1", "--no-progress",
              "--backend", "inline", "--llm-retries", "2"]  # fmt: skip
    assert main(resume) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "127.0.0.1" in err and "answered 503" in err
    assert f"stepstone resume {run}" in err
    stopped = RunStore.open(run).metrics()[-1]
    assert stopped["frames"] < 200 and stopped["frames"] >= s["frames"]
    model.failures = 0
    assert main(resume) == 0
    assert summary(run, capsys)["frames"] >= 200


def test_a_stopped_run_asks_nothing_more(endpoint, tmp_path):
    """Once the engine has stopped (the runner halts the model), the roles make no call and
    count no fallback: the explorer ends its exploration, the selector counts, the judge keeps
    only progress."""
    from stepstone.explorers.llm import LLMExplorer
    from stepstone.llm.judge import Judge

    model, url = endpoint
    model.reply = "not an answer"
    client = ChatClient(url, "tiny", cache=Cache(tmp_path / "c"))
    worker = Worker.from_config(ExploreConfig("game24:4,7,8,8", explore_steps=3))
    selector = make("ige", model=client, goal="24")
    engine = Engine(Archive(), TrajectoryTree(), selector, admit=Judge(client, "24"))
    engine.add_root(worker.root())
    client.halt()
    for task in engine.ask(4):
        engine.tell(worker.run(task))
    worker.env.reset(0)
    explorer = LLMExplorer(model=ChatClient(url, "tiny", cache=Cache(tmp_path / "c")))
    assert list(explorer.actions(worker.env, np.random.default_rng(0), 3)) == []
    assert model.requests == 0 and client.totals() == {}
    assert len(engine.archive) == 1  # nothing new kept without a verdict


def test_the_explorer_remembers_the_exploration_and_shows_its_history(endpoint):
    model, url = endpoint
    model.reply = answer(1)
    config = ExploreConfig("game24:4,7,8,8", explorer="llm", explore_steps=3, llm_samples=1,
                           llm_model="tiny")  # fmt: skip
    worker = Worker.from_config(config, llm=Settings(url, "tiny"))
    engine = Engine(Archive(), TrajectoryTree(), make("count"))
    engine.add_root(worker.root())
    (task,) = engine.ask(1)
    worker.run(task)
    assert [len(c) for c in model.conversations] == [2, 4, 6]  # system, exchanges, question
    history = model.asked[2].split("History:\n")[1].split("\n\nCurrent state")[0]
    assert history.startswith("left: 4 7 8 8 |\n> 4 + 7 = 11\nleft: 8 8 11 | 4+7=11\n> ")
    # From a deeper cell the history starts at reset, as IGE's does: the steps that led there
    # (replayed from the seed), then what followed the return.
    engine.tell(worker.run(task))
    deeper = next(t for t in engine.ask(8) if t.length > 0)
    model.asked.clear()
    worker.run(deeper)
    history = model.asked[0].split("History:\n")[1].split("\n\nCurrent state")[0]
    assert history.startswith("left: 4 7 8 8 |\n> 4+7=11\nleft: 8 8 11 | 4+7=11")
    from stepstone.explorers.llm import recent

    assert recent(["> a\nx", "> b\ny"], 7) == "(1 earlier steps left out)\n> b\ny"


def test_credentials_in_the_url_are_not_stored(endpoint, tmp_path):
    model, url = endpoint
    model.reply = answer(1)
    secret = url.replace("http://", "http://user:sk-in-url@")
    run = tmp_path / "run"
    argv = ["explore", "game24:4,7,8,8", "--frames", "20", "--selector", "ige", "--backend",
            "inline", "--run-dir", str(run), "--no-progress", "--llm-url", secret,
            "--llm-model", "tiny"]  # fmt: skip
    assert main(argv) == 0 and model.requests > 0
    for f in run.iterdir():
        assert b"sk-in-url" not in f.read_bytes(), f
    assert RunStore.open(run).meta("llm_url") == url


def oracle(prompt: str) -> str:
    """A model that knows Game of 24 under IGE's rule: an action that keeps 24 reachable,
    the first state, and yes to every new state."""
    from fractions import Fraction

    from stepstone.envs.game24 import solvable

    if role(prompt) != "act":
        return answer(1)
    state = prompt.split("Current state: left: ")[1].split(" |")[0].split()
    for n, text in enumerate(listed(prompt, "Possible actions:"), start=1):
        a, _, b, _, result = text.split()
        left = list(state)
        left.remove(a)
        left.remove(b)
        if solvable([Fraction(x) for x in [*left, result]], integer=True):
            return answer(n, thought=f"{text} keeps 24 in reach")
    return answer(1)


def test_iges_game_of_24_setting_runs_end_to_end(endpoint, tmp_path, capsys, monkeypatch):
    """bench/ige.py --setting ige: IGE's puzzles with integer division; an oracle model solves
    each in the minimum 3 operations, and a row cut short by --llm-budget says so."""
    import importlib.util
    import sys
    from pathlib import Path

    model, url = endpoint
    model.script = oracle
    path = Path(__file__).parents[1] / "bench" / "ige.py"
    spec = importlib.util.spec_from_file_location("bench_ige", path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_ige", bench)  # its dataclasses look it up
    spec.loader.exec_module(bench)
    assert bench.IGE_24[0] == "4,5,6,10" and len(bench.IGE_24) == 100
    argv = ["ige.py", url, "tiny", "--setting", "ige", "--tasks", "game24", "--puzzles", "3",
            "--methods", "ige+llm+judge", "--out", str(tmp_path)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    row = capsys.readouterr().out.splitlines()[-1].split()
    assert row[:6] == ["game24", "(IGE's", "3)", "ige+llm+judge", "3/3", "1.00"]
    assert row[6] == "3.0"  # operations to success
    monkeypatch.setattr(sys, "argv", [*argv[:-1], str(tmp_path / "b"), "--llm-budget", "8"])
    bench.main()
    out = capsys.readouterr().out
    assert "(cut short: 1 of 3 runs)" in out and "# stopped: the budget of 8" in out


def test_memory_keeps_the_last_five_exchanges_within_its_budget():
    """IGE sends the last 5 exchanges (game_of_24/run.py: chat_history_len=5); past the
    character budget the oldest go first, and the model is told."""
    memory = Memory(chars=40)
    for i in range(7):
        memory.add([{"role": "user", "content": f"question {i}"}], f"answer {i}")
    sent = memory.messages()
    assert sent[0]["content"] == "(3 earlier exchanges left out to fit the context.)"
    assert [m["content"] for m in sent[2:]] == ["question 5", "answer 5", "question 6",
                                                "answer 6"]  # fmt: skip
    assert len(Memory().messages()) == 0
    roomy = Memory()
    for i in range(7):
        roomy.add([{"role": "user", "content": f"q{i}"}], f"a{i}")
    assert [m["content"] for m in roomy.messages()][::2] == ["q2", "q3", "q4", "q5", "q6"]
