"""Fine-tuning: start a module's network from published weights or a checkpoint, and freeze its first blocks.

`model.init` (the objectives' `init` argument) is one of
- a registry name (colorization.nets.registry: eccv16, siggraph17): the released weights, downloaded once;
- a URL (http:// or https://) of a checkpoint, downloaded once into the weights cache (a name ending in
  -<hex>.<suffix> is SHA-256-checked against that prefix, torch hub's convention);
- a file: one of this project's Lightning checkpoints (its network's weights are taken), a state dict
  of the network (`torch.save(module.net.state_dict())`), or a copy of a released file (recognised by its
  layout).
The value's form is checked when the module is made, and a published model's network and head are
checked against the objective then too (facts known without the file); the weights are read when Lightning
starts (fit, validate, test or predict) and never when a checkpoint is restored. `model.freeze=N` keeps
the network's first N blocks (`Generator.stages()`) fixed: no gradients, and batch norm in eval mode.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from colorization import checks
from colorization.errors import ColorizationError, ConfigError
from colorization.nets.registry import (
    REGISTRY,
    PublishedModel,
    check_fits,
    fetch,
    match_release,
    read_state_dict,
    weights_dir,
)

__all__ = [
    "FineTuning",
    "InitSource",
    "check_published_fits",
    "freeze_stages",
    "init_state",
    "parse_init",
    "prefetch",
]

log = logging.getLogger(__name__)

SUFFIXES = (".ckpt", ".pth", ".pt")
_HASHED_NAME = re.compile(r".+-([0-9a-f]{8,64})\.[A-Za-z0-9]+")


@dataclass(frozen=True)
class InitSource:
    """Where a network's initial weights come from: kind "published", "url" or "file", and the value."""

    kind: str
    value: str

    @property
    def entry(self) -> PublishedModel | None:
        """The registry entry (kind "published")."""
        return REGISTRY.get(self.value) if self.kind == "published" else None


def parse_init(value: Any, key: str = "model.init") -> InitSource | None:
    """The form of a `model.init` value (None: random initialisation); ConfigError for anything else."""
    if value is None or value == "":
        return None
    allowed = f"{', '.join(REGISTRY)}, an http(s):// URL, or a {'/'.join(SUFFIXES)} file, or null"
    if not isinstance(value, str | Path):
        raise checks.not_allowed(key, value, allowed)
    text = str(value)
    if text in REGISTRY:
        return InitSource("published", text)
    if text.startswith(("http://", "https://")):
        return InitSource("url", text)
    if Path(text).suffix.lower() in SUFFIXES:
        return InitSource("file", str(Path(text).expanduser()))
    raise checks.not_allowed(key, value, allowed)


def check_published_fits(
    entry: PublishedModel,
    net_cls: type,
    net_spec: dict[str, Any],
    out_channels: int | None,
    objective: str,
    key: str = "model.init",
) -> None:
    """ConfigError unless the released network is the module's (class, constructor arguments) and its head
    gives what the objective needs (`out_channels`; None: bins not known yet, a dataset gamut)."""
    name = entry.name
    if net_cls is not entry.net_class:
        raise ConfigError(
            f"{key}={name} holds a {entry.net_class.__name__}, but model.net is {net_cls.__name__}: "
            f"choose model={'zhang' if name == 'eccv16' else name}"
        )
    for arg, released in entry.net.items():
        if arg.startswith("_"):
            continue
        ours = net_spec.get(arg, released)
        if ours != released:
            raise ConfigError(
                f"{key}={name} needs {arg}={released} as released (model.{arg}={released}), got {ours}"
            )
    if entry.objective == "classification" and out_channels is None:
        raise ConfigError(
            f"{key}={name} predicts the {entry.out_channels} bins of Zhang's gamut, but loss.gamut=dataset "
            "gives other bins: use loss.gamut=zhang"
        )
    if out_channels != entry.out_channels:
        want = (
            "loss=rebalanced_ce with loss.gamut=zhang"
            if entry.objective == "classification"
            else "loss=huber"
        )
        raise ConfigError(
            f"{key}={name}'s head gives {entry.out_channels} channels ({entry.objective}), but this "
            f"objective ({objective}) needs {out_channels}: use {want}"
        )


def _url_file(url: str) -> tuple[Path, str | None]:
    """Cache path of a downloaded checkpoint (per URL) and the SHA-256 prefix its name carries, if any."""
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "checkpoint.ckpt"
    folder = weights_dir() / f"init-{hashlib.sha1(url.encode()).hexdigest()[:12]}"
    m = _HASHED_NAME.fullmatch(name)
    return folder / name, m.group(1) if m else None


def prefetch(source: InitSource, progress: bool = True) -> Path:
    """The local file of an init source: fetched into the cache first for a registry name or a URL."""
    if source.kind == "published":
        return fetch(source.entry, progress)
    if source.kind == "url":
        from colorization.data.download import download

        dest, sha = _url_file(source.value)
        return download(source.value, dest, sha256=sha, progress=progress)
    path = Path(source.value)
    if not path.is_file():
        raise ConfigError(f"model.init={source.value}: no such file")
    return path


