"""Checks of label masks and channel-first images: the one place their error messages live.

Every function that takes a mask or an image array (object tables, features, patches) checks it
here, so the same mistake gets the same message wherever it is made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from svetlana_core.errors import InputError

#: Names of the axes of 2D and 3D masks, as object tables name their columns
#: (``centroid_row``, ``bbox_plane_start``, ...).
SPATIAL_AXES = {2: ("row", "column"), 3: ("plane", "row", "column")}
_LAYOUTS = {2: "(C, rows, columns)", 3: "(C, planes, rows, columns)"}


def check_mask(mask: Any, name: str = "mask") -> np.ndarray:
    """The mask as an array, or an :class:`InputError` saying why it is not a label mask.

    Labels are not checked for negatives here (that needs a pass over the pixels):
    :func:`check_labels` does it on values the caller has computed anyway.

    Parameters
    ----------
    mask : array-like
        Integer labels, shape (rows, columns) or (planes, rows, columns), 0 = background.
    name : str
        What the mask is, for the message (e.g. ``"mask masks/A01.tif"``).

    Returns
    -------
    ndarray
        `mask` itself when it is already an array (no copy).

    Raises
    ------
    InputError
        If the mask is not integer (bool and float included) or not 2D / 3D.

    Examples
    --------
    >>> check_mask(np.zeros((2, 3), np.uint16)).shape
    (2, 3)
    >>> check_mask(np.zeros((2, 3)))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    svetlana_core.errors.InputError: mask has dtype float64; expected integer labels (0 = ...
    """
    mask = np.asarray(mask)
    if mask.dtype == bool or not np.issubdtype(mask.dtype, np.integer):
        hint = (
            ": a bool mask marks pixels, not objects: number them first (scipy.ndimage.label)"
            if mask.dtype == bool
            else f", not {mask.dtype} values"
        )
        raise InputError(
            f"{name} has dtype {mask.dtype}; expected integer labels "
            f"(0 = background, one integer per object){hint}"
        )
    if mask.ndim not in SPATIAL_AXES:
        raise InputError(
            f"{name} has shape {mask.shape}; expected 2D (rows, columns) "
            "or 3D (planes, rows, columns)"
        )
    return mask


def check_labels(labels: np.ndarray, name: str = "mask") -> None:
    """Refuse negative labels, given labels (or runs of labels) read from a mask.

    Parameters
    ----------
    labels : ndarray of int
        Values of the mask, e.g. its unique values; any size, empty allowed.
    name : str
        What the mask is, for the message.

    Raises
    ------
    InputError
        If a label is below 0.
    """
    if np.issubdtype(labels.dtype, np.signedinteger) and labels.size and labels.min() < 0:
        raise InputError(
            f"{name} has negative labels (smallest {labels.min()}); labels must be >= 0"
        )


def check_image(
    image: Any, mask: np.ndarray | None = None, name: str = "image"
) -> np.ndarray:
    """The image as a channel-first array, or an :class:`InputError` saying what is wrong.

    Parameters
    ----------
    image : array-like
        Shape (C, rows, columns) or (C, planes, rows, columns), integer, float or bool pixels.
    mask : ndarray, optional
        The label mask the image goes with: its shape must be ``image.shape[1:]``.
    name : str
        What the image is, for the message.

    Returns
    -------
    ndarray
        `image` (no copy); a bool image is viewed as uint8.

    Raises
    ------
    InputError
        If the pixels are not numbers (complex included), the image is not channel-first 2D /
        3D, has no channel, or does not have the spatial shape of `mask`.

    Examples
    --------
    >>> check_image(np.zeros((2, 4, 5)), np.zeros((4, 5), np.uint8)).shape
    (2, 4, 5)
    >>> check_image(np.zeros((1, 4, 4)), np.zeros((4, 5), np.uint8))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    svetlana_core.errors.InputError: image has shape (1, 4, 4) (spatial (4, 4)) but mask has ...
    """
    image = np.asarray(image)
    numeric = np.issubdtype(image.dtype, np.number) or image.dtype == bool
    if not numeric or np.issubdtype(image.dtype, np.complexfloating):
        raise InputError(f"{name} has dtype {image.dtype}; expected integer or float pixels")
    if image.ndim not in (3, 4):
        raise InputError(
            f"{name} has shape {image.shape}; expected channel-first "
            f"{_LAYOUTS[2]} or {_LAYOUTS[3]}"
        )
    if image.shape[0] == 0:
        raise InputError(f"{name} has shape {image.shape}: no channels")
    if mask is not None and image.shape[1:] != mask.shape:
        spatial = f" (spatial {image.shape[1:]})" if image.ndim == mask.ndim + 1 else ""
        raise InputError(
            f"{name} has shape {image.shape}{spatial} but mask has shape {mask.shape}; "
            f"expected {name} of shape (C, {', '.join(map(str, mask.shape))}), channel-first "
            f"{_LAYOUTS.get(mask.ndim, _LAYOUTS[2])}"
        )
    if image.dtype == bool:
        image = image.view(np.uint8)
    return image
