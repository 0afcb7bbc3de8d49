"""The labelled objects as one in-memory set of patches, classes and split groups.

Three doors, one room: :func:`build_samples` (arrays in memory), :func:`dataset_from_files`
(image and mask files by image name with a labels table: a project, see
``Project.training_set()``) and :func:`dataset_from_folders` (folders and a labels CSV) all
crop through :func:`_build`, which reads one image at a time and writes its patches into one
array allocated once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from svetlana_core import io, models
from svetlana_core.errors import InputError
from svetlana_core.training import memory
from svetlana_core.training.config import TrainConfig, config_for_parent


@dataclass(frozen=True, eq=False)  # arrays: identity, not element-wise, equality
class ObjectSet:
    """Labelled objects as patches, in memory.

    Attributes
    ----------
    X : ndarray of float32, shape (N, C + 1, rows, columns) or (N, C + 1, planes, rows, columns)
        Image channels then the object-mask channel.
    y : ndarray of int64, shape (N,)
        Class index into ``classes``.
    classes : tuple of str
        Class names, index order.
    groups : ndarray of str, shape (N,)
        Split key of each object: no group is in both training and validation sets.
    images : ndarray of str, shape (N,)
        Image name of each object.
    labels : ndarray of int64, shape (N,)
        Object label in its mask.
    patch_size : tuple of int
        Spatial patch shape.
    image_channels : int
        C (0 for mask-only data): the channels in the patches.
    patch_mode, dilation, normalisation
        How the patches were cut (recorded in the model folder).
    channels : tuple of int, optional
        The image channels kept (``TrainConfig.channels``); None: every channel.
    source_channels : int, optional
        Channels of the image files (what a prediction must be given); default
        ``image_channels``.
    """

    X: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    groups: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    patch_size: tuple[int, ...]
    image_channels: int
    patch_mode: str = "context"
    dilation: int = 2
    normalisation: str = "percentile"
    channels: tuple[int, ...] | None = None
    source_channels: int | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def in_channels(self) -> int:
        """Channels of a patch: image channels + 1."""
        return self.image_channels + 1

    @property
    def spatial_dims(self) -> int:
        """2 or 3."""
        return self.X.ndim - 2

    def counts(self, index: np.ndarray | None = None) -> dict[str, int]:
        """Objects per class (all, or those at ``index``)."""
        y = self.y if index is None else self.y[index]
        counts = np.bincount(y, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}

    def subset(self, index: np.ndarray) -> ObjectSet:
        """A new set with the objects at ``index`` (arrays are copied)."""
        index = np.asarray(index)
        return dataclasses.replace(
            self, X=self.X[index], y=self.y[index], groups=self.groups[index],
            images=self.images[index], labels=self.labels[index],
        )


@dataclass(frozen=True)
class _Source:
    """One image to crop: its name, a loader and its labelled objects (label, class)."""

    name: str
    load: Callable[[bool], tuple[np.ndarray | None, np.ndarray]]  # mask_only -> (image, mask)
    labels: pd.DataFrame


def _labels_frame(labels: Any, where: str) -> pd.DataFrame:
    if not isinstance(labels, pd.DataFrame):
        raise InputError(f"{where}: labels must be a DataFrame with columns label, class")
    missing = [c for c in ("label", "class") if c not in labels.columns]
    if missing:
        raise InputError(f"{where}: labels table has no column(s) {', '.join(missing)}")
    frame = labels[["label", "class"]].copy()
    if frame["class"].isna().any():
        raise InputError(f"{where}: {int(frame['class'].isna().sum())} label(s) have no class")
    label = pd.to_numeric(frame["label"], errors="coerce")
    if label.isna().any() or (label % 1 != 0).any() or (label <= 0).any():
        bad = frame["label"][label.isna() | (label % 1 != 0) | (label <= 0)].tolist()[:5]
        raise InputError(f"{where}: labels must be integers > 0; found {bad}")
    frame["label"] = label.astype(np.int64)
    frame["class"] = frame["class"].astype(str)
    duplicated = frame["label"].duplicated(keep=False)
    if duplicated.any():
        clash = frame[duplicated].groupby("label")["class"].nunique()
        clash = clash[clash > 1]
        if len(clash):
            raise InputError(
                f"{where}: object(s) {', '.join(map(str, clash.index[:5]))} have more than one "
                "class"
            )
        frame = frame.drop_duplicates("label")
    return frame.reset_index(drop=True)


def _group_keys(images: np.ndarray, group_by: Callable[[str], Any] | None) -> np.ndarray:
    if group_by is None:
        return images.astype(str)
    unique, inverse = np.unique(images, return_inverse=True)
    try:
        keys = np.array([str(group_by(str(name))) for name in unique], dtype=object)
    except Exception as error:  # a user callable: report which name it failed on
        raise InputError(f"group_by failed on an image name: {error}") from error
    return keys[inverse].astype(str)


def _resolve_classes(present: Iterable[str], classes: Sequence[str] | None) -> tuple[str, ...]:
    present = set(present)
    if classes is None:
        ordered = tuple(sorted(present))
    else:
        ordered = tuple(str(c) for c in classes)
        if len(set(ordered)) != len(ordered):
            raise InputError(f"classes repeats names: {list(ordered)}")
        extra = sorted(present - set(ordered))
        if extra:
            raise InputError(
                f"labels use class(es) {extra} that are not in classes {list(ordered)}"
            )
    if len(ordered) < 2 or len(present) < 2:
        raise InputError(
            f"training needs objects of at least two classes; the labels have "
            f"{len(present)} ({', '.join(sorted(present)) or 'none'})"
        )
    return ordered



def _auto_size(sources: list[_Source]) -> tuple[tuple[int, ...], dict[str, pd.DataFrame]]:
    """The auto patch size, from every object table: the masks are read alone in a first pass
    (the tables are kept for the second)."""
    from svetlana_core import objects, patches

    tables = {}
    for source in sources:
        _, mask = source.load(True)
        tables[source.name] = objects.object_table(mask)
    ndims = {tables[s.name].filter(like="centroid_").shape[1] for s in sources}
    if len(ndims) > 1:
        raise InputError("the masks mix 2D and 3D; train on one kind at a time")
    return patches.auto_patch_size(pd.concat(list(tables.values())), ndims.pop()), tables


def _crop(source: _Source, image: np.ndarray | None, mask: np.ndarray, table: pd.DataFrame,
          size: Any, config: TrainConfig) -> np.ndarray:
    """The patches of one image's labelled objects, in the order of its labels."""
    from svetlana_core import patches

    wanted = source.labels["label"].to_numpy()
    unknown = wanted[~np.isin(wanted, table["label"].to_numpy())]
    if unknown.size:
        more = f" and {unknown.size - 5} more" if unknown.size > 5 else ""
        raise InputError(
            f"image {source.name}: label(s) {', '.join(map(str, unknown[:5]))}{more} are not "
            f"objects of its mask ({len(table)} objects)"
        )
    return patches.extract(
        image, mask, labels=wanted, size=size, mode=config.patch_mode,
        normalisation=config.normalisation, dilation=config.dilation, table=table,
    )


