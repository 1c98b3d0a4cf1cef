"""Evaluate checkpoints: `python evaluate.py ckpt=PATH [data=NAME]` or `ckpt=[PATH_A,PATH_B]`.

Prints a metrics table and writes metrics.json, metrics.csv, image grids and report.html into the run
directory (`hydra.run.dir=DIR`). Hydra composes conf/evaluate.yaml; colorization.app.evaluation works.
"""

import hydra
from omegaconf import DictConfig

from colorization.app.cli import report_errors, run_cli
from colorization.app.evaluation import run_evaluation


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
@report_errors
def main(cfg: DictConfig) -> None:
    """Evaluate every checkpoint in `ckpt` and write the tables and the report."""
    run_evaluation(cfg)


if __name__ == "__main__":
    run_cli(main, __file__)
