"""Shared fixtures: small synthetic data and the path to the real data in ../shared/data."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets beside the checkout; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (it sits beside the checkout in CI)")
    return SHARED_DATA
