"""Read and write images and label masks, pair them by file name, parse plate wells.

Canonical layout
----------------
Every image leaves this module channel-first, whatever the file held:

* 2D: ``(C, rows, columns)`` -- grey images have ``C = 1``, RGB has ``C = 3``;
* 3D: ``(C, planes, rows, columns)``.

The dtype of the file is kept (no conversion to float). An alpha channel (RGBA, grey + alpha)
is dropped. A mask is an integer array ``(rows, columns)`` or ``(planes, rows, columns)``,
0 is background, labels are never renumbered and need not be contiguous.

Axes
----
An axes string names the dimensions of the array as it is stored in the file, with the letters
``Y`` (rows), ``X`` (columns), ``Z`` (planes) and ``C`` (channels): ``"YX"``, ``"YXC"`` (RGB),
``"CYX"``, ``"ZYX"``, ``"ZCYX"`` and any other order of those letters (``"CZYX"``, ``"ZYXC"``).
The axes come, in this order, from the ``axes=`` argument, from the file's own metadata (OME-TIFF,
ImageJ hyperstacks, TIFFs written by tifffile with ``metadata={"axes": ...}``, RGB TIFF samples,
PNG / JPEG colour) or from :func:`guess_axes`. A time axis of length 1 is dropped; a time series
is refused (split it into one file per time point).

Pairing rules (:func:`pair_files`)
----------------------------------
Images are the files of ``images_dir`` (not its sub-folders, not hidden files) whose extension is
one of :data:`IMAGE_EXTENSIONS`, in any case. For an image ``<stem>.<ext>`` the mask is looked up in
``masks_dir`` (``images_dir`` when ``masks_dir`` is None) among the files with an extension in
:data:`MASK_EXTENSIONS` named

* ``<stem>.<ext>`` -- only when the masks are in a folder of their own;
* ``<stem>.npy``;
* ``<stem>_cp_masks.<ext>`` and ``<stem>_seg.npy`` (Cellpose);
* ``<stem>_mask.<ext>``, ``<stem>_masks.<ext>``, ``<stem>_label.<ext>``, ``<stem>_labels.<ext>``.

The suffixes are matched in any case; the stem itself is matched exactly. When the masks sit in the
image folder, a file whose stem ends with one of those suffixes is a mask, never an image.
Exactly one mask must match each image and each mask may serve one image only; otherwise
:class:`~svetlana_core.errors.InputError` says which files are missing or in conflict.

Wells (:func:`parse_well`)
--------------------------
A well is read from a file name as, first, an Opera Phenix / Operetta token ``r<row>c<column>``
(``r01c01f01p01-ch1.tiff``: 1-based row and column, any case), otherwise as the first token
``<row letters><column number>`` such as ``A01``, ``A1``, ``P24`` or ``AF48`` (upper-case rows
``A`` to ``AF``, columns 1 to 48: up to a 1536-well plate). Tokens with a two-digit column win
over one-digit ones, so ``Plate_A01_S1_W1.tif`` is ``A01``. A token must stand alone: at the
start or end of the name or between characters that are neither letters nor digits (``_``, ``-``,
``.``, space).
Lower-case letters are never read as rows, because ``s1``, ``w1``, ``t1``, ``z1`` name sites,
wavelengths, time points and planes in microscope file names.

Safety
------
Nothing here modifies a user's file. The only writers, :func:`write_tiff` and
:func:`atomic_write_bytes`, write a temporary file in the target folder and rename it into place,
so a reader never sees half a file. Pickled data is read from Cellpose ``*_seg.npy`` files only,
and then only numpy arrays and plain Python values are let through (see :func:`read_mask`).
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import imageio.v3 as iio
import numpy as np
import tifffile
from scipy import ndimage

from svetlana_core.errors import InputError, byte_size, listing

__all__ = [
    "IMAGE_EXTENSIONS",
    "MASK_EXTENSIONS",
    "MASK_SUFFIXES",
    "Pair",
    "Well",
    "atomic_write",
    "atomic_write_bytes",
    "guess_axes",
    "load_pair",
    "pair_files",
    "parse_well",
    "read_image",
    "read_mask",
    "to_canonical",
    "write_tiff",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
"""Extensions (lower case) of image files, for :func:`read_image` and :func:`pair_files`."""

MASK_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff", ".png", ".npy")
"""Extensions (lower case) of mask files. JPEG is lossy and cannot hold labels."""

MASK_SUFFIXES: tuple[str, ...] = ("_cp_masks", "_seg", "_masks", "_mask", "_labels", "_label")
"""Stem suffixes that mark a mask file (``_seg`` only with ``.npy``), longest match first."""

_AXIS_LETTERS = "CZYX"
# tifffile axis codes we understand; any other code (Q, I, ...) means "unknown, guess".
_KNOWN_TIFF_AXES = frozenset("TZCYXS")
_MAX_LABEL = np.iinfo(np.int64).max  # labels are int64 in object tables and in the store
_MAX_ROWS = 32  # a 1536-well plate: rows A..AF
_MAX_COLUMNS = 48


# --------------------------------------------------------------------------------------------
# axes
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def read_image(
    path: str | os.PathLike[str], axes: str | None = None, *, ndim_hint: int | None = None
) -> np.ndarray:
    """Read an image (TIFF, multi-page TIFF, OME-TIFF, PNG, JPEG) in the canonical layout.

    The file is read by its content when its extension lies (a PNG named ``.tif`` reads).

    Parameters
    ----------
    path : str or path-like
        Image file.
    axes : str, optional
        Axes of the array as stored (see :func:`to_canonical`): the shape of a TIFF's first
        series with length-1 axes removed, or ``(rows, columns[, colour])`` for PNG / JPEG
        (alpha already dropped). Overrides the file's metadata and the guess.
    ndim_hint : {None, 2, 3}, optional
        Number of spatial dimensions when known (from the mask); passed to :func:`guess_axes`
        when neither `axes` nor the file says how the dimensions are laid out.

    Returns
    -------
    ndarray
        ``(C, rows, columns)`` or ``(C, planes, rows, columns)`` with the file's dtype.

    Raises
    ------
    InputError
        If the file is missing or unreadable, is empty, is a time series, has an unsupported dtype
        (complex, object, ...), or `axes` does not fit it. The message names the file.
    """
    path = Path(path)
    _check_file(path, "image")
    array, file_axes = _read_raw(path, "image", keep_palette=False)
    _check_image_dtype(array, path)
    if array.size == 0:
        raise InputError(f"image {path} is empty (shape {array.shape})")
    what = f"image {path}"
    if axes is None:
        axes = _axes_from_file(array.shape, file_axes, path)
        if axes is None:
            try:
                axes = guess_axes(array.shape, ndim_hint)
            except InputError as err:
                raise InputError(f"{what}: {err}") from None
    return _to_canonical(array, axes, what)


def _axes_from_file(shape: tuple[int, ...], file_axes: str | None, path: Path) -> str | None:
    """Map tifffile / colour axes to our letters; None when the file does not say."""
    if file_axes is None or not set(file_axes) <= _KNOWN_TIFF_AXES:
        return None
    if "T" in file_axes:
        raise InputError(
            f"image {path} is a time series (axes {file_axes}, shape {tuple(shape)}); "
            "time series are not supported: save one file per time point"
        )
    if "S" in file_axes and "C" in file_axes:
        raise InputError(
            f"image {path} has both channels and colour samples (axes {file_axes}, shape "
            f"{tuple(shape)}); pass axes= to say which is which (e.g. 'ZYXC')"
        )
    return file_axes.replace("S", "C")


def _check_image_dtype(array: np.ndarray, path: Path) -> None:
    if array.dtype.kind not in "biuf":
        raise InputError(
            f"image {path} has unsupported data type {array.dtype}; expected integer, "
            "floating point or boolean pixels"
        )


def read_mask(path: str | os.PathLike[str], relabel_binary: bool = False) -> np.ndarray:
    """Read an instance mask and check that it holds labelled objects.

    Formats: TIFF (2D or a stack of planes), PNG (8/16-bit grey or palette indices), ``.npy``,
    Cellpose ``*_seg.npy`` (its ``"masks"`` entry) and Cellpose ``*_cp_masks.png/tif``.

    ``*_seg.npy`` is a pickled dict, and unpickling can run code. It is the only pickle read here,
    only for files with that name, and through an unpickler that builds numpy arrays and plain
    Python values only: a file that asks for anything else is refused, not executed. Any other
    ``.npy`` is read with ``allow_pickle=False``.

    Parameters
    ----------
    path : str or path-like
        Mask file.
    relabel_binary : bool, default False
        A binary mask (background and one value, in several separate regions) is refused unless
        this is True; then its connected regions (face connectivity: 4 in 2D, 6 in 3D) are
        numbered 1..N in memory, as ``int32``. The file is never rewritten.

    Returns
    -------
    ndarray
        ``(rows, columns)`` or ``(planes, rows, columns)`` integer labels, 0 = background. Integer
        dtypes are kept; integral float masks become ``int32`` (``int64`` if needed); boolean
        masks become ``uint8``. Labels are not renumbered.

    Raises
    ------
    InputError
        If the file is missing, unreadable or JPEG; has several channels, dimensions other than
        2 or 3, or a dtype that is not integer, integral float or boolean; has negative labels,
        no object, or looks binary (see `relabel_binary`). The message names the file.

    Notes
    -----
    A mask whose only object is a single connected region is an instance mask with one object,
    not a binary mask. The checks cost a few passes of numpy reductions, no ``np.unique``.
    """
    path = Path(path)
    _check_file(path, "mask")
    array = _read_mask_array(path)
    return _validate_mask(array, path, relabel_binary)


def _read_mask_array(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        raise InputError(
            f"mask {path} is a JPEG file; JPEG compression changes pixel values, so it cannot "
            "hold labels: save the mask as TIFF or PNG"
        )
    if path.name.lower().endswith("_seg.npy"):
        return _read_cellpose_seg(path)
    if suffix == ".npy":
        return _load_npy(path)
    array, file_axes = _read_raw(path, "mask", keep_palette=True)
    return _single_channel(array, file_axes, path)


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise InputError(
                f"mask {path} holds Python objects, which are not loaded for safety; save the "
                "labels as a plain integer array (or name a Cellpose file *_seg.npy)"
            ) from None
        raise InputError(f"could not read mask {path} as a .npy file: {err}") from None
    except (OSError, EOFError) as err:
        raise InputError(f"could not read mask {path} as a .npy file: {err}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive renamed .npy
        raise InputError(f"mask {path} is not a single .npy array")
    return array


# What a damaged or foreign .npy file raises while its header or pickle is read.
_SEG_READ_ERRORS = (
    pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, AttributeError
)


class _ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a Python object outside the numpy allow-list."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that builds numpy arrays, dtypes, scalars and plain Python values only.

    Pickle runs whatever callable a file names; restricting globals (the recipe of the Python
    ``pickle`` documentation) stops a crafted ``*_seg.npy`` from running code.
    """

    _ALLOWED = {
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),  # files written with numpy 1.x
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol 2 pickles bytes; it only encodes a string
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            if module.endswith("multiarray"):
                module = "numpy._core.multiarray"
            return getattr(importlib.import_module(module), name)
        if module == "numpy.dtypes" and name.endswith("DType"):
            return getattr(np.dtypes, name)
        raise _ForbiddenGlobal(f"{module}.{name}")


