"""Training-step benchmark: Lightning step vs a bare PyTorch loop, and the classification loss's share.

1. The same net, loss (the objective's own `compute_loss`), optimiser and batch, trained for --steps steps
   after --warmup steps, once by a bare loop and once by `Trainer.fit`; prints both times and the ratio
   (target <= 1.05).
2. For the classification objective at --share-size px with ZhangNet width --share-width (default 224 px,
   width 1): the share of the step spent in soft encoding + rebalanced cross-entropy (target <= 5%).

    python benchmarks/train_step.py                                  # CPU, small defaults
    python benchmarks/train_step.py --device cuda --bf16 --channels-last --size 224 --batch 32
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from colorization.color import lab_batch
from colorization.data.synthetic import synthetic_batch
from colorization.objectives import ClassificationModule, RegressionModule

NETS = {
    "zhang": "colorization.nets.ZhangNet",
    "cnn": "colorization.nets.BaselineCNN",
    "unet": "colorization.nets.UNetGenerator",
}


class Repeat(IterableDataset):
    """The same batch, `n` times (no collation: the loader is used with batch_size=None)."""

    def __init__(self, batch: dict[str, torch.Tensor], n: int) -> None:
        self.batch, self.n = batch, n

    def __iter__(self):
        for _ in range(self.n):
            yield self.batch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_batch(size: int, batch: int, device: torch.device, channels_last: bool) -> dict[str, torch.Tensor]:
    n = min(batch, 8)
    rgb, _ = synthetic_batch(n, size, seed=0)
    rgb = rgb.repeat((batch + n - 1) // n, 1, 1, 1)[:batch]
    L, ab = lab_batch(rgb)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return {k: v.to(device).contiguous(memory_format=fmt) for k, v in {"L": L, "ab": ab, "rgb": rgb}.items()}


def make_module(args: argparse.Namespace, objective: str, net: str, width: float):
    spec = {"_target_": NETS[net], "width": width}
    if net == "unet":
        spec["num_downs"] = 5
    opt = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-4}
    torch.manual_seed(0)
    if objective == "classification":
        return ClassificationModule(
            spec, opt, prior="uniform", eval_temperatures=[], perceptual_metrics=False
        )
    return RegressionModule(spec, opt, perceptual_metrics=False)


def autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def bare_loop(module, batch, args, device) -> float:
    """Seconds for --steps steps of a plain loop (after --warmup), same net/loss/optimiser/loader."""
    module = module.to(device).train()
    if args.channels_last:
        module.net.to(memory_format=torch.channels_last)
    opt = module.configure_optimizers()  # the module's own optimiser, as Lightning builds it
    loader = DataLoader(Repeat(batch, args.warmup + args.steps), batch_size=None)
    t0 = 0.0
    for i, b in enumerate(loader):
        if i == args.warmup:
            sync(device)
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast(device, args.bf16):
            loss = module.compute_loss(module.net(b["L"]), b)
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - t0


class StepTimer(pl.Callback):
    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device, self.t0, self.t1 = warmup, device, 0.0, 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.warmup - 1:
            sync(self.device)
            self.t0 = time.perf_counter()
        sync(self.device)
        self.t1 = time.perf_counter()


def lightning_loop(module, batch, args, device) -> float:
    """Seconds for --steps steps of Trainer.fit (after --warmup), timed between batch ends."""
    if args.channels_last:
        module.net.to(memory_format=torch.channels_last)
    timer = StepTimer(args.warmup, device)
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if args.bf16 else "32-true",
        max_steps=args.warmup + args.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(module, DataLoader(Repeat(batch, args.warmup + args.steps), batch_size=None))
    return timer.t1 - timer.t0


def loss_share(args, device) -> dict[str, float]:
    """Mean seconds of forward, soft encoding + loss, backward and optimiser step for classification."""
    module = make_module(args, "classification", "zhang", args.share_width).to(device).train()
    if args.channels_last:
        module.net.to(memory_format=torch.channels_last)
    batch = make_batch(args.share_size, args.share_batch, device, args.channels_last)
    opt = module.configure_optimizers()  # the module's own optimiser, as Lightning builds it
    parts = {"forward": 0.0, "encode+loss": 0.0, "backward": 0.0, "step": 0.0}
    for i in range(args.share_warmup + args.share_steps):
        times = []
        sync(device)
        times.append(time.perf_counter())
        opt.zero_grad(set_to_none=True)
        with autocast(device, args.bf16):
            out = module.net(batch["L"])
            sync(device)
            times.append(time.perf_counter())
            loss = module.compute_loss(out, batch)
        sync(device)
        times.append(time.perf_counter())
        loss.backward()
        sync(device)
        times.append(time.perf_counter())
        opt.step()
        sync(device)
        times.append(time.perf_counter())
        if i >= args.share_warmup:
            for key, a, b in zip(parts, times[:-1], times[1:], strict=True):
                parts[key] += (b - a) / args.share_steps
    return parts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objective", choices=["regression", "classification"], default="classification")
    p.add_argument("--net", choices=sorted(NETS), default="zhang")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument(
        "--repeats", type=int, default=3, help="alternate bare/Lightning runs; report the best of each"
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (Lightning: precision=bf16-mixed)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--share-size", type=int, default=224)
    p.add_argument("--share-width", type=float, default=1.0)
    p.add_argument("--share-batch", type=int, default=2)
    p.add_argument("--share-steps", type=int, default=3)
    p.add_argument("--share-warmup", type=int, default=1)
    p.add_argument("--skip-share", action="store_true")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    batch = make_batch(args.size, args.batch, device, args.channels_last)
    print(
        f"device={device} objective={args.objective} net={args.net} width={args.width} size={args.size} "
        f"batch={args.batch} steps={args.steps} bf16={args.bf16} channels_last={args.channels_last}"
    )
    bare, light = [], []
    for _ in range(args.repeats):
        bare.append(bare_loop(make_module(args, args.objective, args.net, args.width), batch, args, device))
        light.append(
            lightning_loop(make_module(args, args.objective, args.net, args.width), batch, args, device)
        )
    b, lt = min(bare), min(light)
    ips = args.steps * args.batch
    print(
        f"bare PyTorch : {b / args.steps * 1e3:8.2f} ms/step  {ips / b:8.1f} images/s  (runs: "
        + ", ".join(f"{x / args.steps * 1e3:.1f}" for x in bare)
        + ")"
    )
    print(
        f"Lightning    : {lt / args.steps * 1e3:8.2f} ms/step  {ips / lt:8.1f} images/s  (runs: "
        + ", ".join(f"{x / args.steps * 1e3:.1f}" for x in light)
        + ")"
    )
    print(f"ratio Lightning/bare = {lt / b:.3f}  (target <= 1.05)")
    if not args.skip_share:
        parts = loss_share(args, device)
        total = sum(parts.values())
        print(
            f"classification step at {args.share_size}px, ZhangNet width {args.share_width}, "
            f"batch {args.share_batch}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in parts.items())
        )
        print(f"share of soft encoding + loss = {parts['encode+loss'] / total * 100:.2f}%  (target <= 5%)")


if __name__ == "__main__":
    main()
