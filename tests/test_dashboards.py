"""What W&B dashboards are built from: an offline training run's own files (tables in the media folder,
the run's records: history, metric definitions, summaries, the staged table artifacts), the callbacks'
idleness with other loggers, and the end-of-run summary of the same run."""

from __future__ import annotations

import contextlib
import io
import json
import random
import shlex
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from PIL import Image
from support import FAST, build_datamodule, compose_config

from colorization.app.training import run_training
from colorization.callbacks import TemperatureCurveTable, ValidationImageTable, WandbSummaries
from colorization.callbacks.dashboards import CURVE_COLUMNS, IMAGE_COLUMNS

TEMPERATURES = [1.0, 0.77, 0.58, 0.38, 0.29, 0.14, 0.05]
RUN = [
    *FAST,
    "logger=wandb",
    "callbacks=default",
    "test=true",
    "data.val_fraction=0.3",
    "trainer.max_epochs=2",
    "callbacks.validation_images.num_images=3",
]


def wandb_records(path: Path) -> list:
    """The protobuf records of a .wandb file (W&B's LevelDB-style log: 7-byte file header, 32 KiB blocks,
    each chunk with a 7-byte header: CRC, length, type FULL/FIRST/MIDDLE/LAST)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, pos, block = [], b"", 7, 32768
    while pos + 7 <= len(data):
        room = block - pos % block
        if room < 7:
            pos += room
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if kind == 0:  # padding to the end of the block
            pos += room
            continue
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory: pytest.TempPathFactory):
    """One offline W&B training run of a tiny classification model (2 epochs, then test), its console."""
    tmp = tmp_path_factory.mktemp("wandb_run")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "WANDB_MODE": "offline",
            "WANDB_DIR": tmp,
            "WANDB_DATA_DIR": tmp / "wandb-data",
            "WANDB_CACHE_DIR": tmp / "wandb-cache",
            "WANDB_CONFIG_DIR": tmp / "wandb-config",
            "WANDB_SILENT": "true",
            "WANDB_CONSOLE": "off",
            "NETRC": tmp / "no-netrc",
        }.items():
            mp.setenv(key, str(value))
        mp.delenv("WANDB_API_KEY", raising=False)
        mp.chdir(tmp)
        cfg = compose_config(RUN, tmp / "run", tmp / "data")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            run_training(cfg)
    (run_dir,) = (tmp / "run" / "wandb").glob("offline-run-*")
    (log,) = run_dir.glob("run-*.wandb")
    dm = build_datamodule(RUN, tmp / "data")
    dm.setup()
    return SimpleNamespace(
        tmp=tmp, files=run_dir / "files", records=wandb_records(log), out=out.getvalue(), dm=dm
    )


def history(records: list) -> list[dict]:
    return [
        {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]


@pytest.mark.slow
def test_the_temperature_curve_is_one_table_per_validation_epoch(wandb_run) -> None:
    """media/table/val/temperature_curve_*.table.json: the columns T, PSNR, SSIM, colourfulness, gap, AuC,
    one row per swept T, with the values the run logged as scalars at the same step; and two charts."""
    rows = history(wandb_run.records)
    tables = [r for r in rows if "val/temperature_curve/path" in r]
    scalar_rows = [r for r in rows if "val/T=0.38/psnr" in r]
    assert len(tables) == len(scalar_rows) == 2  # one per validation epoch (none in the sanity check)
    for logged, scalars in zip(tables, scalar_rows, strict=True):
        for chart in ("psnr", "colorfulness_vs_psnr"):  # both charts draw from the same table
            assert logged[f"val/temperature_curve/{chart}_table/path"] == logged["val/temperature_curve/path"]
        table = json.loads((wandb_run.files / logged["val/temperature_curve/path"]).read_text())
        assert table["columns"] == list(CURVE_COLUMNS)
        assert [row[0] for row in table["data"]] == sorted(TEMPERATURES)
        for row in table["data"]:
            for name, value in zip(CURVE_COLUMNS[1:], row[1:], strict=True):
                assert value == pytest.approx(scalars[f"val/T={row[0]:g}/{name}"], rel=1e-6)


@pytest.mark.slow
def test_summaries_are_the_best_value_of_each_metric(wandb_run) -> None:
    metrics = {r.metric.name: r.metric for r in wandb_run.records if r.WhichOneof("record_type") == "metric"}
    assert (
        metrics["val/psnr"].summary.max and metrics["val/ssim"].summary.max and metrics["val/auc"].summary.max
    )
    assert metrics["val/loss"].summary.min and metrics["val/colorfulness_gap"].summary.min
    assert metrics["val/T=0\\.38/psnr"].summary.max and metrics["val/colorfulness"].summary.last
    assert metrics["val/psnr"].step_metric == "trainer/global_step"
    final = {}  # the run's summary: the updates of its summary records, in order
    for record in wandb_run.records:
        if record.WhichOneof("record_type") == "summary":
            final.update(
                {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.summary.update}
            )
    psnr = [r["val/psnr"] for r in history(wandb_run.records) if "val/psnr" in r]
    loss = [r["val/loss"] for r in history(wandb_run.records) if "val/loss" in r]
    assert len(psnr) == 2 and final["val/psnr"] == {"max": pytest.approx(max(psnr))}
    assert final["val/loss"] == {"min": pytest.approx(min(loss))}
    t038 = [r["val/T=0.38/psnr"] for r in history(wandb_run.records) if "val/T=0.38/psnr" in r]
    assert final["val/T=0.38/psnr"] == {"max": pytest.approx(max(t038))}  # a dotted name, taken whole


@pytest.mark.slow
def test_fixed_validation_images_are_a_table_of_gray_truth_prediction(wandb_run) -> None:
    """The images chosen by data.seed, as a table in the media folder and, in full, in the run's staged
    table artifact: each row the image's name and three PNGs; the truth column is the validation crop."""
    dm = wandb_run.dm
    val = dm.dataset("val")
    chosen = sorted(random.Random(dm.seed).sample(range(len(val)), 3))
    names = [dm.splits["val"][i] for i in chosen]
    media = sorted((wandb_run.files / "media" / "table" / "val").glob("images_*.table.json"))
    assert len(media) == 2
    for path in media:
        table = json.loads(path.read_text())
        assert table["columns"] == list(IMAGE_COLUMNS) and [row[0] for row in table["data"]] == names
    artifacts = [r.artifact for r in wandb_run.records if r.WhichOneof("record_type") == "artifact"]
    staged = {
        e.path: Path(e.local_path) for a in artifacts for e in a.manifest.contents if a.type == "run_table"
    }
    full = json.loads(staged["val/images.table.json"].read_text())
    assert full["columns"] == list(IMAGE_COLUMNS) and [row[0] for row in full["data"]] == names
    for row, i in zip(full["data"], chosen, strict=True):
        assert all(cell["_type"] == "image-file" for cell in row[1:])
        truth = np.asarray(Image.open(staged[row[2]["path"]]).convert("RGB"))
        assert np.array_equal(truth, val[i]["rgb"].permute(1, 2, 0).numpy())
        gray = np.asarray(Image.open(staged[row[1]["path"]]).convert("RGB")).astype(int)
        assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 2  # gray: no chroma


