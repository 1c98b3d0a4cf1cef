"""The three objectives: losses against independent references, shapes, checkpoints, NaN guard, GAN."""

from __future__ import annotations

import functools
import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from omegaconf import OmegaConf
from support import CNN, PATCH, UNET, ZHANG, adam, compose_config, quiet_trainer
from support import lab_batches as make_batches
from torch.utils.data import DataLoader

from colorization.callbacks import NonFiniteGuard
from colorization.color import AB_NORM, ABGamut, ColorPrior
from colorization.errors import ColorizationError, ConfigError, NonFiniteLossError
from colorization.objectives import ClassificationModule, GANModule, RegressionModule, load_checkpoint
from colorization.specs import locate

#: A one-layer-deep full-resolution generator: the fastest net that is a real colorization.nets.Generator.
CONV = {"_target_": "colorization.nets.BaselineCNN", "width": 0.125}


@functools.cache
def cgan_optimizers() -> tuple[dict, dict]:
    """The generator and discriminator optimiser specs of the real conf/loss/cgan_l1.yaml."""
    cfg = compose_config(["model=unet"], Path("/nonexistent"), Path("/nonexistent"))
    return (
        OmegaConf.to_container(cfg.loss.g_optimizer, resolve=True),
        OmegaConf.to_container(cfg.loss.d_optimizer, resolve=True),
    )


def gan(net: dict = UNET, **kw) -> GANModule:
    """A GANModule with the config's pix2pix optimisers and a tiny PatchGAN."""
    g_opt, d_opt = cgan_optimizers()
    kw.setdefault("discriminator", PATCH)
    return GANModule(net, kw.pop("optimizer", g_opt), d_optimizer=kw.pop("d_optimizer", d_opt), **kw)


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
CONF_MODELS = Path(__file__).resolve().parents[1] / "conf" / "model"
# Tiny settings per model config (conf/model/NAME.yaml): widths small enough for CI, no downloads.
TINY = {
    "zhang": {"width": 0.0625},
    "cnn": {"width": 0.5},
    "cnn8": {"width": 0.25},
    "koala": {"width": 0.125, "extractor": "small", "pretrained": False},
    "unet": {"width": 0.125, "num_downs": 5},
    "attention_unet": {"width": 0.125, "num_downs": 5},
    "resnet_unet": {"width": 0.125, "pretrained": False},
    "siggraph17": {"width": 0.0625},
}
OBJECTIVES = ("l2", "l1", "rebalanced_ce", "cgan_l1")


@functools.cache
def conf_nets() -> dict[str, dict]:
    """Net spec of every conf/model/NAME.yaml (the real model list), as `train.py model=NAME` composes it."""
    nowhere = Path("/nonexistent")
    return {
        p.stem: OmegaConf.to_container(
            compose_config([f"model={p.stem}"], nowhere, nowhere).model.net, resolve=True
        )
        for p in sorted(CONF_MODELS.glob("*.yaml"))
    }


def model_spec(name: str) -> dict:
    """The composed net spec of model `name`, shrunk with TINY[name]."""
    return {**conf_nets()[name], **TINY[name]}


def model_names() -> list[str]:
    return sorted(conf_nets())


def test_every_model_config_has_tiny_settings() -> None:
    names = model_names()
    assert set(TINY) <= set(names), "a model of the matrix lost its config"
    assert set(names) <= set(TINY), f"add tiny settings for {sorted(set(names) - set(TINY))} to TINY"


def build(objective: str, net: dict, lr: float = 3e-3, **kw):
    if objective == "regression":
        return RegressionModule(net, adam(lr), perceptual_metrics=False, **kw)
    if objective == "classification":
        return ClassificationModule(
            net, adam(lr), prior="uniform", eval_temperatures=[], perceptual_metrics=False, **kw
        )
    return gan(net, optimizer=adam(lr), d_optimizer=adam(lr), perceptual_metrics=False, **kw)


def build_objective(objective: str, net: dict, lr: float = 3e-3):
    if objective in ("l2", "l1"):
        return RegressionModule(net, adam(lr), loss=objective, perceptual_metrics=False)
    if objective == "rebalanced_ce":  # bin logits are raw: train.py switches a bounded head off likewise
        return ClassificationModule(
            {**net, "final_activation": None},
            adam(lr),
            prior="dataset",
            eval_temperatures=[],
            perceptual_metrics=False,
        )
    return gan(net, optimizer=adam(lr), d_optimizer=adam(lr), perceptual_metrics=False)


