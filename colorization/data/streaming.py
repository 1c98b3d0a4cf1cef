"""Reading WebDataset shards: each DDP rank and loader worker its own shards, equal batches on every rank.

WebDataset splits data between ranks and workers by shard, not by sample (`split_by_node`, then
`split_by_worker`: rank r takes shards r, r + world, ...; its worker w every workers-th of those), and its
maintainers document what follows: ranks then hold different numbers of samples, which the training loop must
account for, or shards are resampled with replacement into epochs of nominal length. Both are here:
- dealt (default): the training shards, in a seeded order fixed for the run, are dealt as WebDataset deals
  them. The manifest's per-shard counts tell every rank how many full batches each rank gets; all yield the
  fewest (K), so DDP never waits on a rank that ran out. An epoch reads every sample at most once and all but
  the few left over on the richest ranks (at most about a shard per rank); each worker reads its shards in a
  new order every epoch. A split with fewer shards than readers (ranks × workers) is split by sample instead
  (every reader reads all its shards, keeps every n-th sample): exact, at the cost of reading it n times.
- resampled (data.source.resample=true): every worker draws training shards with replacement
  (WebDataset's ResampledShards), K = samples / ranks / batch size batches per rank and epoch.
Validation and test read every sample exactly once across ranks and workers (the last batch may be partial).
Workers shuffle raw samples in a buffer (WebDataset's shuffle), then decode and crop with PIL into uint8
batches (colorization.data.images): the Lab conversion stays on the device, as for folders. A damaged shard
(truncated, unreadable) is skipped with a warning and counted (`ShardDataset.damaged`); a training worker
left short by one reads its shards again to fill its quota.
"""

from __future__ import annotations

import heapq
import io
import json
import logging
import multiprocessing
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, default_collate, get_worker_info

from colorization.data.images import IMAGE_EXTENSIONS, load_random_crop, load_square
from colorization.data.splits import LoaderSpec
from colorization.errors import DataUnavailableError

log = logging.getLogger(__name__)
warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")
# Lightning's caution for any IterableDataset with a length and several workers: here each worker is dealt
# its own shards and quota, and the length is the exact number of batches the rank yields.


def webdataset() -> Any:
    """The webdataset package (the `shards` extra), imported on first use; one line when it is missing."""
    try:
        import webdataset as wds
    except ImportError:
        raise DataUnavailableError(
            "reading or writing shards needs WebDataset: pip install -e '.[shards]'"
        ) from None
    return wds


IMAGE_KEYS = frozenset(s.lstrip(".") for s in IMAGE_EXTENSIONS) | {"img"}


@dataclass(frozen=True)
class ShardInfo:
    """One shard of a split: its URL, samples, gray samples, and the usable samples of the split before it."""

    url: str
    count: int
    gray: int
    start: int

    def usable(self, drop_gray: bool) -> int:
        """Samples a reader keeps from it."""
        return self.count - self.gray if drop_gray else self.count


def deal(n: int, rank: int, world: int, worker: int, workers: int) -> list[int]:
    """The items of range(n) that WebDataset's split_by_node then split_by_worker give one reader."""
    return list(range(n))[rank::world][worker::workers]


def _waterfill(batches: list[int], total: int) -> list[int]:
    """Lower the largest entries one at a time until they sum to total (workers end at about one time)."""
    heap = [(-b, w) for w, b in enumerate(batches)]
    heapq.heapify(heap)
    out = list(batches)
    for _ in range(sum(batches) - total):
        b, w = heapq.heappop(heap)
        out[w] -= 1
        heapq.heappush(heap, (b + 1, w))
    return out


