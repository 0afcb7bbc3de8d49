"""Data augmentation of object patches from a plain, JSON-able spec.

A spec is a dict such as::

    {"flips": true, "rot90": true,
     "transforms": [{"name": "GaussNoise", "std_range": [0.01, 0.05], "p": 0.5},
                    {"name": "Affine", "rotate": [-30, 30], "p": 0.5}]}

- ``flips``: random flips along rows and along columns (each with probability 1/2).
- ``rot90``: a random multiple of 90 degrees in the (rows, columns) plane. With ``flips`` this
  draws uniformly from the 8 symmetries of the square: the rotation invariance the Svetlana
  paper relies on. Patches that are not square only get 0 or 180 degrees (the shape is kept).
- ``flip_planes``: random flip along planes, 3D patches only (ignored in 2D); off by default
  because the optical axis of most microscopes is not symmetric.
- ``transforms``: albumentations 2.x transforms by class name with their keyword arguments
  (a bare list is accepted as the ``transforms`` of a spec); compositions ``OneOf``,
  ``SomeOf`` and ``Sequential`` take a nested ``transforms`` list. Names are looked up on the
  albumentations module and arguments checked against the constructor: nothing is evaluated.

Missing keys are off, and ``None`` means no augmentation; :data:`DEFAULT_AUGMENT` is flips +
rot90. A patch is ``(C, rows, columns)`` (or ``(C, planes, rows, columns)``) float32 whose
last channel is the object mask: spatial (dual) transforms move the mask with the image
(albumentations resamples it with nearest neighbours), pixel transforms (noise, blur,
contrast...) leave it untouched. Flips and rot90 are done in numpy, for 2D and 3D alike;
albumentations works on 2D images only, so its transforms raise :class:`InputError` on 3D
patches.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import json
import numbers
import os
import random
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# albumentations checks for updates over the network at import unless told not to; the app and
# tests set this too, but the CLI, a notebook and a job worker come here first.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A  # noqa: E402

from svetlana_core.errors import InputError  # noqa: E402
from svetlana_core.patches.symmetry import DEFAULT_AUGMENT  # noqa: F401 (re-exported)
from svetlana_core.patches.symmetry import apply_symmetries, compose_turns, parse_switches

_COMPOSITIONS = ("OneOf", "SomeOf", "Sequential")

# Transforms that exist but cannot work on patches, with the reason shown to the user.
_NEEDS_EXTRA = "needs extra inputs (reference images, boxes or metadata) that patches do not have"
_UNSUPPORTED = {
    "Lambda": "takes Python functions, which a JSON spec cannot hold",
    "FromFloat": "changes the data type of the patch",
    "ToFloat": "changes the data type of the patch",
    "ToRGB": "changes the number of channels",
    "NoOp": "does nothing",
    **dict.fromkeys(
        (
            "FDA",
            "HistogramMatching",
            "PixelDistributionAdaptation",
            "Mosaic",
            "OverlayElements",
            "RandomCropNearBBox",
            "BBoxSafeRandomCrop",
            "RandomSizedBBoxSafeCrop",
            "AtLeastOneBBoxRandomCrop",
            "TextImage",
        ),
        _NEEDS_EXTRA,
    ),
}
_DUMMY_SIZE = (64, 64)


def available_transforms() -> dict[str, str]:
    """Albumentations transforms usable in a spec.

    Returns
    -------
    dict
        ``{name: kind}`` sorted by name, kind "pixel" (image channels only) or "spatial"
        (image and mask channel alike).
    """
    found = {}
    for name in dir(A):
        cls = getattr(A, name)
        if (
            isinstance(cls, type)
            and issubclass(cls, (A.ImageOnlyTransform, A.DualTransform))
            and not issubclass(cls, A.Transform3D)
            and cls not in (A.ImageOnlyTransform, A.DualTransform)
            and name not in _UNSUPPORTED
        ):
            found[name] = "pixel" if issubclass(cls, A.ImageOnlyTransform) else "spatial"
    return found


def _transform_class(name: Any, where: str) -> type:
    if not isinstance(name, str):
        raise InputError(f"{where} needs a 'name' (an albumentations transform), got {name!r}")
    if name in _UNSUPPORTED:
        raise InputError(
            f"albumentations transform {name!r} cannot be used on patches: {_UNSUPPORTED[name]}"
        )
    cls = getattr(A, name, None)
    if isinstance(cls, type) and issubclass(cls, A.Transform3D):
        raise InputError(
            f"albumentations transform {name!r} works on 3D volumes only; 3D patches support "
            "flips, rot90 and flip_planes"
        )
    valid = available_transforms()
    if name not in valid:
        close = difflib.get_close_matches(name, [*valid, *_COMPOSITIONS], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown albumentations transform {name!r}{hint}")
    return cls


def _plain(value: Any, where: str) -> Any:
    """A JSON-able deep copy of ``value`` (tuples become lists, numpy scalars Python numbers)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, where) for k, v in value.items()}
    raise InputError(
        f"{where} has a value of type {type(value).__name__} ({value!r}); a spec holds only "
        "numbers, strings, booleans, lists and dicts"
    )


