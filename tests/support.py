"""What the tests share (imported by test modules and by conftest.py's fixtures): the project's paths, the
fast overrides of the real configs, config composition, CLI subprocesses, a quiet Trainer, Lab batches."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from PIL import Image
from skimage import data as skdata
from torch import nn
from torch.utils.data import DataLoader

from colorization.color import lab_batch
from colorization.data.synthetic import synthetic_batch

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

#: Small `_target_` specs for the objectives' tests (the networks at tiny widths, an optimiser).
CNN = {"_target_": "colorization.nets.BaselineCNN", "width": 0.5}
ZHANG = {"_target_": "colorization.nets.ZhangNet", "width": 0.0625}
UNET = {"_target_": "colorization.nets.UNetGenerator", "width": 0.125, "num_downs": 5}
PATCH = {"_target_": "colorization.nets.PatchGAN", "width": 0.125}


def adam(lr: float = 1e-3) -> dict[str, Any]:
    """An Adam spec with learning rate `lr`."""
    return {"_target_": "torch.optim.Adam", "_partial_": True, "lr": lr}


def compose_config(
    overrides: list[str], output_dir: Path, data_dir: Path, name: str = "train", config_dir: Path = CONF
) -> DictConfig:
    """A config as `python train.py OVERRIDES` (or evaluate.py, name="evaluate") composes it, rooted in
    temporary dirs."""
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(name, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.data_dir = str(data_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
    return cfg


def build_datamodule(overrides: list[str], data_dir: Path) -> Any:
    """The DataModule of `python train.py OVERRIDES`, built as the app builds it (plain values)."""
    from colorization.app.training import instantiate_owned

    cfg = compose_config(overrides, data_dir, data_dir)
    return instantiate_owned(cfg.data, _convert_="all")


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


def quiet_trainer(tmp_path: Any = None, **overrides: Any) -> pl.Trainer:
    """Trainer on one CPU device with everything noisy switched off; `overrides` win."""
    args: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    args.update(overrides)
    return pl.Trainer(**args)


def lab_batches(n: int = 8, size: int = 32, bs: int = 4, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Synthetic scenes as the DataModule's device batches: {"L", "ab" (normalised), "rgb"}, `bs` each."""
    rgb, _ = synthetic_batch(n, size, seed=seed)
    L, ab = lab_batch(rgb)
    return [{"L": L[i : i + bs], "ab": ab[i : i + bs], "rgb": rgb[i : i + bs]} for i in range(0, n, bs)]


#: scikit-image's colour photos, the real pictures of the inference tests.
PHOTOS = {"astronaut": skdata.astronaut, "chelsea": skdata.chelsea, "coffee": skdata.coffee}


def photo(name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """A scikit-image photo as uint8 H×W×3, resized (bilinear) to size=(w, h) when given."""
    img = Image.fromarray(PHOTOS[name]())
    return np.asarray(img.resize(size, Image.BILINEAR) if size else img)


def photo_batches() -> list[dict[str, torch.Tensor]]:
    """The photos at 32 px as the objectives' batch dicts (L_n, ab_n, rgb)."""
    samples = []
    for name in PHOTOS:
        rgb = torch.from_numpy(photo(name, (32, 32))).permute(2, 0, 1).float()[None] / 255.0
        L, ab = lab_batch(rgb)
        samples.append({"L": L[0], "ab": ab[0], "rgb": rgb[0]})
    return samples


def make_checkpoint(path: Path, module: pl.LightningModule, steps: int = 2) -> Path:
    """Train `module` on the photos for `steps` steps with a Lightning Trainer and save its checkpoint."""
    trainer = quiet_trainer(max_steps=steps, limit_val_batches=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train_dataloaders=DataLoader(photo_batches(), batch_size=3))
    trainer.save_checkpoint(path)
    return path


class StandIn(nn.Module):
    """L_n → ab (Lab units) at the input's resolution: a fixed conv net, smooth, moderately saturated."""

    size_multiple = 4

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(1, 2, 5, padding=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.copy_(torch.tensor([0.2, -0.3]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.avg_pool2d(x, 4)
        ab = 60.0 * torch.tanh(self.conv(y))
        return nn.functional.interpolate(ab, size=x.shape[-2:], mode="bilinear", align_corners=False)
