"""A user's own web app (``web:http://127.0.0.1:PORT/path``) as an explorable world.

Each episode starts from the app's reset hook (``--web-reset``: a URL that is POSTed to, or a
``module:function`` of the user's, called with the seed) and a clean browser (no cookies, no
storage) at the start URL. The actions are those of the page in document order
(envs/browser.py): click each link, button or clickable element; fill each text field with each
of its values; choose each option of a select. A field's values come from ``--web-values
FILE`` (JSON: ``{"field name, id or label": ["value", ...], "*": [...]}``, ``*`` for any other
field), else the one value "test". Elements are found by a ``data-bid`` attribute written on
them when the page is read, as BrowserGym marks its ``bid``s.

The app should be deterministic given its reset: return is by replay, and ``stepstone replay``
checks that each stored trajectory still reaches its cell.
"""

from __future__ import annotations

import importlib
import time
import urllib.error
import urllib.request
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
    chrome,
    page_actions,
    parse,
    retell,
    stop,
    words,
)

DEFAULT_VALUES = ("test",)
# A navigation starts within a few milliseconds of the click that asks for it (beforeunload
# marks it); a click that started none after SETTLE_S changed the page in place.
MARK = (
    "window.__stepstone = 'old';"
    "window.addEventListener('beforeunload', () => { window.__stepstone = 'leaving'; });"
)
CLICK = "const e = document.querySelector(`[data-bid='${arguments[0]}']`); e.click(); e.focus();"
SETTLE_S = 0.03
NAVIGATION_TIMEOUT_S = 30.0
INTERACTIVE = "a[href], button, input, select, textarea, [onclick], [role=button]"
# The page in document order: interactive elements (numbered, with their state) and the text
# of everything else, hidden elements left out.
READ_PAGE = """
const interactive = arguments[0];
const items = [];
let bid = 0;
function visible(el) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return false;
  const s = getComputedStyle(el);
  return s.visibility !== 'hidden' && s.display !== 'none';
}
function labelOf(el) {
  if (el.labels && el.labels.length) return el.labels[0].innerText.trim();
  return (el.getAttribute('aria-label') || el.getAttribute('placeholder') || '').trim();
}
function walk(node) {
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) {
      const t = child.data.replace(/\\s+/g, ' ').trim();
      if (t && visible(child.parentElement)) items.push({text: t});
      continue;
    }
    if (child.nodeType !== Node.ELEMENT_NODE) continue;
    const el = child;
    if (['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE'].includes(el.tagName)) continue;
    if (!el.matches(interactive)) { walk(el); continue; }
    if (!visible(el) || el.disabled) continue;
    el.dataset.bid = String(bid);
    const tag = el.tagName.toLowerCase(), type = (el.type || '').toLowerCase();
    const item = {bid: String(bid++), tag: tag, type: type, name: '', value: '', checked: null,
                  focused: document.activeElement === el, options: [],
                  key: el.getAttribute('name') || el.id || ''};
    if (tag === 'select') {
      item.options = Array.from(el.options).map(o => o.text.trim());
      item.value = el.selectedIndex >= 0 ? el.options[el.selectedIndex].text.trim() : '';
      item.name = labelOf(el);
    } else if (tag === 'input' || tag === 'textarea') {
      item.name = labelOf(el);
      if (type === 'checkbox' || type === 'radio') item.checked = el.checked;
      else if (['submit', 'button', 'reset'].includes(type)) item.name = el.value;
      else item.value = el.value;
    } else {
      item.name = el.innerText.replace(/\\s+/g, ' ').trim();
    }
    items.push(item);
  }
}
walk(document.body);
return [location.href, document.title, items];
"""
TEXT_TYPES = {"", "text", "password", "email", "number", "search", "tel", "url", "textarea"}


def _role(item: dict) -> str:
    tag, kind = item["tag"], item["type"]
    if tag == "a":
        return "link"
    if tag == "select":
        return "combobox"
    if tag == "textarea" or (tag == "input" and kind in TEXT_TYPES):
        return "textbox"
    if tag == "input" and kind in ("checkbox", "radio"):
        return kind
    if tag == "button" or tag == "input":
        return "button"
    return "clickable"


def reset_hook(spec: str | None) -> Any:
    """The reset hook: None, a URL to POST to, or ``module:function`` (called with the seed)."""
    if not spec:
        return None
    if spec.startswith(("http://", "https://")):

        def post(seed: int | None) -> None:
            try:
                urllib.request.urlopen(urllib.request.Request(spec, data=b""), timeout=30)
            except (urllib.error.URLError, OSError) as e:
                raise EnvironmentNotFound(f"the reset hook {spec} failed ({e})") from None

        return post
    module, colon, name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name) if colon else None
    except (ImportError, AttributeError):
        fn = None
    if not callable(fn):
        raise EnvironmentNotFound(
            f"--web-reset takes a URL (http://...) or module:function of yours, not {spec!r}"
        )
    return fn


