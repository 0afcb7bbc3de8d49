"""Cached loaders: images, masks, object tables and encoded previews.

``st.cache_resource`` holds the decoded arrays once per server (shared read-only by every
session, never copied); ``st.cache_data`` holds small derived values such as JPEG bytes.
Cache keys include the file's modification time, so a replaced file is read again (it is an
argument without a leading underscore: Streamlit leaves those out of the key).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from svetlana_core import io, objects
from ui import overlay


def _mtime(path: str | Path | None) -> float:
    # A missing or unreadable file (moved since it was added) gets a stamp of its own; reading
    # it then raises the InputError of svetlana_core.io that names it, which pages show.
    try:
        return Path(path).stat().st_mtime if path else 0.0
    except OSError:
        return -1.0


@st.cache_resource(max_entries=8, show_spinner="Reading image…")
def _pair(image_path: str, mask_path: str, axes: str | None, stamp: tuple) -> tuple:
    image, mask = io.load_pair(image_path, mask_path, axes=axes or None)
    if image is not None:
        image.setflags(write=False)
    mask.setflags(write=False)
    return image, mask


def load_pair(row) -> tuple[np.ndarray | None, np.ndarray]:
    """Image (channel-first) and mask of a row of ``Project.images()`` (read-only arrays)."""
    stamp = (_mtime(row["path"]), _mtime(row["mask_path"]))
    return _pair(str(row["path"]), str(row["mask_path"]), row.get("axes"), stamp)


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
        view = overlay.crop(image, viewport)
        shown = overlay.composite(view, _limits, list(channels) if channels else None, rgb)
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
