"""The three objectives as LightningModules over one shared base, and checkpoint loading."""

from colorization.objectives.base import ABInference, ColorizationModule, load_checkpoint, plain_spec
from colorization.objectives.classification import (
    AnnealedMeanInference,
    ClassificationModule,
    annealed_decode,
)
from colorization.objectives.gan import GANModule
from colorization.objectives.regression import RegressionModule

__all__ = [
    "ABInference",
    "AnnealedMeanInference",
    "ClassificationModule",
    "ColorizationModule",
    "GANModule",
    "RegressionModule",
    "annealed_decode",
    "load_checkpoint",
    "plain_spec",
]
