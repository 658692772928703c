"""MiniWoB++ tasks (``miniwob/TASK-v1``, the Farama ``miniwob`` package) as explorable worlds.

Actions are the ``liu18`` set of the package (Liu et al. 2018, "Reinforcement Learning on Web
Interfaces Using Workflow-Guided Exploration": click an element; focus a text field and type
one of the task's fields), listed per page in document order (envs/browser.py). A typing
action first empties the field, so that it means what BrowserGym's ``fill`` means.

Four changes to the package's defaults make a task explorable:

* the reward is the task's raw reward (``WOB_RAW_REWARD_GLOBAL``, which the package's
  ``miniwob.reward.get_raw_reward`` reads), not the default one scaled by the time left,
  which no replay reproduces; success is a positive raw reward, as BrowserGym scores
  MiniWoB++ (``browsergym/miniwob/base.py``: ``validate``);
* the in-page timer (``core.EPISODE_MAX_TIME``, 10-30 s) would end episodes during a return or
  a slow exploration: it is set far out before each episode, as BrowserGym does (``base.py``:
  ``episode_max_time=1000000`` written to ``core.EPISODE_MAX_TIME`` before
  ``core.startEpisodeReal()``);
* no screenshots: cells and text come from the DOM;
* the page is loaded afresh for each episode (``refresh_freq=1``), so that an episode starts
  from its seed alone.

A click is one Selenium round trip (the click, the reward and the DOM in one script), typing
three (focus; the keys, sent as key presses; the read), a reset a page load and two scripts,
where the package's ``step`` makes five to seven and its ``reset`` nine (two reads of the
metadata, the utterance, the DOM, one call per setting): each costs 3-6 ms of chromedriver,
most of a step (bench/README.md, "MiniWoB++ by exploration"). The scripts call the same
functions of the page's ``core.js`` in the package's order (``miniwob/selenium_instance.py``:
``reset``, ``step``, ``get_observation``), and read the page once it has settled (``STEP``):
the pages the package shows, except where it catches an animation midway (``python
bench/web.py --speed`` compares them).

``reset(seed)`` seeds the page (``Math.seedrandom``), so a seed and the actions replay an
episode; element ids (``ref``) restart at each episode. A browser that dies mid-step, or hangs
(no answer in ``browser.HUNG_S``), is ended with all its processes, another started, and the
episode so far replayed, as a crashed emulator would be.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from ..errors import EnvironmentNotFound
from .browser import (
    ACTIONS_VERSION,
    MAX_ACTIONS,
    BrowserEnv,
    Element,
    Page,
    broken,
    browser_env,
    guard,
    page_actions,
    parse,
    retell,
    stop,
    use_system_chrome,
    words,
)

# 10^9 ms (11.6 days): far beyond any exploration, and below setTimeout's 2^31-1 ms limit,
# past which browsers fire the timer at once.
NO_TIMER_MS = 10**9
ROLES = {
    "button": "button", "a": "link", "input_text": "textbox", "input_password": "textbox",
    "input_email": "textbox", "input_number": "textbox", "input_search": "textbox",
    "input_tel": "textbox", "input_url": "textbox", "textarea": "textbox",
    "input_checkbox": "checkbox", "input_radio": "radio", "input_submit": "button",
    "input_button": "button", "select": "combobox", "option": "option", "label": "label",
    "t": "text",
}  # fmt: skip
INTERACTIVE = {"button", "link", "textbox", "checkbox", "radio", "combobox", "option", "label"}
# The package's wait for a task to load (selenium_instance.py: RESET_BLOCK_*): up to 1 s.
READY_TRIES, READY_SLEEP = 20, 0.05
# A reset in one script: the package's force_stop, set_seed, set_mode and begin_task, with
# the timer set far out first (arguments: seed or null, data mode, timer in ms), and the page's
# jQuery animations made to jump to their end (``jQuery.fx.off``), as the package's -nodelay
# variants do by hand for a few tasks: the page read after an action is the one it settles on
# (STEP), and waiting 200 ms for a datepicker to fade made such tasks 7 times slower.
BEGIN = """
if (window.jQuery) jQuery.fx.off = true;
core.endEpisode(0);
if (arguments[0] !== null) Math.seedrandom(arguments[0]);
core.setDataMode(arguments[1]);
core.EPISODE_MAX_TIME = arguments[2];
core.startEpisodeReal();
"""
# Before typing: click the element (liu18's FOCUS_ELEMENT_AND_TYPE_FIELD) emptied first, as
# BrowserGym's fill; null once the episode is over, when the package's perform does nothing.
FOCUS = """
if (WOB_DONE_GLOBAL) return null;
var e = core.previousDOMInfo[arguments[0]];
if (e) e.value = '';
return core.elementClick(arguments[0]);
"""
# A click (liu18's CLICK_ELEMENT) when given an element's ref, nothing once the episode is
# over; then the page once it has settled: two turns of the page's event loop have run what the
# action queued with no delay (an autocomplete's answer), and the page's jQuery animations have
# ended (a datepicker fades out in 200 ms; polled every 10 ms, for 1 s at most). The package
# reads the page wherever its round trips happen to fall, mid-animation sometimes, so two runs
# of the same actions can differ, which return by replay cannot have. null while the task
# loads; else whether the episode is over, its raw reward, the utterance when asked, and the
# DOM while the episode runs. An asynchronous script: the last argument is the reply.
STEP = """
var ref = arguments[0], utterance = arguments[1], reply = arguments[2], waits = 0;
if (ref !== null && !WOB_DONE_GLOBAL) core.elementClick(ref);
function read() {
  if (window.jQuery && (jQuery.timers || []).length && waits++ < 100) return setTimeout(read, 10);
  reply(!WOB_TASK_READY ? null : {
    done: WOB_DONE_GLOBAL, raw: WOB_RAW_REWARD_GLOBAL,
    utterance: utterance ? core.getUtterance() : null,
    dom: WOB_DONE_GLOBAL ? null : core.getDOMInfo()});
}
setTimeout(function () { setTimeout(read, 0); }, 0);
"""


def elements(dom: tuple[dict, ...]) -> tuple[Element, ...]:
    """The page's elements from the package's observation: leaves and interactive elements
    with their ref as id, text pieces without one. The body and layout containers (non-leaf
    ``div``s) are left out: their content is listed in their place."""
    out = []
    for d in dom:
        tag, ref = str(d["tag"]), int(d["ref"])
        role = ROLES.get(tag, tag)
        leaf = bool(d["flags"][3])
        if role == "text":
            out.append(Element("", "text", str(d["text"])))
            continue
        if ref <= 1 or not (leaf or role in INTERACTIVE):  # ref 1 is the body
            continue
        value = str(d["value"])
        checked = value == "True" if role in ("checkbox", "radio") else None
        name = str(d["text"]) or str(d["id"])
        shown = value if role == "textbox" else ""
        out.append(Element(str(ref), role, name, shown, checked, bool(d["flags"][0])))
    return tuple(out)


class MiniWoBTask(gym.Env):
    """One MiniWoB++ task: text observation, admissible liu18 actions, raw reward."""

    metadata = {"render_modes": []}
    goal_words = "the task done, rewarded at the episode's end"
    default_cells: tuple[str, dict] = ("dom", {})

    def __init__(self, task_id: str, actions: int = ACTIONS_VERSION):
        try:
            import miniwob
        except ImportError:
            raise EnvironmentNotFound(
                "MiniWoB++ tasks need the miniwob package: pip install 'stepstone[web]'"
            ) from None
        gym.register_envs(miniwob)
        if task_id not in gym.registry:
            import difflib

            tasks = [k for k in gym.registry if k.startswith("miniwob/")]
            close = difflib.get_close_matches(task_id, tasks, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise EnvironmentNotFound(f"no MiniWoB++ task {task_id!r}{hint}")
        use_system_chrome()
        self.task_id, self.actions_version = task_id, actions
        self.action_space = spaces.Discrete(MAX_ACTIONS)
        self.observation_space = spaces.Text(max_length=1_000_000)
        self._env: Any = None
        self._start()

    def _start(self) -> None:
        if self._env is not None:  # it failed: dead or hung
            stop(self.driver)
        logging.getLogger("selenium").setLevel(logging.ERROR)
        self._env = gym.make(
            self.task_id, action_space_config="liu18", disable_env_checker=True
        ).unwrapped
        guard(self.driver)

    @property
    def driver(self) -> Any:
        return self._env.instance.driver

    def reset(self, seed: int | None = None, options=None):
        super().reset(seed=seed)
        self._seed = seed
        self._taken: list[int] = []
        self._said: list[str] = []
        try:
            text = self._begin(seed)
        except Exception as e:
            if not broken(self.driver, e):
                raise
            self._start()  # the browser died or hung: start another, once
            text = self._begin(seed)
        return text, {}

    def _begin(self, seed: int | None) -> str:
        from miniwob.constants import UTTERANCE_MAX_LENGTH

        instance = self._env.instance
        # A fresh page each episode (the package's refresh_freq=1): a page keeps what the last
        # episode left (a focused field, an open datepicker), so a reset would depend on the
        # path before it and a return by replay would land elsewhere.
        self.driver.get(instance.url)
        self.driver.execute_script(BEGIN, seed, instance.mode, NO_TIMER_MS)
        for _ in range(READY_TRIES):  # the package's wait for WOB_TASK_READY, no fixed sleep
            state = self.driver.execute_async_script(STEP, None, True)
            if state is not None:
                break
            time.sleep(READY_SLEEP)
        else:
            raise RuntimeError(f"{self.task_id} did not load (WOB_TASK_READY stayed false)")
        said = state["utterance"]  # a task gives its fields, or the package extracts them
        if isinstance(said, dict):
            self.utterance = str(said["utterance"])[:UTTERANCE_MAX_LENGTH]
            self.fields = [str(v) for v in said["fields"].values()]
        else:
            self.utterance = str(said)[:UTTERANCE_MAX_LENGTH]
            self.fields = [str(v) for _, v in instance.field_extractor(str(said))]
        return self._observe(*self._state(state))

    @staticmethod
    def _state(state: dict) -> tuple[bool, float, Any]:
        """(episode over, raw reward, the DOM's root element or None) from a STEP reply."""
        from miniwob.dom import DOMElement

        done = bool(state["done"])
        return (
            done,
            float(state["raw"]) if done else 0.0,
            None if done else DOMElement(state["dom"]),
        )

    def _observe(self, done: bool, raw: float, root: Any) -> str:
        """The page after a reset or step: the episode's end and raw reward, or the elements
        shown (the package's own serialization of its ``DOMElement`` tree)."""
        self.raw_reward, self.done = raw, done
        if done:
            status = Element("", "status", f"episode over, reward {raw:g}")
            self.page = Page(self.task_id, (status,))
        else:
            from miniwob.observation import serialize_dom_element

            dom = [serialize_dom_element(e) for e in root.subtree_elements]
            self.page = Page(self.task_id, elements(tuple(dom)))
        self.actions = (
            [] if done else page_actions(self.page, lambda e: self.fields, self.actions_version)
        )
        return self.page.text()

    def step(self, action: int):
        if not self.actions:  # the episode is over: nothing to do
            return self.page.text(), 0.0, True, False, {"command": "noop()"}
        command = self.actions[int(action) % len(self.actions)]
        said = words(self.page, command)
        try:
            state = self._act(command)
        except Exception as e:
            if not broken(self.driver, e):
                raise
            # the browser died or hung: start another, replay, and try once more
            self._start()
            self._begin(self._seed)
            for a in self._taken:
                self._observe(*self._act(self.actions[a % len(self.actions)]))
            state = self._act(command)
        self._taken.append(int(action))
        self._said.append(said)
        text = self._observe(*state)
        return text, self.raw_reward, self.done, False, {"command": command}

    def _act(self, command: str) -> tuple[bool, float, Any]:
        """Do ``command`` on the page (liu18: click the element; or click it, empty it and type
        a field, as key presses) and read the page after it."""
        from miniwob.selenium_actions import execute_type_text

        kind, ref, value = parse(command)
        if kind == "click":
            return self._state(self.driver.execute_async_script(STEP, int(ref), False))
        if self.driver.execute_script(FOCUS, int(ref)) is not None:
            execute_type_text(str(value), self.driver)
        return self._state(self.driver.execute_async_script(STEP, None, False))

    def admissible(self) -> list[tuple[int, str]]:
        return list(enumerate(self.actions))

    def goal(self) -> bool:
        return self.done and self.raw_reward > 0

    def task(self) -> str:
        return self.utterance

    def achieved(self) -> str:
        """What the actions did, as an instruction (OS-Genesis's reverse task synthesis, by a
        template): "Click the button 'ONE', then ...", and how the episode ended."""
        if not self._said:
            return "Do nothing."
        end = f" (the task then ended with reward {self.raw_reward:g})" if self.done else ""
        return retell(self._said) + end + "."

    def metrics(self) -> dict:
        return {}

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


def adapter(spec: Any, env_id: str, env: None) -> BrowserEnv:
    """The entry point of the ``miniwob`` family (envs.FAMILIES): ``miniwob/TASK-v1``."""
    if spec.env_args:
        raise EnvironmentNotFound(f"--env-arg and --web-* options do not apply to {env_id}")
    return browser_env(MiniWoBTask(env_id, spec.web_actions), spec, env_id)
