"""Plain values: numeric checks and JSON-able copies shared by the config and model-folder checks.

A config or a model folder is JSON; these say whether a value is a real number and turn numpy
scalars, tuples and paths into what :func:`json.dumps` writes, so every writer agrees.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


#: Default class colours, in the order they are handed out. The first six are Okabe & Ito's
#: colour-blind-safe set (their yellow left out: the viewer draws the contours of unlabelled
#: objects in yellow, ``ui.overlay.CONTOUR_COLOUR``; their black left out: unseen on
#: fluorescence); the other 14 come from Paul Tol's and ColorBrewer's qualitative schemes,
#: each chosen (greedily, mid-light colours only, so fills show on dark and bright
#: backgrounds) as the farthest in CIEDE2000 from those before it, the contour yellow, white,
#: black and the app's greys. Pairwise differences are >= 11 (tests/ui/test_ui_legend.py).
#: Projects give new classes the first unused one and keep the colours they stored; outputs
#: made without a project (GeoJSON, OME-Zarr labels from the CLI) colour the model's classes
#: in order.
PALETTE: tuple[str, ...] = (
    "#e69f00", "#56b4e9", "#009e73", "#0072b2", "#d55e00",
    "#cc79a7", "#994455", "#999933", "#b2df8a", "#fb9a99",
    "#d1bbd7", "#aa4499", "#117733", "#e31a1c", "#ddcc77",
    "#ee3377", "#997700", "#33a02c", "#ee8866", "#ff7f00",
)  # fmt: skip


def default_colours(classes: Sequence[str]) -> dict[str, str]:
    """Class name -> ``"#rrggbb"``, the palette in the order of `classes` (repeated past 20).

    >>> default_colours(["tumour", "immune"])
    {'tumour': '#e69f00', 'immune': '#56b4e9'}
    """
    return {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(classes)}


def rgb(colour: str | Sequence[int]) -> tuple[int, int, int]:
    """``"#rrggbb"`` (or an ``(r, g, b[, a])`` sequence) as three ints 0-255.

    >>> rgb("#3cb44b"), rgb([1, 2, 3, 255])
    ((60, 180, 75), (1, 2, 3))
    """
    if isinstance(colour, str):
        text = colour.lstrip("#")
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    r, g, b = (int(c) for c in colour[:3])
    return r, g, b


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
