"""How a model wants its patches cut (from its ``model.json``), the check that an image and mask
fit it, and the patches of every object cut a chunk at a time in bounded memory."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from svetlana_core import patches
from svetlana_core.errors import InputError
from svetlana_core.objects import object_table
from svetlana_core.objects import SPATIAL_AXES

if TYPE_CHECKING:
    from svetlana_core.models import LoadedModel


@dataclass(frozen=True)
class _PatchSpec:
    """How a model wants its patches cut, read from its ``model.json``."""

    size: tuple[int, ...]
    mode: str
    dilation: int
    normalisation: str
    image_channels: int
    spatial_dims: int
    classes: tuple[str, ...]
    channels: tuple[int, ...] | None = None  # of the image files; None: all
    source_channels: int | None = None  # channels of the image files (default image_channels)


def _spec(model: LoadedModel) -> _PatchSpec:
    meta = model.meta
    try:
        size = tuple(int(s) for s in (getattr(model, "patch_size", None) or meta["patch_size"]))
        spec = _PatchSpec(
            size=size,
            mode=str(meta.get("patch_mode", "context")),
            dilation=int(meta.get("dilation", 2)),
            normalisation=str(meta.get("normalisation", "percentile")),
            image_channels=int(meta["image_channels"]),
            spatial_dims=int(meta.get("spatial_dims", len(size))),
            classes=tuple(str(c) for c in (getattr(model, "classes", None) or meta["classes"])),
            channels=None if meta.get("channels") is None
            else tuple(int(c) for c in meta["channels"]),
            source_channels=None if meta.get("source_channels") is None
            else int(meta["source_channels"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"model.json lacks or has a bad value for {error}") from None
    if spec.normalisation not in patches.NORMALISATIONS:
        raise InputError(
            f"model normalisation {spec.normalisation!r} is not one of "
            f"{list(patches.NORMALISATIONS)}"
        )
    if len(spec.size) != spec.spatial_dims:
        raise InputError(
            f"model patch_size {list(spec.size)} does not have {spec.spatial_dims} axes"
        )
    return spec


def _check_inputs(spec: _PatchSpec, image: np.ndarray | None,
                  mask: np.ndarray) -> np.ndarray | None:
    """Check an image and mask against the model; returns the image's channels the model
    sees (``model.json``'s ``channels``: those it was trained on)."""
    mask = np.asarray(mask)
    if mask.ndim != spec.spatial_dims:
        raise InputError(
            f"mask has shape {mask.shape} ({mask.ndim}D) but the model classifies "
            f"{spec.spatial_dims}D objects"
        )
    if image is None:
        if spec.image_channels:
            raise InputError(
                f"no image was given but the model expects {spec.image_channels} image "
                "channel(s) beside the mask"
            )
        return
    if spec.image_channels == 0:
        raise InputError(
            f"image has {image.shape[0]} channel(s) but the model reads the mask only; "
            "pass image=None"
        )
    if image.ndim != spec.spatial_dims + 1:
        raise InputError(
            f"image has shape {image.shape}; expected channel-first "
            f"(C, {', '.join(SPATIAL_AXES[spec.spatial_dims])})"
        )
    expected = spec.image_channels if spec.source_channels is None else spec.source_channels
    if image.shape[0] != expected:
        picked = "" if spec.channels is None else \
            f" channels (of which it sees {list(spec.channels)})"
        raise InputError(
            f"image has {image.shape[0]} channel(s) (shape {image.shape}) but the model was "
            f"trained on {expected}{picked}"
        )
    if image.shape[1:] != mask.shape:
        raise InputError(
            f"image has spatial shape {image.shape[1:]} but mask has shape {mask.shape}"
        )
    return image if spec.channels is None else image[list(spec.channels)]


class _Cropper:
    """Cuts object patches exactly as the model was trained, chunk by chunk.

    With ``"percentile"`` normalisation the percentiles are estimated once per image (the same
    strided estimate as :func:`patches.normalise`) and each chunk is cut from the raw image and
    scaled patch by patch, instead of normalising the whole image to float32 first: for an
    8000 × 8000 image that saves 256 MB and a pass over 64 M pixels. The result is bit for bit
    that of ``patches.extract(..., normalisation="percentile")`` (tests check it): the same
    float32 arithmetic, then, as ``extract`` does, zeros outside the image and, in
    ``"masked"`` mode, the product with the dilated object mask. ``"minmax"`` and ``"none"``
    go straight to ``extract``.
    """

    def __init__(
        self, spec: _PatchSpec, image: np.ndarray | None, mask: np.ndarray, table: pd.DataFrame
    ) -> None:
        self.spec = spec
        self.image = image
        self.mask = mask
        self.table = table
        self.labels = table["label"].to_numpy()
        centroids = table[[f"centroid_{a}" for a in SPATIAL_AXES[spec.spatial_dims]]]
        # Rounded half up, as extract does.
        centres = np.floor(centroids.to_numpy(np.float64) + 0.5).astype(np.intp)
        self.corners = centres - np.asarray(spec.size) // 2
        self.value_range = None
        if image is not None and spec.normalisation == "percentile":
            # The estimate patches.extract normalises with; extract takes no range of its
            # own, hence the scaling below instead of a plain loop over extract.
            self.value_range = patches.percentile_range(image, (1.0, 99.8))

    def crop(self, start: int, stop: int) -> np.ndarray:
        """Patches of table rows ``start:stop``, shape (n, C + 1, *size), float32."""
        spec = self.spec
        labels = self.labels[start:stop]
        if self.value_range is None:
            return patches.extract(
                self.image, self.mask, labels=labels, size=spec.size, mode=spec.mode,
                normalisation=spec.normalisation, dilation=spec.dilation, table=self.table,
            )
        cut = patches.extract(
            self.image, self.mask, labels=labels, size=spec.size, mode="context",
            normalisation="none", table=self.table,
        )
        values = cut[:, :-1]
        shape = (1, -1) + (1,) * spec.spatial_dims
        low, span = self.value_range
        values -= low.reshape(shape)
        values /= span.reshape(shape)
        corners = self.corners[start:stop]
        size = np.asarray(spec.size)
        extent = np.asarray(self.mask.shape)
        border = np.flatnonzero(((corners < 0) | (corners + size > extent)).any(axis=1))
        if border.size:  # padding is 0 after normalisation, as in extract
            inside = np.ones((border.size, *spec.size), dtype=bool)
            for axis in range(spec.spatial_dims):  # a loop over axes, not objects
                position = corners[border, axis, None] + np.arange(size[axis])
                view = [border.size] + [1] * spec.spatial_dims
                view[axis + 1] = size[axis]
                inside &= ((position >= 0) & (position < extent[axis])).reshape(view)
            values[border] *= inside[:, np.newaxis]
        if spec.mode == "masked":
            own = cut[:, -1] > 0.5
            if spec.dilation:
                own = patches.dilate_masks(own, int(spec.dilation))  # extract's own dilation
            values *= own[:, np.newaxis]
        return cut


def _batches(
    cropper: _Cropper, n: int, batch_size: int, chunk_objects: int
) -> Iterator[tuple[slice, np.ndarray, float]]:
    """Yield ``(table_rows, batch, crop_seconds)``: batches of exactly ``batch_size`` patches
    (the last may be shorter) in table order, cut ``chunk_objects`` objects at a time, so the
    batches do not depend on ``chunk_objects``."""
    pending: list[np.ndarray] = []
    n_pending = 0
    first = 0
    crop_time = 0.0
    for start in range(0, n, chunk_objects):
        stop = min(start + chunk_objects, n)
        tic = time.perf_counter()
        pending.append(cropper.crop(start, stop))
        crop_time += time.perf_counter() - tic
        n_pending += stop - start
        while n_pending >= batch_size or (stop == n and n_pending):
            take = need = min(batch_size, n_pending)
            parts = []
            while need:  # views of the chunks; a copy only for a batch that straddles two
                head = pending[0]
                if len(head) <= need:
                    parts.append(pending.pop(0))
                    need -= len(head)
                else:
                    parts.append(head[:need])
                    pending[0] = head[need:]
                    need = 0
            if len(parts) == 1:
                batch = parts[0]
            else:
                tic = time.perf_counter()
                batch = np.concatenate(parts)
                crop_time += time.perf_counter() - tic
            n_pending -= take
            yield slice(first, first + take), batch, crop_time
            crop_time = 0.0
            first += take


def object_patches(
    model: LoadedModel,
    image: np.ndarray | None,
    mask: np.ndarray,
    labels: Sequence[int] | np.ndarray | None = None,
    table: pd.DataFrame | None = None,
) -> np.ndarray:
    """The patches of some objects exactly as :func:`predict_image` feeds them to the network.

    Parameters
    ----------
    model : LoadedModel
        Its ``model.json`` gives the patch size, mode, dilation and normalisation.
    image : ndarray, shape (C, rows, columns) or (C, planes, rows, columns), or None
        Channel-first image (None for a mask-only model).
    mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
        Label mask, 0 = background.
    labels : sequence of int, optional
        Objects to cut, in this order; default every label, ascending.
    table : pandas.DataFrame, optional
        :func:`~svetlana_core.objects.object_table` of ``mask``, when the caller has it.

    Returns
    -------
    ndarray of float32, shape (N, C + 1, *patch_size)

    Raises
    ------
    InputError
        If the image or mask does not fit the model, or a label is not in the mask.
    """
    spec = _spec(model)
    image = None if image is None else np.asarray(image)
    image = _check_inputs(spec, image, mask)
    table = object_table(mask) if table is None else table
    if labels is not None:
        wanted = np.asarray(labels)
        rows = pd.Index(table["label"].to_numpy()).get_indexer(wanted.ravel())
        if (rows < 0).any():
            missing = wanted.ravel()[rows < 0][:10].tolist()
            raise InputError(f"labels {missing} are not in the mask")
        table = table.iloc[rows].reset_index(drop=True)
    return _Cropper(spec, image, mask, table).crop(0, len(table))
