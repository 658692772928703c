"""Atari through ale-py's own interface, with the emulator's state cloning as snapshots.

Why not Gymnasium's AtariEnv: exploring pays per step, and going through the emulator directly
(frame skip done in C++, no observation copied unless a cell function asks for it) keeps the
engine within a few percent of raw emulator speed (see bench/throughput.py). The Gymnasium id
is still what the user names: its registered kwargs (game, frameskip, episode frame limit)
configure this adapter.

Sticky actions are off while exploring, as in Go-Explore Phase 1 (Ecoffet et al. 2019, sec. 2):
the emulator is then deterministic, so a trajectory (seed, actions) replays exactly. Phase 2's
noise is the ALE protocol's, drawn per emulator frame (``step_frames``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from ..errors import EnvironmentNotFound
from ..options import check_types
from .ale_ram import RAM_LAYOUTS
from .base import Adapter

if TYPE_CHECKING:
    from . import EnvSpec


class AtariEnv(Adapter):
    """An Explorable over ale_py.ALEInterface."""

    # `--cells auto` is dynamic downscaling, as for any picture (cells.resolve): ahead of fixed
    # 11 x 8 x 8 frames on 8 of 14 games at 1M frames (behind on 4), with archives 4-200x
    # smaller where fixed frames passed 1,000 cells, and on Pitfall; behind fixed frames with
    # clustered selection on Montezuma (16, 21, 19 rooms at 50M against 22, 21, 21;
    # bench/README.md, "Atari's default cells on fourteen games"). Runs made before keep
    # fixed downscaling (AUTO_VERSION 5).
    default_cells = None
    former_default_cells: tuple[str, dict] = ("downscale", {})

    def __init__(
        self,
        game: str,
        frameskip: int = 4,
        max_num_frames_per_episode: int = 108_000,
        full_action_space: bool = False,
        mode: int | None = None,
        difficulty: int | None = None,
        seed: int = 0,
    ):
        import ale_py

        try:
            rom = ale_py.roms.get_rom_path(game)
        except Exception as e:  # ale-py raises its own error types for unknown games
            raise EnvironmentNotFound(f"ale-py has no ROM for game {game!r} ({e})") from e
        if rom is None:  # ale-py warns and returns None for a game it does not list
            raise EnvironmentNotFound(f"ale-py has no ROM for game {game!r}")
        if frameskip < 1:
            raise EnvironmentNotFound(f"--env-arg frameskip is at least 1, not {frameskip}")
        self.game = game
        self.frames_per_step = frameskip
        self._loop = 1  # frames looped here per step (frame_by_frame), the rest in C++
        self.layout = RAM_LAYOUTS.get(game)
        if self.layout is not None and self.layout.level is not None:
            self.goal_words = "level 1 completed"  # goal()
        self._state_type = ale_py.ALEState
        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # before the banner prints
        self.ale = ale_py.ALEInterface()
        self.ale.setFloat("repeat_action_probability", 0.0)
        self.ale.setInt("frame_skip", frameskip)
        self.ale.setInt("max_num_frames_per_episode", max_num_frames_per_episode)
        self._rom = rom
        self._mode, self._difficulty = mode, difficulty
        self._seed: int | None = None
        self._load(seed)
        legal = (
            self.ale.getLegalActionSet() if full_action_space else self.ale.getMinimalActionSet()
        )
        self.actions = list(legal)
        self.action_space: gym.Space = gym.spaces.Discrete(len(self.actions))
        self._ram = np.empty(self.ale.getRAMSize(), dtype=np.uint8)
        h, w = self.ale.getScreenDims()
        self._gray = np.empty((h, w), dtype=np.uint8)

    def _load(self, seed: int) -> None:
        self.ale.setInt("random_seed", int(seed) % (2**31))
        self.ale.loadROM(self._rom)
        for name, names, value, available, choose in (
            ("mode", "modes", self._mode, self.ale.getAvailableModes, self.ale.setMode),
            ("difficulty", "difficulties", self._difficulty, self.ale.getAvailableDifficulties,
             self.ale.setDifficulty),
        ):  # fmt: skip
            if value is None:
                continue
            known = [int(v) for v in available()]
            if value not in known:  # ALE's own error names neither the game nor the choices
                raise EnvironmentNotFound(
                    f"--env-arg {name}={value}: {self.game} has {names} "
                    f"{', '.join(map(str, known))}"
                )
            choose(value)
        self._seed = seed

    def reset(self, seed: int) -> None:
        if seed != self._seed:
            self._load(seed)
        self.ale.reset_game()
        self._lives = self.ale.lives()

    def step(self, action: int) -> tuple[float, bool, bool]:
        a = self.actions[action]
        reward = self.ale.act(a)
        for _ in range(self._loop - 1):
            reward += self.ale.act(a)
        return float(reward), self.ale.game_over(with_truncation=False), self.ale.game_truncated()

    def frame_by_frame(self) -> None:
        """Emulate one frame per ``ale.act`` from now on, the frame skip looped here, as
        ``step_frames`` needs. ALE's own frame skip is the same loop of one-frame acts
        (StellaEnvironment::act calling oneStepAct), so a step emulates the same frames, a few
        per cent slower. ALE reads frame_skip when it loads the ROM: reloaded, state kept."""
        if self._loop > 1 or self.frames_per_step == 1:
            return
        state = self.ale.cloneState()
        self.ale.setInt("frame_skip", 1)
        self._load(self._seed or 0)
        self.ale.restoreState(state)
        self._loop = self.frames_per_step

    def step_frames(
        self, action: int, prev: int, repeat: np.ndarray
    ) -> tuple[float, bool, bool, int]:
        """One step under sticky actions drawn per frame: each frame keeps the previous
        frame's action where ``repeat`` is true, else takes ``action``, as ALE's
        repeat_action_probability does inside the frame skip (StellaEnvironment::act; Machado
        et al. 2018) and Go-Explore's Phase 2 did (uber-research/atari-reset, wrappers.py,
        ``my_wrapper``: StickyActionEnv inside MaxAndSkipEnv). Drawn per step instead, a
        repeat holds the whole step's frames: a jump 4 frames late a quarter of the time.
        Returns the step's reward, ends, and the action in effect at its last frame."""
        self.frame_by_frame()
        reward = 0.0
        for stick in repeat[: self._loop]:
            if not stick:
                prev = action
            reward += self.ale.act(self.actions[prev])
        return (float(reward), self.ale.game_over(with_truncation=False),
                self.ale.game_truncated(), prev)  # fmt: skip

    def snapshot(self) -> bytes:
        # ~7.7 kB on Montezuma. Not compressed: zlib would halve it but costs 120 us, a third
        # of an emulator step, on every snapshot (measured with bench/throughput.py).
        return self.ale.cloneState().serialize()

    def restore(self, snapshot: bytes) -> None:
        self.ale.restoreState(self._state_type(snapshot))
        self._lives = self.ale.lives()

    def observe(self) -> np.ndarray:
        return self.ale.getScreenRGB()

    def gray(self) -> np.ndarray:
        """The grayscale screen, in a buffer reused by the next call."""
        self.ale.getScreenGrayscale(self._gray)
        return self._gray

    def ram(self) -> np.ndarray:
        """The 128 bytes of console RAM, in a buffer reused by the next call."""
        self.ale.getRAM(self._ram)
        return self._ram

    def lives(self) -> int:
        return self.ale.lives()

    def life_lost(self) -> bool:
        return self.ale.lives() < self._lives

    def metrics(self) -> dict[str, int]:
        """The level and room, in games whose RAM layout knows them (level 0 where the game
        has one level: Pitfall)."""
        lay = self.layout
        if lay is None:
            return {}
        ram = self.ram()
        level = int(ram[lay.level]) if lay.level is not None else 0
        return {"level": level, "room": int(ram[lay.room])}

    def goal(self) -> bool | None:
        """The first level completed, in games whose RAM layout knows the level (Montezuma's
        Revenge): the goal Go-Explore's papers report as "solving level 1". None elsewhere."""
        lay = self.layout
        if lay is None or lay.level is None:
            return None
        return int(self.ram()[lay.level]) > 0

    def close(self) -> None:
        # Drop the emulator now rather than at interpreter exit, when ale-py's bindings report
        # the still-alive instance as a leak. Popped, not set to None, so that ``ale`` keeps
        # its type; a second close is a no-op.
        vars(self).pop("ale", None)