# siggraph17 × every loss trains through the config in test_app_train.py; here it is in the slow suite.
PAIRS = [
    pytest.param(m, o, id=f"{m}-{o}", marks=[pytest.mark.slow] if m == "siggraph17" else [])
    for m, o in itertools.product(sorted(TINY), OBJECTIVES)
]


@pytest.mark.parametrize("model,objective", PAIRS)
def test_model_objective_loss_drops(model, objective, batches) -> None:
    """Every model × objective that fits overfits one batch; the ones that cannot fit say so (ConfigError)."""
    torch.manual_seed(0)
    net = model_spec(model)
    stride = locate(net["_target_"]).output_stride
    if objective == "cgan_l1" and stride != 1:
        with pytest.raises(ConfigError, match="full-resolution generator"):
            build_objective(objective, net)
        return
    module = build_objective(objective, net)
    rec = LossRecorder()
    steps = 10
    quiet_trainer(max_steps=steps, callbacks=[rec], limit_val_batches=0).fit(
        module,
        datamodule=PriorDM(batches[:1] * steps),  # overfit one batch: the loss must go down
    )
    assert len(rec.losses) == steps and all(math.isfinite(x) for x in rec.losses)
    assert sum(rec.losses[-3:]) / 3 < sum(rec.losses[:3]) / 3, rec.losses


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
    module = ClassificationModule(
        stride_net, adam(), prior="dataset", rebalance_lambda=0.5, perceptual_metrics=False
    )
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
        module = RegressionModule(ZHANG, adam(), loss=loss_name)
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


def test_predict_temperature_is_used_by_predict_step(batches) -> None:
    torch.manual_seed(0)
    module = build("classification", ZHANG).eval()
    L = batches[0]["L"]
    loader = DataLoader(batches[:1], batch_size=None)
    t = quiet_trainer(logger=False)
    default = t.predict(module, loader)[0]["ab"]
    outs = {}
    for T in (1.0, 0.1):
        module.predict_temperature = T
        outs[T] = t.predict(module, loader)[0]["ab"]
        with torch.no_grad():
            assert torch.allclose(outs[T], module.inference_model(T)(L), atol=1e-4)
    module.predict_temperature = None
    with torch.no_grad():
        assert torch.allclose(default, module.inference_model(0.38)(L), atol=1e-4)
    assert (outs[1.0] - outs[0.1]).abs().max() > 1.0  # T changes the colours (by > 1 ab unit)


def test_one_annealed_decoder_for_training_evaluation_and_inference(batches) -> None:
    """ClassificationModule.decode (the validation and test step's, hence evaluate.py's), decode_at and the
    inference model agree at every T."""
    module = ClassificationModule(ZHANG, adam(), prior="uniform", eval_temperatures=[1.0, 0.38, 0.14]).eval()
    L = batches[0]["L"]
    with torch.no_grad():
        out = module(L)
        preds = module.decode(out, L.shape[-2:])
        for T in (1.0, 0.38, 0.14):
            ref = module.inference_model(T)(L)
            assert torch.allclose(preds[f"T={T:g}"], ref, atol=1e-4)
            assert torch.allclose(module.decode_at(out, L.shape[-2:], T), ref, atol=1e-4)
        assert torch.allclose(preds[""], preds["T=0.38"])
        reg = RegressionModule(ZHANG, adam()).eval()
        out = reg(L)
        assert torch.allclose(reg.decode_at(out, L.shape[-2:], 0.5), reg.inference_model()(L), atol=1e-4)


def test_test_step_logs_the_temperature_sweep_of_one_pass(batches) -> None:
    """trainer.test logs test/<metric> at the module's T and test/T=<t>/<metric> for each swept t; after
    set_eval_temperatures, exactly the new temperatures (what evaluate.py's temperatures=[...] does)."""
    torch.manual_seed(0)
    module = ClassificationModule(ZHANG, adam(), prior="uniform", eval_temperatures=[1.0, 0.38])
    module.set_eval_temperatures([0.5, 0.05])
    t = quiet_trainer()
    t.test(module, DataLoader(batches, batch_size=None), verbose=False)
    keys = set(t.callback_metrics)
    assert {"test/T=0.5/psnr", "test/T=0.05/psnr", "test/psnr", "test/auc_rebalanced"} <= keys
    assert not any(k.startswith("test/T=1/") for k in keys)
    module.predict_temperature = 0.05  # the T=0.05 PSNR is the inference model's at T=0.05, image by image
    with torch.no_grad():
        rgb = torch.cat([module.predict_step(b)["rgb"] for b in batches])
    truth = torch.cat([b["rgb"] for b in batches])
    expected = float((10 * torch.log10(1 / (rgb - truth).square().flatten(1).mean(1))).mean())
    assert float(t.callback_metrics["test/T=0.05/psnr"]) == pytest.approx(expected, rel=1e-3)
    with pytest.raises(ConfigError, match="loss.eval_temperatures"):
        module.set_eval_temperatures([0.0])


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
    quiet_trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(
        module, DataLoader(batches, batch_size=None)
    )
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
    quiet_trainer(tmp_path, max_steps=2, limit_val_batches=1).fit(module, datamodule=dm)
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


