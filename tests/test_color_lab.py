"""Lab conversion, both backends: the torch kernel (colorization.color.lab) and the numpy twin of the ONNX
path (colorization.imaging.lab), each against scikit-image (float64) on a dense RGB grid and on real
photos, forward and inverse; round trips, normalisation, the numpy gamut fit and bad input.

Tolerances: forward 1e-3 Lab units (float32 against float64; both measure about 2e-4), inverse 1e-4 in
sRGB for numpy (about 5e-6 measured) and 2e-3 for Kornia's inverse (its own rounded matrix).
"""

from __future__ import annotations

import kornia
import numpy as np
import pytest
import skimage.color
import skimage.data
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

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
from colorization.color import lab as lab_module
from colorization.imaging import lab as np_lab

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]


def _photo(name: str, step: int = 2) -> np.ndarray:
    """A scikit-image sample photo as uint8 H×W×3, subsampled for speed."""
    return getattr(skimage.data, name)()[::step, ::step, :3]


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def test_constants_are_zhangs() -> None:
    assert (L_CENT, L_NORM, AB_NORM) == (50.0, 100.0, 110.0)


def test_constants_are_defined_once_in_the_torch_free_module() -> None:
    """color.lab imports its constants from imaging.lab: one definition for both backends."""
    assert lab_module.L_CENT is np_lab.L_CENT and lab_module.L_NORM is np_lab.L_NORM
    assert lab_module.AB_NORM is np_lab.AB_NORM
    assert lab_module._XYZ_FROM_RGB is np_lab.XYZ_FROM_RGB and lab_module._WHITE is np_lab.D65_WHITE
    assert (lab_module._SRGB_KNEE, lab_module._F_EPS, lab_module._F_SLOPE) == (
        np_lab.SRGB_KNEE,
        np_lab.F_EPS,
        np_lab.F_SLOPE,
    )
    import colorization.imaging as imaging

    assert (imaging.L_CENT, imaging.L_NORM, imaging.AB_NORM) == (L_CENT, L_NORM, AB_NORM)


@pytest.mark.parametrize("name", PHOTOS)
def test_rgb_to_lab_matches_skimage(name: str) -> None:
    img = _photo(name)
    ours = rgb_to_lab(_to_tensor(img))[0].permute(1, 2, 0).numpy()
    ref = skimage.color.rgb2lab(img)  # float64 reference, D65 / 2°
    np.testing.assert_allclose(ours, ref, atol=1e-3)
    u8 = rgb_to_lab(torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).contiguous())  # lookup-table path
    np.testing.assert_allclose(u8[0].permute(1, 2, 0).numpy(), ref, atol=1e-3)
    L_n, ab_n = lab_batch(_to_tensor(img))
    np.testing.assert_allclose(L_n[0, 0].numpy() * 100 + 50, ref[..., 0], atol=1e-3)
    np.testing.assert_allclose(ab_n[0].permute(1, 2, 0).numpy() * 110, ref[..., 1:], atol=1e-3)


def _colour_grid(step: int = 4) -> torch.Tensor:
    """Every step-th value of each channel, plus 255 (a 65³ grid of the 2^24 colours), as uint8 1×3×N×65."""
    levels = torch.cat([torch.arange(0, 256, step), torch.tensor([255])]).unique()
    grid = torch.cartesian_prod(levels, levels, levels).to(torch.uint8)  # N×3
    return grid.t().reshape(1, 3, -1, len(levels)).contiguous()


def test_all_colours_match_kornia_and_skimage_within_1e_3() -> None:
    u8 = _colour_grid()
    ref = kornia.color.rgb_to_lab(u8.double() / 255)  # the formula we reimplement, in float64
    sk = skimage.color.rgb2lab(u8[0].permute(1, 2, 0).numpy())
    for rgb in (u8, u8.float() / 255, u8.double() / 255):
        lab = rgb_to_lab(rgb)
        assert (lab.double() - ref).abs().max() < 1e-3, rgb.dtype
        np.testing.assert_allclose(lab[0].permute(1, 2, 0).double().numpy(), sk, atol=1e-3)
        L_n, ab_n = lab_batch(rgb)
        assert L_n.is_contiguous() and ab_n.is_contiguous()
        assert (denormalize_l(L_n.double()) - ref[:, :1]).abs().max() < 1e-3
        assert (denormalize_ab(ab_n.double()) - ref[:, 1:]).abs().max() < 1e-3
    half = rgb_to_lab(u8.half() / 255)  # computed in float32, returned in the input's dtype like Kornia
    assert half.dtype == torch.float16 and (half.double() - ref).abs().max() < 0.1


