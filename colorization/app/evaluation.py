"""What `python evaluate.py ckpt=PATH [data=NAME]` does: metrics of one or more checkpoints on a split,
a T sweep for classification checkpoints from one pass of logits, image grids and a report."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor

from colorization.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class CheckpointResult:
    """Metrics of one checkpoint: `metrics` at its own temperature, `sweep` per T (classification only)."""

    name: str
    path: str
    objective: str
    metrics: dict[str, float]
    sweep: dict[float, dict[str, float]] = field(default_factory=dict)
    temperature: float | None = None
    grid: Path | None = None


def checkpoint_paths(cfg: DictConfig) -> list[Path]:
    """`ckpt` as a list of existing files; a missing one is a ConfigError naming it."""
    value = cfg.get("ckpt")
    if value is None or value == "???":
        raise ConfigError("ckpt is required: python evaluate.py ckpt=PATH (or ckpt=[PATH_A,PATH_B])")
    items = list(value) if isinstance(value, ListConfig | list | tuple) else [value]
    if not items:
        raise ConfigError("ckpt=[] names no checkpoint; give ckpt=PATH or ckpt=[PATH_A,PATH_B]")
    paths = [Path(str(p)).expanduser() for p in items]
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"ckpt={path}: no such checkpoint file")
    return paths


def run_config_of(ckpt: Path) -> DictConfig | None:
    """The resolved training config saved beside a checkpoint (RUN/config.yaml for RUN/checkpoints/x.ckpt)."""
    for directory in (ckpt.parent.parent, ckpt.parent):
        for candidate in (directory / "config.yaml", directory / ".hydra" / "config.yaml"):
            if candidate.is_file():
                try:
                    return OmegaConf.load(candidate)  # type: ignore[return-value]
                except Exception:  # an unreadable config is as good as none
                    return None
    return None


def data_config(cfg: DictConfig, ckpt: Path) -> DictConfig:
    """`data` from the command line, else the data the checkpoint was trained on; ConfigError if neither."""
    if cfg.get("data"):
        return cfg.data
    run_cfg = run_config_of(ckpt)
    if run_cfg is not None and run_cfg.get("data"):
        return run_cfg.data
    raise ConfigError(f"no data config for {ckpt}: pass data=NAME (e.g. data=samples)")


def choose_device(cfg: DictConfig) -> torch.device:
    """The device named by the hardware group (auto: CUDA when available)."""
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device("cpu")


def _decode(module: Any, output: Tensor, size: torch.Size, temperature: float | None) -> Tensor:
    """ab (Lab units, at `size`) from a raw net output; classification at `temperature`."""
    return module.decode_at(output, size, temperature)


def evaluate_checkpoint(
    ckpt: Path,
    datamodule: Any,
    device: torch.device,
    split: str = "test",
    temperatures: list[float] | None = None,
    max_batches: int | None = None,
    num_grid_images: int = 8,
) -> tuple[CheckpointResult, dict[str, Tensor]]:
    """Metrics of one checkpoint over a split; classification adds a T sweep from the same logits.

    Returns the result and the first images (gray, prediction, truth) for the grid.
    """
    from colorization.color import AB_NORM, l_ab_to_rgb
    from colorization.metrics import ColorizationMetrics
    from colorization.objectives import ClassificationModule, load_checkpoint

    module = load_checkpoint(str(ckpt), map_location=device).to(device).eval()
    is_classification = isinstance(module, ClassificationModule)
    own_t = float(module.temperature) if is_classification else None
    temps = sorted({float(t) for t in (temperatures or [])} | ({own_t} if own_t is not None else set()))
    if any(t <= 0 for t in temps):
        raise ConfigError(f"temperatures={temps} must all be > 0")
    main_metrics = ColorizationMetrics(perceptual=True).to(device)
    sweep_metrics = (
        {t: ColorizationMetrics(perceptual=False).to(device) for t in temps} if is_classification else {}
    )
    loader = getattr(datamodule, f"{split}_dataloader")()
    samples: dict[str, list[Tensor]] = {"L": [], "pred": [], "truth": []}
    kept = 0
    with torch.inference_mode():
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            batch = datamodule.on_after_batch_transfer(batch, 0)
            L, ab_n = batch["L"], batch["ab"]
            true_ab = ab_n.float() * AB_NORM
            true_rgb = batch["rgb"] if "rgb" in batch else l_ab_to_rgb(L, ab_n)
            weights = module.auc_pixel_weights(true_ab)
            output = module(L)  # one pass: logits or normalised ab
            pred_ab = _decode(module, output, L.shape[-2:], own_t)
            pred_rgb = l_ab_to_rgb(L.float(), pred_ab / AB_NORM)
            main_metrics.update(pred_rgb, true_rgb, pred_ab, true_ab, weights)
            for t, metrics in sweep_metrics.items():
                ab_t = pred_ab if t == own_t else _decode(module, output, L.shape[-2:], t)
                metrics.update(l_ab_to_rgb(L.float(), ab_t / AB_NORM), true_rgb, ab_t, true_ab, weights)
            if kept < num_grid_images:
                take = min(num_grid_images - kept, L.shape[0])
                samples["L"].append(L[:take].float().cpu())
                samples["pred"].append(pred_rgb[:take].float().cpu())
                samples["truth"].append(true_rgb[:take].float().cpu())
                kept += take
    if kept == 0:
        raise ConfigError(f"split={split} of the data holds no images: choose split=val or split=train")
    metrics = {k: float(v) for k, v in main_metrics.compute().items()}
    sweep = {t: {k: float(v) for k, v in m.compute().items()} for t, m in sweep_metrics.items()}
    result = CheckpointResult(
        name=ckpt_label(ckpt),
        path=str(ckpt),
        objective=type(module).__name__,
        metrics=metrics,
        sweep=sweep,
        temperature=own_t,
    )
    return result, {k: torch.cat(v) for k, v in samples.items()}


def ckpt_label(ckpt: Path) -> str:
    """A short readable name for a checkpoint: RUN/checkpoints/last.ckpt → RUN/last."""
    parent = ckpt.parent.parent.name if ckpt.parent.name == "checkpoints" else ckpt.parent.name
    return f"{parent}/{ckpt.stem}" if parent else ckpt.stem


def run_evaluation(cfg: DictConfig) -> list[CheckpointResult]:
    """Evaluate every checkpoint of `cfg.ckpt`; write metrics.json/csv, grids, report.html to the run dir."""
    from colorization.app import report

    paths = checkpoint_paths(cfg)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device = choose_device(cfg)
    split = str(cfg.get("split", "test"))
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split={split} is not allowed; allowed values: train, val, test")
    if cfg.get("seed") is not None:
        torch.manual_seed(int(cfg.seed))
    results: list[CheckpointResult] = []
    datamodules: dict[str, Any] = {}
    for ckpt in paths:
        data_cfg = data_config(cfg, ckpt)
        key = OmegaConf.to_yaml(data_cfg, resolve=True)
        if key not in datamodules:
            dm = instantiate(data_cfg)
            dm.prepare_data()
            dm.setup("test" if split == "test" else "fit")
            datamodules[key] = dm
        result, images = evaluate_checkpoint(
            ckpt,
            datamodules[key],
            device,
            split=split,
            temperatures=list(cfg.get("temperatures") or []),
            max_batches=cfg.get("max_batches"),
            num_grid_images=int(cfg.get("num_grid_images", 8)),
        )
        result.grid = report.save_grid(
            images, output_dir / "grids" / f"{len(results):02d}_{_slug(result.name)}.png"
        )
        results.append(result)
    report.write_all(results, output_dir, split=split)
    return results


def _slug(text: str) -> str:
    """A file-name-safe version of `text`."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
