"""Cached loaders: images, masks, pyramids, object tables and encoded previews.

Decoded images, masks and their pyramids live in :data:`ui.pyramid.CACHE`, one LRU bounded by
bytes for the whole server (``SVETLANA_CACHE_MB``), shared read-only by every session and
never copied: ``st.cache_resource`` bounds entries, not bytes, and eight 8000² masks are
2 GB. ``st.cache_resource`` still holds small derived values (object tables, limits, the
views on screen) and ``st.cache_data`` the JPEG bytes. Cache keys include the file's
modification time, so a replaced file is read again (it is an argument without a leading
underscore: Streamlit leaves those out of the key).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from svetlana_core import io, objects
from ui import overlay, pyramid


def _mtime(path: str | Path | None) -> float:
    # A missing or unreadable file (moved since it was added) gets a stamp of its own; reading
    # it then raises the InputError of svetlana_core.io that names it, which pages show.
    try:
        return Path(path).stat().st_mtime if path else 0.0
    except OSError:
        return -1.0


def smallest_labels(mask: np.ndarray) -> np.ndarray:
    """``mask`` in the smallest unsigned dtype that holds its labels (the same array when it
    already is): a uint32 8000² mask of 10,000 objects takes 128 MB as uint16, not 256.

    >>> smallest_labels(np.array([[0, 300]], np.int64)).dtype
    dtype('uint16')
    """
    if mask.size == 0 or mask.dtype == bool or int(mask.min()) < 0:
        return mask
    for dtype in (np.uint8, np.uint16, np.uint32):
        if int(mask.max()) <= np.iinfo(dtype).max:
            return mask if mask.dtype == dtype else mask.astype(dtype)
    return mask


def _read_pair(image_path: str, mask_path: str, axes: str | None) -> tuple:
    with st.spinner("Reading image…"):
        image, mask = io.load_pair(image_path, mask_path, axes=axes or None)
    mask = smallest_labels(mask)
    if image is not None:
        image.setflags(write=False)
    mask.setflags(write=False)
    return image, mask


def load_pair(row) -> tuple[np.ndarray | None, np.ndarray]:
    """Image (channel-first) and mask of a row of ``Project.images()`` (read-only arrays).

    Held in :data:`ui.pyramid.CACHE`; the mask in its smallest unsigned dtype
    (:func:`smallest_labels`).
    """
    key = ("pair", str(row["path"]), str(row["mask_path"]), row.get("axes"),
           _mtime(row["path"]), _mtime(row["mask_path"]))
    return pyramid.CACHE.get(key, lambda: _read_pair(*key[1:4]))


def image_levels(image_key: str, image: np.ndarray, plane: int | None,
                 channels: tuple | None) -> tuple[np.ndarray, ...]:
    """Pyramid levels (:func:`ui.pyramid.build`) of the shown plane and channels of an image,
    made once per image, plane and channel choice and kept in :data:`ui.pyramid.CACHE`."""
    def make():
        data = image if plane is None else image[:, plane]
        if channels:
            data = data[list(channels)]
        return pyramid.build(data)

    return pyramid.CACHE.get(("levels", image_key, plane, channels), make)


def file_key(row) -> str:
    """What identifies the files of a row, as they are now, in the keys of cached previews."""
    return (f"{row['path']}|{row['mask_path']}|"
            f"{_mtime(row['path'])}|{_mtime(row['mask_path'])}")


@st.cache_resource(max_entries=16, show_spinner=False)
def _table(mask_path: str, stamp: float, _mask: np.ndarray) -> pd.DataFrame:
    return objects.object_table(_mask)


def object_table(row, mask: np.ndarray) -> pd.DataFrame:
    """The object table of an image's mask (cached per mask file)."""
    return _table(str(row["mask_path"]), _mtime(row["mask_path"]), mask)


@st.cache_resource(max_entries=16, show_spinner=False)
def _limits(image_path: str, stamp: float, _image: np.ndarray, plane: int | None,
            low: float, high: float, shared: bool = False) -> np.ndarray:
    data = _image if plane is None else _image[:, plane]
    return overlay.channel_limits(data, low, high, shared=shared)


