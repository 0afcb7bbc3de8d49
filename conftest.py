"""Environment for every test and doctest (tests/ and svetlana_core/), set before any import."""

import os

# albumentations checks for updates over the network at import unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Before anything imports torch: idle OpenMP threads sleep instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