def _build(
    sources: list[_Source],
    config: TrainConfig,
    classes: Sequence[str] | None,
    group_by: Callable[[str], Any] | None,
) -> ObjectSet:
    from svetlana_core import objects

    if not sources:
        raise InputError("there are no labelled objects to train on")
    class_names = _resolve_classes(
        pd.concat([s.labels["class"] for s in sources]).unique(), classes
    )
    size, tables = config.patch_size, {}
    if size is None:
        size, tables = _auto_size(sources)
    models.check_patch_size(config.arch, config.arch_params, size)
    X, filled, kind = None, 0, None
    for source in sources:
        image, mask = source.load(False)
        source_channels = 0 if image is None else image.shape[0]
        image = _pick_channels(image, config.channels, source.name)
        channels = 0 if image is None else image.shape[0]
        if kind is None:
            kind = (channels, mask.ndim, source.name, source_channels)
        elif (channels, mask.ndim) != kind[:2] or source_channels != kind[3]:
            raise InputError(
                f"image {source.name} has {source_channels} channel(s) and {mask.ndim}D objects "
                f"but {kind[2]} has {kind[3]} channel(s) and {kind[1]}D; train on images of one "
                "kind"
            )
        table = tables.pop(source.name, None)
        cut = _crop(source, image, mask,
                    objects.object_table(mask) if table is None else table, size, config)
        if X is None:  # allocated once: concatenating per-image arrays would double the memory
            n_objects = sum(len(s.labels) for s in sources)
            # before the allocation that would not fit: one line naming what to lower
            memory.check_fits(config.arch, config.arch_params, cut.shape[2:], config.batch_size,
                              n_objects, cut.shape[1], step_on_cpu=_step_on_cpu(config.device))
            X = np.empty((n_objects, *cut.shape[1:]), dtype=np.float32)
        X[filled : filled + len(cut)] = cut
        filled += len(cut)
    codes = {c: i for i, c in enumerate(class_names)}
    y = np.concatenate([s.labels["class"].map(codes).to_numpy() for s in sources])
    images = np.concatenate([np.full(len(s.labels), s.name, dtype=object) for s in sources])
    labels = np.concatenate([s.labels["label"].to_numpy() for s in sources])
    return ObjectSet(
        X=X, y=y.astype(np.int64), classes=class_names,
        groups=_group_keys(images, group_by), images=images.astype(str),
        labels=labels.astype(np.int64), patch_size=tuple(int(s) for s in X.shape[2:]),
        image_channels=int(kind[0]), patch_mode=config.patch_mode,
        dilation=int(config.dilation), normalisation=config.normalisation,
        channels=config.channels, source_channels=int(kind[3]),
    )


