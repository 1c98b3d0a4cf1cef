"""The three objectives: losses against independent references, shapes, checkpoints, NaN guard, GAN."""

from __future__ import annotations

import math
import os

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader

from colorization.color import AB_NORM, ABGamut, ColorPrior, lab_batch
from colorization.data.synthetic import synthetic_batch
from colorization.errors import ColorizationError, ConfigError, NonFiniteLossError
from colorization.objectives import (
    ClassificationModule,
    GANModule,
    RegressionModule,
    load_checkpoint,
)

CONV = {"_target_": "torch.nn.Conv2d", "in_channels": 1, "kernel_size": 3, "padding": 1}
D_CONV = {"_target_": "torch.nn.Conv2d", "in_channels": 3, "out_channels": 1, "kernel_size": 4, "stride": 2}
ZHANG = {"_target_": "colorization.nets.ZhangNet", "width": 0.0625}
CNN = {"_target_": "colorization.nets.BaselineCNN", "width": 0.5}
UNET = {"_target_": "colorization.nets.UNetGenerator", "width": 0.125, "num_downs": 5}
PATCH = {"_target_": "colorization.nets.PatchGAN", "width": 0.125}


def adam(lr: float) -> dict:
    return {"_target_": "torch.optim.Adam", "_partial_": True, "lr": lr}


