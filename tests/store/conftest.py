"""The project most store tests start from."""

from __future__ import annotations

from pathlib import Path

import pytest

from svetlana_core.store import Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project with two images (A01.png, B02.png) and two classes (live, dead)."""
    project = Project.create(tmp_path / "project")
    project.add_image(tmp_path / "images" / "A01.png", tmp_path / "masks" / "A01.tif", well="A01")
    project.add_image(tmp_path / "images" / "B02.png", tmp_path / "masks" / "B02.tif", axes="YXC")
    project.add_class("live")
    project.add_class("dead")
    return project