def test_torch_lab_to_rgb_matches_skimage_on_all_colours() -> None:
    sk_lab = skimage.color.rgb2lab(_colour_grid()[0].permute(1, 2, 0).numpy())
    back = lab_to_rgb(torch.from_numpy(sk_lab).permute(2, 0, 1)[None].float())[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(back, skimage.color.lab2rgb(sk_lab), atol=2e-3)


def test_float_input_is_clamped_and_batches_are_chunked(monkeypatch) -> None:
    over = torch.tensor([1.2, -0.3, 0.5]).reshape(1, 3, 1, 1)
    clamped = over.clamp(0, 1)
    assert torch.allclose(rgb_to_lab(over, check=False), rgb_to_lab(clamped), atol=1e-6)
    photos = torch.cat([_to_tensor(_photo(name, step=4)[:64, :64]) for name in PHOTOS] * 2)  # 8 images
    monkeypatch.setattr(lab_module, "_CHUNK_PIXELS", 3 * 64 * 64)  # chunks of 3, 3 and 2 images
    lab = rgb_to_lab(photos)
    each = torch.cat([rgb_to_lab(img) for img in photos.unbind(0)])
    torch.testing.assert_close(lab, each.reshape(lab.shape))


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
    assert torch.allclose(L_n, (lab[:, :1] - 50) / 100, atol=1e-6)
    assert torch.allclose(ab_n, lab[:, 1:] / 110, atol=1e-6)
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


# --------------------------------------------------------------------------- the numpy twin (ONNX path)


def test_numpy_rgb_to_lab_matches_skimage_on_all_colours() -> None:
    u8 = _colour_grid()[0].permute(1, 2, 0).numpy()  # N×65×3 uint8
    ref = skimage.color.rgb2lab(u8)
    for rgb in (u8, u8.astype(np.float32) / 255, u8 / 255.0):
        lab = np_lab.rgb_to_lab(rgb)
        assert lab.dtype == np.float32 and lab.shape == u8.shape
        np.testing.assert_allclose(lab, ref, atol=1e-3)


@pytest.mark.parametrize("name", PHOTOS)
def test_numpy_lab_matches_skimage_on_photos(name: str) -> None:
    img = getattr(skimage.data, name)()[..., :3]  # full resolution: more pixels than one chunk
    ref = skimage.color.rgb2lab(img)
    np.testing.assert_allclose(np_lab.rgb_to_lab(img.astype(np.float32) / 255), ref, atol=1e-3)
    back = np_lab.lab_to_rgb(ref.astype(np.float32))
    assert back.dtype == np.float32 and back.shape == img.shape
    np.testing.assert_allclose(back, skimage.color.lab2rgb(ref), atol=1e-4)


def test_numpy_lab_to_rgb_matches_skimage_on_all_colours_and_round_trips() -> None:
    u8 = _colour_grid()[0].permute(1, 2, 0).numpy()
    ref = skimage.color.rgb2lab(u8)
    np.testing.assert_allclose(np_lab.lab_to_rgb(ref), skimage.color.lab2rgb(ref), atol=1e-4)
    np.testing.assert_allclose(np_lab.lab_to_rgb(np_lab.rgb_to_lab(u8)), u8 / 255.0, atol=1e-4)


def test_numpy_and_torch_conversions_agree() -> None:
    u8 = _colour_grid()
    ours = np_lab.rgb_to_lab(u8[0].permute(1, 2, 0).numpy())
    torch_lab = rgb_to_lab(u8)[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - torch_lab).max() < 1e-3
    back = lab_to_rgb(torch.from_numpy(ours).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert np.abs(np_lab.lab_to_rgb(ours) - back).max() < 2e-3
    # both normalise L and ab the same way
    L = torch.tensor([0.0, 37.5, 100.0])
    np.testing.assert_allclose((L.numpy() - np_lab.L_CENT) / np_lab.L_NORM, normalize_l(L).numpy())
    np.testing.assert_allclose(L.numpy() / np_lab.AB_NORM, normalize_ab(L).numpy())


def _max_chroma_scale(lab: np.ndarray, steps: int = 4096) -> np.ndarray:
    """Brute force with scikit-image: the largest t on a grid of steps+1 in [0, 1] keeping each colour's
    linear RGB (unclipped, D65) in [-1e-5, 1 + 1e-5] when its a, b are scaled by t."""
    from skimage.color import colorconv

    t = np.linspace(0.0, 1.0, steps + 1)
    scaled = np.repeat(lab[:, None, :].astype(np.float64), len(t), axis=1)
    scaled[..., 1:] *= t[None, :, None]
    L, a, b = scaled[..., 0], scaled[..., 1], scaled[..., 2]
    fy = (L + 16.0) / 116.0
    f = np.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, (f - 16 / 116) / 7.787) * np.asarray(np_lab.D65_WHITE)
    lin = xyz @ colorconv.rgb_from_xyz.T
    ok = ((lin >= -1e-5) & (lin <= 1 + 1e-5)).all(axis=-1)
    # in-gamut sets along a ray are intervals starting at t = 0 (gray): the last True of the prefix
    first_bad = np.where(ok.all(axis=1), len(t), np.argmin(ok, axis=1))
    return t[first_bad - 1]


def test_numpy_gamut_fit_keeps_lightness_and_hue_and_finds_the_largest_chroma() -> None:
    rng = np.random.default_rng(0)
    wild = np.stack([rng.uniform(1, 99, (50, 60)), *rng.uniform(-110, 110, (2, 50, 60))], axis=-1)
    out = np_lab.lab_to_rgb(wild.astype(np.float32))
    assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
    back = skimage.color.rgb2lab(out)
    assert np.abs(back[..., 0] - wild[..., 0]).max() < 0.05  # lightness kept exactly
    hue_in = np.arctan2(wild[..., 2], wild[..., 1])
    hue_out = np.arctan2(back[..., 2], back[..., 1])
    chroma = np.hypot(back[..., 1], back[..., 2])
    dh = np.angle(np.exp(1j * (hue_out - hue_in)))[chroma > 5]
    assert np.quantile(np.abs(dh), 0.99) < 0.1  # chroma shrunk, hue about the same
    # the chroma kept is the largest in gamut (bisection 2^-12 against a 4096-step brute force; a few
    # near-white rays leave the gamut and come back, where bisection may land on the farther piece)
    flat = wild.reshape(-1, 3)[:400]
    expected = _max_chroma_scale(flat)
    assert (expected < 1).mean() > 0.5  # most of these colours are out of gamut
    got = np.hypot(*back.reshape(-1, 3)[:400, 1:].T) / np.hypot(flat[:, 1], flat[:, 2])
    assert np.quantile(np.abs(got - expected), 0.99) < 2e-3  # 6 halvings instead of 12 give 1.5e-2


def _astronaut(size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """scikit-image's astronaut resized like colorize's tests: float32 H×W×3 in [0, 1]."""
    img = Image.fromarray(skimage.data.astronaut()).resize(size, Image.BILINEAR)
    return np.asarray(img).astype(np.float32) / 255.0


def test_numpy_lab_agrees_with_the_training_conversion() -> None:
    rgb = _astronaut()
    lab_ref = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])
    lab = np_lab.rgb_to_lab(rgb)
    assert np.abs(lab - lab_ref[0].permute(1, 2, 0).numpy()).max() < 0.05
    # Lab → RGB of the torch-free path (gamut fit) equals the torch conversion for in-gamut colours
    back = lab_to_rgb(torch.from_numpy(lab).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert np.abs(np_lab.lab_to_rgb(lab) - back).max() < 1e-3
    # and the torch-free path normalises L as the networks were trained
    L_n = normalize_l(torch.tensor([0.0, 37.5, 100.0]))
    assert np.allclose((np.array([0.0, 37.5, 100.0]) - np_lab.L_CENT) / np_lab.L_NORM, L_n.numpy())


def test_numpy_gamut_fit_is_the_plain_inverse_in_gamut() -> None:
    lab = skimage.color.rgb2lab(_astronaut()).astype(np.float32)
    assert np.abs(np_lab.lab_to_rgb(lab) - skimage.color.lab2rgb(lab)).max() < 2e-4


def test_numpy_lab_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="3 channels"):
        np_lab.rgb_to_lab(np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="3 channels"):
        np_lab.lab_to_rgb(np.zeros((3, 4, 4)))
    assert np_lab.rgb_to_lab(np.zeros((0, 3))).shape == (0, 3)
