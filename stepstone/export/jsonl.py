"""Text-game trajectories as chat data for LLM fine-tuning: JSONL or Parquet.

Each selected entry is replayed in the run's environment and written as one conversation: a
system turn with the game's task, then the observation (user) and the command taken
(assistant), turn by turn. Derived records:

* preference pairs (``--pairs``): a trajectory that reached the goal and one that did not,
  parting at a state they share (the same commands up to it, the game being deterministic)
  by taking different commands there: the shared turns are the prompt, the two
  continuations are "chosen" and "rejected" (TRL's conversational preference format), each
  ending on the player's last command;
* step-wise preference pairs (``--step-pairs``), in the manner of SPORT (Li et al. 2025,
  "Iterative Trajectory Exploration for Multimodal Agents", arXiv 2504.21561: at a state,
  actions tried from it are compared by where they led, and each comparison is one step-level
  pair): at every state where a success and a failure took different actions,
  the shared turns are the prompt, the success's next action "chosen" and the failure's
  "rejected", one assistant turn each; the archive's trajectories play the part of SPORT's
  sampled actions, and the goal that of its verifier;
* retrospective labels: for each trajectory, the task it *did* accomplish, stated by a rule
  of the environment (``achieved()``: where a TextWorld player got and what it holds, which
  number a Game of 24 attempt reached) or, given a model client, by the model reading the
  trajectory (``LABEL_PROMPT``): the reverse task synthesis of OS-Genesis (Sun et al. 2024,
  "OS-Genesis: Automating GUI Agent Trajectory Construction via Reverse Task Synthesis",
  arXiv 2412.19723, sec. 3.2);
* hindsight relabelling (``--hindsight``): as OS-Genesis trains on each explored trajectory
  under the task synthesised from it, a trajectory that failed the game's task is written as
  a successful example of its label, which replaces the task in its system turn; trajectories
  that reached the goal keep the game's task. An all-cells export then holds no failed
  attempt at any instruction it states.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import ExploreConfig
from ..errors import ConfigError
from ..goals import Goal
from ..worker import Worker
from . import Episode


def _game(worker: Worker) -> Any:
    """The environment under the adapter, for its optional achieved() (what a trajectory did)."""
    inner = getattr(worker.env, "env", None)
    return getattr(inner, "unwrapped", None)


def conversation(worker: Worker, seed: int, episode: Episode, goal: Goal | None = None) -> dict:
    """One trajectory as a chat; ``success`` is the run's goal (``--goal`` where given, else the
    environment's own), the same test the run itself used."""
    env = worker.env
    env.reset(seed)
    game = _game(worker)
    text = env.observe()
    if not isinstance(text, str):
        raise ConfigError(
            "jsonl and parquet exports are for text environments (TextWorld, Game of 24, web "
            "pages); export this run with --format minari"
        )
    task = env.task() or ""
    messages = [{"role": "system", "content": task}, {"role": "user", "content": text}]
    score, terminated = 0.0, False
    for action in episode.actions:
        reward, terminated, _ = env.step(action)
        score += reward
        command = getattr(env, "info", {}).get("command", str(action))
        messages.append({"role": "assistant", "content": str(command)})
        messages.append({"role": "user", "content": str(env.observe())})
    return {
        "entry": episode.index,
        "seed": seed,
        "score": episode.score,
        "success": bool((goal or Goal()).reached(env, score, terminated)),
        "label": game.achieved() if hasattr(game, "achieved") else str(episode.cell),
        "messages": messages,
        "actions": [int(a) for a in episode.actions],
    }


LABEL_PROMPT = (
    "Below is what a player saw and did in a text game or on a web page. State, as one "
    "instruction to a new player, the task this sequence of commands accomplishes (what was "
    "achieved, not the game's original goal). Answer with the instruction only.\n\n"
    "{transcript}"
)


def model_label(client: Any, record: dict, template: str = LABEL_PROMPT) -> str:
    """The task a trajectory accomplished, in the model's words (cached by the client)."""
    turns = record["messages"][1:]
    transcript = "\n".join(
        f"{'>' if m['role'] == 'assistant' else ''} {m['content']}".strip() for m in turns
    )
    reply = client.chat([{"role": "user", "content": template.format(transcript=transcript)}])
    return " ".join(reply.split()) or record["label"]


def _commands(record: dict) -> list[str]:
    """The assistant turns: one command per action, after the system turn and first view."""
    return [m["content"] for m in record["messages"][2::2]]


