"""The study's web application (Starlette, served by uvicorn): rater pages, the trial API, the pictures
under per-trial tokens, and the results (page, CSV, JSON).

    GET  /                 welcome page (start, or continue for a returning rater)
    POST /start            a new rater: their plan is drawn and stored, a cookie names them
    GET  /study            the trial page (static/rater.js runs the trials)
    GET  /api/trial        the rater's current trial: two image URLs, timing, progress ({"done": true}
                           at the end)
    POST /api/answer       {"trial": TOKEN, "fake": "left"|"right"}; practice trials get feedback
    GET  /img/TOKEN        one picture of the current trial (no-store)
    GET  /results(.csv|.json)  the results; with a token (`--host`), only with ?token= or a Bearer header

A bad request (unknown or tampered trial, a second answer, a trial that is not the current one, a path
that is no token) gets a 4xx and changes nothing. Nothing a rater sees names the method, the photo or
which side is real: trial and image tokens are random, and both pictures are sized and encoded alike.
"""

from __future__ import annotations

import random
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

from colorization.turing.pages import study_page, welcome_page
from colorization.turing.protocol import plan_trials
from colorization.turing.report import results_csv, results_page
from colorization.turing.results import RESAMPLES, compute_results
from colorization.turing.store import AnswerError, Store
from colorization.turing.study import Study

__all__ = ["COOKIE", "create_app"]

COOKIE = "turing_rater"
NO_STORE = {"Cache-Control": "no-store"}


def create_app(study_dir: str | Path, token: str | None = None, resamples: int = RESAMPLES) -> Any:
    """The ASGI app of a prepared study; `token` (None: open results) guards the results and exports."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
    from starlette.routing import Route

    study = Study.load(study_dir)
    store = Store(study.database)
    script = (resources.files("colorization.turing") / "static" / "rater.js").read_text(encoding="utf-8")

    def rater_of(request: Request) -> str | None:
        rater = request.cookies.get(COOKIE)
        return rater if store.has_rater(rater) else None

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=NO_STORE)

    def allowed(request: Request) -> bool:
        if token is None:
            return True
        given = request.query_params.get("token") or request.headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        return secrets.compare_digest(given.encode(), token.encode())

    async def welcome(request: Request) -> Response:
        returning = await run_in_threadpool(rater_of, request) is not None
        return HTMLResponse(welcome_page(study.protocol, returning), headers=NO_STORE)

    async def start(request: Request) -> Response:
        rater = await run_in_threadpool(rater_of, request)
        if rater is None:
            plan = plan_trials(study, random.Random(secrets.randbits(64)))
            rater = await run_in_threadpool(store.add_rater, study, plan)
        response = RedirectResponse("/study", status_code=303)
        response.set_cookie(COOKIE, rater, max_age=90 * 24 * 3600, httponly=True, samesite="strict")
        return response

    async def study_view(request: Request) -> Response:
        if await run_in_threadpool(rater_of, request) is None:
            return RedirectResponse("/", status_code=303)
        return HTMLResponse(study_page(), headers=NO_STORE)

    async def rater_js(request: Request) -> Response:
        return Response(script, media_type="text/javascript", headers=NO_STORE)

    async def trial(request: Request) -> Response:
        rater = await run_in_threadpool(rater_of, request)
        if rater is None:
            return error(401, "no rater: start the study at /")
        current = await run_in_threadpool(store.current, rater)
        if current is None:
            return JSONResponse({"done": True}, headers=NO_STORE)
        _, total = await run_in_threadpool(store.progress, rater)
        practice = current.kind == "practice"
        first = 0 if practice else study.protocol.practice
        return JSONResponse(
            {
                "done": False,
                "trial": current.token,
                "phase": "practice" if practice else "trial",
                "number": current.position - first + 1,
                "of": study.protocol.practice if practice else total - study.protocol.practice,
                "left": f"/img/{current.left_token}",
                "right": f"/img/{current.right_token}",
                "display_ms": study.protocol.display_ms,
                "layout": study.protocol.layout,
            },
            headers=NO_STORE,
        )

    async def answer(request: Request) -> Response:
        rater = await run_in_threadpool(rater_of, request)
        if rater is None:
            return error(401, "no rater: start the study at /")
        try:
            body = await request.json()
        except ValueError:
            return error(400, 'the body must be JSON: {"trial": TOKEN, "fake": "left" or "right"}')
        if not isinstance(body, dict):
            return error(400, "the body must be a JSON object")
        try:
            done = await run_in_threadpool(store.answer, rater, body.get("trial"), body.get("fake"))
        except AnswerError as err:
            return error(err.status, str(err))
        feedback = ("right" if done.correct else "wrong") if done.kind == "practice" else None
        return JSONResponse({"ok": True, "feedback": feedback}, headers=NO_STORE)

    async def image(request: Request) -> Response:
        asset = await run_in_threadpool(store.image, request.path_params["token"])
        if asset is None:
            return error(404, "no such picture")
        data = await run_in_threadpool(study.asset_path(asset).read_bytes)
        return Response(data, media_type="image/png", headers=NO_STORE)

    def results_or_refusal(request: Request) -> Any:
        if not allowed(request):
            return error(403, "the results need the token printed when the server started (?token=...)")
        return compute_results(study, store, resamples=resamples)

    async def results(request: Request) -> Response:
        found = await run_in_threadpool(results_or_refusal, request)
        if isinstance(found, Response):
            return found
        title = f"Colorization Turing test: {study.root.name}"
        return HTMLResponse(results_page(found, title, token), headers=NO_STORE)

    async def results_json(request: Request) -> Response:
        found = await run_in_threadpool(results_or_refusal, request)
        return found if isinstance(found, Response) else JSONResponse(found.as_dict(), headers=NO_STORE)

    async def results_csv_view(request: Request) -> Response:
        found = await run_in_threadpool(results_or_refusal, request)
        if isinstance(found, Response):
            return found
        return Response(results_csv(found), media_type="text/csv", headers=NO_STORE)

    routes = [
        Route("/", welcome),
        Route("/start", start, methods=["POST"]),
        Route("/study", study_view),
        Route("/static/rater.js", rater_js),
        Route("/api/trial", trial),
        Route("/api/answer", answer, methods=["POST"]),
        Route("/img/{token}", image),
        Route("/results", results),
        Route("/results.json", results_json),
        Route("/results.csv", results_csv_view),
    ]
    app = Starlette(routes=routes)
    app.state.study = study
    app.state.store = store
    return app
