"""The trials one rater answers, drawn once when the rater starts (and stored, so a restart changes nothing).

Order: the practice trials (with feedback), then the scored trials with the vigilance trials mixed in at
random places. Scored trials are balanced over the methods (each gets trials // methods, the remainder
goes to randomly chosen methods), and each photo is shown at most once to a rater as long as the study
has photos left (practice photos are used last): seeing the same real photo twice would tell it apart.
Each trial puts the real photo on a random side.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from colorization.turing.study import Study

__all__ = ["KINDS", "SIDES", "PlannedTrial", "plan_trials"]

KINDS = ("practice", "scored", "vigilance")
SIDES = ("left", "right")
VIGILANCE = "vigilance"


@dataclass(frozen=True)
class PlannedTrial:
    """One trial: its kind, the photo (index into study.images), the method of the fake (VIGILANCE for the
    hue-rotated check) and the side of the real photo."""

    kind: str
    image: int
    method: str
    real_side: str

    def assets(self, study: Study) -> tuple[str, str]:
        """The (left, right) asset ids of this trial."""
        entry = study.images[self.image]
        fake = entry.vigilance if self.method == VIGILANCE else entry.fakes[self.method]
        return (entry.real, fake) if self.real_side == "left" else (fake, entry.real)


class _Photos:
    """Photos in an order that repeats none before all were used (the `last` ones come at the end)."""

    def __init__(self, rng: random.Random, images: list[int], last: set[int]) -> None:
        self.rng, self.images, self.last = rng, images, last
        self.queue: list[int] = []

    def take(self, allowed: set[int] | None = None) -> int:
        if not self.queue:
            first = [i for i in self.images if i not in self.last]
            later = [i for i in self.images if i in self.last]
            self.rng.shuffle(first)
            self.rng.shuffle(later)
            self.queue = first + later
        for k, image in enumerate(self.queue):
            if allowed is None or image in allowed:
                return self.queue.pop(k)
        return self.rng.choice(sorted(allowed)) if allowed else self.queue.pop(0)


def _balanced(rng: random.Random, methods: list[str], n: int) -> list[str]:
    """n method names, each method n // len(methods) times, the remainder to random methods, shuffled."""
    names = methods * (n // len(methods)) + rng.sample(methods, n % len(methods))
    rng.shuffle(names)
    return names


def plan_trials(study: Study, rng: random.Random) -> list[PlannedTrial]:
    """Every trial of one rater, in the order they are shown."""
    p = study.protocol
    images = list(range(len(study.images)))
    side = lambda: rng.choice(SIDES)  # noqa: E731 - one draw per trial
    practice_photos = _Photos(rng, images, set())
    practice = [
        PlannedTrial("practice", practice_photos.take(), m, side())
        for m in _balanced(rng, study.methods, p.practice)
    ]
    used = {t.image for t in practice}
    photos = _Photos(rng, images, used)
    scored = [
        PlannedTrial("scored", photos.take(), m, side()) for m in _balanced(rng, study.methods, p.trials)
    ]
    checked = {i for i in images if study.images[i].vigilance}
    for _ in range(p.vigilance_trials if checked else 0):
        position = rng.randint(0, len(scored))
        scored.insert(position, PlannedTrial(VIGILANCE, photos.take(checked), VIGILANCE, side()))
    return practice + scored
