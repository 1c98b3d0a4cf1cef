"""A rater completes a short Turing study in a real browser (Playwright driving Debian's Chromium): the
practice trials with feedback, the scored trials and a vigilance trial, across a server restart; then the
results page shows the counts of every answer given, and a screenshot of it is saved."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from turing_support import ApiRater, StudyServer, make_study, other, real_side

from colorization.turing.store import Store
from colorization.turing.study import Protocol, Study

pytest.importorskip("starlette", reason="the turing extra (starlette, uvicorn) is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")

CHROMIUM = os.environ.get("COLORIZATION_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROTOCOL = Protocol(display_ms=1000, practice=2, trials=6, vigilance=0.15, size=96)
FOOLS = "warm"  # the browser rater takes this method's fakes for real, and spots every other fake


def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the test leaves what a person may look at: $COLORIZATION_TEST_ARTIFACTS or pytest's base temp."""
    folder = Path(
        os.environ.get("COLORIZATION_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def api_raters(url: str, study: Study) -> list[tuple[str, str, bool, bool]]:
    """Three raters through the API: one fooled by everything but gray, one by nothing, and one who fails
    the vigilance check; returns (rater, method, fooled, counted) for each scored trial."""
    log = []
    for fooled_by, fails in (({"warm", "cool"}, False), (set(), False), ({"warm", "cool", "gray"}, True)):
        rater = ApiRater(url)
        rid = rater.start()
        while not (trial := rater.trial())["done"]:
            kind, method, real = real_side(study, trial["trial"])
            fooled = (kind == "scored" and method in fooled_by) or (kind == "vigilance" and fails)
            assert rater.answer(trial["trial"], real if fooled else other(real)).status_code == 200
            if kind == "scored":
                log.append((rid, method, fooled, not fails))
        rater.close()
    return log


def browse_trials(page, study: Study, rater: str, count: int, log: list) -> None:
    """Answer `count` trials in the page as the browser rater does (see FOOLS)."""
    store = Store(study.database)
    for _ in range(count):
        page.wait_for_selector("#ready", state="visible")
        trial = store.current(rater)
        page.click("#show")
        page.wait_for_selector("#stimulus", state="visible")
        page.wait_for_selector("#question", state="visible")
        assert page.is_hidden("#stimulus")  # the pictures are gone before the question
        fooled = trial.kind == "scored" and trial.method == FOOLS
        answer = trial.real_side if fooled else other(trial.real_side)
        page.click(f"#fake-{answer}")
        if trial.kind == "practice":
            page.wait_for_selector("#feedback", state="visible")
            assert page.inner_text("#feedback").startswith("Right")
        if trial.kind == "scored":
            log.append((rater, trial.method, fooled, True))


@pytest.mark.slow
def test_a_rater_completes_a_study_in_chromium(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, capsys
) -> None:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    study = make_study(tmp_path, PROTOCOL)
    total = PROTOCOL.total
    assert PROTOCOL.vigilance_trials == 1 and total == 9
    with sync_api.sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1000, "height": 900},
        )
        page = browser.new_page()
        with StudyServer(study.root) as server:
            log = api_raters(server.url, study)
            page.goto(f"{server.url}/")
            page.click("#start")
            page.wait_for_url("**/study")
            rater = next(c["value"] for c in browser.cookies() if c["name"] == "turing_rater")
            browse_trials(page, study, rater, 4, log)  # the practice trials and two scored ones
            page.wait_for_selector("#ready", state="visible")
        answered_before_restart = Store(study.database).progress(rater)[0]
        assert answered_before_restart == 4
        with StudyServer(study.root) as server:  # a new server on the same study: the rater continues
            page.goto(f"{server.url}/study")
            page.wait_for_selector("#ready", state="visible")
            assert page.inner_text("#progress") == f"Trial 3 of {total - PROTOCOL.practice}"
            browse_trials(page, study, rater, total - 4, log)
            page.wait_for_selector("#done", state="visible")
            shown = page.evaluate("window.turingLog.map(e => e.shownMs)")
            page.goto(f"{server.url}/results")
            page.wait_for_selector("#chart")
            cells = {
                row.get_attribute("data-method"): (
                    int(row.query_selector(".trials").inner_text()),
                    int(row.query_selector(".fooled").inner_text()),
                )
                for row in page.query_selector_all("#methods tr[data-method]")
            }
            counts = {
                k: int(page.inner_text(f"#{k}")) for k in ("raters", "counted", "excluded-count", "scored")
            }
            shot = artifacts(tmp_path_factory) / "turing_results.png"
            page.screenshot(path=str(shot), full_page=True)
            figures = page.request.get(f"{server.url}/results.json").text()
        browser.close()
    assert len(shown) == total - 4 and all(950 <= ms <= 1400 for ms in shown), shown
    counted = [entry for entry in log if entry[3]]
    expected = {
        m: (sum(e[1] == m for e in counted), sum(e[1] == m and e[2] for e in counted)) for m in study.methods
    }
    assert cells == expected
    assert counts == {"raters": 4, "counted": 3, "excluded-count": 1, "scored": 3 * PROTOCOL.trials}
    assert expected[FOOLS][1] > 0 and expected["gray"][1] == 0
    assert shot.stat().st_size > 10_000
    with capsys.disabled():
        print(f"\nTuring study results page (browser test): {shot}")
    shutil.copy(study.root / "study.json", shot.parent / "turing_study.json")
    (shot.parent / "turing_results.json").write_text(figures)


@pytest.mark.slow
def test_the_sequential_layout_shows_one_photo_after_the_other(tmp_path: Path) -> None:
    """`--sequential`: the first photo alone, then the second alone, each for display_ms; the question
    names them first and second."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    study = make_study(
        tmp_path, Protocol(display_ms=600, layout="sequential", practice=1, trials=1, vigilance=0, size=64)
    )
    with (
        sync_api.sync_playwright() as pw,
        tempfile.TemporaryDirectory() as profile,
        StudyServer(study.root) as server,
    ):
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS
        )
        page = browser.new_page()
        page.goto(f"{server.url}/")
        page.click("#start")
        page.wait_for_selector("#ready", state="visible")
        page.click("#show")
        page.wait_for_selector("#left", state="visible")
        assert page.is_hidden("#right")
        page.wait_for_selector("#right", state="visible")
        assert page.is_hidden("#left")
        page.wait_for_selector("#question", state="visible")
        assert (page.inner_text("#fake-left"), page.inner_text("#fake-right")) == ("First", "Second")
        page.click("#fake-left")
        page.wait_for_selector("#feedback", state="visible")
        shown = page.evaluate("window.turingLog")
        browser.close()
    assert shown[0]["layout"] == "sequential" and 570 <= shown[0]["shownMs"] <= 900
    assert Store(study.database).progress(Store(study.database).raters()[0]) == (1, 2)
