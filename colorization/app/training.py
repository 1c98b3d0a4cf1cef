"""What `python train.py` does once Hydra has composed the config: check, build, fit, report.

The composed config is read here and nowhere else in the training path: the other app modules get the
sub-nodes or plain values they need. Each value is validated by the class that owns it (the DataModule,
the objective, the network, the optimiser spec) when it is built; `check` holds only what the app itself
owns (the Trainer's limits, the checkpoint to resume from, the loggers' packages).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.pytorch import Callback, LightningModule
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from colorization import checks
from colorization.app import keys, resume, runtime, summary, tracking
from colorization.callbacks import ChannelsLast, stop_signal
from colorization.errors import ConfigError, innermost
from colorization.objectives import LIGHTNING_KEYWORDS

log = logging.getLogger(__name__)

# Keys of the model config that are arguments of the objective (fine-tuning, simulated user hints).
MODEL_OPTIONS = ("init", "freeze", "hints")
# Variables Lightning's subprocess launcher sets in the launching process for its DDP ranks.
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def plain(node: Any) -> Any:
    """A resolved plain-Python copy of a config node (DictConfig → dict, ListConfig → list); None and an
    empty mapping give None. The library below the app receives only plain values."""
    if node is None:
        return None
    if OmegaConf.is_config(node):
        node = OmegaConf.to_container(node, resolve=True)
    elif isinstance(node, dict):
        node = dict(node)
    return node if node or not isinstance(node, dict) else None


# ---------------------------------------------------------------------------------------------- check
def check(cfg: DictConfig) -> None:
    """The values the app owns: keys added with `+` that nothing takes, the Trainer's step and epoch limits,
    the checkpoint to resume from (readable; a run directory names its last.ckpt), and the packages of the
    chosen loggers."""
    keys.check_added_keys(cfg, runtime.overrides())
    for key in ("max_steps", "max_epochs"):
        value = OmegaConf.select(cfg, f"trainer.{key}", default=None)
        if value is not None:
            checks.integer(f"trainer.{key}", value, 1, special=(-1,))
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and str(ckpt_path) not in LIGHTNING_KEYWORDS:
        resume.checkpoint_file(ckpt_path, "ckpt_path")
    tracking.check_logger_packages(cfg.get("logger"))


# ---------------------------------------------------------------------------------------------- build
def optimizer_spec(cfg: DictConfig) -> dict[str, Any]:
    """The (generator's) optimiser spec: the loss's own `loss.g_optimizer` when it has one, else `optimizer`.

    The cGAN carries pix2pix's generator optimiser (Adam 2e-4, β (0.5, 0.999)) in conf/loss/cgan_l1.yaml, so
    `model=unet` trains as the paper does whatever the global optimizer group says; change it with
    `loss.g_optimizer.lr=...` (an `optimizer...` override is then ignored, and a warning says so).
    """
    own = OmegaConf.select(cfg, "loss.g_optimizer", default=None)
    if own is None:
        return plain(cfg.optimizer)
    ignored = [o for o in runtime.overrides() if o.lstrip("+~").startswith("optimizer")]
    if ignored:
        log.warning(
            "loss=%s uses its own generator optimiser loss.g_optimizer; ignored: %s (use loss.g_optimizer.*)",
            OmegaConf.select(cfg, "loss.name", default="?"),
            " ".join(ignored),
        )
    return plain(own)


def build_module(cfg: DictConfig) -> LightningModule:
    """The objective's LightningModule from `loss.module`, with the network, optimiser and scheduler specs.

    `model.init`, `model.freeze` and `model.hints` (where the model config has them) are passed on too.
    The specs stay plain dicts: the module builds them itself (it knows out_channels) and records them with
    save_hyperparameters, so checkpoints load without this config. A ConfigError of the module gets the
    chosen model and loss (their `name` keys) in front of its own line.
    """
    spec: dict[str, Any] = plain(cfg.loss.module)
    cls = get_class(spec.pop("_target_"))
    for key in MODEL_OPTIONS:  # fine-tuning and hints: the model's keys, the objective's arguments
        value = plain(OmegaConf.select(cfg, f"model.{key}", default=None))
        if value is not None:
            spec[key] = value
    net: dict[str, Any] = plain(cfg.model.net)
    if OmegaConf.select(cfg, "loss.predicts", default="ab") == "bins" and net.get("final_activation"):
        net["final_activation"] = None  # class logits stay raw; a tanh head is for the 2 ab channels only
    try:
        return cls(net=net, optimizer=optimizer_spec(cfg), scheduler=plain(cfg.get("scheduler")), **spec)
    except ConfigError as err:  # the pair of options is what the user chose: name it
        names = {g: OmegaConf.select(cfg, f"{g}.name", default=None) for g in ("model", "loss")}
        pair = ", ".join(f"{g}={n}" for g, n in names.items() if n)
        raise ConfigError(f"{pair}: {err}" if pair else str(err)) from None


def instantiate_owned(node: DictConfig, **kwargs: Any) -> Any:
    """Hydra's instantiate, with the owner's own ColorizationError raised as itself, not wrapped by Hydra."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        inner = innermost(err)
        if inner is None:
            raise
        raise inner from None


def build_data_and_module(cfg: DictConfig) -> tuple[Any, LightningModule]:
    """The DataModule and the objective, each validating its own values, and the image size against the
    network (before any data is read)."""
    datamodule = instantiate_owned(cfg.data, _convert_="all")
    module = build_module(cfg)
    module.check_image_size(datamodule.image_size)
    return datamodule, module


def validate_train_config(cfg: DictConfig) -> None:
    """Check and build without touching data or starting Lightning: the first bad value is a ConfigError."""
    check(cfg)
    build_data_and_module(cfg)


def instantiate_callbacks(node: DictConfig | None, has_logger: bool, channels_last: bool) -> list[Callback]:
    """Every `_target_` entry of the `callbacks` group, plus ChannelsLast when the hardware asks for it.

    Without a logger (`logger=none`) the learning-rate monitor is left out; the image callbacks stay (they
    write PNG files under the run directory then).
    """
    callbacks: list[Callback] = []
    for name, spec in (node or {}).items():
        if isinstance(spec, DictConfig) and "_target_" in spec:
            if not has_logger and issubclass(get_class(str(spec._target_)), LearningRateMonitor):
                log.info("no logger: callbacks.%s (learning-rate monitor) is left out", name)
                continue
            callbacks.append(instantiate(spec))
    if channels_last:
        callbacks.append(ChannelsLast())
    return callbacks


@dataclass
class Run:
    """Everything one training run is made of, built from the config by `build`."""

    output_dir: Path
    datamodule: Any
    module: LightningModule
    trainer: L.Trainer
    loggers: list[Logger]
    offline: bool


def prepare_data_early(datamodule: Any) -> None:
    """Make the data ready before the Trainer is built, so that missing data stops first, in one line.

    Only the launching process (local rank 0) does it; Lightning calls prepare_data again inside fit,
    which then finds the data and the cached index ready. DDP ranks started by Lightning skip it here.
    """
    # Lightning's launcher sets LOCAL_RANK; under SLURM (submitit, srun) every task is started by SLURM
    local_rank = os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_LOCALID") or "0"
    if int(local_rank) == 0:
        datamodule.prepare_data()


def build(cfg: DictConfig) -> Run:
    """Seed, data (made ready), module, loggers, callbacks and Trainer; the resolved config is saved."""
    if cfg.get("seed") is not None:
        L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)
    wandb_node = OmegaConf.select(cfg, "logger.wandb", default=None)
    offline = tracking.configure_wandb(wandb_node, cfg.get("sweep_name"), str(cfg.get("task_name", "train")))
    wandb_id = tracking.resume_wandb(wandb_node, cfg.get("ckpt_path"))
    datamodule, module = build_data_and_module(cfg)
    prepare_data_early(datamodule)
    loggers = tracking.instantiate_loggers(cfg.get("logger"))
    channels_last = bool(OmegaConf.select(cfg, "hardware.channels_last", default=False))
    callbacks = instantiate_callbacks(cfg.get("callbacks"), bool(loggers), channels_last)
    runtime.prepare_ddp_children()
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    save_config(cfg, output_dir)
    resume.announce_resume(cfg.get("ckpt_path"), output_dir, wandb_id)
    resume.warn_changed_optimisation(cfg.get("ckpt_path"), module)
    tracking.log_run_config(loggers, cfg)
    tracking.save_wandb_run_id(loggers, output_dir)
    return Run(output_dir, datamodule, module, trainer, loggers, offline)


