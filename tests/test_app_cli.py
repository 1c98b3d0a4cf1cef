"""The commands as users type them (subprocesses): one-line errors, multirun with W&B offline, DDP on CPU,
evaluate.py on a checkpoint just trained."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from support import FAST, run_cli


@pytest.fixture(scope="module")
def data_dir(shared_data_dir: Path) -> Path:
    """A tiny synthetic dataset shared by the module's subprocesses."""
    return shared_data_dir


# One case per path an error takes to the command line (validation, composition, OmegaConf, data, logger
# package, Hydra's own argument checks before the task); each validation rule is tested in-process in
# test_app_config.py.
SLOW = pytest.mark.slow  # each case is a Python start-up (about 7 s here); one stays in the quick run


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["loss.lambda=1.5"], "loss.lambda=1.5", id="lambda"),
        pytest.param(
            ["loss=bogus"],
            "loss=bogus is not an option of 'loss'; allowed values: cgan_l1, huber, l1, l2, rebalanced_ce",
            id="unknown-loss",
            marks=SLOW,
        ),
        pytest.param(["model.nope=1"], "model.nope", id="unknown-key", marks=SLOW),
        pytest.param(
            ["data=folder", "data.root=/no/such/folder", "logger=none"],
            "/no/such/folder",
            id="no-data",
            marks=SLOW,
        ),
        pytest.param(
            ["logger=tensorboard"],
            "logger=tensorboard needs the `tensorboard` package",
            id="tensorboard",
            marks=SLOW,
        ),
        pytest.param(
            ["-m", "--cfg=hydra", "loss.lambda=0,1"],
            "Only one of --run, --multirun, --cfg",
            id="multirun-cfg",
            marks=SLOW,
        ),
    ],
)
def test_config_errors_are_one_line(args: list[str], needle: str, tmp_path: Path, data_dir: Path) -> None:
    """Each error prints one line on stderr naming the key/values, and the exit status is non-zero; nothing
    of Lightning's start-up chatter comes before it (data and loggers are checked before the Trainer)."""
    if "tensorboard" in args[0] and importlib.util.find_spec("tensorboard"):
        pytest.skip("tensorboard is installed: logger=tensorboard works")
    proc = run_cli("train.py", [*args, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, data_dir, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert needle in errors[0]
    assert "Traceback" not in proc.stderr
    assert "GPU available" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_multirun_failed_job_does_not_stop_the_sweep(tmp_path: Path, data_dir: Path) -> None:
    """Job #0 diverges (lr 1e30: NaN loss), job #1 still trains and writes its checkpoint; one line per
    failure, one summary line at the end, exit status 1. logger=none with the default callbacks (the
    learning-rate monitor is left out, the image callbacks write PNG files)."""
    sweep_dir = tmp_path / "sweep"
    fast = [a for a in FAST if not a.startswith("callbacks=")]
    args = ["-m", *fast, "model=cnn", "trainer.max_epochs=1", "optimizer.lr=1e30,1e-3"]
    proc = run_cli("train.py", [*args, f"hydra.sweep.dir={sweep_dir}"], tmp_path, data_dir, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, proc.stderr[-3000:]
    assert "non-finite" in errors[0] and "loss" in errors[0]
    assert errors[1].startswith("error: 1 of 2 sweep jobs failed: #0 (") and "optimizer.lr=1e+30" in errors[1]
    assert not (sweep_dir / "0" / "checkpoints" / "last.ckpt").exists()
    assert (sweep_dir / "1" / "checkpoints" / "last.ckpt").is_file()
    assert list((sweep_dir / "1" / "images").glob("*.png"))  # image grids without a logger


@pytest.mark.slow
def test_evaluate_missing_checkpoint(tmp_path: Path, data_dir: Path) -> None:
    """evaluate.py with a missing file: one line, exit 1."""
    proc = run_cli("evaluate.py", ["ckpt=/no/such.ckpt", f"hydra.run.dir={tmp_path}"], tmp_path, data_dir)
    assert proc.returncode == 1
    assert "error: ckpt=/no/such.ckpt: no such checkpoint file" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_multirun_two_runs_wandb_offline_then_evaluate(tmp_path: Path, data_dir: Path) -> None:
    """A 2-run sweep: each job its own offline W&B run (metrics, images) in one group; then evaluate.py."""
    sweep_dir = tmp_path / "sweep"
    args = [
        "-m",
        *[a for a in FAST if not a.startswith(("logger=", "callbacks="))],
        "logger=wandb",
        "callbacks=default",
        "callbacks.image_grids.every_n_steps=1",
        "model=cnn",
        "loss=rebalanced_ce",
        "loss.lambda=0,1",
        "trainer.max_epochs=1",
        "sweep_name=pytest_sweep",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    proc = run_cli("train.py", args, tmp_path, data_dir, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sync_lines = [line for line in proc.stdout.splitlines() if "wandb sync" in line]
    assert len(sync_lines) == 2  # one line per run
    for job, lam in ((0, 0), (1, 1)):
        job_dir = sweep_dir / str(job)
        assert (job_dir / "checkpoints" / "last.ckpt").is_file()
        assert (job_dir / "config.yaml").is_file() and (job_dir / ".hydra" / "config.yaml").is_file()
        saved = yaml.safe_load((job_dir / "config.yaml").read_text())
        assert saved["loss"]["lambda"] == lam
        runs = list((job_dir / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, list((job_dir / "wandb").iterdir())
        assert f"wandb sync {runs[0]}" in "\n".join(sync_lines) or runs[0].name in "\n".join(sync_lines)
        logs = list(runs[0].glob("*.wandb"))
        assert len(logs) == 1  # the run's record: config, metrics, media references
        record = logs[0].read_bytes()
        assert b"val/psnr" in record and b"train/loss" in record
        assert f"loss.lambda={lam}".encode() in record  # the sweep override, in config and tags
        assert b"pytest_sweep" in record  # the W&B group named after the sweep
        media = list((runs[0] / "files" / "media").rglob("*.png"))
        assert media, "image grids logged"

    out = tmp_path / "eval"
    last = [sweep_dir / j / "checkpoints" / "last.ckpt" for j in ("0", "1")]
    ckpts = f"ckpt=[{last[0]},{last[1]}]"
    proc = run_cli(
        "evaluate.py",
        [ckpts, "max_batches=2", "temperatures=[1.0,0.38]", f"hydra.run.dir={out}"],
        tmp_path,
        data_dir,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"psnr", "ssim", "colorfulness"} <= set(metrics)
    assert len(metrics["checkpoints"]) == 2
    assert set(metrics["t_sweep"]) == {"1", "0.38"}
    assert (out / "metrics.csv").read_text().startswith("checkpoint,objective,temperature")
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 3  # T plot and two grids, embedded
    assert (out / "t_sweep.png").is_file() and len(list((out / "grids").glob("*.png"))) == 2
    assert "psnr" in proc.stdout  # the rich table


@pytest.mark.slow
def test_ddp_cpu_multirun_two_processes(tmp_path: Path, data_dir: Path) -> None:
    """hardware=ddp_cpu in a 2-job sweep: each job trains with 2 gloo processes in its own job directory;
    the ranks neither start the sweep again nor create directories of their own."""
    sweep_dir = tmp_path / "sweep"
    args = [
        "-m",
        *FAST,
        "hardware=ddp_cpu",
        "model=cnn",
        "trainer.max_epochs=1",
        "loss.lambda=0,1",
        "loss=rebalanced_ce",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    proc = run_cli("train.py", args, tmp_path, data_dir, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    for job, lam in ((0, 0), (1, 1)):
        job_dir = sweep_dir / str(job)
        assert (job_dir / "checkpoints" / "last.ckpt").is_file()
        assert yaml.safe_load((job_dir / "config.yaml").read_text())["loss"]["lambda"] == lam
    # nothing outside the sweep dir: no run directories made by the child ranks
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")) == [
        "sweep"
    ]
    output = proc.stdout + proc.stderr
    assert (
        output.count("Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2") == 2
    )  # one rank-1 child per job
