"""Soft encoding (exact k-NN against brute force), the rebalanced loss and the annealed mean."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from colorization.color import (
    ABGamut,
    annealed_mean,
    brute_force_knn,
    nearest_bins,
    rebalanced_cross_entropy,
    rgb_to_lab,
    soft_encode,
)

ZHANG = ABGamut.zhang()


def _photo_ab(name: str, step: int = 8) -> torch.Tensor:
    img = getattr(skimage.data, name)()[::step, ::step, :3]
    rgb = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]
    return rgb_to_lab(rgb)[:, 1:]


def _numpy_knn(ab: torch.Tensor, points: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: all Q distances in float64, k smallest (N×k distances², N×Q distances²)."""
    x = ab.permute(0, 2, 3, 1).reshape(-1, 2).double().numpy()
    d2 = ((x[:, None, :] - points.double().numpy()[None]) ** 2).sum(-1)
    return np.sort(d2, axis=1)[:, :k], d2


def _assert_exact_knn(
    ab: torch.Tensor, gamut: ABGamut | torch.Tensor, k: int = 5, check: bool = True
) -> None:
    points = gamut.points if isinstance(gamut, ABGamut) else gamut
    idx, w = soft_encode(ab, gamut, k=k, check=check)
    b, _, h, wd = ab.shape
    assert idx.shape == (b, k, h, wd) and w.shape == (b, k, h, wd) and idx.dtype == torch.long
    ref_d2, all_d2 = _numpy_knn(ab, points, k)
    ours = idx.permute(0, 2, 3, 1).reshape(-1, k).numpy()
    got_d2 = np.take_along_axis(all_d2, ours, axis=1)
    # our bins are at the k smallest distances, nearest first (ties may pick either bin)
    np.testing.assert_allclose(got_d2, ref_d2, rtol=1e-5, atol=1e-4)
    # float32 distances carry a relative error of ~1e-7 of their size: ordering is checked to that precision
    assert (np.diff(got_d2, axis=1) >= -1e-3 - 1e-6 * got_d2[:, 1:]).all()
    assert all(len(set(row)) == k for row in ours[:2000])
    # where the k-th and (k+1)-th distances are apart, the sets agree exactly
    if all_d2.shape[1] > k:
        part = np.sort(all_d2, axis=1)
        clear = part[:, k] - part[:, k - 1] > 1e-3 + 1e-5 * part[:, k]
        ref_sets = np.argsort(all_d2, axis=1, kind="stable")[:, :k]
        assert (np.sort(ours[clear], 1) == np.sort(ref_sets[clear], 1)).all()
    # and they equal the stable brute force over all Q bins in float32, ties included
    pairs = ab.permute(0, 2, 3, 1).reshape(-1, 2).float()
    _, bf = brute_force_knn(pairs, points.float(), k)
    assert torch.equal(idx.permute(0, 2, 3, 1).reshape(-1, k), bf)
    # weights: Gaussian of each returned bin's (float64) distance, normalised; taken per returned bin, so
    # that bins tied to float32 precision (hypothesis finds bins 1e-5 apart) may come in either order
    sigma = 5.0
    ref_w = np.exp(-(got_d2 - got_d2.min(1, keepdims=True)) / (2 * sigma**2))
    ref_w /= ref_w.sum(1, keepdims=True)
    np.testing.assert_allclose(w.permute(0, 2, 3, 1).reshape(-1, k).numpy(), ref_w, atol=1e-5)
    assert torch.allclose(w.sum(1), torch.ones(()), atol=1e-6)


def test_random_in_gamut_values() -> None:
    torch.manual_seed(0)
    centres = ZHANG.points[torch.randint(0, 313, (2 * 24 * 24,))]
    ab = (centres + (torch.rand_like(centres) - 0.5) * 10).t().reshape(2, 2, 24, 24).transpose(0, 1)
    _assert_exact_knn(ab.contiguous(), ZHANG)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket"])
