"""The index on a folder of awkward files: nothing crashes, skips are counted with reasons, decoding works."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image

import colorization.data.index as index_mod
from colorization.data.images import load_random_crop, load_square, open_rgb, probe
from colorization.data.index import assign_split, build_index, folder_split


def _photo(h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / w, y * 255 / h, 128 + 0 * x], -1) + rng.normal(0, 5, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


READABLE = [
    "good.jpg",
    "rgba.png",
    "sub/palette.png",
    "cmyk.jpg",
    "gray16.png",
    "gray.jpg",
    "tiny.png",
    "rotated.jpg",
]


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    """One file of every kind the issue lists, plus a few that must be ignored (shared: do not edit)."""
    d = tmp_path_factory.mktemp("data") / "odd"
    (d / "sub").mkdir(parents=True)
    good = Image.fromarray(_photo())
    good.save(d / "good.jpg", quality=90)
    buf = io.BytesIO()
    Image.fromarray(_photo(200, 200)).save(buf, "JPEG")
    (d / "corrupt.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (d / "text.jpg").write_text("this is not a picture\n")
    (d / "empty.png").write_bytes(b"")
    rgba = np.dstack([_photo(), np.full((40, 56), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
    Image.fromarray(_photo()).convert("P", palette=Image.ADAPTIVE, colors=16).save(d / "sub" / "palette.png")
    Image.fromarray(_photo()).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray((np.arange(40 * 56).reshape(40, 56) * 29).astype(np.uint16)).save(d / "gray16.png")
    Image.fromarray(_photo()).convert("L").save(d / "gray.jpg")
    Image.new("RGB", (1, 1), (200, 30, 40)).save(d / "tiny.png")
    huge = Image.new("P", (8000, 8000), 0)
    huge.putpalette([0, 0, 0, 255, 0, 0] * 128)
    huge.save(d / "huge.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(_photo(20, 60)).save(d / "rotated.jpg", exif=exif)
    (d / "notes.txt").write_text("ignored: not an image suffix")
    (d / ".hidden.jpg").write_text("ignored: hidden")
    return d


def test_index_skips_bad_files_with_reasons(odd_folder, tmp_path):
    idx = build_index(odd_folder, cache=tmp_path / "cache" / "index.json", progress=False)
    assert set(idx.skipped) == {"corrupt.jpg", "text.jpg", "empty.png", "huge.png"}
    assert idx.skipped["text.jpg"] == "not an image"
    assert idx.skipped["empty.png"] == "empty file"
    assert idx.skipped["huge.png"].startswith("too large")
    assert idx.skipped["corrupt.jpg"].startswith("unreadable")
    report = idx.skipped_report()
    assert report.startswith("skipped 4 file(s)") and "\n" not in report and "corrupt.jpg" in report
    entries = {e.path: e for e in idx.entries}
    assert set(entries) == set(READABLE)
    assert {p for p, e in entries.items() if e.gray} == {"gray16.png", "gray.jpg"}
    assert (entries["tiny.png"].width, entries["tiny.png"].height) == (1, 1)
    saved = index_mod.DataIndex.load(tmp_path / "cache" / "index.json", odd_folder)  # the cache, read back
    assert saved.entries == idx.entries and saved.skipped == idx.skipped and len(saved.skipped) == 4


@pytest.mark.parametrize(
    "name",
    [
        "good.jpg",
        "rgba.png",
        "sub/palette.png",
        "cmyk.jpg",
        "gray16.png",
        "gray.jpg",
        "tiny.png",
        "rotated.jpg",
    ],
)
def test_every_readable_kind_decodes_to_rgb_uint8(odd_folder, name):
    arr = load_square(odd_folder / name, 32)
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8
    rng = np.random.default_rng(0)
    assert load_random_crop(odd_folder / name, 16, rng, (0.3, 1.0)).shape == (16, 16, 3)


def test_decoding_details(odd_folder):
    assert open_rgb(odd_folder / "rotated.jpg").size == (20, 60)  # EXIF orientation applied
    rgba = np.asarray(open_rgb(odd_folder / "rgba.png"), dtype=float)
    src = _photo().astype(float)
    np.testing.assert_allclose(rgba, src * 128 / 255 + 255 * 127 / 255, atol=1.5)  # composited over white
    g16 = np.asarray(open_rgb(odd_folder / "gray16.png"))
    raw = (np.arange(40 * 56).reshape(40, 56) * 29).astype(np.uint16)
    np.testing.assert_allclose(g16[..., 0], raw / 65535 * 255, atol=1)  # full 16-bit range kept
    assert probe(odd_folder / "huge.png", max_pixels=10**9).skipped is None  # read when allowed


def test_index_cache_is_reused_and_updated_incrementally(odd_folder, tmp_path, monkeypatch):
    odd_folder = shutil.copytree(odd_folder, tmp_path / "copy")
    cache = tmp_path / "index.json"
    first = build_index(odd_folder, cache=cache, progress=False)
    probed: list[str] = []
    real = index_mod.probe

    def spy(path, max_pixels):
        probed.append(path.name)
        return real(path, max_pixels)

    monkeypatch.setattr(index_mod, "probe", spy)
    again = build_index(odd_folder, cache=cache, progress=False)
    assert probed == [] and again.entries == first.entries and again.skipped == first.skipped
    Image.fromarray(_photo(seed=3)).save(odd_folder / "new.png")
    (odd_folder / "good.jpg").unlink()
    third = build_index(odd_folder, cache=cache, progress=False)
    assert probed == ["new.png"]
    assert "new.png" in {e.path for e in third.entries} and "good.jpg" not in {e.path for e in third.entries}


def test_accept_filter(odd_folder):
    idx = build_index(odd_folder, accept=lambda rel: rel.endswith(".png"), progress=False)
    assert all(e.path.endswith(".png") for e in idx.entries)


def test_splits_are_stable_and_follow_folders():
    names = [f"img_{i:05d}.jpg" for i in range(4000)]
    splits = [assign_split(n, 0.1, 0.2) for n in names]
    counts = {s: splits.count(s) for s in ("train", "val", "test")}
    assert abs(counts["test"] / 4000 - 0.2) < 0.03 and abs(counts["val"] / 4000 - 0.1) < 0.03
    assert splits == [assign_split(n, 0.1, 0.2) for n in names]  # pure function of the path
    assert folder_split("a/Test/x.jpg") == "test" and folder_split("seg_train/seg_train/b/x.jpg") == "train"
    assert folder_split("train.jpg") is None  # file names do not count
    assert assign_split("val/x.jpg", 0.1, 0.1) == "val" and assign_split("test/x.jpg", 0.1, 0.9) == "test"
    train_dir = [assign_split(f"train/{n}", 0.1, 0.5) for n in names[:1000]]
    assert "test" not in train_dir and 50 < train_dir.count("val") < 150
    assert set(assign_split(f"train/{n}", 0.1, 0.5, carve_val=False) for n in names[:100]) == {"train"}
    assert set(assign_split(f"test/{n}", 0.1, 0.1, use_folders=False) for n in names) == {
        "train",
        "val",
        "test",
    }


def test_crops_follow_the_geometry(tmp_path):
    """Centre crop = the middle square; a random resized crop covers the asked share of it, at full detail."""
    img = np.zeros((60, 100, 3), np.uint8)
    img[:, :, 0] = np.arange(100)[None, :] * 2  # red encodes x
    img[:, :, 1] = np.arange(60)[:, None] * 4  # green encodes y
    Image.fromarray(img).save(tmp_path / "ramp.png")
    centre = load_square(tmp_path / "ramp.png", 60).astype(int)
    np.testing.assert_array_equal(centre, img[:, 20:80].astype(int))
    rng = np.random.default_rng(1)
    for _ in range(20):
        crop = load_random_crop(tmp_path / "ramp.png", 30, rng, (0.25, 0.25), (1.0, 1.0)).astype(int)
        span_x = (crop[0, -1, 0] - crop[0, 0, 0]) / 2 + 1
        span_y = (crop[-1, 0, 1] - crop[0, 0, 1]) / 4 + 1
        assert abs(span_x - 30) <= 2 and abs(span_y - 30) <= 2  # a 30×30 box: a quarter of the 60×60 square
