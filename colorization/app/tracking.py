"""Loggers for a run: W&B online or offline (under the run directory), sweep groups and tags, CSV,
TensorBoard; and the one line that says how to upload an offline W&B run later."""

from __future__ import annotations

import logging
import netrc
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from colorization.app import runtime
from colorization.objectives import LIGHTNING_KEYWORDS

log = logging.getLogger(__name__)

OFFLINE_MODES = ("offline", "dryrun")


def wandb_credentials_present() -> bool:
    """True when W&B can authenticate without asking: WANDB_API_KEY set or the W&B host in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if not path.is_file():
        return False
    try:
        return netrc.netrc(str(path)).authenticators(host) is not None
    except (netrc.NetrcParseError, OSError):
        return False


def group_name(sweep_name: str | None, task_name: str, sweep: runtime.Sweep) -> str | None:
    """The W&B group of a sweep: `sweep_name` when set, else `<task>-<sweep dir name>`; None if no sweep."""
    if sweep_name:
        return str(sweep_name)
    if sweep.multirun and sweep.sweep_dir:
        return f"{task_name}-{Path(sweep.sweep_dir).name}"
    return None


def _short_tag(text: str) -> str:
    """W&B tags are limited to 64 characters."""
    return text if len(text) <= 64 else text[:61] + "..."


def configure_wandb(node: DictConfig | None, sweep_name: str | None = None, task_name: str = "train") -> bool:
    """Fill the wandb logger spec's mode, group, name and tags (`node` is `logger.wandb`, None when W&B is
    not chosen); returns True if the run is offline.

    Without credentials (and without an explicit WANDB_MODE) the run goes offline, with WANDB_MODE=offline
    so that nothing tries the network, and W&B's own console chatter is silenced.
    """
    if node is None:
        return False
    mode = os.environ.get("WANDB_MODE", "").lower()
    offline = bool(node.get("offline")) or mode in OFFLINE_MODES
    if not offline and mode != "online" and not wandb_credentials_present():
        offline = True
    if offline:
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_CONSOLE", "off")
    if rank_zero_only.rank == 0:
        import wandb

        wandb.setup()  # applies WANDB_SILENT now, before the logger's settings warn about defaults
    sweep = runtime.sweep()
    group = group_name(sweep_name, task_name, sweep)
    with open_dict(node):
        node.offline = offline
        if group and not node.get("group"):
            node.group = group
        if sweep.multirun and not node.get("name"):
            node.name = f"{group}-{sweep.job_num}" if group else None
        tags = [str(t) for t in (node.get("tags") or [])]
        if sweep.multirun:
            tags += [o for o in sweep.overrides if not o.startswith("hydra.")]
        node.tags = sorted({_short_tag(t) for t in tags})
    return offline


#: Packages a logger needs beyond the project's dependencies: (logger class, any one of these modules).
_LOGGER_PACKAGES = ((TensorBoardLogger, ("tensorboard", "tensorboardX")),)


def check_logger_packages(node: DictConfig | None) -> None:
    """A logger whose package is not installed stops here with one line naming it (before any data work);
    `node` is the `logger` group."""
    import importlib.util

    from hydra.utils import get_class

    from colorization.errors import ConfigError

    for key, spec in (node or {}).items():
        if not isinstance(spec, DictConfig) or "_target_" not in spec:
            continue
        cls = get_class(str(spec._target_))
        needs = next((mods for base, mods in _LOGGER_PACKAGES if issubclass(cls, base)), ())
        if needs and not any(importlib.util.find_spec(name) for name in needs):
            raise ConfigError(
                f"logger={key} needs the `{needs[0]}` package (pip install {needs[0]}); "
                "or choose logger=wandb, csv or none"
            )


def instantiate_loggers(node: DictConfig | None) -> list[Logger]:
    """Instantiate every `_target_` entry of the `logger` group (logger=none gives an empty list; call
    check_logger_packages first for a one-line error about a missing package)."""
    loggers: list[Logger] = []
    if not node:
        return loggers
    for _, spec in node.items():
        if isinstance(spec, DictConfig) and "_target_" in spec:
            loggers.append(instantiate(spec))
    return loggers


#: File in a run directory that holds the W&B run id, so that a resumed run continues the same W&B run.
WANDB_ID_FILE = "wandb_run_id"


def previous_run_dir(ckpt_path: Any) -> Path | None:
    """The run directory a checkpoint was written into (RUN/checkpoints/x.ckpt → RUN), else None."""
    if not ckpt_path or str(ckpt_path) in LIGHTNING_KEYWORDS:
        return None
    path = Path(str(ckpt_path)).resolve()
    if path.parent.name != "checkpoints":
        return None
    run_dir = path.parent.parent
    return run_dir if (run_dir / "config.yaml").is_file() or (run_dir / WANDB_ID_FILE).is_file() else None


def wandb_run_id(run_dir: Path) -> str | None:
    """The W&B run id recorded in a run directory: DIR/wandb_run_id, else the id in DIR/wandb/latest-run."""
    record = run_dir / WANDB_ID_FILE
    if record.is_file():
        return record.read_text().strip() or None
    latest = run_dir / "wandb" / "latest-run"
    if latest.exists():
        name = latest.resolve().name  # offline-run-<date>_<time>-<id> or run-<date>_<time>-<id>
        return name.rsplit("-", 1)[-1] or None
    return None


def resume_wandb(node: DictConfig | None, ckpt_path: Any) -> str | None:
    """When `ckpt_path` lies in an earlier run directory with a W&B run, continue that run (same id).

    Sets the wandb logger spec's (`node`) `id` and `resume="allow"`; returns the id (None when nothing is
    resumed). An explicit `logger.wandb.id=...` wins.
    """
    run_dir = previous_run_dir(ckpt_path)
    if node is None or run_dir is None or node.get("id"):
        return None
    run_id = wandb_run_id(run_dir)
    if run_id is None:
        return None
    with open_dict(node):
        node.id = run_id
        node.resume = "allow"
    return run_id


@rank_zero_only
def save_wandb_run_id(loggers: list[Logger], output_dir: str | Path) -> None:
    """Record the W&B run id in DIR/wandb_run_id (read back by resume_wandb when this run is resumed)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / WANDB_ID_FILE).write_text(f"{logger.experiment.id}\n")


