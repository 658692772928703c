"""Web pages in a real browser: MiniWoB++ and a small shop served from this test.

Exploration reaches each goal, trajectories replay from the seed to the same cells, exports
are chat data whose BrowserGym action strings replay, an animated page replays to the same
pages, a browser that dies or hangs mid-episode is replaced, and none is left behind. Skipped
only where Chromium is missing, outside CI (CI installs it: .ci/run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import pytest

from stepstone.cli import main
from stepstone.envs import EnvSpec, make
from stepstone.envs.browser import Page, parse
from stepstone.errors import ConfigError
from stepstone.goals import Goal
from stepstone.store.sqlite import RunStore

pytest.importorskip("selenium")
if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which(
    "chromedriver"
):
    if os.environ.get("CI"):
        pytest.fail("CI must run the browser tests: apt-get install chromium chromium-driver")
    pytest.skip(
        "needs Chromium and chromedriver (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from webshop import serve  # noqa: E402

FAST = ["--workers", "1", "--backend", "inline", "--no-progress"]


def summary(run, capsys) -> dict:
    capsys.readouterr()
    assert main(["report", str(run), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_parse_reads_back_the_action_strings():
    assert parse("click('12')") == ("click", "12", None)
    assert parse("fill('15', \"it's\")") == ("fill", "15", "it's")
    with pytest.raises(ValueError):
        parse("__import__('os').system('x')")


def test_a_run_keeps_the_action_set_its_trajectories_index():
    """Trajectories are indices into a page's actions: a run made before text fields became
    clickable (no web_actions stored) keeps the old list, so its trajectories replay."""
    from stepstone.config import ExploreConfig
    from stepstone.envs.browser import Element, page_actions

    page = Page("p", (Element("1", "textbox", "Name"), Element("2", "button", "Submit")))
    new = ExploreConfig(env="miniwob/focus-text-v1")
    assert json.loads(new.to_json())["web_actions"] == 2
    data = json.loads(new.to_json())
    del data["web_actions"]  # as stored before
    old = ExploreConfig.from_json(json.dumps(data))
    assert old.web_actions == 1 and ExploreConfig.from_json(new.to_json()) == new
    assert "web_actions" not in json.loads(ExploreConfig(env="CartPole-v1").to_json())
    words = lambda e: ["Ann"]  # noqa: E731
    assert page_actions(page, words, old.web_actions) == ["fill('1', 'Ann')", "click('2')"]
    assert page_actions(page, words, new.web_actions) == [
        "click('1')",
        "fill('1', 'Ann')",
        "click('2')",
    ]


def test_text_and_css_goals_are_parsed_and_refused_off_the_web():
    assert Goal.parse("text: Order placed").text == "text:Order placed"
    with pytest.raises(ConfigError, match="needs what to look for"):
        Goal.parse("css:")

    class NotAPage:
        pass

    with pytest.raises(ConfigError, match="looks at a web page"):
        Goal.parse("text:x").reached(NotAPage(), 0.0, False)


# --- MiniWoB++ -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def enter_text(tmp_path_factory):
    """enter-text: type the asked word into the field, then press Submit (liu18's two kinds
    of action), explored with bench/web.py's settings (every action new, 10 a visit)."""
    pytest.importorskip("miniwob")
    run = tmp_path_factory.mktemp("miniwob") / "run"
    argv = ["explore", "miniwob/enter-text-v1", "--frames", "150", "--run-dir", str(run),
            "--repeat-prob", "0", "--explore-steps", "10"]  # fmt: skip
    before = strays()
    assert main([*argv, *FAST]) == 0
    assert ended(lambda: not strays() - before)  # the closed run left no browser behind
    return run


def strays() -> set[int]:
    """Browser processes still held by this test process (the inline backend's worker runs
    here) or left to init by a parent that ended."""
    import subprocess

    out = set()
    for name in ("chromium", "chromedriver"):
        found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
        for pid in map(int, found.stdout.split()):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if ppid in (1, os.getpid()) and running(pid):
                out.add(pid)
    return out


def ended(done, seconds: float = 10.0) -> bool:
    """Whether ``done()`` holds within ``seconds`` (processes take a moment to exit)."""
    for _ in range(int(seconds * 10)):
        if done():
            return True
        time.sleep(0.1)
    return done()


