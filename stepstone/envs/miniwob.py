"""MiniWoB++ tasks (``miniwob/TASK-v1``, the Farama ``miniwob`` package) as explorable worlds.

Actions are the ``liu18`` set of the package (Liu et al. 2018, "Reinforcement Learning on Web
Interfaces Using Workflow-Guided Exploration": click an element; focus a text field and type
one of the task's fields), listed per page in document order (envs/browser.py). A typing
action first empties the field, so that it means what BrowserGym's ``fill`` means.

Three changes to the package's defaults make a task explorable:

* the reward is the task's raw reward (``miniwob.reward.get_raw_reward``), not the default one
  scaled by the time left, which no replay reproduces; success is a positive raw reward, as
  BrowserGym scores MiniWoB++ (``browsergym/miniwob/base.py``: ``validate``);
* the in-page timer (``core.EPISODE_MAX_TIME``, 10-30 s) would end episodes during a return or
  a slow exploration: it is set far out before each episode, as BrowserGym does (``base.py``:
  ``episode_max_time=1000000`` written to ``core.EPISODE_MAX_TIME`` before
  ``core.startEpisodeReal()``);
* no screenshots (``record_screenshots=False``): cells and text come from the DOM.

``reset(seed)`` seeds the page (``Math.seedrandom``), so a seed and the actions replay an
episode; element ids (``ref``) restart at each episode. A browser that dies mid-step is started
again and the episode so far replayed, as a crashed emulator would be.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from ..errors import EnvironmentNotFound
from .browser import (
    MAX_ACTIONS,
    BrowserEnv,
    Element,
    Page,
    alive,
    browser_env,
    page_actions,
    parse,
    retell,
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
# liu18's action types, in the package's order (miniwob/action.py: ActionSpaceConfig.get_preset)
NONE, CLICK, TYPE_FIELD = 0, 1, 2


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
    default_cells: tuple[str, dict] = ("dom", {})

    def __init__(self, task_id: str):
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
        self.task_id = task_id
        self.action_space = spaces.Discrete(MAX_ACTIONS)
        self.observation_space = spaces.Text(max_length=1_000_000)
        self._env: Any = None
        self._start()

    def _start(self) -> None:
        from miniwob.reward import get_raw_reward

        if self._env is not None:
            with contextlib.suppress(Exception):  # a dead browser may not close cleanly
                self._env.close()
        logging.getLogger("selenium").setLevel(logging.ERROR)
        self._env = gym.make(
            self.task_id, action_space_config="liu18", reward_processor=get_raw_reward,
            disable_env_checker=True,
        ).unwrapped  # fmt: skip

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
        except Exception:
            if alive(self.driver):
                raise
            self._start()  # the browser died: start another, once
            text = self._begin(seed)
        return text, {}

    def _begin(self, seed: int | None) -> str:
        self.driver.execute_script("core.EPISODE_MAX_TIME = arguments[0];", NO_TIMER_MS)
        obs, _ = self._env.reset(seed=seed, options={"record_screenshots": False})
        self.fields = [str(v) for _, v in obs["fields"]]
        self.utterance = str(obs["utterance"])
        return self._observe(obs, 0.0, False)

    def _observe(self, obs: dict, raw: float, done: bool) -> str:
        self.raw_reward, self.done = raw, done
        if done:
            status = Element("", "status", f"episode over, reward {raw:g}")
            self.page = Page(self.task_id, (status,))
        else:
            self.page = Page(self.task_id, elements(obs["dom_elements"]))
        self.actions = [] if done else page_actions(self.page, lambda e: self.fields)
        return self.page.text()

    def step(self, action: int):
        if not self.actions:  # the episode is over: nothing to do
            return self.page.text(), 0.0, True, False, {"command": "noop()"}
        command = self.actions[int(action) % len(self.actions)]
        said = words(self.page, command)
        try:
            obs, reward, done, _, _ = self._act(command)
        except Exception:
            if alive(self.driver):
                raise
            # the browser died: start another, replay, and try once more
            self._start()
            self._begin(self._seed)
            for a in self._taken:
                self._observe(self._act(self.actions[a % len(self.actions)])[0], 0.0, False)
            obs, reward, done, _, _ = self._act(command)
        self._taken.append(int(action))
        self._said.append(said)
        text = self._observe(obs, float(reward), bool(done))
        return text, float(reward), bool(done), False, {"command": command}

    def _act(self, command: str):
        kind, ref, value = parse(command)
        if kind == "click":
            act = {"action_type": CLICK, "ref": int(ref)}
        else:
            self.driver.execute_script(
                "var e = core.previousDOMInfo[arguments[0]]; if (e) e.value = '';", int(ref)
            )
            act = {
                "action_type": TYPE_FIELD,
                "ref": int(ref),
                "field": self.fields.index(str(value)),
            }
        return self._env.step(act)

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
    return browser_env(MiniWoBTask(env_id), spec, env_id)
