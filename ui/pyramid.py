"""Image pyramids for the viewer, and the byte-bounded cache that holds them and the images.

A view of a large image shrunk ``step`` times is cut from the pyramid level that is ``f``
times smaller, ``f`` the largest power of two that divides ``step``, with a stride of
``step / f``: an 8000² image shown at step 8 reads a contiguous 1000² level instead of
striding through 64 MB, and each displayed pixel is the mean of the image pixels it stands
for (striding level 0 shows one pixel in 64 and aliases).

Click mapping is unchanged (:class:`ui.overlay.Viewport`): display pixel ``d`` shows image
pixel ``row + d * step`` of the mask, and the pyramid pixel drawn there is the mean of the
``f`` x ``f`` block that holds that image pixel, because
``floor((row + d * step) / f) = row // f + d * (step / f)`` when ``f`` divides ``step``.

No Streamlit import: the cache is a plain thread-safe LRU, so it is tested directly and its
bound holds across every session of the server (``st.cache_resource`` bounds entries, not
bytes: eight 8000² masks are 2 GB).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

from ui.overlay import Viewport

#: Default bound of :data:`CACHE`, in MiB; ``SVETLANA_CACHE_MB`` overrides it.
DEFAULT_CACHE_MB = 400
#: Levels are made until the larger side is at most this many pixels (the overview's size).
MIN_LEVEL_SIDE = 256
#: Rows halved at a time: bounds the temporaries to a band (an 8000-column uint8 image needs
#: ~4 MB of uint32 sums per band instead of 256 MB for the whole image).
BAND_ROWS = 512


def nbytes(value) -> int:
    """Bytes held by ``value``: the arrays it is made of (tuples and lists summed)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return 0


class ByteLRU:
    """A least-recently-used cache bounded by the bytes of its values (thread-safe).

    Parameters
    ----------
    max_bytes : int
        Bound on the sum of :func:`nbytes` of the values kept. A value larger than the bound
        is returned but not kept.

    Examples
    --------
    >>> cache = ByteLRU(max_bytes=200)
    >>> a = cache.get("a", lambda: np.zeros(100, np.uint8))
    >>> b = cache.get("b", lambda: np.zeros(100, np.uint8))
    >>> c = cache.get("c", lambda: np.zeros(100, np.uint8))  # "a" goes
    >>> sorted(cache.keys()), cache.bytes
    (['b', 'c'], 200)
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._items: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()
        # One lock per key being made: two sessions opening one image read it once, and a
        # slow read does not block the other keys.
        self._making: dict[Hashable, threading.Lock] = {}

    def keys(self) -> list:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0

    def get(self, key: Hashable, make: Callable[[], object]):
        """The value under ``key``, made with ``make()`` (once) when it is not kept."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
            making = self._making.setdefault(key, threading.Lock())
        with making:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key][0]
            value = make()
            size = nbytes(value)
            with self._lock:
                self._making.pop(key, None)
                if size <= self.max_bytes:
                    self._items[key] = (value, size)
                    self.bytes += size
                    while self.bytes > self.max_bytes:
                        _, (_, dropped) = self._items.popitem(last=False)
                        self.bytes -= dropped
            return value


def cache_mb() -> int:
    """The cache bound in MiB: ``SVETLANA_CACHE_MB`` or :data:`DEFAULT_CACHE_MB`.

    Raises
    ------
    ValueError
        When the variable is set to something other than a positive whole number.
    """
    text = os.environ.get("SVETLANA_CACHE_MB", "").strip()
    if not text:
        return DEFAULT_CACHE_MB
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"SVETLANA_CACHE_MB must be a positive number of MiB, found {text!r}")
    return int(text)


#: The server's one cache of decoded images, masks and pyramids (shared by every session).
CACHE = ByteLRU(cache_mb() * 2**20)


