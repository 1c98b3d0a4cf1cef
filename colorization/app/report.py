"""Evaluation outputs: a rich table on the console, metrics.json and metrics.csv, PNG grids
(gray | prediction | truth), a colourfulness-vs-PSNR plot over T, and a self-contained report.html."""

from __future__ import annotations

import base64
import csv
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from colorization.callbacks import make_grid
from colorization.color import l_ab_to_rgb
from colorization.imaging import to_uint8


@dataclass
class CheckpointResult:
    """What the report shows of one checkpoint: `metrics` at its own temperature, `sweep` per T
    (classification only), and the path of its image grid."""

    name: str
    path: str
    objective: str
    metrics: dict[str, float]
    sweep: dict[float, dict[str, float]] = field(default_factory=dict)
    temperature: float | None = None
    grid: Path | None = None


#: Column order of tables and CSV (metrics not listed here follow in alphabetical order).
METRIC_ORDER = ("psnr", "ssim", "colorfulness", "colorfulness_gap", "auc", "auc_rebalanced", "lpips", "fid")


def metric_names(results: list[CheckpointResult]) -> list[str]:
    """Every metric key present in the results, in a stable readable order."""
    keys: set[str] = set()
    for r in results:
        keys |= set(r.metrics)
        for m in r.sweep.values():
            keys |= set(m)
    return [k for k in METRIC_ORDER if k in keys] + sorted(keys - set(METRIC_ORDER))


def save_grid(images: dict[str, Tensor], path: Path) -> Path:
    """Save a grid: one row per image, columns gray | prediction | truth (RGB in [0, 1]); returns the path."""
    L = images["L"]
    gray = l_ab_to_rgb(L, torch.zeros(L.shape[0], 2, *L.shape[-2:]))
    rows = [torch.stack(row) for row in zip(gray, images["pred"], images["truth"], strict=True)]
    grid = make_grid(rows, pad=0)
    array = to_uint8(grid.permute(1, 2, 0).numpy())
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def rows(results: list[CheckpointResult]) -> list[dict[str, Any]]:
    """Flat rows: each checkpoint's main metrics, then one row per swept temperature."""
    out: list[dict[str, Any]] = []
    for r in results:
        out.append(
            {
                "checkpoint": r.name,
                "objective": r.objective,
                "temperature": r.temperature,
                "default": True,
                **r.metrics,
            }
        )
        for t, m in sorted(r.sweep.items()):
            out.append(
                {"checkpoint": r.name, "objective": r.objective, "temperature": t, "default": False, **m}
            )
    return out


def to_json(results: list[CheckpointResult]) -> dict[str, Any]:
    """metrics.json: the first checkpoint's metrics at top level (psnr, ssim, colorfulness, ...), its T sweep,
    and `checkpoints`, the same for every checkpoint evaluated."""
    entries = [
        {
            "checkpoint": r.path,
            "name": r.name,
            "objective": r.objective,
            "temperature": r.temperature,
            **r.metrics,
            "t_sweep": {f"{t:g}": m for t, m in sorted(r.sweep.items())},
        }
        for r in results
    ]
    return {**entries[0], "checkpoints": entries}


def print_table(results: list[CheckpointResult], split: str) -> None:
    """Print the side-by-side metrics table (and each T sweep) with rich."""
    from rich.console import Console
    from rich.table import Table

    names = metric_names(results)
    table = Table(title=f"Colorization metrics ({split} split)")
    table.add_column("checkpoint")
    table.add_column("objective")
    table.add_column("T", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    for row in rows(results):
        t = row["temperature"]
        label = row["checkpoint"] if row["default"] else ""
        t_text = "" if t is None else (f"{t:g}" if not row["default"] else f"[bold]{t:g}[/bold]")
        table.add_row(
            label, row["objective"] if row["default"] else "", t_text, *[_fmt(row.get(n)) for n in names]
        )
    import sys

    # A terminal gets its own width; a pipe or a log file gets the whole table, not an 80-column cut.
    Console(width=None if sys.stdout.isatty() else 250).print(table)


def _fmt(value: Any) -> str:
    """A metric as text with 4 significant decimals ('' when absent)."""
    return "" if value is None else f"{float(value):.4f}"


def plot_sweep(results: list[CheckpointResult], path: Path) -> Path | None:
    """Colourfulness against PSNR over T for every classification checkpoint (None when there is no sweep)."""
    swept = [r for r in results if r.sweep]
    if not swept:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for r in swept:
        ts = sorted(r.sweep)
        psnr = [r.sweep[t]["psnr"] for t in ts]
        color = [r.sweep[t]["colorfulness"] for t in ts]
        ax.plot(psnr, color, marker="o", label=r.name)
        for t, x, y in zip(ts, psnr, color, strict=True):
            ax.annotate(f"T={t:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("PSNR (dB)")
    ax.set_ylabel("colourfulness")
    ax.set_title("Annealed-mean temperature: colourfulness vs PSNR")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _embed(path: Path) -> str:
    """A PNG as a data: URI, so report.html is one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_html(results: list[CheckpointResult], path: Path, split: str, plot: Path | None) -> Path:
    """report.html: the metrics table, the T sweep plot and each checkpoint's image grid, images embedded."""
    names = metric_names(results)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in ["checkpoint", "objective", "T", *names])
    body = []
    for row in rows(results):
        t = row["temperature"]
        cells = [
            row["checkpoint"] if row["default"] else "",
            row["objective"] if row["default"] else "",
            "" if t is None else f"{t:g}",
            *[_fmt(row.get(n)) for n in names],
        ]
        cls = ' class="main"' if row["default"] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Colorization evaluation</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}tr.main{font-weight:bold}"
        "img{max-width:100%;image-rendering:pixelated}</style></head><body>",
        f"<h1>Colorization evaluation</h1><p>Split: {html.escape(split)}. Bold rows: each checkpoint at its "
        "own temperature; the rows below them sweep the annealed-mean temperature T over the same "
        "logits.</p>",
        f"<table><tr>{head}</tr>{''.join(body)}</table>",
    ]
    if plot is not None:
        parts.append(f"<h2>Colourfulness vs PSNR over T</h2><img alt='T sweep' src='{_embed(plot)}'>")
    for r in results:
        if r.grid is not None and r.grid.is_file():
            parts.append(
                f"<h2>{html.escape(r.name)}</h2><p>gray | prediction | ground truth "
                f"({html.escape(r.path)})</p><img alt='grid' src='{_embed(r.grid)}'>"
            )
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_all(results: list[CheckpointResult], output_dir: Path, split: str = "test") -> dict[str, Path]:
    """Print the table and write metrics.json, metrics.csv, t_sweep.png (classification) and report.html."""
    output_dir.mkdir(parents=True, exist_ok=True)
    print_table(results, split)
    json_path = output_dir / "metrics.json"
    json_path.write_text(json.dumps(to_json(results), indent=2), encoding="utf-8")
    csv_path = output_dir / "metrics.csv"
    fields = ["checkpoint", "objective", "temperature", "default", *metric_names(results)]
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows(results):
            writer.writerow({k: row.get(k, "") for k in fields})
    plot = plot_sweep(results, output_dir / "t_sweep.png")
    html_path = write_html(results, output_dir / "report.html", split, plot)
    out = {"json": json_path, "csv": csv_path, "html": html_path}
    if plot is not None:
        out["plot"] = plot
    return out
