"""Resumable, verified downloads and atomic archive extraction (urllib only: works wherever Python does)."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from colorization.errors import DataUnavailableError

CHUNK = 1 << 20


def file_digest(path: str | Path, algorithm: str) -> str:
    """Hex digest of a file (sha256, md5, ...), read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(
    path: str | Path, sha256: str | None = None, md5: str | None = None, size: int | None = None
) -> str | None:
    """Check size and checksums of a file; returns None when it matches, else a one-line reason.

    A `sha256` shorter than the 64 hex digits is a prefix of the digest (torch.hub's convention: the 8 or
    more hex digits after the dash in a published file's name, e.g. ``resnet18-f37072fd.pth``).
    """
    path = Path(path)
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"size {actual} bytes, expected {size}"
    for name, expected in (("sha256", sha256), ("md5", md5)):
        if expected is not None:
            got = file_digest(path, name)
            prefix = name == "sha256" and len(expected) < len(got)
            matches = got.lower().startswith(expected.lower()) if prefix else got.lower() == expected.lower()
            if not matches:
                return f"{name} {got}, expected {expected}{'...' if prefix else ''}"
    return None


def _progress(total: int | None, description: str, enabled: bool):
    """A rich progress bar for bytes (or a no-op when disabled)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=True,
    )
    task = progress.add_task(description, total=total)
    return progress, task


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One HTTP request appending to part from its current size; raises on a short or failed transfer."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "colorization-data/0.1"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part file is already complete
            return
        raise
    with response:
        status = response.status
        if have and status != 206:  # the server ignored Range: start over
            have = 0
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        total = have + expected if expected is not None else None
        received = 0
        bar, task = _progress(total, f"download {part.name[:-5]}", progress)
        with bar, open(part, "ab" if have else "wb") as f:
            bar.update(task, completed=have)
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                f.write(block)
                received += len(block)
                bar.update(task, advance=len(block))
    if expected is not None and received < expected:
        raise ConnectionError(f"transfer ended after {have + received} of {total} bytes")


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    attempts: int = 3,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download url to dest, resuming a dest.part left by an earlier try; verify before renaming.

    A checksum mismatch deletes the part file (nothing is left behind); a transfer that stops early keeps
    it, is resumed with an HTTP Range request (up to `attempts` tries while bytes keep coming), and the
    next call resumes it too.
    Every failure is a one-line DataUnavailableError.
    """
    dest = Path(dest)
    if dest.exists() and verify_file(dest, sha256, md5, size) is None:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    error: Exception | None = None
    for _ in range(max(1, attempts)):
        before = part.stat().st_size if part.exists() else 0
        try:
            _fetch_once(url, part, timeout, progress)
            error = None
            break
        except urllib.error.HTTPError as exc:
            error = exc
            if 400 <= exc.code < 500:
                break
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError) as exc:
            error = exc
        if (part.stat().st_size if part.exists() else 0) <= before:
            break  # no progress (no network, refused, timed out): retrying would only make the user wait
    if error is not None:
        reason = getattr(error, "reason", None) or error
        have = part.stat().st_size if part.exists() else 0
        tail = f"; {have} bytes kept in {part}, run again to resume" if have else ""
        raise DataUnavailableError(
            f"cannot download {url} ({reason}){tail}; or fetch it by hand and save it as {dest}"
        )
    mismatch = verify_file(part, sha256, md5, size)
    if mismatch is not None:
        part.unlink(missing_ok=True)
        raise DataUnavailableError(f"download of {url} rejected: {mismatch}; the partial file was removed")
    os.replace(part, dest)
    return dest


def _safe_zip_members(archive: zipfile.ZipFile, target: Path) -> None:
    """Refuse zip members that would land outside the target folder."""
    root = target.resolve()
    for name in archive.namelist():
        if not (root / name).resolve().is_relative_to(root):
            raise DataUnavailableError(
                f"archive member {name!r} escapes the target folder; refusing to extract"
            )


def extract(archive: str | Path, target: str | Path) -> Path:
    """Extract a tar or zip archive into target atomically: into a sibling temp folder, then os.replace.

    target must not exist yet; on any error the temp folder is removed and target stays absent.
    """
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.extract-", dir=target.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _safe_zip_members(zf, tmp)
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")
        else:
            raise DataUnavailableError(
                f"{archive} is neither a zip nor a tar archive; delete it and download again"
            )
        os.replace(tmp, target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataUnavailableError(
            f"cannot extract {archive} ({exc}); delete it and download again"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
