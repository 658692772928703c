"""bench/web_bc.py: paths read and replayed once, their detours cut, and a policy cloned
from a few seeds that solves seeds it never saw; one test in the browser (skipped without it).

Two small pages stand in for MiniWoB++ tasks, with the interface bench/web_bc.py uses of
``MiniWoBTask`` (``reset(seed)``, ``actions``, ``page``, ``step``, ``done``, ``raw_reward``,
``task()``, ``fields``): ``Boxes`` (click-checkboxes: tick the named boxes, a label ticks its
box too, then Submit; the raw reward as that task pays it) and ``Login`` (login-user: type
each value into its field, then Login). A seed changes the words, the boxes asked for and the
order of the fields.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import sys
from pathlib import Path

import pytest

from stepstone.envs.browser import Element, Page, click, fill, parse

WORDS = ("alpha", "bravo", "cobalt", "delta", "ember", "fjord", "gamma", "harbor", "indigo",
         "jasper", "kelp", "lumen", "mesa", "nectar", "onyx", "pivot", "quartz")  # fmt: skip


@pytest.fixture(scope="module")
def bc():
    path = Path(__file__).parents[1] / "bench" / "web_bc.py"
    spec = importlib.util.spec_from_file_location("bench_web_bc", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_web_bc"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_web_bc", None)


class Site:
    """What bench/web_bc.py reads of a MiniWoB++ task."""

    resets = 0

    def __init__(self, env_id: str = ""):
        self.done, self.raw_reward, self.actions = False, 0.0, []

    def reset(self, seed=None):
        Site.resets += 1
        self.rng, self.done, self.raw_reward = random.Random(seed), False, 0.0
        self.start()
        self.render()
        return self.page.text(), {}

    def render(self) -> None:
        over = (Element("", "status", f"episode over, reward {self.raw_reward:g}"),)
        self.page = Page("site", over if self.done else self.elements())
        self.actions = [] if self.done else [
            c for e in self.page.elements if e.id for c in
            [click(e.id), *(fill(e.id, v) for v in self.fields if e.typable)]]  # fmt: skip

    def step(self, a: int):
        self.act(*parse(self.actions[a % len(self.actions)]))
        self.render()
        return self.page.text(), self.raw_reward, self.done, False, {}

    def goal(self) -> bool:
        return self.done and self.raw_reward > 0

    def close(self) -> None:
        pass


class Boxes(Site):
    def start(self):
        self.words = self.rng.sample(WORDS, 5)
        self.want = set(self.rng.sample(range(5), 2))
        self.ticked: set[int] = set()
        self.fields = [self.words[i] for i in sorted(self.want)] + ["submit"]

    def task(self) -> str:
        return f"Select {', '.join(self.fields[:-1])} and click Submit."

    def elements(self):
        out = []
        for i, w in enumerate(self.words):
            out += [Element(str(10 + 2 * i), "label", ""),
                    Element(str(11 + 2 * i), "checkbox", f"ch{i}", checked=i in self.ticked),
                    Element("", "text", w)]  # fmt: skip
        return (*out, Element("30", "button", "Submit"))

    def act(self, kind, ref, value):
        if ref == "30":
            right = sum((i in self.ticked) == (i in self.want) for i in range(5))
            self.done, self.raw_reward = True, (2 * right - 5) / 5
        else:
            self.ticked ^= {(int(ref) - 10) // 2}


class Login(Site):
    def start(self):
        self.user, self.password = self.rng.sample(WORDS, 2)
        self.fields = [self.user, self.password]
        self.typed = {"7": "", "9": ""}

    def task(self) -> str:
        return (f'Enter the username "{self.user}" and the password "{self.password}" into the '
                "text fields and press login.")  # fmt: skip

    def elements(self):
        return (Element("6", "label", "Username"), Element("7", "textbox", "username",
                self.typed["7"]), Element("8", "label", "Password"),
                Element("9", "textbox", "password", self.typed["9"]),
                Element("10", "button", "Login"))  # fmt: skip

    def act(self, kind, ref, value):
        if kind == "fill":
            self.typed[ref] = value
        elif ref == "10":
            ok = self.typed == {"7": self.user, "9": self.password}
            self.done, self.raw_reward = True, 1.0 if ok else -1.0


def solution(site: Site, seed: int, noise: int = 0) -> list[int]:
    """A path to the goal on ``seed`` (indices into the admissible lists), with ``noise``
    pairs of useless actions before it: what exploration hands over."""
    rng = random.Random(seed + 1000)
    site.reset(seed)
    if isinstance(site, Boxes):
        wanted = [click(str(11 + 2 * i)) for i in sorted(site.want)]
        other = next(i for i in range(5) if i not in site.want)
        detour = [click(str(11 + 2 * other)), click(str(10 + 2 * other))]  # tick, untick
        plan = wanted + [click("30")]
    else:
        wanted = [fill("7", site.user), fill("9", site.password)]
        detour = [fill("9", site.user), click("6")]  # a wrong value overwritten later
        plan = wanted + [click("10")]
    for _ in range(noise):  # anywhere before Submit; before the password is typed in Login
        at = rng.randrange(len(plan) - 1) if isinstance(site, Boxes) else 0
        plan[at:at] = detour
    return [site.actions.index(c) for c in plan]  # the page's commands do not change here


def test_detours_are_cut_and_the_path_keeps_its_whole_reward(bc):
    boxes = Boxes()
    path = solution(boxes, seed=3, noise=2)
    steps, reward = bc.essential(boxes, 3, path)
    kept = [s["commands"][s["chosen"]] for s in steps]
    assert reward == 1.0 and len(path) == 7
    assert kept == [click(str(11 + 2 * i)) for i in sorted(boxes.want)] + [click("30")]
    # Each step records what the policy sees before it, and the commands taken so far.
    assert steps[1]["history"] == kept[:1] and steps[0]["instruction"] == boxes.task()
    assert steps[0]["elements"][1] == ["11", "checkbox", "ch0", "", False, False]
    # Ticking one wanted box of two already pays (3 of 5 right): the path is not cut to that.
    assert bc.replay(boxes, 3, kept[1:])[2] > 0
    login = Login()
    steps, reward = bc.essential(login, 4, solution(login, 4, noise=1))
    assert [s["commands"][s["chosen"]] for s in steps] == [
        fill("7", login.user), fill("9", login.password), click("10")]  # fmt: skip
    # A path that misses the goal is kept as it is, with its reward.
    steps, reward = bc.essential(login, 4, [0, 1])
    assert reward == 0.0 and len(steps) == 2


def test_paths_are_read_replayed_once_and_held_out_seeds_refused(bc, tmp_path, monkeypatch):
    results = tmp_path / "web.jsonl"
    base = {"method": "count", "budget": 100, "steps_to_success": 5}
    lines = [{**base, "task": "click-checkboxes", "seed": 1, "solved": True,
              "path": solution(Boxes(), 1, noise=1)},
             {**base, "task": "login-user", "seed": 2, "solved": True,
              "path": solution(Login(), 2)},
             {**base, "task": "login-user", "seed": 3, "solved": False, "path": []},
             {**base, "task": "login-user", "seed": 4, "solved": True, "steps_to_success": 101,
              "path": [1]},  # past the budget: does not count
             {**base, "task": "login-user", "seed": 0, "solved": True}]  # fmt: skip
    results.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"task": "cut sh')
    paths = bc.found_paths([results], held_out={1000})
    assert sorted(paths) == [("click-checkboxes", 1, "count"), ("login-user", 2, "count")]
    with pytest.raises(SystemExit, match="seed 2 of login-user is an evaluation seed"):
        bc.found_paths([results], held_out={2})
    sites = {"click-checkboxes": Boxes, "login-user": Login}
    monkeypatch.setattr(bc.web, "MiniWoBTask", lambda env_id: sites[env_id.split("/")[1][:-3]]())
    cache = tmp_path / "steps.jsonl"
    bc.collect(paths, cache, ["click-checkboxes", "login-user"])
    rows = [json.loads(line) for line in cache.read_text().splitlines()]
    assert [(r["task"], len(r["path"]), len(r["kept"]), r["reward"]) for r in rows] == [
        ("click-checkboxes", 5, 3, 1.0), ("login-user", 3, 3, 1.0)]  # fmt: skip
    before = Site.resets
    bc.collect(paths, cache, ["click-checkboxes", "login-user"])  # all cached: no replay
    assert Site.resets == before and len(cache.read_text().splitlines()) == 2
    assert len(bc.training_set(cache, ["login-user"])) == 1


def test_features_carry_across_seeds(bc):
    """What a seed changes (the words, the element ids' meaning) leaves the features of the
    right command the same: the name matched, the field typed, the history."""
    rows = []
    for seed in (0, 1):
        login = Login()
        login.reset(seed)
        step = bc.observe(login, [fill("7", login.user)])
        x = bc.features(step, "login-user")
        rows.append(x[step["commands"].index(fill("9", login.password))])
        col = bc.COLUMN
        right = x[step["commands"].index(fill("9", login.password))]
        wrong = x[step["commands"].index(fill("9", login.user))]
        assert right[col["label before value"]] == 1 and wrong[col["label before value"]] == 0
        assert wrong[col["value typed before"]] == 1 and right[col["value typed before"]] == 0
    assert (rows[0] == rows[1]).all()
    boxes = Boxes()
    boxes.reset(5)
    step = bc.observe(boxes, [])
    x = bc.features(step, "click-checkboxes")
    col = bc.COLUMN
    for i in range(5):  # a box and its label: the word beside them is asked for or not
        for ref in (10 + 2 * i, 11 + 2 * i):
            row = x[step["commands"].index(click(str(ref)))]
            assert row[col["next text is a field"]] == (i in boxes.want)


def test_a_policy_cloned_from_a_few_noisy_paths_solves_unseen_seeds(bc, tmp_path):
    """One multi-task policy from four noisy paths per task (their detours cut), run greedy on
    20 seeds it never saw."""
    records = []
    for name, site in (("click-checkboxes", Boxes()), ("login-user", Login())):
        for seed in range(4):
            steps, reward = bc.essential(site, seed, solution(site, seed, noise=1))
            kept = [s["commands"][s["chosen"]] for s in steps]
            records.append({"task": name, "seed": seed, "steps": steps, "kept": kept})
    w = bc.fit(records)
    assert bc.accuracy(w, records) == 1.0
    bc.save(tmp_path / "model.json", w, records)  # the policy as data, read back the same
    model, again, paths = bc.load_model(tmp_path / "model.json")
    assert (again == w).all() and len(model) == 10
    assert paths[0] == {"task": "click-checkboxes", "seed": 0, "kept": records[0]["kept"]}
    for name, site in (("click-checkboxes", Boxes()), ("login-user", Login())):
        won = [bc.episode(site, w, name, seed, max_actions=10)["success"]
               for seed in range(100, 120)]  # fmt: skip
        assert sum(won) >= 19, (name, sum(won))
    # Untrained, the same greedy policy does not solve them: the weights carry the skill.
    blank = [bc.episode(Login(), 0 * w, "login-user", s, 10)["success"] for s in range(100, 110)]
    assert sum(blank) == 0


def test_seed_ranges(bc):
    assert bc.seed_range("5-9") == [5, 6, 7, 8, 9]
    assert bc.seed_range("1,3,1000-1002") == [1, 3, 1000, 1001, 1002]


def test_a_found_path_replays_in_the_browser_and_keeps_what_the_goal_needs(bc):
    """The real enter-text: a path with focusing clicks and a second typing is cut to typing
    the value and submitting, which still reaches the goal on the same seed."""
    pytest.importorskip("selenium")
    pytest.importorskip("miniwob")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which(
        "chromedriver"
    ):
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests: apt-get install chromium chromium-driver")
        pytest.skip("needs Chromium and chromedriver (apt-get install chromium chromium-driver)")
    env = bc.web.MiniWoBTask(bc.web.env_id("enter-text"))
    try:
        env.reset(seed=0)
        box = next(e.id for e in env.page.elements if e.role == "textbox")
        submit = next(e.id for e in env.page.elements if e.role == "button")
        value = env.fields[0]
        plan = [click(box), fill(box, value), click(box), fill(box, value), click(submit)]
        path = [env.actions.index(c) for c in plan]  # the page's commands stay the same
        steps, reward = bc.essential(env, 0, path)
        assert reward > 0
        assert [s["commands"][s["chosen"]] for s in steps] == [fill(box, value), click(submit)]
        assert value in steps[0]["instruction"] and steps[1]["history"] == [fill(box, value)]
    finally:
        env.close()
