"""Published weights: name → where the file is, what network it fits, and how its outputs are read.

    eccv16      Zhang, Isola, Efros. Colorful Image Colorization. ECCV 2016 (the PyTorch port of the
                Caffe release, `colorization_release_v2`): ZhangNet(width=1), 313 bin logits at 1/4.
    siggraph17  Zhang, Zhu, Isola, Geng, Lin, Yu, Efros. Real-Time User-Guided Image Colorization with
                Learned Deep Priors. SIGGRAPH 2017: SIGGRAPHNet(width=1), ab at full resolution, hints.

A file is downloaded once (resumable, SHA-256-checked: colorization.data.download) into torch hub's
checkpoint folder (`$TORCH_HOME/hub/checkpoints`, by default ~/.cache/torch/hub/checkpoints), under its
published name, which is where `torch.hub.load_state_dict_from_url`, and so Zhang et al.'s own code, keeps
it too. The 8 hex digits after the dash in that name start the file's SHA-256 (torch hub's convention):
that prefix is all that is published, and it is what is checked. Without network, a file fetched
elsewhere is used with `--weights PATH` (colorize, export) or `model.init=PATH` (train.py), or by copying
it into that folder. A wrong hash, or a state dict that does not fit the network, stops with one line;
nothing is loaded partially (keys and shapes are compared before any tensor is copied).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from colorization import checks, specs
from colorization.errors import ColorizationError, DataUnavailableError
from colorization.nets.zhang_release import eccv16_to_zhangnet, siggraph17_to_siggraphnet

__all__ = [
    "REGISTRY",
    "PublishedModel",
    "check_fits",
    "fetch",
    "load_published",
    "match_release",
    "published",
    "read_state_dict",
    "weights_dir",
]


@dataclass(frozen=True)
class PublishedModel:
    """One released model: the file, the network it fits, and how to read its output."""

    name: str
    paper: str
    url: str
    sha256: str  # the published prefix of the file's SHA-256 (at least 8 hex digits)
    net: dict[str, Any]  # `_target_` spec of the network, without out_channels
    out_channels: int
    objective: str  # "classification" (bin logits) or "regression" (ab/110)
    convert: Callable[[dict[str, torch.Tensor], str], dict[str, torch.Tensor]]
    gamut: str | None = None  # "zhang": the logits are over ABGamut.zhang()'s 313 bins, in its order
    temperature: float | None = None  # default annealed-mean T of colorize (classification)
    image_size: int = 256  # the size the release's demo feeds the network
    input: str = "L_n = (L - 50) / 100"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def file_name(self) -> str:
        """The file's published name (the last part of the URL), also its name in the cache."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def net_class(self) -> type:
        """The network class the weights fit."""
        return specs.target_of(self.net, f"{self.name}.net")

    @property
    def takes_hints(self) -> bool:
        """Whether the network also takes user hints (SIGGRAPH17)."""
        return bool(getattr(self.net_class, "takes_hints", False))

    def build(self) -> nn.Module:
        """The network, randomly initialised (under `torch.device("meta")`: a free shape check)."""
        return specs.build(self.net, f"{self.name}.net", out_channels=self.out_channels)


REGISTRY: dict[str, PublishedModel] = {
    "eccv16": PublishedModel(
        name="eccv16",
        paper="Zhang, Isola, Efros. Colorful Image Colorization. ECCV 2016",
        url="https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth",
        sha256="9b330a0b",
        net={"_target_": "colorization.nets.ZhangNet", "width": 1.0},
        out_channels=313,
        objective="classification",
        convert=eccv16_to_zhangnet,
        gamut="zhang",
        temperature=1.0,
        notes=(
            "the released PyTorch forward decodes the plain mean of the softmax (T = 1): the default "
            "here, so that outputs match the official demo",
            "the original Caffe demo scaled the logits by 2.606 before the softmax, i.e. T = 1/2.606 = "
            "0.38373 (--temperature 0.38373); the paper reports T = 0.38",
            "logits at 1/4 resolution; ab = 110 · (softmax → model_out) upsampled bilinearly ×4 "
            "(align_corners false): model_out.weight is the 313 bin centres / 110, checked, not loaded",
        ),
    ),
    "siggraph17": PublishedModel(
        name="siggraph17",
        paper=(
            "Zhang, Zhu, Isola, Geng, Lin, Yu, Efros. Real-Time User-Guided Image Colorization with Learned "
            "Deep Priors. SIGGRAPH 2017"
        ),
        url="https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth",
        sha256="df00044c",
        net={"_target_": "colorization.nets.SIGGRAPHNet", "width": 1.0},
        out_channels=2,
        objective="regression",
        convert=siggraph17_to_siggraphnet,
        input="L_n = (L - 50) / 100; hints: a/110, b/110 and a 0/1 mask (all zero: automatic colorization)",
        notes=(
            "ab = 110 · tanh head at full resolution; the 529-class head (model_class) is not used",
            "the released forward feeds the mask as 0/1; the authors' PyTorch training code centres it "
            "(mask - 0.5), this project follows the released forward",
        ),
    ),
}


