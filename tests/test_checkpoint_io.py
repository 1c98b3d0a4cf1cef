"""Atomic checkpoint files (issue 10, finding 3): written beside the target and renamed, never through
$TMPDIR; a failed write (a full disk) is one line and leaves the previous checkpoint as it was; a run killed
during a save leaves no truncated checkpoint and nothing in $TMPDIR, and resumes.

The full disk is a real one where the test may mount a small tmpfs (root with CAP_SYS_ADMIN, as on CI),
and an injected ENOSPC in the writer always (test_enospc_is_one_line_and_keeps_the_previous_checkpoint).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from staging import callback_overrides, output, start_train, wait_for
from support import FAST, cli_env

import colorization.atomic as atomic
from colorization.atomic import atomic_write, partial_files
from colorization.callbacks import AtomicCheckpointIO, CheckpointWriteError


def checkpoint(step: int) -> dict:
    return {"global_step": step, "state_dict": {"w": torch.full((4096,), float(step))}}


def test_atomic_write_keeps_the_previous_file_and_removes_its_temporary(tmp_path: Path) -> None:
    """A write that fails half-way leaves the old bytes under the name and no temporary file; a temporary
    left by a killed earlier write of the same name is removed by the next write."""
    target = tmp_path / "out" / "file.bin"
    with atomic_write(target) as f:
        f.write(b"old")
    with pytest.raises(RuntimeError, match="half-way"), atomic_write(target) as f:
        f.write(b"new, but not all of it")
        raise RuntimeError("half-way")
    assert target.read_bytes() == b"old" and partial_files(target) == []
    stale = target.with_name(f".{target.name}.deadbeef{atomic.PARTIAL_SUFFIX}")
    stale.write_bytes(b"left by a kill")
    with atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new" and not stale.exists()


def _other_filesystem_tmpdir(tmp_path: Path) -> Path:
    """A temporary folder on another filesystem than tmp_path (/dev/shm where it is one), else beside."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != tmp_path.stat().st_dev:
        return Path(tempfile.mkdtemp(dir=shm, prefix="pytest-tmpdir-"))
    return Path(tempfile.mkdtemp(dir=tmp_path, prefix="tmpdir-"))


def test_checkpoints_are_renamed_in_their_folder_not_moved_from_tmpdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With $TMPDIR on another filesystem, Lightning's writer stages the checkpoint there and moves it (a
    copy across filesystems, during which a kill truncates the target); ours writes a temporary file in the
    checkpoint's folder and renames it, and puts nothing in $TMPDIR."""
    tmpdir = _other_filesystem_tmpdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    moves: list[tuple[str, str]] = []
    real_move, real_replace = shutil.move, os.replace
    monkeypatch.setattr(
        shutil, "move", lambda a, b, *r, **k: moves.append((a, b)) or real_move(a, b, *r, **k)
    )
    monkeypatch.setattr(os, "replace", lambda a, b: moves.append((str(a), str(b))) or real_replace(a, b))
    folder = tmp_path / "checkpoints"
    try:
        TorchCheckpointIO().save_checkpoint(checkpoint(1), folder / "lightning.ckpt")
        (staged, _), *_ = moves
        assert Path(staged).parent == tmpdir  # the finding: staged in $TMPDIR, then moved (there: copied)
        moves.clear()
        AtomicCheckpointIO().save_checkpoint(checkpoint(2), folder / "last.ckpt")
        assert [(Path(a).parent, Path(b)) for a, b in moves] == [(folder, folder / "last.ckpt")]
        assert list(tmpdir.iterdir()) == []
        assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 2
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


