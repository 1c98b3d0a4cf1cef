"""ONNX export and the checkpoint paths of colorize, on tiny real checkpoints trained for two steps."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color as skcolor
from support import PHOTOS, adam, make_checkpoint, photo, quiet_trainer

from colorization import objectives
from colorization.data import LabDataModule
from colorization.imaging import rgb_to_lab as rgb_to_lab_np
from colorization.inference import Colorizer
from colorization.inference.cli import main
from colorization.inference.export import export_onnx
from colorization.inference.export import main as export_main

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

NET = {"_target_": "colorization.nets.ZhangNet", "width": 0.125}
SIZE = 64


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    common = dict(perceptual_metrics=False, rebalanced_auc=False)
    torch.manual_seed(0)
    reg = objectives.RegressionModule(net=NET, optimizer=adam(), **common)
    cls = objectives.ClassificationModule(
        net=NET, optimizer=adam(), prior="uniform", gamut="zhang", eval_temperatures=[], **common
    )
    return {
        "regression": make_checkpoint(root / "reg.ckpt", reg),
        "classification": make_checkpoint(root / "cls.ckpt", cls),
    }


@pytest.fixture(scope="module")
def onnx_models(ckpts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx")
    return {
        kind: export_onnx(path, root / f"{kind}.onnx", image_size=SIZE)[0] for kind, path in ckpts.items()
    }


def test_metadata_and_dynamic_axes(onnx_models: dict[str, Path]) -> None:
    for kind, path in onnx_models.items():
        model = onnx.load(str(path))
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["objective"] == kind and meta["image_size"] == str(SIZE) and meta["size_multiple"] == "8"
        assert (meta["temperature"] == "0.38") == (kind == "classification")
        assert model.opset_import[0].version >= 17
        dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
        assert dims[0] and dims[2] and dims[3] and not dims[1]
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        out = sess.run(None, {"L": np.zeros((3, 1, 40, 56), np.float32)})[0]
        assert out.shape == (3, 2, 40, 56)


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_onnx_runtime_matches_pytorch_on_real_photos(
    kind: str, ckpts: dict[str, Path], onnx_models: dict[str, Path]
) -> None:
    ref = Colorizer.from_checkpoint(ckpts[kind], size=SIZE)
    got = Colorizer.from_onnx(onnx_models[kind])
    assert got.size == SIZE and ref.info.objective == got.info.objective == kind
    for name in PHOTOS:
        L = rgb_to_lab_np(photo(name) / 255.0)[..., 0]
        ab_ref, ab_onnx = ref.predict_ab(L), got.predict_ab(L)
        assert ab_ref.shape == (2, *L.shape)
        assert np.abs(ab_ref - ab_onnx).max() < 1e-3, name
        assert np.abs(ab_ref).max() > 0.1  # the model does predict colour


def test_temperature_is_baked_in_at_export(ckpts: dict[str, Path], tmp_path: Path) -> None:
    hot, _ = export_onnx(ckpts["classification"], tmp_path / "t1.onnx", temperature=1.0, check=False)
    meta = {p.key: p.value for p in onnx.load(str(hot)).metadata_props}
    assert float(meta["temperature"]) == 1.0
    L = rgb_to_lab_np(photo("chelsea", (96, 64)) / 255.0)[..., 0]
    ref = Colorizer.from_checkpoint(ckpts["classification"], temperature=1.0, size=SIZE).predict_ab(L)
    assert np.abs(Colorizer.from_onnx(hot, size=SIZE).predict_ab(L) - ref).max() < 1e-3
    cold = Colorizer.from_checkpoint(ckpts["classification"], temperature=0.1, size=SIZE).predict_ab(L)
    assert np.abs(cold - ref).max() > 1e-2


def test_export_cli(ckpts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.onnx"
    assert export_main(["--ckpt", str(ckpts["regression"]), "-o", str(out), "--size", "64"]) == 0
    assert "regression" in capsys.readouterr().out and out.is_file()
    assert export_main(["--ckpt", str(tmp_path / "none.ckpt"), "-o", str(out)]) == 1
    assert export_main(["--ckpt", str(ckpts["regression"]), "-o", str(out), "--temperature", "0.5"]) == 1
    assert export_main(["--ckpt", str(ckpts["regression"]), "-o", str(out), "--opset", "13"]) == 1
    err = capsys.readouterr().err
    assert (
        "--ckpt=" in err
        and "no such checkpoint file" in err
        and "classification models only" in err
        and "opset" in err
    )


def test_colorize_cli_with_checkpoint(ckpts: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "coffee.jpg"
    Image.fromarray(photo("coffee")).resize((150, 100)).save(src, quality=95)
    out = tmp_path / "out"
    args = [str(src), "-o", str(out), "--ckpt", str(ckpts["classification"]), "--size", "64"]
    assert main([*args, "--temperature", "0.5", "--format", "tiff"]) == 0
    res = np.asarray(Image.open(out / "coffee.tiff"))
    inp = np.asarray(Image.open(src))
    assert res.shape == inp.shape
    dL = np.abs(skcolor.rgb2lab(res / 255.0)[..., 0] - skcolor.rgb2lab(inp / 255.0)[..., 0])
    assert dL.mean() < 0.2 and dL.max() < 1.0
    assert main([str(src), "-o", str(out), "--ckpt", str(ckpts["regression"]), "--temperature", "0.5"]) == 1


def test_onnx_path_never_imports_torch_nor_skimage(onnx_models: dict[str, Path], tmp_path: Path) -> None:
    Image.fromarray(photo("astronaut", (120, 90))).save(tmp_path / "a.png")
    driver = (
        "import sys, json\n"
        "from colorization.colorize import main\n"
        "rc = main(sys.argv[1:])\n"
        "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules, 'skimage': 'skimage' in sys.modules,"
        " 'lightning': any(m.startswith('lightning') for m in sys.modules)}))\n"
    )
    cmd = [
        sys.executable,
        "-c",
        driver,
        str(tmp_path / "a.png"),
        "-o",
        str(tmp_path / "out"),
        "--onnx",
        str(onnx_models["classification"]),
        "--compare",
        "--enhance",
        "0.8",
        "0.2",
        "2",
        "4",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"rc": 0, "torch": False, "skimage": False, "lightning": False}
    assert Image.open(tmp_path / "out" / "a.png").size == (120, 90)


def test_trained_size_comes_from_the_datamodule_saved_by_fit(tmp_path: Path) -> None:
    """A checkpoint written by Trainer.fit with a real LabDataModule carries the size it was trained at."""
    dm = LabDataModule(
        "synthetic", root=tmp_path / "syn", image_size=32, batch_size=4, num_workers=0, count=16, size=40
    )
    module = objectives.RegressionModule(
        net=NET, optimizer=adam(), perceptual_metrics=False, rebalanced_auc=False
    )
    trainer = quiet_trainer(
        tmp_path, max_steps=1, max_epochs=1, limit_val_batches=0, enable_checkpointing=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, datamodule=dm)
    ckpt = Path(trainer.checkpoint_callback.last_model_path or trainer.checkpoint_callback.best_model_path)
    assert ckpt.is_file()
    assert Colorizer.from_checkpoint(ckpt).size == 32  # the trained size, not the default 256
    assert Colorizer.from_checkpoint(ckpt, size=64).size == 64  # --size overrides it
    path, info = export_onnx(ckpt, tmp_path / "sized.onnx", check=False)
    assert info.image_size == 32 and Colorizer.from_onnx(path).size == 32


def test_size_defaults_to_256_when_the_checkpoint_does_not_say(ckpts: dict[str, Path]) -> None:
    assert Colorizer.from_checkpoint(ckpts["regression"]).size == 256  # fit without a DataModule


def test_bad_device_is_one_line(
    ckpts: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    Image.fromarray(photo("coffee", (40, 30))).save(tmp_path / "c.png")
    args = [str(tmp_path / "c.png"), "-o", str(tmp_path / "out"), "--ckpt", str(ckpts["regression"])]
    assert main([*args, "--device", "foo"]) == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([*args, "--device", "cuda"]) == 1
    assert main([*args, "--device", "cuda:1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 3
    assert "'foo' is not a device" in err and err.count("no CUDA GPU is available") == 2
