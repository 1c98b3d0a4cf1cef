"""Fixtures shared by the test modules: the real configs composed into temporary folders, Lab batches.

Nothing here runs at collection time; data folders are made by the fixtures that need them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig
from support import compose_config, lab_batches


@pytest.fixture
def train_config(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose conf/train.yaml with overrides, writing into tmp_path (data under tmp_path/data by default)."""

    def make(
        overrides: list[str], output_dir: Path | None = None, data_dir: Path | None = None
    ) -> DictConfig:
        return compose_config(overrides, output_dir or tmp_path, data_dir or tmp_path / "data")

    return make


@pytest.fixture
def evaluate_config(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose conf/evaluate.yaml with overrides, writing into tmp_path."""

    def make(
        overrides: list[str], output_dir: Path | None = None, data_dir: Path | None = None
    ) -> DictConfig:
        return compose_config(overrides, output_dir or tmp_path, data_dir or tmp_path / "data", "evaluate")

    return make


@pytest.fixture(scope="module")
def shared_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder per test module (the synthetic set is generated once, on first use)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def batches() -> list[dict]:
    """Eight 32 px synthetic scenes as two Lab batches of four."""
    return lab_batches()
