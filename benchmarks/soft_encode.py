"""Benchmark: exact on-the-fly soft encoding against scikit-learn's ball tree (issue 2, section 3).

    python benchmarks/soft_encode.py [--device cpu|cuda] [--repeats 15] [--threads 1,2]

Times `soft_encode` and the reference pipeline of Zhang et al.'s code (a `NearestNeighbors(n_neighbors=5,
algorithm="ball_tree")` fitted on the 313 bins: kneighbors plus the Gaussian weights, tensors in and out)
on a 32×2×56×56 batch of ab values from real photos and one of uniform random in-gamut values; checks
that the neighbour sets agree and the weights match to 1e-5; prints the ratio (target: >= 5×). Also
times encode + rebalanced loss for 32×313×56×56 logits. Runs are interleaved and the median is reported,
since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import skimage.data
import torch

from colorization.color import ABGamut, ColorPrior, rebalanced_cross_entropy, rgb_to_lab, soft_encode

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina"]


def real_batch(n: int = 32, size: int = 56, seed: int = 0) -> torch.Tensor:
    """n random size×size crops (at 1/4 resolution, as the Zhang net sees them) of scikit-image's photos."""
    gen = np.random.default_rng(seed)
    crops = []
    for i in range(n):
        img = getattr(skimage.data, PHOTOS[i % len(PHOTOS)])()[::4, ::4, :3]
        y = gen.integers(0, img.shape[0] - size + 1)
        x = gen.integers(0, img.shape[1] - size + 1)
        crops.append(
            torch.from_numpy(img[y : y + size, x : x + size].astype(np.float32) / 255).permute(2, 0, 1)
        )
    return rgb_to_lab(torch.stack(crops))[:, 1:].contiguous()


def random_in_gamut_batch(gamut: ABGamut, n: int = 32, size: int = 56, seed: int = 0) -> torch.Tensor:
    """Uniform random ab values inside the gamut's cells: a random bin plus a uniform offset in ±5."""
    gen = torch.Generator().manual_seed(seed)
    centres = gamut.points[torch.randint(0, len(gamut), (n * size * size,), generator=gen)]
    ab = centres + (torch.rand(centres.shape, generator=gen) - 0.5) * 10.0
    return ab.reshape(n, size, size, 2).permute(0, 3, 1, 2).contiguous()


def ball_tree_encode(
    nn, ab: torch.Tensor, k: int = 5, sigma: float = 5.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: scikit-learn k-NN on the CPU and the Gaussian weights, as tensors B×k×H×W."""
    b, _, h, w = ab.shape
    x = ab.permute(0, 2, 3, 1).reshape(-1, 2).cpu().double().numpy()
    dist, idx = nn.kneighbors(x)
    wts = np.exp(-(dist**2) / (2 * sigma**2))
    wts /= wts.sum(1, keepdims=True)
    to_map = lambda a: torch.from_numpy(a).reshape(b, h, w, k).permute(0, 3, 1, 2)  # noqa: E731
    return to_map(idx).to(ab.device), to_map(wts).float().to(ab.device)


def timed(fn, sync) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def agreement(ours: tuple, ref: tuple) -> tuple[float, float]:
    """Fraction of pixels whose neighbour sets agree, and the largest weight difference bin by bin."""
    idx_a, w_a = (t.cpu() for t in ours)
    idx_b, w_b = (t.cpu() for t in ref)
    sa, oa = idx_a.sort(1)
    sb, ob = idx_b.sort(1)
    same = (sa == sb).all(1)
    diff = (w_a.gather(1, oa) - w_b.gather(1, ob)).abs().amax(1)
    return float(same.float().mean()), float(diff[same].max()) if bool(same.any()) else float("nan")


def run(device: torch.device, threads: int, repeats: int, nn) -> float:
    """One full comparison with `threads` torch threads; returns the worst median ratio."""
    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    gamut = ABGamut(ABGamut.zhang().points.to(device))  # a fresh gamut: its table is built below
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, cpu count {os.cpu_count()}, "
        f"load average {load:.1f}, {repeats} interleaved repeats (median, and min)"
    )
    t_build = timed(lambda: soft_encode(torch.zeros(1, 2, 1, 1, device=device), gamut), sync)
    print(f"one-off lookup-table build for the 313 bins, k=5: {t_build * 1e3:.0f} ms")
    worst = float("inf")
    for name, ab in (
        ("real photos", real_batch()),
        ("uniform in-gamut", random_in_gamut_batch(ABGamut.zhang())),
    ):
        ab = ab.to(device)
        ours_t, ref_t = [], []
        for _ in range(repeats):  # interleaved, so that load from elsewhere hits both alike
            ours_t.append(timed(lambda ab=ab: soft_encode(ab, gamut, check=False), sync))
            ref_t.append(timed(lambda ab=ab: ball_tree_encode(nn, ab), sync))
        ours, ref = statistics.median(ours_t), statistics.median(ref_t)
        same, wdiff = agreement(soft_encode(ab, gamut), ball_tree_encode(nn, ab))
        ratio = ref / ours
        worst = min(worst, ratio)
        print(
            f"  {name:>16} {tuple(ab.shape)}: soft_encode {ours * 1e3:6.2f} ms "
            f"(min {min(ours_t) * 1e3:.2f}) | "
            f"ball tree {ref * 1e3:7.2f} ms (min {min(ref_t) * 1e3:.2f}) | {ratio:5.1f}x faster "
            f"(min/min {min(ref_t) / min(ours_t):.1f}x) | neighbour sets agree on {same * 100:.3f}% "
            f"of pixels, max weight diff {wdiff:.1e}"
        )

    torch.manual_seed(0)
    ab = real_batch().to(device)
    logits = torch.randn(32, 313, 56, 56, device=device, requires_grad=True)
    class_weights = ColorPrior(ABGamut.zhang()).update(ab.cpu()).weights(0.5).to(device)

    def step(backward: bool) -> None:
        idx, w = soft_encode(ab, gamut, check=False)
        loss = rebalanced_cross_entropy(logits, idx, w, class_weights, check=False)
        if backward:
            loss.backward()

    for backward in (False, True):
        times = [timed(lambda b=backward: step(b), sync) for _ in range(max(3, repeats // 3))]
        label = "encode + loss + backward" if backward else "encode + loss"
        print(f"  {label:>24} for 32×313×56×56 logits: {statistics.median(times) * 1e3:.1f} ms")
    print(f"  worst median ratio {worst:.1f}x (target >= 5x): {'OK' if worst >= 5 else 'BELOW TARGET'}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--threads", default="1,2", help="comma-separated torch thread counts (the ball tree uses one core)"
    )
    args = parser.parse_args()
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=5, algorithm="ball_tree").fit(ABGamut.zhang().points.double().numpy())
    for threads in (int(t) for t in args.threads.split(",")):
        run(torch.device(args.device), threads, args.repeats, nn)


if __name__ == "__main__":
    main()
