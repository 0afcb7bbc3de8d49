"""Axis names of image arrays: guess them, check them, move them to canonical order."""

from __future__ import annotations

from typing import Any

import numpy as np

from svetlana_core.errors import InputError

_AXIS_LETTERS = "CZYX"
# tifffile axis codes we understand; any other code (Q, I, ...) means "unknown, guess".
_KNOWN_TIFF_AXES = frozenset("TZCYXS")


def guess_axes(shape: tuple[int, ...], ndim_hint: int | None = None) -> str:
    """Guess the axes of an array from its shape.

    The rule, in order:

    * 2 dimensions: ``"YX"``.
    * 3 dimensions:

      - ``ndim_hint == 3`` (the mask is a volume): ``"ZYX"``;
      - last axis of length 3 or 4 and first axis longer than 4: ``"YXC"`` (RGB / RGBA);
      - ``ndim_hint == 2`` (the mask is a plane): ``"CYX"``;
      - first axis of length 8 or less (a few channels): ``"CYX"``;
      - otherwise: ``"ZYX"`` (a stack of planes).

    * 4 dimensions: ``"ZCYX"`` (the ImageJ hyperstack order).

    Pass ``axes=`` to :func:`read_image` when the guess is wrong (for example a stack of 5 planes,
    which this rule reads as 5 channels unless a 3D mask gives the hint).

    Parameters
    ----------
    shape : tuple of int
        Shape of the array as stored in the file.
    ndim_hint : {None, 2, 3}, optional
        Number of spatial dimensions, when known (from the mask). It only settles 3D shapes.

    Returns
    -------
    str
        One of ``"YX"``, ``"YXC"``, ``"CYX"``, ``"ZYX"``, ``"ZCYX"``.

    Raises
    ------
    InputError
        If the shape has fewer than 2 or more than 4 dimensions, or ``ndim_hint`` is not 2 or 3.

    Examples
    --------
    >>> guess_axes((256, 256, 3))
    'YXC'
    >>> guess_axes((2, 256, 256))
    'CYX'
    >>> guess_axes((5, 256, 256), ndim_hint=3)
    'ZYX'
    """
    if ndim_hint not in (None, 2, 3):
        raise InputError(f"ndim_hint must be None, 2 or 3, got {ndim_hint!r}")
    shape = tuple(int(n) for n in shape)
    if len(shape) == 2:
        return "YX"
    if len(shape) == 3:
        if ndim_hint == 3:
            return "ZYX"
        if shape[2] in (3, 4) and shape[0] > 4:
            return "YXC"
        if ndim_hint == 2 or shape[0] <= 8:
            return "CYX"
        return "ZYX"
    if len(shape) == 4:
        return "ZCYX"
    raise InputError(
        f"cannot guess the axes of an array of shape {shape}: expected 2 to 4 dimensions "
        "(YX, YXC, CYX, ZYX or ZCYX)"
    )


def to_canonical(array: np.ndarray, axes: str) -> np.ndarray:
    """Reorder an array to the canonical channel-first layout.

    Parameters
    ----------
    array : ndarray
        Image as stored, with one dimension per letter of `axes`.
    axes : str
        Letters ``C`` (channels), ``Z`` (planes), ``Y`` (rows), ``X`` (columns), in the order of the
        dimensions of `array`; ``Y`` and ``X`` are required, each letter appears at most once,
        any case. For example ``"YX"``, ``"YXC"``, ``"CYX"``, ``"ZYX"``, ``"ZCYX"``, ``"CZYX"``.

    Returns
    -------
    ndarray
        ``(C, rows, columns)`` or ``(C, planes, rows, columns)``, same dtype, C-contiguous. It
        shares memory with `array` when no reordering is needed (``"YX"``, ``"CYX"``, ...).

    Raises
    ------
    InputError
        If `axes` has other letters, repeats one, lacks Y or X, or does not match ``array.ndim``.

    Examples
    --------
    >>> to_canonical(np.zeros((4, 5, 3)), "YXC").shape
    (3, 4, 5)
    >>> to_canonical(np.zeros((4, 5)), "YX").shape
    (1, 4, 5)
    """
    return _to_canonical(np.asarray(array), axes, "array")


def _to_canonical(array: np.ndarray, axes: str, what: str) -> np.ndarray:
    letters = _check_axes(axes, array.shape, what)
    order = [letters.index(letter) for letter in _AXIS_LETTERS if letter in letters]
    out = np.transpose(array, order)
    if "C" not in letters:
        out = out[np.newaxis]
    return np.ascontiguousarray(out)


def _check_axes(axes: Any, shape: tuple[int, ...], what: str) -> str:
    """Validate an axes string against a shape; return it upper-cased."""
    if not isinstance(axes, str):
        raise InputError(f"axes for {what} must be a string such as 'ZYX', got {axes!r}")
    letters = axes.upper()
    bad = sorted(set(letters) - set(_AXIS_LETTERS))
    if bad or len(set(letters)) != len(letters) or not {"Y", "X"} <= set(letters):
        raise InputError(
            f"axes {axes!r} for {what} are not valid: use the letters C, Z, Y, X, each at most "
            "once, with Y and X (e.g. 'YX', 'YXC', 'CYX', 'ZYX', 'ZCYX')"
        )
    if len(letters) != len(shape):
        raise InputError(
            f"axes {axes!r} do not fit {what} of shape {tuple(shape)}: "
            f"{len(letters)} axes for {len(shape)} dimensions"
        )
    return letters
