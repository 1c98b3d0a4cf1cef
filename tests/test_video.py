"""Films: a short test film made here (a pan over a photo, a cut to another, a sine tone), colorized by a
tiny trained classification model end to end, per frame and stabilised."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from support import ZHANG, adam, lab_batches, quiet_trainer
from torch.utils.data import DataLoader
from video_support import CUT, FPS, FRAMES, SIZE, film_frames, stand_in, write_film

from colorization import objectives
from colorization.inference import Colorizer
from colorization.inference.cli import main
from colorization.inference.video import io
from colorization.inference.video.metrics import file_report, warping_error
from colorization.inference.video.pipeline import FramePipeline
from colorization.inference.video.runner import DEFAULT_MODE, VideoOptions, colorize_video

av = pytest.importorskip("av", reason="PyAV (the video extra) is not installed")
cv2 = pytest.importorskip("cv2", reason="OpenCV (the video extra) is not installed")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classification ZhangNet trained for three steps on synthetic scenes, saved as a checkpoint."""
    torch.manual_seed(0)
    module = objectives.ClassificationModule(
        net=ZHANG,
        optimizer=adam(3e-3),
        prior="uniform",
        gamut="zhang",
        eval_temperatures=[],
        perceptual_metrics=False,
        rebalanced_auc=False,
    )
    trainer = quiet_trainer(max_steps=3, limit_val_batches=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train_dataloaders=DataLoader(lab_batches(n=12, bs=4), batch_size=None))
    path = tmp_path_factory.mktemp("ckpt") / "cls.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def colorizer(ckpt: Path) -> Colorizer:
    return Colorizer.from_checkpoint(ckpt, size=64)


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_film(tmp_path_factory.mktemp("film") / "film.mp4")


@pytest.fixture(scope="module", params=["classification", "regression"])
def runs(request: pytest.FixtureRequest) -> dict[str, tuple[list[np.ndarray], list[int]]]:
    """The truth's frames colorized in each mode by a flickering stand-in: (frames, cut indices). The
    classification one smooths logits in ema mode; the regression one smooths ab."""
    colorizer = stand_in(request.param)
    out = {}
    for mode in ("none", "ema", "flow"):
        pipe = FramePipeline(colorizer, mode, batch_size=4)
        assert pipe.predictor.logits == (request.param == "classification")
        out[mode] = (list(pipe.run(film_frames())), pipe.cut_frames)
    return out


def psnr(frames: list[np.ndarray], truth: list[np.ndarray]) -> float:
    mse = np.mean([np.mean((a.astype(np.float64) - b) ** 2) for a, b in zip(frames, truth, strict=True)])
    return float(10 * np.log10(255.0**2 / mse))


def streams(path: Path) -> dict[str, tuple]:
    with av.open(str(path)) as box:
        v = box.streams.video[0]
        frames = sum(1 for _ in box.decode(v))
    with av.open(str(path)) as box:
        v = box.streams.video[0]
        return {
            "video": (frames, v.average_rate, v.codec_context.width, v.codec_context.height),
            "duration": round(float(v.duration * v.time_base) if v.duration else box.duration / 1e6, 3),
            "audio": [(a.codec_context.name, a.rate) for a in box.streams.audio],
        }


