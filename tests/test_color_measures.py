"""Colourfulness and the AuC of ab errors, against literal reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from colorization.color import ABGamut, ColorPrior, ab_auc, colorfulness, rebalanced_pixel_weights, rgb_to_lab


def _numpy_colorfulness(img: np.ndarray) -> float:
    """Hasler and Süsstrunk (2003) on an H×W×3 0..255 image, written out literally."""
    r, g, b = (img[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def test_colorfulness_matches_reference_on_photos() -> None:
    imgs = [skimage.data.astronaut()[::8, ::8], skimage.data.coffee()[:256:4, :256:4]]
    batch = torch.stack([torch.from_numpy(i.astype(np.float32) / 255).permute(2, 0, 1) for i in imgs])
    got = colorfulness(batch)
    assert got.shape == (2,)
    for value, img in zip(got.tolist(), imgs, strict=True):
        assert value == pytest.approx(_numpy_colorfulness(img), rel=1e-4)


def test_colorfulness_of_gray_is_zero_and_grows_with_saturation() -> None:
    gray = torch.rand(1, 1, 16, 16).expand(1, 3, 16, 16)
    assert float(colorfulness(gray)) == pytest.approx(0.0, abs=1e-3)
    base = torch.rand(1, 3, 16, 16)
    mean = base.mean(1, keepdim=True)
    values = [float(colorfulness(mean + s * (base - mean))) for s in (0.0, 0.25, 0.5, 1.0)]
    assert values == sorted(values) and values[0] < 1e-3 < values[1]
    assert colorfulness(base[0]).shape == (1,)


def _reference_auc(pred: torch.Tensor, true: torch.Tensor, weights=None) -> np.ndarray:
    err = np.sqrt(((pred.double() - true.double()).numpy() ** 2).sum(1))  # B×H×W
    w = np.ones_like(err) if weights is None else weights.double().numpy()
    curves = [((err <= t) * w).sum((1, 2)) / w.sum((1, 2)) for t in range(151)]
    return np.mean(curves, axis=0)


def test_ab_auc_matches_threshold_loop() -> None:
    torch.manual_seed(0)
    true = (torch.rand(3, 2, 10, 10) - 0.5) * 200
    pred = true + torch.randn_like(true) * torch.tensor([5.0, 30.0, 90.0]).view(3, 1, 1, 1)
    pred[0, :, 0, 0] = true[0, :, 0, 0] + 7.0  # exact integer-free error, and one exactly on a threshold:
    pred[1, :, 0, 0] = true[1, :, 0, 0] + torch.tensor([6.0, 8.0])  # |e| = 10
    np.testing.assert_allclose(ab_auc(pred, true).numpy(), _reference_auc(pred, true), atol=1e-6)
    w = torch.rand(3, 10, 10)
    np.testing.assert_allclose(ab_auc(pred, true, w).numpy(), _reference_auc(pred, true, w), atol=1e-6)
    np.testing.assert_allclose(ab_auc(pred, true, w[:, None]).numpy(), ab_auc(pred, true, w).numpy())


def test_ab_auc_perfect_and_hopeless() -> None:
    true = (torch.rand(2, 2, 8, 8) - 0.5) * 200
    assert torch.allclose(ab_auc(true, true), torch.ones(2))
    assert torch.allclose(ab_auc(true + 500.0, true), torch.zeros(2))
    constant = ab_auc(true + torch.tensor([3.0, 4.0]).view(1, 2, 1, 1), true)  # every error is 5: 146 of 151
    assert torch.allclose(constant, torch.full((2,), 146 / 151))


def test_ab_auc_bad_input() -> None:
    with pytest.raises(ValueError):
        ab_auc(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError):
        ab_auc(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), weights=torch.ones(1, 3, 3))
    with pytest.raises(ValueError):
        colorfulness(torch.zeros(1, 2, 4, 4))


def test_rebalanced_pixel_weights() -> None:
    rgb = torch.from_numpy(skimage.data.chelsea()[::8, ::8].astype(np.float32) / 255).permute(2, 0, 1)[None]
    ab = rgb_to_lab(rgb)[:, 1:]
    prior = ColorPrior(ABGamut.zhang()).update(ab)
    w = rebalanced_pixel_weights(ab, prior)
    assert w.shape == (1, *ab.shape[-2:]) and (w > 0).all()
    # rare colours weigh more than common ones; with these weights the AuC is still 1 for a perfect guess
    pts = prior.gamut.points
    nearest = ((ab[0].permute(1, 2, 0)[..., None, :] - pts) ** 2).sum(-1).argmin(-1)
    p = prior.probs[nearest]
    assert float(w[0][p == p.min()].min()) == pytest.approx(float(w.max()))
    assert float(ab_auc(ab, ab, w)) == pytest.approx(1.0)
    uniform = ColorPrior.uniform(ABGamut.zhang())
    assert torch.allclose(rebalanced_pixel_weights(ab, uniform), torch.ones_like(w))
