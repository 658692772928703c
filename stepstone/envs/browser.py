"""Web pages in a real browser as explorable worlds: what MiniWoB++ and a user's web app share.

A browser cannot snapshot a page's whole state (JavaScript heap, server session), so return is
by replay: reset with the seed (the page's ``Math.seedrandom`` in MiniWoB++, the app's reset
hook) and redo the actions (``GymEnv``'s ``replay`` method). Each site (envs/miniwob.py,
envs/web.py) is a small Gymnasium environment whose observation is the page as text and whose
action ``a`` is the ``a % N``-th of the N actions admissible on the page, in document order
(as TextWorld's commands are, envs/textworld.py), so random exploration never wastes a step on
an element that is not there.

The page is a list of ``Element``s: interactive ones with an id (MiniWoB++'s ``ref``, the web
app's ``data-bid``), static text without one. It is shown to language models and written into
datasets as accessibility-tree-like text, ``[12] button 'Submit'``, and actions are written in
BrowserGym's action language (ServiceNow/BrowserGym, ``browsergym/core/action/functions.py``:
``click(bid)``, ``fill(bid, value)``, ``select_option(bid, options)``), with the element ids
as strings: ``click('12')``, ``fill('15', 'text')``.
"""

from __future__ import annotations

import ast
import contextlib
import os
import shlex
import shutil
import signal
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, EnvironmentNotFound
from .generic import GymEnv

# Action ids: ``a % N`` of the page's N admissible actions. Large enough that the modulo barely
# favours the first actions on big pages (at most 1 + 50/1024 times as likely with 50 actions).
MAX_ACTIONS = 1024
INSTALL = "install Chromium and its driver: apt-get install chromium chromium-driver"


@dataclass(frozen=True)
class Element:
    """What the page shows of one element: its state, not its pixels."""

    id: str  # "" for static text, which takes no action
    role: str  # button, link, textbox, checkbox, radio, combobox, text...
    name: str  # the text shown on it or its label
    value: str = ""  # a text field's content or a select's chosen option
    checked: bool | None = None  # checkboxes and radio buttons
    focused: bool = False
    options: tuple[str, ...] = ()  # a select's options

    @property
    def typable(self) -> bool:
        return self.role == "textbox"

    def line(self) -> str:
        """``[12] checkbox 'Red' checked``: the element in accessibility-tree style."""
        head = f"[{self.id}] {self.role}" if self.id else self.role
        out = f"{head} {self.name!r}"
        if self.value:
            out += f" value={self.value!r}"
        if self.checked is not None:
            out += " checked" if self.checked else " unchecked"
        if self.focused:
            out += " focused"
        if self.options:
            out += " options=" + repr(list(self.options))
        return out

    def key(self) -> tuple:
        """The element's state for a cell: everything but its id, which a page may number in
        the order elements were created (a path-dependent order)."""
        return (self.role, self.name, self.value, self.checked, self.focused)


@dataclass(frozen=True)
class Page:
    url: str
    elements: tuple[Element, ...]

    def text(self) -> str:
        return "\n".join(e.line() for e in self.elements) or "(an empty page)"


def click(bid: str) -> str:
    return f"click({bid!r})"


def fill(bid: str, value: str) -> str:
    return f"fill({bid!r}, {value!r})"


def select_option(bid: str, option: str) -> str:
    return f"select_option({bid!r}, {option!r})"


