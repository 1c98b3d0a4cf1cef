"""WebDataset shards: written with the index facts and splits, read back as the folder source reads its
files, dealt to ranks and workers as WebDataset deals them, streamed over HTTP, damaged shards skipped."""

from __future__ import annotations

import functools
import http.server
import io
import json
import logging
import shutil
import tarfile
import threading
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image
from support import quiet_trainer

from colorization.color import ABGamut
from colorization.data import Folder, LabDataModule, Samples, Synthetic
from colorization.data.images import load_square
from colorization.data.shard import main as shard_main
from colorization.data.shard import write_shards
from colorization.data.splits import LoaderSpec, assign_split
from colorization.data.streaming import ShardDataset, ShardInfo, deal
from colorization.errors import DataUnavailableError

wds = pytest.importorskip("webdataset")  # the `shards` extra (in the test extra: always there in CI)
SIZE = 32


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """80 synthetic scenes and one black-and-white photograph stored as RGB, in a plain folder."""
    root = tmp_path_factory.mktemp("folder")
    src = Synthetic(root / "gen", count=80, size=SIZE)
    src.prepare()
    shutil.copytree(src.image_root, root / "photos")
    gray = Image.open(root / "photos" / "scene_000003.png").convert("L").convert("RGB")
    gray.save(root / "photos" / "bw.png")
    return root / "photos"


