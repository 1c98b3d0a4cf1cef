"""The prior as the paper computes it (the ab histogram smoothed, then read at the bin centres), and
precomputed priors that are never smoothed again."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import adam

from colorization.color import ABGamut, ColorPrior
from colorization.errors import ConfigError
from colorization.objectives import ClassificationModule


def direct_prior(pixels: np.ndarray, points: np.ndarray, sigma: float) -> np.ndarray:
    """p_q ∝ Σ_pixels exp(−|ab − c_q|² / 2σ²), by brute force in float64."""
    d2 = ((pixels[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    p = np.exp(-d2 / (2 * sigma**2)).sum(0)
    return p / p.sum()


def test_smoothed_histogram_read_at_the_bins_equals_a_direct_computation() -> None:
    """On a known histogram (integer ab, so the 1-unit grid holds it exactly), streamed in two batches."""
    rng = np.random.default_rng(0)
    pixels = np.concatenate(
        [rng.integers(-60, 61, (500, 2)), rng.integers(20, 41, (300, 2)), [[-95, 60]] * 40]
    )
    zhang = ABGamut.zhang()
    prior = ColorPrior(zhang, sigma=5.0)
    ab = torch.from_numpy(pixels.astype(np.float32))
    prior.update(ab[:300]).update(ab[300:])
    ref = direct_prior(pixels.astype(np.float64), zhang.points.double().numpy(), 5.0)
    np.testing.assert_allclose(prior.probs.double().numpy(), ref, rtol=1e-5, atol=1e-9)
    assert prior.smoothing == "histogram" and torch.isclose(prior.probs.sum(), torch.tensor(1.0))


def test_a_precomputed_prior_is_used_as_given(tmp_path) -> None:
    """A released-style prior_probs.npy: the weights are the formula on those probabilities, unsmoothed,
    in ColorPrior and in the classification objective (loss.prior=FILE)."""
    rng = np.random.default_rng(1)
    probs = rng.random(313) ** 4
    probs /= probs.sum()
    np.save(tmp_path / "prior_probs.npy", probs)
    prior = ColorPrior.load(tmp_path / "prior_probs.npy")
    np.testing.assert_allclose(prior.probs.double().numpy(), probs, rtol=1e-6)
    lam = 0.5
    raw = 1.0 / ((1 - lam) * probs + lam / 313)
    expected = raw / (probs * raw).sum()
    np.testing.assert_allclose(prior.weights(lam).double().numpy(), expected, rtol=1e-5)
    prior.finalize()  # a given prior is never smoothed, not even when finalised again
    np.testing.assert_allclose(prior.probs.double().numpy(), probs, rtol=1e-6)
    net = {"_target_": "colorization.nets.ZhangNet", "width": 0.0625}
    module = ClassificationModule(
        net, adam(), prior=str(tmp_path / "prior_probs.npy"), perceptual_metrics=False
    )
    module.setup("fit")
    np.testing.assert_allclose(module.class_weights.double().numpy(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="takes no pixels"):
        prior.update(torch.zeros(4, 2))
    np.save(tmp_path / "short.npy", probs[:100])
    bad = ClassificationModule(net, adam(), prior=str(tmp_path / "short.npy"), perceptual_metrics=False)
    with pytest.raises(ConfigError, match="100 values, the gamut 313 bins"):
        bad.setup("fit")


def test_saved_priors_round_trip_and_old_files_keep_their_smoothing(tmp_path) -> None:
    zhang = ABGamut.zhang()
    prior = ColorPrior(zhang).update(torch.randn(1, 2, 16, 16) * 30)
    prior.save(tmp_path / "p.pt")
    back = ColorPrior.load(tmp_path / "p.pt")
    assert back.smoothing == "histogram" and torch.equal(back.probs, prior.probs)
    assert torch.equal(back.histogram, prior.histogram)  # the fine histogram survives, so updates continue
    state = prior.state_dict()
    old = {k: state[k] for k in ("points", "counts", "probs", "sigma")} | {"version": 1}
    torch.save(old, tmp_path / "old.pt")
    assert ColorPrior.load(tmp_path / "old.pt").smoothing == "bins"
