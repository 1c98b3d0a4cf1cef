"""The saturation enhancer: a fixed point at s = 0 and s = 1, never less saturated, hue and value kept.

Two backends, one algorithm: the torch one (colorization.color.enhance) is checked against the HSV formula
applied literally, the numpy one of the ONNX path (colorization.imaging.enhance) against the torch one to
float32 precision.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from kornia.color import hsv_to_rgb, rgb_to_hsv
from PIL import Image

from colorization.color import enhance_saturation
from colorization.imaging import enhance_saturation as enhance_saturation_np


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


PARAMS = [(0.8, 0.2, 2.0, 4.0), (0.5, 0.4, 1.5, 3.0), (0.5, 0.5, 1.0, 2.0), (2.0, 0.05, 3.0, 8.0)]


def _numpy_via_torch(rgb: np.ndarray, *params: float) -> np.ndarray:
    """The torch enhancer on a channels-last numpy image."""
    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    return enhance_saturation(x, *params)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("params", PARAMS)
def test_numpy_twin_equals_torch_to_float_precision(params: tuple[float, ...]) -> None:
    photo = skimage.data.astronaut()[::4, ::4].astype(np.float32) / 255
    small = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((64, 48), Image.BILINEAR)) / 255
    levels = np.linspace(0.0, 1.0, 18, dtype=np.float32)  # a grid of colours with gray, black and white
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 18, 3)
    for rgb in (photo, small.astype(np.float32), grid):
        ours = enhance_saturation_np(rgb, *params)
        assert ours.dtype == np.float32 and ours.shape == rgb.shape
        np.testing.assert_allclose(ours, _numpy_via_torch(rgb, *params), rtol=0, atol=1e-6)  # measured: 1 ulp


def test_numpy_twin_changes_only_saturation() -> None:
    rgb = skimage.data.coffee()[::8, ::8].astype(np.float32) / 255
    out = enhance_saturation_np(rgb)
    hsv_in, hsv_out = (rgb_to_hsv(torch.from_numpy(a).permute(2, 0, 1)[None])[0] for a in (rgb, out))
    assert torch.allclose(hsv_in[2], hsv_out[2], atol=1e-6)  # value kept
    assert (hsv_out[1] >= hsv_in[1] - 1e-6).all() and (hsv_out[1] > hsv_in[1] + 1e-3).float().mean() > 0.5
    gray = np.repeat(rgb[..., :1], 3, axis=2)
    assert np.array_equal(enhance_saturation_np(gray), gray)
    with pytest.raises(ValueError, match="3 channels"):
        enhance_saturation_np(rgb[..., :2])