def parse(action: str) -> tuple[str, str, str | None]:
    """``"fill('15', 'text')"`` -> ``("fill", "15", "text")``; ValueError on anything else."""
    try:
        call = ast.parse(action.strip(), mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            raise ValueError
        args = [ast.literal_eval(a) for a in call.args]
    except (SyntaxError, ValueError):
        raise ValueError(f"not a BrowserGym action: {action!r}") from None
    name = call.func.id
    if name == "click" and len(args) == 1:
        return name, str(args[0]), None
    if name in ("fill", "select_option") and len(args) == 2:
        return name, str(args[0]), str(args[1])
    raise ValueError(f"not a BrowserGym action of this world: {action!r}")


# The admissible actions' version (a run keeps the one it was made with, ExploreConfig's
# web_actions, since its trajectories are indices into these lists): 1 a text field is only
# filled; 2 it is clicked too.
ACTIONS_VERSION = 2


def page_actions(page: Page, values: Any, version: int = ACTIONS_VERSION) -> list[str]:
    """Every admissible action, in document order: click each element with an id, a text
    field too from version 2 (liu18 clicks any element, and focusing a field is MiniWoB++'s
    focus-text task); fill each text field with each of its values (``values(element) ->
    list``); choose each option."""
    out: list[str] = []
    for e in page.elements:
        if not e.id:
            continue
        if e.options:
            out.extend(select_option(e.id, o) for o in e.options)
            continue
        if version >= 2 or not e.typable:
            out.append(click(e.id))
        if e.typable:
            out.extend(fill(e.id, v) for v in values(e))
    return out


def words(page: Page, command: str) -> str:
    """An action in words ("click the button 'ONE'"), for a retrospective instruction."""
    kind, bid, value = parse(command)
    e = next((e for e in page.elements if e.id == bid), None)
    what = f"the {e.role} {e.name!r}" if e is not None and e.name else "an element"
    if kind == "click":
        return f"click {what}"
    return f"{'type' if kind == 'fill' else 'choose'} {value!r} in {what}"


def retell(phrases: list[str]) -> str:
    """Phrases joined into one instruction, a phrase repeated in a row said once with its
    count: random exploration repeats actions that change nothing."""
    runs: list[list] = []
    for p in phrases:
        if runs and runs[-1][0] == p:
            runs[-1][1] += 1
        else:
            runs.append([p, 1])
    text = ", then ".join(p if n == 1 else f"{p} ({n} times)" for p, n in runs)
    return text[:1].upper() + text[1:]


def chrome_paths() -> tuple[str, str]:
    """The system Chromium and chromedriver (no download: Selenium Manager would fetch one)."""
    binary = next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        raise EnvironmentNotFound(f"web environments need a browser: {INSTALL}")
    return binary, driver


def chrome() -> Any:
    """A headless Chromium driven through chromedriver, sized like MiniWoB++'s window."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise EnvironmentNotFound(
            "web environments need selenium: pip install 'stepstone[web]'"
        ) from None
    binary, driver = chrome_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = dying_with_parent(binary)
    for arg in ("headless=new", "no-sandbox", "disable-gpu", "disable-dev-shm-usage",
                "window-size=800,600"):  # fmt: skip
        options.add_argument(arg)
    return guard(webdriver.Chrome(service=Service(dying_with_parent(driver)), options=options))


_WRAPPERS: dict[str, str] = {}


def dying_with_parent(program: str) -> str:
    """``program`` started through ``setpriv --pdeathsig`` (util-linux), where it is there: it
    then stops when the process that started it dies, even by SIGKILL. Both chromedriver and
    the browser are started this way, so a worker killed mid-task (as executors do with busy
    workers on close) leaves neither behind. A two-line script in a private temporary
    directory, removed at exit."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return program
    if program not in _WRAPPERS:
        import atexit
        import tempfile

        folder = tempfile.mkdtemp(prefix="stepstone-browser-")
        atexit.register(shutil.rmtree, folder, True)
        path = os.path.join(folder, os.path.basename(program))
        with open(path, "w") as f:
            command = f"{shlex.quote(setpriv)} --pdeathsig TERM {shlex.quote(program)}"
            f.write(f'#!/bin/sh\nexec {command} "$@"\n')
        os.chmod(path, 0o700)
        _WRAPPERS[program] = path
    return _WRAPPERS[program]


def use_system_chrome() -> None:
    """Point the miniwob package at the system browser (its documented MINIWOB_CHROME_BINARY
    and MINIWOB_CHROMEDRIVER), unless the user already has; both die with their parent
    (``dying_with_parent``)."""
    binary, driver = chrome_paths()
    if not os.environ.get("MINIWOB_CHROME_BINARY"):
        os.environ["MINIWOB_CHROME_BINARY"] = dying_with_parent(binary)
        os.environ["MINIWOB_CHROMEDRIVER"] = dying_with_parent(driver)


class BrowserEnv(GymEnv):
    """The adapter of a browser site: GymEnv's replay-from-seed return, plus the page."""

    def __init__(self, site: Any, seed: int = 0):
        self.site = site  # MiniWoBTask or WebApp
        super().__init__(site, method="replay", seed=seed)

    def page(self) -> Page:
        return self.site.page

    def describe(self) -> str:
        """The page as text (what a language model is shown)."""
        return self.page().text()

    def admissible(self) -> list[tuple[int, str]]:
        """(action id, BrowserGym action string) for every action on the page."""
        return list(enumerate(self.site.actions))

    def action_of(self, command: str) -> int:
        """The action id of a BrowserGym action string on the current page."""
        for a, text in self.admissible():
            if text == command:
                return a
        raise ValueError(f"{command!r} is not admissible here")

    def contains(self, kind: str, query: str) -> bool:
        """Whether the page shows ``query`` (``text``) or has an element matching it (``css``)."""
        return page_contains(self.site.driver, kind, query)

    def metrics(self) -> dict:
        return self.site.metrics()


# A request to the browser unanswered this long means the browser hangs (a step takes well
# under a second); Selenium's own default is to wait forever. Whether it still answers after
# an error is asked with a shorter wait.
HUNG_S, ANSWER_S = 60.0, 10.0


def guard(driver: Any) -> Any:
    """``driver`` with its requests limited to ``HUNG_S``: a hung browser raises, as a dead
    one does, and is then started again."""
    driver.command_executor.client_config.timeout = HUNG_S
    return driver


def alive(driver: Any) -> bool:
    """Whether the browser still answers (after an error: a dead or hung one is started
    again)."""
    config = driver.command_executor.client_config
    limit, config.timeout = config.timeout, ANSWER_S
    try:
        driver.execute_script("return 1;")
        return True
    except Exception:
        return False
    finally:
        config.timeout = limit


def broken(driver: Any, error: BaseException) -> bool:
    """Whether the browser must be started again after ``error``: a request that timed out
    (even if the browser answers again later, its page is then mid-load, in no known state)
    or a browser that no longer answers. Other errors are the caller's to raise."""
    from selenium.common.exceptions import TimeoutException
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (TimeoutError, Urllib3Timeout, TimeoutException)):
            return True
        seen = seen.__cause__ or seen.__context__
    return not alive(driver)


