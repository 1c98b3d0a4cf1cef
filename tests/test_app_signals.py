"""Issue 10 through `python train.py` subprocesses, as a user (or SLURM) meets it: SIGTERM and Ctrl-C sent
from outside once a checkpoint is written, the resume command the run prints, one-line errors for damaged
checkpoints, typos after `+` and filesystem errors, two runs started at the same moment."""

from __future__ import annotations

import os
import re
import shlex
import signal
import time
from pathlib import Path

import pytest
import torch
from staging import callback_overrides, output, start_train, wait_for, wandb_records
from support import FAST, cli_env, run_cli

pytestmark = pytest.mark.slow

EPOCHS = 15  # 2 steps each: an uninterrupted run ends at global step 30
PACED = [
    "model=cnn",
    *FAST,
    f"trainer.max_epochs={EPOCHS}",
    "callbacks.last_checkpoint.every_n_train_steps=3",
    "callbacks.last_checkpoint.verbose=true",
    *callback_overrides("pace", "Pace", seconds=0.05),
]


@pytest.fixture(scope="module")
def data_dir(shared_data_dir: Path) -> Path:
    return shared_data_dir


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def stopped_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("stopped by")]


def test_sigterm_saves_last_marks_wandb_preempted_and_the_printed_command_resumes(
    tmp_path: Path, data_dir: Path
) -> None:
    """SIGTERM after a checkpoint: exit 143, last.ckpt at the step reached, the offline W&B run finished
    with exit code 143 and marked preempting, one line with the resume command; that command continues in
    the same directory and W&B run and ends at global step 30 with 30 optimiser steps, like an
    uninterrupted run."""
    run = tmp_path / "run"
    env = cli_env(tmp_path, data_dir)
    proc = start_train([*PACED, "logger=wandb", f"hydra.run.dir={run}"], env, tmp_path)
    wait_for(lambda: "last.ckpt: global step 3 " in output(proc), proc)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) == 143, output(proc)[-3000:]
    printed = output(proc)
    assert "Traceback" not in printed
    (line,) = stopped_lines(printed)
    step = int(re.match(r"stopped by SIGTERM at global step (\d+); last\.ckpt saved at this step", line)[1])
    assert 3 <= step < 2 * EPOCHS
    assert load(run / "checkpoints" / "last.ckpt")["global_step"] == step
    assert wandb_records(run) == [("preempting", None), ("exit", 143)]

    command = shlex.split(line.split("resume with: ", 1)[1])
    assert command[:2] == ["python", "train.py"] and command[-2:] == [
        f"hydra.run.dir={run}",
        "ckpt_path=last",
    ]
    resumed = start_train(command[2:], env, tmp_path)
    assert resumed.wait(timeout=300) == 0, output(resumed)[-3000:]
    final = load(run / "checkpoints" / "last.ckpt")
    assert final["global_step"] == 2 * EPOCHS and final["epoch"] == EPOCHS - 1  # the last epoch's index
    assert {int(s["step"]) for s in final["optimizer_states"][0]["state"].values()} == {2 * EPOCHS}
    assert "W&B run" in output(resumed) and "continues" in output(resumed)
    assert [r for r in wandb_records(run) if r[0] == "exit"] == [("exit", 143), ("exit", 0)]


def test_ctrl_c_stops_after_the_batch_and_twice_at_once(tmp_path: Path, data_dir: Path) -> None:
    """One SIGINT: a line saying it stops after the batch, last.ckpt at the step reached, W&B exit code 130,
    exit 130. Two SIGINTs in a row: it stops at once (exit 130), saying which step last.ckpt holds."""
    env = cli_env(tmp_path, data_dir)
    once = tmp_path / "once"
    proc = start_train([*PACED, "logger=wandb", f"hydra.run.dir={once}"], env, tmp_path)
    wait_for(lambda: "last.ckpt: global step 3 " in output(proc), proc)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=120) == 130, output(proc)[-3000:]
    printed = output(proc)
    assert "interrupt: stopping after this batch" in printed and "Traceback" not in printed
    (line,) = stopped_lines(printed)
    step = int(re.match(r"stopped by SIGINT at global step (\d+); last\.ckpt saved at this step", line)[1])
    assert load(once / "checkpoints" / "last.ckpt")["global_step"] == step
    assert wandb_records(once) == [("exit", 130)]

    twice = tmp_path / "twice"
    proc = start_train([*PACED, f"hydra.run.dir={twice}"], env, tmp_path)
    wait_for(lambda: "last.ckpt: global step 3 " in output(proc), proc)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.01)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=120) == 130, output(proc)[-3000:]
    (line,) = stopped_lines(output(proc))
    pattern = (
        r"stopped by SIGINT at global step (\d+); last\.ckpt (saved at this step|holds global step (\d+))"
    )
    m = re.match(pattern, line)
    assert m is not None, line
    held = int(m[1]) if m[2].startswith("saved") else int(m[3])
    assert load(twice / "checkpoints" / "last.ckpt")["global_step"] == held


@pytest.mark.parametrize("case", ["empty", "not-a-directory"])
def test_user_errors_are_one_line(case: str, tmp_path: Path, data_dir: Path) -> None:
    """A zero-byte ckpt_path and a filesystem error (a logger folder under a file) each stop with one line
    and exit 1, without a traceback (a truncated checkpoint and `+` typos: in-process in
    test_app_robustness.py, the same one-line path)."""
    args = ["model=cnn", *FAST, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}"]
    bad = tmp_path / "bad.ckpt"
    if case == "empty":
        bad.write_bytes(b"")
        args.append(f"ckpt_path={bad}")
        needle = f"cannot read checkpoint {bad}"
    else:
        (tmp_path / "a-file").write_text("")
        args += ["logger=csv", f"logger.csv.save_dir={tmp_path / 'a-file' / 'logs'}"]
        needle = "Not a directory"
    proc = run_cli("train.py", args, tmp_path, data_dir, timeout=200)
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_two_runs_started_together_never_share_a_directory(tmp_path: Path, data_dir: Path) -> None:
    """Two runs started in the same second get two default run directories, each with its own config.yaml
    and one last.ckpt; two runs started together into the same hydra.run.dir: one trains, the other is
    refused with one line and the directory holds one run."""
    env = cli_env(tmp_path, data_dir)
    short = ["model=cnn", *FAST, "trainer.max_epochs=2", f"paths.log_dir={tmp_path / 'logs'}"]
    procs = [start_train(short, env, tmp_path) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0], [output(p)[-2000:] for p in procs]
    runs = sorted((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 2, runs
    for run in runs:
        assert (run / "config.yaml").is_file()
        assert sorted(p.name for p in (run / "checkpoints").glob("last*.ckpt")) == ["last.ckpt"]

    shared = tmp_path / "shared"
    procs = [start_train([*short, f"hydra.run.dir={shared}"], env, tmp_path) for _ in range(2)]
    codes = sorted(p.wait(timeout=300) for p in procs)
    assert codes == [0, 1], [output(p)[-2000:] for p in procs]
    (refused,) = [p for p in procs if p.returncode == 1]
    errors = [line for line in output(refused).splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and ("in use by another run" in errors[0] or "already holds a run" in errors[0])
    assert sorted(p.name for p in (shared / "checkpoints").glob("last*.ckpt")) == ["last.ckpt"]
