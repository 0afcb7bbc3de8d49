"""NumPy files, Cellpose's pickled ``*_seg.npy`` included, read without running a pickle."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from svetlana_core.errors import InputError


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


#: A ``_seg.npy`` larger than this is not read a second time only to compare it: most of it is
#: flows and probabilities, and reading it costs several times the mask's memory.
COMPARE_MAX_BYTES = 256 * 1024**2


def same_as_seg(mask: np.ndarray, mask_path: Path, seg_path: Path,
                max_bytes: int = COMPARE_MAX_BYTES) -> bool:
    """Check that Cellpose's ``_seg.npy`` holds the masks read from its ``_cp_masks`` file.

    Parameters
    ----------
    mask : ndarray, shape (rows, columns) or (planes, rows, columns)
        The masks read from `mask_path` (:func:`svetlana_core.io.read_mask`).
    mask_path : Path
        The ``_cp_masks`` file `mask` came from, for the message.
    seg_path : Path
        The ``_seg.npy`` of the same image.
    max_bytes : int
        A larger `seg_path` is not read.

    Returns
    -------
    bool
        True when compared (and equal), False when `seg_path` was too large to compare.

    Raises
    ------
    InputError
        Naming both files, when their masks differ (shape or labels) or `seg_path` cannot be
        read.
    """
    seg_path, mask_path = Path(seg_path), Path(mask_path)
    if seg_path.stat().st_size > max_bytes:
        return False
    other = np.squeeze(_read_cellpose_seg(seg_path))
    mask = np.squeeze(mask)
    if other.shape != mask.shape:
        raise InputError(f"Cellpose masks {mask_path.name} {mask.shape} and {seg_path.name} "
                         f"{other.shape} differ in shape: keep the one you want")
    differ = int(np.count_nonzero(other != mask))
    if differ:
        raise InputError(f"Cellpose masks {mask_path.name} and {seg_path.name} differ in "
                         f"{differ} pixels (edited after export?): keep the one you want")
    return True
