"""Checks of user-facing values, shared by the classes that own them: one wording for every ConfigError.

Each value is checked once, by the constructor (or colour-core function) that uses it, with the config key
it comes from, so that `python train.py data.batch_size=0` and `LabDataModule(..., batch_size=0)` stop with
the same line: "data.batch_size=0 is out of range; allowed values: integer >= 1".
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Sequence
from typing import Any

from colorization.errors import ConfigError

__all__ = ["choice", "flag", "integer", "not_allowed", "number", "out_of_range", "unknown_key"]


def _shown(value: Any) -> str:
    """A value as it was given: 2 and 2.0 differ (an integer was asked for), strings are quoted."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    return repr(value)


def out_of_range(key: str, value: Any, allowed: str) -> ConfigError:
    """The wording of a bad number (or a non-number where one is needed), on one line."""
    return ConfigError(f"{key}={_shown(value)} is out of range; allowed values: {allowed}")


def not_allowed(key: str, value: Any, allowed: str) -> ConfigError:
    """The wording of a value that is none of the allowed choices, on one line."""
    return ConfigError(f"{key}={_shown(value)} is not allowed; allowed values: {allowed}")


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
    """`value` as a finite float within [low, high] (open ends when asked); else a ConfigError naming `key`.

    `allowed` describes the range for the message, e.g. "0 <= lambda <= 1". Booleans are refused.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise out_of_range(key, value, allowed)
    x = float(value)
    if not math.isfinite(x):
        raise ConfigError(f"{key}={_shown(x)} must be a finite number; allowed values: {allowed}")
    too_low = low is not None and (x <= low if low_open else x < low)
    too_high = high is not None and (x >= high if high_open else x > high)
    if too_low or too_high:
        raise out_of_range(key, value, allowed)
    return x


def integer(
    key: str, value: Any, low: int | None = None, *, special: Sequence[int] = (), optional: bool = False
) -> int | None:
    """`value` as an int >= low, or one of `special` (e.g. -1 for "no limit"), or None when `optional`;
    booleans and floats are refused."""
    allowed = "".join(f"{v} or " for v in special) + "integer" + (f" >= {low}" if low is not None else "")
    allowed += " or null" if optional else ""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise out_of_range(key, value, allowed)
    if low is not None and value < low and value not in special:
        raise out_of_range(key, value, allowed)
    return int(value)


def flag(key: str, value: Any, optional: bool = False) -> bool | None:
    """`value` as a bool (None passes when `optional`, e.g. for "decide from the machine")."""
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise not_allowed(key, value, "true, false" + (", null" if optional else ""))
    return value


def choice(key: str, value: Any, allowed: Sequence[Any]) -> Any:
    """`value` when it is one of `allowed`; else a ConfigError naming `key` and the allowed values."""
    try:
        ok = value in allowed
    except TypeError:  # an unhashable value against a set
        ok = False
    if not ok:
        raise not_allowed(key, value, ", ".join("null" if a is None else str(a) for a in allowed))
    return value


def unknown_key(key: str, owner: str, known: Sequence[str]) -> ConfigError:
    """The wording of a key that nothing takes (e.g. `+loss.lamda=0.3`): the owner, a "did you mean" for a
    near miss among the `known` keys, else the known keys."""
    name = key.rsplit(".", 1)[-1]
    parent = key[: -len(name)]
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = (
        f"did you mean {parent}{close[0]}?"
        if close
        else "known keys: " + (", ".join(sorted(known)) or "none")
    )
    return ConfigError(f"{key} is not a key {owner} takes; {hint}")
