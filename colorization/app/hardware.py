"""Hardware helpers: channels-last memory format; DDP children that re-run one sweep job, not the sweep."""

from __future__ import annotations

import sys

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from omegaconf import open_dict, read_write

# Command-line flags of Hydra that take a value and must reach the DDP children unchanged.
_FLAGS_WITH_VALUE = ("-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir")


class ChannelsLast(Callback):
    """Put the model in channels-last memory format at the start of fitting (faster convolutions on GPUs)."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Convert the module's 4-D parameters and buffers to channels-last."""
        pl_module.to(memory_format=torch.channels_last)


def child_argv(argv: list[str], job_overrides: list[str]) -> list[str]:
    """The command line a DDP child of one multirun job must run: the job's own overrides, no `-m`.

    Lightning's subprocess launcher re-runs `sys.argv` in each rank; in a sweep that would start the whole
    sweep again in every rank. Config-name/dir flags are kept; every other token is replaced by the job's
    overrides (which include the values the sweeper chose for it).
    """
    kept: list[str] = [argv[0]]
    i = 1
    while i < len(argv):
        token = argv[i]
        if token in _FLAGS_WITH_VALUE and i + 1 < len(argv):
            kept += [token, argv[i + 1]]
            i += 2
            continue
        if token.startswith(tuple(f + "=" for f in _FLAGS_WITH_VALUE if f.startswith("--"))):
            kept.append(token)
        i += 1
    return kept + list(job_overrides)


def prepare_ddp_children() -> bool:
    """In a multirun job, make Lightning's DDP children join this job's run directory; True if changed.

    Lightning appends `hydra.run.dir=<HydraConfig run.dir>` and `hydra.output_subdir=null` to the child's
    command, so we point run.dir at this job's output directory and drop the sweep from sys.argv: the
    children neither compose a new sweep nor create their own directories.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return False
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return False
    sys.argv = child_argv(sys.argv, [str(o) for o in hc.overrides.task])
    with read_write(hc), open_dict(hc):
        hc.run.dir = hc.runtime.output_dir
    return True
