"""Behaviour cloning on the trajectories exploration found: issue 22's WGE pipeline, with no
human demonstrations.

WGE (Liu et al. 2018, "Reinforcement Learning on Web Interfaces Using Workflow-Guided
Exploration") used 10 human demonstrations per task to induce workflows that constrain
exploration, kept the successful episodes in a buffer, and trained a neural policy (DOMNet) on
them. Here exploration finds the successes alone: Go-Explore's paths (bench/web.py writes each
solved (task, seed) run's ``path``, the action indices from ``reset(seed)`` to the goal), over
training seeds disjoint from the evaluation seeds.

1. **Steps.** Each path is replayed in the browser and each decision kept as (instruction,
   fields, page elements, admissible commands, the commands taken before, the chosen one), one
   JSON line per path in ``--cache`` so a path is replayed once. Exploration's paths carry
   detours (an action that changes nothing, a checkbox ticked then unticked), so only the
   actions the reward needs are kept (``essential``).
2. **Policy.** One multi-task linear scorer over the admissible commands (a conditional logit:
   softmax over the page's commands, cross-entropy on the chosen one, each task weighted
   equally). A task has one to a few found paths, so the features are those that carry across
   seeds, where the words and element ids change: whether the element's text (or the text next
   to it, as a checkbox's) is one of the instruction's fields or appears in it, the element's
   role and state (checked, focused, filled), for a typing command which field it types and
   whether the field's label precedes that value in the instruction, what the episode already
   did (this command, this element, the fields typed), and hashed words of the element's text
   and the task's (role, kind) prior. A language model over the same records (``stepstone
   export --format jsonl``) is the larger option; with one to a few paths per task it would
   mostly memorise.
3. **Evaluation.** Greedy on held-out seeds (``--eval-seeds``, default 1000-1009, never used
   for exploration), episodes cut at ``--max-actions`` (10), success = the task's goal (a
   positive raw reward), beside WGE's ~65% and WebN-T5's ~48% mean success over the same 56
   tasks (figures as issue 22 quotes them, from the comparison tables of the WebGUM paper,
   Furuta et al. 2023; both policies learned from human demonstrations).

    python bench/web_bc.py --explore --seeds 5-9 --skip-unsolved bench/results/web.jsonl
    python bench/web_bc.py --no-eval       # replay new paths, cut them, train: --model
    python bench/web_bc.py --no-train      # evaluate --model on the held-out seeds, the table
    python bench/web_bc.py --no-train --no-eval     # the table of what is done
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import web  # noqa: E402  (bench/web.py)

from stepstone.config import ExploreConfig  # noqa: E402
from stepstone.envs.browser import parse  # noqa: E402
from stepstone.worker import Worker  # noqa: E402

RESULTS = Path(__file__).parent / "results"
EVAL_SEEDS = "1000-1009"
WGE, WEBN_T5 = 0.65, 0.48


def seed_range(text: str) -> list[int]:
    """``"5-9"`` -> [5, 6, 7, 8, 9]; ``"1,3"`` -> [1, 3]."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


# -- 1. paths and the steps they take -----------------------------------------------------


def found_paths(files: list[Path], held_out: set[int]) -> dict[tuple, list[int]]:
    """(task, seed, method) -> the path of every solved run (within its budget) in ``files``;
    a held-out seed among them is refused: the evaluation must not see its pages."""
    out = {}
    for f in files:
        for r in web.load(f):
            if not r.get("path") or not web.won(r):
                continue
            if r["seed"] in held_out:
                raise SystemExit(f"{f}: seed {r['seed']} of {r['task']} is an evaluation seed")
            out[(r["task"], int(r["seed"]), r["method"])] = [int(a) for a in r["path"]]
    return out


def observe(env: Any, history: list[str]) -> dict:
    """What the policy sees before a decision (data only: JSON)."""
    return {
        "instruction": env.task(),
        "fields": list(env.fields),
        "elements": [
            [e.id, e.role, e.name, e.value, e.checked, e.focused] for e in env.page.elements
        ],  # fmt: skip
        "commands": list(env.actions),
        "history": list(history),
    }


