"""LabDataModule: batches (shapes, dtypes, ranges, vs scikit-image), splits, workers, sources, configs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab
from support import adam, quiet_trainer

from colorization.color import ABGamut, ColorPrior
from colorization.data import Folder, LabDataModule, Synthetic, synthetic_batch, synthetic_scene
from colorization.data.sources import Cats, ImageNet, Intel
from colorization.errors import ConfigError, DataUnavailableError

CONF = Path(__file__).resolve().parents[1] / "conf" / "data"


def _write_photos(folder: Path, names: list[str], size: int = 40) -> None:
    for name in names:
        seed = int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big")
        rng = np.random.default_rng(seed)
        y, x = np.mgrid[0:size, 0:size]
        base = rng.uniform(0, 255, 3)
        img = np.clip(base + np.stack([x, y, x + y], -1) * rng.uniform(-2, 2, 3), 0, 255).astype(np.uint8)
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)


@pytest.fixture(scope="module")
def synthetic_dm(tmp_path_factory):
    source = Synthetic(tmp_path_factory.mktemp("syn"), count=96, size=32)
    dm = LabDataModule(source, image_size=32, batch_size=8, num_workers=0)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_batches_have_the_contract_shapes_dtypes_and_ranges(synthetic_dm):
    dm = synthetic_dm
    raw = next(iter(dm.train_dataloader()))
    assert raw["rgb"].dtype == torch.uint8 and raw["rgb"].shape == (8, 3, 32, 32)
    for stage in (None, "train"):
        batch = dm.to_lab(raw, stage)
        assert batch["L"].shape == (8, 1, 32, 32) and batch["ab"].shape == (8, 2, 32, 32)
        assert batch["rgb"].shape == (8, 3, 32, 32)
        assert all(batch[k].dtype == torch.float32 for k in ("L", "ab", "rgb"))
        assert -0.5 - 1e-4 <= batch["L"].min() and batch["L"].max() <= 0.5 + 1e-4
        assert batch["ab"].abs().max() <= 128 / 110
        assert 0 <= batch["rgb"].min() and batch["rgb"].max() <= 1
        assert batch["ab"].abs().max() > 0.2  # the scenes are colourful


def test_lab_agrees_with_scikit_image(synthetic_dm):
    dm = synthetic_dm
    raw = next(iter(dm.val_dataloader()))
    batch = dm.to_lab(raw)
    ref = np.stack([rgb2lab(img.permute(1, 2, 0).numpy()) for img in raw["rgb"]])  # B×H×W×3, Lab units
    L = batch["L"][:, 0].numpy() * 100 + 50
    ab = batch["ab"].permute(0, 2, 3, 1).numpy() * 110
    np.testing.assert_allclose(L, ref[..., 0], atol=0.05)
    np.testing.assert_allclose(ab, ref[..., 1:], atol=0.1)
    np.testing.assert_array_equal((batch["rgb"] * 255).round().byte(), raw["rgb"])


def test_val_crops_are_the_centre_of_the_file(synthetic_dm):
    dm = synthetic_dm
    ds = dm.dataset("val")
    item = ds[0]
    ref = np.asarray(Image.open(dm.source.image_root / ds.paths[0]).convert("RGB"))
    np.testing.assert_array_equal(item["rgb"].permute(1, 2, 0).numpy(), ref)


def test_on_after_batch_transfer_augments_only_while_training(synthetic_dm):
    dm = synthetic_dm
    raw = next(iter(dm.val_dataloader()))
    plain = dm.to_lab(raw)
    trainer = quiet_trainer()
    dm.trainer = trainer
    try:
        trainer.validating = True
        evaluated = dm.on_after_batch_transfer(dict(raw), 0)
        torch.testing.assert_close(evaluated["L"], plain["L"])
        trainer.training = True
        torch.manual_seed(0)
        trained = dm.on_after_batch_transfer(dict(raw), 0)
        assert trained["L"].shape == plain["L"].shape and not torch.equal(trained["L"], plain["L"])
        assert dm.on_after_batch_transfer(trained, 0) is trained  # already converted: untouched
    finally:
        dm.trainer = None


def test_training_flip_moves_rgb_l_and_ab_together(synthetic_dm):
    dm = synthetic_dm
    raw = next(iter(dm.val_dataloader()))
    plain = dm.to_lab(raw)
    torch.manual_seed(1)
    flipped = dm.to_lab(raw, "train")
    pairs = zip(flipped["rgb"], plain["rgb"], strict=True)
    mirrored = torch.tensor([not torch.equal(a, b) for a, b in pairs])
    assert 0 < int(mirrored.sum()) < len(mirrored)  # some images flipped, some not (seeded)
    for key in ("rgb", "L", "ab"):
        expected = torch.where(mirrored[:, None, None, None], plain[key].flip(-1), plain[key])
        torch.testing.assert_close(flipped[key], expected)


def test_a_configured_vertical_flip_moves_rgb_l_and_ab(synthetic_dm):
    """Any augmentation comes from config: here a vertical flip of every training image."""
    dm = LabDataModule(synthetic_dm.source, image_size=32, batch_size=8, num_workers=0,
                       train_aug=[{"RandomVerticalFlip": {"p": 1.0}}])  # fmt: skip
    raw = next(iter(synthetic_dm.val_dataloader()))
    plain = dm.to_lab(raw)
    flipped = dm.to_lab(raw, "train")
    for key in ("rgb", "L", "ab"):
        torch.testing.assert_close(flipped[key], plain[key].flip(-2), atol=1e-5, rtol=0)


def test_conversion_threads_are_restored(synthetic_dm, monkeypatch):
    from colorization.data import datamodule, loading

    before = torch.get_num_threads()
    seen = []
    monkeypatch.setattr(loading, "_cpu_count", lambda: 2)

    def fake_lab_batch(rgb: torch.Tensor, check: bool) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(torch.get_num_threads())
        return torch.zeros(len(rgb), 1, *rgb.shape[-2:]), torch.zeros(len(rgb), 2, *rgb.shape[-2:])

    monkeypatch.setattr(datamodule, "lab_batch", fake_lab_batch)
    torch.set_num_threads(2)
    try:
        dm = LabDataModule(synthetic_dm.source, image_size=32, batch_size=8, num_workers=2)
        dm.to_lab({"rgb": torch.zeros(2, 3, 4, 4, dtype=torch.uint8)})
        assert seen == [1] and torch.get_num_threads() == 2  # workers on all cores: 1 thread, then restored
    finally:
        torch.set_num_threads(before)


def test_lightning_fit_sees_lab_batches(synthetic_dm):
    import lightning

    seen: list[set[str]] = []

    class Probe(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Conv2d(1, 2, 1)

        def training_step(self, batch, _):
            seen.append(set(batch))
            return torch.nn.functional.mse_loss(self.w(batch["L"]), batch["ab"])

        def validation_step(self, batch, _):
            seen.append(set(batch))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    trainer = lightning.Trainer(
        fast_dev_run=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu"
    )
    trainer.fit(Probe(), datamodule=synthetic_dm)
    assert seen and all({"L", "ab", "rgb"} <= keys for keys in seen)


def test_two_workers(tmp_path):
    dm = LabDataModule(Synthetic(tmp_path, count=40, size=32), image_size=24, batch_size=4, num_workers=2)
    assert dm.persistent_workers
    dm.prepare_data()
    loader = dm.train_dataloader()
    assert loader.num_workers == 2 and loader.persistent_workers
    n = sum(b["rgb"].shape[0] for b in loader)
    assert n == len(dm.splits["train"]) // 4 * 4
    assert LabDataModule(Synthetic(tmp_path, count=40, size=32), num_workers=0).persistent_workers is False


def test_split_stability_when_files_are_added(tmp_path):
    names = [f"p{i:03d}.png" for i in range(60)]
    _write_photos(tmp_path, names)
    dm = LabDataModule(Folder(tmp_path), image_size=16, num_workers=0, val_fraction=0.2, test_fraction=0.2)
    dm.prepare_data()
    dm.setup()
    before = {p: s for s, paths in dm.splits.items() for p in paths}
    _write_photos(tmp_path, [f"new/q{i:03d}.png" for i in range(40)])
    (tmp_path / names[0]).unlink()
    dm2 = LabDataModule(Folder(tmp_path), image_size=16, num_workers=0, val_fraction=0.2, test_fraction=0.2)
    dm2.prepare_data()
    dm2.setup()
    after = {p: s for s, paths in dm2.splits.items() for p in paths}
    assert len(after) == 99
    assert all(after[p] == s for p, s in before.items() if p != names[0])
    assert all(dm.splits[s] for s in ("train", "val", "test"))


def test_split_folders_gray_images_and_skips(tmp_path):
    _write_photos(tmp_path, [f"train/a{i}.png" for i in range(20)] + [f"test/b{i}.png" for i in range(5)])
    Image.new("L", (30, 30), 90).save(tmp_path / "train" / "gray.png")
    (tmp_path / "train" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    dm = LabDataModule(Folder(tmp_path), image_size=16, num_workers=0, val_fraction=0.2)
    dm.prepare_data()
    dm.setup()
    assert sorted(dm.splits["test"]) == sorted(f"test/b{i}.png" for i in range(5))
    assert all(p.startswith("train/") for p in dm.splits["train"] + dm.splits["val"])
    assert dm.gray_dropped == 1 and "train/gray.png" not in sum(dm.splits.values(), [])
    assert "broken.jpg" in dm.summary() and "1 gray dropped" in dm.summary()
    keep = LabDataModule(Folder(tmp_path), image_size=16, num_workers=0, drop_gray=False)
    keep.setup()
    assert "train/gray.png" in sum(keep.splits.values(), [])


def test_no_test_split_falls_back_to_val(tmp_path):
    _write_photos(tmp_path, [f"p{i}.png" for i in range(30)])
    dm = LabDataModule(Folder(tmp_path), image_size=16, num_workers=0, val_fraction=0.3, test_fraction=0.0)
    dm.setup()
    assert dm.splits["test"] == [] and len(dm.test_dataloader().dataset) == len(dm.splits["val"])


def test_test_split_chooses_what_test_and_predict_serve(tmp_path):
    """evaluate.py's split: centre crops in order of train, val or test; no random crop, no shuffling."""
    from torch.utils.data import SequentialSampler

    from colorization.data.images import load_square

    _write_photos(tmp_path, [f"p{i}.png" for i in range(40)])
    for split in ("train", "val", "test"):
        dm = LabDataModule(Folder(tmp_path), image_size=16, batch_size=4, num_workers=0, val_fraction=0.2,
                           test_fraction=0.2, test_split=split)  # fmt: skip
        dm.setup()
        assert dm.splits[split] and dm.hparams["test_split"] == split
        for loader in (dm.test_dataloader(), dm.predict_dataloader()):
            assert loader.dataset.paths == dm.splits[split] and loader.dataset.crop_scale is None
            assert isinstance(loader.sampler, SequentialSampler) and not loader.drop_last
        first = next(iter(dm.test_dataloader()))["rgb"][0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(first, load_square(tmp_path / dm.splits[split][0], 16))

    class Count(lightning.LightningModule):
        seen: list[int] = []

        def test_step(self, batch, _):
            self.seen.extend(batch["index"].tolist())

    dm = LabDataModule(Folder(tmp_path), image_size=16, batch_size=4, num_workers=0, test_split="train")
    quiet_trainer(tmp_path).test(Count(), datamodule=dm, verbose=False)
    assert Count.seen == list(
        range(len(dm.splits["train"]))
    )  # Lightning's test loop: each training image once
    empty = LabDataModule(Folder(tmp_path), image_size=16, num_workers=0, val_fraction=0.0, test_split="val")
    with pytest.raises(DataUnavailableError, match="the val split .* is empty; raise data.val_fraction"):
        empty.test_dataloader()


def test_missing_data_and_bad_config_are_one_line_errors(tmp_path):
    for source in (Folder(tmp_path / "none"), Intel(tmp_path / "intel"), ImageNet(tmp_path / "in"),
                   Cats(tmp_path / "cats", variant="kaggle")):  # fmt: skip
        dm = LabDataModule(source, num_workers=0)
        with pytest.raises(DataUnavailableError) as info:
            dm.prepare_data()
        assert "\n" not in str(info.value) and str(source.root) in str(info.value)
    assert "kaggle.com/datasets/puneet6060" in Intel(tmp_path).missing_message()
    with pytest.raises(DataUnavailableError, match="save it as"):
        LabDataModule(Cats(tmp_path / "cats"), download=False).prepare_data()
    with pytest.raises(ConfigError, match="unknown data source"):
        LabDataModule("nope", root=tmp_path)
    with pytest.raises(ConfigError, match="image_size"):
        LabDataModule("folder", root=tmp_path, image_size=0)
    with pytest.raises(ConfigError, match="bad data source options"):
        LabDataModule("folder", root=tmp_path, colour="red")


def test_imagenet_class_subset_and_kaggle_zip(tmp_path):
    root = tmp_path / "in"
    _write_photos(root, [f"train/n0{c}/x{i}.JPEG" for c in range(4) for i in range(3)])
    dm = LabDataModule("imagenet", root=root, classes=["n01", "n03"], num_workers=0, image_size=16)
    dm.prepare_data()
    dm.setup()
    assert {p.split("/")[1] for p in sum(dm.splits.values(), [])} == {"n01", "n03"}
    first2 = LabDataModule("imagenet", root=root, classes=2, num_workers=0, image_size=16)
    first2.setup()
    assert {p.split("/")[1] for p in sum(first2.splits.values(), [])} == {"n00", "n01"}

    import zipfile

    kaggle = tmp_path / "intel"
    kaggle.mkdir()
    _write_photos(tmp_path / "src", [f"seg_train/seg_train/forest/{i}.jpg" for i in range(6)])
    with zipfile.ZipFile(kaggle / "archive.zip", "w") as zf:
        for p in sorted((tmp_path / "src").rglob("*.jpg")):
            zf.write(p, p.relative_to(tmp_path / "src").as_posix())
    dm = LabDataModule(Intel(kaggle), num_workers=0, image_size=16)
    dm.prepare_data()
    dm.setup()
    assert len(sum(dm.splits.values(), [])) == 6 and (kaggle / "archive" / "seg_train").is_dir()


def test_prior_and_gamut_are_computed_once_and_cached(synthetic_dm, monkeypatch):
    dm = synthetic_dm
    prior = dm.compute_prior(ABGamut.zhang())
    assert isinstance(prior, ColorPrior) and torch.isclose(prior.probs.sum(), torch.tensor(1.0), atol=1e-5)
    gamut = dm.compute_gamut(min_count=4)
    assert 3 < len(gamut) < 313
    assert list(dm.cache_dir.glob("prior-*.pt")) and list(dm.cache_dir.glob("gamut-*.pt"))

    def boom(*args, **kwargs):
        raise AssertionError("recomputed instead of using the cache")

    monkeypatch.setattr(LabDataModule, "_train_batches", boom)
    torch.testing.assert_close(dm.compute_prior(ABGamut.zhang()).probs, prior.probs)
    torch.testing.assert_close(dm.compute_gamut(min_count=4).points, gamut.points)


def test_synthetic_scenes(tmp_path):
    rgb, mask = synthetic_scene(5, 48)
    rgb2, mask2 = synthetic_scene(5, 48)
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8
    assert mask.shape == (48, 48) and mask.dtype == bool
    np.testing.assert_array_equal(rgb, rgb2)
    np.testing.assert_array_equal(mask, mask2)
    batch, masks = synthetic_batch(64, 32)
    assert batch.shape == (64, 3, 32, 32) and masks.shape == (64, 1, 32, 32)
    assert masks.any(dim=(1, 2, 3)).all()
    labs = [rgb2lab(batch[i].permute(1, 2, 0).numpy()) for i in range(64)]
    fruit_a = np.array([lab[masks[i, 0].numpy(), 1].mean() for i, lab in enumerate(labs)])
    fruit_L = np.array([lab[masks[i, 0].numpy(), 0].mean() for i, lab in enumerate(labs)])
    red, green = fruit_a > 0, fruit_a < 0
    assert 10 < red.sum() < 54 and red.sum() + green.sum() == 64  # both kinds, roughly half each
    assert abs(fruit_L[red].mean() - fruit_L[green].mean()) < 2.0  # same lightness: L cannot tell them apart
    src = Synthetic(tmp_path, count=5, size=32, seed=7)
    src.prepare()
    f = sorted(src.image_root.iterdir())[2]
    np.testing.assert_array_equal(np.asarray(Image.open(f)), synthetic_scene(src.scene_seed(f.name), 32)[0])


SOURCES = ["samples", "synthetic", "folder", "cats", "mirflickr", "imagenet", "intel", "fruits", "landscapes"]


def _data_node(name: str, data_dir: Path, overrides: tuple[str, ...] = ()):
    """The data node as Hydra composes it for `python train.py data=name ...` (demo presets left out)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF.parent), version_base="1.3"):
        cfg = compose("train", overrides=[f"data={name}", f"paths.data_dir={data_dir}", "~demo", *overrides])
    return cfg.data


@pytest.mark.parametrize("name", [*SOURCES, "animals"])
def test_every_data_config_instantiates(name, tmp_path):
    """Each conf/data option builds its DataModule as the app builds it (Hydra's nodes as plain values)."""
    from colorization.app.training import instantiate_owned as instantiate

    dm = instantiate(_data_node(name, tmp_path), _convert_="all")
    assert isinstance(dm, LabDataModule) and dm.source.name == name
    assert dm.source.root == tmp_path / name
    assert dm.prior_max_images is None  # the prior streams every training image by default
    # the command-line overrides of the README still reach the DataModule and its source
    overrides = (
        "data.root=" + str(tmp_path / "elsewhere"),
        "data.image_size=48",
        "data.batch_size=3",
        "data.num_workers=1",
        "data.prior_max_images=50",
    )
    dm = instantiate(_data_node(name, tmp_path, overrides), _convert_="all")
    assert dm.source.root == tmp_path / "elsewhere" and dm.image_size == 48
    assert (dm.batch_size, dm.num_workers, dm.prior_max_images) == (3, 1, 50)


def test_data_configs_share_one_base():
    """Each data option lists conf/data/base/lab.yaml and repeats none of its values."""
    from omegaconf import OmegaConf

    base = OmegaConf.to_container(OmegaConf.load(CONF / "base" / "lab.yaml"))
    assert base["_target_"] == "colorization.data.LabDataModule" and base["prior_max_images"] is None
    for name in [*SOURCES, "animals"]:
        own = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
        assert own.pop("defaults") == ["base/lab@_here_", "_self_"], name
        repeated = [k for k, v in own.items() if k in base and base[k] == v and k not in ("root", "source")]
        assert not repeated, f"{name}.yaml repeats base keys {repeated}"
        assert "source" in own and "_target_" in own["source"] and "root" in own, name


def test_samples_config_defaults_suit_a_cpu_run(tmp_path):
    cfg = _data_node("samples", tmp_path)
    assert cfg.image_size <= 96 and cfg.batch_size <= 32 and cfg.num_workers <= 2
    assert _data_node("intel", tmp_path).image_size == 150


def test_prior_defaults_to_every_training_image(synthetic_dm):
    import inspect

    assert inspect.signature(LabDataModule).parameters["prior_max_images"].default is None
    seen = sum(len(ab) for ab in synthetic_dm._train_batches("prior"))
    assert seen == len(synthetic_dm.splits["train"]) > 0


def test_checkpoints_carry_the_datamodule_hyperparameters(tmp_path):
    """The colorize tool reads checkpoint["datamodule_hyper_parameters"]["image_size"]."""
    import lightning

    from colorization.objectives import RegressionModule

    source = Synthetic(tmp_path / "syn", count=24, size=32)
    dm = LabDataModule(source, image_size=24, batch_size=4, num_workers=0, crop_scale=[0.6, 1.0])
    net = {"_target_": "colorization.nets.BaselineCNN", "variant": "small7", "width": 0.25}
    model = RegressionModule(net, adam(), perceptual_metrics=False)
    ckpt_dir = tmp_path / "ckpt"
    trainer = quiet_trainer(
        tmp_path,
        max_steps=1,
        limit_val_batches=0,
        enable_checkpointing=True,
        callbacks=[lightning.pytorch.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_last=True)],
    )
    trainer.fit(model, datamodule=dm)
    files = sorted(ckpt_dir.glob("*.ckpt"))
    assert files
    for f in files:
        hp = torch.load(f, map_location="cpu", weights_only=True)["datamodule_hyper_parameters"]
        assert hp["image_size"] == 24 and hp["batch_size"] == 4 and hp["root"] == str(tmp_path / "syn")
        assert list(hp["crop_scale"]) == [0.6, 1.0] and "source" not in hp
        assert (
            hp["train_aug"] == [{"RandomHorizontalFlip": {"p": 0.5}}] and hp["aug"] is None
        )  # specs, no modules
        assert hp["test_split"] == "test"


def test_cats_keep_only_cats(tmp_path):
    pets = Cats(tmp_path)
    assert pets.accept("British_Shorthair_12.jpg") and pets.accept("Sphynx_1.jpg")
    assert not pets.accept("american_bulldog_3.jpg") and not pets.accept("Boxer_2.jpg")
    kaggle = Cats(tmp_path, variant="kaggle")
    assert kaggle.accept("train/cat.0.jpg") and not kaggle.accept("train/dog.0.jpg")
    assert pets.image_root == tmp_path / "oxford-iiit-pet" / "images"
    with pytest.raises(ConfigError, match="variant"):
        Cats(tmp_path, variant="dogs")
