"""Flips and quarter turns of patches: the 8 symmetries of the square, for numpy and torch alike.

The one implementation of the geometric part of augmentation. :mod:`svetlana_core.patches.augment`
applies it to one numpy patch at a time, :class:`svetlana_core.training.BatchAugment` to whole
torch batches: :func:`apply_symmetries` takes either (it uses only operations the two share:
``flip``, ``where``, ``swapaxes``, ``reshape``). Every symmetry of the square is written as
"flip rows?, flip columns?, then transpose?", so a quarter turn drawn by a caller becomes three
yes/no choices (:func:`compose_turns`) and a batch draws each patch its own symmetry in three
batched selections, without a Python loop over patches.

It also holds the switches of an augmentation spec (``flips``, ``rot90``, ``flip_planes``) and
:data:`DEFAULT_AUGMENT`, so that a training config is checked without albumentations, which
imports torch; the albumentations ``transforms`` of a spec are :mod:`svetlana_core.patches.augment`'s.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from svetlana_core.errors import InputError

#: Flips and 90-degree rotations: the symmetries of the square (do not mutate; copy it).
DEFAULT_AUGMENT: dict[str, Any] = {"flips": True, "rot90": True, "transforms": []}

_SWITCHES = ("flips", "rot90", "flip_planes")
_SPEC_KEYS = (*_SWITCHES, "transforms")


def parse_switches(
    spec: Mapping[str, Any] | Sequence[Any] | None,
) -> tuple[dict[str, bool], list[Any]]:
    """Check the keys and switches of an augmentation spec; the transforms are not checked.

    Parameters
    ----------
    spec : dict, list or None
        An augmentation spec (see :mod:`svetlana_core.patches.augment`); a list is a list of
        transforms, None is no augmentation.

    Returns
    -------
    switches : dict
        ``{"flips": bool, "rot90": bool, "flip_planes": bool}`` (missing switches are off).
    transforms : list
        The spec's ``transforms`` entries as given (``[]`` when absent or None).

    Raises
    ------
    InputError
        A spec that is not a dict, list or None, an unknown key, a switch that is not a bool,
        transforms that are not a list.

    Examples
    --------
    >>> parse_switches({"flips": True})
    ({'flips': True, 'rot90': False, 'flip_planes': False}, [])
    """
    if spec is None:
        spec = {}
    elif isinstance(spec, (list, tuple)):
        spec = {"transforms": list(spec)}
    elif not isinstance(spec, Mapping):
        raise InputError(
            f"augmentation spec must be a dict, a list of transforms or None, got "
            f"{type(spec).__name__}"
        )
    for key in spec:
        if key not in _SPEC_KEYS:
            close = difflib.get_close_matches(str(key), _SPEC_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(
                f"unknown augmentation key {key!r}{hint}; valid: {', '.join(_SPEC_KEYS)}"
            )
    switches: dict[str, bool] = {}
    for key in _SWITCHES:
        value = spec.get(key, False)
        if not isinstance(value, bool):
            raise InputError(f"augmentation {key}={value!r} is not valid: choose true or false")
        switches[key] = value
    entries = spec.get("transforms", [])
    if entries is None:
        entries = []
    if not isinstance(entries, (list, tuple)):
        raise InputError(f"augmentation transforms must be a list, got {type(entries).__name__}")
    return switches, list(entries)


def compose_turns(flip_rows: Any, flip_columns: Any, turns: Any) -> tuple[Any, Any, Any]:
    """Flips followed by quarter turns, as "flip rows?, flip columns?, then transpose?".

    A quarter turn (``np.rot90(x, 1, axes=(-2, -1))``, or ``torch.rot90`` on the same dims)
    is "flip columns, then transpose"; two are "flip rows and columns"; three are "flip rows,
    then transpose". Flips commute, so the flips drawn before the turn add up (exclusive or).

    Parameters
    ----------
    flip_rows, flip_columns : bool array of shape (N,) or None
        Flips drawn first (None: no flip).
    turns : int array of shape (N,)
        Quarter turns, 0 to 3, numpy or torch.

    Returns
    -------
    flip_rows, flip_columns, transpose : bool arrays of shape (N,)
        For :func:`apply_symmetries`.

    Examples
    --------
    >>> rows, columns, transpose = compose_turns(None, None, np.arange(4))
    >>> rows.tolist(), columns.tolist(), transpose.tolist()
    ([False, False, True, True], [False, True, True, False], [False, True, False, True])
    """
    rows = turns >= 2
    columns = (turns == 1) | (turns == 2)
    transpose = (turns % 2) == 1
    if flip_rows is not None:
        rows = rows ^ flip_rows
    if flip_columns is not None:
        columns = columns ^ flip_columns
    return rows, columns, transpose


def apply_symmetries(
    batch: Any,
    flip_planes: Any = None,
    flip_rows: Any = None,
    flip_columns: Any = None,
    transpose: Any = None,
) -> Any:
    """Flip and transpose each patch of a batch as its own draws say; numpy or torch.

    Parameters
    ----------
    batch : ndarray or torch.Tensor, shape (N, C, [planes,] rows, columns)
        Not modified.
    flip_planes, flip_rows, flip_columns, transpose : bool arrays of shape (N,), optional
        Of the batch's kind (numpy for numpy, torch for torch): which patches to flip along
        planes (3D batches only), rows, columns, then which to transpose (rows <-> columns,
        square patches only). None: none.

    Returns
    -------
    ndarray or torch.Tensor
        A new batch of the same shape and kind (numpy: possibly a view of ``batch`` when every
        patch gets the same symmetry; make it contiguous before writing to it).

    Raises
    ------
    InputError
        A transpose asked for patches that are not square.

    Examples
    --------
    >>> batch = np.arange(8).reshape(2, 1, 2, 2)
    >>> apply_symmetries(batch, flip_rows=np.array([True, False]))[:, 0]
    array([[[2, 3],
            [0, 1]],
    <BLANKLINE>
           [[4, 5],
            [6, 7]]])
    """
    x = batch
    for axis, draw in ((2, flip_planes), (-2, flip_rows), (-1, flip_columns)):
        if draw is not None and (axis != 2 or x.ndim == 5):
            x = _select(draw, _flip(x, axis), x)
    if transpose is not None and bool(transpose.any()):
        if x.shape[-1] != x.shape[-2]:
            raise InputError(f"patches of shape {tuple(x.shape[2:])} are not square: they "
                             "cannot be transposed")
        x = _select(transpose, x.swapaxes(-1, -2), x)
    return x


def _flip(x: Any, axis: int) -> Any:
    # numpy arrays have no .flip method; torch tensors do (np.flip would go through numpy)
    return np.flip(x, axis) if isinstance(x, np.ndarray) else x.flip(axis)


def _select(draw: Any, changed: Any, x: Any) -> Any:
    """``changed`` for the patches drawn, ``x`` for the others."""
    if not bool(draw.any()):
        return x
    if bool(draw.all()):  # one patch (numpy path), or every patch: no copy through where
        return changed
    chosen = draw.reshape((-1,) + (1,) * (x.ndim - 1))
    if isinstance(x, np.ndarray):
        return np.where(chosen, changed, x)
    return changed.where(chosen, x)  # torch.where(chosen, changed, x) without importing torch