def _read_cellpose_seg(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                _, _, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            if dtype != np.dtype(object):
                handle.seek(0)
                return np.load(handle, allow_pickle=False)  # a plain array named *_seg.npy
            content = _NumpyOnlyUnpickler(handle, encoding="ASCII").load()
    except _ForbiddenGlobal as err:
        raise InputError(
            f"Cellpose file {path} refers to {err}, which is not loaded for safety (only numpy "
            "arrays and plain values are); export the masks as TIFF or PNG instead"
        ) from None
    except _SEG_READ_ERRORS as err:
        raise InputError(f"could not read Cellpose file {path}: {err}") from None
    if isinstance(content, np.ndarray) and content.dtype == object and content.shape == ():
        content = content.item()
    if not isinstance(content, dict) or not isinstance(content.get("masks"), np.ndarray):
        raise InputError(
            f"Cellpose file {path} does not hold a dict with a 'masks' array "
            f"(found {type(content).__name__})"
        )
    return content["masks"]


def _single_channel(array: np.ndarray, file_axes: str | None, path: Path) -> np.ndarray:
    """Remove a colour / channel axis from a mask when all its channels are equal."""
    if file_axes is None or not set(file_axes) <= _KNOWN_TIFF_AXES:
        return array
    if "T" in file_axes:
        raise InputError(
            f"mask {path} is a time series (axes {file_axes}, shape {array.shape}); "
            "save one mask per time point"
        )
    # Colour samples last (RGB PNG / TIFF) or an explicit channel axis (ImageJ, OME). Leading
    # samples ("SYX") are what tifffile reports for a plain 3-plane stack, so they stay planes.
    channel_axis = file_axes.find("C")
    if channel_axis < 0 and file_axes.endswith("S"):
        channel_axis = len(file_axes) - 1
    if channel_axis < 0:
        return array
    moved = np.moveaxis(array, channel_axis, -1)
    if not np.array_equal(moved, np.broadcast_to(moved[..., :1], moved.shape)):
        raise InputError(
            f"mask {path} has {array.shape[channel_axis]} channels (axes {file_axes}, shape "
            f"{array.shape}); a label mask has one integer per pixel (a colour-coded mask "
            "must be converted to labels first)"
        )
    return np.ascontiguousarray(moved[..., 0])


def _validate_mask(array: np.ndarray, path: Path, relabel_binary: bool) -> np.ndarray:
    if array.ndim not in (2, 3):
        raise InputError(
            f"mask {path} has shape {array.shape}; expected (rows, columns) or "
            "(planes, rows, columns)"
        )
    if array.size == 0:
        raise InputError(f"mask {path} is empty (shape {array.shape})")
    kind = array.dtype.kind
    if kind == "b":
        array = array.view(np.uint8)
    elif kind == "f":
        array = _integral_float_mask(array, path)
    elif kind not in "iu":
        raise InputError(
            f"mask {path} has unsupported data type {array.dtype}; expected integer labels"
        )
    highest = array.max()
    if highest > _MAX_LABEL:
        # Tables and projects hold labels as int64; a larger uint64 label would wrap negative.
        raise InputError(
            f"mask {path} has label {highest}, above the largest label {_MAX_LABEL} (2**63 - 1) "
            "that object tables and projects can hold: renumber the objects"
        )
    if kind == "i" or kind == "f":
        lowest = array.min()
        if lowest < 0:
            raise InputError(f"mask {path} has negative labels (minimum {lowest})")
    if highest == 0:
        raise InputError(f"mask {path} has no objects (all pixels are 0)")
    if _lowest_nonzero(array) != highest:
        return array
    # One foreground value: a single object, or a binary mask of several regions.
    regions, count = ndimage.label(array != 0)
    if count == 1:
        return array
    if relabel_binary:
        return regions.astype(np.int32, copy=False)
    raise InputError(
        f"mask {path} looks binary (only the values 0 and {highest}, in {count} separate "
        "regions) rather than one label per object: pass relabel_binary=True (CLI "
        "--relabel-binary) to number its connected regions as objects"
    )


def _integral_float_mask(array: np.ndarray, path: Path) -> np.ndarray:
    if not np.isfinite(array).all():
        raise InputError(f"mask {path} is float with NaN or infinite values")
    if not np.array_equal(array, np.floor(array)):
        raise InputError(
            f"mask {path} is float with non-integer values; expected integer labels"
        )
    dtype = np.int32 if array.max() <= np.iinfo(np.int32).max else np.int64
    return array.astype(dtype)


def _lowest_nonzero(array: np.ndarray) -> int:
    """Smallest label above 0 of a non-negative integer array, without a boolean copy.

    Seen as unsigned, ``array - 1`` wraps 0 to the largest value, so its minimum plus one is the
    smallest nonzero label. On a dense 8000 x 8000 uint16 mask this takes ~22 ms against ~310 ms
    for ``array[array > 0].min()``.
    """
    unsigned = array.view(array.dtype.str.replace("i", "u"))
    return int(np.subtract(unsigned, 1, dtype=unsigned.dtype).min()) + 1


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    if not path.is_file():
        raise InputError(f"{what} {path} is not a file")


def _read_raw(path: Path, what: str, *, keep_palette: bool) -> tuple[np.ndarray, str | None]:
    """Read a TIFF (tifffile) or a PNG / JPEG (Pillow), chosen by content, not extension.

    Returns the array and its tifffile-style axes (None when the file does not say).
    """
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as err:
        raise InputError(f"could not read {what} {path}: {err}") from None
    # Sniffing the content reads a PNG named .tif (and the reverse) and keeps every page of a
    # TIFF, which Pillow would cut to the first.
    is_tiff = magic in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    try:
        if is_tiff:
            return _read_tiff(path, what)
        return _read_pillow(path, keep_palette)
    except InputError:
        raise
    except MemoryError:
        raise InputError(
            f"could not read {what} {path}: its pixels do not fit in the free memory of this "
            "machine (crop or split the file)"
        ) from None
    except Exception as err:  # decoders raise many types (OSError, zlib.error, TiffFileError...)
        kind = "TIFF" if is_tiff else "image"
        raise InputError(
            f"could not read {what} {path}: not a readable {kind} file "
            f"(TIFF, PNG or JPEG expected): {err}"
        ) from None


def _read_tiff(path: Path, what: str) -> tuple[np.ndarray, str | None]:
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        _check_tiff_size(series, path, what)
        array = series.asarray()
        axes = series.axes
        page = series.keyframe
        drop_alpha = (
            page.photometric == tifffile.PHOTOMETRIC.RGB
            and len(page.extrasamples) > 0
            and axes.endswith("S")
            and array.shape[-1] == 4
        )
    if drop_alpha:
        array = array[..., :3]
    return array, axes


def _check_tiff_size(series: Any, path: Path, what: str) -> None:
    """Refuse a TIFF whose pixel data lie past the end of the file, before allocating them.

    A damaged or hand-made header may declare 30000 x 30000 pixels over a few hundred bytes;
    saying so names the real problem (a truncated file) and allocates nothing.
    """
    size = path.stat().st_size
    for page in series.pages:
        if page is None:
            continue
        ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts) if c]
        if ends and max(ends) > size:
            raise InputError(
                f"could not read {what} {path}: the TIFF file is truncated: its header declares "
                f"{tuple(series.shape)} {series.dtype} pixels ({byte_size(series.nbytes)}) but "
                f"the file ends after {byte_size(size)}"
            )