@rank_zero_only
def save_config(cfg: DictConfig, output_dir: Path) -> None:
    """Write the resolved config as DIR/config.yaml (Hydra's .hydra/ keeps the unresolved one, overrides)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)


# ---------------------------------------------------------------------------------------------- fit
def fit(run: Run, ckpt_path: Any, train: bool = True, test: bool = False) -> dict[str, Any]:
    """Fit (resuming from ckpt_path), then test with the best checkpoint; returns the logged metrics."""
    trainer, module, datamodule = run.trainer, run.module, run.datamodule
    metrics: dict[str, Any] = {}
    if train:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics.update(trainer.callback_metrics)
    if test:
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") if train else ckpt_path
        # The best checkpoint when one was kept (or ckpt_path with train=false), else the current weights.
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None, verbose=False)  # see summary
        metrics.update(trainer.callback_metrics)
    return metrics


# ---------------------------------------------------------------------------------------------- report
def metric_value(metrics: dict[str, Any], name: str | None) -> float | None:
    """The optimised metric as a float, or None when it was not logged or is NaN (a sweeper such as Optuna
    then records a failed trial instead of crashing on a NaN objective)."""
    if not name or name not in metrics:
        return None
    value = metrics[name]
    number = float(value.item() if hasattr(value, "item") else value)
    if math.isnan(number):
        log.warning("%s is NaN: no value returned to the sweeper", name)
        return None
    return number


class _DropLightningTips(logging.Filter):
    """Drops Lightning's advertising lines ("💡 Tip: ... litlogger / litmodels"): noise in every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record except the tips."""
        return not str(record.msg).startswith("💡 Tip")


