"""Where a run resumes from and where it writes: `ckpt_path`, one run per run directory, and the lines a
resumed or stopped run prints.

`ckpt_path` takes a checkpoint file, a run directory (or its checkpoints/ folder: its last.ckpt), or
`last`: the last.ckpt of this run's own directory, i.e. `hydra.run.dir=DIR ckpt_path=last` continues the
run in DIR, and starts from scratch (saying so) while DIR has none yet, so one command line serves the
first start and every restart of a preempted job. Lightning's other keywords (best, hpc, registry) are
passed on unchanged.

A run directory holds one run: a new run into a directory that already has a run's config.yaml or
checkpoints is refused, unless it resumes from a checkpoint inside that directory, continues it with
`ckpt_path=last` (also when an earlier attempt died before its first checkpoint) or, under SLURM, resumes
from Lightning's hpc_ckpt_*.ckpt there; and while a run is going its directory is locked (`.run.lock`,
flock: released by the kernel however the process ends), so a second process started into the same
directory at the same moment is refused too. DDP ranks other than 0 share rank 0's directory and skip
both checks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only

from colorization.app import runtime, tracking
from colorization.callbacks import LastCheckpoint
from colorization.errors import ConfigError
from colorization.objectives import LIGHTNING_KEYWORDS, read_checkpoint, require_checkpoint

log = logging.getLogger(__name__)

LAST = "last"
LOCK_FILE = ".run.lock"


# ---------------------------------------------------------------------------------------------- ckpt_path
def last_in(folder: Path) -> Path | None:
    """The newest last*.ckpt in a checkpoint folder (last.ckpt; last-v1.ckpt of older runs), else None."""
    found = [p for p in folder.glob("last*.ckpt") if p.is_file()] if folder.is_dir() else []
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def checkpoint_file(value: Any, key: str = "ckpt_path") -> Path:
    """The readable checkpoint file `value` names: a file, or a run directory / checkpoints folder (its
    last.ckpt); a missing, empty or damaged file is a one-line error."""
    path = Path(str(value)).expanduser()
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        found = last_in(folder)
        if found is None:
            raise ConfigError(f"{key}={value}: no last.ckpt in {folder}")
        path = found
    file = require_checkpoint(path, key)
    read_checkpoint(file)
    return file


def resolve_ckpt_path(value: Any, checkpoints: Path) -> str | None:
    """`ckpt_path` as Lightning gets it: `last` → the newest last.ckpt in `checkpoints` (this run's
    folder), None while there is none; a directory → its last.ckpt; a file → itself (checked)."""
    if value is None:
        return None
    if str(value) == LAST:
        found = last_in(checkpoints)
        if found is None:
            if rank_zero_only.rank == 0:
                print(f"ckpt_path=last: no last.ckpt in {checkpoints} yet; training starts from scratch")
            return None
        return str(checkpoint_file(found))
    if str(value) in LIGHTNING_KEYWORDS:
        return str(value)
    return str(checkpoint_file(value))


# ---------------------------------------------------------------------------------------------- run dir
def _earlier_run(output_dir: Path) -> list[str]:
    """What an earlier run left in the directory (its config.yaml, its checkpoints)."""
    marks = ["config.yaml"] if (output_dir / "config.yaml").is_file() else []
    folder = output_dir / "checkpoints"
    if folder.is_dir():
        marks += [f"checkpoints/{p.name}" for p in sorted(folder.glob("*.ckpt"))][:3]
    return marks


def _hpc_checkpoints(output_dir: Path) -> list[Path]:
    """Lightning's SLURM auto-requeue checkpoints in the run directory (only looked for under SLURM)."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return sorted(output_dir.glob("hpc_ckpt_*.ckpt")) if SLURMEnvironment.detect() else []


def _inside(path: str | None, folder: Path) -> bool:
    if not path or path in LIGHTNING_KEYWORDS:
        return False
    return Path(path).resolve().is_relative_to(folder.resolve())


