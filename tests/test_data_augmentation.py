"""Per-stage augmentation by config: which stage gets which, the default flip, bytes or floats, errors."""

from __future__ import annotations

from pathlib import Path

import kornia.augmentation as K
import lightning
import numpy as np
import pytest
import torch
from skimage.color import rgb2lab
from support import build_datamodule, quiet_trainer
from torch.utils.data import default_collate

from colorization.data import Augmentation, LabDataModule, Synthetic
from colorization.errors import ConfigError


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    src = Synthetic(tmp_path_factory.mktemp("syn"), count=96, size=32)
    src.prepare()
    return src


def _dm(source, **kwargs) -> LabDataModule:
    return LabDataModule(source, image_size=32, batch_size=8, num_workers=0, **kwargs)


def _compose_dm(data_dir: Path, *overrides: str) -> LabDataModule:
    """The DataModule of `python train.py data=synthetic OVERRIDES` (tiny, no workers)."""
    base = ["data=synthetic", "data.source.count=96", "data.source.size=32",
            "data.image_size=32", "data.batch_size=8", "data.num_workers=0"]  # fmt: skip
    return build_datamodule([*base, *overrides], data_dir)


def _centre_batch(dm: LabDataModule, n: int = 64) -> dict[str, torch.Tensor]:
    """n centre crops of training images as one uint8 batch, as a loader would collate them."""
    data = dm.dataset("train", random_crop=False)
    return default_collate([data[i] for i in range(n)])


def _at(trainer: lightning.Trainer, stage: str | None) -> None:
    """Put the trainer in a stage ("training", "testing"...; None: idle), as Lightning does while it runs."""
    trainer.state.stage = None
    if stage is not None:
        setattr(trainer, stage, True)


def test_the_default_flip_mirrors_about_half_of_a_training_batch_and_nothing_else(tmp_path):
    dm = _compose_dm(tmp_path)  # conf/data/base/lab.yaml's augmentation, as `python train.py` gets it
    dm.prepare_data()
    assert dm.hparams["train_aug"] == [{"RandomHorizontalFlip": {"p": 0.5}}] and dm.hparams["aug"] is None
    raw = _centre_batch(dm)
    assert not any(torch.equal(img, img.flip(-1)) for img in raw["rgb"])  # no image is its own mirror
    plain = dm.to_lab(raw)
    dm.trainer = trainer = quiet_trainer()
    torch.manual_seed(0)
    _at(trainer, "training")
    out = dm.on_after_batch_transfer(dict(raw), 0)
    mirrored = torch.tensor(
        [torch.equal(a, b.flip(-1)) for a, b in zip(out["rgb"], plain["rgb"], strict=True)]
    )
    kept = torch.tensor([torch.equal(a, b) for a, b in zip(out["rgb"], plain["rgb"], strict=True)])
    assert bool((mirrored ^ kept).all())  # each image is either mirrored or untouched
    assert 20 <= int(mirrored.sum()) <= 44  # p = 0.5 of 64 images (3 standard deviations)
    for stage in ("validating", "sanity_checking", "testing", "predicting", None):
        for seed in range(3):
            torch.manual_seed(seed)
            _at(trainer, stage)
            seen = dm.on_after_batch_transfer(dict(raw), 0)
            for key in ("rgb", "L", "ab"):
                torch.testing.assert_close(seen[key], plain[key], rtol=0, atol=0)