def test_real_photos(name: str) -> None:
    _assert_exact_knn(_photo_ab(name), ZHANG)


def test_out_of_gamut_and_far_values() -> None:
    torch.manual_seed(1)
    ab = (torch.rand(2, 2, 20, 20) - 0.5) * 300  # beyond the table's ±135 and the gamut
    ab[0, :, 0, :4] = torch.tensor([[1e4, -1e4, 3e5, 0.0], [0.0, 1e4, -3e5, -500.0]])
    _assert_exact_knn(ab, ZHANG, check=False)  # beyond Lab units: only with the range check opted out


def test_ties_on_grid_points_and_midpoints() -> None:
    a, b = torch.meshgrid(torch.arange(-120, 121, 5.0), torch.arange(-120, 121, 5.0), indexing="ij")
    ab = torch.stack([a, b])[None]  # bin centres, edge midpoints and 4-way corners: many exact ties
    _assert_exact_knn(ab, ZHANG)


@pytest.mark.parametrize("k", [1, 2, 5, 8, 10])
def test_other_k_and_tensor_gamut(k: int) -> None:
    torch.manual_seed(k)
    ab = (torch.rand(1, 2, 20, 20) - 0.5) * 240
    _assert_exact_knn(ab, ZHANG.points.clone(), k=k)


def test_dataset_gamut_with_holes() -> None:
    torch.manual_seed(2)
    samples = torch.cat([torch.randn(400, 2) * 15 + 30, torch.randn(200, 2) * 8 - 50])
    gamut = ABGamut.from_ab(samples)
    ab = (torch.rand(2, 2, 25, 25) - 0.5) * 260
    _assert_exact_knn(ab, gamut)


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-120, 120), st.floats(-120, 120)), min_size=6, max_size=40, unique=True),
    st.lists(st.tuples(st.floats(-200, 200), st.floats(-200, 200)), min_size=1, max_size=30),
    st.integers(1, 5),
)
def test_any_point_set_is_exact(points: list, queries: list, k: int) -> None:
    """The lookup table is exact for any bins, not only grid ones."""
    pts = torch.tensor(points, dtype=torch.float32)
    ab = torch.tensor(queries, dtype=torch.float32).t().reshape(1, 2, 1, -1)
    _assert_exact_knn(ab, ABGamut(pts), k=k)


def test_table_follows_in_place_changes_of_a_tensor_gamut() -> None:
    pts = ZHANG.points.clone()
    ab = torch.tensor([[[[0.0]], [[0.0]]]])
    assert int(nearest_bins(ab, pts)) == int(torch.argmin(pts.square().sum(1)))
    pts += 1000.0
    pts[7] = 0.0
    assert int(nearest_bins(ab, pts)) == 7


def test_nearest_bins_shapes() -> None:
    ab = _photo_ab("chelsea", step=16)
    idx_map = nearest_bins(ab, ZHANG)
    assert idx_map.shape == (1, *ab.shape[-2:])
    pairs = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    assert torch.equal(nearest_bins(pairs, ZHANG), idx_map.reshape(-1))
    assert torch.equal(idx_map, soft_encode(ab, ZHANG)[0][:, 0])