@contextlib.contextmanager
def claim_run_dir(output_dir: Path, ckpt_path: str | None, continues: bool = False) -> Iterator[None]:
    """Hold the run directory for this run (see the module docstring); ConfigError when it is taken.
    `continues`: the command asked for `ckpt_path=last` (this directory's run, whatever it saved)."""
    if rank_zero_only.rank != 0:
        yield
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(output_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock(fd, output_dir)
        earlier = _earlier_run(output_dir)
        resumes = continues or _inside(ckpt_path, output_dir) or bool(_hpc_checkpoints(output_dir))
        if earlier and not resumes:
            raise ConfigError(
                f"{output_dir} already holds a run ({', '.join(earlier)}): start a new run in its own "
                f"directory (drop hydra.run.dir), or resume that one with hydra.run.dir={output_dir} "
                "ckpt_path=last"
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _lock(fd: int, output_dir: Path) -> None:
    """An exclusive, non-blocking flock on the lock file (no-op where fcntl does not exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        raise ConfigError(
            f"{output_dir} is in use by another run (process {holder}): give this run its own hydra.run.dir"
        ) from None


# ---------------------------------------------------------------------------------------------- lines
def announce_resume(ckpt_path: Any, output_dir: Path, wandb_id: str | None) -> None:
    """Say once where a resumed run writes: its own new run dir unless hydra.run.dir names the old one."""
    previous = tracking.previous_run_dir(ckpt_path)
    if previous is None or rank_zero_only.rank != 0:
        return
    same = previous.resolve() == output_dir.resolve()
    where = (
        "the same run directory" if same else f"{output_dir} (give hydra.run.dir={previous} to keep one dir)"
    )
    run = f"; W&B run {wandb_id} continues" if wandb_id else ""
    print(f"resuming {ckpt_path}: this run writes into {where}{run}", flush=True)


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}"))
        return out
    return {prefix: value}


def changed_optimisation(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """`key old → new` for each optimiser or scheduler value that differs between a checkpoint's
    hyperparameters and this run's (`optimizer`, `scheduler`, the cGAN's `d_optimizer`)."""
    names = sorted(k for k in set(saved) | set(current) if "optimizer" in k or "scheduler" in k)
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for name in names:
        old.update(_flat(saved.get(name), name))
        new.update(_flat(current.get(name), name))
    return [
        f"{k} {old.get(k)!r} → {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]


def warn_changed_optimisation(ckpt_path: str | None, module: LightningModule) -> list[str]:
    """Say in one line that a resumed run keeps the checkpoint's optimiser and scheduler state, when this
    run's optimiser or scheduler differs (returns the differences)."""
    if not ckpt_path or ckpt_path in LIGHTNING_KEYWORDS or rank_zero_only.rank != 0:
        return []
    saved = dict(read_checkpoint(Path(ckpt_path)).get("hyper_parameters") or {})
    changes = changed_optimisation(saved, dict(module.hparams))
    if changes:
        log.warning(
            "resuming %s restores its optimiser and scheduler state, so these changes do not apply: %s "
            "(to train with them, start a new run)",
            ckpt_path,
            "; ".join(changes),
        )
    return changes


def resume_command(output_dir: Path) -> str:
    """The command that continues this run in its directory: the same overrides, hydra.run.dir=DIR and
    ckpt_path=last."""
    kept = [o for o in runtime.overrides() if not o.lstrip("+~").startswith(("ckpt_path=", "hydra.run.dir="))]
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0].endswith(".py") else "train.py"
    words = ["python", script, *kept, f"hydra.run.dir={output_dir}", f"ckpt_path={LAST}"]
    return " ".join(shlex.quote(w) for w in words)


def stopped_line(trainer: Trainer, signal_name: str, output_dir: Path) -> str:
    """One line for a run stopped by a signal: the step reached, what last.ckpt holds, how to resume."""
    step = trainer.global_step
    stopped = f"stopped by {signal_name} at global step {step}"
    last = next((c for c in trainer.callbacks if isinstance(c, LastCheckpoint)), None)  # type: ignore[attr-defined]
    if last is None:
        return f"{stopped}; nothing saved (callbacks.last_checkpoint is off)"
    path = Path(str(last.dirpath)) / "last.ckpt"
    if last.saved_step == step:
        held = f"last.ckpt saved at this step ({path})"
    elif path.is_file():
        held = f"last.ckpt holds global step {read_checkpoint(path).get('global_step', '?')} ({path})"
    else:
        return f"{stopped}; no checkpoint was written, nothing to resume"
    return f"{stopped}; {held}; resume with: {resume_command(output_dir)}"