def _shared(a: list, b: list) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def preference_pairs(records: list[dict]) -> list[dict]:
    """For each success, the failure that parts from it last: both took the same commands up
    to a state and different ones there. A failure that is a prefix of the success (its own
    ancestor in the archive) never parts from it and makes no pair. The continuations stop at
    the last command: the game's final reply is not the model's to produce."""
    failures = [(r, _commands(r)) for r in records if not r["success"]]
    pairs = []
    for good in (r for r in records if r["success"]):
        wanted = _commands(good)
        shared = [(_shared(wanted, c), r, c) for r, c in failures]
        parting = [(n, r) for n, r, c in shared if n < len(wanted) and n < len(c)]
        if not parting:
            continue
        n, bad = max(parting, key=lambda p: p[0])
        cut = 2 + 2 * n  # system + first observation, then (command, observation) per action
        pairs.append({
            "prompt": good["messages"][:cut],
            "chosen": good["messages"][cut:-1],
            "rejected": bad["messages"][cut:-1],
            "shared_actions": n,
            "entries": [good["entry"], bad["entry"]],
        })  # fmt: skip
    return pairs


def step_pairs(records: list[dict]) -> list[dict]:
    """Every (success, failure) that share their first n actions and differ at action n+1:
    the shared turns, then the success's action (chosen) and the failure's (rejected). Pairs
    with the same prompt and the same two actions are written once."""
    failures = [(r, _commands(r)) for r in records if not r["success"]]
    pairs, seen = [], set()
    for good in (r for r in records if r["success"]):
        wanted = _commands(good)
        for bad, tried in failures:
            n = _shared(wanted, tried)
            if n >= min(len(wanted), len(tried)):
                continue  # one is a prefix of the other: they never part
            key = (tuple(wanted[:n]), wanted[n], tried[n])
            if key in seen:
                continue
            seen.add(key)
            cut = 2 + 2 * n
            pairs.append({
                "prompt": good["messages"][:cut],
                "chosen": [good["messages"][cut]],
                "rejected": [bad["messages"][cut]],
                "step": n,
                "entries": [good["entry"], bad["entry"]],
            })  # fmt: skip
    return pairs


def hindsight(record: dict) -> dict:
    """A failed attempt as a successful example of what it achieved (its label as the task)."""
    if record["success"]:
        return {**record, "relabelled": False}
    system = {"role": "system", "content": record["label"]}
    return {**record, "messages": [system, *record["messages"][1:]], "relabelled": True}


def export(
    config: ExploreConfig,
    episodes: list[Episode],
    out: Path,
    fmt: str,
    pairs: bool,
    labeller: Any = None,
    relabel: bool = False,
    steps: bool = False,
) -> dict[str, int]:
    """Write ``out`` (conversations) and, with ``pairs``, ``out``'s sibling *.pairs.*;
    with a model client as ``labeller``, labels come from the model instead of the rule; with
    ``relabel``, failed trajectories are written under their label (``hindsight``)."""
    worker = Worker.from_config(config)
    try:
        goal = Goal.parse(config.goal)
        records = [conversation(worker, config.seed, e, goal) for e in episodes]
        has_rule = hasattr(_game(worker), "achieved")
    finally:
        worker.close()
    if relabel and not has_rule and labeller is None:
        raise ConfigError(
            f"--hindsight needs a label of what each trajectory achieved, and {config.env} "
            "states none (no achieved()); give a model to label with: --llm-url/--llm-model"
        )
    found = preference_pairs(records) if pairs else []
    if pairs and not found:
        raise ConfigError(
            f"no preference pair among the {len(records)} selected trajectories: a pair needs a "
            "success and a failure that part ways at a shared state; export --select all-cells"
        )
    if labeller is not None:
        for r in records:
            r["rule_label"], r["label"] = r["label"], model_label(labeller, r)
    if relabel:
        records = [hindsight(r) for r in records]
    stepwise = step_pairs(records) if steps else []
    if steps and not stepwise:
        raise ConfigError(
            f"no step-wise pair among the {len(records)} selected trajectories: a pair needs a "
            "success and a failure that act differently at a shared state; export --select "
            "all-cells"
        )
    written = {str(out): _write(records, out, fmt)}
    for wanted, rows, name in ((pairs, found, "pairs"), (steps, stepwise, "steps")):
        if wanted:
            path = out.with_name(f"{out.stem}.{name}{out.suffix}")
            written[str(path)] = _write(rows, path, fmt)
    return written


def _write(rows: list[dict], path: Path, fmt: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        with path.open("w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        return len(rows)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("parquet export needs pyarrow: pip install 'stepstone[minari]'") from None
    pq.write_table(pa.Table.from_pylist(rows), path)
    return len(rows)
