"""Preparing a Turing study (checkpoints, folders, the gray floor, a data config's split) and drawing one
rater's trials."""

from __future__ import annotations

import json
import random
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support import CNN, adam, lab_batches, quiet_trainer
from torch.utils.data import DataLoader
from turing_support import PHOTOS, make_study, write_method_folder, write_photos

from colorization import objectives
from colorization.errors import ColorizationError, ConfigError
from colorization.imaging import rgb_to_lab
from colorization.inference import Colorizer
from colorization.turing.cli import main
from colorization.turing.methods import hue_rotated, parse_method
from colorization.turing.prepare import collect_photos, prepare_study, square
from colorization.turing.protocol import VIGILANCE, plan_trials
from colorization.turing.study import GRAY, Protocol, Study

SMALL = Protocol(practice=3, trials=9, vigilance=0.2, size=64)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A regression checkpoint trained for two steps (its run folder's name names the method)."""
    path = tmp_path_factory.mktemp("run") / "tiny_run" / "checkpoints" / "last.ckpt"
    samples = [{k: v[i] for k, v in b.items()} for b in lab_batches(8, 32, 4) for i in range(4)]
    torch.manual_seed(0)
    module = objectives.RegressionModule(net=CNN, optimizer=adam(), perceptual_metrics=False)
    trainer = quiet_trainer(max_steps=2, limit_val_batches=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train_dataloaders=DataLoader(samples, batch_size=4))
    path.parent.mkdir(parents=True)
    trainer.save_checkpoint(path)
    return path


def load(study: Study, asset: str) -> np.ndarray:
    with Image.open(study.asset_path(asset)) as im:
        assert im.mode == "RGB" and im.size == (study.protocol.size,) * 2
        assert not {k for k in im.info if k not in ("dpi",)}, im.info  # no text chunks, no names
        return np.asarray(im, dtype=np.float32) / 255.0


def test_study_of_a_checkpoint_a_folder_and_the_gray_floor(tmp_path: Path, checkpoint: Path) -> None:
    """Every photo gets its real picture, each method's fake, the gray floor and a hue-rotated vigilance
    fake, all 64 px RGB PNGs under random names; the model's and the gray fakes keep the real lightness, the
    folder's fake is the folder's image cut the same way."""
    photos = tmp_path / "photos"
    write_photos(photos)
    folder = write_method_folder(photos, tmp_path / "turned", 90.0, ".png")
    methods = [parse_method(str(checkpoint)), parse_method(f"turned={folder}")]
    study = prepare_study(tmp_path / "study", collect_photos([photos]), methods, SMALL, progress=False)
    assert study.methods == ["tiny_run", "turned", GRAY]
    assert sorted(e.name for e in study.images) == sorted(PHOTOS)
    again = Study.load(study.root)
    assert again.protocol == SMALL and again.methods == study.methods
    assets = {p.stem for p in study.assets.iterdir()}
    assert len(assets) == len(PHOTOS) * 5 and all(re.fullmatch(r"[0-9a-f]{32}", a) for a in assets)
    for entry in study.images:
        real = load(study, entry.real)
        assert np.allclose(real, square(photos / f"{entry.name}.png", 64), atol=1 / 255 + 1e-6)
        L = rgb_to_lab(real)[..., 0]
        model, gray = load(study, entry.fakes["tiny_run"]), load(study, entry.fakes[GRAY])
        assert np.abs(rgb_to_lab(model)[..., 0] - L).mean() < 0.6
        gray_lab = rgb_to_lab(gray)
        assert np.abs(gray_lab[..., 0] - L).mean() < 0.6 and np.abs(gray_lab[..., 1:]).max() < 1.5
        turned = load(study, entry.fakes["turned"])
        assert np.allclose(turned, square(folder / f"{entry.name}.png", 64), atol=1 / 255 + 1e-6)
        vigilance = load(study, entry.vigilance)
        assert np.abs(vigilance - hue_rotated(real)).mean() < 0.02
        assert np.abs(vigilance - real).mean() > 0.02  # an obvious fake: its colours differ
    raw = json.loads((study.root / "study.json").read_text())
    assert raw["sources"]["turned"].startswith("folder:")


def test_photos_a_folder_lacks_and_gray_photos_are_left_out(tmp_path: Path, caplog) -> None:
    photos = tmp_path / "photos"
    write_photos(photos)
    Image.fromarray(np.full((40, 50, 3), 120, np.uint8)).save(photos / "flat_gray.png")
    folder = write_method_folder(photos, tmp_path / "warm", 20.0)
    (folder / "coffee.jpg").unlink()
    study = prepare_study(
        tmp_path / "study", collect_photos([photos]), [parse_method(f"warm={folder}")], SMALL, progress=False
    )
    assert sorted(e.name for e in study.images) == sorted(set(PHOTOS) - {"coffee"})
    assert "1 black-and-white" in caplog.text and "1 missing in a folder method" in caplog.text
    with pytest.raises(ColorizationError, match="not empty"):
        prepare_study(study.root, collect_photos([photos]), [], SMALL, progress=False)


def test_methods_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths that are neither folders nor models, missing paths and reserved names are one-line errors;
    a pretrained name goes through Colorizer.from_pretrained when it exists, and says why when it does not."""
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    for spec, match in [
        (str(tmp_path / "notes.txt"), "neither a folder nor a model"),
        (str(tmp_path / "missing.ckpt"), "no such file"),
        (str(tmp_path / "empty"), "no images"),
        (f"gray={tmp_path}", "taken"),
        ("x=", "give"),
    ]:
        with pytest.raises(ColorizationError, match=match) as info:
            parse_method(spec)
        assert "\n" not in str(info.value)
    monkeypatch.delattr(Colorizer, "from_pretrained", raising=False)
    with pytest.raises(ColorizationError, match="no published models"):
        parse_method("pretrained:zhang_eccv16")
    asked = {}

    def from_pretrained(cls, name, **kwargs):
        asked.update(name=name, **kwargs)
        return Colorizer.from_module(torch.nn.Conv2d(1, 2, 1))

    monkeypatch.setattr(Colorizer, "from_pretrained", classmethod(from_pretrained), raising=False)
    method = parse_method("pretrained:zhang_eccv16")
    assert (method.name, method.kind, asked) == (
        "zhang_eccv16",
        "pretrained",
        {"name": "zhang_eccv16", "device": "cpu"},
    )
    fake = method.make(np.random.default_rng(0).random((16, 16, 3), dtype=np.float32), "x")
    assert fake.shape == (16, 16, 3)


def test_one_raters_plan(tmp_path: Path) -> None:
    """Practice first, then scored trials balanced over the methods with no photo repeated while the study
    has unused ones, vigilance trials (hue-rotated fakes) among the scored ones, real photos on both sides."""
    study = make_study(tmp_path, Protocol(practice=2, trials=6, vigilance=0.34, size=32))
    assert study.protocol.vigilance_trials == 2
    plans = [plan_trials(study, random.Random(seed)) for seed in range(40)]
    for plan in plans:
        kinds = [t.kind for t in plan]
        assert kinds[:2] == ["practice"] * 2 and Counter(kinds) == {"practice": 2, "scored": 6, VIGILANCE: 2}
        scored = [t for t in plan if t.kind == "scored"]
        assert sorted(Counter(t.method for t in scored).values()) == [2, 2, 2]
        practice_photos = {t.image for t in plan[:2]}
        fresh = [t.image for t in scored[: len(PHOTOS) - len(practice_photos)]]
        assert len(set(fresh)) == len(fresh) and not set(fresh) & practice_photos
        for t in plan:
            left, right = t.assets(study)
            real = study.images[t.image].real
            assert (left == real) == (t.real_side == "left") and (right == real) == (t.real_side == "right")
    sides = Counter(t.real_side for plan in plans for t in plan)
    assert 0.4 < sides["left"] / sum(sides.values()) < 0.6
    assert len({tuple(plan) for plan in plans}) == len(plans)


def test_protocol_values_are_checked_once() -> None:
    with pytest.raises(ConfigError, match=r"--trials=0 is out of range"):
        Protocol(trials=0)
    with pytest.raises(
        ConfigError, match="--layout='grid' is not allowed; allowed values: side_by_side, sequential"
    ):
        Protocol(layout="grid")
    assert (
        Protocol(trials=40, vigilance=0.1).vigilance_trials == 4
        and Protocol(vigilance=0).vigilance_trials == 0
    )


def test_prepare_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos"
    write_photos(photos)
    warm = write_method_folder(photos, tmp_path / "warm", 20.0)
    args = ["prepare", str(tmp_path / "s"), "--images", str(photos), "--method", f"warm={warm}"]
    assert main([*args, "--count", "3", "--size", "32", "--sequential", "--trials", "6"]) == 0
    study = Study.load(tmp_path / "s")
    assert (
        len(study.images) == 3 and study.protocol.layout == "sequential" and study.methods == ["warm", GRAY]
    )
    assert "serve it with: python -m colorization.turing serve" in capsys.readouterr().out
    assert main(["prepare", str(tmp_path / "t"), "--images", str(photos), "--method", "nowhere/"]) == 1
    assert main(["prepare", str(tmp_path / "u"), *args[2:], "--trials", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: --method nowhere/: no such file or folder (or pretrained:NAME)",
        "error: --trials=0 is out of range; allowed values: integer >= 1",
    ]
    assert main(["results", str(tmp_path / "nothing")]) == 1
    assert "holds no study" in capsys.readouterr().err


def test_photos_of_a_data_configs_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`prepare --data NAME` takes the split's files of the data config, as training splits them."""
    from support import build_datamodule

    from colorization.app.splits import split_photos

    monkeypatch.setenv("COLORIZATION_DATA", str(tmp_path))
    overrides = ["data.source.count=30", "data.source.size=32", "data.image_size=32", "data.num_workers=0"]
    photos = split_photos("synthetic", "test", overrides)
    dm = build_datamodule(["data=synthetic", *overrides], tmp_path)
    dm.prepare_data()
    dm.setup()
    expected = [dm.source.image_root / f for f in dm.splits["test"]]
    assert [p for p, _ in photos] == expected and all(p.is_file() for p in expected) and expected
    assert photos[0][1] == Path(dm.splits["test"][0]).with_suffix("").as_posix()
    with pytest.raises(ConfigError, match="not a data config; allowed values: .*samples"):
        split_photos("nowhere")
