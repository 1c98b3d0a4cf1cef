"""What `python evaluate.py ckpt=PATH [data=NAME]` does: each checkpoint's own test step over a split,
through Lightning's `trainer.test`, then the report (table, metrics.json/csv, grids, T plot, report.html).

The metrics are those the module logs in training (one metric feed for training, testing and evaluation),
and a classification checkpoint's temperature sweep is its own, decoded from one pass of logits
(`temperatures=[...]` replaces the checkpoint's list for this evaluation).

Every checkpoint is checked before any work (it exists, it reads, its data config is known), and all the
bad ones are named in one line. A checkpoint whose evaluation then fails (its data is not on this machine,
say) is reported in one line and skipped: the report holds the others, and the command exits with 1.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from colorization import checks
from colorization.app import report
from colorization.app.report import CheckpointResult
from colorization.app.training import instantiate_owned
from colorization.callbacks import KeepTestImages
from colorization.errors import ColorizationError, ConfigError
from colorization.objectives import ClassificationModule, load_checkpoint, read_checkpoint, require_checkpoint

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def checkpoint_paths(cfg: DictConfig) -> list[Path]:
    """`ckpt` as a list of readable checkpoint files whose data config is known, all checked before any
    work; one ConfigError names every bad one."""
    value = cfg.get("ckpt")
    if value is None or value == "???":
        raise ConfigError("ckpt is required: python evaluate.py ckpt=PATH (or ckpt=[PATH_A,PATH_B])")
    items = list(value) if isinstance(value, ListConfig | list | tuple) else [value]
    if not items:
        raise ConfigError("ckpt=[] names no checkpoint; give ckpt=PATH or ckpt=[PATH_A,PATH_B]")
    paths: list[Path] = []
    problems: list[str] = []
    for item in items:
        try:
            path = require_checkpoint(item, "ckpt")
            read_checkpoint(path)
            data_config(cfg, path)
            paths.append(path)
        except ColorizationError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError(("; ".join(problems)) + (f" ({len(problems)} of {len(items)} checkpoints)"))
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


def ckpt_label(ckpt: Path) -> str:
    """A short readable name for a checkpoint: RUN/checkpoints/last.ckpt → RUN/last."""
    parent = ckpt.parent.parent.name if ckpt.parent.name == "checkpoints" else ckpt.parent.name
    return f"{parent}/{ckpt.stem}" if parent else ckpt.stem


def _metrics(logged: dict[str, Any], prefix: str) -> dict[str, float]:
    """{name: value} of the logged keys `prefix<name>` that have no further '/' (e.g. test/psnr)."""
    out = {}
    for key, value in logged.items():
        if key.startswith(prefix) and "/" not in key[len(prefix) :] and key != f"{prefix}loss":
            out[key[len(prefix) :]] = float(value)
    return out


def evaluate_checkpoint(
    ckpt: Path,
    datamodule: Any,
    trainer_args: dict[str, Any],
    temperatures: list[float] | None = None,
    num_grid_images: int = 8,
) -> tuple[CheckpointResult, dict[str, torch.Tensor]]:
    """Test one checkpoint on the datamodule's test split (its `test_split`) with Lightning; returns the
    result and the first images (gray L, prediction, truth) for the grid."""
    module = load_checkpoint(ckpt, key="ckpt")
    own_t = float(module.temperature) if isinstance(module, ClassificationModule) else None
    if own_t is not None and temperatures is not None:
        module.set_eval_temperatures(temperatures)
    keep = KeepTestImages(num_grid_images)
    trainer = L.Trainer(**trainer_args, callbacks=[keep])
    trainer.test(module, datamodule=datamodule, verbose=False)
    if len(keep) == 0:
        raise ConfigError(
            f"the {datamodule.test_split} split holds no images: choose split=val or split=train"
        )
    logged = dict(trainer.callback_metrics)
    metrics = _metrics(logged, "test/")
    sweep: dict[float, dict[str, float]] = {}
    if own_t is not None:
        sweep = {t: _metrics(logged, f"test/T={t:g}/") for t in module.eval_temperatures}
        sweep.setdefault(own_t, dict(metrics))
    result = CheckpointResult(
        name=ckpt_label(ckpt),
        path=str(ckpt),
        objective=type(module).__name__,
        metrics=metrics,
        sweep=dict(sorted(sweep.items())),
        temperature=own_t,
    )
    return result, keep.stacked()


def _trainer_args(cfg: DictConfig) -> dict[str, Any]:
    """A quiet one-device Trainer on the hardware group's accelerator, limited to `max_batches`."""
    max_batches = cfg.get("max_batches")
    if max_batches is not None:
        checks.integer("max_batches", max_batches, 1)
    return {
        "accelerator": str(OmegaConf.select(cfg, "trainer.accelerator", default="auto")),
        "devices": 1,
        "precision": OmegaConf.select(cfg, "trainer.precision", default="32-true"),
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "limit_test_batches": max_batches if max_batches is not None else 1.0,
        "default_root_dir": str(cfg.paths.output_dir),
    }


def run_evaluation(cfg: DictConfig) -> list[CheckpointResult]:
    """Evaluate every checkpoint of `cfg.ckpt`; write metrics.json/csv, grids, report.html to the run dir."""
    paths = checkpoint_paths(cfg)
    split = checks.choice("split", cfg.get("split", "test"), SPLITS)
    temps = cfg.get("temperatures")
    temperatures = None if temps is None else [float(t) for t in temps]
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer_args = _trainer_args(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(int(cfg.seed), verbose=False)
    results: list[CheckpointResult] = []
    failed: list[str] = []
    datamodules: dict[str, Any] = {}
    for ckpt in paths:
        try:
            data_cfg = data_config(cfg, ckpt)
            key = OmegaConf.to_yaml(data_cfg, resolve=True)
            if key not in datamodules:
                datamodules[key] = instantiate_owned(data_cfg, _convert_="all", test_split=split)
            result, images = evaluate_checkpoint(
                ckpt,
                datamodules[key],
                trainer_args,
                temperatures=temperatures,
                num_grid_images=int(cfg.get("num_grid_images", 8)),
            )
        except Exception as err:  # noqa: BLE001 - one checkpoint's failure must not lose the others' results
            if len(paths) == 1:
                raise
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"error: {ckpt}: {first} (skipped)", file=sys.stderr, flush=True)
            log.debug("evaluation of %s failed", ckpt, exc_info=True)
            failed.append(str(ckpt))
            continue
        result.grid = report.save_grid(
            images, output_dir / "grids" / f"{len(results):02d}_{_slug(result.name)}.png"
        )
        results.append(result)
    if results:
        report.write_all(results, output_dir, split=split)
    if failed:
        kept = f"; the report in {output_dir} holds the other {len(results)}" if results else ""
        raise ColorizationError(
            f"{len(failed)} of {len(paths)} checkpoints failed: {', '.join(failed)}{kept}"
        )
    return results


def _slug(text: str) -> str:
    """A file-name-safe version of `text`."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
