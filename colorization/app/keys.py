"""Keys added on the command line with `+` that nothing takes: `+loss.lamda=0.3` stops, naming `loss.lambda`.

Hydra refuses an unknown key without `+` (the config is a struct) but adds any key with it, so a typo
after `+` is silently unused. An added key inside a config group (model, loss, data, trainer,
callbacks, ...) is accepted when something takes it:
- an argument of the nearest `_target_` above it (the class or function the spec builds: the trainer,
  the DataModule, a network, a callback, the objective's module), read from its signature by
  colorization.specs, so a target with `**kwargs` takes anything;
- a value the config itself interpolates (`${loss.lambda}` in loss.module), or one the app reads
  (APP_KEYS).
Otherwise it is a ConfigError with a "did you mean" among the keys that are there. Group selections
(`+experiment=...`, `+group@pkg=...`) and top-level or `hydra.*` keys are not checked.
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from colorization import checks, specs
from colorization.errors import ConfigError

__all__ = ["APP_KEYS", "check_added_keys"]

APP_KEYS = frozenset(
    {
        "loss.g_optimizer",
        "loss.name",
        "loss.predicts",
        "loss.full_resolution",
        "model.name",
        "hardware.name",
        "hardware.channels_last",
    }
)
"""Group keys the app reads itself (colorization.app.training), with no interpolation pointing at them."""

_REFERENCE = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*\}")


def _added(overrides: list[str]) -> list[tuple[str, str]]:
    """(key, override as typed) of every `+key=value` that adds a key (not `++`, not a group choice)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides=list(overrides))
    return [(o.key_or_group, o.input_line or o.key_or_group) for o in parsed if o.is_add() and not o.package]


def _references(cfg: DictConfig) -> set[str]:
    """Every key the config interpolates (`${a.b}` anywhere, also inside a resolver's arguments)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and "${" in value:
            found.update(_REFERENCE.findall(value))

    walk(OmegaConf.to_container(cfg, resolve=False))
    return found


def _spec_of(node: Any) -> dict[str, Any] | None:
    """A `_target_` node as a spec with its keys (values unresolved: only the names matter here)."""
    if isinstance(node, DictConfig) and "_target_" in node:
        target = OmegaConf.select(node, "_target_", throw_on_resolution_failure=False)
        return {"_target_": str(target), **{str(k): None for k in node if k != "_target_"}}
    return None


def _select(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)


def check_key(cfg: DictConfig, key: str, references: set[str]) -> None:
    """ConfigError when the added `key` is taken by nothing (see the module docstring)."""
    parts = key.split(".")
    if len(parts) < 2 or not isinstance(_select(cfg, parts[0]), DictConfig) or parts[0] == "hydra":
        return
    spec = _spec_of(_select(cfg, key))
    if spec is not None:  # a whole new spec, e.g. +callbacks.pace={_target_: ..., seconds: 1}
        specs.check_arguments(spec, key)
        return
    for cut in range(len(parts) - 1, 0, -1):
        owner = ".".join(parts[:cut])
        spec = _spec_of(_select(cfg, owner))
        if spec is not None:
            specs.check_arguments(spec, owner, names=[parts[cut]])
            return
    taken = references | APP_KEYS
    if any(t == key or t.startswith(key + ".") or key.startswith(t + ".") for t in taken):
        return
    parent = _select(cfg, ".".join(parts[:-1]))
    known = [str(k) for k in parent if str(k) != parts[-1]] if isinstance(parent, DictConfig) else []
    group = parts[0]
    name = _select(cfg, f"{group}.name")
    raise checks.unknown_key(key, f"{group}={name}" if name else f"the {group} group", known)


def check_added_keys(cfg: DictConfig, overrides: list[str]) -> None:
    """Check every `+key=value` of `overrides` (the command line's) against the composed `cfg`."""
    added = _added(overrides)
    if not added:
        return
    references = _references(cfg)
    for key, typed in added:
        try:
            check_key(cfg, key, references)
        except ConfigError as err:
            raise ConfigError(f"{typed}: {err}") from None
