"""The image files of one split of a data config, as `python train.py data=NAME` composes it: for tools
outside training that need the same photos (the Turing test's `prepare --data NAME`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from colorization import checks
from colorization.data.index import SPLITS
from colorization.errors import ConfigError, DataUnavailableError

__all__ = ["split_photos", "train_photos"]

ROOT = Path(__file__).resolve().parents[2]


def split_photos(data: str, split: str = "test", overrides: Sequence[str] = ()) -> list[tuple[Path, str]]:
    """(file, name) of every image in `split` of the data config `data` (name: the path relative to the
    source's image folder, without suffix); the data is made ready first (generated or downloaded)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import MissingConfigException

    from colorization.app.training import instantiate_owned

    checks.choice("--split", split, SPLITS)
    conf = Path(os.environ.get("COLORIZATION_ROOT", ROOT)) / "conf"
    if not (conf / "train.yaml").is_file():
        raise ConfigError(f"--data needs the project's conf/ folder; not found at {conf}")
    os.environ.setdefault("COLORIZATION_ROOT", str(conf.parent))
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose("train", overrides=[f"data={data}", *overrides])
    except MissingConfigException:
        options = ", ".join(sorted(p.stem for p in (conf / "data").glob("*.yaml")))
        raise ConfigError(f"--data {data} is not a data config; allowed values: {options}") from None
    datamodule = instantiate_owned(cfg.data, _convert_="all", test_split=split)
    datamodule.prepare_data()
    datamodule.setup()
    files = datamodule.splits[split]
    if not files:
        raise DataUnavailableError(f"the {split} split of data={data} holds no images; choose --split val")
    root = datamodule.source.image_root
    return [(root / f, Path(f).with_suffix("").as_posix()) for f in files]


def train_photos(data: str, overrides: Sequence[str] = ()) -> list[Path]:
    """The image files of data config `data`'s train split (int8 calibration: export --calibrate)."""
    return [path for path, _ in split_photos(data, "train", overrides)]
