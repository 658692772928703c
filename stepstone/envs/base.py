"""The Explorable protocol: what the engine, the worker and the model roles need from an
environment, and ``Adapter``, the base class that answers the optional questions by default.

Gymnasium's ``reset``/``step`` plus the one thing exploration needs and Gymnasium lacks: a way
to go back. ``snapshot()`` returns bytes (so it can be stored and sent to another process) and
``restore()`` puts the environment back in exactly that state. How an adapter does it is its
own business: an emulator's state cloning (ALE), pickling the whole environment (deepcopy), or
replaying the actions from the seed (any deterministic environment).

``step`` returns only (reward, terminated, truncated): observations are fetched on demand with
``observe()``, so that a cell function that reads RAM never pays for rendering a frame.

The rest is what only the environment knows, asked by name instead of guessed from private
attributes: its state in words and its admissible actions (for a language model), whether its
own goal is reached, what it can report of a state beyond the cell (Montezuma's level and
room), whether a life was lost. ``Adapter`` gives each a neutral default, so an adapter
implements only what it knows.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


@runtime_checkable
class Explorable(Protocol):
    """An environment the engine can explore: reset, step, snapshot, restore, observe, and
    the questions the worker, the goal test and the model roles ask of a state.

    Attributes:
        action_space: the actions ``step`` takes (a Gymnasium space).
        frames_per_step: emulator frames a step costs (the frame skip); 1 elsewhere.
        default_cells: what ``--cells auto`` means here, as (kind, params), or None for the
            default (the observation).
        snapshot_format: ``"data"``, or ``"pickle"`` when snapshots are pickles (the run
            directory then signs them, store/trust.py).
        last_restore_steps: steps the last ``restore`` re-simulated (replay-based return),
            counted as frames spent.
    """

    action_space: gym.Space
    frames_per_step: int

    @property
    def default_cells(self) -> tuple[str, dict] | None: ...

    @property
    def snapshot_format(self) -> str: ...

    @property
    def last_restore_steps(self) -> int: ...

    def reset(self, seed: int) -> None:
        """Start an episode.

        Args:
            seed: the episode's seed; the same seed gives the same start state.
        """
        ...

    def step(self, action: Any) -> tuple[float, bool, bool]:
        """Take one action.

        Args:
            action: an element of ``action_space``.

        Returns:
            (reward, terminated, truncated), as Gymnasium's ``step`` without the observation.
        """
        ...

    def snapshot(self) -> bytes:
        """The current state as bytes that ``restore`` takes back, in this or another process.

        Returns:
            The snapshot; restoring it must continue exactly as from the original state.
        """
        ...

    def restore(self, snapshot: bytes) -> None:
        """Return to the state ``snapshot`` was taken in.

        Args:
            snapshot: bytes from ``snapshot()`` of an adapter built from the same spec.

        Raises:
            Exception: any, when the bytes are not a snapshot of this environment (the worker
                reports it as a damaged run directory).
        """
        ...

    def observe(self) -> Any:
        """The current observation (as Gymnasium's ``step`` would have returned it)."""
        ...

    def close(self) -> None:
        """Release the environment's resources; a second call does nothing."""
        ...

    def describe(self) -> str:
        """The current state as text for a language model.

        Returns:
            One line (or a few) of plain text: a text game's observation, a grid world's view
            in words, else the observation printed.
        """
        ...

    def task(self) -> str | None:
        """What the environment asks of the player, in words (TextWorld's objective, Game of
        24's numbers, MiniGrid's mission).

        Returns:
            The task, or None when the environment states none.
        """
        ...

    def admissible(self) -> list[tuple[Any, str]] | None:
        """The actions that make sense in the current state, each with its text.

        Returns:
            (action, text) pairs in the environment's order (several actions may share a
            text), or None when the environment does not know (every action of the space is
            then offered by its number).
        """
        ...

    def goal(self) -> bool | None:
        """Whether the current state reaches the environment's own goal.

        Returns:
            True or False; None when the environment has no goal of its own (a run's success
            may then come from ``--goal`` or ``info["is_success"]``, see goals.py).
        """
        ...

    def metrics(self) -> dict[str, int]:
        """What the environment can report of the current state beyond its cell, kept with
        each archive entry (Archive.metrics) and summarised by the report (``level`` and
        ``room`` give its ``rooms`` and ``level`` fields).

        Returns:
            Non-negative integers by name (lower-case identifiers), e.g. ``{"level": 0,
            "room": 1}``; empty when the environment knows nothing of the kind.
        """
        ...

    def life_lost(self) -> bool:
        """Whether a life was lost since the last ``reset`` or ``restore``.

        Returns:
            True once the game has taken a life (``--end-on-life-loss`` then ends the
            exploration); always False in environments without lives.
        """
        ...

    def history(self) -> list[tuple[Any, str]] | None:
        """The episode so far as (command, observation) pairs, the first command None, in a
        text game (what a model is shown of its past); None elsewhere."""
        ...


class Adapter:
    """Defaults for the Explorable questions an environment cannot answer: no task, no
    admissible list, no goal, no metrics, no lives, the observation printed as its state."""

    frames_per_step: int = 1
    default_cells: tuple[str, dict] | None = None
    last_restore_steps: int = 0
    # The environment's own goal in words ("level 1 completed"), which the report adds to
    # "the environment's own"; None where it has none or does not say. Optional: not part of
    # Explorable, so that an adapter written before it is still one.
    goal_words: str | None = None

    @property
    def snapshot_format(self) -> str:
        return "data"

    def observe(self) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        return observation_text(self.observe())

    def task(self) -> str | None:
        return None

    def admissible(self) -> list[tuple[Any, str]] | None:
        return None

    def goal(self) -> bool | None:
        return None

    def metrics(self) -> dict[str, int]:
        return {}

    def life_lost(self) -> bool:
        return False

    def history(self) -> list[tuple[Any, str]] | None:
        return None


# Lines drawn only with _ | \\ / $ (TextWorld's ASCII-art title), which IGE strips
# (textworld/run_treasure.py: Agent.init_observe removes the art block).
_BANNER = re.compile(r"^[ \t_|\\/$]*[_|\\/$][ \t_|\\/$]*$", re.M)


def observation_text(obs: Any) -> str:
    """An observation as text: a string on one line without ASCII-art banners, a dict's
    ``mission``, else the values printed."""
    if isinstance(obs, str):
        return " ".join(_BANNER.sub("", obs).split())
    if isinstance(obs, dict) and "mission" in obs:
        return str(obs["mission"])
    return np.array2string(np.asarray(obs), threshold=200)
