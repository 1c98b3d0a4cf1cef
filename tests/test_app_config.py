"""The config tree composes, defaults mean what DESIGN.md says, and bad values stop with one clear line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from test_app_support import CONF, ROOT, compose_train

from colorization.app.validate import validate_train_config
from colorization.errors import ConfigError

GROUPS = [
    "model",
    "loss",
    "data",
    "hardware",
    "logger",
    "trainer",
    "callbacks",
    "optimizer",
    "scheduler",
    "experiment",
    "debug",
]
PLUGIN_FREE = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None


def options(group: str) -> list[str]:
    """The yaml options of a config group, from the conf/ tree."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_ok(overrides: list[str], tmp_path: Path, name: str = "train") -> OmegaConf:
    """Compose and resolve (as the app does) a config; returns it."""
    cfg = compose_train(overrides, tmp_path, tmp_path / "data", name=name)
    OmegaConf.resolve(cfg)
    return cfg


@pytest.mark.parametrize(
    "override", [f"{g}={o}" for g in GROUPS for o in options(g)], ids=lambda s: s.replace("=", "-")
)
def test_every_group_option_composes(override: str, tmp_path: Path) -> None:
    """Each option of each group composes on top of the defaults and resolves."""
    if override == "hardware=slurm" and not PLUGIN_FREE:
        pytest.skip("hardware=slurm needs the cluster extra (hydra-submitit-launcher)")
    cfg = compose_ok([override], tmp_path)
    group, option = override.split("=")
    if group in ("model", "loss"):
        assert cfg[group].name == option


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_validate(experiment: str, tmp_path: Path) -> None:
    """Every paper reproduction passes validation with full-width networks (the real sizes)."""
    cfg = compose_ok([f"experiment={experiment}"], tmp_path)
    validate_train_config(cfg)
    assert cfg.model.width == 1.0
    assert cfg.data.image_size >= 150


def test_evaluate_config_composes(tmp_path: Path) -> None:
    """evaluate.yaml composes with ckpt and optional data."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("evaluate", overrides=["ckpt=[a.ckpt,b.ckpt]", "data=synthetic"])
    assert list(cfg.ckpt) == ["a.ckpt", "b.ckpt"] and cfg.data.source._target_.endswith("Synthetic")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("evaluate", overrides=["ckpt=a.ckpt"])
    assert cfg.get("data") is None


def test_model_selects_its_paper_loss_and_loss_override_wins(tmp_path: Path) -> None:
    """model=zhang → rebalanced CE, model=unet → cGAN; loss=... on the command line wins."""
    assert compose_ok(["model=zhang"], tmp_path).loss.name == "rebalanced_ce"
    assert compose_ok(["model=unet"], tmp_path).loss.name == "cgan_l1"
    assert compose_ok(["model=cnn"], tmp_path).loss.name == "l2"
    assert compose_ok(["model=unet", "loss=l2"], tmp_path).loss.name == "l2"
    cfg = compose_ok(
        ["model=cnn", "loss=rebalanced_ce", "loss.lambda=0.25", "loss.temperature=0.5"], tmp_path
    )
    assert cfg.loss.module.rebalance_lambda == 0.25 and cfg.loss.module.temperature == 0.5


def test_demo_only_for_the_default_pair(tmp_path: Path) -> None:
    """`python train.py` is the small CPU demo; naming another dataset keeps the paper's width."""
    demo = compose_ok([], tmp_path)
    assert demo.model.name == "zhang" and demo.model.width == 0.25 and demo.data.image_size == 64
    full = compose_ok(["model=zhang", "data=cats"], tmp_path)
    assert full.model.width == 1.0
    assert compose_ok(["~demo"], tmp_path).model.width == 1.0
    # the real model default is never shrunk
    assert OmegaConf.load(CONF / "model" / "zhang.yaml").width == 1.0


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["loss.lambda=1.5"], "loss.lambda=1.5"),
        (["loss.lambda=-0.1"], "0 <= lambda <= 1"),
        (["loss.temperature=0"], "loss.temperature=0"),
        (["loss.temperature=-1"], "T > 0"),
        (["model=zhang", "loss=cgan_l1"], "model=zhang cannot serve loss=cgan_l1"),
        (["model.net._target_=colorization.nets.PatchGAN"], "not a colorization generator"),
        (["model=unet", "data.image_size=64"], "multiple of 256"),
        (["model.width=0"], "model.width=0"),
        (["model=unet", "loss.lambda_l1=-1", "data.image_size=256"], "loss.lambda_l1"),
        (["loss.gamut=weird"], "allowed values: zhang, dataset"),
        (["ckpt_path=/no/such.ckpt"], "no such checkpoint"),
        (["optimizer.lr=1e38"], "optimizer.lr=1e+38 is out of range"),
        (["optimizer.lr=0"], "allowed values: 0 < lr"),
        (["optimizer.lr=inf"], "optimizer.lr=inf must be a finite number"),
        (["model=unet", "data.image_size=256", "loss.g_optimizer.lr=-1"], "loss.g_optimizer.lr=-1"),
    ],
)
def test_bad_values_give_one_line(overrides: list[str], needle: str, tmp_path: Path) -> None:
    """Validation names the key and the allowed values in a single line."""
    cfg = compose_train(overrides, tmp_path, tmp_path / "data")
    with pytest.raises(ConfigError) as info:
        validate_train_config(cfg)
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_sweeps_compose(tmp_path: Path) -> None:
    """Each named sweep in sweeps/ composes with its sweep name and parameters."""
    for name in ("lambda_temperature", "objectives", "optuna_lambda_lr"):
        if (
            name.startswith("optuna")
            and importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None
        ):
            continue
        with initialize_config_dir(config_dir=str(ROOT / "sweeps"), version_base="1.3"):
            # `-cd sweeps` on the command line adds sweeps/ to the search path beside conf/
            cfg = compose(name, overrides=[f"hydra.searchpath=[file://{CONF}]"], return_hydra_config=True)
        assert cfg.sweep_name == name
        assert cfg.hydra.sweeper.params


def test_cgan_generator_gets_pix2pix_optimizer(tmp_path: Path) -> None:
    """model=unet: the generator's Adam is pix2pix's 2e-4, β (0.5, 0.999), not the global group's 1e-4,
    β1 0.9; `loss.g_optimizer.lr=...` overrides it; other objectives keep the global optimizer group."""
    from colorization.app.training import build_module

    tiny = ["model.width=0.0625", "loss.discriminator.width=0.0625"]
    cfg = compose_ok(["model=unet", *tiny], tmp_path)
    assert cfg.optimizer.lr == 1.0e-4  # the global group is unchanged ...
    spec = build_module(cfg).optimizer_spec  # ... but the generator uses the loss's own
    assert spec["_target_"] == "torch.optim.Adam" and spec["lr"] == 2.0e-4
    assert list(spec["betas"]) == [0.5, 0.999]
    over = build_module(compose_ok(["model=unet", *tiny, "loss.g_optimizer.lr=1e-3"], tmp_path))
    assert over.optimizer_spec["lr"] == 1.0e-3
    zhang = build_module(compose_ok(["model=zhang", "model.width=0.0625"], tmp_path))
    assert zhang.optimizer_spec["lr"] == 1.0e-4 and list(zhang.optimizer_spec["betas"]) == [0.9, 0.999]
