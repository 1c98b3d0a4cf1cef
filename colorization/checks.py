"""Checks of user-facing values, shared by the classes that own them: one wording for every ConfigError.

Each value is checked once, by the constructor (or colour-core function) that uses it, with the config key
it comes from, so that `python train.py data.batch_size=0` and `LabDataModule(..., batch_size=0)` stop with
the same line: "data.batch_size=0 is out of range; allowed values: integer >= 1".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from colorization.errors import ConfigError

__all__ = ["choice", "integer", "number"]


def _shown(value: Any) -> str:
    """A value as the user typed it: numbers with %g (1e+38, 0.5), anything else with repr."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return repr(value)


def number(
    key: str,
    value: Any,
    allowed: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """`value` as a finite float within [low, high] (open ends when asked); else ConfigError naming `key`.

    `allowed` describes the range for the message, e.g. "0 <= lambda <= 1".
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}={_shown(value)} must be a number; allowed values: {allowed}")
    x = float(value)
    if not math.isfinite(x):
        raise ConfigError(f"{key}={_shown(value)} must be a finite number; allowed values: {allowed}")
    too_low = low is not None and (x <= low if low_open else x < low)
    too_high = high is not None and (x >= high if high_open else x > high)
    if too_low or too_high:
        raise ConfigError(f"{key}={_shown(value)} is out of range; allowed values: {allowed}")
    return x


def integer(key: str, value: Any, low: int, *, special: Sequence[int] = ()) -> int:
    """`value` as an int >= low (or one of `special`, e.g. -1 for "no limit"); else a ConfigError."""
    extra = "".join(f"{v} or " for v in special)
    allowed = f"{extra}integer >= {low}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}={_shown(value)} must be an integer; allowed values: {allowed}")
    if value < low and value not in special:
        raise ConfigError(f"{key}={_shown(value)} is out of range; allowed values: {allowed}")
    return int(value)


def choice(key: str, value: Any, allowed: Sequence[Any]) -> Any:
    """`value` when it is one of `allowed`; else ConfigError naming `key` and the allowed values."""
    if value not in allowed:
        names = ", ".join("null" if a is None else str(a) for a in allowed)
        raise ConfigError(f"{key}={_shown(value)} is not allowed; allowed values: {names}")
    return value
