"""The distribution: `python -m build` makes a wheel and an sdist that install into a fresh venv and run."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_distribution_name_and_typed_marker() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "colorization-lab"  # "colorization" on PyPI is someone else's
    assert "py.typed" in meta["tool"]["setuptools"]["package-data"]["colorization"]
    assert (ROOT / "colorization" / "py.typed").is_file()


def _fresh_venv(folder: Path) -> Path:
    """A venv that sees this environment's packages (the dependencies, torch included: nothing to
    download) through a .pth path, but not its editable colorization (that finder is a .pth *file* of the
    site dir, and folders added by a .pth line do not run their own .pth files)."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    py = folder / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return py


@pytest.mark.slow
def test_wheel_and_sdist_install_into_a_fresh_venv(tmp_path: Path) -> None:
    pytest.importorskip("build", reason="the test extra's build is not installed")
    dist = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(dist.glob("colorization_lab-*.whl"))
    sdist = next(dist.glob("colorization_lab-*.tar.gz"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "colorization/py.typed" in names and "colorization/imaging/runtime.py" in names
    assert "colorization/turing/static/rater.js" in names
    for kind, artefact in (("wheel", wheel), ("sdist", sdist)):
        venv = tmp_path / f"venv-{kind}"
        py = _fresh_venv(venv)
        install = [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            str(artefact),
        ]  # sdist: setuptools fetched
        res = subprocess.run(install, capture_output=True, text=True, env=env, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        run = subprocess.run(
            [str(venv / "bin" / "colorize"), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert run.returncode == 0 and "--onnx" in run.stdout, run.stderr
        where = subprocess.run(
            [str(py), "-c", "import colorization; print(colorization.__file__)"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        ).stdout
        assert str(venv) in where, where  # the installed copy, not this checkout
