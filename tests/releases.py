"""Test fixtures in the layout of Zhang et al.'s released state dicts, built from the key names and shapes in
tests/data/zhang_release_state_dicts.json (random values: no release file is needed or downloaded), a local
HTTP server to fetch them from, and independent reference forwards of the two released architectures
written from the official layer facts with torch.nn.functional (so a key mapped to the wrong layer of the
same shape shows)."""

from __future__ import annotations

import functools
import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch
import torch.nn.functional as F

from colorization.color import ABGamut

LAYOUTS = Path(__file__).resolve().parent / "data" / "zhang_release_state_dicts.json"
FILES = {"eccv16": "colorization_release_v2", "siggraph17": "siggraph17"}


@functools.cache
def layout(name: str) -> dict[str, list[int]]:
    """Key → shape, in file order, of the released `name` ("eccv16" or "siggraph17")."""
    dicts = json.loads(LAYOUTS.read_text())["state_dicts"]
    return next(v for k, v in dicts.items() if k.startswith(name + " "))


def random_release(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the release's layout with random, well-scaled values (batch norms with positive
    variances); ECCV16's decoding matrix is the 313 bin centres / 110, as in the release."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in layout(name).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("running_mean"):
            state[key] = torch.randn(shape, generator=g) * 0.1
        elif len(shape) == 4:  # conv weight: variance-preserving scale
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        else:  # biases, batch-norm scales and shifts
            base = 1.0 if key.endswith(".weight") else 0.0  # a 1-D weight is a batch norm's scale
            state[key] = base + torch.randn(shape, generator=g) * 0.05
    if name == "eccv16":
        state["model_out.weight"] = (ABGamut.zhang().points / 110.0).t().reshape(2, 313, 1, 1).clone()
    return state


def save_release(name: str, folder: Path, seed: int = 0) -> tuple[Path, dict[str, torch.Tensor]]:
    """Save a random release under its torch-hub style name (<stem>-<first 8 hex of its SHA-256>.pth)."""
    state = random_release(name, seed)
    tmp = folder / f"{name}.tmp"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = folder / f"{FILES[name]}-{digest[:8]}.pth"
    tmp.rename(path)
    return path, state


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve `folder` on 127.0.0.1; yields (base URL, list of requested paths)."""
    requests: list[str] = []

    class Handler(_Quiet):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url(name: str) -> str:
    """A URL on 127.0.0.1 where nothing listens (offline)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


# ------------------------------------------------------------------ independent reference forwards
def _bn(x: torch.Tensor, s: dict[str, torch.Tensor], p: str) -> torch.Tensor:
    return F.batch_norm(x, s[p + ".running_mean"], s[p + ".running_var"], s[p + ".weight"], s[p + ".bias"])


def _conv(
    x: torch.Tensor, s: dict[str, torch.Tensor], p: str, stride: int = 1, dilation: int = 1
) -> torch.Tensor:
    return F.conv2d(x, s[p + ".weight"], s[p + ".bias"], stride=stride, padding=dilation, dilation=dilation)


def eccv16_reference(state: dict[str, torch.Tensor], L_n: torch.Tensor) -> torch.Tensor:
    """ab (Lab units) of the released ECCV16 forward: conv blocks, softmax, model_out, bilinear ×4, ×110."""
    x = L_n
    # (block, convolutions, dilation, index of the stride-2 convolution or None)
    for i, n, dil, down in ((1, 2, 1, 1), (2, 2, 1, 1), (3, 3, 1, 2), (4, 3, 1, None), (5, 3, 2, None),
                            (6, 3, 2, None), (7, 3, 1, None)):  # fmt: skip
        for j in range(n):
            x = F.relu(_conv(x, state, f"model{i}.{2 * j}", 2 if j == down else 1, dil))
        x = _bn(x, state, f"model{i}.{2 * n}")
    x = F.relu(F.conv_transpose2d(x, state["model8.0.weight"], state["model8.0.bias"], stride=2, padding=1))
    x = F.relu(_conv(x, state, "model8.2"))
    x = F.relu(_conv(x, state, "model8.4"))
    logits = F.conv2d(x, state["model8.6.weight"], state["model8.6.bias"])
    ab = F.conv2d(torch.softmax(logits, dim=1), state["model_out.weight"])  # the decoding matrix
    return 110.0 * F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)


def siggraph17_reference(
    state: dict[str, torch.Tensor], L_n: torch.Tensor, hints: torch.Tensor | None = None
) -> torch.Tensor:
    """ab (Lab units) of the released SIGGRAPH17 forward (cat of L, hint ab and mask; the U-Net)."""
    if hints is None:
        hints = torch.zeros(L_n.shape[0], 3, *L_n.shape[2:])
    x = torch.cat([L_n, hints], 1)
    feats = {}
    for i, n, dil in ((1, 2, 1), (2, 2, 1), (3, 3, 1), (4, 3, 1), (5, 3, 2), (6, 3, 2), (7, 3, 1)):
        if i in (2, 3, 4):
            x = x[:, :, ::2, ::2]
        for j in range(n):
            x = F.relu(_conv(x, state, f"model{i}.{2 * j}", 1, dil))
        x = feats[i] = _bn(x, state, f"model{i}.{2 * n}")
    for i, short, n in ((8, 3, 2), (9, 2, 1), (10, 1, 1)):
        up = F.conv_transpose2d(
            x, state[f"model{i}up.0.weight"], state[f"model{i}up.0.bias"], stride=2, padding=1
        )
        x = F.relu(up + _conv(feats[short], state, f"model{short}short{i}.0"))
        for j in range(n):
            x = _conv(x, state, f"model{i}.{2 * j + 1}")
            x = F.leaky_relu(x, 0.2) if i == 10 else F.relu(x)
        if i != 10:
            x = _bn(x, state, f"model{i}.{2 * n + 1}")
    return 110.0 * torch.tanh(F.conv2d(x, state["model_out.0.weight"], state["model_out.0.bias"]))
