"""The saturation enhancer: a fixed point at s = 0 and s = 1, never less saturated, hue and value kept."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from kornia.color import hsv_to_rgb, rgb_to_hsv

from colorization.color import enhance_saturation


def _reference(rgb: torch.Tensor, w=0.8, c=0.2, alpha=2.0, beta=4.0) -> torch.Tensor:
    """The formula applied literally in HSV through Kornia's conversions."""
    hsv = rgb_to_hsv(rgb)
    s = hsv[:, 1:2]
    s_new = (s * (1 + w * torch.exp(-((beta * (s - c)).abs() ** alpha)))).clamp(0, 1)
    return hsv_to_rgb(torch.cat([hsv[:, :1], s_new, hsv[:, 2:]], 1))


def test_matches_the_hsv_formula() -> None:
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 16, 16)
    assert torch.allclose(enhance_saturation(rgb), _reference(rgb), atol=1e-4)
    assert torch.allclose(
        enhance_saturation(rgb, w=0.5, c=0.5, alpha=1.0, beta=2.0),
        _reference(rgb, w=0.5, c=0.5, alpha=1.0, beta=2.0),
        atol=1e-4,
    )


def test_gray_and_fully_saturated_pixels_unchanged() -> None:
    gray = torch.rand(1, 1, 8, 8).expand(1, 3, 8, 8).contiguous()
    assert torch.equal(enhance_saturation(gray), gray)
    full = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.7, 0.2], [0.3, 0.0, 0.9]]).t().reshape(1, 3, 3, 1)
    assert torch.allclose(enhance_saturation(full), full, atol=1e-6)


def test_unbatched_input() -> None:
    rgb = torch.rand(3, 5, 6)
    assert torch.equal(enhance_saturation(rgb), enhance_saturation(rgb[None])[0])


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        enhance_saturation(torch.rand(1, 4, 3, 3))
    with pytest.raises(ValueError):
        enhance_saturation(torch.full((1, 3, 2, 2), float("nan")))
    with pytest.raises(ValueError):
        enhance_saturation(torch.full((1, 3, 2, 2), 2.0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3))
def test_never_lowers_saturation_and_keeps_hue_and_value(colour: list[float]) -> None:
    rgb = torch.tensor(colour).reshape(1, 3, 1, 1)
    out = enhance_saturation(rgb)
    h0, s0, v0 = rgb_to_hsv(rgb).flatten().tolist()
    h1, s1, v1 = rgb_to_hsv(out).flatten().tolist()
    assert s1 >= s0 - 1e-6 and s1 <= 1.0
    assert abs(v1 - v0) < 1e-6
    if s0 > 1e-3 and v0 > 1e-3:
        dh = abs(h1 - h0) % (2 * math.pi)
        assert min(dh, 2 * math.pi - dh) < 1e-3
