"""Each data value is checked once, where it is owned: a one-line ConfigError with the key, the value and the
allowed values (the app prints it as it is)."""

from __future__ import annotations

import pytest
from support import build_datamodule

from colorization.data import CATALOGUE, LabDataModule, Synthetic
from colorization.errors import ConfigError

INT1 = "allowed values: integer >= 1"

DATAMODULE = [
    ({"batch_size": 0}, "data.batch_size=0 is out of range; " + INT1),
    ({"batch_size": True}, "data.batch_size=True is out of range; " + INT1),
    ({"batch_size": 2.0}, "data.batch_size=2.0 is out of range; " + INT1),
    ({"batch_size": "8"}, "data.batch_size='8' is out of range; " + INT1),
    ({"num_workers": -1}, "data.num_workers=-1 is out of range; allowed values: integer >= 0 or null"),
    ({"num_workers": False}, "data.num_workers=False is out of range; allowed values: integer >= 0 or null"),
    ({"num_workers": 1.5}, "data.num_workers=1.5 is out of range; allowed values: integer >= 0 or null"),
    ({"image_size": 4}, "data.image_size=4 is out of range; allowed values: integer >= 8"),
    ({"image_size": 64.0}, "data.image_size=64.0 is out of range; allowed values: integer >= 8"),
    ({"val_fraction": 1.0}, "data.val_fraction=1.0 is out of range; allowed values: a number in [0, 1); "),
    ({"test_fraction": -0.1}, "data.test_fraction=-0.1 is out of range; allowed values: a number in [0, 1)"),
    ({"val_fraction": True}, "data.val_fraction=True is out of range; allowed values: a number in [0, 1)"),
    (
        {"val_fraction": 0.6, "test_fraction": 0.5},
        "data.val_fraction + data.test_fraction=1.1 is out of range",
    ),
    (
        {"crop_scale": [0.0, 1.0]},
        "data.crop_scale=[0.0, 1.0] is out of range; allowed values: [min, max] with",
    ),
    (
        {"crop_scale": [0.8, 0.5]},
        "data.crop_scale=[0.8, 0.5] is out of range; allowed values: [min, max] with",
    ),
    ({"crop_scale": [0.5]}, "data.crop_scale=[0.5] is out of range; allowed values: [min, max] with 0 < min"),
    ({"crop_scale": "0.5"}, "data.crop_scale='0.5' is out of range; allowed values: [min, max] with 0 < min"),
    ({"seed": 1.5}, "data.seed=1.5 is out of range; allowed values: integer"),
    ({"augment": "yes"}, "data.augment='yes' is not allowed; allowed values: true, false"),
    ({"drop_gray": 1}, "data.drop_gray=1 is not allowed; allowed values: true, false"),
    ({"download": "no"}, "data.download='no' is not allowed; allowed values: true, false"),
    ({"pin_memory": "auto"}, "data.pin_memory='auto' is not allowed; allowed values: true, false, null"),
    (
        {"persistent_workers": 0},
        "data.persistent_workers=0 is not allowed; allowed values: true, false, null",
    ),
    (
        {"prior_max_images": 0},
        "data.prior_max_images=0 is out of range; allowed values: integer >= 1 or null",
    ),
    (
        {"prior_max_images": True},
        "data.prior_max_images=True is out of range; allowed values: integer >= 1 or",
    ),
    ({"max_pixels": 0}, "data.max_pixels=0 is out of range; " + INT1),
    ({"test_split": "holdout"}, "data.test_split='holdout' is not allowed; allowed values: train, val, test"),
]


@pytest.mark.parametrize(("kwargs", "message"), DATAMODULE, ids=[str(k) for k, _ in DATAMODULE])
def test_the_datamodule_checks_its_values(tmp_path, kwargs, message):
    with pytest.raises(ConfigError) as info:
        LabDataModule(Synthetic(tmp_path), **kwargs)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


