"""Generated data (samples, synthetic) prepared by two processes at once: both succeed, generated once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import ROOT, cli_env

RACER = """
import hashlib, json, logging, sys, time
from pathlib import Path
from PIL import Image
from colorization.data import LabDataModule, Samples, Synthetic

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
kind, root, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
source = Synthetic(root, count=240, size=32) if kind == "synthetic" else Samples(root, count=96, size=32)
ready.touch()
while not go.exists():  # both processes start preparing at the same moment
    time.sleep(0.001)
dm = LabDataModule(source, image_size=32, num_workers=0)
dm.prepare_data()  # what Lightning runs first in every job of a parallel sweep
dm.setup()
files = sorted(p for p in source.image_root.rglob("*") if p.is_file())
stamps = [(p.relative_to(root).as_posix(), p.stat().st_ino, p.stat().st_mtime_ns) for p in files]
for p in files:
    with Image.open(p) as img:
        img.load()
print(json.dumps({"files": len(files), "usable": sum(dm.data.sizes().values()),
                  "stamps": hashlib.sha1(repr(stamps).encode()).hexdigest()}))
"""


def _race(kind: str, root: Path, tmp: Path) -> list[subprocess.CompletedProcess]:
    """Start two real processes that prepare the same fresh folder at once; return both results."""
    env = cli_env(tmp, tmp)
    go = tmp / "go"
    procs, ready = [], []
    for i in range(2):
        ready.append(tmp / f"ready{i}")
        cmd = [sys.executable, "-c", RACER, kind, str(root), str(ready[-1]), str(go)]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout.decode(), stderr.decode()))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kind, count", [("synthetic", 240), ("samples", 96)])
def test_two_processes_prepare_one_fresh_folder(tmp_path, kind, count):
    root = tmp_path / "data"
    results = _race(kind, root, tmp_path)
    for r in results:
        assert r.returncode == 0, r.stderr[-2000:]
    reports = [json.loads(r.stdout.strip().splitlines()[-1]) for r in results]
    # both saw every image, and the same files: generated once, never replaced under the other's feet
    assert reports[0] == reports[1] and reports[0]["files"] == count
    assert sum("waiting for it" in r.stderr for r in results) <= 1
    left = sorted(p.name for p in root.iterdir())
    assert [n for n in left if n.startswith(".images.")] == [".images.lock"]  # no temp or old folder left
    assert f".{kind}.json" in left and "images" in left
