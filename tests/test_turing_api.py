"""The Turing study's web API on a real server on 127.0.0.1: many raters at once, a server killed in the
middle of a session, every bad request, the results' token, and nothing that tells a rater which is real."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image
from support import ROOT
from turing_support import PHOTOS, ApiRater, StudyServer, free_socket, make_study, other, real_side

from colorization.turing.store import Store
from colorization.turing.study import Protocol, Study

pytest.importorskip("starlette", reason="the turing extra (starlette, uvicorn) is not installed")
pytest.importorskip("uvicorn", reason="the turing extra (starlette, uvicorn) is not installed")

PROTOCOL = Protocol(practice=2, trials=6, vigilance=0.2, size=32)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return make_study(tmp_path_factory.mktemp("api"), PROTOCOL)


def snapshot(study: Study) -> list:
    """Everything stored that an answer could change (raters, trials, answers)."""
    store = Store(study.database)
    return [store.raters(), store.trials(answered_only=False)]


def complete(rater: ApiRater, study: Study, fooled_by: set[str]) -> list[tuple[str, str, bool]]:
    """Answer every trial: fooled (pick the real photo) on scored trials of `fooled_by`, else right;
    returns (kind, method, fooled) per trial."""
    log = []
    while not (trial := rater.trial())["done"]:
        kind, method, real = real_side(study, trial["trial"])
        fooled = kind == "scored" and method in fooled_by
        reply = rater.answer(trial["trial"], real if fooled else other(real))
        assert reply.status_code == 200, reply.text
        assert reply.json()["feedback"] == ("right" if kind == "practice" else None)
        log.append((kind, method, fooled))
    return log


def test_many_raters_at_once(study: Study) -> None:
    """Eight raters answer at the same time; every answer is stored once, and the results count exactly
    what they sent."""
    fooled_by = [{"warm"}, {"warm", "cool"}, set(), {"cool"}] * 2
    with StudyServer(study.root) as server:
        raters = [ApiRater(server.url) for _ in fooled_by]
        ids = [r.start() for r in raters]
        with ThreadPoolExecutor(len(raters)) as pool:
            logs = list(pool.map(lambda k: complete(raters[k], study, fooled_by[k]), range(len(raters))))
        results = httpx.get(f"{server.url}/results.json", timeout=30).json()
        for r in raters:
            r.close()
    assert len(set(ids)) == len(ids)
    stored = Store(study.database).trials()
    mine = [t for t in stored if t.rater in ids]
    assert len(mine) == sum(len(log) for log in logs) == len(ids) * PROTOCOL.total
    assert results["counts"]["raters_excluded"] == 0 and results["counts"]["raters"] >= len(ids)
    for method in ("warm", "cool", "gray"):
        sent = [f for log in logs for kind, m, f in log if kind == "scored" and m == method]
        row = next(m for m in results["methods"] if m["method"] == method)
        assert (row["trials"], row["fooled"]) == (len(sent), sum(sent))


def serve(study: Study, port: int, host: str = "127.0.0.2") -> tuple[subprocess.Popen, str | None]:
    """`python -m colorization.turing serve` in its own process; returns it and the token it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    args = ["serve", str(study.root), "--host", host, "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "colorization.turing", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines, token = [], None
    while len(lines) < 4:
        line = proc.stdout.readline()
        assert line, f"the server stopped: {lines}"
        lines.append(line)
        if m := re.search(r"token for results and exports: (\S+)", line):
            token = m.group(1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://{host}:{port}/", timeout=2)
            return proc, token
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not answer")


def test_a_killed_server_loses_nothing_and_the_rater_continues(study: Study) -> None:
    """Kill -9 the server in the middle of a session: after a restart the rater's cookie finds the same
    trial, every earlier answer is there, and the study completes. Opened with --host, the results need
    the token printed at start."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc, token = serve(study, port)
    url = f"http://127.0.0.2:{port}"
    try:
        assert token
        rater = ApiRater(url)
        rater_id = rater.start()
        for _ in range(4):
            trial = rater.trial()
            _, _, real = real_side(study, trial["trial"])
            assert rater.answer(trial["trial"], other(real)).status_code == 200
        before = rater.trial()
    finally:
        proc.kill()
        proc.wait()
    stored = [t for t in Store(study.database).trials() if t.rater == rater_id]
    assert len(stored) == 4
    proc, token = serve(study, port)
    try:
        rater.client = httpx.Client(base_url=url, cookies=rater.client.cookies, timeout=30)
        assert rater.trial() == before
        complete(rater, study, set())
        done = [t for t in Store(study.database).trials() if t.rater == rater_id]
        assert len(done) == PROTOCOL.total and all(t.correct for t in done)
        assert httpx.get(f"{url}/results").status_code == 403
        assert httpx.get(f"{url}/results.csv?token=wrong").status_code == 403
        assert (
            httpx.get(f"{url}/results.json", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
        page = httpx.get(f"{url}/results?token={token}")
        assert page.status_code == 200 and "fooling rate" in page.text
    finally:
        proc.kill()
        proc.wait()


def test_bad_requests_get_4xx_and_change_nothing(study: Study) -> None:
    with StudyServer(study.root) as server:
        a, b = ApiRater(server.url), ApiRater(server.url)
        a.start()
        b.start()
        first = a.trial()
        _, _, real = real_side(study, first["trial"])
        assert a.answer(first["trial"], other(real)).status_code == 200
        current, theirs = a.trial(), b.trial()
        store = Store(study.database)
        answered = [t for t in store.trials() if t.token == first["trial"]][0]
        future = [
            t for t in store.trials(answered_only=False) if t.rater == answered.rater and t.position == 3
        ][0]
        before = snapshot(study)
        tampered = current["trial"][:-1] + ("A" if current["trial"][-1] != "A" else "B")
        asset = study.images[0].real
        raw = httpx.Client(base_url=server.url, timeout=30)
        cases = [
            (a.answer("x" * 24, "left"), 404),  # unknown trial
            (a.answer(tampered, "left"), 404),  # a tampered id
            (a.answer(theirs["trial"], "left"), 404),  # someone else's trial
            (a.answer(first["trial"], real), 409),  # a second answer
            (a.answer(future.token, "left"), 409),  # not the current trial
            (a.answer(current["trial"], "middle"), 400),
            (a.answer(current["trial"], None), 400),
            (a.client.post("/api/answer", content=b"{not json"), 400),
            (a.client.post("/api/answer", json=["left"]), 400),
            (raw.post("/api/answer", json={"trial": current["trial"], "fake": "left"}), 401),  # no cookie
            (
                raw.post(
                    "/api/answer",
                    json={"trial": current["trial"], "fake": "left"},
                    cookies={"turing_rater": "f" * 24},
                ),
                401,
            ),
            (raw.get("/api/trial"), 401),
            (a.client.get(f"/img/{b.trial()['left'].rsplit('/', 1)[1]}"), 200),  # b's picture: still served
            (a.client.get(f"/img/{future.left_token}"), 404),  # a picture of a later trial
            (a.client.get(f"/img/{answered.left_token}"), 404),  # a picture of an answered trial
            (a.client.get(f"/img/{asset}"), 404),  # an asset id is no image token
            (a.client.get(f"/assets/{asset}.png"), 404),
            (a.client.get("/study.json"), 404),
            (a.client.get("/answers.sqlite"), 404),
        ]
        for path in (
            "/img/..%2Fstudy.json",
            "/img/..%2F..%2Fassets%2F" + asset + ".png",
            "/img/%2e%2e/study.json",
        ):
            cases.append((raw.send(raw.build_request("GET", httpx.URL(server.url + path))), 404))
        for response, status in cases:
            assert response.status_code == status, (response.request.url, response.text)
            if status >= 400 and response.headers.get("content-type", "").startswith("application/json"):
                assert response.json()["error"]
        assert snapshot(study) == before
        assert a.trial() == current
        for client in (a, b):
            client.close()
        raw.close()


def test_nothing_a_rater_sees_tells_which_is_real(study: Study) -> None:
    """Trial JSON holds tokens, progress and timing only; image URLs are fresh tokens (not asset ids);
    both pictures have the same size and format; the real photo is left and right about equally often."""
    names = set(study.methods) | set(PHOTOS) | {"vigilance", "scored", "real_side", "kind"}
    assets = {e.real for e in study.images} | {a for e in study.images for a in e.fakes.values()}
    real_left = []
    with StudyServer(study.root) as server:
        pages = [httpx.get(f"{server.url}{p}").text for p in ("/", "/static/rater.js")]
        for _ in range(6):
            rater = ApiRater(server.url)
            rater.start()
            pages.append(rater.client.get("/study").text)
            while not (trial := rater.trial())["done"]:
                assert set(trial) == {
                    "done",
                    "trial",
                    "phase",
                    "number",
                    "of",
                    "left",
                    "right",
                    "display_ms",
                    "layout",
                }
                assert trial["phase"] in ("practice", "trial")
                shown = [rater.client.get(trial[side]) for side in ("left", "right")]
                sizes = set()
                for response in shown:
                    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
                    assert response.headers["cache-control"] == "no-store"
                    with Image.open(io.BytesIO(response.content)) as im:
                        sizes.add((im.size, im.mode, tuple(sorted(im.info))))
                assert len(sizes) == 1
                tokens = [trial[side].rsplit("/", 1)[1] for side in ("left", "right")]
                assert not set(tokens) & assets and trial["trial"] not in tokens
                pages.append(str(trial))
                kind, _, real = real_side(study, trial["trial"])
                real_left.append(real == "left")
                rater.answer(trial["trial"], "left")
            rater.close()
    text = " ".join(pages).lower()
    for name in names:
        assert not re.search(rf"\b{re.escape(name.lower())}\b", text), name
    assert 0.2 < np.mean(real_left) < 0.8  # 60 random sides (the exact balance: test_one_raters_plan)
