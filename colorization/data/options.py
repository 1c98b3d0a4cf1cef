"""The values of LabDataModule that need more than one check: its source, the split fractions, the crop scale.

Each is checked once, here, when the DataModule is built, and a bad one is a ConfigError naming its key and
the allowed values (colorization.checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from colorization import checks
from colorization.data.sources import CATALOGUE, Source
from colorization.errors import ConfigError


def make_source(source: Any, root: str | Path | None, options: dict[str, Any]) -> Source:
    """A Source from an instance, a catalogue name, or a factory called with root (e.g. a Hydra partial)."""
    if isinstance(source, Source):
        if options:
            raise ConfigError(
                f"data.source: options {sorted(options)} given with an already built source {source!r}; "
                "allowed values: no options (pass them to the source's constructor)"
            )
        return source
    if isinstance(source, str):
        if source not in CATALOGUE:
            raise ConfigError(
                f"data.source={source!r} is an unknown data source; "
                f"allowed values: {', '.join(sorted(CATALOGUE))}"
            )
        source = CATALOGUE[source]
    if not callable(source):
        raise ConfigError(
            f"data.source is a {type(source).__name__}; allowed values: a source, a source name or a factory"
        )
    if root is None:
        raise ConfigError("data.root is required: the folder that holds (or will hold) the images")
    try:
        built = source(root=root, **options)
    except TypeError as exc:
        raise ConfigError(
            f"data.source: bad data source options {sorted(options)} ({exc}); allowed values: "
            f"the keyword arguments of {getattr(source, '__name__', source)!s}"
        ) from None
    if not isinstance(built, Source):
        raise ConfigError(
            f"data.source built a {type(built).__name__}; allowed values: a factory of a "
            "colorization.data.sources.Source"
        )
    return built


def fractions(val_fraction: Any, test_fraction: Any) -> tuple[float, float]:
    """data.val_fraction and data.test_fraction: each in [0, 1), their sum below 1."""
    allowed = "a number in [0, 1); data.val_fraction + data.test_fraction < 1"
    val = checks.number("data.val_fraction", val_fraction, allowed)
    test = checks.number("data.test_fraction", test_fraction, allowed)
    for key, value in (("data.val_fraction", val), ("data.test_fraction", test)):
        if not 0 <= value < 1:
            raise checks.out_of_range(key, value, allowed)
    if not val + test < 1:
        raise checks.out_of_range("data.val_fraction + data.test_fraction", val + test, allowed)
    return val, test


def crop_scale(crop_scale: Any) -> tuple[float, float]:
    """data.crop_scale: [min, max] area shares of the random resized crop, 0 < min <= max <= 1."""
    allowed = "[min, max] with 0 < min <= max <= 1"
    if not isinstance(crop_scale, list | tuple) or len(crop_scale) != 2:
        raise checks.out_of_range("data.crop_scale", crop_scale, allowed)
    lo, hi = (checks.number("data.crop_scale", v, allowed) for v in crop_scale)
    if not 0 < lo <= hi <= 1:
        raise checks.out_of_range("data.crop_scale", list(crop_scale), allowed)
    return lo, hi