def _read_pillow(path: Path, keep_palette: bool) -> tuple[np.ndarray, str | None]:
    with iio.imopen(path, "r", plugin="pillow") as image:
        mode = image.metadata(index=0).get("mode")
        # Pillow converts palette images to RGB; a palette mask holds its labels as indices.
        array = image.read(index=0, mode="P" if keep_palette and mode == "P" else None)
    if array.ndim == 3 and array.shape[-1] in (2, 4):  # grey + alpha, RGBA: drop alpha
        array = array[..., :-1]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return array, ("YXS" if array.ndim == 3 else "YX")


# --------------------------------------------------------------------------------------------
# pairs
# --------------------------------------------------------------------------------------------


def load_pair(
    image_path: str | os.PathLike[str] | None,
    mask_path: str | os.PathLike[str],
    axes: str | None = None,
    relabel_binary: bool = False,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Read an image and its mask and check that they belong together.

    The mask is read first; when `axes` is None its number of dimensions settles an ambiguous
    image shape (a ``(5, rows, columns)`` TIFF is 5 planes beside a 3D mask, 5 channels beside a
    2D one).

    Parameters
    ----------
    image_path : str, path-like or None
        Image file, or None where there is no raw image (the mask alone is read).
    mask_path : str or path-like
        Mask file (see :func:`read_mask`).
    axes : str, optional
        Axes of the image as stored (see :func:`read_image`).
    relabel_binary : bool, default False
        Passed to :func:`read_mask`.

    Returns
    -------
    image : ndarray or None
        ``(C, rows, columns)`` or ``(C, planes, rows, columns)``.
    mask : ndarray
        ``(rows, columns)`` or ``(planes, rows, columns)``, with ``mask.shape == image.shape[1:]``.

    Raises
    ------
    InputError
        From :func:`read_image` / :func:`read_mask`, if the image is 2D and the mask 3D (or the
        reverse), if their spatial shapes differ, or if the image holds NaN or infinite values.
    """
    mask = read_mask(mask_path, relabel_binary=relabel_binary)
    if image_path is None:
        return None, mask
    image = read_image(image_path, axes, ndim_hint=mask.ndim if axes is None else None)
    spatial = image.shape[1:]
    if len(spatial) != mask.ndim:
        hint = "" if axes is not None else "; pass axes= to say how the image is laid out"
        raise InputError(
            f"mask {mask_path} is {mask.ndim}D with shape {mask.shape} but image {image_path} "
            f"is {len(spatial)}D with spatial shape {spatial} (canonical shape {image.shape}){hint}"
        )
    if spatial != mask.shape:
        raise InputError(
            f"mask {mask_path} has shape {mask.shape} but image {image_path} has {spatial}"
        )
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        problem = "NaN" if np.isnan(image).any() else "infinite"
        raise InputError(f"image {image_path} contains {problem} values")
    return image, mask


@dataclass(frozen=True)
class Pair:
    """An image file and its mask file, matched by file stem."""

    image: Path
    mask: Path
    stem: str


def pair_files(
    images_dir: str | os.PathLike[str], masks_dir: str | os.PathLike[str] | None = None
) -> list[Pair]:
    """Match each image of a folder with its mask by file name.

    See the module docstring for the rules. Files are listed, not read.

    Parameters
    ----------
    images_dir : str or path-like
        Folder of images (:data:`IMAGE_EXTENSIONS`).
    masks_dir : str or path-like, optional
        Folder of masks; the image folder when None.

    Returns
    -------
    list of Pair
        One pair per image, sorted by stem (then image file name).

    Raises
    ------
    InputError
        If a folder does not exist, holds no image, an image has no mask (up to 5 named), an
        image has several candidate masks, or a mask matches several images.
    """
    images_dir = Path(images_dir)
    masks_dir = images_dir if masks_dir is None else Path(masks_dir)
    for folder, what in ((images_dir, "image"), (masks_dir, "mask")):
        if not folder.is_dir():
            raise InputError(f"{what} folder {folder} does not exist or is not a folder")
    same_folder = images_dir.resolve() == masks_dir.resolve()

    candidates: dict[str, list[Path]] = {}
    for mask in _list_files(masks_dir, MASK_EXTENSIONS):
        for stem in _stems_matched_by_mask(mask, same_folder):
            candidates.setdefault(stem, []).append(mask)

    images = [
        path
        for path in _list_files(images_dir, IMAGE_EXTENSIONS)
        if not (same_folder and _mask_suffix(path) is not None)
    ]
    if not images:
        raise InputError(
            f"image folder {images_dir} holds no images ({', '.join(IMAGE_EXTENSIONS)})"
        )

    pairs, missing = [], []
    for image in images:
        found = candidates.get(image.stem, [])
        if not found:
            missing.append(image.name)
        elif len(found) > 1:
            names = ", ".join(sorted(path.name for path in found))
            raise InputError(
                f"image {image.name} has several candidate masks in {masks_dir}: {names}; "
                "keep one"
            )
        else:
            pairs.append(Pair(image=image, mask=found[0], stem=image.stem))
    if missing:
        missing.sort()
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(
            f"{len(missing)} image(s) in {images_dir} have no mask in {masks_dir}: "
            f"{', '.join(missing[:5])}{more} (a mask is named <stem>.<ext> in its own folder, "
            "<stem>.npy, <stem>_cp_masks.<ext>, <stem>_seg.npy, <stem>_mask(s).<ext> or "
            "<stem>_label(s).<ext>)"
        )

    users: dict[Path, list[Path]] = {}
    for pair in pairs:
        users.setdefault(pair.mask, []).append(pair.image)
    for mask, shared in users.items():
        if len(shared) > 1:
            names = ", ".join(sorted(path.name for path in shared))
            raise InputError(f"mask {mask.name} matches several images: {names}")
    return sorted(pairs, key=lambda pair: (pair.stem, pair.image.name))


def _list_files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    return [
        Path(entry.path)
        for entry in os.scandir(folder)
        if entry.is_file()
        and not entry.name.startswith(".")
        and os.path.splitext(entry.name)[1].lower() in extensions
    ]


def _mask_suffix(path: Path) -> str | None:
    """The mask suffix that ends the stem of `path` (``_seg`` for ``.npy`` only), if any."""
    stem = path.stem.lower()
    for suffix in MASK_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            if suffix == "_seg" and path.suffix.lower() != ".npy":
                continue
            return suffix
    return None


def _stems_matched_by_mask(mask: Path, same_folder: bool) -> set[str]:
    stems = set()
    suffix = _mask_suffix(mask)
    if suffix is not None:
        stems.add(mask.stem[: -len(suffix)])
    # "<stem>.<ext>" is the image itself when the masks share its folder; ".npy" never is.
    if not same_folder or mask.suffix.lower() == ".npy":
        stems.add(mask.stem)
    return stems


# --------------------------------------------------------------------------------------------
# wells
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Well:
    """A well of a multi-well plate (up to 1536 wells: 32 rows by 48 columns).

    Parameters
    ----------
    row : int
        0-based row index: 0 is row ``A``, 26 is ``AA``, 31 is ``AF``.
    column : int
        1-based column number, as printed on the plate.

    Examples
    --------
    >>> Well(row=0, column=1).name
    'A01'
    >>> Well(row=27, column=48).name
    'AB48'
    """

    row: int
    column: int

    def __post_init__(self) -> None:
        if not 0 <= self.row < _MAX_ROWS:
            raise InputError(f"well row must be 0..{_MAX_ROWS - 1} (A..AF), got {self.row}")
        if not 1 <= self.column <= _MAX_COLUMNS:
            raise InputError(f"well column must be 1..{_MAX_COLUMNS}, got {self.column}")

    @property
    def row_letter(self) -> str:
        """Row as printed on the plate: ``"A"`` .. ``"Z"``, then ``"AA"`` .. ``"AF"``."""
        if self.row < 26:
            return chr(ord("A") + self.row)
        return "A" + chr(ord("A") + self.row - 26)

    @property
    def name(self) -> str:
        """Row letter(s) and two-digit column, e.g. ``"A01"``, ``"P24"``, ``"AF48"``."""
        return f"{self.row_letter}{self.column:02d}"


_PHENIX_WELL = re.compile(r"(?<![A-Za-z0-9])r(\d{1,2})c(\d{1,2})(?!\d)", re.IGNORECASE)
_LETTER_WELL = re.compile(r"(?<![A-Za-z0-9])([A-Z]{1,2})(\d{1,2})(?![A-Za-z0-9])")


def parse_well(name: str) -> Well | None:
    """Read the plate well from a file name.

    See the module docstring for the rules: an Opera Phenix ``r01c01`` token first, then the first
    stand-alone upper-case ``A01`` / ``A1`` token (two-digit columns first), rows ``A`` .. ``AF``,
    columns 1 .. 48.

    Parameters
    ----------
    name : str
        File name (a path works too; only its last part is read).

    Returns
    -------
    Well or None
        None when the name holds no valid well.

    Examples
    --------
    >>> parse_well("Plate_B03_s1_w1.tif").name
    'B03'
    >>> parse_well("r02c05f01p01-ch1sk1fk1fl1.tiff").name
    'B05'
    >>> parse_well("train_1_000.png") is None
    True
    """
    name = Path(name).name
    for match in _PHENIX_WELL.finditer(name):
        row, column = int(match[1]) - 1, int(match[2])
        if _valid_well(row, column):
            return Well(row, column)
    found = []
    for match in _LETTER_WELL.finditer(name):
        letters, digits = match[1], match[2]
        row = ord(letters[-1]) - ord("A") + (26 if len(letters) == 2 else 0)
        if len(letters) == 2 and letters[0] != "A":
            continue
        if _valid_well(row, int(digits)):
            found.append((len(digits) != 2, match.start(), Well(row, int(digits))))
    return min(found)[2] if found else None


def _valid_well(row: int, column: int) -> bool:
    return 0 <= row < _MAX_ROWS and 1 <= column <= _MAX_COLUMNS


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def write_tiff(
    path: str | os.PathLike[str],
    array: np.ndarray,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write an array to a lossless (zlib) TIFF, atomically.

    The array is stored as it is (no axis reordering, no colour interpretation); `metadata` is
    stored as JSON in the TIFF description and comes back from
    ``tifffile.TiffFile(path).shaped_metadata[0]``. The file is written beside `path` under a
    temporary name and renamed into place, so a reader sees the old file or the new one, never
    half of one.

    Parameters
    ----------
    path : str or path-like
        Target file; its folder must exist. An existing file is replaced.
    array : ndarray
        Integer or float array, e.g. a ``(rows, columns)`` uint8 class map.
    metadata : dict, optional
        JSON-serialisable values, e.g. ``{"classes": ["live", "dead"]}``. The key ``"axes"``
        (e.g. ``"ZYX"``) is understood by tifffile, ImageJ and napari.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InputError
        If the folder of `path` does not exist.
    """
    array = np.asarray(array)

    def write(handle: BinaryIO) -> None:
        tifffile.imwrite(
            handle,
            array,
            photometric="minisblack",
            compression="zlib",
            metadata=dict(metadata or {}),
        )

    return atomic_write(Path(path), write)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write bytes to a file atomically (temporary file in the same folder, then rename).

    Parameters
    ----------
    path : str or path-like
        Target file; its folder must exist. An existing file is replaced.
    data : bytes
        Content.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InputError
        If the folder of `path` does not exist.
    """
    return atomic_write(Path(path), lambda handle: handle.write(data))


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """Write a file atomically: ``write(handle)`` fills a hidden temporary file beside
    `path` (``.<name>.<random>.tmp``), which is flushed to disk and renamed over `path`.

    A reader, or a process killed at any moment, sees the old file or the new one, never half
    of one; every output of the project (TIFFs, CSV, Parquet, XLSX, labels) goes through here.

    Parameters
    ----------
    path : str or path-like
        Target file; its folder must exist. An existing file is replaced.
    write : callable
        Called with a binary file handle (pandas' ``to_csv``, ``to_parquet`` and
        ``ExcelWriter`` accept one).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InputError
        If the folder of `path` does not exist.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: folder {folder} does not exist")
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)  # reopened by name: tifffile wants a file object with a path
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file readable by its owner only; give it the mode a plain open()
        # would have, so that colleagues sharing the project folder can read it.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


