"""A quiet one-CPU Lightning Trainer for tests: no logger, bar, summary, sanity check or checkpoints."""

from typing import Any

import lightning.pytorch as pl


def quiet_trainer(tmp_path: Any = None, **overrides: Any) -> pl.Trainer:
    """Trainer on one CPU device with everything noisy switched off; `overrides` win."""
    args: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    args.update(overrides)
    return pl.Trainer(**args)
