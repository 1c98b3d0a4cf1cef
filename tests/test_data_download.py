"""Downloads from a local HTTP server: good archive, bad checksum, truncated transfer, resume; extraction."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from colorization.data.download import download, extract
from colorization.data.sources import Archive, Mirflickr
from colorization.errors import DataUnavailableError


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


class Server:
    """A threaded HTTP server on 127.0.0.1 serving byte blobs; can cut a response short; honours Range."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate_next: dict[str, int] = {}  # path -> bytes to send before closing, for the next request
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                cut = server.truncate_next.pop(self.path, None)
                self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture()
def server():
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


ARCHIVE = _tar_gz({f"pets/images/Bengal_{i}.png": _png(i) for i in range(3)})
SHA = hashlib.sha256(ARCHIVE).hexdigest()
MD5 = hashlib.md5(ARCHIVE).hexdigest()


def test_good_archive_downloads_verifies_and_extracts(server, tmp_path):
    server.files["/a.tar.gz"] = ARCHIVE
    dest = download(
        server.url("/a.tar.gz"), tmp_path / "dl" / "a.tar.gz", sha256=SHA, md5=MD5, progress=False
    )
    assert dest.read_bytes() == ARCHIVE
    assert not (tmp_path / "dl" / "a.tar.gz.part").exists()
    out = extract(dest, tmp_path / "out")
    assert sorted(p.name for p in (out / "pets" / "images").iterdir()) == [
        f"Bengal_{i}.png" for i in range(3)
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folder left
    # a second call with the file in place does not hit the network
    n = len(server.requests)
    download(server.url("/a.tar.gz"), dest, sha256=SHA, progress=False)
    assert len(server.requests) == n


def test_bad_checksum_is_rejected_and_nothing_left(server, tmp_path):
    server.files["/a.tar.gz"] = ARCHIVE
    with pytest.raises(DataUnavailableError, match="sha256") as info:
        download(server.url("/a.tar.gz"), tmp_path / "a.tar.gz", sha256="0" * 64, progress=False)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_truncated_transfer_fails_and_keeps_part_for_resume(server, tmp_path):
    server.files["/a.tar.gz"] = ARCHIVE
    server.truncate_next["/a.tar.gz"] = 100
    dest = tmp_path / "a.tar.gz"
    with pytest.raises(DataUnavailableError, match="resume"):
        download(server.url("/a.tar.gz"), dest, sha256=SHA, attempts=1, progress=False)
    assert not dest.exists()
    part = tmp_path / "a.tar.gz.part"
    assert part.read_bytes() == ARCHIVE[:100]


def test_interrupted_download_resumes_with_range(server, tmp_path):
    server.files["/a.tar.gz"] = ARCHIVE
    dest = tmp_path / "a.tar.gz"
    server.truncate_next["/a.tar.gz"] = 700
    with pytest.raises(DataUnavailableError):
        download(server.url("/a.tar.gz"), dest, md5=MD5, attempts=1, progress=False)
    # next call resumes from byte 700 and completes
    download(server.url("/a.tar.gz"), dest, md5=MD5, progress=False)
    assert dest.read_bytes() == ARCHIVE
    assert server.requests[-1] == ("/a.tar.gz", "bytes=700-")
    # within one call, an early cut is retried from where it stopped
    dest2 = tmp_path / "b.tar.gz"
    server.truncate_next["/a.tar.gz"] = 50
    download(server.url("/a.tar.gz"), dest2, sha256=SHA, attempts=2, progress=False)
    assert dest2.read_bytes() == ARCHIVE
    assert server.requests[-1] == ("/a.tar.gz", "bytes=50-")


def test_missing_url_and_no_network_are_one_line_errors(server, tmp_path):
    with pytest.raises(DataUnavailableError, match="cannot download") as info:
        download(server.url("/nope.zip"), tmp_path / "x.zip", progress=False)
    assert "\n" not in str(info.value)
    with pytest.raises(DataUnavailableError, match="cannot download"):
        download("http://127.0.0.1:9/x.zip", tmp_path / "y.zip", attempts=1, timeout=2, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_extract_is_atomic_on_a_corrupt_archive(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(ARCHIVE[: len(ARCHIVE) // 2])
    with pytest.raises(DataUnavailableError):
        extract(bad, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz"]
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not an archive")
    with pytest.raises(DataUnavailableError, match="neither"):
        extract(junk, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz", "junk.zip"]


def test_extract_refuses_path_traversal(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.txt", "x")
    (tmp_path / "e.zip").write_bytes(buf.getvalue())
    with pytest.raises(DataUnavailableError, match="escapes"):
        extract(tmp_path / "e.zip", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()


def test_downloaded_source_end_to_end(server, tmp_path, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(4):
            zf.writestr(f"mirflickr/im{i}.jpg", _png(10 + i))
    server.files["/mirflickr25k.zip"] = buf.getvalue()
    monkeypatch.setattr(Mirflickr, "archive", Archive(server.url("/mirflickr25k.zip"), "mirflickr25k.zip"))
    src = Mirflickr(tmp_path / "mf")
    with pytest.raises(DataUnavailableError, match="save it as"):
        src.prepare(download=False)
    src.prepare()
    assert src.ready()
    assert (tmp_path / "mf" / "mirflickr25k" / "mirflickr" / "im3.jpg").is_file()