@pytest.fixture(scope="module")
def shards(folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    write_shards(folder, out, shard_size=8, progress=False)
    return out


def _members(tar: Path) -> dict[str, dict[str, bytes]]:
    """Samples of a tar read with Python's tarfile (an independent reader): key -> {suffix: bytes}."""
    out: dict[str, dict[str, bytes]] = {}
    with tarfile.open(tar) as t:
        for m in t.getmembers():
            key, suffix = m.name.split(".", 1)
            out.setdefault(key, {})[suffix] = t.extractfile(m).read()
    return out


def test_shards_hold_the_files_and_the_index_facts(folder, shards):
    manifest = json.loads((shards / "shards.json").read_text())
    dm = LabDataModule(Folder(folder), image_size=SIZE, drop_gray=False, num_workers=0)
    dm.setup()
    index = {e.path: e for e in dm.index.entries}
    seen = {}
    for split, rows in manifest["splits"].items():
        assert sum(r["count"] for r in rows) == len(dm.splits[split])
        assert all(r["count"] <= 8 for r in rows) and len(rows) == -(-len(dm.splits[split]) // 8)
        for row in rows:
            members = _members(shards / row["name"])
            assert len(members) == row["count"]
            gray = 0
            for sample in members.values():
                facts = json.loads(sample["json"])
                entry = index[facts["path"]]
                assert sample["png"] == (folder / facts["path"]).read_bytes()  # the original bytes
                assert facts["split"] == split == assign_split(facts["path"], 0.1, 0.1)
                assert (facts["width"], facts["height"], facts["gray"]) == (
                    entry.width,
                    entry.height,
                    entry.gray,
                )
                gray += facts["gray"]
                seen[facts["path"]] = split
            assert gray == row["gray"]
    assert set(seen) == set(index) and seen.get("bw.png") is not None and index["bw.png"].gray


def test_samples_shard_with_their_held_out_photographs(tmp_path):
    src = Samples(tmp_path / "samples", count=48, size=SIZE)
    code = shard_main([str(tmp_path / "samples"), str(tmp_path / "out"), "--source", "samples",
                       "--shard-size", "10", "--min-shards", "3", "--option", "count=48",
                       "--option", f"size={SIZE}"])  # fmt: skip
    assert code == 0 and src.ready()
    manifest = json.loads((tmp_path / "out" / "shards.json").read_text())
    for split, rows in manifest["splits"].items():
        counts = [row["count"] for row in rows]
        assert max(counts) <= 10 and len(rows) >= min(3, sum(counts))  # small splits: 3 shards at least
        for row in rows:
            for sample in _members(tmp_path / "out" / row["name"]).values():
                facts = json.loads(sample["json"])
                assert facts["path"].split("/")[0] == split  # images/<split>/...: the photographs held out
    code = shard_main([str(tmp_path / "nothing"), str(tmp_path / "out2")])
    assert code == 1


def test_shard_batches_match_the_folder_source(folder, shards):
    """Same images, same decode: the shard source's val batches and train prior equal the folder source's."""
    by_folder = LabDataModule(Folder(folder), image_size=SIZE, batch_size=8, num_workers=0)
    by_shards = LabDataModule("shards", root=shards, image_size=SIZE, batch_size=8, num_workers=2)
    by_folder.setup()
    by_shards.setup()
    assert by_shards.data.sizes() == {s: len(p) for s, p in by_folder.splits.items()}
    assert by_shards.gray_dropped == by_folder.gray_dropped == 1
    manifest = json.loads((shards / "shards.json").read_text())
    paths = {}  # val sample number -> path, from the shards' own json
    for row in manifest["splits"]["val"]:
        for key, sample in _members(shards / row["name"]).items():
            paths[int(key.rsplit("-", 1)[1])] = json.loads(sample["json"])["path"]
    got = {}
    for batch in by_shards.val_dataloader():
        assert batch["rgb"].dtype == torch.uint8 and batch["rgb"].shape[1:] == (3, SIZE, SIZE)
        for i, rgb in zip(batch["index"].tolist(), batch["rgb"], strict=True):
            got[paths[i]] = rgb
    assert sorted(got) == sorted(by_folder.splits["val"])
    for path, rgb in got.items():
        np.testing.assert_array_equal(rgb.permute(1, 2, 0).numpy(), load_square(folder / path, SIZE))
    a, b = by_folder.compute_prior(ABGamut.zhang()), by_shards.compute_prior(ABGamut.zhang())
    torch.testing.assert_close(a.counts, b.counts)  # every training image counted once, gray dropped in both
    again = LabDataModule("shards", root=shards, image_size=SIZE, batch_size=8, num_workers=0)
    assert any(by_shards.cache_dir.glob("prior-*.pt"))
    again._train_batches = None  # a cached prior is read, never recomputed
    torch.testing.assert_close(again.compute_prior(ABGamut.zhang()).probs, b.probs)


def test_dealing_is_webdatasets_and_every_rank_gets_equal_batches(monkeypatch):
    for n, world, workers in ((10, 2, 3), (7, 3, 2), (25, 4, 1)):
        for rank in range(world):
            for worker in range(workers):
                env = {"RANK": rank, "WORLD_SIZE": world, "WORKER": worker, "NUM_WORKERS": workers}
                for k, v in env.items():
                    monkeypatch.setenv(k, str(v))
                expected = list(wds.split_by_worker(wds.split_by_node(iter(range(n)))))
                assert deal(n, rank, world, worker, workers) == expected
    for k in ("RANK", "WORLD_SIZE", "WORKER", "NUM_WORKERS"):
        monkeypatch.delenv(k)


def _fake_shards(tmp_path: Path, counts: list[int]) -> list[ShardInfo]:
    """Tar shards of tiny PNGs with the writer's layout (key split-NNNNNNNNN, png + json)."""
    infos, number = [], 0
    img = Image.new("RGB", (8, 8), (200, 40, 30))
    for s, count in enumerate(counts):
        path = tmp_path / f"train-{s:06d}.tar"
        with wds.TarWriter(str(path), encoder=False) as w:
            for _ in range(count):
                buf = io.BytesIO()
                img.save(buf, "PNG")
                w.write({"__key__": f"train-{number:09d}", "png": buf.getvalue(), "json": b'{"gray": false}'})
                number += 1
        infos.append(ShardInfo(str(path), count, 0, number - count))
    return infos


def test_ranks_read_disjoint_samples_in_equal_batches(tmp_path):
    """4 simulated ranks × 2 workers over 11 uneven shards: the same number of full batches on every rank,
    no sample twice in an epoch, all but about a shard's worth per rank read; few shards split by sample."""
    shards = _fake_shards(tmp_path, [9, 7, 8, 8, 5, 9, 8, 8, 6, 8, 3])
    total, seen, lengths = sum(s.count for s in shards), [], set()
    for rank in range(4):
        spec = LoaderSpec(8, 4, 2, shuffle=True, drop_last=True, rank=rank, world_size=4)
        data = ShardDataset(shards, spec)
        lengths.add(len(data))
        loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2)
        batches = [b["index"].tolist() for b in loader]
        assert len(batches) == len(data) and all(len(b) == 4 for b in batches)
        seen += [i for b in batches for i in b]
    assert len(lengths) == 1 and len(seen) == len(set(seen)) and total - len(seen) <= 4 * 9
    # resampled (WebDataset's ResampledShards): nominal epochs of total / ranks / batch full batches
    resampled = ShardDataset(
        shards, LoaderSpec(8, 4, 2, shuffle=True, drop_last=True, world_size=4), resample=True
    )
    batches = list(torch.utils.data.DataLoader(resampled, batch_size=None, num_workers=2))
    assert len(batches) == len(resampled) == total // 4 // 4 and all(len(b["index"]) == 4 for b in batches)
    # validation with fewer shards than readers: split by sample, every sample exactly once
    few = shards[:3]
    got = []
    for rank in range(4):
        data = ShardDataset(few, LoaderSpec(8, 4, 2, rank=rank, world_size=4))
        got += [
            i for b in torch.utils.data.DataLoader(data, batch_size=None, num_workers=2) for i in b["index"]
        ]
    assert sorted(int(i) for i in got) == list(range(sum(s.count for s in few)))


def test_a_truncated_shard_is_skipped_with_a_warning_and_counted(tmp_path, caplog):
    shards = _fake_shards(tmp_path, [6, 6, 6])
    damaged = Path(shards[1].url)
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    data = ShardDataset(shards, LoaderSpec(8, 4, 0))
    with caplog.at_level(logging.WARNING, logger="colorization.data.streaming"):
        got = [i for b in data for i in b["index"].tolist()]
    assert data.damaged.value == 1 and "damaged shard" in caplog.text and damaged.name in caplog.text
    assert set(range(6)) | set(range(12, 18)) <= set(got) < set(range(18)) and len(got) == len(set(got))
    train = ShardDataset(shards, LoaderSpec(8, 4, 0, shuffle=True, drop_last=True))
    assert len(list(train)) == len(train) == 4  # the quota is refilled by reading the good shards again


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request lines on stderr
        pass


def test_shards_stream_from_a_local_http_server(shards, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a remote source's caches go there
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=shards))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        local = LabDataModule("shards", root=shards, image_size=SIZE, num_workers=0)
        remote = LabDataModule("shards", root=url, image_size=SIZE, num_workers=0)
        want = [b["rgb"] for b in local.val_dataloader()]
        for curl in (True, False):  # WebDataset's curl handler, and urllib where there is no curl
            if not curl:
                monkeypatch.setattr(shutil, "which", lambda name: None)
            elif shutil.which("curl") is None:
                continue
            got = [b["rgb"] for b in remote.val_dataloader()]
            assert len(got) == len(want) and all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        assert remote.cache_dir.is_relative_to(tmp_path / "cache" / "colorization")
        missing = LabDataModule("shards", root=url + "/nowhere", image_size=SIZE, num_workers=0)
        with pytest.raises(DataUnavailableError, match="no shard manifest shards.json"):
            missing.prepare_data()
    finally:
        server.shutdown()
        thread.join()


@pytest.mark.slow
def test_training_from_shards_lowers_the_loss(shards):
    from colorization.objectives import RegressionModule

    dm = LabDataModule("shards", root=shards, image_size=SIZE, batch_size=8, num_workers=2)
    module = RegressionModule({"_target_": "colorization.nets.BaselineCNN", "width": 0.5},
                              {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 3e-3},
                              perceptual_metrics=False, rebalanced_auc=False)  # fmt: skip
    losses: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            losses.append(float(outputs["loss"]))

    torch.manual_seed(0)
    quiet_trainer(max_steps=40, limit_val_batches=0, callbacks=[Record()]).fit(module, datamodule=dm)
    assert len(losses) == 40 and np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
