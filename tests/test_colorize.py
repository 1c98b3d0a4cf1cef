"""Tests of full-resolution colorization (Colorizer and the colorize CLI) with a tiny stand-in network."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color as skcolor
from skimage import data as skdata
from support import StandIn

from colorization.errors import ColorizationError
from colorization.imaging import IMAGE_SUFFIXES, to_uint8, to_uint16
from colorization.inference import Colorizer, ModelInfo
from colorization.inference.cli import main
from colorization.inference.export import export_model
from colorization.inference.files import collect_inputs, read_image, split_array, split_pil


@pytest.fixture(scope="module")
def colorizer() -> Colorizer:
    return Colorizer.from_module(StandIn(), size=64)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "standin.onnx"
    info = ModelInfo(objective="regression", image_size=64, size_multiple=4)
    return export_model(StandIn(), path, info)


def astronaut(size: tuple[int, int] = (200, 150)) -> Image.Image:
    return Image.fromarray(skdata.astronaut()).resize(size, Image.BILINEAR)


def lightness(rgb_uint8: np.ndarray) -> np.ndarray:
    return skcolor.rgb2lab(rgb_uint8[..., :3] / 255.0)[..., 0]


def test_output_keeps_size_and_lightness(colorizer: Colorizer) -> None:
    img = astronaut((203, 151))  # odd, non-square, not a multiple of anything
    out = colorizer.colorize(img)
    assert isinstance(out, Image.Image) and out.size == img.size and out.mode == "RGB"
    arr = np.asarray(out)
    dL = np.abs(lightness(arr) - lightness(np.asarray(img)))
    # 8-bit quantisation of the output moves L by < 0.5 almost everywhere; out-of-gamut chroma is shrunk
    assert dL.mean() < 0.2 and np.quantile(dL, 0.999) < 0.8, (dL.mean(), dL.max())
    ab = skcolor.rgb2lab(arr / 255.0)[..., 1:]
    assert np.hypot(ab[..., 0], ab[..., 1]).mean() > 5.0  # it did colour the image


def test_ab_is_predicted_at_net_size_and_resized_back(colorizer: Colorizer) -> None:
    calls: list[tuple[int, ...]] = []
    inner = colorizer.backend

    def spy(L_n: np.ndarray) -> np.ndarray:
        calls.append(L_n.shape)
        return inner(L_n)

    c = Colorizer(spy, ModelInfo(size_multiple=4), size=64)
    L = np.linspace(0, 100, 90 * 120, dtype=np.float32).reshape(90, 120)
    ab = c.predict_ab(L)
    assert calls == [(1, 1, 64, 64)] and ab.shape == (2, 90, 120) and ab.dtype == np.float32
    keep = Colorizer(spy, ModelInfo(size_multiple=4), size=64, keep_aspect=True)
    assert keep.net_size(90, 120) == (64, 84) and keep.net_size(1000, 100) == (640, 64)


def test_size_must_fit_size_multiple() -> None:
    with pytest.raises(ColorizationError, match="size_multiple"):
        Colorizer(lambda x: x, ModelInfo(size_multiple=8), size=100)
    with pytest.raises(ColorizationError, match="positive"):
        Colorizer(lambda x: x, ModelInfo(), size=-4)


def test_gray_input_and_alpha_and_16bit(colorizer: Colorizer) -> None:
    rgb = np.asarray(astronaut((80, 60)))
    gray = Image.fromarray(rgb).convert("L")
    out = colorizer.colorize(gray)
    assert out.mode == "RGB" and out.size == gray.size
    assert np.abs(lightness(np.asarray(out)) - lightness(np.asarray(gray.convert("RGB")))).mean() < 0.2

    alpha = (np.arange(60 * 80) % 256).astype(np.uint8).reshape(60, 80)
    rgba = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    out = colorizer.colorize(rgba)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], alpha)
    la = Image.fromarray(np.dstack([np.asarray(gray), alpha]), "LA")
    assert np.array_equal(np.asarray(colorizer.colorize(la))[..., 3], alpha)

    g16 = (np.asarray(gray).astype(np.uint16) * 257 + 100).astype(np.uint16)
    out16 = colorizer.colorize(g16)  # an array comes back with its dtype
    assert out16.dtype == np.uint16 and out16.shape == (60, 80, 3)
    L_in = skcolor.rgb2lab(np.repeat((g16 / 65535.0)[..., None], 3, axis=2))[..., 0]
    assert np.abs(skcolor.rgb2lab(out16 / 65535.0)[..., 0] - L_in).mean() < 0.05


def test_arrays_keep_dtype_and_channels(colorizer: Colorizer) -> None:
    rgb = np.asarray(astronaut((40, 30)))
    assert colorizer.colorize(rgb).dtype == np.uint8
    f = colorizer.colorize(rgb / 255.0)
    assert f.dtype == np.float32 and f.shape == (30, 40, 3) and 0 <= f.min() and f.max() <= 1
    assert colorizer.colorize(rgb[..., 0]).shape == (30, 40, 3)
    assert colorizer.colorize(np.dstack([rgb, np.full((30, 40), 7, np.uint8)]))[..., 3].max() == 7


@pytest.mark.parametrize(
    "bad, match",
    [(np.zeros((4, 4, 5)), "shape"), (np.full((4, 4), 2.0), r"\[0, 1\]"), (np.full((4, 4), np.nan), "NaN")],
)
def test_bad_arrays_raise_clear_errors(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        split_array(bad)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = astronaut((40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    rgb, alpha = read_image(tmp_path / "rot.jpg")
    assert rgb.shape == (40, 20, 3) and alpha is None


def test_unreadable_file_raises_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ColorizationError, match="cannot read image"):
        read_image(tmp_path / "broken.jpg")


def test_enhance_changes_chroma_not_lightness(colorizer: Colorizer) -> None:
    img = astronaut((64, 48))
    plain = np.asarray(colorizer.colorize(img))
    boosted = Colorizer(colorizer.backend, colorizer.info, size=64, enhance=(0.8, 0.2, 2.0, 4.0))
    out = np.asarray(boosted.colorize(img))
    assert np.abs(lightness(out) - lightness(np.asarray(img))).mean() < 0.25
    chroma = [np.hypot(*np.moveaxis(skcolor.rgb2lab(a / 255.0)[..., 1:], -1, 0)).mean() for a in (plain, out)]
    assert chroma[1] > chroma[0]


def test_image_suffixes_are_one_list_for_training_and_colorize(tmp_path: Path) -> None:
    from colorization.data.images import IMAGE_EXTENSIONS, is_image_file

    assert IMAGE_EXTENSIONS is IMAGE_SUFFIXES
    for suffix in sorted(IMAGE_SUFFIXES):
        (tmp_path / f"x{suffix.replace('.', '_')}{suffix.upper()}").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")
    found, _ = collect_inputs([str(tmp_path)])
    assert len(found) == len(IMAGE_SUFFIXES) and all(is_image_file(p) for p, _ in found)


@pytest.mark.parametrize("mode", ["I;16", "RGBA", "LA", "P", "CMYK", "F", "1"])
def test_decoding_matches_the_training_loader(tmp_path: Path, mode: str) -> None:
    from colorization.data.images import to_rgb

    rgb = np.asarray(astronaut((24, 16)))
    gray = rgb.mean(axis=2)
    alpha = (np.arange(16 * 24) % 256).astype(np.uint8).reshape(16, 24)
    img = {
        "I;16": lambda: Image.fromarray((gray * 257).astype(np.uint16)),
        "RGBA": lambda: Image.fromarray(np.dstack([rgb, alpha]), "RGBA"),
        "LA": lambda: Image.fromarray(np.dstack([gray.astype(np.uint8), alpha]), "LA"),
        "P": lambda: Image.fromarray(rgb).convert("P"),
        "CMYK": lambda: Image.fromarray(rgb).convert("CMYK"),
        "F": lambda: Image.fromarray((gray / 255.0).astype(np.float32), "F"),
        "1": lambda: Image.fromarray(gray > 128),
    }[mode]()
    assert img.mode == mode
    ours, a = split_pil(img)
    assert (a is not None) == (mode in ("RGBA", "LA"))
    if a is not None:
        assert np.array_equal((a * 255).round(), alpha)
        ours = ours * a[..., None] + (1 - a[..., None])  # training composites over white
    train = np.asarray(to_rgb(img), dtype=np.float32) / 255.0
    assert np.abs(ours - train).max() <= 1.01 / 255


def _png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A tiny PNG whose header declares width×height pixels (PIL refuses it before decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def test_decompression_bomb_is_one_failure_not_an_abort(
    tmp_path: Path, onnx_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "bomb.png").write_bytes(_png_bomb())
    astronaut((40, 30)).save(src / "good.png")
    with pytest.raises(ColorizationError, match="too large"):
        read_image(src / "bomb.png")
    assert main([str(src), "-o", str(tmp_path / "out"), "--onnx", str(onnx_model)]) == 0
    err = capsys.readouterr().err
    assert "1 colorized" in err and "1 failed" in err and "Traceback" not in err
    assert [line for line in err.splitlines() if "bomb.png" in line and "too large" in line]
    assert (tmp_path / "out" / "good.png").is_file()


def test_bad_device_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ColorizationError, match="not a device"):
        Colorizer.from_module(StandIn(), device="foo")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ColorizationError, match="no CUDA GPU"):
        Colorizer.from_module(StandIn(), device="cuda")


def test_missing_onnx_packages_say_how_to_install(
    tmp_path: Path, onnx_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    hint = r'is not installed: pip install "colorization-lab\[onnx\]"'
    with pytest.raises(ColorizationError, match="onnxruntime " + hint):
        Colorizer.from_onnx(onnx_model)
    astronaut((40, 30)).save(tmp_path / "a.png")
    assert main([str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--onnx", str(onnx_model)]) == 1
    err = capsys.readouterr().err
    assert 'pip install "colorization-lab[onnx]"' in err and "Traceback" not in err
    info = ModelInfo(size_multiple=4, image_size=16)
    with pytest.raises(ColorizationError, match="onnxruntime is not installed"):
        export_model(StandIn(), tmp_path / "m.onnx", info)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ColorizationError, match="^onnx " + hint):
        export_model(StandIn(), tmp_path / "m.onnx", info, check=False)


def test_collect_inputs_files_folders_globs(tmp_path: Path) -> None:
    (tmp_path / "a" / "sub").mkdir(parents=True)
    for p in ["a/x.jpg", "a/sub/y.png", "a/notes.txt", "z.webp"]:
        (tmp_path / p).write_bytes(b"")
    found, problems = collect_inputs(
        [str(tmp_path / "a"), str(tmp_path / "*.webp"), str(tmp_path / "nope.jpg")]
    )
    assert [str(rel) for _, rel in found] == ["sub/y", "x", "z"]
    assert len(problems) == 1 and "nope.jpg" in problems[0]


def write_inputs(folder: Path) -> None:
    folder.mkdir()
    astronaut((64, 48)).save(folder / "astro.jpg")
    Image.fromarray(np.dstack([np.asarray(astronaut((50, 40))), np.full((40, 50), 128, np.uint8)])).save(
        folder / "clear.png"
    )
    (folder / "deep").mkdir()
    astronaut((30, 30)).convert("L").save(folder / "deep" / "gray.tiff")
    (folder / "broken.png").write_bytes(b"garbage")


def test_cli_onnx_end_to_end(tmp_path: Path, onnx_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert main([str(tmp_path / "in"), "-o", str(out), "--onnx", str(onnx_model), "--compare"]) == 0
    err = capsys.readouterr().err
    assert "broken.png" in err and "3 colorized" in err and "1 failed" in err
    assert Image.open(out / "astro.png").size == (64, 48)
    clear = Image.open(out / "clear.png")
    assert clear.mode == "RGBA" and np.asarray(clear)[..., 3].max() == 128
    assert Image.open(out / "deep" / "gray.png").size == (30, 30)
    assert Image.open(out / "astro_compare.png").size == (128, 48)

    before = (out / "astro.png").stat().st_mtime_ns
    assert main([str(tmp_path / "in" / "astro.jpg"), "-o", str(out), "--onnx", str(onnx_model)]) == 0
    assert (out / "astro.png").stat().st_mtime_ns == before and "exists" in capsys.readouterr().err
    assert (
        main(
            [
                str(tmp_path / "in" / "astro.jpg"),
                "-o",
                str(out),
                "--onnx",
                str(onnx_model),
                "--overwrite",
                "--format",
                "webp",
                "--enhance",
                "0.8",
                "0.2",
                "2",
                "4",
            ]
        )
        == 0
    )
    assert Image.open(out / "astro.webp").size == (64, 48)
    single = tmp_path / "single.jpg"
    assert main([str(tmp_path / "in" / "clear.png"), "-o", str(single), "--onnx", str(onnx_model)]) == 0
    assert Image.open(single).mode == "RGB" and Image.open(single).size == (50, 40)


def test_cli_failures_and_exit_codes(
    tmp_path: Path, onnx_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"garbage")
    out = str(tmp_path / "out")
    assert main([str(tmp_path / "broken.jpg"), "-o", out, "--onnx", str(onnx_model)]) == 1
    assert main([str(tmp_path / "missing*.jpg"), "-o", out, "--onnx", str(onnx_model)]) == 1
    assert main([str(tmp_path / "broken.jpg"), "-o", out, "--onnx", str(tmp_path / "none.onnx")]) == 1
    assert (
        main([str(tmp_path / "broken.jpg"), "-o", out, "--onnx", str(onnx_model), "--temperature", "0.5"])
        == 1
    )
    err = capsys.readouterr().err
    assert "ONNX model not found" in err and "temperature is fixed at export" in err
    assert "Traceback" not in err
    (tmp_path / "other.jpg").write_bytes(b"garbage")
    two = [str(tmp_path / "broken.jpg"), str(tmp_path / "other.jpg")]
    assert main([*two, "-o", str(tmp_path / "x.png"), "--onnx", str(onnx_model)]) == 1
    assert "looks like a file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "broken.jpg"), "-o", out])  # neither --ckpt nor --onnx
    assert e.value.code == 2


def test_16bit_rgb_tiff_is_read_at_full_precision(tmp_path: Path, colorizer: Colorizer) -> None:
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 65536, (24, 32, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", arr)
    rgb, alpha = read_image(tmp_path / "deep.tif")
    assert alpha is None and np.abs(rgb - arr / 65535.0).max() < 1e-6
    assert colorizer.colorize(tmp_path / "deep.tif").size == (32, 24)


def test_16bit_gray_png_is_read_at_full_precision(tmp_path: Path) -> None:
    g = (np.arange(24 * 32, dtype=np.uint16) * 85).reshape(24, 32)
    Image.fromarray(g).save(tmp_path / "g16.png")
    rgb, alpha = read_image(tmp_path / "g16.png")
    assert alpha is None and np.abs(rgb[..., 1] - g / 65535.0).max() < 1e-6


def test_to_uint8_rounds_clips_and_takes_numpy_arrays() -> None:
    k = np.arange(256)
    for dtype in (np.float32, np.float64):
        exact = (k / 255.0).astype(dtype)
        assert to_uint8(exact).dtype == np.uint8 and np.array_equal(to_uint8(exact), k)
        assert np.array_equal(to_uint8(((k + 0.49) / 255.0).astype(dtype))[:-1], k[:-1])  # rounds down
        assert np.array_equal(to_uint8(((k[:-1] + 0.51) / 255.0).astype(dtype)), k[1:])  # rounds up
    img = np.array([[[-0.5, 0.0, 1.5]], [[1.0, 0.5, 0.25]]])  # any shape, out of range clipped
    assert np.array_equal(to_uint8(img), [[[0, 0, 255]], [[255, 128, 64]]])
    assert np.array_equal(to_uint8([0.0, 1.0]), [0, 255])
    assert to_uint16(np.array([0.0, 0.5, 1.0, 2.0])).tolist() == [0, 32768, 65535, 65535]


def test_onnx_colorizer_imports_neither_torch_nor_skimage(onnx_model: Path, tmp_path: Path) -> None:
    astronaut((60, 40)).save(tmp_path / "a.png")
    driver = (
        "import sys, json\n"
        "import numpy as np\n"
        "from colorization.inference import Colorizer\n"
        "c = Colorizer.from_onnx(sys.argv[1], enhance=(0.8, 0.2, 2.0, 4.0))\n"
        "out = c.colorize(sys.argv[2])\n"
        "arr = c.colorize(np.asarray(out))\n"
        "print(json.dumps({'size': list(out.size), 'dtype': str(arr.dtype),"
        " 'torch': 'torch' in sys.modules, 'skimage': 'skimage' in sys.modules}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", driver, str(onnx_model), str(tmp_path / "a.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"size": [60, 40], "dtype": "uint8", "torch": False, "skimage": False}


def test_entry_points_reach_the_inference_package(tmp_path: Path) -> None:
    import colorization.colorize as shim
    import colorization.export as export_shim
    from colorization.inference import cli, colorizer, export

    assert shim.main is cli.main and shim.Colorizer is colorizer.Colorizer
    assert export_shim.export_main is export.main  # with the app's train splits for --calibrate
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    module, name = re.search(r'^colorize = "([\w.]+):(\w+)"$', pyproject, re.MULTILINE).groups()
    assert getattr(importlib.import_module(module), name) is cli.main
    for command in ("colorization.colorize", "colorization.export"):
        proc = subprocess.run(
            [sys.executable, "-m", command, "--help"], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "colorization.colorize", str(tmp_path / "none.png"), "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "--ckpt" in proc.stderr  # usage error: neither --ckpt nor --onnx
