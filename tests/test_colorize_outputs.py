"""colorize's outputs and inputs (issue 10, finding 5): outputs written atomically (a killed run leaves no
truncated file that the next run would skip), inputs above --max-pixels refused from their header before
decoding, and a note that only the first frame of an animated GIF is colorized."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from staging import ROOT
from torch import nn

from colorization.atomic import partial_files
from colorization.errors import ColorizationError
from colorization.imaging import DEFAULT_MAX_PIXELS
from colorization.inference import ModelInfo
from colorization.inference.cli import main
from colorization.inference.export import export_model
from colorization.inference.files import read_image, save


class Tint(nn.Module):
    """L_n → a constant ab: the smallest model colorize can run."""

    size_multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x * 0 + 20.0, x * 0 - 10.0], dim=1)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "tint.onnx"
    return export_model(Tint(), path, ModelInfo(objective="regression", image_size=16, size_multiple=1))


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width×height pixels but holds no pixel data: decoding it fails."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def test_max_pixels_refuses_from_the_header_before_decoding(tmp_path: Path) -> None:
    """8000×8000 (64 MP: above the default, below Pillow's own bomb limit) is refused from its header; with
    a higher limit, or none, decoding is attempted (and fails on the missing data, which proves it was not
    attempted before); 20000×20000 is past Pillow's limit and still honours --max-pixels 0."""
    assert DEFAULT_MAX_PIXELS == 50_000_000
    big = tmp_path / "big.png"
    big.write_bytes(png_header(8000, 8000))
    with pytest.raises(
        ColorizationError, match=r"too large \(8000x8000 = 64\.0 megapixels, more than --max-pixels"
    ):
        read_image(big)
    for limit in (100_000_000, 0):
        with pytest.raises(ColorizationError) as err:
            read_image(big, max_pixels=limit)
        assert "too large" not in str(err.value)
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header(20000, 20000))
    with pytest.raises(ColorizationError) as err:
        read_image(huge, max_pixels=0)
    assert "too large" not in str(err.value)
    assert Image.MAX_IMAGE_PIXELS == 89478485  # Pillow's own limit is given back


def test_animated_gif_warns_that_only_its_first_frame_is_used(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.warns(UserWarning, match="anim.gif has 3 frames: only the first one is colorized"):
        rgb, _ = read_image(tmp_path / "anim.gif")
    assert rgb[0, 0, 0] > 0.7 and rgb[0, 0, 1] < 0.1  # the red first frame


def test_a_failed_save_keeps_the_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An output that fails half-way (a kill, a full disk) leaves the previous file and no temporary."""
    target = tmp_path / "out.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(target)
    before = target.read_bytes()

    def half(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"\x89PNG half")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", half)
    with pytest.raises(OSError):
        save(Image.new("RGB", (4, 4)), target, "PNG")
    assert target.read_bytes() == before and partial_files(target) == []


def test_cli_notes_the_frames_and_refuses_the_oversized_in_one_line(
    tmp_path: Path, onnx_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    frames = [Image.new("RGB", (12, 10), (90, 90, 90)), Image.new("RGB", (12, 10), (10, 10, 10))]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:])
    (src / "big.png").write_bytes(png_header(300, 300))
    out = tmp_path / "out"
    assert main([str(src), "-o", str(out), "--onnx", str(onnx_model), "--max-pixels", "10000"]) == 0
    err = capsys.readouterr().err
    assert "note: anim.gif has 2 frames: only the first one is colorized" in err
    (line,) = [line for line in err.splitlines() if "big.png" in line]
    assert line.startswith("failed: ") and "300x300" in line and "--max-pixels 10000" in line
    assert sorted(p.name for p in out.iterdir()) == ["anim.png"]
    with pytest.raises(SystemExit):
        main([str(src), "-o", str(out), "--onnx", str(onnx_model), "--max-pixels", "-1"])


@pytest.mark.slow
def test_colorize_killed_while_writing_leaves_no_truncated_output(tmp_path: Path, onnx_model: Path) -> None:
    """SIGKILL while an output's temporary file is being written: no file under the output's name, so the
    next run colorizes it instead of skipping it as already there."""
    src = tmp_path / "noise.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (2400, 2400, 3), dtype=np.uint8)).save(src, compress_level=0)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "colorization.colorize",
        str(src),
        "-o",
        str(out),
        "--onnx",
        str(onnx_model),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    end = time.monotonic() + 120
    while not partial_files(out / "noise.png"):
        assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
        assert time.monotonic() < end
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not (out / "noise.png").exists()
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "1 colorized, 0 already existed" in again.stderr, again.stderr
    assert Image.open(out / "noise.png").size == (2400, 2400) and partial_files(out / "noise.png") == []