def _pydantic_message(error: Exception) -> str:
    cause = error.__cause__
    if hasattr(cause, "errors"):
        parts = []
        for item in cause.errors():
            loc = ".".join(str(x) for x in item.get("loc", ())) or "arguments"
            shown = f"={item['input']!r}" if "input" in item and loc != "arguments" else ""
            parts.append(f"{loc}{shown}: {item.get('msg', '')}")
        return "; ".join(parts)
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _construct(cls: type, kwargs: dict[str, Any], where: str) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            transform = cls(**kwargs)
        except (ValueError, TypeError) as error:
            raise InputError(f"{where}: {_pydantic_message(error)}") from error
    # albumentations only warns about ignored or deprecated arguments; a spec must not
    # silently do something else than it says.
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            raise InputError(f"{where}: {warning.message}")
    return transform


def _check_arguments(cls: type, name: str, kwargs: Mapping[str, Any], where: str) -> None:
    accepted = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "strict")
    ]
    for key in kwargs:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(
                f"{name} got unknown argument {key!r}{hint} "
                f"(albumentations 2.x names: {', '.join(accepted)})"
            )


def _parse_transform(
    entry: Any, where: str, leaves: list[tuple[str, type, dict[str, Any]]]
) -> tuple[dict[str, Any], Any]:
    """Validate one spec entry; returns its JSON-able form and the albumentations object."""
    if not isinstance(entry, Mapping):
        raise InputError(f"{where} must be a dict with a 'name', got {entry!r}")
    name = entry.get("name")
    where = f"{where} ({name})" if isinstance(name, str) else where
    kwargs = {k: _plain(v, f"{where} argument {k!r}") for k, v in entry.items() if k != "name"}
    if name in _COMPOSITIONS:
        cls = getattr(A, name)
        children = kwargs.pop("transforms", None)
        if not isinstance(children, list) or not children:
            raise InputError(f"{where} needs a non-empty 'transforms' list")
        _check_arguments(cls, name, kwargs, where)
        parsed = [
            _parse_transform(child, f"{where} transforms[{i}]", leaves)
            for i, child in enumerate(children)
        ]
        transform = _construct(cls, {"transforms": [t for _, t in parsed], **kwargs}, where)
        return {"name": name, "transforms": [e for e, _ in parsed], **kwargs}, transform
    cls = _transform_class(name, where)
    _check_arguments(cls, name, kwargs, where)
    transform = _construct(cls, kwargs, where)
    leaves.append((where, cls, kwargs))
    return {"name": name, **kwargs}, transform


