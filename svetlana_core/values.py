"""Plain values: numeric checks and JSON-able copies shared by the config and model-folder checks.

A config or a model folder is JSON; these say whether a value is a real number and turn numpy
scalars, tuples and paths into what :func:`json.dumps` writes, so every writer agrees.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """Whether `value` is an integer (numpy integers included), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether `value` is a finite real number (numpy scalars included), not a bool."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def plain(value: Any) -> Any:
    """A JSON-able deep copy: tuples become lists, numpy scalars Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def json_safe(value: Any) -> Any:
    """A JSON-able deep copy, as :func:`plain`, with NaN and infinite floats as None.

    JSON has no NaN: ``json.dumps`` writes ``NaN``, which strict readers (browsers, ``jq``)
    refuse. Writers pass this and ``allow_nan=False``, so a missing metric is ``null``.

    Examples
    --------
    >>> json_safe({"f1": float("nan"), "n": np.int64(3), "shape": (2, 2)})
    {'f1': None, 'n': 3, 'shape': [2, 2]}
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    value = plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