def test_command_keeps_count_rate_size_duration_and_audio(
    film: Path, ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main([str(film), "-o", str(out), "--ckpt", str(ckpt), "--size", "64", "--report"]) == 0
    result = out / "film.mp4"
    got, src = streams(result), streams(film)
    assert got["video"] == src["video"] == (FRAMES, FPS, *SIZE)
    assert got["duration"] == src["duration"] == round(float(FRAMES / FPS), 3)
    assert got["audio"] == src["audio"] == [("aac", 44100)]
    with av.open(str(film)) as a, av.open(str(result)) as b:  # the audio is copied packet for packet
        pa = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
        pb = [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size]
    assert pa == pb and len(pa) > 10
    err = capsys.readouterr().err
    assert "warping error" in err and "colour source" in err and f"{FRAMES} frames" in err
    assert not list(out.glob(".*"))  # no parts folder, no temporary file left


def test_stabilised_is_steadier_at_the_same_psnr(runs: dict) -> None:
    truth = film_frames()
    base_err, base_psnr = warping_error(runs["none"][0]), psnr(runs["none"][0], truth)
    for mode in ("ema", "flow"):
        frames = runs[mode][0]
        assert len(frames) == FRAMES and frames[0].shape == (SIZE[1], SIZE[0], 3)
        bound = 0.6 if mode == "flow" else 0.9  # ema ignores motion: it helps, flow helps clearly
        assert warping_error(frames) < bound * base_err, (mode, warping_error(frames), base_err)
        assert psnr(frames, truth) > base_psnr - 0.5, (mode, psnr(frames, truth), base_psnr)
    assert warping_error(runs[DEFAULT_MODE][0]) <= warping_error(runs["ema"][0])


def test_a_cut_resets_the_smoothing(runs: dict) -> None:
    for mode in ("none", "ema", "flow"):
        assert runs[mode][1] == [0, CUT]
    for mode in ("ema", "flow"):
        assert np.array_equal(runs[mode][0][CUT], runs["none"][0][CUT])  # a fresh start after the cut
        assert np.array_equal(runs[mode][0][0], runs["none"][0][0])
        assert not np.array_equal(runs[mode][0][CUT - 1], runs["none"][0][CUT - 1])  # smoothing was on


def test_lightness_is_the_inputs(runs: dict) -> None:
    from skimage import color as skcolor

    truth = film_frames()
    for k in (0, CUT, FRAMES - 1):
        dL = np.abs(
            skcolor.rgb2lab(runs["flow"][0][k] / 255.0)[..., 0] - skcolor.rgb2lab(truth[k] / 255.0)[..., 0]
        )
        assert dL.mean() < 0.3, dL.mean()


def test_an_interrupted_run_resumes_to_the_same_file(
    film: Path, colorizer: Colorizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = VideoOptions(mode="flow", batch_size=4, chunk=8)
    whole = colorize_video(colorizer, film, tmp_path / "a" / "film.mp4", opts).output
    encode = io.encode_frames
    calls: list[Path] = []

    def interrupting(frames, path, *args, **kwargs):  # noqa: ANN001, ANN202 - io.encode_frames' own
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return encode(frames, path, *args, **kwargs)

    monkeypatch.setattr(io, "encode_frames", interrupting)
    target = tmp_path / "b" / "film.mp4"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(colorizer, film, target, opts)
    assert not target.exists()
    parts = target.with_name(".film.mp4.parts")
    assert sorted(p.name for p in parts.glob("0*")) == ["00000.mp4", "00000.npz", "00001.mp4", "00001.npz"]
    calls.clear()
    result = colorize_video(colorizer, film, target, opts)
    assert [p.name for p in calls] == ["00002.mp4", "00003.mp4"]  # finished chunks are not re-encoded
    assert result.resumed_frames == 16 and result.frames == FRAMES - 16
    assert target.read_bytes() == whole.read_bytes()
    assert not parts.exists()


def test_unreadable_and_truncated_films_fail_in_one_line(
    film: Path, ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "noise.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    cut = tmp_path / "cut.mkv"
    whole = tmp_path / "whole.mkv"
    write_film(whole, audio=False)
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "out"
    for src, words in ((bad, "cannot read video"), (cut, "truncated")):
        assert main([str(src), "-o", str(out), "--ckpt", str(ckpt), "--size", "64"]) == 1
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("failed")]
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in lines[0], lines
    assert not out.exists() or not any(out.iterdir())


def test_frame_folder_in_video_out(ckpt: Path, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "reel"
    folder.mkdir()
    for i, rgb in enumerate(film_frames()[:9]):
        Image.fromarray(rgb).save(folder / f"frame_{i + 1:03d}.png")
    out = tmp_path / "out"
    args = [str(folder), "--frames", "--fps", "12", "-o", str(out), "--ckpt", str(ckpt), "--size", "64"]
    assert main(args) == 0
    got = streams(out / "reel.mp4")
    assert got["video"] == (9, 12, *SIZE) and got["audio"] == []


def test_warping_error_measures_flicker() -> None:
    """A steady pan has a small error; adding a known chroma flicker raises it by about its size."""
    from skimage import color as skcolor

    truth = film_frames()[:CUT]
    steady = warping_error(truth)
    flicker = []
    for i, rgb in enumerate(truth):
        lab = skcolor.rgb2lab(rgb / 255.0)
        lab[..., 1] = lab[..., 1] * 0.5 + (6.0 if i % 2 else -6.0)  # a/b halved: keeps colours in gamut
        lab[..., 2] *= 0.5
        flicker.append((np.clip(skcolor.lab2rgb(lab), 0, 1) * 255 + 0.5).astype(np.uint8))
    halved = []
    for rgb in truth:
        lab = skcolor.rgb2lab(rgb / 255.0)
        lab[..., 1:] *= 0.5
        halved.append((np.clip(skcolor.lab2rgb(lab), 0, 1) * 255 + 0.5).astype(np.uint8))
    assert steady < 3.0
    assert 10.0 < warping_error(flicker) - warping_error(halved) < 12.5  # the a channel jumps by 12


def test_report_of_a_black_and_white_source(film: Path, tmp_path: Path) -> None:
    gray = write_film(
        tmp_path / "gray.mp4",
        [np.repeat(f.mean(2, keepdims=True), 3, 2).astype(np.uint8) for f in film_frames()],
    )
    report = file_report(film, gray)
    assert report.source is None and report.output > 0 and "black and white" in report.line()


def test_missing_video_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from colorization.errors import ColorizationError

    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ColorizationError, match=r"colorization-lab\[video\]"):
        io.require("av")


@pytest.mark.slow
def test_onnx_model_vp9_and_an_odd_sized_film(ckpt: Path, tmp_path: Path) -> None:
    """The ONNX path (no logits: ema smooths ab) into VP9 in Matroska, audio copied; an odd-sized film
    keeps its size (4:4:4)."""
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from colorization.inference.export import export_onnx

    model, _ = export_onnx(ckpt, tmp_path / "cls.onnx", image_size=64)
    film = write_film(tmp_path / "film.mov")
    out = tmp_path / "out"
    args = [str(film), "-o", str(out), "--onnx", str(model), "--stabilise", "ema", "--codec", "vp9"]
    assert main([*args, "--crf", "30"]) == 0
    got = streams(out / "film.mkv")
    assert got["video"][0] == FRAMES and got["audio"] == [("aac", 44100)]
    odd = [f[:63, :95] for f in film_frames()[:10]]
    with av.open(str(tmp_path / "odd.mkv"), "w") as box:
        v = box.add_stream("ffv1", rate=FPS)
        v.width, v.height, v.pix_fmt = 95, 63, "bgr0"
        for i, rgb in enumerate(odd):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts = i
            box.mux(v.encode(f))
        box.mux(v.encode(None))
    assert (
        main([str(tmp_path / "odd.mkv"), "-o", str(out / "odd.mp4"), "--ckpt", str(ckpt), "--size", "64"])
        == 0
    )
    assert streams(out / "odd.mp4")["video"] == (10, FPS, 95, 63)
    assert main([str(tmp_path / "odd.mkv"), "-o", str(out / "odd.mp4"), "--ckpt", str(ckpt)]) == 0  # exists
