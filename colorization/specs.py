"""Plain `_target_` specs, built without Hydra: the format of conf/ and of the hyperparameters in checkpoints.

A spec is a dict such as ``{"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-4}``: the class
or function named by `_target_`, called with the other keys (or partially applied when `_partial_` is
true). The objectives keep their network, optimiser and scheduler as such specs (they add what only they
know, e.g. `out_channels`) and save them as plain data, so a checkpoint loads without the config that
made it. Only colorization.app uses Hydra itself; it hands plain dicts over.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any

from colorization import checks
from colorization.errors import ConfigError

__all__ = ["accepted_arguments", "build", "check_arguments", "locate", "target_of"]

_SPEC_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")
"""Keys of a spec that are instructions to the builder (Hydra's too), not arguments of the target."""


def locate(path: str) -> Any:
    """The object at a dotted path ("pkg.module.Name", also "pkg.module.Class.attr"); ConfigError if none."""
    parts = str(path).split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            break
        return obj
    raise ConfigError(f"_target_={path} cannot be imported: check the class path")


def target_of(spec: Any, key: str) -> Any:
    """The class or function a spec names; ConfigError naming `key` when the spec has no `_target_`."""
    if not isinstance(spec, dict) or not spec.get("_target_"):
        raise ConfigError(f"{key} must be a spec with a _target_, got {spec!r}")
    try:
        return locate(spec["_target_"])
    except ConfigError:
        raise ConfigError(
            f"{key}._target_={spec['_target_']} cannot be imported: check the class path"
        ) from None


def accepted_arguments(target: Any) -> frozenset[str] | None:
    """The keyword arguments a class (its constructor) or function takes; None when it takes any
    (`**kwargs`) or its signature cannot be read."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return None
    return frozenset(name for name, p in signature.parameters.items() if p.kind in kinds)


def check_arguments(spec: dict[str, Any], key: str, names: Any = None) -> None:
    """Every key of `spec` (or only `names`) is an argument of the spec's target; else a ConfigError naming
    `key.NAME`, with a "did you mean" for a near miss (`+model.net.widht=2`)."""
    target = target_of(spec, key)
    accepted = accepted_arguments(target)
    if accepted is None:
        return
    for name in spec if names is None else names:
        if name not in _SPEC_KEYS and name not in accepted:
            raise checks.unknown_key(f"{key}.{name}", str(spec["_target_"]), sorted(accepted))


def build(spec: dict[str, Any], key: str, *args: Any, **extra: Any) -> Any:
    """Call the spec's target with `args`, its keys and `extra` (or partially apply it when `_partial_`).

    Any error of the target's constructor becomes a one-line ConfigError naming `key`.
    """
    target = target_of(spec, key)
    kwargs = {k: v for k, v in spec.items() if k not in ("_target_", "_partial_")}
    kwargs.update(extra)
    if spec.get("_partial_"):
        return functools.partial(target, *args, **kwargs)
    try:
        return target(*args, **kwargs)
    except ConfigError as err:  # the target's own check: its message already names the argument
        raise ConfigError(f"{key}: {err}") from None
    except Exception as err:  # noqa: BLE001 - a constructor's own complaint, shown as one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"cannot build {key} ({spec['_target_']}): {first}") from err