def _read_any(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """(network state, the module's whole state or None) of a Lightning checkpoint or a bare state dict."""
    from colorization.objectives.checkpoint import read_checkpoint

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a Lightning checkpoint may hold more than tensors: the full reader
        content = read_checkpoint(path, "model.init")
    if isinstance(content, dict) and isinstance(content.get("state_dict"), dict):
        module_state = content["state_dict"]
        net_state = {k[4:]: v for k, v in module_state.items() if k.startswith("net.")}
        return (net_state, module_state) if net_state else (module_state, None)
    if isinstance(content, dict) and content and all(isinstance(v, torch.Tensor) for v in content.values()):
        return content, None
    raise ColorizationError(f"model.init={path} is neither a checkpoint nor a state dict")


def init_state(
    source: InitSource, net: nn.Module, gamut_points: torch.Tensor | None = None, progress: bool = True
) -> dict[str, torch.Tensor]:
    """The state dict `net` starts from, checked to fit it key for key (a one-line error otherwise).

    `gamut_points`: the classification module's bins; a checkpoint trained over other bins is refused.
    """
    path = prefetch(source, progress)
    what = f"model.init={source.value} weights"
    if source.kind == "published":
        entry = source.entry
        state = entry.convert(read_state_dict(path, what), entry.name)
    else:
        state, module_state = _read_any(path)
        if module_state is not None and gamut_points is not None and "gamut_points" in module_state:
            theirs = module_state["gamut_points"]
            if theirs.shape != gamut_points.shape or not torch.equal(theirs.cpu(), gamut_points.cpu()):
                raise ColorizationError(
                    f"model.init={source.value} predicts over {len(theirs)} other ab bins than this "
                    f"objective's {len(gamut_points)}: train it with the same loss.gamut"
                )
        own = set(net.state_dict())
        if set(state) != own:
            entry = match_release(state)
            if entry is not None:
                state = entry.convert(state, entry.name)
    check_fits(net, state, what)
    return state


def freeze_stages(net: nn.Module, n: int) -> list[nn.Module]:
    """Freeze the first n of the net's `stages()`: no gradients; returns them (to keep in eval mode)."""
    stages = net.stages()[:n] if n else []
    for stage in stages:
        stage.requires_grad_(False)
        stage.eval()
    if stages:  # Lightning then notes the modules it finds in eval mode: this says why
        log.info("model.freeze=%d: the first %d blocks of %s are frozen (no gradients, eval mode)", n, n,
                 type(net).__name__)  # fmt: skip
    return stages


class FineTuning:
    """Mixin of the objectives' base module: `init` and `freeze`, validated once, applied by Lightning.

    `configure_fine_tuning` (called by the constructor) checks the values; `check_init` checks a published
    model against the head the objective builds; the weights are loaded at the start of the first fit,
    validate, test or predict (`load_init_weights`), unless a checkpoint was restored first (the base's
    `on_load_checkpoint` cancels it); `train()` keeps the frozen blocks in eval mode.
    """

    net: nn.Module | None
    net_cls: type
    net_spec: dict[str, Any]
    objective: str

    def configure_fine_tuning(self, init: Any, freeze: Any) -> None:
        """Check `init` (its form) and `freeze` (0 to the net's number of blocks) and keep them."""
        self.init_source = parse_init(init)
        self._init_pending = self.init_source is not None
        stages = int(getattr(self.net_cls, "num_stages", 0))
        self.freeze = checks.integer("model.freeze", freeze, 0)
        if self.freeze > stages:
            allowed = f"0 to {stages} (the blocks of {self.net_cls.__name__})" if stages else "0"
            raise checks.out_of_range("model.freeze", freeze, allowed)

    def check_init(self, out_channels: int | None) -> None:
        """ConfigError when a published `init` does not fit the net spec or a head of `out_channels`
        (None: not known before the data, a dataset gamut)."""
        entry = self.init_source.entry if self.init_source is not None else None
        if entry is not None:
            check_published_fits(entry, self.net_cls, self.net_spec, out_channels, self.objective)

    def init_gamut(self) -> torch.Tensor | None:
        """The bins a checkpoint used as `init` must share (classification's; None otherwise)."""
        return None

    def load_init_weights(self) -> None:
        """Load `init`'s weights into the net now (Lightning does it at the start of fit, validate, test or
        predict, unless the module was restored from a checkpoint); once."""
        if not self._init_pending or self.net is None:
            return
        trainer = getattr(self, "_trainer", None)
        if trainer is not None and trainer.world_size > 1:  # one download per node, then every rank reads
            if trainer.local_rank == 0:
                prefetch(self.init_source)
            trainer.strategy.barrier("model.init")
        state = init_state(self.init_source, self.net, self.init_gamut())
        self.net.load_state_dict(state, strict=True)
        self._init_pending = False

    def on_fit_start(self) -> None:
        """Start from `init`'s weights (after a checkpoint restore, which cancels it)."""
        self.load_init_weights()

    def on_validation_start(self) -> None:
        """Start from `init`'s weights when validating an untrained module."""
        self.load_init_weights()

    def on_test_start(self) -> None:
        """Start from `init`'s weights when testing an untrained module."""
        self.load_init_weights()

    def on_predict_start(self) -> None:
        """Start from `init`'s weights when predicting with an untrained module."""
        self.load_init_weights()

    def train(self, mode: bool = True) -> Any:
        """Switch train/eval mode; the frozen blocks stay in eval mode (their batch-norm statistics fixed)."""
        super().train(mode)  # type: ignore[misc]
        frozen = getattr(self, "freeze", 0)
        if mode and frozen and getattr(self, "net", None) is not None:
            for stage in self.net.stages()[:frozen]:
                stage.eval()
        return self