class _FullDiskFile:
    """A real file whose writes fail with ENOSPC once `room` bytes are written (a disk filling up)."""

    def __init__(self, file, room: int) -> None:  # noqa: ANN001 - a binary file object
        self.file, self.room = file, room

    def write(self, data: bytes) -> int:
        if self.room < len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name: str):  # noqa: ANN204 - flush, fileno, close, __exit__ of the real file
        return getattr(self.file, name)

    def __enter__(self) -> _FullDiskFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_enospc_is_one_line_and_keeps_the_previous_checkpoint(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills during a write (torch.save reports it as a RuntimeError over the OSError) or at the
    flush: one CheckpointWriteError naming the folder, the previous last.ckpt byte for byte, no temporary."""
    io = AtomicCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint(checkpoint(1), target)
    before = target.read_bytes()
    if where == "write":
        real_open = open
        monkeypatch.setattr(
            atomic, "open", lambda *a, **k: _FullDiskFile(real_open(*a, **k), 5000), raising=False
        )
    else:

        def fsync(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(atomic.os, "fsync", fsync)
    with pytest.raises(CheckpointWriteError) as err:
        io.save_checkpoint(checkpoint(2), target)
    assert str(err.value) == (
        f"cannot write checkpoint last.ckpt into {target.parent}: No space left on device "
        "(the previous last.ckpt is intact)"
    )
    monkeypatch.undo()
    assert target.read_bytes() == before and partial_files(target) == []
    assert torch.load(target, weights_only=True)["global_step"] == 1


# ---------------------------------------------------------------------------------------------- subprocesses
def _train(args: list[str], tmp: Path, data_dir: Path, **env: str) -> subprocess.Popen:
    return start_train(args, {**cli_env(tmp, data_dir), **env}, tmp)


@pytest.fixture(scope="module")
def data_dir(shared_data_dir: Path) -> Path:
    return shared_data_dir


LONG = [
    "model=cnn",
    *FAST,
    "trainer.max_epochs=-1",
    "trainer.max_steps=100000",
    "callbacks.last_checkpoint.verbose=true",
]


@pytest.mark.slow
def test_kill_during_a_save_leaves_nothing_truncated_nor_in_tmpdir(tmp_path: Path, data_dir: Path) -> None:
    """$TMPDIR on another filesystem, 32 MB checkpoints written every step; SIGKILL while a temporary
    checkpoint file is being written: $TMPDIR stays empty, last.ckpt (when one was completed) loads, and
    the run resumes from it with `ckpt_path=last`, the killed write's temporary file removed."""
    tmpdir = _other_filesystem_tmpdir(tmp_path)
    run = tmp_path / "run"
    ballast = callback_overrides("ballast", "Ballast", megabytes=32)
    every = ["callbacks.last_checkpoint.every_n_train_steps=1"]
    try:
        proc = _train(
            [*LONG, *every, *ballast, f"hydra.run.dir={run}"], tmp_path, data_dir, TMPDIR=str(tmpdir)
        )
        folder = run / "checkpoints"
        wait_for(lambda: "global step 2 " in output(proc) and partial_files(folder / "last.ckpt"), proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert list(tmpdir.iterdir()) == []
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False, mmap=True)
    step = last["global_step"]
    assert step >= 2 and last["ballast"].numel() == 32 << 20  # complete: every byte of it is there
    resumed = _train(
        [
            *FAST,
            "model=cnn",
            f"trainer.max_steps={step + 2}",
            "trainer.max_epochs=-1",
            f"hydra.run.dir={run}",
            "ckpt_path=last",
        ],
        tmp_path,
        data_dir,
    )
    assert resumed.wait(timeout=300) == 0, output(resumed)[-3000:]
    assert torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] == step + 2
    assert partial_files(folder / "last.ckpt") == []


def _mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` at path; None when done, else why it cannot be done here."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return "not root (or no mount command)"
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return None if proc.returncode == 0 else f"mount failed: {proc.stderr.decode().strip()}"


@pytest.mark.slow
def test_full_disk_stops_with_one_line_and_keeps_the_previous_checkpoint(
    tmp_path: Path, data_dir: Path
) -> None:
    """Checkpoints on a small tmpfs that fills up after a save: the run stops with one line naming the
    folder (exit 1, no traceback); the last complete last.ckpt is intact and no temporary file is left."""
    disk = tmp_path / "disk"
    why = _mount_tmpfs(disk, "4m")
    if why is not None:
        pytest.skip(
            f"a real full disk needs a tmpfs mount ({why}); the injected ENOSPC test covers the writer"
        )
    print("full disk: a 4 MB tmpfs mounted at", disk)
    try:
        folder = disk / "checkpoints"
        where = [f"callbacks.{c}.dirpath={folder}" for c in ("model_checkpoint", "last_checkpoint")]
        pace = callback_overrides("pace", "Pace", seconds=0.05)
        every = ["callbacks.last_checkpoint.every_n_train_steps=1"]
        proc = _train([*LONG, *where, *every, *pace, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, data_dir)
        wait_for(lambda: "global step 3 " in output(proc), proc)
        with (disk / "filler").open("wb") as filler:  # fill the disk
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError as err:
                assert err.errno == errno.ENOSPC
        assert proc.wait(timeout=120) == 1, output(proc)[-3000:]
        printed = output(proc)
        errors = [line for line in printed.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "Traceback" not in printed, printed[-3000:]
        assert f"into {folder}: No space left on device" in errors[0]
        written = [int(s) for s in re.findall(r"last\.ckpt: global step (\d+) ", printed)]
        last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False)
        assert last["global_step"] == written[-1] >= 3
        assert [p for p in folder.iterdir() if p.name.startswith(".")] == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
