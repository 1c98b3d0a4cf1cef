"""The dataset catalogue: one class per source, each knowing where its images live and how to get them.

base (Source, Folder), generated (Samples, Synthetic: written by code, offline), downloads (Cats, Mirflickr:
public archives), accounts (ImageNet and the Kaggle datasets: put there by the user), shards (WebDataset tar
shards of any of them, local or on object storage, streamed). Config targets name
them here, e.g. ``colorization.data.sources.Samples``.
"""

from colorization.data.sources.accounts import Animals, Fruits, ImageNet, Intel, Kaggle, Landscapes
from colorization.data.sources.base import Folder, Source
from colorization.data.sources.downloads import CAT_BREEDS, Archive, Cats, Mirflickr
from colorization.data.sources.generated import (
    SAMPLE_PHOTOS,
    SAMPLE_TEST_PHOTOS,
    SAMPLE_VAL_PHOTOS,
    Samples,
    Synthetic,
    sample_photos,
)
from colorization.data.sources.shards import Shards

CATALOGUE: dict[str, type[Source]] = {
    cls.name: cls
    for cls in (
        Samples,
        Synthetic,
        Folder,
        Cats,
        Mirflickr,
        ImageNet,
        Intel,
        Fruits,
        Landscapes,
        Animals,
        Shards,
    )
}
"""Source classes by the name of their conf/data/<name>.yaml."""

__all__ = [
    "CATALOGUE",
    "CAT_BREEDS",
    "SAMPLE_PHOTOS",
    "SAMPLE_TEST_PHOTOS",
    "SAMPLE_VAL_PHOTOS",
    "Animals",
    "Archive",
    "Cats",
    "Folder",
    "Fruits",
    "ImageNet",
    "Intel",
    "Kaggle",
    "Landscapes",
    "Mirflickr",
    "Samples",
    "Shards",
    "Source",
    "Synthetic",
    "sample_photos",
]