def replay(env: Any, seed: int, path: list) -> tuple[list[dict], list[Any], float]:
    """The steps of ``path`` from ``reset(seed)``, the page before each and after the last, and
    the raw reward it ended with (0 if it did not end; the goal is a positive one). ``path``
    holds action indices (a path as exploration wrote it) or BrowserGym commands; a command
    not on the page ends the replay with no reward."""
    env.reset(seed=seed)
    steps, pages, history = [], [env.page.elements], []
    for a in path:
        if not env.actions:
            break
        if isinstance(a, str) and a not in env.actions:
            return steps, pages, 0.0
        step = observe(env, history)
        step["chosen"] = env.actions.index(a) if isinstance(a, str) else a % len(env.actions)
        steps.append(step)
        history.append(env.actions[step["chosen"]])
        env.step(step["chosen"])
        pages.append(env.page.elements)
    return steps, pages, env.raw_reward if env.done else 0.0


def without_detours(commands: list[str], pages: list[Any]) -> list[str]:
    """``commands`` with every stretch that returns to a page seen before cut out (``pages[i]``:
    the page before ``commands[i]``; the last, the page after them). Hidden state (which
    button was pressed first) may differ, which is why the caller replays the result."""
    kept: list[tuple[Any, str]] = [(pages[0], "")]
    for c, page in zip(commands, pages[1:], strict=False):
        back = next((i for i, (p, _) in enumerate(kept) if p == page), None)
        if back is not None:
            del kept[back + 1 :]
        else:
            kept.append((page, c))
    return [c for _, c in kept[1:]]


def essential(env: Any, seed: int, path: list[int], longest: int = 30) -> tuple[list, float]:
    """The steps of a shorter path to the same reward, and that reward: ``path``'s detours cut
    out, then each remaining action dropped in turn (first to last) where the rest still ends
    with as high a raw reward (paths of at most ``longest`` actions: a replay per action).
    Exploration's paths carry actions that did nothing or were undone, which a policy cloned
    from them would learn too. As high, not just positive: a task such as click-checkboxes
    pays a positive reward for more than half its boxes right, and a path cut down to that
    would teach the policy to stop short. (``path``'s own steps when it misses the goal.)"""
    steps, pages, reward = replay(env, seed, path)
    if reward <= 0:
        return steps, reward
    commands = [s["commands"][s["chosen"]] for s in steps]
    short = without_detours(commands, pages)
    if short != commands:
        shorter, _, got = replay(env, seed, short)
        if got >= reward:
            steps, commands = shorter, short
    i = 0
    while i < len(commands) <= longest:
        trial = commands[:i] + commands[i + 1 :]
        shorter, _, got = replay(env, seed, trial)
        if got >= reward:
            steps, commands = shorter, trial
        else:
            i += 1
    return steps, reward


def collect(paths: dict[tuple, list[int]], cache: Path, tasks: list[str], cut: bool = True) -> None:
    """Replay the paths not yet in ``cache`` and append their essential steps (all their steps
    without ``cut``), one line per path."""
    have = {(r["task"], r["seed"], r["method"], tuple(r["path"])) for r in web.load(cache)}
    todo: dict[str, list] = defaultdict(list)
    for (task, seed, method), path in sorted(paths.items()):
        if task in tasks and (task, seed, method, tuple(path)) not in have:
            todo[task].append((seed, method, path))
    for task, runs in todo.items():
        env = web.MiniWoBTask(web.env_id(task))
        try:
            for seed, method, path in runs:
                if cut:
                    steps, reward = essential(env, seed, path)
                else:
                    steps, _, reward = replay(env, seed, path)
                reached = reward > 0
                kept = [s["commands"][s["chosen"]] for s in steps]
                web.append(cache, {"task": task, "seed": seed, "method": method, "path": path,
                                   "kept": kept, "reward": reward, "reached": reached,
                                   "steps": steps})  # fmt: skip
                print(f"{task} seed {seed} {method}: {len(path)} actions, {len(kept)} kept, "
                      f"{'reaches' if reached else 'MISSES'} the goal", flush=True)  # fmt: skip
        finally:
            env.close()


def training_set(cache: Path, tasks: list[str]) -> list[dict]:
    """The cached trajectories that reached the goal, one per distinct (task, seed, kept
    path): Go-Explore's two selectors often find the same one."""
    seen, out = set(), []
    for r in web.load(cache):
        key = (r["task"], r["seed"], tuple(r["kept"]))
        if r["reached"] and r["task"] in tasks and key not in seen:
            seen.add(key)
            out.append(r)
    return out


# -- 2. features and the policy -----------------------------------------------------------

ROLES = ("button", "link", "textbox", "checkbox", "radio", "combobox", "option", "label",
         "span", "div", "other")  # fmt: skip
