"""The ab gamut and the colour prior: Zhang's 313 bins, dataset gamuts, smoothing, weights, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from colorization.color import ABGamut, ColorPrior, rgb_to_lab


@pytest.fixture(scope="module")
def zhang() -> ABGamut:
    return ABGamut.zhang()


@pytest.fixture(scope="module")
def photo_ab() -> torch.Tensor:
    img = skimage.data.chelsea()[::4, ::4]
    rgb = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]
    return rgb_to_lab(rgb)[:, 1:]


# Issue 2's table, copied from its text (not from gamut.py): for each a, the b range b_min..b_max (step 10).
_ISSUE_TABLE = """
a=-90: 50..90, -80: 20..90, -70: 0..90, -60: -20..90, -50: -30..100, -40: -40..100,
-30: -50..100, -20: -50..100, -10: -60..100, 0: -70..100, 10: -80..90, 20: -80..90,
30: -90..90, 40: -100..90, 50: -100..80, 60: -110..80, 70: -110..80, 80: -110..70,
90: -110..70, 100: -90..0
"""


def _issue_bins() -> list[tuple[float, float]]:
    bins = []
    for entry in _ISSUE_TABLE.replace("a=", "").replace("\n", " ").split(","):
        a, span = entry.split(":")
        b_min, b_max = (int(v) for v in span.split(".."))
        bins += [(float(a), float(b)) for b in range(b_min, b_max + 1, 10)]
    return bins


def test_zhang_gamut_has_313_grid_bins(zhang: ABGamut) -> None:
    pts = zhang.points
    assert len(zhang) == 313 and pts.shape == (313, 2) and pts.dtype == torch.float32
    expected = _issue_bins()
    assert len(expected) == 313  # the issue's own count
    # every bin of every column, in order (by a, then b), and nothing else
    assert [tuple(p) for p in pts.tolist()] == expected
    by_a: dict[float, list[float]] = {}
    for a, b in pts.tolist():
        by_a.setdefault(a, []).append(b)
    assert sorted(by_a) == list(range(-90, 101, 10))


def test_from_ab_counts_and_min_count() -> None:
    ab = torch.tensor([[0.0, 0.0], [4.9, -4.9], [10.2, 0.0], [10.0, 20.0], [10.0, 20.4], [-31.0, 0.0]])
    gamut = ABGamut.from_ab(ab)
    assert gamut.points.tolist() == [[-30, 0], [0, 0], [10, 0], [10, 20]]
    assert ABGamut.from_ab(ab, min_count=2).points.tolist() == [[0, 0], [10, 20]]
    with pytest.raises(ValueError):
        ABGamut.from_ab(ab, min_count=3)
    with pytest.raises(ValueError):
        ABGamut.from_ab(torch.tensor([[float("nan"), 0.0]]))


def test_from_ab_streams_batches(photo_ab: torch.Tensor) -> None:
    whole = ABGamut.from_ab(photo_ab, min_count=3)
    parts = ABGamut.from_ab(iter(photo_ab.split(10, dim=2)), min_count=3)
    assert torch.equal(whole.points, parts.points)
    # every bin of a photo's gamut is one its pixels round to
    cells = {tuple(c) for c in (torch.round(photo_ab[0].reshape(2, -1).t() / 10) * 10).tolist()}
    assert {tuple(p) for p in whole.points.tolist()} <= cells


def test_gamut_validation_and_device() -> None:
    with pytest.raises(ValueError):
        ABGamut(torch.zeros(5, 3))
    g = ABGamut.zhang()
    assert g.to("cpu") is g
    assert "313" in repr(g)


def test_prior_sums_to_one_and_streams(zhang: ABGamut, photo_ab: torch.Tensor) -> None:
    one = ColorPrior(zhang).update(photo_ab).finalize()
    streamed = ColorPrior(zhang)
    for part in photo_ab.split(7, dim=3):
        streamed.update(part)
    assert torch.allclose(one.probs.sum(), torch.tensor(1.0))
    assert torch.equal(one.counts, streamed.counts)
    assert torch.allclose(one.probs, streamed.probs)
    assert one.counts.sum() == photo_ab.shape[-1] * photo_ab.shape[-2]


def test_prior_counts_nearest_bins_and_smooths_between_bins(zhang: ABGamut, photo_ab: torch.Tensor) -> None:
    pts = zhang.points.double().numpy()
    ab = photo_ab[0].reshape(2, -1).t().double().numpy()
    nearest = ((ab[:, None, :] - pts[None]) ** 2).sum(-1).argmin(1)
    counts = np.bincount(nearest, minlength=313)
    prior = ColorPrior(zhang, sigma=0.0).update(photo_ab)
    np.testing.assert_array_equal(prior.counts.numpy(), counts)
    np.testing.assert_allclose(prior.probs.numpy(), counts / counts.sum(), rtol=1e-6)
    smooth = ColorPrior(zhang, sigma=5.0, smoothing="bins").update(photo_ab).probs.double().numpy()
    d2 = ((pts[:, None, :] - pts[None]) ** 2).sum(-1)
    ref = np.exp(-d2 / 50.0) @ counts
    np.testing.assert_allclose(smooth, ref / ref.sum(), rtol=1e-5, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.0, 1.0))
def test_weights_have_unit_expectation(lam: float) -> None:
    prior = _PRIOR
    w = prior.weights(lam)
    assert torch.isfinite(w).all() and (w > 0).all()
    assert abs(float((prior.probs.double() * w.double()).sum()) - 1.0) < 1e-5
    # rarer colours never get smaller weights
    order = torch.argsort(prior.probs)
    assert (w[order][1:] <= w[order][:-1] * (1 + 1e-5)).all()


_PRIOR = ColorPrior(ABGamut.zhang()).update(torch.randn(1, 2, 40, 40) * 25 + 10)


def test_lambda_one_gives_uniform_weights() -> None:
    assert torch.allclose(_PRIOR.weights(1.0), torch.ones(313))
    assert torch.allclose(ColorPrior.uniform(ABGamut.zhang()).weights(0.3), torch.ones(313))
    with pytest.raises(ValueError):
        _PRIOR.weights(1.5)


def test_weights_formula() -> None:
    p = _PRIOR.probs.double()
    lam = 0.5
    raw = 1.0 / ((1 - lam) * p + lam / 313)
    assert torch.allclose(_PRIOR.weights(lam).double(), raw / (p * raw).sum(), rtol=1e-5)


def test_save_load_round_trip(tmp_path, zhang: ABGamut, photo_ab: torch.Tensor) -> None:
    prior = ColorPrior(zhang).update(photo_ab).finalize()
    path = tmp_path / "prior.pt"
    prior.save(path)
    back = ColorPrior.load(path)
    assert torch.equal(back.probs, prior.probs) and torch.equal(back.gamut.points, zhang.points)
    assert torch.allclose(back.weights(0.5), prior.weights(0.5))
    (tmp_path / "junk.pt").write_bytes(b"not a prior")
    with pytest.raises(ValueError):
        ColorPrior.load(tmp_path / "junk.pt")


def test_empty_prior_is_an_error(zhang: ABGamut) -> None:
    with pytest.raises(ValueError, match="no pixels"):
        ColorPrior(zhang).finalize()