def _check_on_dummy(
    leaves: list[tuple[str, type, dict[str, Any]]],
    n_image_channels: int | None,
    size: tuple[int, int],
) -> None:
    """Run each transform once (p=1) on a synthetic patch to catch what only shows when run.

    With an unknown channel count only a change of shape is reported (errors may come from
    the guessed channel count); with a known one, any failure is.
    """
    rng = np.random.default_rng(0)
    channels = max(n_image_channels or 1, 1)
    image = rng.random((*size, channels), dtype=np.float32)
    rows, columns = np.ogrid[: size[0], : size[1]]
    mask = ((rows - size[0] / 2) ** 2 + (columns - size[1] / 2) ** 2 < (min(size) / 4) ** 2)
    mask = mask.astype(np.float32)
    for where, cls, kwargs in leaves:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                compose = A.Compose([cls(**{**kwargs, "p": 1.0})], seed=0)
                result = compose(image=image, mask=mask)
            except Exception as error:  # any failure here is a spec the patches cannot take
                if n_image_channels is None:
                    continue
                raise InputError(
                    f"{where} does not work on patches with {n_image_channels} image "
                    f"channel(s): {_pydantic_message(error)}"
                ) from error
        _refuse_new_shape(result, image, mask, where)


def _refuse_new_shape(
    result: dict[str, np.ndarray], image: np.ndarray, mask: np.ndarray, where: str | None
) -> None:
    """Refuse a transform that changed the patch shape: the patches of a batch must stack.

    `where` names the spec entry when it is checked on a synthetic patch; None at run time.
    """
    if result["image"].shape == image.shape and result["mask"].shape == mask.shape:
        return
    before, after = tuple(image.shape[:2]), tuple(result["image"].shape[:2])
    if where is None:
        raise InputError(f"augmentation changed the patch shape {before} to {after}; use "
                         "transforms that keep the patch size")
    raise InputError(f"{where} changes the patch shape from {before} to {after}; augmentations "
                     "must keep the patch size")


def _normalise_patch_shape(patch_shape: Any) -> tuple[int, ...] | None:
    if patch_shape is None:
        return None
    shape = (patch_shape,) * 2 if isinstance(patch_shape, numbers.Integral) else patch_shape
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise InputError(
            f"patch_shape={patch_shape!r} is not valid: give (rows, columns) or "
            "(planes, rows, columns)"
        )
    return shape


