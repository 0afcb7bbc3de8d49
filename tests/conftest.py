"""Shared fixtures: small synthetic data, data roots, and the path to the real data in
../shared/data."""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets beside the checkout; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (it sits beside the checkout in CI)")
    return SHARED_DATA


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """Two data roots (``lab``, ``share``) and a folder ``outside`` that neither contains."""
    roots = {name: tmp_path / name for name in ("lab", "share", "outside")}
    for folder in roots.values():
        folder.mkdir()
    (roots["outside"] / "secret.txt").write_text("not for the app")
    (roots["share"] / "plates").mkdir()
    monkeypatch.setenv("SVETLANA_DATA_ROOT", f"{roots['lab']}{os.pathsep}{roots['share']}")
    return roots


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty data root for the app (``$SVETLANA_DATA_ROOT``): projects go in ``projects/``."""
    monkeypatch.setenv("SVETLANA_DATA_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture
def demo(data_root):
    """The demo project in :func:`data_root`, as the app's "Open the demo project" makes it."""
    from svetlana_core.demo import create_demo

    return create_demo(data_root / "projects" / "demo")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app serving the demo project on 127.0.0.1, for a module's browser tests:
    ``(url, project)``."""
    from svetlana_core.demo import create_demo
    from tests.browser_server import app_server

    root = tmp_path_factory.mktemp("root")
    project = create_demo(root / "projects" / "demo")
    with app_server(root) as url:
        yield url, project
