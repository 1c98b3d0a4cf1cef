"""Helpers shared by the application tests (compose the real conf/ tree with tiny, fast overrides)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

#: Tiny synthetic data, tiny networks, one CPU device, no logger: seconds per run.
FAST = [
    "data=synthetic",
    "data.source.count=40",
    "data.source.size=32",
    "data.image_size=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "data.prior_max_images=16",
    "data.augment=false",
    "model.width=0.0625",
    "hardware=cpu",
    "logger=none",
    "callbacks=minimal",
    "test=false",
    "trainer.enable_model_summary=false",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.log_every_n_steps=1",
]


def compose_train(overrides: list[str], output_dir: Path, data_dir: Path, name: str = "train") -> DictConfig:
    """The training config as `python train.py OVERRIDES` would compose it, rooted in temporary dirs."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(name, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.data_dir = str(data_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
    return cfg


def cli_env(tmp: Path, data_dir: Path) -> dict[str, str]:
    """Environment of a CLI subprocess: offline W&B under tmp, data under data_dir, no HYDRA_FULL_ERROR."""
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "WANDB_API_KEY")}
    env.update(
        WANDB_MODE="offline",
        WANDB_DIR=str(tmp),
        WANDB_CACHE_DIR=str(tmp / ".wandb-cache"),
        WANDB_CONFIG_DIR=str(tmp / ".wandb-config"),
        COLORIZATION_DATA=str(data_dir),
        NETRC=str(tmp / "no-netrc"),
        PYTHONWARNINGS="ignore",
    )
    return env


def run_cli(
    script: str, args: list[str], tmp: Path, data_dir: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run `python SCRIPT ARGS` from the project root and capture its output."""
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=ROOT,
        env=cli_env(tmp, data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