def _parse_spec(
    spec: Mapping[str, Any] | Sequence[Any] | None,
    n_image_channels: int | None,
    patch_shape: Any,
) -> tuple[dict[str, Any], A.Compose | None]:
    normal, entries = parse_switches(spec)  # the flips/rot90 part, shared with training
    if n_image_channels is not None and (
        not isinstance(n_image_channels, numbers.Integral)
        or isinstance(n_image_channels, bool)
        or n_image_channels < 0
    ):
        raise InputError(
            f"n_image_channels={n_image_channels!r} is not valid: give an integer >= 0"
        )
    shape = _normalise_patch_shape(patch_shape)
    leaves: list[tuple[str, type, dict[str, Any]]] = []
    parsed = [_parse_transform(e, f"transforms[{i}]", leaves) for i, e in enumerate(entries)]
    normal["transforms"] = [e for e, _ in parsed]
    if not parsed:
        return normal, None
    if shape is not None and len(shape) == 3:
        raise InputError(
            "albumentations transforms work on 2D patches only; 3D patches support flips, "
            f"rot90 and flip_planes (got transforms {[e['name'] for e in normal['transforms']]})"
        )
    _check_on_dummy(leaves, n_image_channels, shape or _DUMMY_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compose = A.Compose([t for _, t in parsed])
    return normal, compose


def validate_augment_spec(
    spec: Mapping[str, Any] | Sequence[Any] | None,
    n_image_channels: int | None = None,
    patch_shape: int | tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Check an augmentation spec; return it complete and JSON-able.

    Parameters
    ----------
    spec : dict, list or None
        See the module docstring. A list is a list of transforms; None is no augmentation.
    n_image_channels : int, optional
        Image channels of the patches (the mask channel not counted). When given, each
        transform is tried on a synthetic patch with that many channels, so that e.g. a
        3-channel-only transform on 2-channel data fails here rather than during training.
    patch_shape : int or tuple, optional
        Spatial patch shape ``(rows, columns)`` or ``(planes, rows, columns)``; checks that
        no transform changes it (default: tried on 64 x 64) and that 3D patches get no
        albumentations transform.

    Returns
    -------
    dict
        ``{"flips": bool, "rot90": bool, "flip_planes": bool, "transforms": [...]}``.

    Raises
    ------
    InputError
        Unknown key, transform or argument, a bad value, or a transform the patches cannot take.

    Examples
    --------
    >>> validate_augment_spec([{"name": "GaussNoise", "p": 0.5}])  # doctest: +NORMALIZE_WHITESPACE
    {'flips': False, 'rot90': False, 'flip_planes': False,
     'transforms': [{'name': 'GaussNoise', 'p': 0.5}]}
    """
    return _parse_spec(spec, n_image_channels, patch_shape)[0]


def spec_to_json(spec: Mapping[str, Any] | Sequence[Any] | None) -> str:
    """The validated spec as a JSON string (for configs and the project store)."""
    return json.dumps(validate_augment_spec(spec))


def spec_from_json(text: str) -> dict[str, Any]:
    """Parse and validate a JSON spec written by :func:`spec_to_json` or by hand."""
    try:
        spec = json.loads(text)
    except (TypeError, json.JSONDecodeError) as error:
        raise InputError(f"augmentation spec is not valid JSON: {error}") from error
    return validate_augment_spec(spec)


class Augment:
    """A validated augmentation pipeline; call it on one patch.

    Build it with :func:`build_augment`. Calling it is not thread-safe (one albumentations
    pipeline is shared); give each worker process its own copy (it pickles).
    """

    def __init__(
        self,
        spec: dict[str, Any],
        compose: A.Compose | None,
        n_image_channels: int | None,
        seed: int | None,
    ) -> None:
        self._spec = spec
        self._compose = compose
        self._n_image_channels = n_image_channels
        self._rng = np.random.default_rng(seed)

    @property
    def spec(self) -> dict[str, Any]:
        """The validated spec (a copy)."""
        return copy.deepcopy(self._spec)

    def __repr__(self) -> str:
        return f"Augment({json.dumps(self._spec)})"

    def __call__(self, patch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Augment one patch.

        Parameters
        ----------
        patch : np.ndarray
            ``(C, rows, columns)`` or ``(C, planes, rows, columns)``, last channel the object
            mask. Not modified.
        rng : np.random.Generator, optional
            Source of randomness; default: the generator seeded by :func:`build_augment`.

        Returns
        -------
        np.ndarray
            New float32 array of the same shape.
        """
        patch = np.asarray(patch)
        if patch.ndim not in (3, 4) or patch.shape[0] < 1:
            raise InputError(
                f"patch has shape {patch.shape}; expected (C, rows, columns) or "
                "(C, planes, rows, columns)"
            )
        if self._n_image_channels is not None and patch.shape[0] != self._n_image_channels + 1:
            raise InputError(
                f"patch has {patch.shape[0]} channels but the augmentation was built for "
                f"{self._n_image_channels} image channel(s) + 1 mask channel"
            )
        rng = self._rng if rng is None else rng
        out = patch.astype(np.float32)  # a copy: the input stays untouched
        out = self._geometry(out, rng)
        if self._compose is not None:
            if patch.ndim == 4:
                raise InputError(
                    "albumentations transforms work on 2D patches only; 3D patches support "
                    "flips, rot90 and flip_planes"
                )
            out = self._albumentations(out, rng)
        return np.ascontiguousarray(out, dtype=np.float32)

    def _geometry(self, out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Exact, 2D and 3D alike, and costs nothing: views of the patch, drawn in a fixed order
        # (planes, rows, columns, turns) so that a seed gives the same patches as always.
        planes = np.array([self._spec["flip_planes"] and out.ndim == 4 and rng.random() < 0.5])
        rows = columns = transpose = None
        if self._spec["flips"]:
            rows, columns = np.array([rng.random() < 0.5]), np.array([rng.random() < 0.5])
        if self._spec["rot90"]:
            square = out.shape[-1] == out.shape[-2]
            turns = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
            rows, columns, transpose = compose_turns(rows, columns, np.array([turns]))
        return apply_symmetries(out[None], planes, rows, columns, transpose)[0]

    def _albumentations(self, out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mask = np.ascontiguousarray(out[-1])
        # A mask-only patch still needs an "image" for albumentations; it is thrown away.
        image = out[:-1] if out.shape[0] > 1 else out[-1:]
        image = np.ascontiguousarray(np.moveaxis(image, 0, -1))
        # Draw from the caller's generator so that a seed fixes every random choice.
        self._compose.set_random_state(rng, random.Random(int(rng.integers(2**63))))
        try:
            result = self._compose(image=image, mask=mask)
        except Exception as error:  # albumentations reports bad data with many error types
            raise InputError(
                f"augmentation failed on a patch of shape {out.shape}: {error}"
            ) from error
        _refuse_new_shape(result, image, mask, None)
        new_mask = result["mask"][None].astype(np.float32)
        if out.shape[0] == 1:
            return new_mask
        return np.concatenate([np.moveaxis(result["image"], -1, 0), new_mask], axis=0)


def build_augment(
    spec: Mapping[str, Any] | Sequence[Any] | None,
    n_image_channels: int | None = None,
    patch_shape: int | tuple[int, ...] | None = None,
    seed: int | None = None,
) -> Augment:
    """Build an augmentation callable from a spec.

    Parameters
    ----------
    spec : dict, list or None
        See the module docstring; :data:`DEFAULT_AUGMENT` is flips + rot90, None is none.
    n_image_channels : int, optional
        Image channels of the patches (the mask channel not counted); enables the build-time
        check of each transform on that many channels, and a check of each patch.
    patch_shape : int or tuple, optional
        Spatial patch shape, for the build-time checks (see :func:`validate_augment_spec`).
    seed : int, optional
        Seeds the generator used when a call gets no ``rng``.

    Returns
    -------
    Augment
        ``augment(patch, rng=None) -> new float32 patch of the same shape``.

    Raises
    ------
    InputError
        As :func:`validate_augment_spec`.

    Examples
    --------
    >>> augment = build_augment(DEFAULT_AUGMENT, seed=0)
    >>> augment(np.zeros((2, 16, 16), np.float32)).shape
    (2, 16, 16)
    """
    normal, compose = _parse_spec(spec, n_image_channels, patch_shape)
    return Augment(normal, compose, n_image_channels, seed)


def augment_batch(
    augment: Augment, batch: np.ndarray, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Augment every patch of a batch independently.

    A loop over patches: albumentations draws and applies its random parameters one image
    at a time, so there is no batched form. Measured on one CPU core: ~20 microseconds per
    patch for flips + rot90 alone, ~0.4 ms per 32 x 32 patch with GaussNoise + Affine, small
    beside a training step.

    Parameters
    ----------
    augment : Augment
        From :func:`build_augment`.
    batch : np.ndarray
        ``(N, C, rows, columns)`` or ``(N, C, planes, rows, columns)``. Not modified.
    rng : np.random.Generator, optional
        Source of randomness (default: the augment's own generator).

    Returns
    -------
    np.ndarray
        New float32 array of the same shape.
    """
    batch = np.asarray(batch)
    if batch.ndim not in (4, 5):
        raise InputError(
            f"batch has shape {batch.shape}; expected (N, C, rows, columns) or "
            "(N, C, planes, rows, columns)"
        )
    out = np.empty(batch.shape, dtype=np.float32)
    for i, patch in enumerate(batch):
        out[i] = augment(patch, rng)
    return out
