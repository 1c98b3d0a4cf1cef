"""WebDataset tar shards written by `python -m colorization.data.shard`, on a local disk or object storage.

data.root is where the shards and their manifest (shards.json) are:
- a local folder, or a file:// URL;
- http:// or https:// (WebDataset reads them with curl; without curl, with Python's urllib);
- gs:// (WebDataset's own handler: gsutil cat);
- s3:// (read as `pipe:aws s3 cp URL -`, the AWS CLI streaming to stdout: WebDataset's documented way);
- a `pipe:` command with `{name}` where the shard's file name goes (e.g.
  `pipe:s5cmd cat s3://bucket/imagenet/{name}`), or any other URL template with `{name}`.
Nothing is copied to local disk: shards stream. The caches (prior, gamut) of a remote source go to
~/.cache/colorization/<hash of the URL>.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from colorization import checks
from colorization.data.sources.base import Source
from colorization.data.splits import SPLITS, LoaderSpec, Splits
from colorization.data.streaming import ShardDataset, ShardInfo, webdataset
from colorization.errors import DataUnavailableError

MANIFEST = "shards.json"
REMOTE = ("http://", "https://", "gs://", "s3://", "pipe:")


def is_remote(location: str) -> bool:
    """Whether a data.root is a URL or command that WebDataset opens (not a local folder)."""
    return location.startswith(REMOTE) or "{name}" in location


def member_url(location: str, name: str) -> str:
    """The URL WebDataset opens for one file (a shard or the manifest) of the shard set at location."""
    if "{name}" in location:
        return location.replace("{name}", name)
    if location.startswith("s3://"):
        return f"pipe:aws s3 cp {shlex.quote(location.rstrip('/') + '/' + name)} -"
    if location.startswith("file://"):
        location = location[len("file://") :]
    if is_remote(location):
        return location.rstrip("/") + "/" + name
    return str(Path(location).expanduser() / name)


def _urllib_open(url: str, mode: str = "rb", bufsize: int = 8192, **kw: Any):
    """http(s) with Python's urllib, for machines without curl (WebDataset's own http handler runs curl)."""
    if mode[0] != "r":
        raise ValueError(f"{url}: only reading is supported without curl")
    return urllib.request.urlopen(url, timeout=60)  # noqa: S310 - the user's own data URL


def gopen(url: str):
    """WebDataset's opener (local paths, file:, http(s):, gs:, pipe:...); urllib where curl is missing."""
    wds = webdataset()

    if shutil.which("curl") is None:
        for scheme in ("http", "https"):
            wds.gopen_schemes[scheme] = _urllib_open
    return wds.gopen(url)


def read_url(url: str) -> bytes:
    """The whole content at url, through WebDataset's opener (the same one the shards are read with)."""
    stream = gopen(url)
    try:
        return stream.read()
    finally:
        stream.close()


class Shards(Source):
    """Shards of any source (colorization.data.shard), streamed with WebDataset; splits fixed per sample."""

    name = "shards"
    streaming = True
    use_split_folders = False

    def __init__(self, root: str | Path, shuffle_buffer: int = 1000, resample: bool = False) -> None:
        """root: folder or URL of the shards; shuffle_buffer: samples each loader worker shuffles among
        (WebDataset's shuffle; 0: shard order); resample: draw training shards with replacement (WebDataset's
        ResampledShards: epochs of nominal length) instead of dealing each shard to one rank and worker."""
        self.url = str(root)
        remote = is_remote(self.url)
        if remote:
            digest = hashlib.sha1(self.url.encode()).hexdigest()[:12]
            home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
            self.root = home / "colorization" / f"shards-{digest}"
        else:
            self.url = str(Path(self.url[7:] if self.url.startswith("file://") else self.url).expanduser())
            self.root = Path(self.url)
        self.remote = remote
        self.shuffle_buffer = checks.integer("data.source.shuffle_buffer", shuffle_buffer, low=0)
        self.resample = checks.flag("data.source.resample", resample)
        self._manifest: dict[str, Any] | None = None

    @property
    def location(self) -> str:
        """The folder or URL of the shards, as given."""
        return self.url

    @property
    def image_root(self) -> Path:
        """No folder is indexed: the local root (or the cache folder of a remote one)."""
        return self.root

    def url_of(self, name: str) -> str:
        """What WebDataset opens for the shard (or manifest) file `name`."""
        return member_url(self.url, name)

    def manifest(self) -> dict[str, Any]:
        """shards.json, read once (DataUnavailableError with what to do when it cannot be read)."""
        if self._manifest is None:
            url = self.url_of(MANIFEST)
            try:
                data = json.loads(read_url(url))
            except Exception as exc:  # noqa: BLE001 - any failure of any transport says the same
                reason = str(exc).split("\n")[0][:160] or type(exc).__name__
                raise DataUnavailableError(f"{self.missing_message()} ({url}: {reason})") from None
            if not isinstance(data, dict) or data.get("format") != "webdataset" or "splits" not in data:
                raise DataUnavailableError(
                    f"{url} is not a shard manifest written by colorization.data.shard"
                )
            self._manifest = data
        return self._manifest

    def ready(self) -> bool:
        """Whether the manifest can be read."""
        try:
            self.manifest()
        except DataUnavailableError:
            return False
        return True

    def prepare(self, download: bool = True) -> None:
        """Check that the manifest is there (shards are never downloaded: they stream)."""
        self.manifest()

    def missing_message(self) -> str:
        """How to make shards."""
        return (
            f"no shard manifest {MANIFEST} at {self.url}: write shards with "
            f"`python -m colorization.data.shard SRC OUT [--source NAME]` and point data.root at OUT "
            "(or at its copy on object storage)"
        )

    def splits(self, drop_gray: bool = True) -> ShardSplits:
        """The split data of the manifest's shards."""
        return ShardSplits.from_manifest(self, drop_gray)

    def split_note(self) -> str:
        """The shard set, for the DataModule's log line."""
        manifest = self._manifest or {}
        origin = manifest.get("source", "?")
        return f"shards of {origin}" + (", resampled" if self.resample else "")

    def __repr__(self) -> str:
        """Class name and location, for logs."""
        return f"Shards({self.url!r})"