def stop(driver: Any) -> None:
    """End a browser that failed, hung ones too: SIGKILL to chromedriver and every process
    under it (found by parent id in /proc, Linux), which ``quit()`` cannot do for a browser
    that does not answer (a stopped process does not even take the SIGTERM that
    ``dying_with_parent`` sends). Elsewhere, ``quit()``."""
    process = getattr(getattr(driver, "service", None), "process", None)
    if process is not None and process.poll() is not None:
        return  # chromedriver has ended (and been waited for: its id may be another's now)
    if process is None or not os.path.isdir("/proc"):
        with contextlib.suppress(Exception):
            driver.quit()
        return
    for pid in reversed(tree(process.pid)):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        process.wait(timeout=ANSWER_S)


def tree(pid: int) -> list[int]:
    """``pid`` and every process under it, parents first."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def page_contains(driver: Any, kind: str, query: str) -> bool:
    """``text``: the page's visible text includes ``query``; ``css``: an element matches it."""
    if kind == "text":
        return query in driver.execute_script("return document.body.innerText;")
    from selenium.common.exceptions import JavascriptException

    try:
        return bool(driver.execute_script("return !!document.querySelector(arguments[0]);", query))
    except JavascriptException:
        raise ConfigError(f"--goal css:{query} is not a valid CSS selector") from None


def browser_env(site: Any, spec: Any, env_id: str) -> BrowserEnv:
    """The adapter of a site (a MiniWoB++ task, a web app) as a family builds it."""
    if spec.return_method not in ("auto", "replay"):
        raise EnvironmentNotFound(
            f"{env_id} returns to states by replay only (a browser cannot be copied); "
            "leave out --return or give --return replay"
        )
    return BrowserEnv(site, seed=spec.seed)