def make_batches(n: int = 8, size: int = 32, bs: int = 4, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    rgb, _ = synthetic_batch(n, size, seed=seed)
    L, ab = lab_batch(rgb)
    return [{"L": L[i : i + bs], "ab": ab[i : i + bs], "rgb": rgb[i : i + bs]} for i in range(0, n, bs)]


@pytest.fixture(scope="module")
def batches() -> list[dict[str, torch.Tensor]]:
    return make_batches()


def trainer(tmp_path=None, **kw) -> pl.Trainer:
    args = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    args.update(kw)
    return pl.Trainer(**args)


class LossRecorder(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(trainer.callback_metrics["train/loss"]))


class PriorDM(pl.LightningDataModule):
    """A minimal datamodule offering the LabDataModule hooks the classification objective uses."""

    def __init__(self, batches, min_count: int = 1) -> None:
        super().__init__()
        self.batches = batches
        self.ab = torch.cat([b["ab"] for b in batches]) * AB_NORM
        self.calls = 0

    def train_dataloader(self):
        return DataLoader(self.batches, batch_size=None)

    def val_dataloader(self):
        return DataLoader(self.batches[:1], batch_size=None)

    def compute_gamut(self, min_count: int = 1) -> ABGamut:
        self.calls += 1
        return ABGamut.from_ab(self.ab, min_count=min_count)

    def compute_prior(self, gamut: ABGamut) -> ColorPrior:
        return ColorPrior(gamut).update(self.ab).finalize()


# ------------------------------------------------------------------ every model × objective learns a little
CASES = [
    ("zhang", ZHANG, "classification"),
    ("zhang", ZHANG, "regression"),
    ("cnn", CNN, "regression"),
    ("cnn", CNN, "classification"),
    ("cnn-deep8", {**CNN, "variant": "deep8", "width": 0.25}, "regression"),
    (
        "koala",
        {"_target_": "colorization.nets.KoalaNet", "width": 0.125, "extractor": "small", "pretrained": False},
        "regression",
    ),
    (
        "koala",
        {"_target_": "colorization.nets.KoalaNet", "width": 0.125, "extractor": "small", "pretrained": False},
        "classification",
    ),
    ("unet", UNET, "regression"),
    ("unet", UNET, "gan"),
    ("unet-attention", {**UNET, "attention": True}, "regression"),
    (
        "unet-resnet18",
        {
            "_target_": "colorization.nets.UNetGenerator",
            "width": 0.125,
            "encoder": "resnet18",
            "pretrained": False,
        },
        "regression",
    ),
]


def build(objective: str, net: dict, lr: float = 3e-3, **kw):
    if objective == "regression":
        return RegressionModule(net, adam(lr), perceptual_metrics=False, **kw)
    if objective == "classification":
        return ClassificationModule(
            net, adam(lr), prior="uniform", eval_temperatures=[], perceptual_metrics=False, **kw
        )
    return GANModule(net, adam(lr), discriminator=PATCH, d_optimizer=adam(lr), perceptual_metrics=False, **kw)


@pytest.mark.parametrize("name,net,objective", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_model_objective_loss_drops(name, net, objective, batches) -> None:
    torch.manual_seed(0)
    module = build(objective, net)
    rec = LossRecorder()
    one = batches[:1] * 12  # overfit one batch: the loss must go down
    trainer(max_steps=12 if objective != "gan" else 24, callbacks=[rec], limit_val_batches=0).fit(
        module, DataLoader(one, batch_size=None)
    )
    losses = rec.losses if objective != "gan" else [float(x) for x in rec.losses]
    assert all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses


# ------------------------------------------------------------------ losses against independent computations
def dense_target(ab_lab: torch.Tensor, points: torch.Tensor, k: int = 5, sigma: float = 5.0) -> torch.Tensor:
    """Soft target B×Q×H×W by brute force: Gaussian weights on the k nearest bin centres, normalised."""
    b, _, h, w = ab_lab.shape
    pairs = ab_lab.permute(0, 2, 3, 1).reshape(-1, 2).double()
    d2 = torch.cdist(pairs, points.double()).square()
    near_d2, near = d2.topk(k, dim=1, largest=False)
    wts = torch.exp(-near_d2 / (2 * sigma**2))
    wts = wts / wts.sum(1, keepdim=True)
    dense = torch.zeros(len(pairs), len(points), dtype=torch.float64).scatter_(1, near, wts)
    return dense.reshape(b, h, w, -1).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize("stride_net", [CONV, ZHANG], ids=["full-res", "zhang-quarter-res"])
def test_classification_loss_matches_dense_cross_entropy(stride_net, batches) -> None:
    torch.manual_seed(1)
    dm = PriorDM(batches)
    module = ClassificationModule(stride_net, prior="dataset", rebalance_lambda=0.5, perceptual_metrics=False)
    prior = dm.compute_prior(ABGamut.zhang())
    module._set_prior(prior)
    batch = batches[0]
    logits = module(batch["L"]) + torch.randn(1)  # any logits
    loss = module.compute_loss(logits, batch)
    ab = batch["ab"] * AB_NORM
    stride = batch["ab"].shape[-1] // logits.shape[-1]
    if stride > 1:
        ab = F.avg_pool2d(ab, stride)
    target = dense_target(ab, module.gamut_points)
    ce = F.cross_entropy(logits, target, reduction="none")  # B×h×w
    nearest = torch.cdist(ab.permute(0, 2, 3, 1).reshape(-1, 2), module.gamut_points).argmin(1)
    w = prior.weights(0.5)[nearest].reshape(ce.shape)
    assert torch.allclose(module.class_weights, prior.weights(0.5))
    assert loss.item() == pytest.approx((ce * w).mean().item(), rel=1e-4)


def test_regression_loss_at_full_resolution_for_stride4_net(batches) -> None:
    for loss_name, fn in (("l2", F.mse_loss), ("l1", F.l1_loss), ("smooth_l1", F.smooth_l1_loss)):
        module = RegressionModule(ZHANG, loss=loss_name)
        batch = batches[0]
        out = module(batch["L"])
        assert out.shape[-1] == batch["L"].shape[-1] // 4
        up = F.interpolate(out, scale_factor=4, mode="bilinear", align_corners=False)
        assert module.compute_loss(out, batch).item() == pytest.approx(fn(up, batch["ab"]).item(), rel=1e-5)


# ------------------------------------------------------------------ inference, predict_step, ONNX
@pytest.mark.parametrize("objective,net", [("regression", ZHANG), ("classification", ZHANG), ("gan", UNET)])
def test_inference_model_and_predict_step(objective, net, batches) -> None:
    module = build(objective, net).eval()
    L = batches[0]["L"]
    with torch.no_grad():
        ab = module.inference_model()(L)
        pred = module.predict_step(batches[0], 0)
    assert ab.shape == (L.shape[0], 2, *L.shape[-2:])
    assert torch.allclose(pred["ab"], ab)
    assert (
        pred["rgb"].shape == (L.shape[0], 3, *L.shape[-2:])
        and 0 <= pred["rgb"].min() <= pred["rgb"].max() <= 1
    )
    if objective == "classification":
        with torch.no_grad():
            logits = module(L)
            for T in (1.0, 0.38):
                p = torch.softmax(torch.log_softmax(logits, 1) / T, 1)
                manual = torch.einsum("bqhw,qc->bchw", p, module.gamut_points)
                manual = F.interpolate(manual, size=L.shape[-2:], mode="bilinear", align_corners=False)
                assert torch.allclose(module.inference_model(T)(L), manual, atol=1e-3)


def test_inference_model_exports_to_onnx(tmp_path, batches) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    module = build("classification", ZHANG).eval()
    model = module.inference_model(0.38)
    L = batches[0]["L"]
    path = str(tmp_path / "m.onnx")
    torch.onnx.export(
        model,
        (L,),
        path,
        input_names=["L"],
        output_names=["ab"],
        dynamo=False,
        dynamic_axes={"L": {0: "b", 2: "h", 3: "w"}},
    )
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    L2 = torch.cat([L, L])[:, :, :24, :16].contiguous()  # another batch size and resolution
    for x in (L, L2):
        (out,) = sess.run(None, {"L": x.numpy()})
        with torch.no_grad():
            assert torch.allclose(torch.from_numpy(out), model(x), atol=1e-3)


# ------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize("objective,net", [("regression", CNN), ("classification", CONV), ("gan", UNET)])
def test_checkpoint_roundtrip(objective, net, tmp_path, batches) -> None:
    module = build(objective, net)
    trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(module, DataLoader(batches, batch_size=None))
    path = str(tmp_path / "m.ckpt")
    module.trainer.save_checkpoint(path)
    loaded = load_checkpoint(path)
    assert type(loaded) is type(module) and not loaded.training
    module.eval()
    with torch.no_grad():
        assert torch.allclose(
            loaded.inference_model()(batches[1]["L"]), module.inference_model()(batches[1]["L"])
        )


def test_dataset_gamut_and_prior_are_stored_in_checkpoint(tmp_path, batches) -> None:
    dm = PriorDM(batches)
    module = ClassificationModule(
        CNN, adam(1e-3), gamut="dataset", prior="dataset", eval_temperatures=[0.38], perceptual_metrics=False
    )
    assert module.net is None
    trainer(tmp_path, max_steps=2, limit_val_batches=1).fit(module, datamodule=dm)
    gamut = dm.compute_gamut()
    q = len(gamut)
    assert module.num_classes == q < 313 and module.net.out_channels == q
    assert torch.allclose(module.class_weights, dm.compute_prior(gamut).weights(0.5))
    assert torch.allclose(module.auc_weights, dm.compute_prior(gamut).weights(0.0))
    path = str(tmp_path / "c.ckpt")
    module.trainer.save_checkpoint(path)
    loaded = load_checkpoint(path)  # no datamodule needed
    assert loaded.num_classes == q
    assert torch.allclose(loaded.class_weights, module.class_weights)
    module.eval()
    with torch.no_grad():
        assert torch.allclose(
            loaded.inference_model()(batches[0]["L"]), module.inference_model()(batches[0]["L"])
        )


def test_load_checkpoint_errors(tmp_path) -> None:
    with pytest.raises(ColorizationError, match="not found"):
        load_checkpoint(str(tmp_path / "missing.ckpt"))
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ColorizationError, match="not a colorization checkpoint"):
        load_checkpoint(str(tmp_path / "other.ckpt"))


# ------------------------------------------------------------------ non-finite loss
class NaNAt(RegressionModule):
    """A regression module whose loss becomes NaN at global step `nan_step`."""

    nan_step = 3

    def compute_loss(self, output, batch):
        loss = super().compute_loss(output, batch)
        return loss * float("nan") if self.training and self.global_step == self.nan_step else loss


def test_nan_loss_stops_with_step_and_keeps_last_checkpoint_finite(tmp_path, batches) -> None:
    module = NaNAt(CNN, adam(1e-3), perceptual_metrics=False)
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=1, save_top_k=-1)
    t = trainer(tmp_path, max_steps=10, enable_checkpointing=True, callbacks=[ckpt], limit_val_batches=0)
    with pytest.raises(NonFiniteLossError, match="global step 3"):
        t.fit(module, DataLoader(batches * 5, batch_size=None))
    last = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert last["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_nan_weights_are_never_saved(tmp_path, batches) -> None:
    module = build("regression", CNN)
    t = trainer(tmp_path, max_steps=1, limit_val_batches=0)
    t.fit(module, DataLoader(batches, batch_size=None))
    good = str(tmp_path / "good.ckpt")
    t.save_checkpoint(good)
    before = os.path.getmtime(good)
    with torch.no_grad():
        next(module.net.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="not finite"):
        t.save_checkpoint(good)
    assert os.path.getmtime(good) == before
    state = torch.load(good, weights_only=False)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


# ------------------------------------------------------------------ GAN
def test_gan_pretraining_then_both_players_update(batches) -> None:
    torch.manual_seed(0)
    module = GANModule(UNET, discriminator=PATCH, pretrain_steps=3, perceptual_metrics=False)
    d0 = [p.detach().clone() for p in module.discriminator.parameters()]
    g0 = [p.detach().clone() for p in module.net.parameters()]
    # pretraining only: D must not move
    trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=0).fit(
        module, DataLoader(batches[:1] * 3, batch_size=None)
    )
    assert int(module.g_steps) == 3
    assert all(torch.equal(a, b) for a, b in zip(d0, module.discriminator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(g0, module.net.parameters(), strict=True))


def test_gan_adversarial_phase_updates_both_and_l1_drops(batches) -> None:
    torch.manual_seed(0)
    for mode in ("vanilla", "lsgan"):
        module = GANModule(UNET, discriminator=PATCH, gan_mode=mode, perceptual_metrics=False)
        d0 = [p.detach().clone() for p in module.discriminator.parameters()]
        g0 = [p.detach().clone() for p in module.net.parameters()]
        l1s: list[float] = []

        class L1(Callback):
            def __init__(self, out: list[float]) -> None:
                self.out = out

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                self.out.append(float(trainer.callback_metrics["train/g_l1"]))
                assert "train/d_loss" in trainer.callback_metrics

        trainer(max_epochs=1, limit_train_batches=8, limit_val_batches=0, callbacks=[L1(l1s)]).fit(
            module, DataLoader(batches[:1] * 8, batch_size=None)
        )
        assert any(not torch.equal(a, b) for a, b in zip(d0, module.discriminator.parameters(), strict=True))
        assert any(not torch.equal(a, b) for a, b in zip(g0, module.net.parameters(), strict=True))
        assert sum(l1s[-3:]) < sum(l1s[:3]), (mode, l1s)
        opt_g, opt_d = module.configure_optimizers()
        assert opt_g.defaults["lr"] == 2e-4 and tuple(opt_d.defaults["betas"]) == (0.5, 0.999)


# ------------------------------------------------------------------ configuration
def test_bad_configuration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="loss"):
        RegressionModule(CONV, loss="l3")
    with pytest.raises(ConfigError, match="prior"):
        ClassificationModule(CONV, prior="imagenet")
    with pytest.raises(ConfigError, match="gamut"):
        ClassificationModule(CONV, gamut="lab")
    with pytest.raises(ConfigError, match="temperatures"):
        ClassificationModule(CONV, eval_temperatures=[0.0])
    with pytest.raises(ConfigError, match="gan_mode"):
        GANModule(UNET, gan_mode="wgan")
    with pytest.raises(ConfigError, match="out_channels"):
        RegressionModule({**CONV, "out_channels": 3})
    with pytest.raises(ConfigError, match="cannot build net"):
        RegressionModule({"_target_": "colorization.nets.NoSuchNet"})
    with pytest.raises(ConfigError, match="optimizer"):
        RegressionModule(CONV, {"_target_": "torch.optim.NoSuchOpt"}).configure_optimizers()


