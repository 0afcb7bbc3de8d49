"""Svetlana core: classify the objects of a segmentation mask with small neural networks.

The science and the storage, with no Streamlit import. Modules that do not need torch
(``io``, ``objects``, ``patches``, ``store``, ``stats``, ``demo``) import without it.
"""

import os

# Idle OpenMP threads must sleep, not spin: with spinning threads a CPU forward pass can be
# 100x slower on a small machine (measured in bench/predict.py). Only effective before torch
# is first imported, which is why it sits in the package's __init__.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from svetlana_core.errors import InputError  # noqa: E402

__all__ = ["InputError"]
__version__ = "0.1.0"