def quiet_lightning_tips() -> None:
    """Install the tip filter on Lightning's rank-zero logger (once)."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropLightningTips) for f in logger.filters):
        logger.addFilter(_DropLightningTips())


def checkpoint_folder(cfg: DictConfig) -> Path:
    """The folder of this run's last.ckpt (callbacks.last_checkpoint.dirpath, else DIR/checkpoints)."""
    folder = OmegaConf.select(cfg, "callbacks.last_checkpoint.dirpath", default=None)
    return Path(str(folder)) if folder else Path(cfg.paths.output_dir) / "checkpoints"


def run_training(cfg: DictConfig) -> float | None:
    """Train (and test) as configured; returns the optimised metric for sweepers (e.g. Optuna).

    `ckpt_path` is resolved first (`last`, a run directory) and the run directory is claimed for this run
    (colorization.app.resume). A fit stopped by SIGTERM or Ctrl-C (last.ckpt written at the step reached)
    finishes the W&B run as failed (SIGTERM: preempted too), prints one line saying how to resume, and
    exits with 128 + the signal number: 143, 130.
    """
    check(cfg)
    quiet_lightning_tips()
    summary.quiet_dependency_warnings()
    launcher_env = {k: os.environ.get(k) for k in _DDP_ENV}  # restored after the run (see _end_process_group)
    continues = str(cfg.get("ckpt_path")) == resume.LAST
    with open_dict(cfg):
        cfg.ckpt_path = resume.resolve_ckpt_path(cfg.get("ckpt_path"), checkpoint_folder(cfg))
    with resume.claim_run_dir(Path(cfg.paths.output_dir), cfg.ckpt_path, continues):
        run = build(cfg)
        exit_code = 1
        try:
            metrics = fit(run, cfg.ckpt_path, train=cfg.get("train", True), test=cfg.get("test", False))
            exit_code = 0
            summary.report(run, metrics, OmegaConf.select(cfg, "paths.root_dir", default=None))
        except BaseException as err:
            signum = stop_signal(err)
            if signum is None:
                raise
            exit_code = 128 + signum
            if rank_zero_only.rank == 0:
                line = resume.stopped_line(run.trainer, signal.Signals(signum).name, run.output_dir)
                print(line, file=sys.stderr, flush=True)
            raise SystemExit(exit_code) from None
        finally:
            preempted = exit_code == 128 + signal.SIGTERM
            tracking.finish_wandb(run.output_dir, run.offline, exit_code=exit_code, preempted=preempted)
            _end_process_group(launcher_env)
    return metric_value(metrics, cfg.get("optimized_metric"))


def _end_process_group(launcher_env: dict[str, str | None]) -> None:
    """Close DDP's process group and undo the launcher's environment, so that the next job of a sweep
    (same process) launches its own ranks: Lightning treats a set LOCAL_RANK as "ranks made elsewhere"."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for key, value in launcher_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
