"""A labelled disk project with a lock folder of its own, and the smallest training config."""

from __future__ import annotations

import pytest

from svetlana_core import jobs
from tests.builders import disk_project


@pytest.fixture
def project(tmp_path, monkeypatch):
    # a lock folder of this test's own, so concurrent test sessions never queue on each other
    monkeypatch.setenv(jobs.LOCK_DIR_ENV, str(tmp_path / "locks"))
    return disk_project(tmp_path / "project")


@pytest.fixture
def fast() -> dict:
    """A TrainConfig dict that trains a tiny network on the CPU in about a second an epoch."""
    return {"arch_params": {"depth": 1, "width": 4}, "patch_size": 16, "epochs": 2,
            "batch_size": 16, "device": "cpu", "patience": None}
