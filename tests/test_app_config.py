"""The config tree composes, defaults mean what DESIGN.md says, and bad values stop with one clear line."""

from __future__ import annotations

import importlib.util

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from support import CONF, ROOT

from colorization.app.training import build_module, validate_train_config
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


@pytest.fixture
def compose_ok(train_config):
    """Compose and resolve (as the app does) a training config."""

    def make(overrides: list[str]) -> OmegaConf:
        cfg = train_config(overrides)
        OmegaConf.resolve(cfg)
        return cfg

    return make


@pytest.mark.parametrize(
    "override", [f"{g}={o}" for g in GROUPS for o in options(g)], ids=lambda s: s.replace("=", "-")
)
def test_every_group_option_composes(override: str, compose_ok) -> None:
    """Each option of each group composes on top of the defaults and resolves."""
    if override == "hardware=slurm" and not PLUGIN_FREE:
        pytest.skip("hardware=slurm needs the cluster extra (hydra-submitit-launcher)")
    cfg = compose_ok([override])
    group, option = override.split("=")
    if group in ("model", "loss"):
        assert cfg[group].name == option


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_validate(experiment: str, compose_ok) -> None:
    """Every paper reproduction passes validation (its data, network and loss build) with full-width
    networks (the real sizes)."""
    cfg = compose_ok([f"experiment={experiment}"])
    validate_train_config(cfg)
    assert cfg.model.width == 1.0
    assert cfg.data.image_size >= 150


def test_evaluate_config_composes(evaluate_config) -> None:
    """evaluate.yaml composes with ckpt and optional data."""
    cfg = evaluate_config(["ckpt=[a.ckpt,b.ckpt]", "data=synthetic"])
    assert list(cfg.ckpt) == ["a.ckpt", "b.ckpt"] and cfg.data.source._target_.endswith("Synthetic")
    cfg = evaluate_config(["ckpt=a.ckpt"])
    assert cfg.get("data") is None and cfg.temperatures is None  # the checkpoint's own T sweep


def test_model_selects_its_paper_loss_and_loss_override_wins(compose_ok) -> None:
    """model=zhang → rebalanced CE, model=unet → cGAN; loss=... on the command line wins."""
    assert compose_ok(["model=zhang"]).loss.name == "rebalanced_ce"
    assert compose_ok(["model=unet"]).loss.name == "cgan_l1"
    assert compose_ok(["model=cnn"]).loss.name == "l2"
    assert compose_ok(["model=unet", "loss=l2"]).loss.name == "l2"
    cfg = compose_ok(["model=cnn", "loss=rebalanced_ce", "loss.lambda=0.25", "loss.temperature=0.5"])
    assert cfg.loss.module.rebalance_lambda == 0.25 and cfg.loss.module.temperature == 0.5


def test_demo_only_for_the_default_pair(compose_ok) -> None:
    """`python train.py` is the small CPU demo; naming another dataset keeps the paper's width."""
    demo = compose_ok([])
    assert demo.model.name == "zhang" and demo.model.width == 0.25 and demo.data.image_size == 64
    full = compose_ok(["model=zhang", "data=cats"])
    assert full.model.width == 1.0
    assert compose_ok(["~demo"]).model.width == 1.0
    # the real model default is never shrunk
    assert OmegaConf.load(CONF / "model" / "zhang.yaml").width == 1.0


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["loss.lambda=1.5"], "loss.lambda=1.5"),
        (["loss.lambda=-0.1"], "0 <= lambda <= 1"),
        (["loss.temperature=0"], "loss.temperature=0"),
        (["loss.temperature=-1"], "T > 0"),
        (["model=zhang", "loss=cgan_l1"], "model=zhang, loss=cgan_l1: ZhangNet cannot serve the cGAN"),
        (["model.net._target_=colorization.nets.PatchGAN"], "not a colorization generator"),
        (["model=unet", "data.image_size=64"], "multiple of 256"),
        (["model=unet", "data.image_size=64"], "model.num_downs <= 6"),
        (["model.width=0"], "model.net: width=0 is out of range"),
        (["data.batch_size=0"], "data.batch_size=0"),
        (["data.num_workers=-1"], "data.num_workers=-1"),
        (["trainer.max_steps=0"], "trainer.max_steps=0 is out of range"),
        (["loss.gan_mode=wgan", "model=unet", "data.image_size=256"], "allowed values: vanilla, lsgan"),
        (["model=unet", "loss.lambda_l1=-1", "data.image_size=256"], "loss.lambda_l1"),
        (["loss.gamut=weird"], "allowed values: zhang, dataset"),
        (["ckpt_path=/no/such.ckpt"], "no such checkpoint"),
        (["optimizer.lr=1e38"], "optimizer.lr=1e+38 is out of range"),
        (["optimizer.lr=0"], "allowed values: 0 < lr"),
        (["optimizer.lr=inf"], "optimizer.lr=inf must be a finite number"),
        (["model=unet", "data.image_size=256", "loss.g_optimizer.lr=-1"], "loss.g_optimizer.lr=-1"),
    ],
)
def test_bad_values_give_one_line(overrides: list[str], needle: str, train_config) -> None:
    """Validation (by the owner of each value, when the app builds it) names the key and the allowed values
    in a single line."""
    cfg = train_config(overrides)
    with pytest.raises(ConfigError) as info:
        validate_train_config(cfg)
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_sweeps_compose() -> None:
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


def test_cgan_generator_gets_pix2pix_optimizer(compose_ok) -> None:
    """model=unet: the generator's Adam is pix2pix's 2e-4, β (0.5, 0.999), not the global group's 1e-4,
    β1 0.9; `loss.g_optimizer.lr=...` overrides it; other objectives keep the global optimizer group."""
    tiny = ["model.width=0.0625", "loss.discriminator.width=0.0625"]
    cfg = compose_ok(["model=unet", *tiny])
    assert cfg.optimizer.lr == 1.0e-4  # the global group is unchanged ...
    spec = build_module(cfg).optimizer_spec  # ... but the generator uses the loss's own
    assert spec["_target_"] == "torch.optim.Adam" and spec["lr"] == 2.0e-4
    assert list(spec["betas"]) == [0.5, 0.999]
    over = build_module(compose_ok(["model=unet", *tiny, "loss.g_optimizer.lr=1e-3"]))
    assert over.optimizer_spec["lr"] == 1.0e-3
    zhang = build_module(compose_ok(["model=zhang", "model.width=0.0625"]))
    assert zhang.optimizer_spec["lr"] == 1.0e-4 and list(zhang.optimizer_spec["betas"]) == [0.9, 0.999]


def test_unet_depth_is_a_config_key(compose_ok) -> None:
    """model.num_downs sets the pix2pix U-Net's depth (8 by default): 6 fits the 64 px samples."""
    assert compose_ok(["model=unet"]).model.net.num_downs == 8
    cfg = compose_ok(["model=unet", "model.num_downs=6", "data.image_size=64", "model.width=0.0625"])
    validate_train_config(cfg)
    assert build_module(cfg).net.size_multiple == 64


def test_lambda_is_explained_the_right_way_round() -> None:
    """λ = 0 is the strongest rebalancing (inverse prior), λ = 1 uniform weights, as the loss config says."""
    text = (CONF / "loss" / "rebalanced_ce.yaml").read_text()
    assert "0 = the pure inverse prior" in text and "1 = uniform class weights (no rebalancing)" in text
    assert "0 = no rebalancing" not in text