def _pick_channels(image: np.ndarray | None, channels: Sequence[int] | None,
                   name: str) -> np.ndarray | None:
    """The channels of ``image`` a config trains on (all when ``channels`` is None)."""
    if channels is None:
        return image
    if image is None:
        raise InputError(f"channels={list(channels)} picks image channels but {name} is "
                         "mask-only data (no image)")
    if max(channels) >= image.shape[0]:
        raise InputError(f"channels={list(channels)}: image {name} has {image.shape[0]} "
                         f"channel(s) (0 to {image.shape[0] - 1})")
    return image[list(channels)]


def _step_on_cpu(device: str) -> bool:
    """Whether a run with this ``device`` setting trains on the CPU (its step then shares
    the memory with the patches)."""
    if device == "cpu":
        return True
    if device != "auto":
        return False
    from svetlana_core.models.device import resolve_device  # imports torch: training needs it

    return resolve_device(device).type == "cpu"


def build_samples(
    items: Iterable[tuple[str, np.ndarray | None, np.ndarray, pd.DataFrame]],
    config: TrainConfig,
    classes: Sequence[str] | None = None,
    group_by: Callable[[str], Any] | None = None,
) -> ObjectSet:
    """Crop the labelled objects of in-memory images into one :class:`ObjectSet`.

    Parameters
    ----------
    items : iterable of (image_name, image, mask, labels)
        ``image`` channel-first ``(C, [planes,] rows, columns)`` or None (mask only),
        ``mask`` ``([planes,] rows, columns)`` integer labels, ``labels`` a DataFrame with
        columns ``label`` and ``class`` (other columns ignored). Images without labels may be
        left out.
    config : TrainConfig
        Uses ``patch_size`` (None: auto from every object of the masks), ``patch_mode``,
        ``dilation``, ``normalisation``, ``arch``/``arch_params`` (patch size check).
    classes : sequence of str, optional
        Class names in index order (every labelled class must be in it). Default: the labelled
        classes, sorted.
    group_by : callable, optional
        ``image_name -> group key`` for the split (default: the image name itself), e.g.
        ``lambda name: name.split("_")[1]`` groups CoNSeP tiles by source image.

    Returns
    -------
    ObjectSet
        Objects in the order of ``items`` then of each labels table.

    Raises
    ------
    InputError
        Labels that are not objects of their mask (the image and up to 5 labels named), fewer
        than two classes, images of mixed channels or dimensions, a patch too small for the
        network.
    """
    sources = []
    seen = set()
    for name, image, mask, labels in items:
        name = str(name)
        if name in seen:
            raise InputError(f"image {name} appears twice in the training items")
        seen.add(name)
        frame = _labels_frame(labels, f"image {name}")
        if len(frame):
            sources.append(_Source(name, lambda _, i=image, m=mask: (i, m), frame))
    return _build(sources, config, classes, group_by)


def _match_images(labels: pd.DataFrame, files: Mapping[str, Any], named_by: str,
                  where: str) -> pd.DataFrame:
    """``labels`` with each ``image`` given as a key of ``files`` (a file stem is accepted);
    raises naming up to 5 images that are not in ``files``."""
    stems = {io.image_stem(name): name for name in files}
    labels = labels.assign(image=labels["image"].map(lambda n: n if n in files else
                                                     stems.get(n, n)))
    unknown = sorted(set(labels["image"]) - set(files))
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InputError(
            f"{named_by} names image(s) {', '.join(map(str, unknown[:5]))}{more} that are not "
            f"in {where}"
        )
    return labels


