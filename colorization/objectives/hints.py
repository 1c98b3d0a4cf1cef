"""Simulated user hints for training a hint-taking network (Zhang et al., SIGGRAPH 2017), on the device.

For every image, the number of hints n follows a geometric distribution, P(n = k) = (1 − p)^k · p: with
p = 1/8 an image has no hint at all with probability 1/8, and 7 hints on average (capped at `max_hints`).
Each hint is a square patch whose side is drawn uniformly from min_patch…max_patch pixels (1–9 in the
paper), placed by a 2-D Gaussian around the image centre (standard deviation a quarter of the free
range on each axis, clipped to the image), and carrying the patch's mean ab; the mask marks the hinted
pixels, a later patch covering an earlier one. Everything is drawn and painted with tensor operations on
the batch's device (no host synchronisation); patch means come from one stride-1 average pooling per
patch side.

Two details of the authors' training code differ from the paper and are not copied: it paints squares of
side P+1 (an off-by-one in its slicing) and puts each hint at the same position in every image of a batch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from colorization import checks
from colorization.errors import ConfigError

__all__ = ["HintSampler"]


class HintSampler:
    """Draw hint planes (hint a/110, b/110, 0/1 mask: B×3×H×W) for a batch of normalised ab.

    p: stopping probability of the geometric count (1/8: P(no hints) = 1/8, mean 7); max_hints: the cap;
    min_patch, max_patch: the range of patch sides in pixels. Values are checked as `key`.<name>.
    """

    def __init__(
        self,
        p: float = 0.125,
        max_hints: int = 64,
        min_patch: int = 1,
        max_patch: int = 9,
        key: str = "hints",
    ) -> None:
        self.p = checks.number(f"{key}.p", p, "0 < p <= 1", low=0.0, high=1.0, low_open=True)
        self.max_hints = checks.integer(f"{key}.max_hints", max_hints, 0)
        self.min_patch = checks.integer(f"{key}.min_patch", min_patch, 1)
        self.max_patch = checks.integer(f"{key}.max_patch", max_patch, self.min_patch)

    @classmethod
    def from_config(cls, spec: dict[str, Any], key: str = "model.hints") -> HintSampler:
        """A sampler from a plain dict of its settings; an unknown setting is a ConfigError naming it."""
        if not isinstance(spec, dict):
            raise ConfigError(f"{key} must be a mapping of p, max_hints, min_patch, max_patch (or null)")
        allowed = ("p", "max_hints", "min_patch", "max_patch")
        for name in spec:
            if name not in allowed:
                raise checks.not_allowed(f"{key}.{name}", spec[name], f"the keys {', '.join(allowed)}")
        return cls(**spec, key=key)

    def __repr__(self) -> str:
        """The settings, for logs."""
        return (
            f"HintSampler(p={self.p:g}, max_hints={self.max_hints}, patch={self.min_patch}..{self.max_patch})"
        )

    def counts(self, batch: int, device: torch.device) -> Tensor:
        """Geometric numbers of hints per image (long B), capped at max_hints."""
        if self.p >= 1.0 or self.max_hints == 0:
            return torch.zeros(batch, dtype=torch.long, device=device)
        u = torch.rand(batch, device=device).clamp_min(torch.finfo(torch.float32).tiny)
        n = torch.floor(torch.log(u) / math.log1p(-self.p))
        return n.clamp(0, self.max_hints).long()

    def __call__(self, ab_n: Tensor) -> Tensor:
        """Hint planes B×3×H×W (the hints' normalised ab, then the mask) for normalised ab B×2×H×W."""
        b, _, h, w = ab_n.shape
        device, k = ab_n.device, self.max_hints
        ab = ab_n.float()
        if k == 0:
            return ab.new_zeros(b, 3, h, w)
        active = torch.arange(k, device=device)[None, :] < self.counts(b, device)[:, None]  # B×K
        top = min(self.max_patch, h, w)
        side = torch.randint(min(self.min_patch, top), top + 1, (b, k), device=device)

        def corner(extent: int) -> Tensor:
            free = (extent - side + 1).float()  # positions a patch of this side can start at
            start = torch.floor(free / 2 + torch.randn(b, k, device=device) * free / 4)
            return torch.minimum(start.clamp_min(0).long(), extent - side)

        y0, x0 = corner(h), corner(w)
        means = ab.new_zeros(b, k, 2)
        for s in range(min(self.min_patch, top), top + 1):  # the mean ab of every s×s patch, gathered
            pooled = F.avg_pool2d(ab, s, stride=1)  # B×2×(H−s+1)×(W−s+1)
            idx = (y0.clamp(max=h - s) * (w - s + 1) + x0.clamp(max=w - s)).clamp(0, pooled[0, 0].numel() - 1)
            got = pooled.flatten(2).gather(2, idx[:, None, :].expand(b, 2, k)).transpose(1, 2)
            means = torch.where((side == s)[..., None], got, means)
        rows = torch.arange(h, device=device)[None, None, :]
        cols = torch.arange(w, device=device)[None, None, :]
        in_rows = (rows >= y0[..., None]) & (rows < (y0 + side)[..., None]) & active[..., None]  # B×K×H
        in_cols = (cols >= x0[..., None]) & (cols < (x0 + side)[..., None])  # B×K×W
        last = torch.zeros(b, h, w, dtype=torch.long, device=device)  # 1 + the last covering hint, 0: none
        for j in range(k):  # B×H×W per hint: no B×K×H×W tensor
            box = in_rows[:, j, :, None] & in_cols[:, j, None, :]
            last = torch.where(box, j + 1, last)
        mask = last > 0
        picked = means.gather(1, (last - 1).clamp_min(0).view(b, -1, 1).expand(-1, -1, 2))  # B×HW×2
        hint_ab = picked.transpose(1, 2).reshape(b, 2, h, w) * mask[:, None]
        return torch.cat([hint_ab, mask[:, None].float()], 1).to(ab_n.dtype)
