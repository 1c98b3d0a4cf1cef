"""The end of a training run: the compact table, the T curve, the next commands, and dependency warnings
kept off the console (but in the run's log file)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from colorization.app import summary

METRICS = {
    "test/psnr": 23.456,
    "test/ssim": 0.8123,
    "test/colorfulness": 31.5,
    "test/colorfulness_gap": 4.2,
    "test/auc": 0.91,
    "test/loss": 2.5,
    **{f"test/T={t:g}/psnr": 20 + t for t in (1.0, 0.38, 0.05)},
    **{f"test/T={t:g}/colorfulness": 40 - 10 * t for t in (1.0, 0.38, 0.05)},
}


def test_a_classification_run_ends_with_its_metrics_its_T_curve_and_the_next_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evaluate.py").write_text("")
    run = tmp_path / "logs" / "train" / "runs" / "a run"
    ckpt = run / "checkpoints" / "best.ckpt"
    summary.print_summary(METRICS, "test", 0.38, [1.0, 0.38, 0.05], ckpt, run, tmp_path)
    out = capsys.readouterr().out
    assert "Metrics of best.ckpt (test split, T=0.38)" in out
    header = next(line for line in out.splitlines() if "psnr" in line and "ssim" in line)
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "psnr",
        "ssim",
        "colorfulness",
        "colorfulness_gap",
        "auc",
    ]
    assert "23.46" in out and "0.8123" in out and "2.5 " not in out  # the loss is not a quality metric
    curve = [
        line
        for line in out.splitlines()
        if "│" in line and ("(model)" in line or "0.05" in line or " 1 " in line)
    ]
    assert [c.split("│")[1].strip() for c in curve] == ["0.05", "0.38 (model)", "1"]
    assert "20.38" in out and "36.2" in out
    quoted = "'logs/train/runs/a run/checkpoints/best.ckpt'"
    assert f"evaluate this checkpoint:  python evaluate.py ckpt={quoted}" in out
    assert (
        f"python -m colorization.colorize PHOTO.jpg -o 'logs/train/runs/a run/colorized' --ckpt {quoted}"
        in out
    )
    assert f"python -m colorization.export --ckpt {quoted} -o 'logs/train/runs/a run/model.onnx'" in out


def test_a_regression_run_has_no_T_table_and_validation_metrics_say_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = {"val/psnr": 21.0, "val/ssim": 0.7}
    summary.print_summary(metrics, "val")
    out = capsys.readouterr().out
    assert "Metrics (validation)" in out and "temperature" not in out and "Next:" not in out


def test_dependency_warnings_go_to_the_log_file_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    handler = logging.FileHandler(tmp_path / "train.log")
    monkeypatch.setattr(root, "handlers", [*root.handlers, handler])
    shown: list[str] = []  # what reaches the console (the showwarning in place before)
    monkeypatch.setattr(warnings, "showwarning", lambda message, *args, **kwargs: shown.append(str(message)))
    site = "/venv/lib/python3.11/site-packages"
    ours = str(Path(summary.__file__).resolve().parents[1] / "data" / "datamodule.py")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        summary.quiet_dependency_warnings()
        summary.quiet_dependency_warnings()  # once per process: no second layer
        warnings.warn_explicit(
            "`isinstance(treespec, LeafSpec)` is deprecated, use ...",
            UserWarning,
            f"{site}/lightning/pytorch/utilities/_pytree.py",
            21,
        )
        warnings.warn_explicit("an internal deprecation", FutureWarning, f"{site}/torch/functional.py", 7)
        warnings.warn_explicit(
            "The 'train_dataloader' does not have many workers", UserWarning, f"{site}/lightning/x.py", 3
        )
        warnings.warn_explicit("our own deprecation", DeprecationWarning, ours, 9)
    handler.close()
    err = " | ".join(shown)
    logged = (tmp_path / "train.log").read_text()
    assert "LeafSpec" not in err and "internal deprecation" not in err
    assert (
        "LeafSpec" in logged
        and "_pytree.py:21" in logged
        and "FutureWarning: an internal deprecation" in logged
    )
    assert "does not have many workers" in err and "our own deprecation" in err  # a user can act on these
    assert "many workers" not in logged