DENSE = (
    "click", "fill", *(f"role={r}" for r in ROLES), "name empty",
    "name is a field", "name in instruction", "name overlap",
    "next text is a field", "next text in instruction", "next text overlap",
    "prev text is a field", "prev text in instruction", "prev text overlap",
    "match x unchecked", "match x checked", "no match x checked", "checked", "unchecked",
    "focused", "click a textbox",
    *(f"types field {i}" for i in range(4)), "types its rank's field", "label before value",
    "already holds value", "value typed before", "holds text",
    "command taken before", "command taken last", "element touched before",
    "fields typed x button", "no fields typed x button", "box pending x button",
    "position", "last", "first",
)  # fmt: skip
COLUMN = {name: i for i, name in enumerate(DENSE)}
HASHED = 1 << 11
WIDTH = len(DENSE) + HASHED
TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def mentioned(text: str, instruction: str) -> bool:
    """``text`` appears in the instruction as whole words (case-insensitive)."""
    t = text.strip().lower()
    return bool(t) and bool(re.search(rf"(?<![a-z0-9]){re.escape(t)}(?![a-z0-9])", instruction))


def bucket(*parts: str) -> int:
    """A stable hashed feature index (zlib's crc32: Python's hash() changes per process)."""
    return len(DENSE) + zlib.crc32("\x1f".join(parts).encode()) % HASHED


def text_around(elements: list[list]) -> tuple[dict[str, str], dict[str, str]]:
    """For each element with an id, the words just before it (the previous element's text: a
    field's label) and the static text just after it, past at most one element with an id (a
    checkbox's word follows it, and follows its label past the checkbox)."""
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    for i, (eid, *_) in enumerate(elements):
        if not eid:
            continue
        before[eid] = elements[i - 1][2] if i else ""
        after[eid] = next((e[2] for e in elements[i + 1 : i + 3] if e[1] == "text"), "")
    return before, after


def features(step: dict, task: str) -> np.ndarray:
    """One row per admissible command of ``step`` (``observe``'s record)."""
    instruction = step["instruction"].lower()
    said = set(tokens(instruction))
    fields = [f.lower() for f in step["fields"]]
    elements = {e[0]: e for e in step["elements"] if e[0]}
    order = [e[0] for e in step["elements"] if e[0]]
    boxes = [e[0] for e in step["elements"] if e[0] and e[1] == "textbox"]
    before, after = text_around(step["elements"])
    history = step["history"]
    touched = {parse(c)[1] for c in history}
    typed = {parse(c)[2] for c in history if c.startswith("fill(")}
    typed_share = len(typed & set(step["fields"])) / max(1, len(step["fields"]))
    verb = (tokens(instruction) or [""])[0]
    x = np.zeros((len(step["commands"]), WIDTH), np.float32)

    def overlap(text: str) -> float:
        words = tokens(text)
        return sum(w in said for w in words) / len(words) if words else 0.0

    # Per element: how its words (its name, the text before and after it) meet the
    # instruction, and whether any of them is asked for ("match").
    near: dict[str, dict[str, float]] = {}
    for eid, e in elements.items():
        near[eid] = {"match": 0.0}
        for label, text in (("name", e[2]), ("next text", after[eid]),
                            ("prev text", before[eid])):  # fmt: skip
            is_field = bool(text.strip()) and text.strip().lower() in fields
            said_here = mentioned(text, instruction)
            near[eid][f"{label} is a field"] = float(is_field)
            near[eid][f"{label} in instruction"] = float(said_here)
            near[eid][f"{label} overlap"] = overlap(text)
            near[eid]["match"] = max(near[eid]["match"], float(is_field or said_here))
    # A box asked for is still unticked: not yet time to submit.
    pending = any(near[eid]["match"] and e[4] is False for eid, e in elements.items())

    for row, command in enumerate(step["commands"]):
        kind, eid, value = parse(command)
        _, role, name, shown, checked, focused = elements.get(eid, [eid, "other", "", "", None, 0])
        role = role if role in ROLES else "other"
        on = {kind if kind == "fill" else "click": 1.0, f"role={role}": 1.0}
        on.update(near.get(eid, {}))
        match = on.pop("match", 0.0)
        on["name empty"] = float(not name.strip())
        on["match x unchecked"] = match * (checked is False)
        on["match x checked"] = match * (checked is True)
        on["no match x checked"] = (1 - match) * (checked is True)
        on["checked"] = float(checked is True)
        on["unchecked"] = float(checked is False)
        on["focused"] = float(bool(focused))
        if kind == "fill" and value is not None:
            rank = step["fields"].index(value) if value in step["fields"] else -1
            if 0 <= rank < 4:
                on[f"types field {rank}"] = 1.0
            on["types its rank's field"] = float(eid in boxes and boxes.index(eid) == rank)
            labelled = label_before(value, name, before.get(eid, ""), instruction)
            on["label before value"] = float(labelled)
            on["already holds value"] = float(shown == value)
            on["value typed before"] = float(value in typed)
            on["holds text"] = float(bool(shown))
        elif role == "textbox":
            on["click a textbox"] = 1.0
        on["command taken before"] = float(command in history)
        on["command taken last"] = float(bool(history) and history[-1] == command)
        on["element touched before"] = float(eid in touched)
        button = float(role == "button" or name.strip().lower() in ("submit", "ok", "search"))
        on["fields typed x button"] = typed_share * button
        on["no fields typed x button"] = float(not typed) * button
        on["box pending x button"] = float(pending) * button
        at = order.index(eid) if eid in order else 0
        on["position"] = at / max(1, len(order) - 1)
        on["last"] = float(at == len(order) - 1)
        on["first"] = float(at == 0)
        for k, v in on.items():
            x[row, COLUMN[k]] = v
        for h in (bucket("task-role", task, role, kind), bucket("verb-role", verb, role, kind),
                  *(bucket("word", role, w) for w in tokens(name)[:4])):  # fmt: skip
            x[row, h] += 1.0
    return x


