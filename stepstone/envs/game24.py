"""Game of 24 as a small text environment, with a solver, a verifier and the standard puzzle set.

Four numbers; an action combines two of the remaining numbers with +, -, * or / into one, so
every episode is three actions long. The reward is 1 when the last number is 24. The
observation is text: the remaining numbers and the expression built so far, e.g.
``"left: 3 8 | 4*2=8, 8-5=3"``; the natural cell is the multiset of numbers left.

Action ``a`` (0..47) means: operator ``a % 4`` on the ``(a // 4) % P``-th ordered pair of the
numbers left (P = their count x (count - 1)), so every action is legal at every step and
random exploration wastes nothing. Dividing by zero ends the episode without reward.

Two rules: by default any fraction may appear (the rule of the 1,362-puzzle set below and of
Tree of Thoughts' verifier); ``integer=True`` (env id ``game24:4,5,6,10:int``) is the rule
of Intelligent Go-Explore's Game of 24 (game_of_24/run.py: ``perform_operation``, called with
the smaller number first): an operation takes the larger of the two numbers first, so a
difference is never negative, and a division must leave no remainder; one that would ends the
episode without reward, like a division by zero.

The standard set is every multiset of four numbers 1..13 that can make 24: 1,362 of the 1,820
(the count used by the Tree-of-Thoughts and Game-of-24 literature); it is computed here with
exact fractions, not shipped.
"""

from __future__ import annotations

import ast
import functools
import itertools
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import gymnasium as gym
from gymnasium import spaces

from ..errors import EnvironmentNotFound

if TYPE_CHECKING:
    from . import EnvSpec
    from .generic import GymEnv

OPS = ("+", "-", "*", "/")
TARGET = Fraction(24)
ACTIONS = 48  # 4 operators x 12 ordered pairs of four numbers


def apply(op: str, a: Fraction, b: Fraction, integer: bool = False) -> Fraction | None:
    """``a op b``; None for a division by zero, or (``integer``) one with a remainder."""
    if integer:
        a, b = max(a, b), min(a, b)
        if op == "/" and b != 0 and a % b:
            return None
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return None if b == 0 else a / b


def pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(n) if i != j]


@functools.cache
def _solvable(values: tuple[Fraction, ...], integer: bool) -> bool:
    if len(values) == 1:
        return values[0] == TARGET
    for i, j in pairs(len(values)):
        rest = [v for k, v in enumerate(values) if k not in (i, j)]
        for op in OPS:
            r = apply(op, values[i], values[j], integer)
            if r is not None and _solvable(tuple(sorted([*rest, r])), integer):
                return True
    return False


def solvable(numbers, integer: bool = False) -> bool:
    return _solvable(tuple(sorted(Fraction(n) for n in numbers)), integer)


@functools.lru_cache(maxsize=1)
def standard_puzzles() -> tuple[tuple[int, ...], ...]:
    """Every solvable multiset of four numbers from 1 to 13, in sorted order (1,362 of them)."""
    combos = itertools.combinations_with_replacement(range(1, 14), 4)
    return tuple(c for c in combos if solvable(c))


