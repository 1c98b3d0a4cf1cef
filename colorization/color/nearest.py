"""Exact nearest ab bins of every pixel, on the pixels' device, through a lookup table per gamut.

Rather than all Q distances per pixel, the search looks up a short candidate list for the pixel's 2×2 ab
cell: a bin is listed for a cell when its distance to the cell's square is at most R_k, the k-th smallest
distance from the square's farthest point to any bin. Every point of the square has k bins within R_k, so
its k nearest bins are always listed: the result is exact for any point set, the grid only keeps the lists
short (at most 12 of Zhang's 313 bins for k = 5). The k smallest of the candidates' squared distances are
then picked by a sorting network of elementwise min/max over int64 keys (the float's bits, then the
candidate's position), so ties go to the lower bin index exactly as a stable sort over all Q would.
Pixels outside the table (far out of gamut), in a cell with a long list, or NaN take a fallback over all
Q bins; detecting them is the only host synchronisation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from colorization.color.gamut import ABGamut, as_points

__all__ = ["brute_force_knn", "nearest_bins", "nearest_k", "validate_ab"]

_CELL = 2.0  # side of a lookup cell (Lab units); cells are centred on multiples of 2
_MAX_CELLS_PER_AXIS = 160  # wider gamuts get wider cells, so that a table stays small
_COVER = 135.0  # the table covers at least ab in [-135, 135] on each axis
_MARGIN = 20.0  # and 20 units beyond the gamut's bounding box
_MAX_CANDIDATES = 48  # cells with a longer list use the brute-force fallback
_CHUNK_CPU = 1 << 14  # pixels per chunk on the CPU: keeps the M×n intermediates in cache
_CHUNK_GPU = 1 << 19  # and on an accelerator, where fewer, larger kernels win
_FAR = 1.0e4  # padding bin, never among the k nearest
_POS_BITS = 6  # candidate position packed under the distance bits of a sort key (M <= 64)


def _batcher_network(n: int) -> list[tuple[int, int]]:
    """Comparators (i < j: min to i) of Batcher's odd-even merge sort for n a power of two."""
    comps = []
    p = 1
    while p < n:
        step = p
        while step >= 1:
            for j in range(step % p, n - step, 2 * step):
                for i in range(min(step, n - j - step)):
                    if (i + j) // (2 * p) == (i + j + step) // (2 * p):
                        comps.append((i + j, i + j + step))
            step //= 2
        p *= 2
    return comps


def _selection_network(m: int, k: int) -> list[tuple[int, int]]:
    """Comparators that put the k smallest of m values, sorted, in positions 0..k-1.

    Batcher's network for the next power of two, without comparators that touch the (virtual, +inf)
    padding or cannot influence the first k outputs.
    """
    n = 1
    while n < m:
        n *= 2
    comps = [c for c in _batcher_network(n) if c[1] < m]
    need, keep = set(range(k)), []
    for c in reversed(comps):
        if c[0] in need or c[1] in need:
            keep.append(c)
            need.update(c)
    return keep[::-1]


@dataclass
class _Table:
    """Candidate lists for the cells of one gamut, for one k, on one device."""

    cell: float  # side of a cell
    a0: int  # cell index of the first row (a) and column (b)
    b0: int
    na: int
    nb: int
    m: int  # candidates per cell (padded)
    cand: torch.Tensor  # (na·nb)×m long, bin indices ascending, padded with Q
    cand_a: torch.Tensor  # m×(na·nb) float: a of each candidate (padding far away), candidate-major
    cand_b: torch.Tensor
    bad: torch.Tensor  # na·nb bool: cell needs the fallback
    positions: torch.Tensor  # m×1 int64: 0..m-1, packed into the sort keys
    network: list[tuple[int, int]]


