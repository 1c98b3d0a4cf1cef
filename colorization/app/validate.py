"""Checks of a composed configuration before anything is built: one ConfigError line naming the key and
the allowed values, so a bad sweep fails in a second rather than after a dataset download."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf

from colorization.errors import ConfigError

GAN_MODES = ("vanilla", "lsgan")
PRIORS = ("dataset", "uniform")
GAMUTS = ("zhang", "dataset")
REGRESSION_LOSSES = ("l2", "l1", "smooth_l1")


def _number(cfg: DictConfig, key: str) -> float | None:
    """The value at dotted `key` as a float (None when absent); a non-number is a ConfigError."""
    value = OmegaConf.select(cfg, key, default=None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}={value!r} must be a number")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{key}={value!r} must be a finite number")
    return float(value)


def _choice(cfg: DictConfig, key: str, allowed: tuple[str, ...]) -> None:
    """Check that `key` (when present) is one of `allowed`."""
    value = OmegaConf.select(cfg, key, default=None)
    if value is not None and value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; allowed values: {', '.join(allowed)}")


def net_class(cfg: DictConfig, key: str = "model.net") -> type:
    """The class named by `<key>._target_`; a missing or unimportable target is a ConfigError."""
    target = OmegaConf.select(cfg, f"{key}._target_", default=None)
    if not target:
        raise ConfigError(f"{key}._target_ is missing: choose a model, e.g. model=zhang")
    try:
        return get_class(str(target))
    except Exception as err:  # ImportError, AttributeError, ValueError from Hydra
        raise ConfigError(f"{key}._target_={target} cannot be imported ({type(err).__name__})") from err


def model_options() -> dict[str, type | None]:
    """The model group's options and their network classes, read through Hydra's config repository."""
    from hydra.core.global_hydra import GlobalHydra

    out: dict[str, type | None] = {}
    if not GlobalHydra.instance().is_initialized():
        return out
    loader = GlobalHydra.instance().config_loader()
    for name in loader.get_group_options("model"):
        cls: type | None = None
        try:
            result = loader.repository.load_config(f"model/{name}")  # type: ignore[attr-defined]
            target = OmegaConf.select(result.config, "net._target_", default=None) if result else None
            cls = get_class(str(target)) if target else None
        except Exception:  # an option we cannot resolve is simply not listed
            cls = None
        out[str(name)] = cls
    return out


def _choice_name(cfg: DictConfig, group: str) -> str:
    """The option chosen for a config group (from hydra's runtime choices when known), for messages."""
    choice = OmegaConf.select(cfg, f"hydra.runtime.choices.{group}", default=None)
    if choice is None:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            choice = HydraConfig.get().runtime.choices.get(group)
    if choice is None:
        choice = OmegaConf.select(cfg, f"{group}.name", default="?")
    return str(choice)


def check_model_fits_loss(cfg: DictConfig) -> None:
    """The network must be a generator (L → ab/bins) that can serve the loss: cGAN needs full resolution."""
    cls = net_class(cfg)
    model = _choice_name(cfg, "model")
    if getattr(cls, "output_stride", None) is None:
        raise ConfigError(
            f"model.net._target_={cls.__name__} is not a colorization generator (no output_stride; "
            f"a discriminator cannot colorize); choose model in: {_full_list(model_options(), 0)}"
        )
    if bool(OmegaConf.select(cfg, "loss.full_resolution", default=False)) and cls.output_stride != 1:
        loss = _choice_name(cfg, "loss")
        allowed = _full_list(model_options(), 1)
        raise ConfigError(
            f"model={model} cannot serve loss={loss}: {cls.__name__} predicts at 1/{cls.output_stride} "
            f"resolution but the cGAN discriminator judges full-resolution (L, ab) pairs; choose model in: "
            f"{allowed} or loss in: l2, l1, rebalanced_ce"
        )


def _full_list(options: dict[str, type | None], stride: int) -> str:
    """Comma-separated model options whose networks are generators (stride 1 only when `stride`=1)."""
    names = [
        name
        for name, cls in sorted(options.items())
        if cls is not None
        and getattr(cls, "output_stride", None) is not None
        and (stride == 0 or cls.output_stride == stride)
    ]
    return ", ".join(names) if names else "a generator network"


def size_multiple(cfg: DictConfig) -> int:
    """The multiple the network needs its input size to be: a class attribute, or for U-Nets derived from
    their arguments (2**num_downs for the pix2pix encoder, 32 for a ResNet encoder)."""
    cls = net_class(cfg)
    value = getattr(cls, "size_multiple", None)
    if isinstance(value, int):
        return max(1, value)
    import inspect

    params = inspect.signature(cls).parameters
    spec = cfg.model.net

    def arg(name: str) -> Any:
        if name in spec:
            return spec[name]
        default = params[name].default if name in params else None
        return None if default is inspect.Parameter.empty else default

    if "encoder" in params and arg("encoder"):
        return 32
    if "num_downs" in params and arg("num_downs") is not None:
        return 2 ** int(arg("num_downs"))
    return 1


def check_image_size(cfg: DictConfig) -> None:
    """data.image_size must be positive and a multiple of the network's size_multiple."""
    size = OmegaConf.select(cfg, "data.image_size", default=None)
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ConfigError(f"data.image_size={size!r} must be a positive integer")
    multiple = size_multiple(cfg)
    if size % multiple:
        lower, upper = (size // multiple) * multiple, (size // multiple + 1) * multiple
        near = ", ".join(str(v) for v in (lower, upper) if v > 0)
        raise ConfigError(
            f"data.image_size={size} must be a multiple of {multiple} "
            f"for model={_choice_name(cfg, 'model')}; "
            f"allowed values near it: {near}"
        )


def check_loss(cfg: DictConfig) -> None:
    """λ in [0, 1], temperatures > 0, λ_L1 ≥ 0, k ≥ 1, σ > 0 and the objective's named choices."""
    lam = _number(cfg, "loss.lambda")
    if lam is not None and not 0.0 <= lam <= 1.0:
        raise ConfigError(f"loss.lambda={lam:g} is out of range; allowed values: 0 <= lambda <= 1")
    temperature = _number(cfg, "loss.temperature")
    if temperature is not None and temperature <= 0:
        raise ConfigError(f"loss.temperature={temperature:g} is out of range; allowed values: T > 0")
    temps = OmegaConf.select(cfg, "loss.eval_temperatures", default=None)
    if temps is not None:
        if not isinstance(temps, ListConfig | list) or not all(
            isinstance(t, int | float) and not isinstance(t, bool) and t > 0 for t in temps
        ):
            raise ConfigError(
                f"loss.eval_temperatures={list(temps) if temps else temps} must be a list of T > 0"
            )
    lambda_l1 = _number(cfg, "loss.lambda_l1")
    if lambda_l1 is not None and lambda_l1 < 0:
        raise ConfigError(f"loss.lambda_l1={lambda_l1:g} is out of range; allowed values: lambda_l1 >= 0")
    k = OmegaConf.select(cfg, "loss.k", default=None)
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ConfigError(f"loss.k={k!r} is out of range; allowed values: integer k >= 1")
    sigma = _number(cfg, "loss.sigma")
    if sigma is not None and sigma <= 0:
        raise ConfigError(f"loss.sigma={sigma:g} is out of range; allowed values: sigma > 0")
    steps = OmegaConf.select(cfg, "loss.pretrain_steps", default=None)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
        raise ConfigError(f"loss.pretrain_steps={steps!r} is out of range; allowed values: integer >= 0")
    _choice(cfg, "loss.gan_mode", GAN_MODES)
    _choice(cfg, "loss.prior", PRIORS)
    _choice(cfg, "loss.gamut", GAMUTS)
    _choice(cfg, "loss.module.loss", REGRESSION_LOSSES)


def check_model(cfg: DictConfig) -> None:
    """model.width > 0 and a known network."""
    width = _number(cfg, "model.width")
    if width is not None and width <= 0:
        raise ConfigError(
            f"model.width={width:g} is out of range; allowed values: width > 0 (1 = the paper's)"
        )
    check_model_fits_loss(cfg)


def check_data(cfg: DictConfig) -> None:
    """Batch size and workers are non-negative integers where given."""
    for key, low in (("data.batch_size", 1), ("data.num_workers", 0)):
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ConfigError(f"{key}={value!r} is out of range; allowed values: integer >= {low}")


def check_trainer(cfg: DictConfig) -> None:
    """max_steps is -1 or positive; max_epochs is -1 or positive."""
    for key in ("trainer.max_steps", "trainer.max_epochs"):
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and value != -1):
            raise ConfigError(
                f"{key}={value!r} is out of range; allowed values: -1 (no limit) or integer >= 1"
            )


#: Largest learning rate accepted: beyond it Adam's bias-corrected step overflows float32 (a RuntimeError
#: deep inside the optimiser); anything near it diverges anyway, which the loss guard reports.
MAX_LR = 1e30
OPTIMIZER_KEYS = ("optimizer", "loss.g_optimizer", "loss.d_optimizer")


def check_optimizers(cfg: DictConfig) -> None:
    """Every optimiser spec's learning rate is a finite number in (0, MAX_LR]."""
    for key in OPTIMIZER_KEYS:
        if OmegaConf.select(cfg, key, default=None) is None:
            continue
        lr = _number(cfg, f"{key}.lr")
        if lr is not None and not 0.0 < lr <= MAX_LR:
            raise ConfigError(f"{key}.lr={lr:g} is out of range; allowed values: 0 < lr <= {MAX_LR:g}")


def check_ckpt_path(cfg: DictConfig, key: str = "ckpt_path") -> None:
    """A checkpoint to resume from must exist."""
    value = OmegaConf.select(cfg, key, default=None)
    if value is None:
        return
    paths: list[Any] = list(value) if isinstance(value, ListConfig | list) else [value]
    for path in paths:
        if str(path) in ("last", "best", "hpc"):  # Lightning's own keywords
            continue
        if not Path(str(path)).is_file():
            raise ConfigError(f"{key}={path}: no such checkpoint file")


def validate_train_config(cfg: DictConfig) -> None:
    """Every check of a training configuration; raises ConfigError with one line on the first failure."""
    check_loss(cfg)
    check_model(cfg)
    check_image_size(cfg)
    check_data(cfg)
    check_trainer(cfg)
    check_optimizers(cfg)
    check_ckpt_path(cfg)