def test_bad_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="B×2×H×W"):
        soft_encode(torch.zeros(1, 3, 4, 4), ZHANG)
    with pytest.raises(ValueError, match="B×2×H×W"):
        soft_encode(torch.zeros(2, 4, 4), ZHANG)
    nan = torch.zeros(1, 2, 4, 4)
    nan[0, 1, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        soft_encode(nan, ZHANG)
    with pytest.raises(ValueError, match="Lab units"):  # the range check is on by default
        soft_encode(torch.full((1, 2, 2, 2), 500.0), ZHANG)
    with pytest.raises(ValueError, match="Lab units"):
        nearest_bins(torch.full((1, 2, 2, 2), 500.0), ZHANG)
    with pytest.raises(ValueError, match="B×2×H×W"):  # shapes are checked even with check=False
        soft_encode(torch.zeros(1, 3, 4, 4), ZHANG, check=False)
    # an explicit opt-out (the training loop's) skips the value checks and still encodes exactly
    far, _ = soft_encode(torch.full((1, 2, 2, 2), 500.0), ZHANG, check=False)
    assert torch.equal(far[:, 0], nearest_bins(torch.full((1, 2, 2, 2), 500.0), ZHANG, check=False))
    with pytest.raises(ValueError, match="k must"):
        soft_encode(torch.zeros(1, 2, 2, 2), ZHANG, k=400)
    with pytest.raises(ValueError, match="sigma"):
        soft_encode(torch.zeros(1, 2, 2, 2), ZHANG, sigma=0.0)
    with pytest.raises(ValueError, match="gamut"):
        soft_encode(torch.zeros(1, 2, 2, 2), torch.zeros(5, 3))


def dense_soft_target(indices: torch.Tensor, weights: torch.Tensor, Q: int) -> torch.Tensor:
    """The dense B×Q×H×W target of a sparse soft encoding (the loss itself never builds it)."""
    b, _, h, w = indices.shape
    return weights.new_zeros(b, Q, h, w).scatter_add_(1, indices, weights)


def test_dense_target_and_loss_match_soft_target_cross_entropy() -> None:
    torch.manual_seed(3)
    ab = (torch.rand(2, 2, 6, 7) - 0.5) * 160
    idx, w = soft_encode(ab, ZHANG)
    dense = dense_soft_target(idx, w, 313)
    assert dense.shape == (2, 313, 6, 7) and torch.allclose(dense.sum(1), torch.ones(2, 6, 7))
    logits = torch.randn(2, 313, 6, 7, requires_grad=True)
    loss = rebalanced_cross_entropy(logits, idx, w)
    ref = F.cross_entropy(logits, dense)  # PyTorch's soft-target cross-entropy, mean over pixels
    assert torch.allclose(loss, ref, atol=1e-5)
    cw = torch.rand(313) + 0.5
    weighted = rebalanced_cross_entropy(logits, idx, w, class_weights=cw)
    per_pixel = -(dense * torch.log_softmax(logits, 1)).sum(1) * cw[idx[:, 0]]
    assert torch.allclose(weighted, per_pixel.mean(), atol=1e-5)
    weighted.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_loss_rejects_mismatched_shapes() -> None:
    idx, w = soft_encode(torch.zeros(1, 2, 4, 4), ZHANG)
    with pytest.raises(ValueError):
        rebalanced_cross_entropy(torch.randn(1, 313, 8, 8), idx, w)
    with pytest.raises(ValueError):
        rebalanced_cross_entropy(torch.randn(1, 313, 4, 4), idx, w, class_weights=torch.ones(10))


def test_loss_rejects_bad_values_by_default() -> None:
    idx, w = soft_encode(torch.full((1, 2, 4, 4), 30.0), ZHANG)  # Zhang indices, up to 312
    assert int(idx.max()) >= 10
    with pytest.raises(ValueError, match=r"indices must lie in \[0, Q=10\)"):  # not a bare RuntimeError
        rebalanced_cross_entropy(torch.randn(1, 10, 4, 4), idx, w)
    with pytest.raises(ValueError, match="k=5 target bins"):  # a shape check: always on
        rebalanced_cross_entropy(torch.randn(1, 3, 4, 4), idx, w, check=False)
    with pytest.raises(ValueError, match="long"):
        rebalanced_cross_entropy(torch.randn(1, 313, 4, 4), idx.int(), w, check=False)
    nan = torch.randn(1, 313, 4, 4)
    nan[0, 7, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="logits contain NaN"):
        rebalanced_cross_entropy(nan, idx, w)
    bad_w = w.clone()
    bad_w[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="weights contain NaN"):
        rebalanced_cross_entropy(torch.randn(1, 313, 4, 4), idx, bad_w)
    # the hot path opts out: NaN logits then give a NaN loss, no check and no host sync
    assert torch.isnan(rebalanced_cross_entropy(nan, idx, w, check=False))


def test_annealed_mean_rejects_nan_logits_by_default() -> None:
    nan = torch.zeros(1, 313, 2, 2)
    nan[0, 3, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="logits contain NaN"):
        annealed_mean(nan, ZHANG)
    with pytest.raises(ValueError, match="logits contain NaN"):
        annealed_mean(nan.clone().fill_(float("-inf")), ZHANG.points)
    assert torch.isnan(annealed_mean(nan, ZHANG, check=False)).any()


def test_annealed_mean_t1_is_the_mean() -> None:
    torch.manual_seed(4)
    logits = torch.randn(2, 313, 3, 4)
    p = torch.softmax(logits, 1)
    ref = torch.einsum("bqhw,qc->bchw", p, ZHANG.points)
    assert torch.allclose(annealed_mean(logits, ZHANG, T=1.0), ref, atol=1e-4)


def test_annealed_mean_small_t_is_the_mode() -> None:
    torch.manual_seed(5)
    logits = torch.randn(2, 313, 3, 4) * 3
    top = logits.argmax(1, keepdim=True)
    logits.scatter_add_(1, top, torch.full_like(top, 0.5, dtype=logits.dtype))  # a clear mode
    mode = ZHANG.points[top[:, 0]].permute(0, 3, 1, 2)
    assert torch.allclose(annealed_mean(logits, ZHANG, T=1e-2), mode, atol=1e-3)
    # and T < 1 sharpens: the annealed mean moves from the mean towards the mode
    gap = [float((annealed_mean(logits, ZHANG, T=t) - mode).abs().mean()) for t in (1.0, 0.38, 0.1)]
    assert gap[0] > gap[1] > gap[2]


@pytest.mark.parametrize("T", [0.01, 0.38, 1.0, 3.0])
def test_annealed_mean_of_one_hot_is_its_centre(T: float) -> None:
    q = torch.tensor([0, 100, 312])
    logits = torch.full((3, 313, 1, 1), -1e4)
    logits[torch.arange(3), q] = 0.0
    out = annealed_mean(logits, ZHANG.points, T=T)[:, :, 0, 0]
    assert torch.allclose(out, ZHANG.points[q])


def test_annealed_mean_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="T must"):
        annealed_mean(torch.zeros(1, 313, 1, 1), ZHANG, T=0.0)
    with pytest.raises(ValueError, match="Q=313"):
        annealed_mean(torch.zeros(1, 300, 1, 1), ZHANG)


