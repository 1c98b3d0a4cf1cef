"""Deploy bundles and the runtime they carry: torch-free colour code against scikit-image and torch, the
bundle against the PyTorch colorizer, the serverless handler, int8 models, and a fresh-venv run (slow)."""

from __future__ import annotations

import ast
import base64
import importlib.util
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color as skcolor
from support import PHOTOS, adam, make_checkpoint, photo

from colorization import objectives
from colorization.color import ABGamut, annealed_mean, colorfulness
from colorization.imaging import runtime
from colorization.inference import Colorizer
from colorization.inference.backends import load_model
from colorization.inference.bundle import RUNTIME_PACKAGES, write_bundle
from colorization.inference.quantize import calibration_crops

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

NET = {"_target_": "colorization.nets.ZhangNet", "width": 0.125}
SIZE = 64
STDLIB = set(sys.stdlib_module_names)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    common = dict(perceptual_metrics=False, rebalanced_auc=False)
    torch.manual_seed(0)
    reg = objectives.RegressionModule(net=NET, optimizer=adam(1e-2), **common)
    cls = objectives.ClassificationModule(
        net=NET, optimizer=adam(1e-2), prior="uniform", gamut="zhang", eval_temperatures=[], **common
    )
    return {
        "regression": make_checkpoint(root / "reg.ckpt", reg, steps=4),
        "classification": make_checkpoint(root / "cls.ckpt", cls, steps=4),
    }


def bundle_for(ckpt: Path, folder: Path, calibration: np.ndarray | None = None) -> Path:
    model, info = load_model(ckpt)
    info.image_size = SIZE
    return write_bundle(model, info, folder, calibration=calibration)


def load_file(path: Path, name: str) -> ModuleType:
    """Import a bundle's module from its file (the folder on sys.path, as `python handler.py` has it)."""
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(path.parent))


def test_runtime_imports_nothing_but_numpy_pil_onnxruntime() -> None:
    tree = ast.parse(Path(runtime.__file__).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0
    }
    assert names - STDLIB == {"numpy", "PIL", "onnxruntime"}


def test_lightness_and_lab_match_scikit_image() -> None:
    for name in PHOTOS:
        u8 = photo(name, (96, 64))
        ref = skcolor.rgb2lab(u8)
        np.testing.assert_allclose(runtime.lightness(u8), ref[..., 0], atol=1e-3)
        np.testing.assert_allclose(runtime.lightness(u8 / 255.0), ref[..., 0], atol=1e-3)
        np.testing.assert_allclose(runtime.rgb_to_lab(u8), ref, atol=1e-3)
    lab = np.stack(np.meshgrid(np.linspace(5, 95, 19), np.linspace(-110, 110, 23), indexing="ij"), -1)
    lab = np.concatenate([lab, np.full((*lab.shape[:2], 1), 40.0)], -1).astype(np.float32)  # many outside
    rgb = runtime.lab_to_rgb(lab)
    assert rgb.min() >= 0 and rgb.max() <= 1
    back = skcolor.rgb2lab(rgb.astype(np.float64))
    np.testing.assert_allclose(back[..., 0], lab[..., 0], atol=0.05)  # the gamut fit keeps L
    hue = np.arctan2(lab[..., 2], lab[..., 1])
    chroma = np.hypot(back[..., 1], back[..., 2])
    dh = np.angle(np.exp(1j * (np.arctan2(back[..., 2], back[..., 1]) - hue)))
    assert np.abs(dh[chroma > 5]).max() < 0.02  # and the hue: only chroma is given up