class ShardDataset(IterableDataset):
    """One split's shards for one rank: uint8 batches {"rgb": B×3×S×S, "index": B} from each loader worker."""

    def __init__(
        self,
        shards: list[ShardInfo],
        spec: LoaderSpec,
        *,
        drop_gray: bool = True,
        shuffle_buffer: int = 0,
        resample: bool = False,
        limit: int | None = None,
    ) -> None:
        """spec: sizes, crops, batch, workers, rank; spec.drop_last marks training (full, equal batches);
        spec.shuffle shuffles shards and samples; limit: keep only the split's first `limit` usable samples.
        """
        self.spec, self.drop_gray, self.limit = spec, drop_gray, limit
        self.shuffle_buffer = shuffle_buffer if spec.shuffle else 0
        self.resample = resample and spec.drop_last
        self.workers = max(1, spec.num_workers)
        order = list(range(len(shards)))
        if spec.shuffle:
            random.Random(spec.seed).shuffle(order)  # fixed for the run: the dealing never changes
        self.shards = [shards[i] for i in order]
        self.readers = spec.world_size * self.workers
        self.by_sample = len(self.shards) < self.readers and not self.resample
        self.damaged = multiprocessing.get_context().Value("i", 0)
        self._iterations = 0
        self.quotas = self._quotas() if spec.drop_last else None

    # ---------------------------------------------------------------- planning
    def _total(self) -> int:
        """Usable samples of the split (or the limit)."""
        total = sum(s.usable(self.drop_gray) for s in self.shards)
        return total if self.limit is None else min(total, self.limit)

    def reader_samples(self, rank: int, worker: int) -> int:
        """Usable samples one reader (rank, worker) yields in one pass."""
        if self.by_sample:
            slot = rank * self.workers + worker
            return len(range(slot, self._total(), self.readers))
        mine = deal(len(self.shards), rank, self.spec.world_size, worker, self.workers)
        return sum(self.shards[i].usable(self.drop_gray) for i in mine)

    def _quotas(self) -> list[int]:
        """Full batches each worker of this rank yields per epoch: the same total K on every rank."""
        b, world = self.spec.batch_size, self.spec.world_size
        if self.resample:
            k = self._total() // world // b
            per = [k // self.workers + (w < k % self.workers) for w in range(self.workers)]
        else:
            batches = [[self.reader_samples(r, w) // b for w in range(self.workers)] for r in range(world)]
            k = min(sum(r) for r in batches)
            per = _waterfill(batches[self.spec.rank], k)
        if k == 0:
            raise DataUnavailableError(
                f"{self._total()} training samples in {len(self.shards)} shard(s) give a rank of {world} no "
                f"full batch of {b} ({self.workers} worker(s) each): write smaller shards (--shard-size) or "
                "lower data.batch_size or data.num_workers"
            )
        return per

    def __len__(self) -> int:
        """Batches this rank yields per epoch (K for training; every sample once, partial batches, else)."""
        if self.quotas is not None:
            return sum(self.quotas)
        b = self.spec.batch_size
        return sum(-(-self.reader_samples(self.spec.rank, w) // b) for w in range(self.workers))

    # --------------------------------------------------------------- reading
    def _skip(self, exc: BaseException, url: str, seen: set[str]) -> bool:
        """WebDataset handler: warn about and count a damaged shard once, then go on with the next."""
        if url not in seen:
            seen.add(url)
            with self.damaged.get_lock():
                self.damaged.value += 1
            reason = str(exc.args[0] if exc.args else exc).split("\n")[0][:160]
            log.warning("skipped the rest of damaged shard %s (%s: %s)", url, type(exc).__name__, reason)
        return True

    def _read(self, shard: ShardInfo, seen: set[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        """(usable position in the split, raw sample) of one shard, gray ones dropped when drop_gray."""
        wds = webdataset()

        def handler(exc: BaseException) -> bool:
            return self._skip(exc, shard.url, seen)

        position = shard.start
        source = wds.tarfile_samples([{"url": shard.url}], handler=handler)
        for sample in source:
            try:
                meta = json.loads(sample["json"])
                data = next(v for k, v in sample.items() if k in IMAGE_KEYS)
            except (
                KeyError,
                StopIteration,
                ValueError,
            ) as exc:  # an incomplete last sample of a damaged shard
                self._skip(exc, shard.url, seen)
                continue
            if self.drop_gray and meta.get("gray"):
                continue
            if self.limit is not None and position >= self.limit:
                return
            yield position, {"meta": meta, "data": data, "key": sample["__key__"]}
            position += 1

    def _stream(self, rank: int, worker: int, rng: random.Random) -> Iterator[dict[str, Any]]:
        """The raw samples of one pass of this reader (or, for resampled training, an endless draw)."""
        seen: set[str] = set()
        if self.resample:  # WebDataset's ResampledShards: shards drawn with replacement, endlessly
            by_url = {shard.url: shard for shard in self.shards}
            draws = webdataset().ResampledShards(
                list(by_url), seed=rng.randrange(2**31), deterministic=True, worker_seed=lambda: 0
            )
            for draw in draws:
                yield from (s for _, s in self._read(by_url[draw["url"]], seen))
        if self.by_sample:
            slot = rank * self.workers + worker
            for shard in self.shards:
                yield from (s for p, s in self._read(shard, seen) if p % self.readers == slot)
            return
        dealt = deal(len(self.shards), rank, self.spec.world_size, worker, self.workers)
        mine = [self.shards[i] for i in dealt]
        if self.spec.shuffle:
            rng.shuffle(mine)
        for shard in mine:
            yield from (s for _, s in self._read(shard, seen))

    def _decode(self, sample: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """uint8 3×S×S crop of one raw sample (random resized when crop_scale) and its number in the split."""
        size, scale = self.spec.image_size, self.spec.crop_scale
        stream = io.BytesIO(sample["data"])
        arr = load_square(stream, size) if scale is None else load_random_crop(stream, size, rng, scale)
        index = int(sample["key"].rsplit("-", 1)[-1])
        return {"rgb": torch.from_numpy(arr).permute(2, 0, 1).contiguous(), "index": index}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of this worker: its quota of full ones for training, all of its samples otherwise."""
        wds = webdataset()

        info = get_worker_info()
        worker = info.id if info is not None else 0
        self._iterations += 1
        seed = int(torch.initial_seed()) * 1_000_003 + self._iterations  # new every epoch, own per worker
        rng, np_rng = random.Random(seed), np.random.default_rng(seed)
        rank, b = self.spec.rank, self.spec.batch_size

        def passes() -> Iterator[dict[str, Any]]:
            """One pass (shuffled in the buffer), and for training more until the quota is met."""
            while True:
                got = 0
                samples: Iterator[dict[str, Any]] = self._stream(rank, worker, rng)
                if self.shuffle_buffer > 0:
                    initial = min(100, self.shuffle_buffer)
                    samples = wds.shuffle(self.shuffle_buffer, initial=initial, rng=rng)(samples)
                for sample in samples:
                    got += 1
                    yield sample
                if self.quotas is None:
                    return
                if got == 0:
                    raise DataUnavailableError(
                        f"no readable sample in the shards of rank {rank}, worker {worker}: see the warnings"
                    )

        quota = self.quotas[worker] if self.quotas is not None else None
        batch: list[dict[str, Any]] = []
        made = 0
        if quota == 0:
            return
        for sample in passes():
            try:
                batch.append(self._decode(sample, np_rng))
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                log.warning("skipped undecodable sample %s (%s)", sample["key"], str(exc)[:120])
                continue
            if len(batch) == b:
                yield default_collate(batch)
                batch, made = [], made + 1
                if quota is not None and made >= quota:
                    return
        if batch and quota is None:
            yield default_collate(batch)
