"""A prepared study on disk: the protocol, the methods, and for each photo its real and fake images.

    STUDY/study.json        protocol, methods, and each image's asset ids (never served)
    STUDY/assets/<id>.png   every picture raters see, 256 px square PNGs named by random ids
    STUDY/answers.sqlite    raters and trials (colorization.turing.store), written as answers arrive
    STUDY/results.*         what `python -m colorization.turing results STUDY` writes

Asset ids are random hex strings, so a file name says nothing about the image; raters never see them
either (each trial serves its two pictures under fresh per-trial tokens, see colorization.turing.store).
Real and fake pictures are cut and encoded the same way (same size, same PNG settings, no metadata).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from colorization import checks
from colorization.errors import ColorizationError

__all__ = [
    "GRAY",
    "LAYOUTS",
    "STUDY_FILE",
    "ImageEntry",
    "Protocol",
    "Study",
    "new_asset_id",
]

STUDY_FILE = "study.json"
ASSETS = "assets"
GRAY = "gray"
"""The method every study has: the gray input itself, the floor of the fooling rates."""
LAYOUTS = ("side_by_side", "sequential")
_ASSET_ID = re.compile(r"^[0-9a-f]{32}$")


def new_asset_id() -> str:
    """A random asset id: 32 hex digits, nothing derived from the image."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Protocol:
    """How trials run (Zhang et al.'s protocol by default): each trial shows a real and a fake photo for
    `display_ms` (side by side, or one after the other with `sequential`), then asks which had fake colours.

    `practice` trials come first, with right/wrong feedback, then `trials` scored ones without; `vigilance`
    is the share of extra trials (rounded, at least one when > 0) whose fake is an obvious hue-rotated copy,
    mixed among the scored ones. A rater who gets fewer than `vigilance_pass` of them right is reported and
    left out of the results.
    """

    display_ms: int = 1000
    layout: str = "side_by_side"
    practice: int = 10
    trials: int = 40
    vigilance: float = 0.1
    vigilance_pass: float = 0.75
    size: int = 256

    def __post_init__(self) -> None:
        checks.integer("--display-ms", self.display_ms, 50)
        checks.choice("--layout", self.layout, LAYOUTS)
        checks.integer("--practice", self.practice, 0)
        checks.integer("--trials", self.trials, 1)
        checks.number("--vigilance", self.vigilance, "a share in [0, 1]", low=0.0, high=1.0)
        checks.number("--vigilance-pass", self.vigilance_pass, "a share in [0, 1]", low=0.0, high=1.0)
        checks.integer("--size", self.size, 16)

    @property
    def vigilance_trials(self) -> int:
        """How many vigilance trials each rater gets."""
        if self.vigilance <= 0:
            return 0
        return max(1, round(self.trials * self.vigilance))

    @property
    def total(self) -> int:
        """Trials per rater: practice, scored and vigilance."""
        return self.practice + self.trials + self.vigilance_trials


@dataclass
class ImageEntry:
    """One photo of the study: its name (relative path of the original, for results), the asset of the real
    photo, of each method's fake, and of the vigilance fake."""

    name: str
    real: str
    fakes: dict[str, str] = field(default_factory=dict)
    vigilance: str = ""


@dataclass
class Study:
    """A prepared study: where it lies, its protocol, its methods (gray last) and its images."""

    root: Path
    protocol: Protocol
    methods: list[str]
    images: list[ImageEntry]
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def assets(self) -> Path:
        """The folder of the pictures."""
        return self.root / ASSETS

    @property
    def database(self) -> Path:
        """The answers' SQLite file."""
        return self.root / "answers.sqlite"

    def asset_path(self, asset_id: str) -> Path:
        """The file of an asset id; a ColorizationError for anything that is not a well-formed id."""
        if not isinstance(asset_id, str) or not _ASSET_ID.match(asset_id):
            raise ColorizationError(f"not an asset id: {asset_id!r}")
        return self.assets / f"{asset_id}.png"

    def save(self) -> Path:
        """Write study.json."""
        data = {
            "protocol": asdict(self.protocol),
            "methods": self.methods,
            "sources": self.sources,
            "images": [asdict(e) for e in self.images],
        }
        path = self.root / STUDY_FILE
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, root: str | Path) -> Study:
        """Read a prepared study; a one-line ColorizationError when the folder holds none."""
        root = Path(root)
        path = root / STUDY_FILE
        if not path.is_file():
            raise ColorizationError(
                f"{root} holds no study ({STUDY_FILE} missing): prepare one with "
                "python -m colorization.turing prepare"
            )
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            protocol = Protocol(**data["protocol"])
            images = [ImageEntry(**e) for e in data["images"]]
            study = cls(root, protocol, list(data["methods"]), images, dict(data.get("sources", {})))
        except (ValueError, KeyError, TypeError) as err:
            raise ColorizationError(f"{path} is not a study file: {err}") from None
        if not study.images or not study.methods:
            raise ColorizationError(f"{path} has no images or no methods")
        return study