def test_annealed_mean_matches_torch() -> None:
    logits = np.random.default_rng(0).normal(0, 3, (2, 313, 5, 7)).astype(np.float32)
    points = ABGamut.zhang().points
    for t in (1.0, 0.38, 0.1):
        ref = annealed_mean(torch.from_numpy(logits), points, t).numpy()
        np.testing.assert_allclose(runtime.annealed_mean(logits, points.numpy(), t), ref, atol=2e-3)


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_bundle_matches_the_pytorch_colorizer(kind: str, ckpts: dict[str, Path], tmp_path: Path) -> None:
    folder = bundle_for(ckpts[kind], tmp_path / "b")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["README.md", "handler.py", "model.onnx", "requirements.txt", "runtime.py"]
    assert (folder / "runtime.py").read_bytes() == Path(runtime.__file__).read_bytes()
    pins = (folder / "requirements.txt").read_text().split()
    assert [p.split("==")[0] for p in pins] == list(RUNTIME_PACKAGES)
    rt = load_file(folder / "runtime.py", "bundle_runtime")
    model = rt.Model(folder / "model.onnx")
    assert model.logits == (kind == "classification") and model.image_size == SIZE
    ref = Colorizer.from_checkpoint(ckpts[kind], size=SIZE)
    for name in PHOTOS:
        src = Image.fromarray(photo(name, (150, 100)))
        got = np.asarray(rt.colorize_image(model, src), dtype=int)
        want = np.asarray(ref.colorize(src), dtype=int)
        assert np.abs(got - want).max() <= 1, name
        assert np.abs(got - np.asarray(src.convert("L"))[..., None]).max() > 3  # it did add colour
    if kind == "classification":  # the temperature is chosen at run time, as the torch model's
        hot = Colorizer.from_checkpoint(ckpts[kind], size=SIZE, temperature=1.0)
        L = runtime.lightness(photo("chelsea", (96, 64)))
        ab = Colorizer.from_onnx(folder / "model.onnx", temperature=1.0).predict_ab(L)
        assert np.abs(ab - hot.predict_ab(L)).max() < 1e-2
        assert np.abs(ab - ref.predict_ab(L)).max() > 0.1