def display_limits(row, image: np.ndarray, plane: int | None, low: float, high: float,
                   shared: bool = False):
    """Per-channel display range (percentiles), cached per image, plane and contrast;
    ``shared``: one range for all channels (an RGB image, :func:`overlay.channel_limits`)."""
    return _limits(str(row["path"]), _mtime(row["path"]), image, plane, low, high, shared)


@st.cache_resource(max_entries=8, show_spinner=False)
def _base_view(image_key: str, _image: np.ndarray | None, _mask: np.ndarray,
               viewport: overlay.Viewport, plane: int | None, channels: tuple | None,
               _limits: np.ndarray | None, limits_key: tuple, rgb: bool = False) -> tuple:
    """The view without colours: RGB, the mask crop and its contours (read-only, shared)."""
    mask = _mask if plane is None else _mask[plane]
    mask_view = np.ascontiguousarray(overlay.crop(mask, viewport))
    if _image is None:
        grey = (mask_view > 0).astype(np.uint8) * 90
        shown = np.repeat(grey[..., None], 3, axis=-1)
    else:
        image = _image if plane is None else _image[:, plane]
        # The pyramid holds the chosen channels only, in the order chosen (a false-colour
        # composite colours them by that order); RGB colours a channel by its index, so
        # an RGB image keeps all three.
        chosen = None if rgb or not channels else tuple(channels)
        levels = image_levels(image_key, _image, plane, chosen)
        view = pyramid.crop(image, levels, viewport, chosen)
        if chosen is None:
            shown = overlay.composite(view, _limits, list(channels) if channels else None, rgb)
        else:
            shown = overlay.composite(view, _limits[list(chosen)], list(range(len(chosen))))
    edges = overlay.boundaries(mask_view)
    for array in (shown, mask_view, edges):
        array.setflags(write=False)
    return shown, mask_view, edges


@st.cache_data(max_entries=64, show_spinner=False)
def preview_jpeg(image_key: str, _image: np.ndarray | None, _mask: np.ndarray,
                 viewport: overlay.Viewport, plane: int | None, channels: tuple | None,
                 _limits: np.ndarray | None, limits_key: tuple,
                 colours: tuple[tuple[int, str], ...], highlight: int | None = None,
                 rgb: bool = False) -> bytes:
    """JPEG bytes of the viewport with contours and class colours (cached).

    Arrays are passed unhashed (leading underscore) and identified by ``image_key``,
    ``limits_key`` and the other hashable arguments; ``rgb`` as :func:`overlay.composite`.
    """
    base, mask_view, edges = _base_view(image_key, _image, _mask, viewport, plane, channels,
                                        _limits, limits_key, rgb)
    if highlight is None:
        out = overlay.fill_labels(base, mask_view, edges, dict(colours))
    else:
        out = overlay.overlay(base, mask_view, dict(colours), highlight=highlight)
    return overlay.encode_jpeg(out)


@st.cache_data(max_entries=16, show_spinner=False)
def overview_jpeg(image_key: str, _image: np.ndarray | None, _mask: np.ndarray,
                  plane: int | None, channels: tuple | None, _limits: np.ndarray | None,
                  limits_key: tuple, rgb: bool = False) -> bytes:
    """JPEG bytes of the whole image from its smallest pyramid level (at most
    :data:`ui.pyramid.MIN_LEVEL_SIDE` px a side), for the navigation overview; the objects
    of a mask-only image in grey."""
    mask = _mask if plane is None else _mask[plane]
    if _image is None:
        stride = max(1, -(-max(mask.shape) // pyramid.MIN_LEVEL_SIDE))
        grey = (mask[::stride, ::stride] > 0).astype(np.uint8) * 160
        return overlay.encode_jpeg(np.repeat(grey[..., None], 3, axis=-1))
    chosen = None if rgb or not channels else tuple(channels)
    image = _image if plane is None else _image[:, plane]
    smallest, _ = pyramid.overview_level(image if chosen is None else None,
                                         image_levels(image_key, _image, plane, chosen))
    if smallest is None:  # a small image has no levels: it is its own overview
        smallest = image if chosen is None else image[list(chosen)]
    if chosen is None:
        shown = overlay.composite(smallest, _limits, list(channels) if channels else None, rgb)
    else:
        shown = overlay.composite(smallest, _limits[list(chosen)], list(range(len(chosen))))
    return overlay.encode_jpeg(shown, quality=80)