def verify(numbers, expression: str) -> bool:
    """True when ``expression`` uses exactly ``numbers`` (each once) with + - * / and makes 24."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        return False
    used: list[int] = []

    def value(node) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            used.append(node.value)
            return Fraction(node.value)
        if isinstance(node, ast.BinOp):
            op = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}.get(type(node.op))
            if op is not None:
                r = apply(op, value(node.left), value(node.right))
                if r is not None:
                    return r
        raise ValueError("not an arithmetic expression over the numbers")

    try:
        result = value(tree)
    except ValueError:
        return False
    return result == TARGET and sorted(used) == sorted(int(n) for n in numbers)


def _fmt(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


class Game24Env(gym.Env):
    """One puzzle (``numbers``) or, when None, the standard set: reset(seed) picks puzzle seed."""

    metadata = {"render_modes": []}
    default_cells = ("text", {"pattern": r"left: ([^|]*)"})  # the numbers left
    goal_words = "24 made"

    def __init__(self, numbers: tuple[int, ...] | None = None, integer: bool = False):
        self.fixed = tuple(numbers) if numbers is not None else None
        self.integer = integer
        if self.fixed is not None and len(self.fixed) != 4:
            raise ValueError(f"Game of 24 takes four numbers, got {self.fixed}")
        self.action_space = spaces.Discrete(ACTIONS)
        self.observation_space = spaces.Text(max_length=200, charset="0123456789+-*/=|:, left")

    def reset(self, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if self.fixed is not None:
            self.numbers = self.fixed
        else:
            puzzles = standard_puzzles()
            self.numbers = puzzles[(seed or 0) % len(puzzles)]
        self.values = [Fraction(n) for n in self.numbers]
        self.exprs = [str(n) for n in self.numbers]
        self.steps: list[str] = []
        return self._obs(), {"numbers": self.numbers}

    def step(self, action: int):
        ps = pairs(len(self.values))
        i, j = ps[(int(action) // 4) % len(ps)]
        op = OPS[int(action) % 4]
        if self.integer and self.values[i] < self.values[j]:  # the larger number first
            i, j = j, i
        a, b = self.values[i], self.values[j]
        r = apply(op, a, b, self.integer)
        if r is None:
            why = "division by zero" if b == 0 else "a division with a remainder"
            return self._obs(), 0.0, True, False, {"invalid": why}
        expr = f"({self.exprs[i]}{op}{self.exprs[j]})"
        self.steps.append(f"{_fmt(a)}{op}{_fmt(b)}={_fmt(r)}")
        keep = [k for k in range(len(self.values)) if k not in (i, j)]
        self.values = [self.values[k] for k in keep] + [r]
        self.exprs = [self.exprs[k] for k in keep] + [expr]
        done = len(self.values) == 1
        solved = done and self.values[0] == TARGET
        info = {"command": self.steps[-1]}
        if done:
            info["expression"] = self.exprs[0][1:-1]
        return self._obs(), float(solved), done, False, info

    def _obs(self) -> str:
        left = " ".join(_fmt(v) for v in sorted(self.values))
        return f"left: {left} | {', '.join(self.steps)}"

    def goal(self) -> bool:
        return len(self.values) == 1 and self.values[0] == TARGET

    def admissible(self) -> list[tuple[int, str]]:
        """Every operation on an ordered pair of the numbers left, with its result
        ("8 * 3 = 24"); none that divides by zero or (integer rule) leaves a remainder."""
        items: list[tuple[int, str]] = []
        ps = pairs(len(self.values))
        if not ps:  # one number left: the episode is over
            return items
        for a in range(ACTIONS):
            i, j = ps[(a // 4) % len(ps)]
            x, y = self.values[i], self.values[j]
            if self.integer and x < y:  # IGE's rule: the larger number first
                x, y = y, x
            r = apply(OPS[a % 4], x, y, self.integer)
            if r is not None:
                items.append((a, f"{_fmt(x)} {OPS[a % 4]} {_fmt(y)} = {_fmt(r)}"))
        return items

    def task(self) -> str:
        numbers = " ".join(map(str, self.numbers))
        rule = " Division is integer division, never by zero." if self.integer else ""
        return f"Use {numbers} and + - * / to make 24, combining two numbers at a time.{rule}"

    def achieved(self) -> str:
        """What the steps so far accomplish, as a task of their own (a retrospective label)."""
        numbers = " ".join(map(str, self.numbers))
        left = " ".join(_fmt(v) for v in sorted(self.values))
        return f"Use {numbers} and + - * / to reach {left}, combining two numbers at a time."


def parse_id(env_id: str) -> tuple[tuple[int, ...] | None, bool]:
    """'game24:4,7,8,8' -> ((4, 7, 8, 8), False); 'game24' -> (None, False) (the standard
    set); a final ':int' asks for IGE's integer rule: 'game24:4,5,6,10:int', 'game24:int'."""
    parts = env_id.split(":")[1:]
    integer = bool(parts) and parts[-1] == "int"
    rest = ":".join(parts[:-1] if integer else parts)
    if not rest:
        return None, integer
    try:
        numbers = tuple(int(x) for x in rest.split(","))
    except ValueError:
        numbers = ()
    if len(numbers) != 4:
        raise ValueError(
            f"give four whole numbers, e.g. game24:4,7,8,8 (add :int for IGE's integer "
            f"division), not {env_id!r}"
        )
    return numbers, integer


def adapter(spec: EnvSpec, env_id: str, env: Any = None) -> GymEnv:
    """The adapter of ``game24[:A,B,C,D][:int]`` (the entry point in envs.FAMILIES)."""
    from .generic import GymEnv

    try:
        numbers, integer = parse_id(env_id)
    except ValueError as e:
        raise EnvironmentNotFound(str(e)) from None
    return GymEnv(Game24Env(numbers, integer=integer), method=spec.return_method, seed=spec.seed)
