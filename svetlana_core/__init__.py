"""Svetlana core: classify the objects of a segmentation mask with small neural networks.

The science and the storage, with no Streamlit import. Modules that do not need torch
(``io``, ``objects``, ``patches``, ``store``, ``stats``, ``demo``) import without it.
"""

from svetlana_core.errors import InputError

__all__ = ["InputError"]
__version__ = "0.1.0"