class WebApp(gym.Env):
    """A web app at ``url``: text observation, admissible actions, no reward of its own (give
    the goal with ``--goal 'text:...'`` or ``--goal 'css:...'``)."""

    metadata = {"render_modes": []}
    default_cells: tuple[str, dict] = ("dom", {})

    def __init__(
        self,
        url: str,
        reset: str | None = None,
        values: dict | None = None,
        task: str | None = None,
        actions: int = ACTIONS_VERSION,
    ):
        if not url.startswith(("http://", "https://", "file://")):
            raise EnvironmentNotFound(
                f"web: takes the app's start URL, e.g. web:http://127.0.0.1:8000/, not {url!r}"
            )
        if values is not None and not (
            isinstance(values, dict)
            and all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                    for v in values.values())
        ):  # fmt: skip
            raise EnvironmentNotFound(
                '--web-values takes a JSON object of lists of strings, e.g. {"email": '
                '["a@b.c"], "*": ["test"]}'
            )
        self.url, self.actions_version = url, actions
        self._task = task or f"Explore the web app at {url}."
        self._hook = reset_hook(reset)
        self.values = values or {}
        self.action_space = spaces.Discrete(MAX_ACTIONS)
        self.observation_space = spaces.Text(max_length=1_000_000)
        self.driver: Any = None
        self._start()

    def _start(self) -> None:
        if self.driver is not None:  # it failed: dead or hung
            stop(self.driver)
        self.driver = chrome()
        self.driver.set_page_load_timeout(30)

    def reset(self, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if self._hook is not None:
            self._hook(seed)
        self._seed = seed
        self._taken: list[int] = []
        self._said: list[str] = []
        self._visited: set[str] = set()
        try:
            self._begin()
        except Exception as e:
            if not broken(self.driver, e):
                raise
            self._start()  # the browser died or hung: start another, once
            self._begin()
        return self.page.text(), {}

    def _begin(self) -> None:
        d = self.driver
        d.get(self.url)
        d.delete_all_cookies()
        d.execute_script("try { localStorage.clear(); sessionStorage.clear(); } catch (e) {}")
        d.get(self.url)
        self._read()

    def _read(self) -> None:
        url, self.title, items = self.driver.execute_script(READ_PAGE, INTERACTIVE)
        self._visited.add(url)
        elements, self._keys = [], {}
        for it in items:
            if "text" in it:
                elements.append(Element("", "text", it["text"]))
                continue
            self._keys[it["bid"]] = (it["key"], it["name"])
            elements.append(
                Element(
                    it["bid"], _role(it), it["name"], it["value"], it["checked"], it["focused"],
                    tuple(it["options"]),
                )
            )  # fmt: skip
        self.page = Page(url, tuple(elements))
        self.actions = page_actions(self.page, self._values, self.actions_version)

    def _values(self, e: Element) -> list[str]:
        key, label = self._keys[e.id]
        for k in (key, label, "*"):
            if k and k in self.values:
                return list(self.values[k])
        return list(DEFAULT_VALUES)

    def step(self, action: int):
        if not self.actions:
            return self.page.text(), 0.0, False, False, {"command": "noop()"}
        command = self.actions[int(action) % len(self.actions)]
        said = words(self.page, command)
        try:
            self._act(command)
        except Exception as e:
            if not broken(self.driver, e):
                raise
            # the browser died or hung: start another, replay, and try once more
            self._start()
            self._begin()
            for a in self._taken:
                self._act(self.actions[a % len(self.actions)])
            self._act(command)
        self._taken.append(int(action))
        self._said.append(said)
        return self.page.text(), 0.0, False, False, {"command": command}

    def _act(self, command: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        kind, bid, value = parse(command)
        if kind == "click":  # as MiniWoB++ clicks (core.js: elementClick): one round trip
            self.driver.execute_script(MARK + CLICK, bid)
        else:
            self.driver.execute_script(MARK)
            el = self.driver.find_element(By.CSS_SELECTOR, f'[data-bid="{bid}"]')
            if kind == "fill":  # typed key by key, for apps that listen to keys
                el.clear()
                el.send_keys(value)
            else:
                Select(el).select_by_visible_text(str(value))
        self._settle()
        self._read()

    def _settle(self) -> None:
        """Wait until a navigation the action started (a link, a form sent) has loaded: the
        driver may return from a click before the next page has even been asked for."""
        from selenium.common.exceptions import WebDriverException

        start = time.monotonic()
        while time.monotonic() - start < NAVIGATION_TIMEOUT_S:
            try:
                mark, ready = self.driver.execute_script(
                    "return [window.__stepstone || 'new', document.readyState];"
                )
            except WebDriverException:  # between two documents
                mark, ready = "leaving", ""
            if mark == "new" and ready == "complete":
                return
            if mark == "old" and time.monotonic() - start > SETTLE_S:
                return  # no navigation began
            time.sleep(0.005)

    def admissible(self) -> list[tuple[int, str]]:
        return list(enumerate(self.actions))

    def task(self) -> str:
        return self._task

    def achieved(self) -> str:
        """What the actions did, as an instruction (OS-Genesis's reverse task synthesis, by a
        template), with the page they ended on."""
        end = f"the page {self.title!r}" if self.title else self.page.url
        if not self._said:
            return f"Open {end}."
        return f"{retell(self._said)}, to reach {end}."

    def metrics(self) -> dict:
        return {"pages": len(self._visited)}

    def close(self) -> None:
        if self.driver is not None:
            self.driver.quit()
            self.driver = None


def adapter(spec: Any, env_id: str, env: None) -> BrowserEnv:
    """The entry point of the ``web`` family (envs.FAMILIES): ``web:URL``, with the web app's
    options (``--web-reset``, ``--web-values``, ``--web-task``) as its arguments."""
    app = WebApp(env_id.partition(":")[2], **spec.env_args, actions=spec.web_actions)
    return browser_env(app, spec, env_id)