def _build_table(points: torch.Tensor, k: int, device: torch.device) -> _Table:
    """Precompute the candidate list of every cell, once per gamut and k.

    In float64 NumPy on the CPU: a one-off of many small steps, which torch's thread pool would only slow.
    """
    pts = points.detach().to("cpu", torch.float64).numpy()
    q = pts.shape[0]
    low = np.minimum(pts.min(0) - _MARGIN, -_COVER)
    high = np.maximum(pts.max(0) + _MARGIN, _COVER)
    cell = max(_CELL, float((high - low).max()) / _MAX_CELLS_PER_AXIS)  # wide gamuts get wider cells
    half = cell / 2 + 1e-3  # slack for the float rounding of round(ab / cell)
    a0, b0 = (int(v) for v in np.floor(low / cell))
    a1, b1 = (int(v) for v in np.ceil(high / cell))
    na, nb = a1 - a0 + 1, b1 - b0 + 1
    ca = (np.arange(na) + a0) * cell
    cb = (np.arange(nb) + b0) * cell
    # squared distances are separable: from each cell's square to each bin (near) and from the square's
    # farthest point to each bin (far), one term per axis
    da = np.abs(ca[:, None] - pts[None, :, 0])  # na×Q
    db = np.abs(cb[:, None] - pts[None, :, 1])  # nb×Q
    near_a, near_b = np.maximum(da - half, 0) ** 2, np.maximum(db - half, 0) ** 2
    far_a, far_b = (da + half) ** 2, (db + half) ** 2
    mask = np.empty((na, nb, q), dtype=bool)
    for i in range(na):
        far = far_a[i][None, :] + far_b  # nb×Q
        r_k = np.partition(far, k - 1, axis=1)[:, k - 1]  # every point of the square has k bins this close
        mask[i] = near_a[i][None, :] + near_b <= r_k[:, None] * (1 + 1e-9) + 1e-9
    mask = mask.reshape(na * nb, q)
    counts = mask.sum(1)
    bad = counts > _MAX_CANDIDATES
    m = max(int(counts[~bad].max()) if (~bad).any() else k, k)
    mask[bad] = False
    rows, cols = np.nonzero(mask)  # row-major: bin indices ascend within each row
    slot = np.cumsum(mask, axis=1)[rows, cols] - 1
    cand = np.full((na * nb, m), q, dtype=np.int64)  # padded with the far bin Q
    cand[rows, slot] = cols
    ext = np.concatenate([pts.astype(np.float32), np.full((1, 2), _FAR, dtype=np.float32)])
    return _Table(
        cell=cell,
        a0=a0,
        b0=b0,
        na=na,
        nb=nb,
        m=m,
        cand=torch.from_numpy(cand).to(device),
        cand_a=torch.from_numpy(np.ascontiguousarray(ext[cand, 0].T)).to(device),
        cand_b=torch.from_numpy(np.ascontiguousarray(ext[cand, 1].T)).to(device),
        bad=torch.from_numpy(bad).to(device),
        positions=torch.arange(m, dtype=torch.int64, device=device).unsqueeze(1),
        network=_selection_network(m, k),
    )


_TABLES: OrderedDict = OrderedDict()
_MAX_TABLES = 16


def _table(gamut: ABGamut | torch.Tensor, k: int, device: torch.device) -> _Table:
    """The lookup table of a gamut for k neighbours on `device`, built once and kept in a small LRU cache.

    Keyed by the points' storage, shape and in-place version (no host sync, unlike hashing their values);
    an entry keeps its points tensor alive, so its address cannot be reused by another tensor while cached.
    An ABGamut and a module buffer holding the same tensor share one entry.
    """
    points = as_points(gamut)
    if k < 1 or k > points.shape[0]:
        raise ValueError(f"k must lie in [1, Q={points.shape[0]}], got {k}")
    key = (points.data_ptr(), tuple(points.shape), points.device, points.dtype, points._version, device, k)
    hit = _TABLES.get(key)
    if hit is not None:
        _TABLES.move_to_end(key)
        return hit[1]
    table = _build_table(points, k, device)
    _TABLES[key] = (points, table)
    while len(_TABLES) > _MAX_TABLES:
        _TABLES.popitem(last=False)
    return table