def dataset_from_files(
    files: Mapping[str, tuple[str | os.PathLike | None, str | os.PathLike]],
    labels: pd.DataFrame,
    config: TrainConfig,
    classes: Sequence[str] | None = None,
    group_by: Callable[[str], Any] | None = None,
    axes: str | Mapping[str, str | None] | None = None,
) -> ObjectSet:
    """Build the training set from image and mask files and a labels table.

    Parameters
    ----------
    files : mapping
        ``{image name: (image path or None for mask-only data, mask path)}``, as
        :func:`svetlana_core.io.folder_files` and ``Project.training_set().files`` give it. Only the
        images that have labels are read, one at a time.
    labels : DataFrame
        Columns ``image`` (a key of ``files``, or its file stem), ``label``, ``class`` (other
        columns ignored), e.g. :func:`svetlana_core.io.read_labels_csv` or
        ``Project.labels()``.
    config, classes, group_by
        As :func:`build_samples`. With ``config.continue_from`` the parent's patch settings
        are used (:func:`config_for_parent`).
    axes : str or mapping, optional
        Axes of the image files for :func:`svetlana_core.io.read_image`: one for all, or one
        per image name (None: guessed).

    Returns
    -------
    ObjectSet
        Objects sorted by image name, then in the order of the labels.

    Raises
    ------
    InputError
        Labels naming an image that is not in ``files`` (up to 5 named), no labels, and
        everything :func:`build_samples` and :mod:`svetlana_core.io` raise.
    """
    config = config_for_parent(config)
    missing = [c for c in ("image", "label", "class") if c not in getattr(labels, "columns", ())]
    if missing:
        raise InputError(f"labels table has no column(s) {', '.join(missing)}")
    labels = _match_images(labels, files, "the labels table", "the files given")
    sources = []
    for name, rows in labels.groupby("image", sort=True):
        image_path, mask_path = files[name]
        image_axes = axes.get(name) if isinstance(axes, Mapping) else axes
        sources.append(_Source(str(name), _pair_loader(image_path, mask_path, image_axes),
                               _labels_frame(rows, f"image {name}")))
    return _build(sources, config, classes, group_by)


def dataset_from_training_set(
    inputs: Any, config: TrainConfig, group_by: Callable[[str], Any] | None = None
) -> ObjectSet:
    """The training set of a project: :func:`dataset_from_files` on what
    ``Project.training_set()`` returns (its ``files``, ``labels``, ``classes`` in project
    order and ``axes``). Taken as any object with those attributes, so training never imports
    the store."""
    return dataset_from_files(inputs.files, inputs.labels, config, inputs.classes, group_by,
                              inputs.axes)


def dataset_from_folders(
    images_dir: str | os.PathLike | None,
    masks_dir: str | os.PathLike,
    labels_csv: str | os.PathLike,
    config: TrainConfig,
    classes: Sequence[str] | None = None,
    group_by: Callable[[str], Any] | None = None,
    axes: str | None = None,
    label_name: str | None = None,
) -> ObjectSet:
    """Build the training set from a folder of images, a folder of masks and a labels CSV.

    Parameters
    ----------
    images_dir : path or None
        Images, paired with masks by :func:`svetlana_core.io.pair_files`. None: mask-only
        data, every mask file of ``masks_dir`` is an "image" named by its file name.
    masks_dir : path or None
        Masks (None: the images folder).
    labels_csv : path
        ``image,label,class``; ``image`` is the image file name (or its stem).
    config, classes, group_by, axes
        As :func:`dataset_from_files`.
    label_name : str, optional
        The label image of OME-Zarr images that is their mask (:func:`svetlana_core.io.pair_files`).

    Raises
    ------
    InputError
        Labels naming an image that is not in the folder (up to 5 named), and everything
        :func:`dataset_from_files` and :mod:`svetlana_core.io` raise.
    """
    table = io.read_labels_csv(labels_csv)
    files = io.folder_files(images_dir, masks_dir, label_name=label_name)
    where = masks_dir if images_dir is None else images_dir
    table = _match_images(table, files, f"labels file {labels_csv}", str(where))
    return dataset_from_files(files, table, config, classes, group_by, axes)


def _pair_loader(
    image_path: str | os.PathLike | None, mask_path: str | os.PathLike, axes: str | None
) -> Callable[[bool], tuple[np.ndarray | None, np.ndarray]]:
    def load(mask_only: bool) -> tuple[np.ndarray | None, np.ndarray]:
        if mask_only:
            return None, io.read_mask(mask_path)
        return io.load_pair(image_path, mask_path, axes=axes)

    return load
