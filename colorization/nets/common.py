"""Helpers shared by the networks: channel scaling, argument checks, output heads and one-time warnings."""

from __future__ import annotations

import warnings

import torch
from torch import nn

#: Keys of the fallback warnings already shown in this process (each is said once).
_WARNED: set[str] = set()

FINAL_ACTIVATIONS = (None, "tanh")


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
    """Reject impossible constructor arguments with a one-line ValueError."""
    if int(in_channels) != in_channels or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    if int(out_channels) != out_channels or out_channels < 1:
        raise ValueError(f"out_channels must be a positive integer, got {out_channels!r}")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")


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


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of `module` (all, or only those that require grad)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
