"""Shared fixtures: small synthetic data and the path to the real data in ../shared/data."""

import os
from pathlib import Path

import pytest

# albumentations checks for updates over the network at import unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Before anything imports torch: idle OpenMP threads sleep instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets beside the checkout; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (it sits beside the checkout in CI)")
    return SHARED_DATA