# ---------------------------------------------------------------------------- labels CSV


def read_labels_csv(path: str | os.PathLike) -> "pd.DataFrame":
    """Read a labels CSV ``image,label,class`` (the exchange format of labels).

    The one reader of labels files: the CLI, training, evaluation and project imports all use
    it. Class names are kept as text (a class called ``NA`` or ``None`` survives), spaces
    around the three values are stripped, labels must be positive integers (int64), exact
    duplicate rows are collapsed and extra columns are kept.

    Raises
    ------
    InputError
        Missing, empty, unreadable or non-UTF-8 file, missing columns, an empty image or
        class, a label that is not a positive integer, or one object given two different
        classes; the message names the file, the lines and the values.
    """
    import pandas as pd  # only here: reading images does not need pandas

    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file {path} does not exist")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"labels file {path} is empty (expected columns image,label,class)"
                         ) from None
    except UnicodeDecodeError as error:
        raise InputError(f"labels file {path} is not UTF-8 text ({error.reason} at byte "
                         f"{error.start}); save it as 'CSV UTF-8'") from None
    except (OSError, pd.errors.ParserError) as error:
        raise InputError(f"labels file {path} is not a readable CSV: {error}") from None
    table.columns = [str(column).strip() for column in table.columns]
    missing = [column for column in ("image", "label", "class") if column not in table]
    if missing:
        raise InputError(
            f"labels file {path} lacks column(s) {', '.join(missing)}; it has "
            f"{', '.join(map(repr, table.columns))} (expected image,label,class)"
        )
    for column in ("image", "label", "class"):
        table[column] = table[column].str.strip()
    line = table.index.to_series() + 2  # the header is line 1
    for column in ("image", "class"):
        empty = table[column] == ""
        if empty.any():
            raise InputError(f"labels file {path} has an empty {column} on line(s) "
                             f"{listing(line[empty].tolist())}")
    numbers = pd.to_numeric(table["label"], errors="coerce")
    # Labels are int64 (and SQLite INTEGERs): a larger number would wrap negative.
    bad = numbers.isna() | (numbers % 1 != 0) | (numbers <= 0) | (numbers >= 2**63)
    if bad.any():
        shown = [f"{n} ({value!r})" for n, value in zip(line[bad], table.loc[bad, "label"])]
        raise InputError(f"labels file {path}: label must be a positive integer; {bad.sum()} "
                         f"rows are not, on line(s) {listing(shown)}")
    table["label"] = numbers.astype("int64")
    table = table.drop_duplicates(["image", "label", "class"])
    clash = table.duplicated(["image", "label"], keep=False)
    if clash.any():
        objects = table.loc[clash, ["image", "label"]].drop_duplicates()
        shown = [f"{image} label {label}" for image, label in objects.itertuples(index=False)]
        raise InputError(f"labels file {path} gives {len(objects)} objects two different "
                         f"classes: {listing(shown)}")
    return table.reset_index(drop=True)