def log_run_config(loggers: list[Logger], cfg: DictConfig) -> None:
    """Send the resolved config, the command-line overrides and the chosen groups to every logger."""
    if not loggers:
        return
    params: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    params["overrides"] = runtime.overrides()
    params["choices"] = runtime.choices()
    for logger in loggers:
        logger.log_hyperparams(params)


def finish_wandb(
    output_dir: str | Path, offline: bool, quiet: bool = False, exit_code: int = 0, preempted: bool = False
) -> str | None:
    """Finish the W&B run (so the next sweep job starts its own) and say once how to upload an offline run.

    A non-zero `exit_code` marks the run failed in W&B (the process's own code: 1 for an error, 130 for
    Ctrl-C, 143 for SIGTERM); `preempted` marks it preempting first, W&B's state for a preempted job.
    """
    if "wandb" not in sys.modules:
        return None
    import wandb

    run = wandb.run
    run_dir = Path(run.dir).parent if run is not None else None
    if run is not None:
        if preempted:
            run.mark_preempting()
        wandb.finish(exit_code=exit_code)
    if not offline or run_dir is None or not rank_zero_only.rank == 0:
        return None
    try:
        shown = run_dir.relative_to(Path.cwd())
    except ValueError:
        shown = run_dir
    line = f"W&B run logged offline; upload it later with: wandb sync {shown}"
    if not quiet:
        print(line, flush=True)
    return line
