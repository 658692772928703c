"""Text-game trajectories as chat data for LLM fine-tuning: JSONL or Parquet.

Each selected entry is replayed in the run's environment and written as one conversation: a
system turn with the game's task, then the observation (user) and the command taken
(assistant), turn by turn. Two derived kinds of record:

* preference pairs (``--pairs``): a trajectory that reached the goal and one that did not,
  from the same state (their longest shared prefix of actions): the shared turns are the
  prompt, the two continuations are "chosen" and "rejected" (TRL's conversational format);
* retrospective labels: for each trajectory, the task it *did* accomplish, stated by a rule
  of the environment (``achieved()``: where a TextWorld player got and what it holds, which
  number a Game of 24 attempt reached) or, given a model client, by the model reading the
  trajectory (``LABEL_PROMPT``): the reverse task synthesis of OS-Genesis (Sun et al. 2024,
  "OS-Genesis: Automating GUI Agent Trajectory Construction via Reverse Task Synthesis"), so
  that trajectories which never reached the goal still teach something.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import envs
from ..config import ExploreConfig
from ..errors import ConfigError
from ..worker import Worker
from . import Episode


def _game(worker: Worker) -> Any:
    """The environment under the adapter, for its optional task() and achieved()."""
    inner = getattr(worker.env, "env", None)
    return getattr(inner, "unwrapped", None)


def conversation(worker: Worker, seed: int, episode: Episode) -> dict:
    env = worker.env
    env.reset(seed)
    game = _game(worker)
    text = env.observe()
    if not isinstance(text, str):
        raise ConfigError(
            "jsonl and parquet exports are for text environments (TextWorld, Game of 24); "
            "export this run with --format minari"
        )
    task = game.task() if hasattr(game, "task") else ""
    messages = [{"role": "system", "content": task}, {"role": "user", "content": text}]
    for action in episode.actions:
        env.step(action)
        command = getattr(env, "info", {}).get("command", str(action))
        messages.append({"role": "assistant", "content": str(command)})
        messages.append({"role": "user", "content": str(env.observe())})
    return {
        "entry": episode.index,
        "seed": seed,
        "score": episode.score,
        "success": envs.success(env),
        "label": game.achieved() if hasattr(game, "achieved") else str(episode.cell),
        "messages": messages,
        "actions": [int(a) for a in episode.actions],
    }


LABEL_PROMPT = (
    "Below is what a player saw and did in a text game. State, as one instruction to a new "
    "player, the task this sequence of commands accomplishes (what was achieved, not the "
    "game's original goal). Answer with the instruction only.\n\n{transcript}"
)


def model_label(client: Any, record: dict, template: str = LABEL_PROMPT) -> str:
    """The task a trajectory accomplished, in the model's words (cached by the client)."""
    turns = record["messages"][1:]
    transcript = "\n".join(
        f"{'>' if m['role'] == 'assistant' else ''} {m['content']}".strip() for m in turns
    )
    reply = client.chat([{"role": "user", "content": template.format(transcript=transcript)}])
    return " ".join(reply.split()) or record["label"]


def _shared(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def preference_pairs(records: list[dict]) -> list[dict]:
    """For each success, the failure sharing the longest prefix with it, split at the branch."""
    failures = [r for r in records if not r["success"]]
    pairs = []
    for good in (r for r in records if r["success"]):
        if not failures:
            break
        bad = max(failures, key=lambda f: _shared(good["actions"], f["actions"]))
        n = _shared(good["actions"], bad["actions"])
        cut = 2 + 2 * n  # system + first observation, then (command, observation) per action
        pairs.append({
            "prompt": good["messages"][:cut],
            "chosen": good["messages"][cut:],
            "rejected": bad["messages"][cut:],
            "shared_actions": n,
        })  # fmt: skip
    return pairs


def export(
    config: ExploreConfig,
    episodes: list[Episode],
    out: Path,
    fmt: str,
    pairs: bool,
    labeller: Any = None,
) -> dict[str, int]:
    """Write ``out`` (conversations) and, with ``pairs``, ``out``'s sibling *.pairs.*;
    with a model client as ``labeller``, labels come from the model instead of the rule."""
    worker = Worker.from_config(config)
    try:
        records = [conversation(worker, config.seed, e) for e in episodes]
    finally:
        worker.close()
    if labeller is not None:
        for r in records:
            r["rule_label"], r["label"] = r["label"], model_label(labeller, r)
    written = {str(out): _write(records, out, fmt)}
    if pairs:
        pair_path = out.with_name(out.stem + ".pairs" + out.suffix)
        written[str(pair_path)] = _write(preference_pairs(records), pair_path, fmt)
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
