"""Small pieces of the application: DDP child command lines, W&B credentials/groups, error lines, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from colorization.app import runtime, tracking
from colorization.app.cli import one_line
from colorization.app.evaluation import ckpt_label
from colorization.app.report import CheckpointResult, save_grid, to_json, write_all
from colorization.app.runtime import child_argv
from colorization.app.training import plain


def test_child_argv_keeps_config_flags_and_job_overrides() -> None:
    """A DDP child of sweep job 1 re-runs that job only: no -m, the job's values, -cd/-cn kept."""
    argv = [
        "train.py",
        "-m",
        "-cd",
        "sweeps",
        "-cn",
        "lambda_temperature",
        "loss.lambda=0,0.5",
        "hardware=ddp",
    ]
    out = child_argv(argv, ["loss.lambda=0.5", "hardware=ddp"])
    assert out == [
        "train.py",
        "-cd",
        "sweeps",
        "-cn",
        "lambda_temperature",
        "loss.lambda=0.5",
        "hardware=ddp",
    ]
    assert child_argv(["train.py", "--multirun", "--config-name=x", "a=1,2"], ["a=2"]) == [
        "train.py",
        "--config-name=x",
        "a=2",
    ]


def test_wandb_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An API key or a netrc entry for the W&B host counts as credentials; nothing else does."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert not tracking.wandb_credentials_present()
    netrc.write_text("machine example.org login a password b\n")
    assert not tracking.wandb_credentials_present()
    netrc.write_text("machine api.wandb.ai login user password secret\n")
    netrc.chmod(0o600)
    assert tracking.wandb_credentials_present()
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert tracking.wandb_credentials_present()


def test_configure_wandb_offline_without_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials: offline, WANDB_MODE=offline (no network), quiet; group from sweep_name."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    cfg = OmegaConf.create(
        {"logger": {"wandb": {"_target_": "x", "offline": False, "group": None, "tags": ["a"]}}}
    )
    assert tracking.configure_wandb(cfg.logger.wandb, sweep_name="lam", task_name="train") is True
    import os

    assert os.environ["WANDB_MODE"] == "offline" and os.environ["WANDB_SILENT"] == "true"
    assert cfg.logger.wandb.offline is True and cfg.logger.wandb.group == "lam"
    assert tracking.configure_wandb(None) is False  # W&B not chosen


def test_group_name_from_sweep_dir() -> None:
    """An unnamed multirun is grouped by its sweep directory's name; a named one by its name."""
    sweep = runtime.Sweep(multirun=True, sweep_dir="/x/multiruns/2026-01-01_10-00-00", job_num=0)
    assert tracking.group_name(None, "train", sweep) == "train-2026-01-01_10-00-00"
    assert tracking.group_name(None, "train", runtime.Sweep()) is None
    assert tracking.group_name("lam", "train", runtime.Sweep()) == "lam"


def test_runtime_outside_hydra_is_a_plain_single_run() -> None:
    """Called in-process without Hydra, the runtime reports no sweep, no overrides, no choices."""
    assert runtime.sweep() == runtime.Sweep() and runtime.overrides() == [] and runtime.choices() == {}
    assert runtime.multirun_job() is None and runtime.prepare_ddp_children() is False


def test_plain() -> None:
    """Config nodes reach the library as resolved plain dicts; None and {} mean no spec."""
    assert plain(OmegaConf.create({"a": "${b}", "b": 1})) == {"a": 1, "b": 1}
    assert plain(None) is None and plain({}) is None and plain(OmegaConf.create({})) is None
    spec = {"_target_": "x"}
    assert plain(spec) == spec and plain(spec) is not spec


def test_missing_option_becomes_one_line() -> None:
    """Hydra's multi-line 'Could not find' error is condensed to the group, the option and the choices."""
    err = MissingConfigException(
        "Could not find 'loss/bogus'\n\nAvailable options in 'loss':\n\tl1\n\tl2",
        missing_cfg_file="loss/bogus",
        options=["l2", "l1"],
    )
    assert one_line(err) == "loss=bogus is not an option of 'loss'; allowed values: l1, l2"


def test_reports(tmp_path: Path) -> None:
    """metrics.json has psnr/ssim/colorfulness at top level and per checkpoint; CSV, plot and HTML exist."""
    m = {"psnr": 20.0, "ssim": 0.8, "colorfulness": 30.0}
    results = [
        CheckpointResult(
            "a/last",
            "/r/a/checkpoints/last.ckpt",
            "ClassificationModule",
            m,
            sweep={0.38: m, 1.0: {**m, "psnr": 21.0}},
            temperature=0.38,
        ),
        CheckpointResult("b/last", "/r/b/checkpoints/last.ckpt", "RegressionModule", {**m, "psnr": 19.0}),
    ]
    images = {
        "L": torch.rand(2, 1, 8, 8) - 0.5,
        "pred": torch.rand(2, 3, 8, 8),
        "truth": torch.rand(2, 3, 8, 8),
    }
    results[0].grid = save_grid(images, tmp_path / "grids" / "a.png")
    out = write_all(results, tmp_path, split="test")
    data = json.loads(out["json"].read_text())
    assert data["psnr"] == 20.0 and data["t_sweep"]["1"]["psnr"] == 21.0
    assert [c["psnr"] for c in data["checkpoints"]] == [20.0, 19.0]
    assert to_json(results)["objective"] == "ClassificationModule"
    rows = out["csv"].read_text().strip().splitlines()
    assert len(rows) == 1 + 3 + 1  # header, a + its two temperatures, b
    assert out["plot"].is_file()
    html = out["html"].read_text()
    assert html.count("data:image/png;base64") == 2 and "b/last" in html
    from PIL import Image

    assert Image.open(results[0].grid).size == (24, 16)  # gray | pred | truth, one row per image


def test_ckpt_label() -> None:
    """RUN/checkpoints/last.ckpt is shown as RUN/last."""
    assert ckpt_label(Path("/x/run7/checkpoints/last.ckpt")) == "run7/last"


def test_lightning_tips_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """Lightning's "💡 Tip: ... litlogger" advertising line is filtered; its other info lines are kept."""
    import logging

    from colorization.app.training import quiet_lightning_tips

    quiet_lightning_tips()
    quiet_lightning_tips()  # idempotent
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("💡 Tip: For seamless cloud logging, try installing litlogger")
        logger.info("GPU available: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False"]