class _Recorder(lightning.LightningModule):
    """Keeps the batches of every stage as Lightning hands them over (after on_after_batch_transfer)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Conv2d(1, 2, 1)
        self.seen: dict[str, list[dict[str, torch.Tensor]]] = {}

    def _keep(self, batch: dict[str, torch.Tensor]) -> None:
        self.seen.setdefault(str(self.trainer.state.stage.value), []).append(batch)

    def training_step(self, batch, _):
        self._keep(batch)
        return torch.nn.functional.mse_loss(self.w(batch["L"]), batch["ab"])

    def validation_step(self, batch, _):
        self._keep(batch)

    def test_step(self, batch, _):
        self._keep(batch)

    def predict_step(self, batch, _):
        self._keep(batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_each_stage_gets_its_configured_augmentation_in_a_real_run(tmp_path):
    """aug is the fallback (null: use it, []: none): train gray, val and sanity inverted, test upside down."""
    dm = _compose_dm(
        tmp_path,
        "data.aug=[{RandomInvert:{p:1.0}}]",
        "data.train_aug=[{RandomGrayscale:{p:1.0}}]",
        "data.test_aug=[{RandomVerticalFlip:{p:1.0}}]",
        "data.predict_aug=[]",
        "data.val_fraction=0.2",
    )
    assert dm.hparams["val_aug"] is None and dm.hparams["predict_aug"] == []
    assert dm.hparams["train_aug"] == [{"RandomGrayscale": {"p": 1.0}}]  # the list replaced the default
    model = _Recorder()
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=1
    )
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    trainer.predict(model, datamodule=dm)
    assert set(model.seen) == {"train", "sanity_check", "validate", "test", "predict"}
    for batch in model.seen["train"]:
        assert batch["ab"].abs().max() < 0.02  # grayscale: no chroma left
    for stage, split, expect in (
        ("sanity_check", "val", lambda rgb: 1.0 - rgb),
        ("validate", "val", lambda rgb: 1.0 - rgb),
        ("test", "test", lambda rgb: rgb.flip(-2)),
        ("predict", "test", lambda rgb: rgb),
    ):
        data = dm.dataset(split)
        for batch in model.seen[stage]:
            plain = torch.stack([data[int(i)]["rgb"] for i in batch["index"]]).float() / 255
            torch.testing.assert_close(batch["rgb"], expect(plain), atol=1e-6, rtol=0, msg=stage)


def test_flips_move_the_bytes_exactly_as_kornia_moves_the_float_image():
    x = torch.randint(0, 256, (16, 3, 8, 12), dtype=torch.uint8)
    aug = Augmentation([{"RandomHorizontalFlip": {"p": 0.5}}, "RandomVerticalFlip"], "data.train_aug")
    for seed in range(4):
        torch.manual_seed(seed)
        ours = aug(x)
        torch.manual_seed(seed)
        ref = K.RandomVerticalFlip()(K.RandomHorizontalFlip(p=0.5)(x.float()))
        assert ours.dtype == torch.uint8 and torch.equal(ours.float(), ref)
        assert not torch.equal(ours, x)


def test_other_geometric_augmentations_are_computed_by_kornia_and_stay_bytes(source):
    dm = _dm(source, train_aug=[{"RandomRotation": {"degrees": [90.0, 90.0], "p": 1.0}}])
    raw = _centre_batch(dm, 8)
    rotated = dm.augmentation("train")(raw["rgb"])
    assert rotated.dtype == torch.uint8  # so the Lab conversion keeps its uint8 lookup-table input
    turned = torch.rot90(raw["rgb"], 1, dims=(-2, -1)).int()  # Kornia's positive angle: counter-clockwise
    assert (rotated.int() - turned).abs().max() <= 1  # one rounding of the bilinear interpolation
    plain, out = dm.to_lab(raw), dm.to_lab(raw, "train")
    torch.testing.assert_close(out["L"], torch.rot90(plain["L"], 1, dims=(-2, -1)), atol=0.01, rtol=0)


def test_photometric_augmentations_run_on_float_rgb_after_the_geometric_ones(source):
    dm = _dm(source, val_aug=[{"RandomInvert": {"p": 1.0}}, {"RandomHorizontalFlip": {"p": 1.0}}])
    raw = _centre_batch(dm, 8)
    out = dm.to_lab(raw, "val")
    expected = 1.0 - raw["rgb"].flip(-1).float() / 255  # the flip ran first (geometric), then the inversion
    torch.testing.assert_close(out["rgb"], expected, atol=1e-6, rtol=0)
    ref = np.stack([rgb2lab(img.permute(1, 2, 0).double().numpy()) for img in expected])  # scikit-image
    np.testing.assert_allclose(out["L"][:, 0].numpy() * 100 + 50, ref[..., 0], atol=0.05)
    np.testing.assert_allclose(out["ab"].permute(0, 2, 3, 1).numpy() * 110, ref[..., 1:], atol=0.1)
    noisy = _dm(source, test_aug=[{"RandomGaussianNoise": {"std": 0.5, "p": 1.0}}]).to_lab(raw, "test")
    assert 0 <= noisy["rgb"].min() and noisy["rgb"].max() <= 1  # clamped back into the RGB range
    assert not torch.equal(noisy["rgb"], raw["rgb"].float() / 255)


def test_augment_false_switches_training_augmentation_off(source):
    inverted = [{"RandomInvert": {"p": 1.0}}]
    dm = _dm(source, augment=False, train_aug=inverted, val_aug=inverted)
    raw = _centre_batch(dm, 8)
    torch.testing.assert_close(dm.to_lab(raw, "train")["rgb"], raw["rgb"].float() / 255, atol=0, rtol=0)
    assert dm.dataset("train").crop_scale is None  # centre crops in the workers too
    torch.testing.assert_close(dm.to_lab(raw, "val")["rgb"], 1 - raw["rgb"].float() / 255, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="stage must be one of"):
        dm.to_lab(raw, "training")
    with pytest.raises(ValueError, match="uint8"):
        dm.augmentation("val")(raw["rgb"].float())


BAD_SPECS = [
    ({"train_aug": ["Nope"]}, "data.train_aug.0='Nope' is not allowed; allowed values: a Kornia 2D"),
    ({"val_aug": ["RandomHorizontalFlip", "RandomMixUpV2"]}, "data.val_aug.1='RandomMixUpV2' is not allowed"),
    ({"val_aug": [{"RandomInvert": None, "RandomGrayscale": None}]}, "data.val_aug.0={'RandomInvert': None,"),
    ({"aug": {"RandomHorizontalFlip": {}}}, "data.aug={'RandomHorizontalFlip': {}} is not allowed; allowed"),
    (
        {"aug": "RandomHorizontalFlip"},
        "data.aug='RandomHorizontalFlip' is not allowed; allowed values: null,",
    ),
    ({"test_aug": [{"RandomRotation": 0.5}]}, "data.test_aug.0.RandomRotation=0.5 is not allowed; allowed"),
    (
        {"predict_aug": [{"RandomRotation": {"angle": 3}}]},
        "data.predict_aug.0.RandomRotation={'angle': 3} is",
    ),
    (
        {"train_aug": [{"ColorJiggle": {"brightness": -1.0}}]},
        "data.train_aug.0.ColorJiggle={'brightness': -1",
    ),
]


@pytest.mark.parametrize(("kwargs", "needle"), BAD_SPECS)
def test_bad_augmentation_specs_are_one_line_config_errors(source, kwargs, needle):
    with pytest.raises(ConfigError) as info:
        _dm(source, **kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)
    if "a Kornia 2D" in needle:
        assert "RandomHorizontalFlip" in str(info.value) and "ColorJiggle" in str(info.value)


def test_a_bad_spec_from_the_command_line_names_its_key(tmp_path):
    with pytest.raises(
        Exception
    ) as info:  # Hydra wraps the constructor's error; the app prints the innermost
        _compose_dm(tmp_path, "data.train_aug=[{RandomRotaton:{degrees:10}}]")
    inner = info.value
    while not isinstance(inner, ConfigError) and inner.__cause__ is not None:
        inner = inner.__cause__
    assert isinstance(inner, ConfigError) and str(inner).startswith(
        "data.train_aug.0={'RandomRotaton': {'degr"
    )


def test_augmentations_are_saved_as_plain_specs(tmp_path):
    """Checkpoints keep the specs, never Kornia modules: they load with weights_only."""
    dm = _compose_dm(tmp_path, "data.train_aug=[RandomHorizontalFlip,{ColorJiggle:{brightness:0.1}}]")
    assert dm.hparams["train_aug"] == [{"RandomHorizontalFlip": {}}, {"ColorJiggle": {"brightness": 0.1}}]
    assert type(dm.hparams["train_aug"]) is list and type(dm.hparams["train_aug"][1]["ColorJiggle"]) is dict
    torch.save(dict(dm.hparams), tmp_path / "hp.pt")
    loaded = torch.load(tmp_path / "hp.pt", weights_only=True)
    assert loaded["train_aug"] == dm.hparams["train_aug"] and loaded["test_split"] == "test"
    assert repr(dm.augmentation("train")) == "RandomHorizontalFlip+ColorJiggle"
    dm.prepare_data()
    dm.setup()
    assert (
        "augmentation: train RandomHorizontalFlip+ColorJiggle, val none, test none, predict none"
        in dm.summary()
    )