@dataclass
class ShardSplits(Splits):
    """The splits of a shard set: per split, its shards with their counts (from the manifest)."""

    source: Shards
    shards: dict[str, list[ShardInfo]]
    drop_gray: bool = True
    gray_dropped: int = 0

    @classmethod
    def from_manifest(cls, source: Shards, drop_gray: bool) -> ShardSplits:
        """The manifest's shards, with the running usable count before each (the samples' numbering)."""
        manifest = source.manifest()
        shards: dict[str, list[ShardInfo]] = {}
        gray = 0
        for split in SPLITS:
            rows, start = [], 0
            for row in manifest["splits"].get(split, []):
                info = ShardInfo(source.url_of(row["name"]), int(row["count"]), int(row["gray"]), start)
                rows.append(info)
                start += info.usable(drop_gray)
                gray += info.gray
            shards[split] = rows
        return cls(source, shards, drop_gray, gray if drop_gray else 0)

    def sizes(self) -> dict[str, int]:
        """Usable samples per split."""
        return {s: sum(x.usable(self.drop_gray) for x in self.shards[s]) for s in SPLITS}

    def dataset(self, split: str, spec: LoaderSpec) -> ShardDataset:
        """This rank's part of one split."""
        src = self.source
        return ShardDataset(
            self.shards[split], spec, drop_gray=self.drop_gray, shuffle_buffer=src.shuffle_buffer,
            resample=src.resample,
        )  # fmt: skip

    def loader(self, split: str, spec: LoaderSpec) -> DataLoader:
        """Whole batches from the workers; no sampler (Lightning leaves iterable datasets alone)."""
        return DataLoader(
            self.dataset(split, spec), batch_size=None, num_workers=spec.num_workers,
            pin_memory=spec.pin_memory, persistent_workers=spec.persistent_workers,
        )  # fmt: skip

    def train_key(self) -> str:
        """The training shards' names and counts, and whether gray samples are dropped."""
        rows = [(s.url.rsplit("/", 1)[-1], s.count, s.gray) for s in self.shards["train"]]
        return json.dumps([rows, self.drop_gray])

    def statistics_batches(
        self, spec: LoaderSpec, max_images: int | None
    ) -> tuple[int, Iterator[torch.Tensor]]:
        """Centre crops of every training sample (or the first max_images in the manifest's order), read by
        this process alone (rank 0 computes the prior for all)."""
        single = LoaderSpec(spec.image_size, spec.batch_size, spec.num_workers)  # one rank, centre crops
        data = ShardDataset(self.shards["train"], single, drop_gray=self.drop_gray, limit=max_images)
        loader = DataLoader(data, batch_size=None, num_workers=spec.num_workers)
        return data._total(), (batch["rgb"] for batch in loader)

    def describe(self) -> str:
        """Shard counts per split."""
        return "shards: " + ", ".join(f"{s} {len(self.shards[s])}" for s in SPLITS)