def test_plateau_scheduler_and_temperature_curve_logged(tmp_path) -> None:
    batches = make_batches(8, 16)
    sched = {
        "_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
        "_partial_": True,
        "patience": 0,
        "factor": 0.5,
    }
    module = ClassificationModule(
        CONV, adam(1e-2), sched, prior="uniform", eval_temperatures=[1.0, 0.38], perceptual_metrics=False
    )
    cfg = module.configure_optimizers()
    assert cfg["lr_scheduler"]["monitor"] == "val/loss"
    t = trainer(tmp_path, max_epochs=2, limit_val_batches=1)
    t.fit(module, DataLoader(batches, batch_size=None), DataLoader(batches[:1], batch_size=None))
    keys = set(t.callback_metrics)
    for name in ("loss", "psnr", "ssim", "colorfulness", "colorfulness_gap", "auc", "auc_rebalanced"):
        assert f"val/{name}" in keys
    for T in ("1", "0.38"):
        assert f"val/T={T}/psnr" in keys and f"val/T={T}/auc" in keys
    # the main metrics are those of T = 0.38
    assert t.callback_metrics["val/psnr"] == pytest.approx(float(t.callback_metrics["val/T=0.38/psnr"]))


# ------------------------------------------------------------------ with the real LabDataModule
def test_classification_with_lab_datamodule_dataset_gamut_and_prior(tmp_path) -> None:
    from colorization.data import LabDataModule
    from colorization.data.sources import Synthetic

    dm = LabDataModule(
        Synthetic(tmp_path / "synthetic", count=24, size=32),
        image_size=32,
        batch_size=4,
        num_workers=0,
        val_fraction=0.2,
        test_fraction=0.0,
    )
    module = ClassificationModule(
        CNN, adam(3e-3), gamut="dataset", prior="dataset", eval_temperatures=[0.38], perceptual_metrics=False
    )
    t = trainer(tmp_path, max_epochs=1, limit_train_batches=3, limit_val_batches=1)
    t.fit(module, datamodule=dm)
    q = module.num_classes
    assert 0 < q < 313 and module.net.out_channels == q
    assert not torch.allclose(module.class_weights, torch.ones(q))  # a real, non-uniform prior
    assert math.isfinite(float(t.callback_metrics["val/auc_rebalanced"]))
    pred = t.predict(module, datamodule=dm)
    assert pred and pred[0]["ab"].shape[-2:] == (32, 32)
    raw = t.predict(module, dm.predict_dataloader())  # plain {"rgb": uint8} batches work too
    assert torch.allclose(raw[0]["ab"], pred[0]["ab"], atol=1e-3)


def test_gan_schedulers_step_each_epoch(batches) -> None:
    plateau = {
        "_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
        "_partial_": True,
        "patience": 0,
        "factor": 0.5,
        "threshold": 0.5,
    }  # "no improvement" every epoch: halves each time
    step = {"_target_": "torch.optim.lr_scheduler.StepLR", "_partial_": True, "step_size": 1, "gamma": 0.1}
    for sched, expected in ((plateau, 2e-4 * 0.5**2), (step, 2e-4 * 0.1**3)):
        module = GANModule(UNET, scheduler=sched, discriminator=PATCH, perceptual_metrics=False)
        t = trainer(max_epochs=3, limit_train_batches=1, limit_val_batches=1)
        t.fit(module, DataLoader(batches, batch_size=None), DataLoader(batches[:1], batch_size=None))
        for opt in module.optimizers():
            assert opt.param_groups[0]["lr"] == pytest.approx(expected)