def validate_ab(ab: torch.Tensor, name: str = "ab", limit: float = 200.0) -> None:
    """Raise a one-line ValueError unless ab is a finite float B×2×H×W tensor with |a|, |b| <= limit."""
    if not isinstance(ab, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(ab).__name__}")
    if ab.ndim != 4 or ab.shape[1] != 2:
        raise ValueError(f"{name} must have shape B×2×H×W (Lab units), got {tuple(ab.shape)}")
    if not ab.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {ab.dtype}")
    if ab.numel() == 0:
        return
    if not bool(torch.isfinite(ab).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    peak = float(ab.detach().abs().amax())
    if peak > limit:
        raise ValueError(f"{name} must be in Lab units (|a|, |b| <= {limit}), got magnitude {peak:.4g}")


def brute_force_knn(pairs: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference k-NN over all Q bins: (squared distances N×k ascending, indices N×k; ties to lower index)."""
    out_d, out_i = [], []
    pa, pb = points[:, 0].to(pairs), points[:, 1].to(pairs)
    for chunk in pairs.split(_CHUNK_CPU):
        da = chunk[:, :1] - pa[None, :]
        db = chunk[:, 1:] - pb[None, :]
        d2 = da * da + db * db
        d2s, order = torch.sort(d2, dim=1, stable=True)
        out_d.append(d2s[:, :k])
        out_i.append(order[:, :k])
    if not out_d:
        return pairs.new_zeros(0, k), torch.zeros(0, k, dtype=torch.long, device=pairs.device)
    return torch.cat(out_d), torch.cat(out_i)


@contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run the CPU path on one thread, then restore the count: its ~100 small ops per chunk lose more to a
    thread pool's barriers than they gain whenever the cores are busy (training beside loader workers).
    Measured on 2 cores (benchmarks/soft_encode.py): idle, 2 threads were 15-35% faster; under load
    (loadavg 5), 1 thread took 22 ms (median) against 94 ms, with stalls up to 1.3 s, for 2 threads."""
    before = torch.get_num_threads()
    if device.type != "cpu" or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _knn_chunk(
    xa: torch.Tensor, xb: torch.Tensor, table: _Table, k: int, d2_out: torch.Tensor, idx_out: torch.Tensor
) -> torch.Tensor:
    """k nearest candidates of one chunk into d2_out, idx_out (k×n); returns the needs-fallback mask (n)."""
    ia = (torch.round(xa / table.cell) - table.a0).nan_to_num_(nan=-1.0, posinf=-1.0, neginf=-1.0)
    ib = (torch.round(xb / table.cell) - table.b0).nan_to_num_(nan=-1.0, posinf=-1.0, neginf=-1.0)
    inside = (ia >= 0) & (ia < table.na) & (ib >= 0) & (ib < table.nb)  # False for NaN and inf too
    cell = ia.clamp_(0, table.na - 1).mul_(table.nb).add_(ib.clamp_(0, table.nb - 1)).long()
    da = xa - table.cand_a.index_select(1, cell)  # M×n, candidates in ascending bin order
    db = xb - table.cand_b.index_select(1, cell)
    d2 = da.mul_(da).add_(db.mul_(db))
    # one int64 key per candidate: the float's bits (order-preserving for d2 >= 0), then its position, so
    # that the keys are distinct and ties go to the lower bin index, like a stable sort
    keys2d = d2.view(torch.int32).to(torch.int64)
    keys2d.bitwise_left_shift_(_POS_BITS).bitwise_or_(table.positions)
    keys = list(keys2d.unbind(0))
    spare = torch.empty_like(keys[0])
    for i, j in table.network:  # compare-exchange into preallocated rows: no allocation in the loop
        torch.minimum(keys[i], keys[j], out=spare)
        torch.maximum(keys[i], keys[j], out=keys[j])
        keys[i], spare = spare, keys[i]
    best = torch.stack(keys[:k])  # k×n
    d2_out.copy_((best >> _POS_BITS).to(torch.int32).view(torch.float32))
    flat = best.bitwise_and_((1 << _POS_BITS) - 1).add_(cell.unsqueeze(0) * table.m)
    idx_out.copy_(table.cand.take(flat))
    return (~inside).logical_or_(table.bad.index_select(0, cell))


def _knn(
    xa: torch.Tensor, xb: torch.Tensor, gamut: ABGamut | torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest bins of pixels with float32 coordinates xa, xb (N each).

    Returns (d² − d² of the nearest, k×N ascending; bin indices k×N), nearest first.
    """
    table = _table(gamut, k, xa.device)
    n = xa.shape[0]
    d2 = torch.empty(k, n, dtype=torch.float32, device=xa.device)
    idx = torch.empty(k, n, dtype=torch.long, device=xa.device)
    bad = torch.empty(n, dtype=torch.bool, device=xa.device)
    size = _CHUNK_CPU if xa.device.type == "cpu" else _CHUNK_GPU
    for start in range(0, n, size):
        part = slice(start, min(start + size, n))
        bad[part] = _knn_chunk(xa[part], xb[part], table, k, d2[:, part], idx[:, part])
    d2 -= d2[:1].clone()
    if n and bool(bad.any()):  # the only host sync: rare pixels far outside the gamut, or NaN
        rows = bad.nonzero().squeeze(1)
        sub = torch.stack([xa[rows], xb[rows]], 1)
        if not bool(torch.isfinite(sub).all()):
            raise ValueError("ab contains NaN or infinite values")
        points = as_points(gamut).to(xa.device)
        _, idx_bf = brute_force_knn(sub, points.float(), k)  # same arithmetic as the fast path
        # far from the bins, float32 squares lose the differences that the weights need: redo them in float64
        diff = sub.double()[:, None, :] - points.double()[idx_bf]
        d2_bf = diff.square().sum(-1)
        d2[:, rows] = (d2_bf - d2_bf[:, :1]).t().to(d2.dtype)
        idx[:, rows] = idx_bf.t()
    return d2, idx


def _coords(ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """B×2×H×W or N×2 ab to contiguous float32 a and b vectors, pixel-major."""
    if not isinstance(ab, torch.Tensor):
        raise ValueError(f"ab must be a torch.Tensor, got {type(ab).__name__}")
    if not ab.is_floating_point():
        raise ValueError(f"ab must be a floating-point tensor, got {ab.dtype}")
    ab = ab.detach()
    if ab.ndim == 4 and ab.shape[1] == 2:
        return ab[:, 0].reshape(-1).float().contiguous(), ab[:, 1].reshape(-1).float().contiguous()
    if ab.ndim == 2 and ab.shape[1] == 2:
        return ab[:, 0].float().contiguous(), ab[:, 1].float().contiguous()
    raise ValueError(f"ab must have shape B×2×H×W (Lab units), got {tuple(ab.shape)}")


def nearest_bins(ab: torch.Tensor, gamut: ABGamut | torch.Tensor, check: bool = True) -> torch.Tensor:
    """Index of the exact nearest bin of every ab pair (N×2 → N) or pixel (B×2×H×W → B×H×W).

    `check=True` (the default) validates finiteness and range (a host sync); hot paths pass False.
    """
    if not isinstance(ab, torch.Tensor):
        raise ValueError(f"ab must be a torch.Tensor, got {type(ab).__name__}")
    if check and ab.ndim in (2, 4):
        validate_ab(ab if ab.ndim == 4 else ab.t()[None, :, :, None], "ab")
    with _one_cpu_thread(ab.device):
        nearest = _knn(*_coords(ab), gamut, 1)[1][0]
    return nearest if ab.ndim == 2 else nearest.reshape(ab.shape[0], *ab.shape[2:])


def nearest_k(ab: torch.Tensor, gamut: ABGamut | torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact k nearest bins of every pixel of ab (B×2×H×W or N×2, Lab units), nearest first.

    Returns (d² − d² of the nearest, k×N ascending; bin indices k×N), pixels in B, H, W order.
    """
    with _one_cpu_thread(ab.device):
        return _knn(*_coords(ab), gamut, k)