def halve(image: np.ndarray) -> np.ndarray:
    """The 2 x 2 block means of the last two axes, in the input's dtype.

    An odd side repeats its last row or column, so the result has ``ceil(side / 2)``
    pixels and pixel ``i`` covers input pixels ``2i`` and ``2i + 1``.

    Parameters
    ----------
    image : (..., rows, columns) array

    Returns
    -------
    (..., ceil(rows / 2), ceil(columns / 2)) array, new.

    Examples
    --------
    >>> halve(np.array([[0, 2, 4], [2, 4, 6]], np.uint8)).tolist()
    [[2, 5]]
    """
    rows, columns = image.shape[-2:]
    if columns % 2:
        image = np.concatenate([image, image[..., -1:]], axis=-1)
    integer = np.issubdtype(image.dtype, np.integer)
    acc = np.int64 if integer else np.float64
    out = np.empty(image.shape[:-2] + ((rows + 1) // 2, image.shape[-1] // 2), image.dtype)
    for start in range(0, rows, BAND_ROWS):  # a band at a time bounds the temporaries
        band = image[..., start:start + BAND_ROWS, :]
        if band.shape[-2] % 2:
            band = np.concatenate([band, band[..., -1:, :]], axis=-2)
        total = (band[..., 0::2, 0::2].astype(acc) + band[..., 1::2, 0::2]
                 + band[..., 0::2, 1::2] + band[..., 1::2, 1::2])
        if integer:
            out[..., start // 2:start // 2 + total.shape[-2], :] = (total + 2) // 4
        else:
            out[..., start // 2:start // 2 + total.shape[-2], :] = total / 4
    return out


def build(image: np.ndarray, min_side: int = MIN_LEVEL_SIDE) -> tuple[np.ndarray, ...]:
    """Pyramid levels 1, 2, … of a channel-first image (level ``k`` is ``2**k`` times smaller).

    Parameters
    ----------
    image : (C, rows, columns) array
    min_side : int
        Stop once the larger side of a level is at most this.

    Returns
    -------
    tuple of (C, rows_k, columns_k) arrays, read-only; empty when the image is that small.
    Level 0 (the image itself) is not copied.
    """
    levels = []
    level = image
    while max(level.shape[-2:]) > min_side:
        level = halve(level)
        level.setflags(write=False)
        levels.append(level)
    return tuple(levels)


def level_for(step: int | float, n_levels: int) -> int:
    """The pyramid level a view of ``step`` is cut from: ``k`` with ``2**k`` the largest power
    of two dividing ``step`` (so the stride in that level is whole), at most ``n_levels``.

    >>> [level_for(s, 5) for s in (0.5, 1, 2, 6, 8, 14, 64)]
    [0, 0, 1, 1, 3, 1, 5]
    """
    if step < 2 or step != int(step):
        return 0
    step = int(step)
    return min((step & -step).bit_length() - 1, n_levels)


def crop(image: np.ndarray, levels: tuple[np.ndarray, ...], viewport: Viewport,
         channels: tuple[int, ...] | None = None) -> np.ndarray:
    """The viewport's window of ``image`` at display resolution, from the right level.

    Same pixels as :func:`ui.overlay.crop` of level 0 for ``step <= 1`` or an odd step; a
    strided view of a coarser level otherwise (each displayed pixel the mean of the block
    holding the image pixel the mask shows there; see the module docstring).

    Parameters
    ----------
    image : (C, rows, columns) array
        Level 0.
    levels : tuple of arrays
        :func:`build` of ``image``, or of ``image[list(channels)]``.
    viewport : Viewport
    channels : tuple of int, optional
        The channels of ``image`` the levels hold, in their order (taken from level 0 after
        the crop: indexing the whole image first would copy it).

    Returns
    -------
    (C, display_rows, display_columns) array; a view of a level when shrunk.
    """
    from ui import overlay

    k = level_for(viewport.step, len(levels))
    if k == 0:
        window = overlay.crop(image, viewport)
        return window if channels is None else window[list(channels)]
    f = 2 ** k
    stride = int(viewport.step) // f
    rows, columns = viewport.display_shape
    r0, c0 = viewport.row // f, viewport.column // f
    return levels[k - 1][..., r0:r0 + rows * stride:stride, c0:c0 + columns * stride:stride]


def overview_level(image: np.ndarray, levels: tuple[np.ndarray, ...]) -> tuple[np.ndarray, int]:
    """The smallest level (at most :data:`MIN_LEVEL_SIDE` on its larger side, or the last) and
    its factor: what the overview shows."""
    if not levels:
        return image, 1
    return levels[-1], 2 ** len(levels)