@pytest.mark.slow
def test_the_run_ends_with_a_compact_table_and_the_next_commands(wandb_run) -> None:
    """No 42-row Lightning table: the metrics at the model's T, the T curve, then the commands with the
    run's real checkpoint (they parse with the real command lines), then the wandb sync line."""
    from colorization.inference.cli import build_parser as colorize_parser

    out = wandb_run.out
    assert "DataLoader 0" not in out and "test/T=0.38/psnr" not in out
    assert "(test split, T=0.38)" in out and "0.38 (model)" in out
    assert all(f"│ {t:>12g} │" in out or f"{t:g} (model)" in out for t in TEMPERATURES)
    lines = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
        for line in out.splitlines()
        if ": " in line and line.startswith("  ")
    }
    evaluate = shlex.split(lines["evaluate this checkpoint"])
    ckpt = Path(evaluate[2].removeprefix("ckpt="))
    assert evaluate[:2] == ["python", "evaluate.py"] or evaluate[1].endswith("evaluate.py")
    assert (wandb_run.tmp / ckpt if not ckpt.is_absolute() else ckpt).is_file()
    colorize = colorize_parser().parse_args(shlex.split(lines["colorize a photo with it"])[3:])
    export = shlex.split(lines["export it to ONNX"])
    assert export[:3] == ["python", "-m", "colorization.export"] and export[3:5] == ["--ckpt", str(ckpt)]
    assert Path(colorize.ckpt) == ckpt and export[5] == "-o" and export[6].endswith("model.onnx")
    assert out.index("Next:") < out.index("upload it later with: wandb sync")


class _NoWandb:
    """Stands for the wandb module: any use fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"wandb.{name} used without a W&B logger")


def test_the_dashboard_callbacks_do_nothing_with_other_loggers(tmp_path: Path, monkeypatch) -> None:
    """With a CSV logger: no W&B call, no image read from the data, nothing defined."""
    import sys

    monkeypatch.setitem(sys.modules, "wandb", _NoWandb())

    class Data:
        seed, splits = 0, {"val": ["a.png"]}

        def dataset(self, split: str):
            raise AssertionError("images were loaded without a W&B logger")

        def to_lab(self, *a, **k):
            raise AssertionError("images were converted without a W&B logger")

    module = SimpleNamespace(eval_temperatures=[0.38, 1.0], device="cpu")
    trainer = SimpleNamespace(
        loggers=[CSVLogger(tmp_path)],
        datamodule=Data(),
        sanity_checking=False,
        is_global_zero=True,
        global_step=3,
        callback_metrics={"val/T=0.38/psnr": 20.0, "val/T=1/psnr": 19.0},
    )
    images = ValidationImageTable(num_images=2)
    images.setup(trainer, module, "fit")
    WandbSummaries().on_fit_start(trainer, module)
    TemperatureCurveTable().on_validation_end(trainer, module)
    images.on_validation_end(trainer, module)
    assert images.batch is None


def test_the_same_images_in_every_run_of_a_sweep(tmp_path: Path) -> None:
    """The image table's images depend on the DataModule's seed (and its split), nothing else."""
    chosen = []
    for seed in (0, 0, 5):
        dm = build_datamodule([*FAST, "data.val_fraction=0.5", f"+data.seed={seed}"], tmp_path)
        dm.prepare_data()
        trainer = SimpleNamespace(
            loggers=[WandbLogger(save_dir=tmp_path, offline=True)], datamodule=dm, is_global_zero=True
        )
        cb = ValidationImageTable(num_images=4)
        cb.setup(trainer, None, "fit")
        assert cb.batch["L"].shape == (4, 1, 32, 32)
        chosen.append(cb.names)
    assert chosen[0] == chosen[1] != chosen[2]


def test_summary_definitions_cover_every_swept_temperature() -> None:
    defs = WandbSummaries().definitions(SimpleNamespace(eval_temperatures=[0.38, 1.0]))
    assert defs["val/psnr"] == defs["val/T=0.38/psnr"] == defs["val/T=1/auc"] == "max"
    assert (
        defs["val/loss"] == defs["train/loss"] == defs["val/colorfulness_gap"] == defs["val/lpips"] == "min"
    )
    assert defs["val/colorfulness"] == "last"