def test_load_checkpoint_errors(tmp_path, batches) -> None:
    """Missing, foreign, truncated and empty files: each one line, never a traceback of torch.load."""
    with pytest.raises(ConfigError, match="ckpt=.*missing.ckpt: no such checkpoint file"):
        load_checkpoint(str(tmp_path / "missing.ckpt"))
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ColorizationError, match="not a colorization checkpoint"):
        load_checkpoint(str(tmp_path / "other.ckpt"))
    module = build("regression", CNN)
    quiet_trainer(tmp_path, max_steps=1, limit_val_batches=0).fit(
        module, DataLoader(batches, batch_size=None)
    )
    good = tmp_path / "good.ckpt"
    module.trainer.save_checkpoint(good)
    data = good.read_bytes()
    for name, content in (("truncated.ckpt", data[: len(data) // 2]), ("empty.ckpt", b"")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ColorizationError, match=f"cannot read checkpoint .*{name}") as info:
            load_checkpoint(tmp_path / name)
        assert "\n" not in str(info.value)


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
    t = quiet_trainer(
        tmp_path, max_steps=10, enable_checkpointing=True, callbacks=[ckpt], limit_val_batches=0
    )
    with pytest.raises(NonFiniteLossError, match="global step 3"):
        t.fit(module, DataLoader(batches * 5, batch_size=None))
    last = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert last["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_nan_checked_every_interval_still_names_first_step_and_never_saves_after_it(
    tmp_path, batches
) -> None:
    """With checks only every 50 steps (as on a GPU), a NaN at step 3 still stops the run naming step 3:
    the next checkpoint save refuses, and without checkpoints the end of training raises."""
    module = NaNAt(CNN, adam(1e-3), perceptual_metrics=False)
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=2, save_top_k=-1)
    t = quiet_trainer(
        tmp_path,
        max_steps=10,
        enable_checkpointing=True,
        callbacks=[ckpt, NonFiniteGuard(check_every_n_steps=50)],
        limit_val_batches=0,
    )
    with pytest.raises(
        NonFiniteLossError, match="refusing to save.*non-finite training loss at global step 3"
    ):
        t.fit(module, DataLoader(batches * 5, batch_size=None))
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["global_step"] == 2
    module = NaNAt(CNN, adam(1e-3), perceptual_metrics=False)
    every_50 = [NonFiniteGuard(check_every_n_steps=50)]
    with pytest.raises(NonFiniteLossError, match="global step 3"):
        quiet_trainer(tmp_path, max_steps=10, limit_val_batches=0, callbacks=every_50).fit(
            module, DataLoader(batches * 5, batch_size=None)
        )
    module = NaNAt(CNN, adam(1e-3), perceptual_metrics=False)  # and before a validation
    every_50 = [NonFiniteGuard(check_every_n_steps=50)]
    with pytest.raises(NonFiniteLossError, match="global step 3"):
        trainer = quiet_trainer(
            tmp_path, max_steps=10, val_check_interval=5, limit_val_batches=1, callbacks=every_50
        )
        trainer.fit(
            module, DataLoader(batches * 5, batch_size=None), DataLoader(batches[:1], batch_size=None)
        )
    assert module.global_step == 5  # stopped at the first validation, before running it


def test_training_steps_make_no_host_sync_in_project_code(monkeypatch, batches) -> None:
    """No `bool(t)`, `int(t)`, `float(t)` or `t.item()` on a tensor from colorization code inside a training
    step (each is a host sync on an accelerator), for regression and the GAN."""
    import colorization

    root = os.path.dirname(colorization.__file__)
    calls: list[str] = []

    def spy(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(root) and recording:
                calls.append(f"{name} in {caller}:{sys._getframe(1).f_lineno}")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)

    recording = False
    for name in ("__bool__", "__int__", "__float__", "item", "tolist"):
        spy(name)

    class Spy(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            nonlocal recording
            recording = True

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            nonlocal recording
            recording = False

    for module in (build("regression", CNN), build("gan", UNET)):
        # the guard's record of each loss runs inside the spied span (its batch-end hook before Spy's)
        callbacks = [NonFiniteGuard(check_every_n_steps=1000), Spy()]
        quiet_trainer(max_steps=3, limit_val_batches=0, callbacks=callbacks).fit(
            module, DataLoader(batches * 2, batch_size=None)
        )
    assert calls == []


DDP_WORKER = """
import sys
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader
from lightning.pytorch.callbacks import ModelCheckpoint
from colorization.callbacks import NonFiniteGuard
from colorization.color import lab_batch
from colorization.data.synthetic import synthetic_batch
from colorization.errors import NonFiniteLossError
from colorization.objectives import RegressionModule

class NaNOnRank1(RegressionModule):
    def compute_loss(self, output, batch):
        loss = super().compute_loss(output, batch)
        bad = self.training and self.global_rank == 1 and self.global_step == 2
        return loss * float("nan") if bad else loss

rgb, _ = synthetic_batch(8, 16, seed=0)
L, ab = lab_batch(rgb)
batches = [{"L": L[i : i + 2], "ab": ab[i : i + 2]} for i in range(0, 8, 2)] * 4
torch.manual_seed(0)
module = NaNOnRank1({"_target_": "colorization.nets.BaselineCNN", "width": 0.125},
                    {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
                    perceptual_metrics=False, rebalanced_auc=False)
save = sys.argv[1] == "checkpoint"
trainer = pl.Trainer(
    accelerator="cpu", devices=2, strategy="ddp", max_steps=6, logger=False, enable_progress_bar=False,
    enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=sys.argv[2],
    enable_checkpointing=save,
    # checkpoint mode: the guard checks rarely (as on a GPU), so the save refusal is what stops the ranks
    callbacks=[ModelCheckpoint(dirpath=sys.argv[2], every_n_train_steps=1, save_top_k=-1),
               NonFiniteGuard(check_every_n_steps=50)] if save else [],
)
try:
    trainer.fit(module, DataLoader(batches, batch_size=None))
    print(f"RANK {trainer.global_rank} finished", flush=True)
except NonFiniteLossError as err:
    print(f"RANK {trainer.global_rank} {type(err).__name__}: {err}", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "checkpoint"])
def test_nan_on_one_ddp_rank_stops_every_rank_with_the_message(mode, tmp_path) -> None:
    """2 CPU processes (gloo DDP); only rank 1 sees a NaN loss at step 2: both ranks raise NonFiniteLossError
    naming step 2 (no hang in a collective, no gloo traceback), with or without checkpoint saving."""
    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(29500 + os.getpid() % 1000), NODE_RANK="0")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), mode, str(tmp_path)],
            env={**env, "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=120)[0])
    finally:
        for proc in procs:
            proc.kill()
    for rank, out in enumerate(outputs):
        line = f"RANK {rank} NonFiniteLossError: "
        assert line in out, out[-3000:]
        message = out.split(line)[1].splitlines()[0]
        assert "non-finite training loss at global step 2" in message, out[-3000:]
        assert ("refusing to save" in message) == (mode == "checkpoint")
    if mode == "checkpoint":
        saved = sorted(p.name for p in tmp_path.glob("*.ckpt"))
        assert saved == ["epoch=0-step=1.ckpt", "epoch=0-step=2.ckpt"], saved


def test_nan_weights_are_never_saved(tmp_path, batches) -> None:
    module = build("regression", CNN)
    t = quiet_trainer(tmp_path, max_steps=1, limit_val_batches=0)
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
    module = gan(pretrain_steps=3, perceptual_metrics=False)
    d0 = [p.detach().clone() for p in module.discriminator.parameters()]
    g0 = [p.detach().clone() for p in module.net.parameters()]
    # pretraining only: D must not move
    quiet_trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=0).fit(
        module, DataLoader(batches[:1] * 3, batch_size=None)
    )
    assert int(module.g_steps) == 3
    assert all(torch.equal(a, b) for a, b in zip(d0, module.discriminator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(g0, module.net.parameters(), strict=True))


def test_gan_adversarial_phase_updates_both_and_l1_drops(batches) -> None:
    torch.manual_seed(0)
    for mode in ("vanilla", "lsgan"):
        module = gan(gan_mode=mode, perceptual_metrics=False)
        d0 = [p.detach().clone() for p in module.discriminator.parameters()]
        g0 = [p.detach().clone() for p in module.net.parameters()]
        l1s: list[float] = []

        class L1(Callback):
            def __init__(self, out: list[float]) -> None:
                self.out = out

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                self.out.append(float(trainer.callback_metrics["train/g_l1"]))
                assert "train/d_loss" in trainer.callback_metrics

        quiet_trainer(max_epochs=1, limit_train_batches=8, limit_val_batches=0, callbacks=[L1(l1s)]).fit(
            module, DataLoader(batches[:1] * 8, batch_size=None)
        )
        assert any(not torch.equal(a, b) for a, b in zip(d0, module.discriminator.parameters(), strict=True))
        assert any(not torch.equal(a, b) for a, b in zip(g0, module.net.parameters(), strict=True))
        assert sum(l1s[-3:]) < sum(l1s[:3]), (mode, l1s)
        opt_g, opt_d = module.configure_optimizers()
        assert opt_g.defaults["lr"] == 2e-4 and tuple(opt_d.defaults["betas"]) == (0.5, 0.999)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_gan_max_steps_counts_batches(precision, tmp_path, batches) -> None:
    """One training batch is one global step in both phases: max_steps=N runs N batches (bf16 too)."""
    torch.manual_seed(0)
    module = gan(pretrain_steps=2, perceptual_metrics=False)
    seen: list[int] = []

    class Count(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            seen.append(trainer.global_step)

    d0 = [p.detach().clone() for p in module.discriminator.parameters()]
    t = quiet_trainer(tmp_path, max_steps=6, precision=precision, limit_val_batches=0, callbacks=[Count()])
    t.fit(module, DataLoader(batches[:1] * 20, batch_size=None))
    assert seen == [1, 2, 3, 4, 5, 6] and module.g_steps == 6
    assert any(not torch.equal(a, b) for a, b in zip(d0, module.discriminator.parameters(), strict=True))
    path = str(tmp_path / "g.ckpt")
    t.save_checkpoint(path)
    assert load_checkpoint(path).g_steps == 6  # resuming keeps the phase right


# ------------------------------------------------------------------ configuration
def test_bad_configuration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="loss"):
        RegressionModule(CONV, adam(), loss="l3")
    with pytest.raises(ConfigError, match="loss.prior='imagenet' is not allowed; allowed values: dataset"):
        ClassificationModule(CONV, adam(), prior="imagenet")
    with pytest.raises(ConfigError, match="loss.gamut='lab' is not allowed; allowed values: zhang, dataset"):
        ClassificationModule(CONV, adam(), gamut="lab")
    with pytest.raises(ConfigError, match="temperatures"):
        ClassificationModule(CONV, adam(), eval_temperatures=[0.0])
    with pytest.raises(
        ConfigError, match="loss.lambda=1.5 is out of range; allowed values: 0 <= lambda <= 1"
    ):
        ClassificationModule(CONV, adam(), rebalance_lambda=1.5)
    with pytest.raises(ConfigError, match="loss.temperature=0.0 is out of range; allowed values: T > 0"):
        ClassificationModule(CONV, adam(), temperature=0.0)
    with pytest.raises(ConfigError, match="gan_mode"):
        gan(gan_mode="wgan")
    with pytest.raises(ConfigError, match="out_channels"):
        RegressionModule({**CONV, "out_channels": 3}, adam())
    with pytest.raises(ConfigError, match="NoSuchNet cannot be imported"):
        RegressionModule({"_target_": "colorization.nets.NoSuchNet"}, adam())
    with pytest.raises(ConfigError, match="optimizer"):
        RegressionModule(CONV, {"_target_": "torch.optim.NoSuchOpt"})
    with pytest.raises(ConfigError, match="optimizer.lr=0.0 is out of range"):
        RegressionModule(CONV, adam(0.0))
    with pytest.raises(ConfigError, match="not a colorization generator"):
        RegressionModule(PATCH, adam())


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
    t = quiet_trainer(tmp_path, max_epochs=2, limit_val_batches=1)
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
    t = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=3, limit_val_batches=1)
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
        module = gan(scheduler=sched, perceptual_metrics=False)
        t = quiet_trainer(max_epochs=3, limit_train_batches=1, limit_val_batches=1)
        t.fit(module, DataLoader(batches, batch_size=None), DataLoader(batches[:1], batch_size=None))
        for opt in module.optimizers():
            assert opt.param_groups[0]["lr"] == pytest.approx(expected)
