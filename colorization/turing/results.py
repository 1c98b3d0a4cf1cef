"""The numbers of a study: who passed the vigilance checks, each method's fooling rate with a bootstrap
interval, and how likely one method fools more often than another.

Fooling rate: the share of a method's scored trials in which the rater picked the real photo as the fake
(the fake passed for real); 50 % is chance, what a perfect colorization reaches. Only raters who pass the
vigilance checks count (a rater with no vigilance answer yet is counted, and reported as unchecked).

Interval: trials are not independent (one rater answers many, one photo is seen by many), so the bootstrap
resamples both at once: raters with replacement and photos with replacement, and each resample's rate
weighs every trial by how often its rater and its photo were drawn (rate_b = Σ w_r w_i F_ri / Σ w_r w_i
N_ri, F fooled and N shown counts of rater r on photo i). The 95 % interval is the 2.5 and 97.5
percentiles over the resamples (10,000 by default). Every method is measured on the same resamples, so
P(A fools more than B) is the share of resamples in which A's rate beats B's (ties count half).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from colorization.turing.protocol import VIGILANCE
from colorization.turing.store import Store, Trial
from colorization.turing.study import Study

__all__ = ["MethodResult", "RaterCheck", "Results", "bootstrap_rates", "compute_results", "draw_resamples"]

RESAMPLES = 10_000


@dataclass
class RaterCheck:
    """One rater: answered and planned trials, vigilance trials answered and right, and the verdict."""

    rater: str
    answered: int
    total: int
    vigilance_seen: int
    vigilance_right: int
    passed: bool | None  # None: no vigilance trial answered yet

    @property
    def finished(self) -> bool:
        """Every trial answered."""
        return self.answered == self.total


@dataclass
class MethodResult:
    """One method's fooling rate over the counted raters, with its 95 % bootstrap interval."""

    method: str
    trials: int
    fooled: int
    rate: float | None
    low: float | None
    high: float | None


@dataclass
class Results:
    """Everything the results page, CSV and JSON show."""

    methods: list[MethodResult]
    pairwise: dict[str, dict[str, float | None]]
    raters: list[RaterCheck]
    resamples: int
    seed: int
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "counts": self.counts,
            "methods": [asdict(m) for m in self.methods],
            "pairwise": self.pairwise,
            "raters": [{**asdict(r), "finished": r.finished} for r in self.raters],
            "bootstrap": {"resamples": self.resamples, "seed": self.seed, "over": ["raters", "images"]},
        }


def rater_checks(trials: list[Trial], planned: dict[str, int], vigilance_pass: float) -> list[RaterCheck]:
    """The vigilance verdict of every rater (planned: rater → number of trials in their plan)."""
    checks = []
    for rater, total in planned.items():
        own = [t for t in trials if t.rater == rater]
        vig = [t for t in own if t.kind == VIGILANCE]
        right = sum(t.correct for t in vig)
        passed = None if not vig else right / len(vig) >= vigilance_pass - 1e-12
        checks.append(RaterCheck(rater, len(own), total, len(vig), right, passed))
    return checks


