"""Data: the source catalogue, downloads, the folder index, synthetic scenes and the Lab DataModule.

Config shape (conf/data/<name>.yaml, one per source; the group is `data`)::

    _target_: colorization.data.LabDataModule
    root: ${paths.data_dir}/cats          # data.root: where the images are (or go); a DataModule key
    source:                               # a factory called as source(root=data.root, **extra keys)
      _target_: colorization.data.sources.Cats
      _partial_: true
      variant: pets                       # source options: data.source.variant=kaggle
    image_size: 256                       # DataModule knobs: data.image_size, data.batch_size, ...
    batch_size: 32
    num_workers: 4
    train_aug:                            # Kornia augmentation per stage: aug (shared), train_aug, val_aug,
      - RandomHorizontalFlip: {p: 0.5}    # test_aug, predict_aug (colorization.data.augmentation)

So `python train.py data=folder data.root=DIR` works for any folder. Keys of the DataModule that are not
its own parameters are passed to the source factory (imagenet.yaml's top-level `classes: null` becomes
`ImageNet(root, classes=...)`, so `data.classes=[n01440764,...]` or `data.classes=27` selects a subset).
In Python: `LabDataModule("samples", root="data/samples")`, `LabDataModule(Folder("photos"))` or
`LabDataModule(functools.partial(Folder), root="photos")`.

Every value is checked once, in the constructor of the DataModule or the source that owns it
(colorization.data.checks): a bad one is a ConfigError naming its key and the allowed values.

Caches (index, prior, gamut) live in `<root>/.colorization/` (or ~/.cache/colorization/<hash> when root is
read-only or remote), written atomically under a lock file (colorization.atomic); under DDP the index
is built by local rank 0 (prepare_data) and the prior by global rank 0, the other ranks read or receive them.
`data=shards` streams WebDataset tar shards written by `python -m colorization.data.shard SRC OUT` from a
folder or object storage (colorization.data.sources.shards, colorization.data.streaming).

Splits depend on relative paths only (train/val/test folders where the source has them, else a
hash of the path), never on `seed`; the samples source holds out whole photographs for val and test, in such
folders. `test_split` chooses the split that test_dataloader() serves (evaluate.py's split). The synthetic
source's multimodal region is the fruit: see `colorization.data.synthetic` and
`synthetic_scene(seed, size) -> (rgb, fruit_mask)`.

Modules: sources (the catalogue), download, images (PIL decoding), table (flat path storage), index (the
columnar file index), splits (split rules and the split data a DataModule reads), loading (the workers'
dataset), streaming (the shard reader), shard (the shard writer and its command), locking (locks, atomic
files), augmentation (per-stage Kornia specs), statistics (prior and gamut), options, preparation,
datamodule, synthetic.
"""

from colorization.data.augmentation import Augmentation
from colorization.data.datamodule import LabDataModule
from colorization.data.download import download, extract, verify_file
from colorization.data.images import load_square, open_rgb, probe
from colorization.data.index import DataIndex, assign_split, build_index
from colorization.data.loading import ImageDataset
from colorization.data.sources import (
    CATALOGUE,
    Animals,
    Cats,
    Folder,
    Fruits,
    ImageNet,
    Intel,
    Landscapes,
    Mirflickr,
    Samples,
    Shards,
    Source,
    Synthetic,
)
from colorization.data.synthetic import synthetic_batch, synthetic_scene

__all__ = [
    "CATALOGUE",
    "Animals",
    "Augmentation",
    "Cats",
    "DataIndex",
    "Folder",
    "Fruits",
    "ImageDataset",
    "ImageNet",
    "Intel",
    "LabDataModule",
    "Landscapes",
    "Mirflickr",
    "Samples",
    "Shards",
    "Source",
    "Synthetic",
    "assign_split",
    "build_index",
    "download",
    "extract",
    "load_square",
    "open_rgb",
    "probe",
    "synthetic_batch",
    "synthetic_scene",
    "verify_file",
]
