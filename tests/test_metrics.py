"""ColorizationMetrics against direct computations: PSNR formula, SSIM bounds, colourfulness gap, AuC."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from colorization.color import colorfulness, lab_batch
from colorization.data.synthetic import synthetic_batch
from colorization.metrics import ColorizationMetrics


@pytest.fixture(scope="module")
def scenes() -> tuple[torch.Tensor, torch.Tensor]:
    rgb, _ = synthetic_batch(4, 32, seed=3)
    _, ab = lab_batch(rgb)
    return rgb, ab * 110.0


def test_perfect_prediction(scenes) -> None:
    rgb, ab = scenes
    m = ColorizationMetrics(perceptual=False)
    m.update(rgb, rgb, ab, ab)
    out = m.compute()
    assert math.isinf(out["psnr"].item()) or out["psnr"].item() > 80
    assert out["ssim"].item() == pytest.approx(1.0, abs=1e-4)
    assert out["auc"].item() == pytest.approx(1.0)
    assert out["auc_rebalanced"].item() == pytest.approx(1.0)
    assert out["colorfulness_gap"].item() == pytest.approx(0.0, abs=1e-4)
    assert set(out) == {"psnr", "ssim", "colorfulness", "colorfulness_gap", "auc", "auc_rebalanced"}


def test_psnr_is_mean_of_per_image_psnr(scenes) -> None:
    rgb, ab = scenes
    torch.manual_seed(0)
    pred = (rgb + 0.05 * torch.randn_like(rgb) * torch.arange(1, 5).view(4, 1, 1, 1)).clamp(0, 1)
    m = ColorizationMetrics(perceptual=False)
    m.update(pred[:2], rgb[:2], ab[:2], ab[:2])  # two batches accumulate
    m.update(pred[2:], rgb[2:], ab[2:], ab[2:])
    mse = (pred - rgb).square().flatten(1).mean(1)
    expected = (10 * torch.log10(1.0 / mse)).mean()
    assert m.compute()["psnr"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert 0 < m.compute()["ssim"].item() < 1


def test_gray_prediction_colorfulness_and_gap(scenes) -> None:
    rgb, ab = scenes
    gray = rgb.mean(1, keepdim=True).expand_as(rgb)
    m = ColorizationMetrics(perceptual=False)
    m.update(gray, rgb, torch.zeros_like(ab), ab)
    out = m.compute()
    assert out["colorfulness"].item() == pytest.approx(0.0, abs=1e-3)
    assert out["colorfulness_gap"].item() == pytest.approx(colorfulness(rgb).mean().item(), rel=1e-4)
    # error of a zero prediction is the chroma: AuC = mean over pixels of (151 - ceil(chroma))+/151
    chroma = ab.norm(dim=1)
    expected = ((151 - torch.ceil(chroma)).clamp(0, 151) / 151).mean()
    assert out["auc"].item() == pytest.approx(expected.item(), rel=1e-4)


def test_rebalanced_auc_uses_pixel_weights(scenes) -> None:
    rgb, ab = scenes
    pred = ab.clone()
    pred[:, :, :16] += 200.0  # top half wrong (outside every threshold), bottom half right
    weights = torch.ones_like(ab[:, 0])
    weights[:, 16:] = 3.0  # bottom half counts 3×
    m = ColorizationMetrics(perceptual=False)
    m.update(rgb, rgb, pred, ab, weights)
    out = m.compute()
    assert out["auc"].item() == pytest.approx(0.5)
    assert out["auc_rebalanced"].item() == pytest.approx(0.75)
    m.reset()
    m.update(rgb, rgb, ab, ab)
    assert m.compute()["auc"].item() == pytest.approx(1.0)


def test_perceptual_metrics_unavailable_are_left_out(scenes, caplog) -> None:
    try:
        import lpips  # noqa: F401

        pytest.skip("lpips is installed here: nothing to leave out")
    except ImportError:
        pass
    rgb, ab = scenes
    with caplog.at_level(logging.WARNING):
        m = ColorizationMetrics(perceptual=True)
        m.update(rgb, rgb, ab, ab)
        out = m.compute()
    assert "lpips" not in out
    assert m.lpips is None
