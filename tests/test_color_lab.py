"""Lab conversion: agreement with scikit-image on real photos, round trips, normalisation and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.color
import skimage.data
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from colorization.color import (
    AB_NORM,
    L_CENT,
    L_NORM,
    denormalize_ab,
    denormalize_l,
    l_ab_to_rgb,
    lab_batch,
    lab_to_rgb,
    normalize_ab,
    normalize_l,
    rgb_to_lab,
)

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]


def _photo(name: str, step: int = 2) -> np.ndarray:
    """A scikit-image sample photo as uint8 H×W×3, subsampled for speed."""
    return getattr(skimage.data, name)()[::step, ::step, :3]


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def test_constants_are_zhangs() -> None:
    assert (L_CENT, L_NORM, AB_NORM) == (50.0, 100.0, 110.0)


@pytest.mark.parametrize("name", PHOTOS)
def test_rgb_to_lab_matches_skimage(name: str) -> None:
    img = _photo(name)
    ours = rgb_to_lab(_to_tensor(img))[0].permute(1, 2, 0).numpy()
    ref = skimage.color.rgb2lab(img)  # float64 reference, D65 / 2°
    np.testing.assert_allclose(ours, ref, atol=2e-2)


@pytest.mark.parametrize("name", PHOTOS)
def test_lab_to_rgb_matches_skimage_and_round_trips(name: str) -> None:
    img = _photo(name)
    rgb = _to_tensor(img)
    lab = rgb_to_lab(rgb)
    back = lab_to_rgb(lab)
    assert torch.allclose(back, rgb, atol=2e-3)
    ref = skimage.color.lab2rgb(lab[0].permute(1, 2, 0).double().numpy())
    np.testing.assert_allclose(back[0].permute(1, 2, 0).numpy(), ref, atol=2e-3)


def test_unbatched_and_uint8_inputs() -> None:
    img = _photo("chelsea", step=8)
    rgb = _to_tensor(img)
    lab = rgb_to_lab(rgb)
    assert lab.shape == rgb.shape
    assert torch.allclose(rgb_to_lab(rgb[0]), lab[0])
    u8 = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).contiguous()
    assert torch.allclose(rgb_to_lab(u8), lab, atol=1e-4)
    assert lab_to_rgb(lab[0]).shape == (3, *rgb.shape[-2:])


def test_known_colours() -> None:
    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [1.0, 0.0, 0.0]]).t()
    lab = rgb_to_lab(rgb.reshape(3, 4, 1))[:, :, 0].t()
    assert torch.allclose(lab[0], torch.tensor([100.0, 0.0, 0.0]), atol=1e-2)
    assert torch.allclose(lab[1], torch.zeros(3), atol=1e-3)
    assert abs(lab[2, 1]) < 1e-2 and abs(lab[2, 2]) < 1e-2
    assert torch.allclose(lab[3], torch.tensor([53.24, 80.09, 67.20]), atol=5e-2)  # sRGB red


def test_normalisation_round_trip() -> None:
    L = torch.linspace(0, 100, 11)
    ab = torch.linspace(-110, 110, 11)
    assert torch.allclose(normalize_l(L)[[0, -1]], torch.tensor([-0.5, 0.5]))
    assert torch.allclose(normalize_ab(ab)[[0, -1]], torch.tensor([-1.0, 1.0]))
    assert torch.allclose(denormalize_l(normalize_l(L)), L)
    assert torch.allclose(denormalize_ab(normalize_ab(ab)), ab)


def test_lab_batch_and_back() -> None:
    rgb = _to_tensor(_photo("coffee", step=8))
    L_n, ab_n = lab_batch(rgb)
    assert L_n.shape == (1, 1, *rgb.shape[-2:]) and ab_n.shape == (1, 2, *rgb.shape[-2:])
    lab = rgb_to_lab(rgb)
    assert torch.allclose(L_n, (lab[:, :1] - 50) / 100) and torch.allclose(ab_n, lab[:, 1:] / 110)
    assert torch.allclose(l_ab_to_rgb(L_n, ab_n), rgb, atol=2e-3)
    # predictions out of range are shown, not rejected
    out = l_ab_to_rgb(L_n, ab_n * 5)
    assert out.min() >= 0 and out.max() <= 1


def test_gradients_flow() -> None:
    rgb = (torch.rand(2, 3, 4, 4) * 0.9 + 0.05).requires_grad_()
    lab_to_rgb(rgb_to_lab(rgb)).sum().backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all()


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(2, 4, 8, 8),  # four channels
        torch.rand(8, 8),  # no channel axis
        torch.rand(1, 1, 3, 8, 8),  # five dimensions
        torch.full((1, 3, 2, 2), float("nan")),
        torch.full((1, 3, 2, 2), 1.5),  # 0..255 floats passed as 0..1
        torch.full((1, 3, 2, 2), -0.2),
    ],
)
def test_rgb_to_lab_rejects_bad_input(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="rgb"):
        rgb_to_lab(bad)


def test_lab_to_rgb_rejects_bad_input() -> None:
    good = torch.zeros(1, 3, 2, 2)
    good[:, 0] = 50
    for bad in (good[:, :2], good.clone().fill_(float("nan"))):
        with pytest.raises(ValueError, match="lab"):
            lab_to_rgb(bad)
    high_l = good.clone()
    high_l[:, 0] = 150
    with pytest.raises(ValueError, match="L must lie"):
        lab_to_rgb(high_l)
    wild_ab = good.clone()
    wild_ab[:, 1] = 300
    with pytest.raises(ValueError, match="a/b"):
        lab_to_rgb(wild_ab)
    with pytest.raises(ValueError, match="l_ab_to_rgb expects"):
        l_ab_to_rgb(torch.zeros(1, 1, 2, 2), torch.zeros(1, 3, 2, 2))


def test_check_false_skips_range_but_not_shape() -> None:
    rgb_to_lab(torch.full((1, 3, 2, 2), 1.5), check=False)  # clamped, no error
    with pytest.raises(ValueError):
        rgb_to_lab(torch.rand(1, 2, 2, 2), check=False)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3))
def test_round_trip_property(colour: list[float]) -> None:
    rgb = torch.tensor(colour, dtype=torch.float32).reshape(1, 3, 1, 1)
    lab = rgb_to_lab(rgb)
    assert 0 - 1e-3 <= float(lab[0, 0]) <= 100 + 1e-3
    assert torch.allclose(lab_to_rgb(lab), rgb, atol=2e-3)
    ref = skimage.color.rgb2lab(np.array(colour, dtype=np.float64).reshape(1, 1, 3))
    np.testing.assert_allclose(lab[0, :, 0, 0].numpy(), ref[0, 0], atol=2e-2)