def label_before(value: str, name: str, prev: str, instruction: str) -> bool:
    """A word of the field's name or label is among the four words before ``value`` in the
    instruction (login-user: 'the username "kanesha"' fills the field named username)."""
    found = re.search(rf"(?<![a-z0-9]){re.escape(value.lower())}(?![a-z0-9])", instruction)
    if found is None:
        return False
    near = set(tokens(instruction[: found.start()])[-4:])
    return bool(near & (set(tokens(name)) | set(tokens(prev))))


def design(records: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The stacked rows, each step's first row, its chosen row, and its weight (each task's
    steps weigh 1 in all, so a task with many paths does not drown the others)."""
    per_task = Counter(r["task"] for r in records for _ in r["steps"])
    xs, starts, chosen, weights, n = [], [], [], [], 0
    for r in records:
        for step in r["steps"]:
            xs.append(features(step, r["task"]))
            starts.append(n)
            chosen.append(n + step["chosen"])
            weights.append(1.0 / per_task[r["task"]])
            n += len(step["commands"])
    return (np.concatenate(xs), np.array(starts), np.array(chosen),
            np.array(weights, np.float32))  # fmt: skip


def fit(records: list[dict], epochs: int = 300, l2: float = 1e-3, lr: float = 0.05) -> np.ndarray:
    """The weights of the linear scorer: softmax over each step's commands, weighted
    cross-entropy on the chosen one, L2, full-batch Adam (deterministic: no sampling). Fitted
    on the columns some row uses (few of the hashed ones), in float64."""
    full, starts, chosen, weights = design(records)
    used = np.flatnonzero(np.abs(full).sum(0))
    x = full[:, used].astype(np.float64)
    w = np.zeros(len(used), np.float64)
    m, v = np.zeros_like(w), np.zeros_like(w)
    segment = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(x))))
    weights = weights / weights.sum()
    for t in range(1, epochs + 1):
        p = softmax_segments(x @ w, starts)
        g_rows = p * weights[segment]
        g_rows[chosen] -= weights
        g = x.T @ g_rows + l2 * w
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    out = np.zeros(full.shape[1], np.float64)
    out[used] = w
    return out


def softmax_segments(scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Softmax within each segment ``scores[starts[i]:starts[i+1]]``."""
    top = np.maximum.reduceat(scores, starts)
    sizes = np.diff(np.append(starts, len(scores)))
    e = np.exp(scores - np.repeat(top, sizes))
    return e / np.repeat(np.add.reduceat(e, starts), sizes)


def choose(w: np.ndarray, step: dict, task: str) -> int:
    """The greedy command: the first of the best-scoring ones."""
    return int(np.argmax(features(step, task) @ w))


def accuracy(w: np.ndarray, records: list[dict]) -> float:
    """The share of steps whose chosen command the policy picks."""
    hits = [choose(w, s, r["task"]) == s["chosen"] for r in records for s in r["steps"]]
    return float(np.mean(hits)) if hits else float("nan")


