"""Lazy exports for the packages that hold torch (models, training, predict, explain).

Their ``__init__`` maps each public name to the module that defines it; the module is imported
on first use. So ``import svetlana_core.training`` or ``from svetlana_core.training import
TrainConfig`` loads no torch, while ``training.train`` still works (PEP 562).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def attach(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for a package with lazy ``exports``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping
        Public name -> the module (absolute name) that defines it.

    Examples
    --------
    >>> getattr_, dir_, all_ = attach("pkg", {"sqrt": "math"})
    >>> getattr_("sqrt")(9.0), all_
    (3.0, ['sqrt'])
    """
    # The package is in sys.modules while its __init__ runs; a name fetched once is stored in
    # its namespace, so the next access skips __getattr__.
    module = sys.modules.get(package)
    namespace = None if module is None else module.__dict__

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        if namespace is not None:
            namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace or ()) | set(exports))

    return __getattr__, __dir__, sorted(exports)

