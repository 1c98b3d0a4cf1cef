"""The end of a training run as a person reads it: one compact table of the metrics at the model's own
temperature, the temperature curve of a classification model as a small T × PSNR / colourfulness table,
and the next commands with this run's real paths (evaluate the checkpoint, colorize a photo, export it).
The `wandb sync` line of an offline run follows (colorization.app.tracking).

Also here: warnings from dependencies that a user can do nothing about (deprecations inside Lightning,
torch, ...) leave the console and go to the run's log file only. The project's own notices (metrics left
out, data facts) are log records, not warnings, and stay where they are.
"""

from __future__ import annotations

import logging
import re
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

from colorization.app.report import METRIC_ORDER

__all__ = ["commands", "print_summary", "quiet_dependency_warnings", "report"]

log = logging.getLogger(__name__)

#: Warnings (message patterns) of dependencies that no setting of ours or the user's can avoid.
DEPENDENCY_NOISE = (
    r"isinstance\(treespec, LeafSpec\)` is deprecated",
    r"TypedStorage is deprecated",
    r"torch\.meshgrid: in an upcoming release",
    r"pkg_resources is deprecated",
)
_DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
_FILE_ONLY = logging.getLogger("colorization.dependency_warnings")
_OURS = str(Path(__file__).resolve().parents[1])


def is_dependency_noise(message: Warning | str, category: type[Warning], filename: str) -> bool:
    """A warning raised outside this project that is a dependency's own deprecation, or a known notice
    that no setting avoids (DEPENDENCY_NOISE)."""
    if str(Path(filename).resolve()).startswith(_OURS):
        return False
    text = str(message)
    return issubclass(category, _DEPRECATIONS) or any(re.search(p, text) for p in DEPENDENCY_NOISE)


def quiet_dependency_warnings() -> None:
    """Send dependency noise to the run's log file (the root logger's file handlers) instead of the console;
    every other warning is shown as before. Installed once per process."""
    if getattr(warnings.showwarning, "colorization", False):
        return
    original = warnings.showwarning
    _FILE_ONLY.propagate = False
    _FILE_ONLY.setLevel(logging.INFO)

    def show(
        message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
    ):
        if is_dependency_noise(message, category, filename):
            # the file handlers of now (Hydra sets new ones for each job of a multirun)
            _FILE_ONLY.handlers = [
                h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)
            ]
            _FILE_ONLY.info("%s:%s: %s: %s", filename, lineno, category.__name__, message)
            return
        original(message, category, filename, lineno, file, line)

    show.colorization = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def _shown(path: Path | str) -> str:
    """A path as the user should type it: relative to the working directory when below it, quoted."""
    path = Path(path)
    try:
        path = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    return shlex.quote(str(path))


def commands(checkpoint: Path, output_dir: Path, root: Path) -> list[tuple[str, str]]:
    """(what, command) for the next steps with a checkpoint of this run."""
    script = "evaluate.py" if (Path.cwd() / "evaluate.py").is_file() else _shown(root / "evaluate.py")
    ckpt = _shown(checkpoint)
    return [
        ("evaluate this checkpoint", f"python {script} ckpt={ckpt}"),
        (
            "colorize a photo with it",
            f"python -m colorization.colorize PHOTO.jpg -o {_shown(output_dir / 'colorized')} --ckpt {ckpt}",
        ),
        (
            "export it to ONNX",
            f"python -m colorization.export --ckpt {ckpt} -o {_shown(output_dir / 'model.onnx')}",
        ),
    ]


def _value(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return None if value is None else float(value.item() if hasattr(value, "item") else value)


def print_summary(
    metrics: dict[str, Any],
    stage: str,
    temperature: float | None = None,
    temperatures: list[float] | None = None,
    checkpoint: Path | None = None,
    output_dir: Path | None = None,
    root: Path | None = None,
) -> None:
    """Print the compact metrics table, the T table (classification), and the next commands."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 120)
    names = [n for n in METRIC_ORDER if _value(metrics, f"{stage}/{n}") is not None]
    if names:
        where = {"test": "test split", "val": "validation"}[stage]
        at = f", T={temperature:g}" if temperature is not None else ""
        of = f" of {checkpoint.name}" if checkpoint is not None and stage == "test" else ""
        console.print(f"Metrics{of} ({where}{at})", highlight=False)
        table = Table()
        for n in names:
            table.add_column(n, justify="right")
        table.add_row(*(f"{_value(metrics, f'{stage}/{n}'):.4g}" for n in names))
        console.print(table)
    curve = [t for t in sorted(temperatures or []) if _value(metrics, f"{stage}/T={t:g}/psnr") is not None]
    if curve:
        console.print("Annealed-mean temperature T (same logits)", highlight=False)
        table = Table()
        for column in ("T", "PSNR", "colourfulness"):
            table.add_column(column, justify="right")
        for t in curve:
            own = temperature is not None and abs(t - temperature) < 1e-12
            style = "bold" if own else None
            psnr, color = (
                _value(metrics, f"{stage}/T={t:g}/psnr"),
                _value(metrics, f"{stage}/T={t:g}/colorfulness"),
            )
            table.add_row(f"{t:g}" + (" (model)" if own else ""), f"{psnr:.2f}", f"{color:.1f}", style=style)
        console.print(table)
    if checkpoint is not None and output_dir is not None:
        console.print("Next:")
        for what, command in commands(checkpoint, output_dir, root or Path.cwd()):
            console.print(f"  {what + ':':<26} {command}", highlight=False, soft_wrap=True)


def report(run: Any, metrics: dict[str, Any], root: Any = None) -> None:
    """The summary of a finished run (rank zero only): its metrics, T curve, and the next commands."""
    trainer, module = run.trainer, run.module
    if not trainer.is_global_zero:
        return
    stage = "test" if any(k.startswith("test/") for k in metrics) else "val"
    callback = trainer.checkpoint_callback
    best = getattr(callback, "best_model_path", "") or ""
    last = Path(run.output_dir) / "checkpoints" / "last.ckpt"
    checkpoint = Path(best) if best else (last if last.is_file() else None)
    print_summary(
        metrics,
        stage,
        temperature=getattr(module, "temperature", None)
        if getattr(module, "objective", "") == "classification"
        else None,
        temperatures=list(getattr(module, "eval_temperatures", []) or []),
        checkpoint=checkpoint,
        output_dir=Path(run.output_dir),
        root=Path(root) if root else None,
    )
