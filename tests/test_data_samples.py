"""The bundled `samples` source: deterministic, offline, photographs only, whole photographs held out."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PIL import Image
from support import build_datamodule

from colorization.data import LabDataModule, Samples
from colorization.data.sources import SAMPLE_PHOTOS


def _image_files(folder: Path) -> list[str]:
    """Relative POSIX paths of the image files below folder, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))


def _photo(rel: str) -> str:
    """The photograph a crop was cut from: its file is named <view>_<number>.jpg, a view <photo>[_left]."""
    view = rel.rsplit("/", 1)[-1].rsplit("_", 1)[0]
    return next(p for p in SAMPLE_PHOTOS if view == p or view.startswith(p + "_"))


def _photos_by_split(dm: LabDataModule) -> dict[str, set[str]]:
    return {split: {_photo(p) for p in paths} for split, paths in dm.splits.items()}


def test_samples_source_is_deterministic_and_offline(tmp_path):
    a, b = Samples(tmp_path / "a", count=24, size=32), Samples(tmp_path / "b", count=24, size=32)
    a.prepare()
    b.prepare()
    files = _image_files(a.image_root)
    assert len(files) == 24 and files == _image_files(b.image_root)
    assert all((a.image_root / f).read_bytes() == (b.image_root / f).read_bytes() for f in files)
    assert len({f.rsplit("/", 1)[-1].rsplit("_", 1)[0] for f in files}) >= 8  # many different photographs
    stamp = (a.image_root / files[0]).stat().st_mtime_ns
    a.prepare()  # already there: not regenerated
    assert (a.image_root / files[0]).stat().st_mtime_ns == stamp
    Samples(tmp_path / "a", count=30, size=32).prepare()  # parameters changed: regenerated
    assert len(_image_files(a.image_root)) == 30
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".images.tmp")]


def test_samples_are_photographs_only_and_an_old_folder_is_regenerated(tmp_path):
    """skimage's logo (a graphic with alpha) is no photograph: dropped; a folder made with it is redone."""
    from colorization.data.sources import sample_photos

    assert "logo" not in SAMPLE_PHOTOS and not any(k.startswith("logo") for k in sample_photos())
    src = Samples(tmp_path, count=40, size=16)
    # a folder from the previous version: logo crops among the files, a manifest without a photo list
    src.image_root.mkdir(parents=True)
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src.image_root / "logo_0008.jpg")
    old = {"count": 40, "size": 16, "seed": 0, "version": 1, "min_scale": 0.2, "max_scale": 0.6}
    src._manifest.write_text(json.dumps(old))
    assert not src.ready()
    src.prepare()
    files = [p.name for p in src.image_root.rglob("*") if p.is_file()]
    assert src.ready() and len(files) == 40 and not [f for f in files if f.startswith("logo")]


def test_whole_photographs_are_held_out_for_val_and_test(tmp_path):
    dm = LabDataModule(Samples(tmp_path, count=72, size=32), image_size=32, num_workers=0)
    dm.prepare_data()
    dm.setup()
    photos = _photos_by_split(dm)
    assert photos == {
        "train": set(SAMPLE_PHOTOS) - {"coffee", "chelsea"},
        "val": {"coffee"},
        "test": {"chelsea"},
    }
    assert sum(len(paths) for paths in dm.splits.values()) == 72  # every crop is in exactly one split
    train_views = {p.rsplit("/", 1)[-1].rsplit("_", 1)[0] for p in dm.splits["train"]}
    assert {
        "stereo_motorcycle_left",
        "stereo_motorcycle_right",
    } <= train_views  # a stereo pair stays together
    assert {len(dm.splits["val"]), len(dm.splits["test"])} == {8}  # 72 crops cycle over 9 views
    again = LabDataModule(Samples(tmp_path / "again", count=72, size=32), image_size=32, num_workers=0)
    again.prepare_data()
    again.setup()
    assert again.splits == dm.splits  # deterministic: the same crops in the same splits


def test_the_manifest_lists_the_held_out_photos_and_a_change_regenerates(tmp_path):
    src = Samples(tmp_path, count=36, size=16)
    src.prepare()
    manifest = json.loads(src._manifest.read_text())
    assert manifest["val_photos"] == ["coffee"] and manifest["test_photos"] == ["chelsea"]
    other = Samples(tmp_path, count=36, size=16, val_photos=["rocket"], test_photos=["astronaut", "coffee"])
    assert not other.ready()
    other.prepare()
    assert json.loads(other._manifest.read_text())["test_photos"] == ["astronaut", "coffee"]
    by_split = {s: {_photo(f) for f in _image_files(other.image_root / s)} for s in ("train", "val", "test")}
    assert by_split["val"] == {"rocket"} and by_split["test"] == {"astronaut", "coffee"}
    assert "chelsea" in by_split["train"]


def test_without_val_photographs_val_is_carved_from_train_by_path(tmp_path):
    dm = LabDataModule(Samples(tmp_path, count=72, size=16, val_photos=[]), image_size=16, num_workers=0,
                       val_fraction=0.2)  # fmt: skip
    dm.prepare_data()
    dm.setup()
    photos = _photos_by_split(dm)
    assert photos["test"] == {"chelsea"} and dm.splits["val"] and photos["val"] <= photos["train"]
    assert "held-out photographs: val none, test chelsea" in dm.summary()


def test_the_log_line_names_the_held_out_photographs(tmp_path, caplog):
    dm = LabDataModule(Samples(tmp_path, count=18, size=16), image_size=16, num_workers=0)
    dm.prepare_data()
    with caplog.at_level(logging.INFO, logger="colorization.data.datamodule"):
        dm.setup()
    lines = [r.getMessage() for r in caplog.records if r.name == "colorization.data.datamodule"]
    assert len(lines) == 1 and "/ val 2 / test 2; held-out photographs: val coffee, test chelsea;" in lines[0]


def test_the_demo_gives_val_and_test_enough_crops(tmp_path):
    """`python train.py`: 480 crops of 96 px trained at 64 px; 54 crops each of val and test, 372 to train."""
    dm = build_datamodule([], tmp_path)
    assert (dm.source.count, dm.source.size, dm.image_size) == (480, 96, 64)
    dm.prepare_data()
    dm.setup()
    assert {s: len(p) for s, p in dm.splits.items()} == {"train": 372, "val": 54, "test": 54}
    assert len(dm.val_dataloader()) >= 6 and len(dm.test_dataloader()) >= 6  # batches of the demo's size 8
    assert _photos_by_split(dm)["test"] == {"chelsea"} and _photos_by_split(dm)["val"] == {"coffee"}
