"""What the Turing test's tests share: real photos (scikit-image's), folders of "colorized" copies, a
prepared study, a study server on 127.0.0.1 in a thread, and a rater that answers through the HTTP API."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from skimage import data as skdata

from colorization.turing.methods import Method, hue_rotated, parse_method
from colorization.turing.prepare import collect_photos, prepare_study
from colorization.turing.study import Protocol, Study

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel")


def write_photos(folder: Path, size: int = 96) -> list[str]:
    """scikit-image's colour photos as PNG files (downscaled, some not square); returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(PHOTOS):
        image = Image.fromarray(getattr(skdata, name)()[..., :3])
        image.thumbnail((size + 16 * k, size))
        image.save(folder / f"{name}.png")
    return list(PHOTOS)


def write_method_folder(photos: Path, folder: Path, degrees: float, suffix: str = ".jpg") -> Path:
    """A folder of fakes named like the originals: each photo with its hues turned by `degrees`."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(photos.glob("*.png")):
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        out = (hue_rotated(rgb, degrees) * 255).round().astype(np.uint8)
        Image.fromarray(out).save(folder / f"{path.stem}{suffix}")
    return folder


def make_study(root: Path, protocol: Protocol, methods: list[Method] | None = None, **kwargs: Any) -> Study:
    """A study of the test photos with two folder methods ("warm" and "cool") and the gray input."""
    photos = root / "photos"
    write_photos(photos)
    if methods is None:
        methods = [
            parse_method(f"warm={write_method_folder(photos, root / 'warm', 25.0)}"),
            parse_method(f"cool={write_method_folder(photos, root / 'cool', -60.0, '.png')}"),
        ]
    return prepare_study(
        root / "study", collect_photos([photos]), methods, protocol, progress=False, **kwargs
    )


def free_socket() -> socket.socket:
    """A socket bound to a free port on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class StudyServer:
    """The study's app under uvicorn on 127.0.0.1 in a background thread (`with StudyServer(...) as s:`)."""

    def __init__(self, study_dir: Path, token: str | None = None, resamples: int = 10_000) -> None:
        import uvicorn

        from colorization.turing.app import create_app

        self.app = create_app(study_dir, token=token, resamples=resamples)
        self.sock = free_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> StudyServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the study server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


class ApiRater:
    """One rater with their own cookie jar, answering through the HTTP API."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)

    def start(self) -> str:
        """Start the study (POST /start); returns the rater id from the cookie."""
        response = self.client.post("/start")
        assert response.status_code == 303, response.text
        return self.client.cookies["turing_rater"]

    def trial(self) -> dict[str, Any]:
        """The current trial's JSON."""
        response = self.client.get("/api/trial")
        assert response.status_code == 200, response.text
        return response.json()

    def answer(self, trial: str, fake: str) -> httpx.Response:
        """POST an answer."""
        return self.client.post("/api/answer", json={"trial": trial, "fake": fake})

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


def real_side(study: Study, trial_token: str) -> tuple[str, str, str]:
    """(kind, method, real side) of a stored trial: what the test knows and the rater does not."""
    from colorization.turing.store import Store

    found = [t for t in Store(study.database).trials(answered_only=False) if t.token == trial_token]
    assert len(found) == 1
    return found[0].kind, found[0].method, found[0].real_side


def other(side: str) -> str:
    """The other side."""
    return "right" if side == "left" else "left"
