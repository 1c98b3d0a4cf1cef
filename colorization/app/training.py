"""What `python train.py` does once Hydra has composed the config: validate, build, fit, test, clean up."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import get_class, instantiate
from lightning.pytorch import Callback, LightningModule
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from colorization.app import tracking
from colorization.app.hardware import ChannelsLast, prepare_ddp_children
from colorization.app.validate import validate_train_config
from colorization.objectives.base import plain_spec

log = logging.getLogger(__name__)

# Variables Lightning's subprocess launcher sets in the launching process for its DDP ranks.
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def optimizer_spec(cfg: DictConfig) -> dict[str, Any]:
    """The (generator's) optimiser spec: the loss's own `loss.g_optimizer` when it has one, else `optimizer`.

    The cGAN carries pix2pix's generator optimiser (Adam 2e-4, β (0.5, 0.999)) in conf/loss/cgan_l1.yaml, so
    `model=unet` trains as the paper does whatever the global optimizer group says; change it with
    `loss.g_optimizer.lr=...` (an `optimizer...` override is then ignored, and a warning says so).
    """
    own = OmegaConf.select(cfg, "loss.g_optimizer", default=None)
    if own is None:
        return plain_spec(cfg.optimizer)
    ignored = [o for o in _command_line_overrides() if o.lstrip("+~").startswith("optimizer")]
    if ignored:
        log.warning(
            "loss=%s uses its own generator optimiser loss.g_optimizer; ignored: %s (use loss.g_optimizer.*)",
            OmegaConf.select(cfg, "loss.name", default="?"),
            " ".join(ignored),
        )
    return plain_spec(own)


def _command_line_overrides() -> list[str]:
    """The task overrides of the running Hydra job (empty outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [str(o) for o in HydraConfig.get().overrides.task]


def build_module(cfg: DictConfig) -> LightningModule:
    """The objective's LightningModule from `loss.module`, with the network, optimiser and scheduler specs.

    The specs stay plain dicts: the module instantiates them itself (it knows out_channels) and records
    them with save_hyperparameters, so checkpoints load without this config.
    """
    spec: dict[str, Any] = plain_spec(cfg.loss.module)
    cls = get_class(spec.pop("_target_"))
    net: dict[str, Any] = plain_spec(cfg.model.net)
    if OmegaConf.select(cfg, "loss.predicts", default="ab") == "bins" and net.get("final_activation"):
        net["final_activation"] = None  # class logits stay raw; a tanh head is for the 2 ab channels only
    return cls(net=net, optimizer=optimizer_spec(cfg), scheduler=plain_spec(cfg.get("scheduler")), **spec)


def instantiate_callbacks(cfg: DictConfig, has_logger: bool = True) -> list[Callback]:
    """Every `_target_` entry of `cfg.callbacks` plus ChannelsLast when the hardware asks for it.

    Without a logger (`logger=none`) the learning-rate monitor is left out; the image callbacks stay (they
    write PNG files under the run directory then).
    """
    callbacks: list[Callback] = []
    node = cfg.get("callbacks")
    if node:
        for name, spec in node.items():
            if isinstance(spec, DictConfig) and "_target_" in spec:
                if not has_logger and issubclass(get_class(str(spec._target_)), LearningRateMonitor):
                    log.info("no logger: callbacks.%s (learning-rate monitor) is left out", name)
                    continue
                callbacks.append(instantiate(spec))
    if OmegaConf.select(cfg, "hardware.channels_last", default=False):
        callbacks.append(ChannelsLast())
    return callbacks


@rank_zero_only
def save_config(cfg: DictConfig, output_dir: Path) -> None:
    """Write the resolved config as DIR/config.yaml (Hydra's .hydra/ keeps the unresolved one, overrides)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)


def _metric_value(metrics: dict[str, Any], name: str | None) -> float | None:
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


def prepare_data_early(datamodule: Any) -> None:
    """Make the data ready before the Trainer is built, so that missing data stops first, in one line.

    Only the launching process (local rank 0) does it; Lightning calls prepare_data again inside fit,
    which then finds the data and the cached index ready. DDP ranks started by Lightning skip it here.
    """
    if int(os.environ.get("LOCAL_RANK", "0")) == 0 and hasattr(datamodule, "prepare_data"):
        datamodule.prepare_data()


def announce_resume(cfg: DictConfig, output_dir: Path, wandb_id: str | None) -> None:
    """Say once where a resumed run writes: its own new run dir unless hydra.run.dir names the old one."""
    previous = tracking.previous_run_dir(cfg.get("ckpt_path"))
    if previous is None or rank_zero_only.rank != 0:
        return
    same = previous.resolve() == output_dir.resolve()
    where = (
        "the same run directory" if same else f"{output_dir} (give hydra.run.dir={previous} to keep one dir)"
    )
    run = f"; W&B run {wandb_id} continues" if wandb_id else ""
    print(f"resuming {cfg.ckpt_path}: this run writes into {where}{run}", flush=True)


def run_training(cfg: DictConfig) -> float | None:
    """Train (and test) as configured; returns the optimised metric for sweepers (e.g. Optuna)."""
    validate_train_config(cfg)
    quiet_lightning_tips()
    launcher_env = {k: os.environ.get(k) for k in _DDP_ENV}  # restored after the run (see _end_process_group)
    if cfg.get("seed") is not None:
        L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)
    tracking.check_logger_packages(cfg)
    offline = tracking.configure_wandb(cfg)
    wandb_id = tracking.resume_wandb(cfg)

    datamodule = instantiate(cfg.data)
    prepare_data_early(datamodule)
    module = build_module(cfg)
    loggers = tracking.instantiate_loggers(cfg)
    callbacks = instantiate_callbacks(cfg, has_logger=bool(loggers))
    prepare_ddp_children()
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    save_config(cfg, output_dir)
    announce_resume(cfg, output_dir, wandb_id)
    tracking.log_run_config(loggers, cfg)
    tracking.save_wandb_run_id(loggers, output_dir)

    metrics: dict[str, Any] = {}
    try:
        if cfg.get("train", True):
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
            metrics.update(trainer.callback_metrics)
        if cfg.get("test", False):
            callback = trainer.checkpoint_callback
            best = (
                getattr(callback, "best_model_path", "") if cfg.get("train", True) else cfg.get("ckpt_path")
            )
            # The best checkpoint when one was kept (or ckpt_path with train=false), else the current weights.
            trainer.test(module, datamodule=datamodule, ckpt_path=best or None)
            metrics.update(trainer.callback_metrics)
    finally:
        tracking.finish_wandb(output_dir, offline)
        _end_process_group(launcher_env)
    return _metric_value(metrics, cfg.get("optimized_metric"))


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
