"""Validation metrics for colorization, accumulated with torchmetrics so they sync across devices.

`ColorizationMetrics` takes RGB predictions and truths in [0, 1] and ab in Lab units, and reports:

- ``psnr``: mean per-image PSNR on RGB (data_range 1);
- ``ssim``: mean SSIM on RGB (data_range 1);
- ``colorfulness``: mean Hasler–Süsstrunk colourfulness of the predictions;
- ``colorfulness_gap``: mean per-image |colourfulness(prediction) − colourfulness(truth)|;
- ``auc``: Zhang et al.'s area under the curve of the per-pixel ab error (thresholds 0..150);
- ``auc_rebalanced``: the same with pixels weighted by the inverse prior of their true bin;
- ``lpips`` and ``fid``: only when the optional ``perceptual`` extra (lpips, torch-fidelity) and its
  weights are available; otherwise they are left out and one line says why.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from colorization.color import ab_auc, colorfulness

log = logging.getLogger(__name__)

_REPORTED: set[str] = set()


def _say_once(key: str, message: str) -> None:
    """Log `message` once per process, so an unavailable metric is reported a single time."""
    if key not in _REPORTED:
        _REPORTED.add(key)
        log.warning(message)


def _make_lpips() -> Metric | None:
    """LPIPS (AlexNet) as a mean metric, or None with one line saying why it is unavailable."""
    try:
        import lpips  # noqa: F401
    except Exception as err:  # lpips pulls torchvision, which may be absent
        _say_once(
            "lpips", f"LPIPS left out: the lpips package is unavailable ({err.__class__.__name__}: {err})."
        )
        return None
    try:
        return _LPIPSMetric()
    except Exception as err:  # weights not downloadable offline
        _say_once("lpips", f"LPIPS left out: could not load its weights ({err.__class__.__name__}: {err}).")
        return None


def _hide(metric: Metric, name: str) -> Metric:
    """Keep a metric's feature network out of the module tree: it moves with the metric (`_apply`) but is not
    saved in, or expected from, the checkpoints of the LightningModule that holds the metric."""
    net = metric._modules.pop(name)
    object.__setattr__(metric, name, net)
    metric._hidden_nets = (*getattr(metric, "_hidden_nets", ()), name)
    return metric


class _HiddenNets:
    """Mixin for a Metric whose feature networks were hidden by `_hide`: device and dtype moves reach them."""

    def _apply(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = super()._apply(fn, *args, **kwargs)  # type: ignore[misc]
        for name in getattr(self, "_hidden_nets", ()):
            getattr(self, name)._apply(fn)
        return out


def _make_fid() -> Metric | None:
    """torchmetrics' FID, or None with one line saying why it is unavailable."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance

        class _FID(_HiddenNets, FrechetInceptionDistance):
            """FID whose Inception network is not part of the holder's state_dict."""

        return _hide(_FID(feature=2048, normalize=True), "inception")
    except Exception as err:  # torch-fidelity missing or weights not downloadable
        _say_once(
            "fid", f"FID left out: {err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        )
        return None


class _LPIPSMetric(_HiddenNets, MeanMetric):
    """Mean LPIPS distance between RGB predictions and truths in [0, 1] (lower is closer)."""

    def __init__(self) -> None:
        super().__init__()
        import lpips

        self.net = lpips.LPIPS(net="alex", verbose=False).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        _hide(self, "net")

    def update(self, pred: Tensor, target: Tensor) -> None:  # type: ignore[override]
        """Add the distances of one batch (inputs rescaled to [-1, 1] as LPIPS expects)."""
        d = self.net(pred * 2 - 1, target * 2 - 1).flatten()
        super().update(d)


class ColorizationMetrics(nn.Module):
    """PSNR, SSIM, colourfulness (+gap), ab AuC raw and rebalanced, LPIPS/FID where available.

    An nn.Module, so that a LightningModule holding it moves it with itself; its metric states and the
    LPIPS / FID networks are not saved in checkpoints.
    """

    def __init__(self, perceptual: bool = True, max_threshold: float = 150.0) -> None:
        super().__init__()
        self.max_threshold = max_threshold
        self.psnr = PeakSignalNoiseRatio(data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3))
        self.ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
        self.colorfulness = MeanMetric()
        self.colorfulness_gap = MeanMetric()
        self.auc = MeanMetric()
        self.auc_rebalanced = MeanMetric()
        self.lpips = _make_lpips() if perceptual else None
        self.fid = _make_fid() if perceptual else None

    @torch.no_grad()
    def update(
        self,
        pred_rgb: Tensor,
        true_rgb: Tensor,
        pred_ab: Tensor,
        true_ab: Tensor,
        pixel_weights: Tensor | None = None,
    ) -> None:
        """Accumulate one batch: RGB in [0, 1] (B×3×H×W), ab in Lab units (B×2×H×W), weights B×H×W."""
        pred_rgb = pred_rgb.float().clamp(0, 1)
        true_rgb = true_rgb.float().clamp(0, 1)
        pred_ab, true_ab = pred_ab.float(), true_ab.float()
        self.psnr.update(pred_rgb, true_rgb)
        self.ssim.update(pred_rgb, true_rgb)
        cf_pred, cf_true = colorfulness(pred_rgb), colorfulness(true_rgb)
        self.colorfulness.update(cf_pred)
        self.colorfulness_gap.update((cf_pred - cf_true).abs())
        self.auc.update(ab_auc(pred_ab, true_ab, max_threshold=self.max_threshold))
        if pixel_weights is None:
            pixel_weights = torch.ones_like(true_ab[:, 0])
        self.auc_rebalanced.update(
            ab_auc(pred_ab, true_ab, weights=pixel_weights.float(), max_threshold=self.max_threshold)
        )
        if self.lpips is not None:
            self.lpips.update(pred_rgb, true_rgb)
        if self.fid is not None:
            self.fid.update(true_rgb, real=True)
            self.fid.update(pred_rgb, real=False)

    def compute(self) -> dict[str, Tensor]:
        """Return every available metric as a scalar tensor, keyed by short name."""
        out = {
            "psnr": self.psnr.compute(),
            "ssim": self.ssim.compute(),
            "colorfulness": self.colorfulness.compute(),
            "colorfulness_gap": self.colorfulness_gap.compute(),
            "auc": self.auc.compute(),
            "auc_rebalanced": self.auc_rebalanced.compute(),
        }
        if self.lpips is not None:
            out["lpips"] = self.lpips.compute()
        if self.fid is not None:
            try:
                out["fid"] = self.fid.compute()
            except Exception as err:  # e.g. fewer than two images
                _say_once("fid-compute", f"FID not computed: {err}")
        return out

    def reset(self) -> None:
        """Clear the accumulated state (call after each validation epoch)."""
        for m in self.children():
            if isinstance(m, Metric):
                m.reset()
