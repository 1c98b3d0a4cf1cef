"""The Turing test's numbers: the two-way bootstrap against a bare loop, fooling rates and counts against
a brute-force count of stored answers, vigilance exclusion, the pairwise probabilities, the written files."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
from turing_support import make_study

from colorization.turing.cli import main
from colorization.turing.protocol import VIGILANCE, PlannedTrial, plan_trials
from colorization.turing.report import results_csv
from colorization.turing.results import bootstrap_rates, compute_results, draw_resamples
from colorization.turing.store import Store
from colorization.turing.study import Protocol, Study


def test_bootstrap_matches_a_bare_loop() -> None:
    """Each resample's rate is Σ fooled / Σ shown over the drawn raters × drawn photos, duplicates counted."""
    rng = np.random.default_rng(1)
    shown = rng.integers(0, 3, size=(2, 5, 7)).astype(float)
    fooled = np.minimum(shown, rng.integers(0, 3, size=shown.shape))
    rater_draws, image_draws = draw_resamples(np.random.default_rng(2), 5, 7, 60)
    fast = bootstrap_rates(fooled, shown, rater_draws, image_draws, chunk=7)
    for b in range(60):
        for m in range(2):
            num = den = 0.0
            for r in rater_draws[b]:
                for i in image_draws[b]:
                    num += fooled[m, r, i]
                    den += shown[m, r, i]
            expected = num / den if den else np.nan
            assert np.isclose(fast[b, m], expected, equal_nan=True)


def answer_all(
    study: Study, store: Store, fooled_share: dict[str, float], seed: int, fail: bool = False
) -> str:
    """A rater who is fooled on about `fooled_share[method]` of that method's scored trials, right on
    practice, and right on vigilance trials unless `fail`."""
    rng = random.Random(seed)
    rater = store.add_rater(study, plan_trials(study, rng))
    while (trial := store.current(rater)) is not None:
        if trial.kind == VIGILANCE:
            fooled = fail
        else:
            fooled = trial.kind == "scored" and rng.random() < fooled_share.get(trial.method, 0.0)
        other = "right" if trial.real_side == "left" else "left"
        store.answer(rater, trial.token, trial.real_side if fooled else other)
    return rater


@pytest.fixture(scope="module")
def answered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Study, Store, list[str], str]:
    study = make_study(
        tmp_path_factory.mktemp("results"), Protocol(practice=1, trials=12, vigilance=0.2, size=32)
    )
    store = Store(study.database)
    shares = {"warm": 0.6, "cool": 0.25, "gray": 0.0}
    raters = [answer_all(study, store, shares, seed) for seed in range(12)]
    cheat = answer_all(study, store, {"gray": 1.0, "warm": 1.0, "cool": 1.0}, 99, fail=True)
    return study, store, raters, cheat


def test_fooling_rates_counts_and_intervals(answered) -> None:
    study, store, raters, cheat = answered
    results = compute_results(study, store, resamples=4000, seed=0)
    trials = store.trials()
    for m in results.methods:
        mine = [t for t in trials if t.kind == "scored" and t.method == m.method and t.rater in raters]
        assert (m.trials, m.fooled) == (len(mine), sum(t.fooled for t in mine))
        assert m.rate == pytest.approx(m.fooled / m.trials)
        assert m.low <= m.rate <= m.high
    by = {m.method: m for m in results.methods}
    assert by["gray"].rate == by["gray"].low == by["gray"].high == 0.0  # the floor: never fooled
    assert by["warm"].low > by["cool"].high - 0.3 and by["warm"].rate > by["cool"].rate
    assert results.counts == {
        "raters": 13,
        "raters_finished": 13,
        "raters_counted": 12,
        "raters_excluded": 1,
        "raters_unchecked": 0,
        "scored_trials": 12 * 12,
        "vigilance_trials": 13 * 2,
        "practice_trials": 13,
        "images": len(study.images),
    }
    excluded = [r for r in results.raters if r.passed is False]
    assert [r.rater for r in excluded] == [cheat] and excluded[0].vigilance_right == 0
    p = results.pairwise
    assert p["warm"]["gray"] == 1.0 and p["gray"]["warm"] == 0.0
    assert p["warm"]["cool"] + p["cool"]["warm"] == pytest.approx(1.0) and p["warm"]["cool"] > 0.9
    again = compute_results(study, store, resamples=4000, seed=0)
    assert [(m.low, m.high) for m in again.methods] == [(m.low, m.high) for m in results.methods]


def test_interval_narrows_with_more_raters(tmp_path: Path) -> None:
    """The same fooling behaviour over 4 raters gives a wider interval than over 16."""
    study = make_study(tmp_path, Protocol(practice=0, trials=12, vigilance=0.0, size=32))
    widths = []
    for count in (4, 16):
        store = Store(tmp_path / f"answers{count}.sqlite")
        for seed in range(count):
            answer_all(study, store, {"warm": 0.5, "cool": 0.5, "gray": 0.5}, seed)
        warm = next(m for m in compute_results(study, store, resamples=3000).methods if m.method == "warm")
        widths.append(warm.high - warm.low)
    assert widths[1] < 0.7 * widths[0]


def test_a_rater_not_yet_checked_counts_and_one_who_failed_does_not(tmp_path: Path) -> None:
    study = make_study(tmp_path, Protocol(practice=0, trials=2, vigilance=0.5, size=32))
    store = Store(study.database)
    plan = [
        PlannedTrial("scored", 0, "warm", "left"),
        PlannedTrial(VIGILANCE, 1, VIGILANCE, "left"),
        PlannedTrial("scored", 2, "cool", "right"),
    ]
    unchecked, failed = (store.add_rater(study, plan) for _ in range(2))
    for rater, answers in ((unchecked, ["left"]), (failed, ["left", "left"])):
        for side in answers:
            store.answer(rater, store.current(rater).token, side)
    results = compute_results(study, store, resamples=500)
    assert results.counts["raters_unchecked"] == 1 and results.counts["raters_excluded"] == 1
    assert results.counts["scored_trials"] == 1
    assert [(m.method, m.trials, m.fooled) for m in results.methods] == [
        ("warm", 1, 1),
        ("cool", 0, 0),
        ("gray", 0, 0),
    ]
    assert results.methods[1].rate is None and results.methods[1].low is None


def test_results_command_writes_csv_json_and_the_page(answered, capsys: pytest.CaptureFixture[str]) -> None:
    study, store, _, _ = answered
    assert main(["results", str(study.root), "--resamples", "1000"]) == 0
    out = capsys.readouterr().out
    assert "fooling rate per method" in out and "1 left out for failing vigilance" in out
    rows = list(csv.DictReader(io.StringIO((study.root / "results.csv").read_text())))
    data = json.loads((study.root / "results.json").read_text())
    assert [r["method"] for r in rows] == study.methods == [m["method"] for m in data["methods"]]
    for row, m in zip(rows, data["methods"], strict=True):
        assert int(row["trials"]) == m["trials"] and float(row["fooling_rate"]) == pytest.approx(
            m["rate"], abs=1e-6
        )
    assert data["bootstrap"] == {"resamples": 1000, "seed": 0, "over": ["raters", "images"]}
    page = (study.root / "results.html").read_text()
    assert page.count("class='bar'") == len(study.methods)
    assert "<svg" in page and "left out for failing vigilance" in page
    assert (
        results_csv(compute_results(study, store, resamples=1000)) == (study.root / "results.csv").read_text()
    )
    assert main(["results", str(study.root), "--resamples", "5"]) == 1
