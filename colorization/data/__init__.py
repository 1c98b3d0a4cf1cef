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

So `python train.py data=folder data.root=DIR` works for any folder. Keys of the DataModule that are not
its own parameters are passed to the source factory (imagenet.yaml's top-level `classes: null` becomes
`ImageNet(root, classes=...)`, so `data.classes=[n01440764,...]` or `data.classes=27` selects a subset).
In Python: `LabDataModule("samples", root="data/samples")`, `LabDataModule(Folder("photos"))` or
`LabDataModule(functools.partial(Folder), root="photos")`.

Caches (index, prior, gamut) live in `<root>/.colorization/` (or ~/.cache/colorization/<hash> when root is
read-only). Splits depend on relative paths only (train/val/test folders where the source has them, else a
hash of the path), never on `seed`. The synthetic source's multimodal region is the fruit: see
`colorization.data.synthetic` and `synthetic_scene(seed, size) -> (rgb, fruit_mask)`.
"""

from colorization.data.datamodule import ImageDataset, LabDataModule
from colorization.data.download import download, extract, verify_file
from colorization.data.images import load_square, open_rgb, probe
from colorization.data.index import DataIndex, assign_split, build_index
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
    Source,
    Synthetic,
)
from colorization.data.synthetic import synthetic_batch, synthetic_scene

__all__ = [
    "CATALOGUE",
    "Animals",
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
