"""Train a colorization model: `python train.py [model=zhang] [data=cats] [loss.lambda=0.5] ...`.

Hydra composes conf/train.yaml; colorization.app.training does the work. Multirun: `python train.py -m ...`.
"""

import hydra
from omegaconf import DictConfig

from colorization.app.cli import report_errors, run_cli
from colorization.app.training import run_training


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@report_errors
def main(cfg: DictConfig) -> float | None:
    """Validate, build and fit the configured model; return the optimised metric (for sweepers)."""
    return run_training(cfg)


if __name__ == "__main__":
    run_cli(main, __file__)
