"""Augmentation of one split on the device, built from a config spec: Kornia 2D augmentations by class name.

A spec is a list of class names of ``kornia.augmentation``, each alone (its default options) or as a
one-key mapping to its keyword options, in the order they apply::

    train_aug:
      - RandomHorizontalFlip: {p: 0.5}
      - ColorJiggle: {brightness: 0.1, saturation: 0.1}
      - RandomGrayscale

A list, not a mapping, because Hydra and OmegaConf replace lists when a config or the command line sets one
(`data.train_aug=[RandomVerticalFlip]`, `data.train_aug=[]`) but merge mappings into the old value. Specs
are plain data: the DataModule keeps them in its hyperparameters (checkpoints load with ``weights_only``)
and builds the Kornia modules itself. One rule decides where each augmentation runs, so that the Lab
conversion keeps its cheapest input when it can:

- geometric augmentations (Kornia's GeometricAugmentationBase2D: flips, rotations, affine maps, crops) move
  pixels and run first, on the workers' uint8 bytes, and give bytes back. Flips (RandomHorizontalFlip,
  RandomVerticalFlip) permute the bytes as they are, with Kornia's draw of which images; the others are
  computed by Kornia on the byte values as float and rounded back (one 8-bit rounding of the interpolation).
- photometric augmentations (IntensityAugmentationBase2D: jitter, blur, noise, grayscale...) change values and
  run next, on float RGB in [0, 1], clamped back into [0, 1]; the conversion then takes its float input.

So the default horizontal flip costs one pass over the bytes, before the uint8 lookup-table conversion.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import kornia.augmentation as K
import torch

from colorization.checks import not_allowed

_FLIP_DIMS: dict[type, int] = {K.RandomHorizontalFlip: -1, K.RandomVerticalFlip: -2}
"""Kornia's flips and the dimension each reverses: pixel permutations, applied to the bytes as they are."""


def _kinds() -> dict[str, str]:
    """The kornia.augmentation class names this module builds, each with its kind (geometric, photometric)."""
    kinds = {}
    for name, cls in vars(K).items():
        if not inspect.isclass(cls) or name.endswith("Base2D"):
            continue
        if issubclass(cls, K.GeometricAugmentationBase2D):
            kinds[name] = "geometric"
        elif issubclass(cls, K.IntensityAugmentationBase2D):
            kinds[name] = "photometric"
    return dict(sorted(kinds.items()))


KINDS = _kinds()
"""Allowed augmentation names (Kornia's 2D geometric and intensity augmentations) and where each runs."""


Spec = list[dict[str, dict[str, Any]]]
"""A checked spec: one {name: {option: value}} entry per augmentation, in order."""


def plain_spec(spec: Any, key: str) -> Spec | None:
    """The spec as plain [{name: {option: value}}, ...] (None stays None), checked: names and shapes."""
    if spec is None:
        return None
    if isinstance(spec, str | Mapping) or not isinstance(spec, Sequence):
        raise not_allowed(
            key, spec, "null, [] or a list of kornia.augmentation class names, each alone or mapped to its "
            "options, e.g. [{RandomHorizontalFlip: {p: 0.5}}, RandomGrayscale]",
        )  # fmt: skip
    plain: Spec = []
    for i, entry in enumerate(spec):
        if isinstance(entry, Mapping) and len(entry) == 1:
            name, options = next(iter(entry.items()))
        else:
            name, options = entry, None
        if not isinstance(name, str) or name not in KINDS:
            allowed = f"a Kornia 2D augmentation, alone or as {{Name: {{options}}}}: {', '.join(KINDS)}"
            raise not_allowed(f"{key}.{i}", entry, allowed)
        if options is not None and not isinstance(options, Mapping):
            raise not_allowed(f"{key}.{i}.{name}", options, "null or a mapping of its options")
        plain.append({name: {str(k): v for k, v in (options or {}).items()}})
    return plain


class Augmentation:
    """The augmentation of one split: geometric steps on uint8 bytes, then photometric ones on float RGB."""

    def __init__(self, spec: Sequence[Any], key: str) -> None:
        """Build the Kornia modules of a spec (checked by plain_spec); bad options: a ConfigError on key."""
        self.spec: Spec = plain_spec(spec, key) or []
        self.geometric: list[tuple[torch.nn.Module, int | None]] = []
        photometric: list[torch.nn.Module] = []
        for i, entry in enumerate(self.spec):
            ((name, options),) = entry.items()
            try:
                module = getattr(K, name)(**options)
            except Exception as exc:  # noqa: BLE001 - Kornia raises TypeError, ValueError, RuntimeError...
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                allowed = f"the keyword arguments of kornia.augmentation.{name} (Kornia says: {reason})"
                raise not_allowed(f"{key}.{i}.{name}", options, allowed) from None
            if KINDS[name] == "geometric":
                self.geometric.append((module, _FLIP_DIMS.get(type(module))))
            else:
                photometric.append(module)
        self.photometric = torch.nn.Sequential(*photometric) if photometric else None
        self._modules = torch.nn.ModuleList([m for m, _ in self.geometric] + photometric)
        self._device = torch.device("cpu")

    def __bool__(self) -> bool:
        """Whether anything is applied."""
        return bool(self.spec)

    def __repr__(self) -> str:
        """The names, in order, for the DataModule's log line."""
        return "+".join(name for entry in self.spec for name in entry) if self.spec else "none"

    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        """uint8 B×3×H×W in; uint8 out when every step is geometric, else float RGB in [0, 1]."""
        if rgb.dtype != torch.uint8:
            raise ValueError(f"augmentation takes the loaders' uint8 batches, got {rgb.dtype}")
        if rgb.device != self._device:  # Kornia draws its random parameters on its modules' device
            self._modules.to(rgb.device)
            self._device = rgb.device
        for module, dim in self.geometric:
            if dim is not None:
                draw = module.forward_parameters(rgb.shape)["batch_prob"].to(rgb.device) > 0.5
                rgb = torch.where(draw.view(-1, 1, 1, 1), rgb.flip(dim), rgb)
            else:
                rgb = module(rgb.float()).round_().clamp_(0, 255).to(torch.uint8)
        if self.photometric is None:
            return rgb
        return self.photometric(torch.div(rgb, 255.0)).clamp_(0.0, 1.0)
