"""Optimisers and learning-rate schedulers of the objectives, built from `_partial_` specs (see specs.py).

A spec's learning rate is checked when the module is made (not when fitting starts): a finite number in
(0, MAX_LR]. Beyond MAX_LR Adam's bias-corrected step overflows float32 deep inside the optimiser; anything
near it diverges anyway, which the non-finite-loss guard reports.
"""

from __future__ import annotations

from typing import Any

import torch

from colorization import checks, specs

__all__ = ["MAX_LR", "check_optimizer", "make_optimizer", "make_scheduler"]

MAX_LR = 1e30
_SCHEDULER_KEYS = ("interval", "frequency", "monitor")


def check_optimizer(spec: Any, key: str) -> dict[str, Any]:
    """A copy of an optimiser spec with a `_target_` and, if it sets one, a valid `lr` (else ConfigError)."""
    specs.target_of(spec, key)
    spec = dict(spec)
    if "lr" in spec:
        checks.number(f"{key}.lr", spec["lr"], f"0 < lr <= {MAX_LR:g}", low=0.0, high=MAX_LR, low_open=True)
    return spec


def make_optimizer(spec: dict[str, Any], params: Any, key: str = "optimizer") -> torch.optim.Optimizer:
    """Instantiate a `_partial_` optimiser spec over `params`."""
    return specs.build({**spec, "_partial_": False}, key, params)


def make_scheduler(spec: dict[str, Any] | None, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """A Lightning lr_scheduler config from a scheduler spec (None: no schedule); plateau monitors val/loss.

    `interval`, `frequency` and `monitor` in the spec are Lightning's keys, not the scheduler's.
    """
    if not spec:
        return None
    spec = dict(spec)
    extra = {k: spec.pop(k) for k in _SCHEDULER_KEYS if k in spec}
    scheduler = specs.build({**spec, "_partial_": False}, "scheduler", optimizer)
    config: dict[str, Any] = {
        "scheduler": scheduler,
        "interval": extra.get("interval", "epoch"),
        "frequency": extra.get("frequency", 1),
    }
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        config.update(monitor=extra.get("monitor", "val/loss"), strict=False)
    return config