def test_miniwob_exploration_reaches_the_task_reward_and_replays(enter_text, capsys):
    s = summary(enter_text, capsys)
    assert s["success"] and s["best_score"] == 1.0  # positive raw reward: the task's own goal
    assert s["goal_cell"]["length"] >= 2  # typed, then submitted
    capsys.readouterr()
    assert main(["replay", str(enter_text), "--cell", "best"]) == 0
    assert "1 trajectories replayed to their cells and scores" in capsys.readouterr().out


def test_miniwob_export_is_chat_data_whose_actions_replay(enter_text, tmp_path, capsys):
    out = tmp_path / "d.jsonl"
    argv = ["export", str(enter_text), "--format", "jsonl", "--select", "all-cells"]
    assert main([*argv, "--step-pairs", "--out", str(out)]) == 0
    rows = records(out)
    good = next(r for r in rows if r["success"])
    task = good["messages"][0]["content"]
    assert task.startswith("Enter") and "Submit" in task  # the task's own instruction
    assert good["messages"][1]["content"].startswith("[")  # [ref] role 'name' lines
    commands = [m["content"] for m in good["messages"][2::2]]
    assert all(parse(c)[0] in ("click", "fill") for c in commands)
    assert good["label"].endswith("(the task then ended with reward 1).")
    # The strings alone replay: each names an admissible action of the page it was taken on,
    # even across a browser crash.
    store = RunStore.open(enter_text)
    env = make(EnvSpec(store.config.env, store.config.seed))
    try:
        env.reset(store.config.seed)
        assert env.env.unwrapped.driver.execute_script("return core.EPISODE_MAX_TIME") == 10**9
        env.step(env.action_of(commands[0]))
        env.site.driver.quit()  # the browser dies mid-episode: started again, episode replayed
        for c in commands[1:]:
            env.step(env.action_of(c))
        assert env.goal() is True
    finally:
        env.close()
    for p in records(tmp_path / "d.steps.jsonl"):
        assert len(p["chosen"]) == len(p["rejected"]) == 1
        assert p["chosen"] != p["rejected"] and p["prompt"][-1]["role"] == "user"


def test_an_animated_page_replays_to_the_same_pages():
    """choose-date-easy's datepicker fades in and out (200 ms): a page is read once it has
    settled, so the same seed and actions show the same pages every time, as return by
    replay needs."""
    import numpy as np

    from stepstone.cells.dom import DomCells

    env, cells = make(EnvSpec("miniwob/choose-date-easy-v1", 0)), DomCells()
    try:
        runs = []
        for _ in range(2):
            rng, seen = np.random.default_rng(3), []
            for episode in range(3):
                env.reset(episode)
                seen.append(cells(env))
                for _ in range(6):
                    if not env.admissible():
                        break
                    env.step(int(rng.integers(len(env.admissible()))))
                    seen.append(cells(env))
            runs.append(seen)
    finally:
        env.close()
    assert runs[0] == runs[1] and len(set(runs[0])) > 3


# --- a web app of our own ------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop():
    server, state, url = serve()
    yield state, url
    server.shutdown()


@pytest.fixture(scope="module")
def shop_run(shop, tmp_path_factory):
    state, url = shop
    tmp = tmp_path_factory.mktemp("shop")
    values = tmp / "values.json"
    values.write_text(json.dumps({"name": ["Ada"]}))
    run = tmp / "run"
    argv = ["explore", f"web:{url}/", "--web-reset", f"{url}/reset", "--web-values",
            str(values), "--goal", "text:Order placed", "--frames", "600", "--repeat-prob", "0",
            "--explore-steps", "10", "--stop-on-success", "--run-dir", str(run)]  # fmt: skip
    resets = state.resets
    assert main([*argv, *FAST]) == 0
    assert state.resets > resets  # the reset hook ran before episodes
    return run


def test_exploration_finds_the_order_page_and_every_cell_replays(shop_run, capsys):
    s = summary(shop_run, capsys)
    assert s["success"] and s["stopped_on_success"]
    assert s["goal_cell"]["length"] >= 6  # add, checkout, name, agree, order, confirm
    capsys.readouterr()
    assert main(["replay", str(shop_run), "--cell", "goal"]) == 0
    assert "1 trajectories replayed to their cells and scores" in capsys.readouterr().out


