"""The three objectives as LightningModules over one shared base, checkpoint loading, fine-tuning from
published weights or checkpoints (finetune), and simulated user hints (hints)."""

from colorization.objectives.base import MAIN, ABInference, ColorizationModule
from colorization.objectives.checkpoint import (
    LIGHTNING_KEYWORDS,
    load_checkpoint,
    read_checkpoint,
    require_checkpoint,
)
from colorization.objectives.classification import (
    AnnealedMeanInference,
    ClassificationModule,
    annealed_decode,
)
from colorization.objectives.gan import GANModule
from colorization.objectives.regression import RegressionModule

__all__ = [
    "LIGHTNING_KEYWORDS",
    "MAIN",
    "ABInference",
    "AnnealedMeanInference",
    "ClassificationModule",
    "ColorizationModule",
    "GANModule",
    "RegressionModule",
    "annealed_decode",
    "load_checkpoint",
    "read_checkpoint",
    "require_checkpoint",
]
