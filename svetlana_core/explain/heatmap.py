"""Heat maps as PNG images for the CLI (``gradcam``): the heat over the patch, outlined.

Torch-free: it draws arrays that :mod:`svetlana_core.explain.cam` computed."""

from __future__ import annotations

import math
import os
from io import BytesIO
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from skimage.segmentation import find_boundaries

from svetlana_core import io
from svetlana_core.errors import InputError

# A perceptual-ish ramp (dark blue, cyan, yellow, red) for the heat, anchors at 0, 1/3, 2/3, 1.
_RAMP = np.array([[0, 0, 160], [0, 200, 230], [255, 220, 0], [220, 20, 20]], dtype=np.float32)
# Colours of shown channels, in order (red, green, blue; then magenta, cyan, yellow), as the
# app's viewer composes multichannel images.
_CHANNEL_COLOURS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0]], dtype=np.float32
)


def _colour(heat: np.ndarray) -> np.ndarray:
    stops = np.linspace(0, 1, len(_RAMP))
    return np.stack([np.interp(heat, stops, _RAMP[:, k]) for k in range(3)], axis=-1)


def patch_rgb(patch: np.ndarray, channels: list[int] | None = None) -> np.ndarray:
    """The image channels of a 2D patch as colour, in [0, 1] (the mask channel left out).

    Three image channels are an RGB image: red, green, blue, stretched together (one min and
    max) so the colours keep their balance (H&E stays pink and purple). Otherwise the shown
    channels are stretched each on its own and coloured in order red, green, blue, magenta,
    cyan, yellow; one channel is grey. A mask-only patch shows its mask in grey.

    Parameters
    ----------
    patch : ndarray, shape (C + 1, rows, columns)
        Image channels, then the object mask.
    channels : list of int, optional
        The image channels to show (as the viewer's channel picker); default: all three of
        an RGB patch, else the first (at most six).

    Returns
    -------
    ndarray of float32, shape (rows, columns, 3)

    Examples
    --------
    >>> patch = np.zeros((4, 1, 2), np.float32); patch[0, 0, 1] = 2; patch[2, 0, 1] = 1
    >>> patch_rgb(patch)[0, 1].tolist()  # red at its max, blue at half of the shared max
    [1.0, 0.0, 0.5]
    """
    patch = np.nan_to_num(np.asarray(patch, dtype=np.float32))
    n_image = patch.shape[0] - 1
    if n_image == 0:
        planes, rgb = patch[:1], False
    else:
        rgb = n_image == 3
        if channels is None:
            channels = list(range(3 if rgb else min(n_image, len(_CHANNEL_COLOURS))))
        channels = [c for c in channels if 0 <= c < n_image][: len(_CHANNEL_COLOURS)] or [0]
        planes = patch[channels]
    if rgb:
        low, high = float(planes.min()), float(planes.max())
        scaled = (planes - low) / (high - low) if high > low else np.zeros_like(planes)
        colours = _CHANNEL_COLOURS[channels]  # each channel its own colour, even alone
    else:
        low = planes.min(axis=(1, 2), keepdims=True)
        span = planes.max(axis=(1, 2), keepdims=True) - low
        scaled = np.where(span > 0, (planes - low) / np.where(span > 0, span, 1), 0)
        colours = (np.ones((1, 3), np.float32) if len(planes) == 1
                   else _CHANNEL_COLOURS[: len(planes)])
    # (C, rows, columns) x (C, 3): each channel adds its colour, summed over channels
    return np.clip(np.tensordot(scaled, colours, axes=(0, 0)), 0, 1).astype(np.float32)


def heatmap_rgb(
    patch: np.ndarray,
    heat: np.ndarray,
    alpha: float = 0.5,
    min_side: int = 256,
    channels: list[int] | None = None,
) -> np.ndarray:
    """A heat map drawn over its patch in colour, as an 8-bit RGB picture.

    The patch's image channels are shown as :func:`patch_rgb` composes them (an RGB patch in
    its colours, one channel in grey), the heat is coloured from dark blue (0) to red (1)
    and blended in with opacity ``alpha * heat`` (so cold regions show the image), and the
    object's outline (from the patch's last channel, the object mask) is drawn in white. The
    picture is enlarged by a whole factor (nearest neighbour) until its longer side is at
    least ``min_side`` pixels. 3D patches show their middle plane.

    Parameters
    ----------
    patch : ndarray, shape (C, rows, columns) or (C, planes, rows, columns)
        The patch, as from :func:`~svetlana_core.explain.explain_object`.
    heat : ndarray, shape (rows, columns) or (planes, rows, columns)
        Values in [0, 1] (clipped), e.g. :attr:`~svetlana_core.explain.Explanation.heat`.
    alpha : float, default 0.5
        Opacity of the hottest colour.
    min_side : int, default 256
    channels : list of int, optional
        Image channels to show, as :func:`patch_rgb`.

    Returns
    -------
    ndarray of uint8, shape (rows * k, columns * k, 3)

    Raises
    ------
    InputError
        If the heat map's shape is not the patch's spatial shape.

    Examples
    --------
    >>> patch = np.zeros((2, 4, 4), np.float32); patch[1, 1:3, 1:3] = 1  # object in the middle
    >>> picture = heatmap_rgb(patch, np.zeros((4, 4)), min_side=8)
    >>> picture.shape, picture[0, 0].tolist(), picture[2, 2].tolist()
    ((8, 8, 3), [0, 0, 0], [255, 255, 255])
    """
    patch = np.asarray(patch, dtype=np.float32)
    heat = np.asarray(heat, dtype=np.float32)
    if patch.ndim not in (3, 4) or heat.shape != patch.shape[1:]:
        raise InputError(
            f"heat has shape {heat.shape} but patch has shape {patch.shape}; the heat map must "
            "have the patch's spatial shape (patch is (C, [planes,] rows, columns))"
        )
    if patch.ndim == 4:  # the middle plane of a 3D patch
        middle = patch.shape[1] // 2
        patch, heat = patch[:, middle], heat[middle]
    heat = np.clip(np.nan_to_num(heat), 0, 1)
    weight = (alpha * heat)[..., np.newaxis]
    rgb = (1 - weight) * 255 * patch_rgb(patch, channels) + weight * _colour(heat)
    outline = find_boundaries(patch[-1] > 0.5, mode="inner")
    rgb[outline] = 255
    factor = max(1, math.ceil(min_side / max(rgb.shape[:2])))
    rgb = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    return np.round(rgb).clip(0, 255).astype(np.uint8)


def save_heatmap_png(
    path: str | os.PathLike,
    patch: np.ndarray,
    heat: np.ndarray,
    alpha: float = 0.5,
    min_side: int = 256,
) -> Path:
    """Write :func:`heatmap_rgb` of a patch as an 8-bit RGB PNG.

    Written to a temporary file and renamed, so a reader never sees half a PNG.

    Parameters
    ----------
    path : str or path-like
        The PNG to write; its folder must exist.
    patch, heat, alpha, min_side
        As :func:`heatmap_rgb`.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        If the heat map's shape is not the patch's spatial shape, or the folder is missing.
    """
    buffer = BytesIO()
    iio.imwrite(buffer, heatmap_rgb(patch, heat, alpha, min_side), extension=".png")
    return io.atomic_write_bytes(path, buffer.getvalue())
