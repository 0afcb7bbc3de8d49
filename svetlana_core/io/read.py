"""Read images and instance masks (TIFF, PNG, JPEG, .npy) with errors that name the file."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import tifffile

from svetlana_core.errors import InputError, byte_size
from svetlana_core.io.axes import _KNOWN_TIFF_AXES, _to_canonical, guess_axes
from svetlana_core.io.cellpose import _load_npy, _read_cellpose_seg
from svetlana_core.io.omezarr import is_zarr_path, read_level0

IMAGE_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
"""Extensions (lower case) of image files, for :func:`read_image` and :func:`pair_files`."""

MASK_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff", ".png", ".npy")
"""Extensions (lower case) of mask files. JPEG is lossy and cannot hold labels."""
_MAX_LABEL = np.iinfo(np.int64).max  # labels are int64 in object tables and in the store


def read_image(
    path: str | os.PathLike[str], axes: str | None = None, *, ndim_hint: int | None = None
) -> np.ndarray:
    """Read an image (TIFF, multi-page TIFF, OME-TIFF, PNG, JPEG, OME-Zarr) in the canonical
    layout.

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
    if is_zarr_path(path):
        array, file_axes = read_level0(path, "image")
    else:
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
    _refuse_time_series(file_axes, shape, f"image {path}")
    if "S" in file_axes and "C" in file_axes:
        raise InputError(
            f"image {path} has both channels and colour samples (axes {file_axes}, shape "
            f"{tuple(shape)}); pass axes= to say which is which (e.g. 'ZYXC')"
        )
    return file_axes.replace("S", "C")


def _refuse_time_series(file_axes: str, shape: tuple[int, ...], what: str) -> None:
    """Refuse a file whose axes hold time (a time axis of length 1 is already squeezed)."""
    if "T" in file_axes:
        raise InputError(
            f"{what} is a time series (axes {file_axes}, shape {tuple(shape)}); time series "
            "are not supported: save one file per time point"
        )


def _check_image_dtype(array: np.ndarray, path: Path) -> None:
    if array.dtype.kind not in "biuf":
        raise InputError(
            f"image {path} has unsupported data type {array.dtype}; expected integer, "
            "floating point or boolean pixels"
        )


def read_mask(path: str | os.PathLike[str], relabel_binary: bool = False) -> np.ndarray:
    """Read an instance mask and check that it holds labelled objects.

    Formats: TIFF (2D or a stack of planes), PNG (8/16-bit grey or palette indices), ``.npy``,
    Cellpose ``*_seg.npy`` (its ``"masks"`` entry), Cellpose ``*_cp_masks.png/tif`` and an
    OME-Zarr label image (``cells.ome.zarr/labels/nuclei``, level 0).

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
    if is_zarr_path(path):
        array = _single_channel(*read_level0(path, "mask"), path)
    else:
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


def _single_channel(array: np.ndarray, file_axes: str | None, path: Path) -> np.ndarray:
    """Remove a colour / channel axis from a mask when all its channels are equal."""
    if file_axes is None or not set(file_axes) <= _KNOWN_TIFF_AXES:
        return array
    _refuse_time_series(file_axes, array.shape, f"mask {path}")
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
    # One foreground value: a single object, or a binary mask of several regions. scipy loads
    # here only: importing it costs every reader 0.2 s, and most masks hold many labels.
    from scipy import ndimage

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
    if array.max() >= 2.0**63:  # would wrap negative as int64
        raise InputError(
            f"mask {path} has label {array.max():g}, above the largest label {_MAX_LABEL} "
            "(2**63 - 1) that object tables and projects can hold: renumber the objects")
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

    >>> _lowest_nonzero(np.array([[0, 7], [3, 0]], np.int16))
    3
    """
    unsigned = array.view(array.dtype.str.replace("i", "u")).reshape(-1)
    # A block at a time: one full-size temporary (256 MB for an 8000 x 8000 uint32 mask) costs
    # fresh pages, 0.5-1.8 s here, against 0.04 s for blocks of 1 M pixels that stay reused.
    step = 1 << 20
    lowest = min(int(np.subtract(unsigned[start:start + step], 1, dtype=unsigned.dtype).min())
                 for start in range(0, unsigned.size, step))
    return lowest + 1


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


_NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"


def _read_tiff(path: Path, what: str) -> tuple[np.ndarray, str | None]:
    """The first series of a TIFF and its axes.

    Uncompressed pixels stored in one piece in the machine's byte order are mapped from the
    file (read-only) instead of copied into fresh memory: an 8000 x 8000 uint32 mask is ready
    in 0.03-0.04 s against 0.23-0.56 s for a copy, most of which was the kernel zeroing 256 MB
    of new pages (bench/RESULTS.md "## prediction as a process"). Replacing the file (as
    every writer here does, by renaming) does not change an array already mapped.
    """
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        _check_tiff_size(series, path, what)
        check_declared_size(series.shape, series.dtype, path, what)
        if what == "mask":
            _check_lossless(series.keyframe, path)
        offset = series.dataoffset  # None unless uncompressed and in one piece
        if offset is not None and tif.byteorder == _NATIVE_ORDER and series.size:
            array = np.asarray(np.memmap(path, dtype=series.dtype, mode="r", offset=offset,
                                         shape=series.shape))
        else:
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


#: Environment variable that sets :func:`max_values`.
MAX_PIXELS_ENV = "SVETLANA_MAX_PIXELS"
#: Default of :func:`max_values`: 10^9 values, e.g. 31,600² pixels of one channel, 18,200² of
#: three; 2-4 GB in memory for 16-bit or float data.
DEFAULT_MAX_VALUES = 1_000_000_000


def max_values() -> int:
    """The most values (pixels × channels × planes) an image or mask file may declare:
    ``$SVETLANA_MAX_PIXELS`` when it is a positive integer, else :data:`DEFAULT_MAX_VALUES`.

    A few megabytes of compressed TIFF can declare 40,000 × 40,000 pixels; the declared size is
    checked against this cap before anything is decompressed or allocated.
    """
    text = os.environ.get(MAX_PIXELS_ENV, "").replace("_", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_VALUES


def check_declared_size(shape: tuple[int, ...], dtype: Any, path: Path, what: str) -> None:
    """Refuse a file whose header declares more values than :func:`max_values`.

    Raises
    ------
    InputError
        Naming the file, the declared shape and size, the cap and how to raise it.
    """
    n = int(np.prod(shape, dtype=object))
    limit = max_values()
    if n > limit:
        size = byte_size(n * np.dtype(dtype).itemsize)
        raise InputError(
            f"could not read {what} {path}: it declares {tuple(shape)} {np.dtype(dtype)} values "
            f"({size}), more than the {limit:,} this server reads (set {MAX_PIXELS_ENV} to "
            "raise the limit)"
        )


#: TIFF compressions that are lossy whatever their settings: a mask stored with one has lost
#: its labels. (JPEG 2000, JPEG XL, JPEG XR, WebP and LERC can be lossless: they are read.)
_LOSSY = {"JPEG", "OJPEG"}


def _check_lossless(page: Any, path: Path) -> None:
    name = getattr(page.compression, "name", str(page.compression)).upper()
    if name in _LOSSY:
        raise InputError(
            f"mask {path} is {name}-compressed TIFF: lossy compression changes label values; "
            "save the mask uncompressed or with a lossless codec (LZW, zlib/deflate, zstd)"
        )


def _read_pillow(path: Path, keep_palette: bool) -> tuple[np.ndarray, str | None]:
    from PIL import Image

    # Our cap (check_declared_size, on values, settable) replaces Pillow's own (89 M pixels, an
    # error past 179 M): an 8-bit 15,000² PNG is a real image, and one message says why not.
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(path) as header:  # the header only: nothing is decoded yet
        width, height = header.size
        bands = len(header.getbands())
    check_declared_size((height, width, bands), np.uint8, path, "file")
    with iio.imopen(path, "r", plugin="pillow") as image:
        mode = image.metadata(index=0).get("mode")
        # Pillow converts palette images to RGB; a palette mask holds its labels as indices.
        array = image.read(index=0, mode="P" if keep_palette and mode == "P" else None)
    if array.ndim == 3 and array.shape[-1] in (2, 4):  # grey + alpha, RGBA: drop alpha
        array = array[..., :-1]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return array, ("YXS" if array.ndim == 3 else "YX")


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