def draw_resamples(
    rng: np.random.Generator, n_raters: int, n_images: int, resamples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Index draws of the two-way bootstrap: (resamples × raters, resamples × images), with replacement."""
    return (
        rng.integers(0, n_raters, size=(resamples, n_raters)),
        rng.integers(0, n_images, size=(resamples, n_images)),
    )


def _counts(draws: np.ndarray, n: int) -> np.ndarray:
    """How often each index was drawn, per resample (resamples × n)."""
    out = np.zeros((draws.shape[0], n))
    np.add.at(out, (np.arange(draws.shape[0])[:, None], draws), 1.0)
    return out


def bootstrap_rates(
    fooled: np.ndarray, shown: np.ndarray, rater_draws: np.ndarray, image_draws: np.ndarray, chunk: int = 1000
) -> np.ndarray:
    """Fooling rates (resamples × methods; NaN where a resample holds no trial of the method) from counts
    `fooled` and `shown` (methods × raters × images) and the index draws of `draw_resamples`."""
    n_methods, n_raters, n_images = shown.shape
    out = np.empty((rater_draws.shape[0], n_methods))
    for start in range(0, rater_draws.shape[0], chunk):
        wr = _counts(rater_draws[start : start + chunk], n_raters)
        wi = _counts(image_draws[start : start + chunk], n_images)
        for m in range(n_methods):
            num = ((wr @ fooled[m]) * wi).sum(axis=1)
            den = ((wr @ shown[m]) * wi).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start : start + chunk, m] = np.where(den > 0, num / den, np.nan)
    return out


def _pairwise(methods: list[str], rates: np.ndarray) -> dict[str, dict[str, float | None]]:
    """P(row method fools more than column method) over the resamples where both have trials."""
    table: dict[str, dict[str, float | None]] = {}
    for a, name_a in enumerate(methods):
        table[name_a] = {}
        for b, name_b in enumerate(methods):
            if a == b:
                continue
            both = np.isfinite(rates[:, a]) & np.isfinite(rates[:, b])
            if not both.any():
                table[name_a][name_b] = None
                continue
            ra, rb = rates[both, a], rates[both, b]
            table[name_a][name_b] = float(np.mean(ra > rb) + 0.5 * np.mean(ra == rb))
    return table


def compute_results(study: Study, store: Store, resamples: int = RESAMPLES, seed: int = 0) -> Results:
    """The study's results from its stored answers."""
    answered = store.trials(answered_only=True)
    planned: dict[str, int] = {r: 0 for r in store.raters()}
    for t in store.trials(answered_only=False):
        planned[t.rater] = planned.get(t.rater, 0) + 1
    raters = rater_checks(answered, planned, study.protocol.vigilance_pass)
    counted = {r.rater for r in raters if r.passed is not False}
    scored = [t for t in answered if t.kind == "scored" and t.rater in counted]
    rater_ids = sorted({t.rater for t in scored})
    image_ids = sorted({t.image for t in scored})
    methods = list(study.methods)
    fooled = np.zeros((len(methods), len(rater_ids), len(image_ids)))
    shown = np.zeros_like(fooled)
    r_index = {r: k for k, r in enumerate(rater_ids)}
    i_index = {i: k for k, i in enumerate(image_ids)}
    m_index = {m: k for k, m in enumerate(methods)}
    for t in scored:
        if t.method in m_index:
            key = (m_index[t.method], r_index[t.rater], i_index[t.image])
            shown[key] += 1
            fooled[key] += t.fooled
    if scored:
        rng = np.random.default_rng(seed)
        rates = bootstrap_rates(
            fooled, shown, *draw_resamples(rng, len(rater_ids), len(image_ids), resamples)
        )
    else:
        rates = np.full((resamples, len(methods)), np.nan)
    per_method = []
    for m, name in enumerate(methods):
        n, k = int(shown[m].sum()), int(fooled[m].sum())
        finite = rates[:, m][np.isfinite(rates[:, m])]
        low, high = (float(v) for v in np.percentile(finite, [2.5, 97.5])) if finite.size else (None, None)
        per_method.append(MethodResult(name, n, k, k / n if n else None, low, high))
    counts = {
        "raters": len(raters),
        "raters_finished": sum(r.finished for r in raters),
        "raters_counted": len(counted),
        "raters_excluded": sum(r.passed is False for r in raters),
        "raters_unchecked": sum(r.passed is None for r in raters),
        "scored_trials": len(scored),
        "vigilance_trials": sum(t.kind == VIGILANCE for t in answered),
        "practice_trials": sum(t.kind == "practice" for t in answered),
        "images": len(image_ids),
    }
    return Results(per_method, _pairwise(methods, rates), raters, resamples, seed, counts)
