"""What the networks share: the Generator base (output stride, input multiple), channel scaling, argument
checks, output heads and one-time warnings."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from colorization import checks

#: Keys of the fallback warnings already shown in this process (each is said once).
_WARNED: set[str] = set()

FINAL_ACTIVATIONS = (None, "tanh")


class Generator(nn.Module):
    """Base of every colorization generator: normalised L in, ab (2 channels) or bin logits (Q channels) out.

    `output_stride` is how much coarser the output is than the input (4 for Zhang's net, 1 otherwise);
    `input_multiple(**arguments)` states the multiple the input's H and W must be for the constructor
    arguments given (so a size can be checked before the network is built), and every instance carries
    its own as `size_multiple`.
    `takes_hints`: the forward also takes user hints, `forward(L, hints)` with hints B×3×H×W (hint a/110,
    b/110 and a 0/1 mask; None: none, automatic colorization). `num_stages` and `stages()`: the blocks
    from input to output that fine-tuning may freeze (`model.freeze=N` freezes the first N).
    """

    output_stride: int = 1
    size_multiple: int = 1
    takes_hints: bool = False
    num_stages: int = 0

    @classmethod
    def input_multiple(cls, **arguments: object) -> int:
        """The multiple input H and W must be for these constructor arguments (a fixed one by default)."""
        return cls.size_multiple

    def stages(self) -> list[nn.Module]:
        """The network's `num_stages` blocks, input first (none by default: nothing to freeze)."""
        return []


def warn_once(key: str, message: str) -> None:
    """Emit `message` as a UserWarning the first time `key` is seen, so a fallback is said once, clearly."""
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(message, UserWarning, stacklevel=3)


def scaled(channels: int, width: float) -> int:
    """`channels` times `width`, rounded, at least 1 (width=1 keeps the paper's size)."""
    return max(1, int(round(channels * width)))


def check_common(in_channels: int, out_channels: int, width: float) -> None:
    """Reject impossible constructor arguments with a one-line ConfigError (a ValueError)."""
    checks.integer("in_channels", in_channels, 1)
    checks.integer("out_channels", out_channels, 1)
    checks.number("width", width, "width > 0 (1 = the paper's)", low=0.0, low_open=True)


def final_activation_layer(final_activation: str | None, out_channels: int) -> nn.Module:
    """The output head's activation: tanh bounds normalised ab (regression, cGAN); None leaves raw logits.

    A bounded output only makes sense for the 2 ab channels: class logits (out_channels=Q) must stay raw,
    so asking for tanh with out_channels != 2 is an error rather than a silent change of objective.
    """
    if final_activation not in FINAL_ACTIVATIONS:
        raise ValueError(f"final_activation must be 'tanh' or None, got {final_activation!r}")
    if final_activation is None:
        return nn.Identity()
    if out_channels != 2:
        raise ValueError(
            f"final_activation='tanh' bounds the 2 ab channels; out_channels={out_channels} "
            "(class logits) needs final_activation=None"
        )
    return nn.Tanh()


def _tracing() -> bool:
    """True while the module is traced, exported or compiled (shape checks must not become graph guards)."""
    return bool(torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling())


def check_input(x: torch.Tensor, in_channels: int, size_multiple: int, name: str) -> None:
    """Raise a one-line ValueError unless `x` is B×in_channels×H×W with H, W multiples of `size_multiple`."""
    if _tracing():
        return
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{name} expects B×{in_channels}×H×W input, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % size_multiple or w % size_multiple:
        raise ValueError(
            f"{name} needs H and W divisible by {size_multiple}, got {h}×{w}: crop or resize the input"
        )
