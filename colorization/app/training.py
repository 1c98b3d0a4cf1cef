"""What `python train.py` does once Hydra has composed the config: validate, build, fit, test, clean up."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import get_class, instantiate
from lightning.pytorch import Callback, LightningModule
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from colorization.app import tracking
from colorization.app.hardware import ChannelsLast, prepare_ddp_children
from colorization.app.validate import validate_train_config

log = logging.getLogger(__name__)

# Variables Lightning's subprocess launcher sets in the launching process for its DDP ranks.
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def _plain(node: Any) -> Any:
    """A resolved plain-Python copy of a config node (None stays None, empty mapping becomes None)."""
    if node is None:
        return None
    value = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    return value or None


def build_module(cfg: DictConfig) -> LightningModule:
    """The objective's LightningModule from `loss.module`, with the network, optimiser and scheduler specs.

    The specs stay plain dicts: the module instantiates them itself (it knows out_channels) and records
    them with save_hyperparameters, so checkpoints load without this config.
    """
    spec: dict[str, Any] = _plain(cfg.loss.module)
    cls = get_class(spec.pop("_target_"))
    net: dict[str, Any] = _plain(cfg.model.net)
    if OmegaConf.select(cfg, "loss.predicts", default="ab") == "bins" and net.get("final_activation"):
        net["final_activation"] = None  # class logits stay raw; a tanh head is for the 2 ab channels only
    return cls(net=net, optimizer=_plain(cfg.optimizer), scheduler=_plain(cfg.get("scheduler")), **spec)


def instantiate_callbacks(cfg: DictConfig) -> list[Callback]:
    """Every `_target_` entry of `cfg.callbacks` plus ChannelsLast when the hardware asks for it."""
    callbacks: list[Callback] = []
    node = cfg.get("callbacks")
    if node:
        for _, spec in node.items():
            if isinstance(spec, DictConfig) and "_target_" in spec:
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
    """The optimised metric as a float, or None when it was not logged."""
    if not name or name not in metrics:
        return None
    value = metrics[name]
    return float(value.item() if hasattr(value, "item") else value)


def run_training(cfg: DictConfig) -> float | None:
    """Train (and test) as configured; returns the optimised metric for sweepers (e.g. Optuna)."""
    validate_train_config(cfg)
    launcher_env = {k: os.environ.get(k) for k in _DDP_ENV}  # restored after the run (see _end_process_group)
    if cfg.get("seed") is not None:
        L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)
    offline = tracking.configure_wandb(cfg)

    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    callbacks = instantiate_callbacks(cfg)
    loggers = tracking.instantiate_loggers(cfg)
    prepare_ddp_children()
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    save_config(cfg, output_dir)
    tracking.log_run_config(loggers, cfg)

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