# -- 3. evaluation on held-out seeds --------------------------------------------------------


def episode(env: Any, w: np.ndarray, task: str, seed: int, max_actions: int) -> dict:
    """One greedy episode from ``reset(seed)``."""
    env.reset(seed=seed)
    history: list[str] = []
    while env.actions and len(history) < max_actions:
        a = choose(w, observe(env, history), task)
        history.append(env.actions[a])
        env.step(a)
    return {"success": bool(env.goal()), "actions": history}


def evaluate(w: np.ndarray, model: str, tasks: list[str], seeds: list[int],
             args: argparse.Namespace) -> None:  # fmt: skip
    """Greedy episodes of every (task, seed) not yet in ``--evals`` for this model."""
    done = {(r["task"], r["seed"]) for r in web.load(args.evals) if r["model"] == model}
    for task in tasks:
        todo = [s for s in seeds if (task, s) not in done]
        if not todo:
            continue
        env = web.MiniWoBTask(web.env_id(task))
        try:
            for seed in todo:
                t = time.perf_counter()
                r = episode(env, w, task, seed, args.max_actions)
                r.update(task=task, seed=seed, model=model, max_actions=args.max_actions,
                         seconds=round(time.perf_counter() - t, 2), commit=web.COMMIT)  # fmt: skip
                web.append(args.evals, r)
            won = sum(r["success"] for r in web.load(args.evals)
                      if r["model"] == model and r["task"] == task)  # fmt: skip
            print(f"{task}: {won}/{len(seeds)}", flush=True)
        finally:
            env.close()


def table(model: str, records: list[dict], tasks: list[str], seeds: list[int],
          evals: Path) -> None:  # fmt: skip
    """Per task: the paths trained on (distinct seeds), the held-out success; the mean."""
    rows = {(r["task"], r["seed"]): r for r in web.load(evals) if r["model"] == model}
    paths = Counter(r["task"] for r in records)
    seeds_of: dict[str, set] = defaultdict(set)
    for r in records:
        seeds_of[r["task"]].add(r["seed"])
    print(f"\nmodel {model}: {len(records)} paths over {len(paths)} tasks; held-out seeds "
          f"{seeds[0]}-{seeds[-1]}\n")  # fmt: skip
    print("| task | paths (seeds) | held-out success |")
    print("|---|---|---|")
    shares: dict[str, float] = {}
    for task in tasks:
        got = [rows[(task, s)]["success"] for s in seeds if (task, s) in rows]
        if got:
            shares[task] = sum(got) / len(got)
            print(f"| {task} | {paths[task]} ({len(seeds_of[task])}) | {sum(got)}/{len(got)} |")
    if shares:
        trained = [v for t, v in shares.items() if paths[t]]
        print(f"\nmean over {len(shares)} tasks: {np.mean(list(shares.values())):.1%}; over the "
              f"{len(trained)} with paths: {np.mean(trained) if trained else 0:.1%}; "
              f"WGE ~{WGE:.0%}, WebN-T5 ~{WEBN_T5:.0%} over the 56")  # fmt: skip


# -- more training paths -------------------------------------------------------------------