ID_KWARGS = ("frameskip", "max_num_frames_per_episode", "full_action_space", "mode", "difficulty")


def from_gym_id(env_id: str, seed: int = 0, overrides: dict | None = None) -> AtariEnv:
    """Build the adapter from a registered ALE id, honouring its registered kwargs and the
    ``overrides`` given with --env-arg."""
    unknown = set(overrides or {}) - set(ID_KWARGS)
    if unknown:
        hints = []
        if unknown & {"repeat_action_probability", "sticky"}:
            hints.append("sticky actions are an option of their own: --sticky P")
        if "obs_type" in unknown:  # the adapter keeps screen and RAM; the cells choose
            games = ", ".join(sorted(RAM_LAYOUTS))
            hints.append(f"the cells choose what is read: the screen, or with --cells ram the "
                         f"RAM of a game whose layout is known ({games})")  # fmt: skip
        raise EnvironmentNotFound(
            f"--env-arg {', '.join(sorted(unknown))} is not an Atari setting; "
            f"known: {', '.join(ID_KWARGS)}" + "".join(f"; {h}" for h in hints)
        )
    check_types(AtariEnv, overrides or {}, "--env-arg")  # mode=1.5 reached ALE's setMode
    spec = gym.spec(env_id)
    kw = {**spec.kwargs, **(overrides or {})}
    frameskip = kw.get("frameskip", 4)
    if not isinstance(frameskip, int):
        raise EnvironmentNotFound(
            f"{env_id} uses a random frame skip {frameskip}, which is not deterministic; "
            "use the -v5 id (frame skip 4) or a NoFrameskip id"
        )
    return AtariEnv(
        game=kw["game"],
        frameskip=frameskip,
        max_num_frames_per_episode=kw.get("max_num_frames_per_episode") or 108_000,
        full_action_space=kw.get("full_action_space", False),
        mode=kw.get("mode"),
        difficulty=kw.get("difficulty"),
        seed=seed,
    )


def adapter(spec: EnvSpec, env_id: str, env: Any = None) -> AtariEnv:
    """The adapter of a registered ALE id (the entry point in envs.FAMILIES)."""
    return from_gym_id(env_id, seed=spec.seed, overrides=spec.env_args)