def test_annealed_mean_exports_to_onnx(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")

    class Decode(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("points", ZHANG.points.clone())

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return annealed_mean(z, self.points, T=0.38)

    path = tmp_path / "decode.onnx"
    torch.onnx.export(
        Decode(),
        (torch.randn(1, 313, 4, 4),),
        str(path),
        dynamo=False,
        input_names=["z"],
        output_names=["ab"],
        dynamic_axes={"z": {0: "b", 2: "h", 3: "w"}},
    )
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = torch.randn(2, 313, 5, 3)
    out = session.run(None, {"z": z.numpy()})[0]
    np.testing.assert_allclose(out, annealed_mean(z, ZHANG).numpy(), atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    ab = _photo_ab("astronaut")
    ab = torch.cat([ab, (torch.rand_like(ab) - 0.5) * 400])
    idx_c, w_c = soft_encode(ab, ZHANG)
    idx_g, w_g = soft_encode(ab.cuda(), ZHANG.to("cuda"))
    assert idx_g.device.type == "cuda"
    assert torch.equal(idx_g.cpu(), idx_c) and torch.allclose(w_g.cpu(), w_c, atol=1e-6)
    logits = torch.randn(2, 313, 8, 8)
    on_gpu = annealed_mean(logits.cuda(), ZHANG.points.cuda()).cpu()
    assert torch.allclose(on_gpu, annealed_mean(logits, ZHANG), atol=1e-3)
