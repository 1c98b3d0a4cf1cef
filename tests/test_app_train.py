"""In-process training through the composed config: every model with every loss it can serve."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_app_support import FAST, compose_train

from colorization.app.training import build_module, run_training


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny synthetic dataset for the whole module (generated on first use)."""
    return tmp_path_factory.mktemp("data")


# (model, loss, extra overrides): U-Nets get fewer down-sampling steps so that 32 px images fit.
PAIRS = [
    ("zhang", "rebalanced_ce", []),
    ("zhang", "l2", []),
    ("cnn", "l2", []),
    ("cnn", "rebalanced_ce", []),
    ("cnn", "cgan_l1", ["loss.discriminator.width=0.0625"]),
    ("cnn8", "l1", []),
    ("koala", "l2", []),
    ("unet", "cgan_l1", ["model.net.num_downs=5", "loss.discriminator.width=0.0625"]),
    ("unet", "l2", ["model.net.num_downs=5"]),
    ("unet", "rebalanced_ce", ["model.net.num_downs=5"]),
    ("attention_unet", "cgan_l1", ["model.net.num_downs=5", "loss.discriminator.width=0.0625"]),
    ("resnet_unet", "cgan_l1", ["model.net.pretrained=false", "loss.discriminator.width=0.0625"]),
]


@pytest.mark.parametrize(("model", "loss", "extra"), PAIRS, ids=[f"{m}-{loss}" for m, loss, _ in PAIRS])
def test_fast_dev_run_each_model_and_loss(
    model: str, loss: str, extra: list[str], tmp_path: Path, data_dir: Path
) -> None:
    """One train/val batch of every model × fitting loss runs and gives a finite loss."""
    overrides = [f"model={model}", f"loss={loss}", *FAST, "trainer.fast_dev_run=1", *extra]
    cfg = compose_train(overrides, tmp_path, data_dir)
    assert cfg.loss.name == loss and cfg.model.name == model
    run_training(cfg)


def test_classification_switches_off_tanh_head(tmp_path: Path, data_dir: Path) -> None:
    """cnn8's tanh head is for 2 ab channels; with rebalanced_ce the net gives raw Q logits."""
    cfg = compose_train(["model=cnn8", "loss=rebalanced_ce", *FAST], tmp_path, data_dir)
    module = build_module(cfg)
    assert module.hparams["net"]["final_activation"] is None
    assert cfg.model.net.final_activation == "tanh"  # the model config itself is unchanged


def test_checkpoints_and_config_written(tmp_path: Path, data_dir: Path) -> None:
    """A short run leaves DIR/checkpoints/last.ckpt, a best checkpoint and DIR/config.yaml."""
    cfg = compose_train(["model=cnn", *FAST, "trainer.max_epochs=1"], tmp_path, data_dir)
    run_training(cfg)
    ckpts = {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert "last.ckpt" in ckpts
    assert any(name.startswith("best") for name in ckpts)
    assert (tmp_path / "config.yaml").is_file()


def test_resume_continues_global_step(tmp_path: Path, data_dir: Path) -> None:
    """Interrupt with max_steps=2, resume from last.ckpt to max_steps=4: global_step continues to 4."""
    first = compose_train(
        ["model=cnn", *FAST, "trainer.max_steps=2", "trainer.max_epochs=-1"], tmp_path, data_dir
    )
    run_training(first)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False, map_location="cpu")["global_step"] == 2
    resumed_dir = tmp_path / "resumed"
    second = compose_train(
        ["model=cnn", *FAST, "trainer.max_steps=4", "trainer.max_epochs=-1", f"ckpt_path={last}"],
        resumed_dir,
        data_dir,
    )
    run_training(second)
    state = torch.load(resumed_dir / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")
    assert state["global_step"] == 4
    assert state["epoch"] >= 1  # limit_train_batches=2: steps 3-4 ran in the second epoch