def test_the_goal_trajectory_went_through_the_form_with_the_given_values(shop_run, tmp_path):
    out = tmp_path / "shop.jsonl"
    argv = ["export", str(shop_run), "--format", "jsonl", "--select", "goal"]
    assert main([*argv, "--out", str(out)]) == 0
    good = records(out)
    assert len(good) == 1 and good[0]["success"]
    commands = [m["content"] for m in good[0]["messages"][2::2]]
    assert any(c.startswith("fill(") and c.endswith(", 'Ada')") for c in commands)
    assert "Order for Ada" in "\n".join(m["content"] for m in good[0]["messages"])
    assert good[0]["label"].endswith("to reach the page 'Thanks'.")


def test_a_browser_that_dies_is_restarted_and_dom_cells_see_state_not_ids(shop):
    from stepstone.cells.dom import DomCells

    _, url = shop
    env = make(EnvSpec(f"web:{url}/", 0, env_args={"reset": f"{url}/reset"}))
    cells = DomCells()
    try:
        site = env.env.unwrapped
        home = cells(env)
        assert isinstance(env.page(), Page) and "[0] link 'About'" in env.describe()
        env.step(env.action_of("click('1')"))  # Add Tea
        assert env.page().url.endswith("/cart") and cells(env) != home
        first = site.driver
        first.quit()  # the browser is gone
        env.step(env.action_of("click('0')"))  # Checkout, in a new browser after a replay
        assert site.driver is not first
        assert env.page().url.endswith("/checkout") and env.contains("css", "input#name")
        assert env.metrics()["pages"] >= 2
        env.reset(0)
        assert cells(env) == home
        service = site.driver.service.process
    finally:
        env.close()
    assert service.wait(timeout=10) is not None  # closed: no driver (nor its browser) left


# --- language-model roles on the page as text -----------------------------------------------


