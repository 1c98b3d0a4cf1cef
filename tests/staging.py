"""The situations of issue 10, staged in real runs: callbacks for a slow step, a metric that peaks early, a
heavy checkpoint, a signal at a given step (in-process, or in `python train.py` with PYTHONPATH=tests), and
the training subprocess a test watches and signals.

A callback is added with overrides such as `+callbacks.pace._target_=staging.Pace
+callbacks.pace.seconds=0.05` (see `callback_overrides`). This module is imported by the training
subprocesses too, so it imports nothing of the tests' own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def callback_overrides(name: str, target: str, **arguments: Any) -> list[str]:
    """The overrides that add `callbacks.NAME` = staging.TARGET(**arguments)."""
    return [f"+callbacks.{name}._target_=staging.{target}"] + [
        f"+callbacks.{name}.{k}={v}" for k, v in arguments.items()
    ]


class Pace(Callback):
    """Sleep after every training batch, so that a signal sent from outside lands in the middle of a fit."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = float(seconds)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        time.sleep(self.seconds)


class PeakAt(Callback):
    """Log `val/peaked` = -|global step - step| at each validation: the metric is best at `step`, worse after
    (the 130-step run whose val/psnr peaked at step 65, in small)."""

    def __init__(self, step: int) -> None:
        self.step = int(step)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        pl_module.log("val/peaked", -abs(float(trainer.global_step - self.step)))


class Ballast(Callback):
    """Make every checkpoint `megabytes` larger (random bytes: a write of it takes a while)."""

    def __init__(self, megabytes: int = 64) -> None:
        self.megabytes = int(megabytes)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        checkpoint["ballast"] = torch.randint(0, 255, (self.megabytes << 20,), dtype=torch.uint8)


class SignalAt(Callback):
    """Send `signum` to this very process while the training batch that makes global step `step` runs (a
    real signal, delivered in-process): the fit is expected to stop once that batch is done."""

    def __init__(self, step: int, signum: int) -> None:
        self.step = int(step)
        self.signum = int(signum)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if trainer.global_step == self.step - 1:
            os.kill(os.getpid(), self.signum)


# ---------------------------------------------------------------------------------------------- subprocesses
ROOT = Path(__file__).resolve().parents[1]


def start_train(
    args: list[str], env: dict[str, str], tmp: Path, script: str = "train.py"
) -> subprocess.Popen:
    """Start `python SCRIPT ARGS` (env: e.g. support.cli_env) with this module importable; stdout and
    stderr go to a log file under tmp, read with `output`."""
    environment = dict(env)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "tests"), env.get("PYTHONPATH")) if p)
    log = tmp / f"{Path(script).stem}-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / script), *args], cwd=ROOT, env=environment, stdout=out, stderr=out
        )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def output(proc: subprocess.Popen) -> str:
    """What a process of `start_train` has printed so far (stdout and stderr)."""
    return proc.log.read_text()  # type: ignore[attr-defined]


def wait_for(predicate: Callable[[], Any], proc: subprocess.Popen, timeout: float = 180) -> None:
    """Poll every 2 ms until predicate() holds; AssertionError (with the output) if the process ends first."""
    end = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode} too early:\n{output(proc)[-3000:]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"timed out:\n{output(proc)[-3000:]}")
        time.sleep(0.002)


def wandb_records(run_dir: Path) -> list[tuple[str, int | None]]:
    """("exit", code) and ("preempting", None) records of the offline W&B run files under run_dir, read
    from W&B's own log format (7-byte header, 32 KiB blocks of crc/length/type chunks, protobuf Records)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    found: list[tuple[str, int | None]] = []
    for path in sorted(run_dir.rglob("offline-run-*/run-*.wandb")):
        data, pos, block, buffer = path.read_bytes(), 7, 32768, b""
        while pos + 7 <= len(data):
            left = block - pos % block
            if left < 7:
                pos += left
                continue
            _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
            if length == 0 and kind == 0:
                pos += left
                continue
            chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
            buffer = chunk if kind in (1, 2) else buffer + chunk
            if kind in (1, 4):
                record = wandb_internal_pb2.Record()
                record.ParseFromString(buffer)
                which = record.WhichOneof("record_type")
                if which == "exit":
                    found.append(("exit", record.exit.exit_code))
                elif which == "preempting":
                    found.append(("preempting", None))
    return found