def published(name: str, key: str = "--pretrained") -> PublishedModel:
    """The registry entry called `name`; ConfigError naming `key` and the known names otherwise."""
    return REGISTRY[checks.choice(key, name, tuple(REGISTRY))]


def weights_dir() -> Path:
    """Where published weights are cached: torch hub's checkpoint folder (honours TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def fetch(entry: PublishedModel, progress: bool = True) -> Path:
    """The entry's file in the cache, downloaded and SHA-256-checked first if it is not there (or damaged).

    Without network, or on a wrong hash (nothing is then kept), a one-line DataUnavailableError says where
    the file comes from and how to use a copy fetched elsewhere.
    """
    from colorization.data.download import download  # the project's one downloader

    dest = weights_dir() / entry.file_name
    try:
        return download(entry.url, dest, sha256=entry.sha256, progress=progress)
    except DataUnavailableError as err:
        raise DataUnavailableError(
            f"{entry.name} weights unavailable: {err}; or use a copy kept elsewhere with --weights PATH "
            "(colorize, export) or model.init=PATH (train.py)"
        ) from None


def read_state_dict(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """A state dict (name → tensor) read with torch.load(weights_only=True); one-line errors otherwise."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ColorizationError(f"{what}: no such file {path}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - zip, pickle, EOF errors all mean "not a weights file"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ColorizationError(f"{what}: cannot read {file}: {first}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ColorizationError(f"{what}: {file} is not a state dict (a mapping of names to tensors)")
    return state


def check_fits(net: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Refuse, in one line, a state dict whose keys or shapes differ from the net's (before any copy)."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", extra), ("with another shape", shapes)):
        if keys:
            shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
            problems.append(f"{len(keys)} key(s) {label}: {shown}")
    if shapes:
        k = shapes[0]
        problems.append(f"{k} is {list(state[k].shape)} in the file, {list(own[k].shape)} in the network")
    if problems:
        raise ColorizationError(f"{what} do not fit {type(net).__name__}: " + "; ".join(problems))


def load_state(net: nn.Module, state: dict[str, torch.Tensor], what: str) -> nn.Module:
    """Load `state` into `net` strictly, after `check_fits` (so a misfit changes nothing); returns net."""
    check_fits(net, state, what)
    net.load_state_dict(state, strict=True)
    return net


def match_release(state: dict[str, torch.Tensor]) -> PublishedModel | None:
    """The registry entry whose released layout `state` has (keys and shapes), or None."""
    for entry in REGISTRY.values():
        try:
            converted = entry.convert(state, entry.name)
            with torch.device("meta"):
                net = entry.build()
            check_fits(net, converted, entry.name)
        except ColorizationError:
            continue
        return entry
    return None


def load_published(
    name: str | PublishedModel, weights: str | Path | None = None, progress: bool = True
) -> tuple[nn.Module, PublishedModel]:
    """The network of a published model with its weights (from `weights`, else the cache or the URL).

    `weights` is a copy of the released file (any state dict in its layout); it is not hash-checked.
    Returns the network in eval mode and the registry entry.
    """
    entry = name if isinstance(name, PublishedModel) else published(name)
    path = Path(weights) if weights is not None else fetch(entry, progress)
    state = entry.convert(read_state_dict(path, f"{entry.name} weights"), entry.name)
    with torch.device("meta"):  # no random initialisation to throw away: the file's tensors are assigned
        net = entry.build()
    check_fits(net, state, f"{entry.name} weights ({path.name})")
    own = net.state_dict()
    state = {k: v.to(own[k].dtype) for k, v in state.items()}
    net.load_state_dict(state, strict=True, assign=True)
    return net.eval(), entry