def test_handler_answers_good_and_bad_events(ckpts: dict[str, Path], tmp_path: Path) -> None:
    folder = bundle_for(ckpts["classification"], tmp_path / "b")
    handler = load_file(folder / "handler.py", "bundle_handler").handler
    buf = io.BytesIO()
    Image.fromarray(photo("coffee", (80, 60))).save(buf, "JPEG")
    image = base64.b64encode(buf.getvalue()).decode()
    ok = handler({"image": image, "temperature": 0.5, "enhance": [0.8, 0.2, 2, 4]}, None)
    assert ok["statusCode"] == 200 and ok["isBase64Encoded"] and ok["headers"]["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(base64.b64decode(ok["body"]))).size == (80, 60)
    http = {"body": base64.b64encode(json.dumps({"image": image}).encode()).decode(), "isBase64Encoded": True}
    assert handler(http, None)["statusCode"] == 200
    bad = [
        ({}, "missing"),
        ({"image": "!!"}, "base64"),
        ({"image": base64.b64encode(b"not an image").decode()}, "not an image"),
        ({"image": image, "temperature": -1}, "temperature"),
        ({"image": image, "enhance": [1, 2]}, "enhance"),
        ({"body": "{not json"}, "not JSON"),
        ([1, 2], "JSON object"),
    ]
    for event, words in bad:
        answer = handler(event, None)
        assert answer["statusCode"] == 400 and words in json.loads(answer["body"])["error"], event


def test_bundle_refuses_to_replace_other_folders(ckpts: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "thesis.tex").write_text("precious")
    from colorization.errors import ColorizationError

    with pytest.raises(ColorizationError, match="not a bundle"):
        bundle_for(ckpts["regression"], tmp_path / "work")
    assert (tmp_path / "work" / "thesis.tex").read_text() == "precious"
    bundle_for(ckpts["regression"], tmp_path / "b")
    bundle_for(ckpts["regression"], tmp_path / "b")  # a bundle is replaced
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def ciede2000_and_colourfulness(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean CIEDE2000 between two uint8 images, and the relative colourfulness change of b against a."""
    de = float(skcolor.deltaE_ciede2000(skcolor.rgb2lab(a), skcolor.rgb2lab(b)).mean())
    ca, cb = (float(colorfulness(torch.from_numpy(x).permute(2, 0, 1).float() / 255)[0]) for x in (a, b))
    return de, abs(cb - ca) / ca


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_int8_is_close_to_the_float_model(kind: str, ckpts: dict[str, Path], tmp_path: Path) -> None:
    """Calibrated on crops of two photos; judged on a held-out third (astronaut)."""
    crops = calibration_crops([_save(tmp_path, n) for n in ("chelsea", "coffee")], 128, SIZE)
    folder = bundle_for(ckpts[kind], tmp_path / "b", calibration=crops)
    onnx = pytest.importorskip("onnx")
    q = onnx.load(str(folder / "model.int8.onnx"))
    assert sum(n.op_type == "QuantizeLinear" for n in q.graph.node) > 5
    assert {p.key: p.value for p in q.metadata_props}["objective"] == kind
    rt = load_file(folder / "runtime.py", f"int8_runtime_{kind}")
    fp, i8 = rt.Model(folder / "model.onnx"), rt.Model(folder / "model.int8.onnx")
    held_out = Image.fromarray(photo("astronaut", (256, 256)))
    a, b = (np.asarray(rt.colorize_image(m, held_out)) for m in (fp, i8))
    de, dc = ciede2000_and_colourfulness(a, b)
    print(f"{kind}: int8 vs float, mean CIEDE2000 {de:.3f}, colourfulness change {dc:.2%}")
    assert de <= 2.0 and dc <= 0.05


def _save(folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    Image.fromarray(photo(name)).save(path)
    return path


@pytest.mark.slow
def test_calibrate_with_a_data_config(ckpts: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    from colorization.export import main

    monkeypatch.setenv("COLORIZATION_DATA", str(tmp_path / "data"))
    out = tmp_path / "m.onnx"
    args = ["--ckpt", str(ckpts["regression"]), "-o", str(out), "--size", "64", "--calibration-crops", "24"]
    spec = ["data=synthetic", "data.source.count=12", "data.source.size=48"]
    assert main([*args, "--calibrate", *spec]) == 0
    assert (tmp_path / "m.int8.onnx").is_file()
    assert main([*args, "--calibrate", "data=nothing"]) == 1
    assert main([*args, "--calibrate", str(tmp_path / "empty")]) == 1


@pytest.mark.slow
def test_bundle_in_a_fresh_venv(ckpts: dict[str, Path], tmp_path: Path) -> None:
    """Only the bundle's requirements installed (pip from the package index): colorize, handler, sizes."""
    folder = bundle_for(ckpts["classification"], tmp_path / "bundle")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-r", str(folder / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if pip.returncode != 0:
        pytest.skip(f"pip could not install the bundle's requirements: {pip.stderr.strip()[-300:]}")
    for name in PHOTOS:
        Image.fromarray(photo(name, (150, 100))).save(folder / f"{name}.jpg", quality=95)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    t0 = time.perf_counter()
    run = subprocess.run(
        [str(py), "runtime.py", "chelsea.jpg", "chelsea.png"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    cold = time.perf_counter() - t0
    assert run.returncode == 0, run.stderr
    check = (
        "import sys, json, base64, handler\n"
        "img = base64.b64encode(open('coffee.jpg', 'rb').read()).decode()\n"
        "good = handler.handler({'image': img}, None)\n"
        "bad = handler.handler({'image': 'nope'}, None)\n"
        "print(json.dumps({'good': good['statusCode'], 'bad': bad['statusCode'], 'png': good['body'][:8],\n"
        "  'mods': sorted(m for m in ('torch', 'skimage', 'scipy', 'colorization') if m in sys.modules)}))\n"
    )
    res = subprocess.run([str(py), "-c", check], cwd=folder, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    answer = json.loads(res.stdout.strip().splitlines()[-1])
    assert answer["good"] == 200 and answer["bad"] == 400 and answer["mods"] == []
    ref = Colorizer.from_checkpoint(ckpts["classification"], size=SIZE)
    for name in PHOTOS:
        assert (
            subprocess.run(
                [str(py), "runtime.py", f"{name}.jpg", f"{name}.png"], cwd=folder, env=env
            ).returncode
            == 0
        )
        want = np.asarray(ref.colorize(folder / f"{name}.jpg"), dtype=int)
        assert np.abs(np.asarray(Image.open(folder / f"{name}.png"), dtype=int) - want).max() <= 1, name
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file()) / 2**20
    own = (
        sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".onnx", ".py", ".txt", ".md")) / 2**20
    )
    print(
        f"bundle {own:.1f} MiB, installed with its requirements {size + own:.0f} MiB; cold start {cold:.2f} s"
    )