SOURCES = [
    ("samples", {"count": 0}, "data.source.count=0 is out of range; " + INT1),
    ("samples", {"size": 4}, "data.source.size=4 is out of range; allowed values: integer >= 8"),
    ("synthetic", {"count": True}, "data.source.count=True is out of range; " + INT1),
    ("synthetic", {"seed": "a"}, "data.source.seed='a' is out of range; allowed values: integer"),
    (
        "samples",
        {"min_scale": 0},
        "data.source.min_scale=0 is out of range; allowed values: 0 < data.source.min",
    ),
    (
        "samples",
        {"max_scale": 1.5},
        "data.source.max_scale=1.5 is out of range; allowed values: 0 < data.sourc",
    ),
    ("samples", {"min_scale": 0.5, "max_scale": 0.4}, "data.source.max_scale=0.4 is out of range; allowed"),
    (
        "samples",
        {"val_photos": ["dog"]},
        "data.source.val_photos=['dog'] is not allowed; allowed values: a list",
    ),
    (
        "samples",
        {"test_photos": "chelsea"},
        "data.source.test_photos='chelsea' is not allowed; allowed values",
    ),
    (
        "samples",
        {"val_photos": ["coffee"], "test_photos": ["coffee"]},
        "data.source.test_photos=['coffee'] is",
    ),
    ("cats", {"variant": "dogs"}, "data.source.variant='dogs' is not allowed; allowed values: pets, kaggle"),
    (
        "imagenet",
        {"classes": 0},
        "data.classes=0 is out of range; allowed values: null, a list of class folders",
    ),
    (
        "imagenet",
        {"classes": True},
        "data.classes=True is out of range; allowed values: null, a list of class",
    ),
    (
        "imagenet",
        {"classes": "n01"},
        "data.classes='n01' is out of range; allowed values: null, a list of class",
    ),
]


@pytest.mark.parametrize(("name", "options", "message"), SOURCES, ids=[str(o) for _, o, _ in SOURCES])
def test_the_sources_check_their_options(tmp_path, name, options, message):
    with pytest.raises(ConfigError) as info:
        CATALOGUE[name](root=tmp_path, **options)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    if "seed" not in options:  # the DataModule's own seed is a key of its own (data.seed)
        with pytest.raises(ConfigError, match=message.split("=", 1)[0]):
            LabDataModule(name, root=tmp_path, **options)


def test_holding_out_every_photograph_is_refused(tmp_path):
    from colorization.data.sources import SAMPLE_PHOTOS

    with pytest.raises(ConfigError, match="leave a photograph to train on"):
        LabDataModule(
            "samples", root=tmp_path, val_photos=list(SAMPLE_PHOTOS[:4]), test_photos=list(SAMPLE_PHOTOS[4:])
        )


def test_unknown_sources_and_options_name_what_is_allowed(tmp_path):
    with pytest.raises(ConfigError) as info:
        LabDataModule("nope", root=tmp_path)
    assert str(info.value).startswith(
        "data.source='nope' is an unknown data source; allowed values: animals,"
    )
    with pytest.raises(ConfigError) as info:
        LabDataModule("folder", root=tmp_path, colour="red")
    assert str(info.value).startswith("data.source: bad data source options ['colour'] (")
    assert str(info.value).endswith("allowed values: the keyword arguments of Folder")


def test_values_from_hydra_pass_and_are_plain(tmp_path):
    """Values from the config (as the app hands them over: Hydra's nodes converted) are stored as plain data,
    so checkpoints load with weights_only."""
    overrides = ["data=synthetic", "data.crop_scale=[0.6,1.0]", "data.num_workers=0",
                 "data.val_aug=[{RandomInvert:{p:1.0}}]"]  # fmt: skip
    dm = build_datamodule(overrides, tmp_path)
    assert dm.crop_scale == (0.6, 1.0) and dm.hparams["val_aug"] == [{"RandomInvert": {"p": 1.0}}]
    assert type(dm.hparams["crop_scale"]) is list and type(dm.hparams["val_aug"][0]) is dict
