"""Two real DDP ranks (hardware=ddp_cpu, gloo): disjoint shard samples in equal batches, and the index and the
prior built once, by rank 0, the other rank waiting and reading its result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, cli_env

from colorization.data import Synthetic
from colorization.data.shard import write_shards

RANK = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[4])
import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from support import compose_config
from colorization.app.training import instantiate_owned
from colorization.color import ABGamut
from colorization.objectives import RegressionModule

kind, root, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
data = ["data=shards", "data.source.shuffle_buffer=8"] if kind == "shards" else [
    "data=synthetic", "data.source.count=48", "data.source.size=32"]
overrides = ["hardware=ddp_cpu", *data, f"data.root={root}", "data.image_size=32", "data.batch_size=4",
             "data.num_workers=1", "data.augment=false", "logger=none"]
cfg = compose_config(overrides, out, out)
dm = instantiate_owned(cfg.data, _convert_="all")
counts = {"prior_passes": 0, "index_builds": 0}
train_batches, build_index = dm._train_batches, dm._build_index

def counted_batches(*args, **kwargs):
    counts["prior_passes"] += 1
    yield from train_batches(*args, **kwargs)

def counted_build():
    counts["index_builds"] += 1
    return build_index()

dm._train_batches, dm._build_index = counted_batches, counted_build

class Record(pl.Callback):
    seen: list = []

    def setup(self, trainer, pl_module, stage):
        # every rank asks, as the AucPrior callback and the classification objective do
        self.prior = trainer.datamodule.compute_prior(ABGamut.zhang()).probs

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.extend(batch["index"].tolist())

record = Record()
module = RegressionModule({"_target_": "colorization.nets.BaselineCNN", "width": 0.125},
                          {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
                          perceptual_metrics=False, rebalanced_auc=False)
trainer = instantiate(cfg.trainer, callbacks=[record], logger=False, max_epochs=1, limit_val_batches=0,
                      num_sanity_val_steps=0, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=str(out))
trainer.fit(module, datamodule=dm)
print("RESULT " + json.dumps({"rank": trainer.global_rank, "seen": record.seen, "steps": trainer.global_step,
                              "prior": record.prior.tolist(), **counts}), flush=True)
"""


def _two_ranks(kind: str, root: Path, tmp: Path, port: int) -> list[dict]:
    """Run the script as ranks 0 and 1 of one gloo job (Lightning's environment variables, as launched)."""
    script = tmp / "rank.py"
    script.write_text(RANK)
    env = {k: v for k, v in cli_env(tmp, tmp).items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), NODE_RANK="0", WORLD_SIZE="2")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), kind, str(root), str(tmp / "run"), str(ROOT / "tests")],
            cwd=ROOT,
            env={**env, "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for rank in range(2)
    ]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=300)[0])
    finally:
        for proc in procs:
            proc.kill()
    results = []
    for out in outputs:
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        assert lines, out[-3000:]
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    return sorted(results, key=lambda r: r["rank"])


@pytest.mark.slow
def test_two_ranks_read_disjoint_shard_samples_and_compute_the_prior_once(tmp_path):
    src = Synthetic(tmp_path / "synthetic", count=80, size=32)
    src.prepare()
    manifest = write_shards(src.image_root, tmp_path / "shards", shard_size=4, progress=False)
    train = sum(row["count"] for row in manifest["splits"]["train"])
    r0, r1 = _two_ranks("shards", tmp_path / "shards", tmp_path, 29400 + os.getpid() % 500)
    assert r0["steps"] == r1["steps"] > 0 and len(r0["seen"]) == len(r1["seen"]) == 4 * r0["steps"]
    assert not set(r0["seen"]) & set(r1["seen"])  # disjoint shards, hence disjoint samples
    seen = r0["seen"] + r1["seen"]
    assert len(seen) == len(set(seen)) and train - len(seen) <= 2 * 4  # at most a shard left per rank
    assert (r0["prior_passes"], r1["prior_passes"]) == (1, 0) and r0["prior"] == r1["prior"]


@pytest.mark.slow
def test_two_ranks_build_the_index_and_the_prior_once(tmp_path):
    r0, r1 = _two_ranks("synthetic", tmp_path / "synthetic", tmp_path, 29900 + os.getpid() % 500)
    assert (r0["index_builds"], r1["index_builds"]) == (1, 0)  # rank 1 read the cache rank 0 had written
    assert (r0["prior_passes"], r1["prior_passes"]) == (1, 0) and r0["prior"] == r1["prior"]
    assert r0["steps"] == r1["steps"] > 0
