"""The model's memory of its last exchanges, as Intelligent Go-Explore keeps it.

IGE (game_of_24/run.py: ``get_index_from_gpt``) sends the system message and then the last
``chat_history_len`` = 5 exchanges (user prompt, model reply) before the new prompt, one
history shared by the roles of a run, so that the model sees its earlier choices and the
feedback that followed them. ``Memory`` holds those exchanges; it also keeps them within a
budget of characters (about four per token), dropping the oldest first, and says how many it
dropped, so a long run's prompts stay within the model's context.
"""

from __future__ import annotations

import threading

TURNS = 5  # game_of_24/run.py: get_index_from_gpt(chat_history_len=5)


class Memory:
    def __init__(self, turns: int = TURNS, chars: int = 24_000):
        self.turns = turns
        self.chars = chars
        self.exchanges: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def messages(self) -> list[dict]:
        """The last ``turns`` exchanges as chat messages, oldest first, those that fit in
        ``chars``; a note first when older ones were left out for it."""
        with self._lock:
            window = self.exchanges[-self.turns :] if self.turns else []
        kept: list[tuple[str, str]] = []
        size = 0
        for user, reply in reversed(window):
            size += len(user) + len(reply)
            if size > self.chars:
                break
            kept.insert(0, (user, reply))
        out: list[dict] = []
        if len(kept) < len(window):
            cut = len(window) - len(kept)
            out.append({"role": "user", "content": f"({cut} earlier exchanges left out to fit "
                        "the context.)"})  # fmt: skip
            out.append({"role": "assistant", "content": "Understood."})
        for user, reply in kept:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        return out

    def add(self, messages: list[dict], reply: str) -> None:
        """Remember the exchange whose prompt is the last of ``messages``."""
        with self._lock:
            self.exchanges.append((messages[-1]["content"], reply))
            del self.exchanges[: -max(self.turns, 1)]
