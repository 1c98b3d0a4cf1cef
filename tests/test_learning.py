"""Evidence that the objectives learn: on synthetic scenes, classification and regression beat the gray
prediction's PSNR clearly, and classification (λ = 0.5, the data's prior) is more colourful than L2 on the
multimodal fruit, whose colour (red or green, same lightness) cannot be told from L.
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from support import quiet_trainer
from torch.utils.data import DataLoader

from colorization.color import AB_NORM, ABGamut, ColorPrior, l_ab_to_rgb, lab_batch
from colorization.data.synthetic import synthetic_batch
from colorization.objectives import ClassificationModule, RegressionModule

SIZE, N_TRAIN, N_VAL, BATCH, STEPS = 32, 96, 32, 16, 60
NET = {"_target_": "colorization.nets.BaselineCNN"}
OPT = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-2}


class SyntheticDM(pl.LightningDataModule):
    """Synthetic scenes already in batch-dict form, with the prior hook of LabDataModule."""

    def __init__(self) -> None:
        super().__init__()
        rgb, _ = synthetic_batch(N_TRAIN, SIZE, seed=0)
        L, ab = lab_batch(rgb)
        self.ab = ab * AB_NORM
        self.batches = [
            {"L": L[i : i + BATCH], "ab": ab[i : i + BATCH], "rgb": rgb[i : i + BATCH]}
            for i in range(0, N_TRAIN, BATCH)
        ]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.batches, batch_size=None, shuffle=True)

    def compute_prior(self, gamut: ABGamut) -> ColorPrior:
        return ColorPrior(gamut).update(self.ab).finalize()


def psnr(pred: torch.Tensor, truth: torch.Tensor) -> float:
    mse = (pred - truth).square().flatten(1).mean(1)
    return float((10 * torch.log10(1.0 / mse)).mean())


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, float]]:
    rgb, mask = synthetic_batch(N_VAL, SIZE, seed=10_000)  # unseen scenes
    L, ab = lab_batch(rgb)
    out = {"gray": {"psnr": psnr(l_ab_to_rgb(L, torch.zeros_like(ab)), rgb)}}
    modules = {
        "l2": RegressionModule(NET, OPT, loss="l2", perceptual_metrics=False),
        "classification": ClassificationModule(
            NET, OPT, prior="dataset", rebalance_lambda=0.5, eval_temperatures=[], perceptual_metrics=False
        ),
    }
    for name, module in modules.items():
        torch.manual_seed(0)
        quiet_trainer(max_steps=STEPS, limit_val_batches=0).fit(module, datamodule=SyntheticDM())
        with torch.no_grad():
            pred_ab = module.inference_model()(L)
        chroma = pred_ab.norm(dim=1, keepdim=True)
        out[name] = {
            "psnr": psnr(l_ab_to_rgb(L, pred_ab / AB_NORM), rgb),
            "fruit_chroma": float((chroma * mask).sum() / mask.sum()),
        }
    out["truth"] = {
        "fruit_chroma": float(((ab * AB_NORM).norm(dim=1, keepdim=True) * mask).sum() / mask.sum())
    }
    print(out)
    return out


@pytest.mark.slow
def test_both_objectives_beat_gray_prediction(results) -> None:
    gray = results["gray"]["psnr"]
    for name in ("l2", "classification"):
        assert results[name]["psnr"] > gray + 3.0, (name, results)


@pytest.mark.slow
def test_classification_is_more_colourful_than_l2_on_the_multimodal_fruit(results) -> None:
    # Regression averages red and green towards gray; the rebalanced classifier keeps the fruit saturated.
    assert results["classification"]["fruit_chroma"] > results["l2"]["fruit_chroma"] + 8.0, results
    assert results["classification"]["fruit_chroma"] < results["truth"]["fruit_chroma"] * 1.3, results