def explore_more(args: argparse.Namespace, tasks: list[str]) -> None:
    """Count-based Go-Explore on training seeds, each (task, seed) until its first success or
    ``--steps``, appended as web.jsonl's lines are (with the path to the goal)."""
    held_out = set(seed_range(args.eval_seeds))
    done = {(r["task"], r["seed"]) for r in web.load(args.more)}
    for seed in seed_range(args.seeds):
        if seed in held_out:
            raise SystemExit(f"seed {seed} is an evaluation seed (--eval-seeds)")
        for task in tasks:
            if (task, seed) in done:
                continue
            config = ExploreConfig(web.env_id(task), explore_steps=10, repeat_prob=0.0)
            worker = None
            try:
                worker = Worker.from_config(config)
                r = web.explore(worker, "count", seed, args.steps)
            except Exception as e:  # a browser beyond the adapter's restart: left out
                print(f"{task} seed {seed}: {e!r}", file=sys.stderr)
                continue
            finally:
                if worker is not None:
                    web.close_quietly(worker)
            r.update(task=task, seed=seed, method="count", budget=args.steps, explore_steps=10,
                     repeat_prob=0.0, actions=web.ACTIONS, commit=web.COMMIT,
                     date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # fmt: skip
            web.append(args.more, r)
            print(json.dumps({k: r[k] for k in ("task", "seed", "solved", "steps")}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--paths", type=Path, nargs="+",
                   default=[RESULTS / "web.jsonl", RESULTS / "web_bc_explore.jsonl"],
                   help="results files whose solved lines carry a path")  # fmt: skip
    p.add_argument("--cache", type=Path, default=RESULTS / "web_bc_steps.jsonl")
    p.add_argument("--evals", type=Path, default=RESULTS / "web_bc_eval.jsonl")
    p.add_argument("--eval-seeds", default=EVAL_SEEDS)
    p.add_argument("--max-actions", type=int, default=10)
    p.add_argument("--only", default="", help="these tasks of the 56 (comma-separated)")
    p.add_argument("--stride", type=int, default=1, help="every K-th task (a spread subset)")
    p.add_argument("--model", type=Path, default=RESULTS / "web_bc_model.json")
    p.add_argument("--cut", action=argparse.BooleanOptionalAction, default=True,
                   help="keep only the actions a path's reward needs (--no-cut: the ablation, "
                        "with its own --cache and --model)")  # fmt: skip
    p.add_argument(
        "--train",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="replay new paths and train (--no-train: use --model as it is)",
    )
    p.add_argument(
        "--eval",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the held-out episodes not yet in --evals (--no-eval: the table)",
    )
    p.add_argument("--explore", action="store_true", help="explore --seeds for more paths")
    p.add_argument("--seeds", default="5-9", help="training seeds to explore (--explore)")
    p.add_argument("--steps", type=int, default=300, help="browser steps per (task, seed)")
    p.add_argument("--skip-unsolved", type=Path, default=None,
                   help="with --explore, leave out tasks no line of this file solved")  # fmt: skip
    p.add_argument("--more", type=Path, default=RESULTS / "web_bc_explore.jsonl",
                   help="the JSON-lines file --explore appends to")  # fmt: skip
    args = p.parse_args()
    tasks = list(web.WEBGUM[:: args.stride])
    if args.only:
        tasks = [t for t in tasks if t in args.only.split(",")]
    if args.explore:
        if args.skip_unsolved is not None:
            solved = {r["task"] for r in web.load(args.skip_unsolved) if r.get("solved")}
            tasks = [t for t in tasks if t in solved]
        explore_more(args, tasks)
        return
    seeds = seed_range(args.eval_seeds)
    if args.train:
        # Every task's paths train the one policy, whichever tasks are then evaluated.
        collect(found_paths(args.paths, set(seeds)), args.cache, list(web.WEBGUM), args.cut)
        records = training_set(args.cache, list(web.WEBGUM))
        if not records:
            raise SystemExit(f"no replayed paths in {args.cache}: run bench/web.py first")
        w = fit(records)
        save(args.model, w, records)
        print(f"{len(records)} paths, {sum(len(r['steps']) for r in records)} steps; training "
              f"accuracy {accuracy(w, records):.1%}; model in {args.model}")  # fmt: skip
    model, w, paths = load_model(args.model)
    if args.eval:
        evaluate(w, model, tasks, seeds, args)
    table(model, paths, tasks, seeds, args.evals)


def save(path: Path, w: np.ndarray, records: list[dict]) -> None:
    """The policy as data: its nonzero weights by feature, and the paths it learned from."""
    model = hashlib.sha256(w.tobytes()).hexdigest()[:10]
    path.write_text(json.dumps({
        "model": model, "dense": list(DENSE), "hashed": HASHED,
        "weights": {str(i): float(w[i]) for i in np.flatnonzero(w)},
        "paths": [[r["task"], r["seed"], r["kept"]] for r in records],
    }) + "\n")  # fmt: skip


def load_model(path: Path) -> tuple[str, np.ndarray, list[dict]]:
    """(model id, weights, the paths trained on) from ``save``'s file."""
    if not path.exists():
        raise SystemExit(f"no model at {path}: train one first (--train)")
    data = json.loads(path.read_text())
    if data["dense"] != list(DENSE) or data["hashed"] != HASHED:
        raise SystemExit(f"{path} was trained on other features: train again (--train)")
    w = np.zeros(WIDTH, np.float64)
    for i, v in data["weights"].items():
        w[int(i)] = v
    paths = [{"task": t, "seed": s, "kept": k} for t, s, k in data["paths"]]
    return data["model"], w, paths


if __name__ == "__main__":
    main()
