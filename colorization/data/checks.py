"""Checks of the data's configuration values: one-line ConfigErrors with the key and the allowed values.

The DataModule and the sources call these once, in their constructors, with the key the value has in the
config (``data.batch_size``, ``data.source.count``), so that the app can print the message as it is:
``data.batch_size=0 is out of range; allowed values: integer >= 1``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from colorization.errors import ConfigError


def out_of_range(key: str, value: Any, allowed: str) -> ConfigError:
    """The project's wording for a bad number (or a non-number where one is needed), on one line."""
    return ConfigError(f"{key}={value!r} is out of range; allowed values: {allowed}")


def not_allowed(key: str, value: Any, allowed: str) -> ConfigError:
    """The project's wording for a value that is none of the allowed choices, on one line."""
    return ConfigError(f"{key}={value!r} is not allowed; allowed values: {allowed}")


def integer(key: str, value: Any, low: int | None = None, optional: bool = False) -> int | None:
    """value as an int >= low (booleans and floats are refused); None passes when optional."""
    allowed = "integer" + (f" >= {low}" if low is not None else "") + (" or null" if optional else "")
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise out_of_range(key, value, allowed)
    if low is not None and value < low:
        raise out_of_range(key, value, allowed)
    return int(value)


def flag(key: str, value: Any, optional: bool = False) -> bool | None:
    """value as a bool (true or false; None passes when optional, e.g. for 'decide from the machine')."""
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise not_allowed(key, value, "true, false" + (", null" if optional else ""))
    return value


def number(key: str, value: Any, allowed: str) -> float:
    """value as a float (booleans refused); the caller checks the range and words it as `allowed`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise out_of_range(key, value, allowed)
    return float(value)


def choice(key: str, value: Any, options: Sequence[str]) -> str:
    """value, which must be one of options."""
    if not isinstance(value, str) or value not in options:
        raise not_allowed(key, value, ", ".join(options))
    return value