def test_the_model_roles_read_the_page_and_act_in_browsergym_strings(shop, tmp_path, capsys):
    """IGE's three roles on the shop, against a scripted model behind a real chat-completions
    server: act follows the checkout from what the page says, select returns to the page
    furthest along, judge turns away the About page; each sees the page as text."""
    pytest.importorskip("openai")
    from test_ige import answer, listed, role
    from test_llm_client import FakeModel
    from test_llm_client import serve as serve_model

    _, url = shop
    model = FakeModel()
    server, llm_url = serve_model(model)
    by_role: dict[str, list[str]] = {}

    def bid_of(page: str, line: str) -> str | None:
        m = re.search(r"^\[(\d+)\] " + re.escape(line).replace("\\$", "$"), page, re.M)
        return m.group(1) if m else None

    def act(prompt: str) -> str:
        page = prompt.split("Current state: ", 1)[1].split("\n\nPossible actions:")[0]
        items = listed(prompt, "Possible actions:")
        if (b := bid_of(page, "textbox 'Name'$")) is not None:  # no value yet
            want = f"fill({b!r}, 'test')"
        elif (b := bid_of(page, "checkbox 'I agree' unchecked")) is not None:
            want = f"click({b!r})"
        else:
            names = ("button 'Add Tea'", "link 'Checkout'", "button 'Place order'",
                     "button 'Confirm'")  # fmt: skip
            b = next(b for n in names if (b := bid_of(page, n)) is not None)
            want = f"click({b!r})"
        return answer(items.index(want) + 1)

    def script(prompt: str) -> str:
        kind = role(prompt)
        by_role.setdefault(kind, []).append(prompt)
        if kind == "act":
            return act(prompt)
        if kind == "judge":
            new = prompt.split("New state: ", 1)[1].split("\n\nIs this state")[0]
            return answer(0 if "Cart: Tea" in new else 1)
        items = listed(prompt, "the actions already tried there:")
        order = ("Confirm", "Place order", "Checkout", "Add Tea")
        best = min(range(len(items)), key=lambda i: next(
            (k for k, w in enumerate(order) if w in items[i]), len(order)))  # fmt: skip
        return answer(best + 1)

    model.script = script
    run = tmp_path / "run"
    argv = ["explore", f"web:{url}/", "--web-reset", f"{url}/reset", "--goal",
            "text:Order placed", "--frames", "40", "--explore-steps", "3", "--run-dir", str(run),
            "--explorer", "llm", "--selector", "ige", "--llm-judge", "--llm-samples", "1",
            "--llm-url", llm_url, "--llm-model", "tiny", "--stop-on-success", *FAST]  # fmt: skip
    try:
        assert main(argv) == 0
    finally:
        server.shutdown()
    s = summary(run, capsys)
    assert s["success"] and s["llm_act_fallbacks"] == 0
    assert {"act", "select", "judge"} <= set(by_role)
    assert all("Reach a page that shows 'Order placed'." in p for p in by_role["act"])
    assert any("[1] button 'Add Tea'" in p for p in by_role["act"])  # the page, as text
    assert any("button 'Place order'" in p for p in by_role["select"])
    archive = RunStore.open(run).load_archive()
    assert s["llm_judge_rejected"] > 0
    assert not any(e.cell[0].endswith("/cart") for e in archive)  # the judge kept Cart out


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_a_killed_worker_leaves_no_browser_behind(shop, tmp_path):
    """Executors kill busy workers (SIGKILL): their chromedriver and browser must stop too."""
    import signal
    import subprocess
    import sys

    _, url = shop
    script = tmp_path / "hold.py"
    script.write_text(
        "import time\n"
        "from stepstone.envs import EnvSpec, make\n"
        f"env = make(EnvSpec('web:{url}/', 0))\n"
        "print(env.site.driver.service.process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    path = os.pathsep.join(sys.path)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip
    driver = int(proc.stdout.readline())
    found = subprocess.run(["pgrep", "-P", str(driver)], capture_output=True, text=True)
    browser = [int(p) for p in found.stdout.split()]
    assert browser  # chromedriver started the browser
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ended(lambda: not any(running(p) for p in (driver, *browser)))


def test_a_browser_killed_or_hung_mid_episode_is_replaced_and_none_is_left(monkeypatch):
    """A crashed browser (SIGKILL) and a hung one (SIGSTOP: it answers nothing) are each
    replaced and the episode replayed, so the task still succeeds; closing ends every process
    any of the browsers started."""
    import signal

    from stepstone.envs import browser

    monkeypatch.setattr(browser, "HUNG_S", 3.0)  # a hang is noticed in seconds, not a minute
    monkeypatch.setattr(browser, "ANSWER_S", 2.0)
    env = make(EnvSpec("miniwob/enter-text-v1", 0))
    site, seen = env.site, set()

    def processes() -> list[int]:
        pids = browser.tree(site.driver.service.process.pid)
        seen.update(pids)
        return pids

    try:
        for fail in (signal.SIGKILL, signal.SIGSTOP):
            env.reset(0)
            fill = next(c for _, c in env.admissible() if c.startswith("fill("))
            env.step(env.action_of(fill))
            first = site.driver
            pids = processes()
            assert len(pids) >= 3  # chromedriver, the browser, its helpers
            os.kill(pids[1], fail)  # the browser (chromedriver's child)
            submit = next(e.id for e in env.page().elements if e.name == "Submit")
            env.step(env.action_of(f"click('{submit}')"))
            assert site.driver is not first and env.goal() is True
            assert not any(running(p) for p in pids)  # the failed one was ended, hung or not
        processes()
    finally:
        env.close()
    assert ended(lambda: not any(running(p) for p in seen))


def test_a_reset_that_times_out_restarts_the_browser_even_if_it_answers_again(monkeypatch):
    """A page load that outlasts ``HUNG_S`` and a browser that answers again a moment later
    (found in the web bench: the load's error was raised and the run lost) is a hang: the
    browser is replaced and the reset succeeds."""
    import signal
    import threading

    from stepstone.envs import browser

    monkeypatch.setattr(browser, "HUNG_S", 3.0)
    monkeypatch.setattr(browser, "ANSWER_S", 2.0)
    env = make(EnvSpec("miniwob/enter-text-v1", 0))
    site = env.site
    try:
        env.reset(0)
        first = site.driver
        pids = browser.tree(first.service.process.pid)
        os.kill(pids[1], signal.SIGSTOP)  # hung for 3.5 s: past HUNG_S, within ANSWER_S after
        wake = threading.Timer(3.5, os.kill, (pids[1], signal.SIGCONT))
        wake.start()
        env.reset(0)
        wake.join()
        assert site.driver is not first
        assert not any(running(p) for p in pids)
        fill = next(c for _, c in env.admissible() if c.startswith("fill("))
        env.step(env.action_of(fill))
        submit = next(e.id for e in env.page().elements if e.name == "Submit")
        env.step(env.action_of(f"click('{submit}')"))
        assert env.goal() is True
    finally:
        env.close()
