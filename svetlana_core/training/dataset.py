"""The labelled objects as one in-memory set of patches, classes and split groups."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
import numpy as np
import pandas as pd
from svetlana_core import io
from svetlana_core import models
from svetlana_core.errors import InputError  # noqa: E402
from svetlana_core.training.config import TrainConfig, config_for_parent

# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


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
        C (0 for mask-only data).
    patch_mode, dilation, normalisation
        How the patches were cut (recorded in the model folder).
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


#: The contract's names for the same things.
PatchDataset = ObjectSet


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


def _build(
    sources: list[_Source],
    config: TrainConfig,
    classes: Sequence[str] | None,
    group_by: Callable[[str], Any] | None,
) -> ObjectSet:
    from svetlana_core import objects
    from svetlana_core import patches

    if not sources:
        raise InputError("there are no labelled objects to train on")
    class_names = _resolve_classes(
        pd.concat([s.labels["class"] for s in sources]).unique(), classes
    )
    size = config.patch_size
    tables: dict[str, pd.DataFrame] = {}
    if size is None:
        # The auto size needs every object table first: read the masks alone in a first pass.
        for source in sources:
            _, mask = source.load(True)
            tables[source.name] = objects.object_table(mask)
        ndims = {tables[s.name].filter(like="centroid_").shape[1] for s in sources}
        if len(ndims) > 1:
            raise InputError("the masks mix 2D and 3D; train on one kind at a time")
        size = patches.auto_patch_size(pd.concat(list(tables.values())), ndims.pop())
    models.check_patch_size(config.arch, config.arch_params, size)

    n_total = sum(len(s.labels) for s in sources)
    X = None
    filled = 0
    image_channels = None
    spatial_dims = None
    for source in sources:
        image, mask = source.load(False)
        table = tables.pop(source.name, None)
        if table is None:
            table = objects.object_table(mask)
        wanted = source.labels["label"].to_numpy()
        unknown = wanted[~np.isin(wanted, table["label"].to_numpy())]
        if unknown.size:
            more = f" and {unknown.size - 5} more" if unknown.size > 5 else ""
            raise InputError(
                f"image {source.name}: label(s) {', '.join(map(str, unknown[:5]))}{more} are not "
                f"objects of its mask ({len(table)} objects)"
            )
        channels = 0 if image is None else image.shape[0]
        if image_channels is None:
            image_channels, spatial_dims = channels, mask.ndim
        elif channels != image_channels or mask.ndim != spatial_dims:
            raise InputError(
                f"image {source.name} has {channels} channel(s) and {mask.ndim}D objects but "
                f"{sources[0].name} has {image_channels} channel(s) and {spatial_dims}D; "
                "train on images of one kind"
            )
        cut = patches.extract(
            image, mask, labels=wanted, size=size, mode=config.patch_mode,
            normalisation=config.normalisation, dilation=config.dilation, table=table,
        )
        if X is None:  # allocated once: concatenating per-image arrays would double the memory
            X = np.empty((n_total, *cut.shape[1:]), dtype=np.float32)
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
        image_channels=int(image_channels), patch_mode=config.patch_mode,
        dilation=int(config.dilation), normalisation=config.normalisation,
    )


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


#: The contract's name.
build_dataset = build_samples


def dataset_from_folders(
    images_dir: str | os.PathLike | None,
    masks_dir: str | os.PathLike,
    labels_csv: str | os.PathLike,
    config: TrainConfig,
    classes: Sequence[str] | None = None,
    group_by: Callable[[str], Any] | None = None,
    axes: str | None = None,
) -> ObjectSet:
    """Build the training set from a folder of images, a folder of masks and a labels CSV.

    Parameters
    ----------
    images_dir : path or None
        Images, paired with masks by :func:`svetlana_core.io.pair_files`. None: mask-only
        data, every mask file of ``masks_dir`` is an "image" named by its file name.
    masks_dir : path
        Masks.
    labels_csv : path
        ``image,label,class``; ``image`` is the image file name (or its stem).
    config, classes, group_by
        As :func:`build_samples`. With ``config.continue_from`` the parent's patch settings
        are used (:func:`config_for_parent`).
    axes : str, optional
        Axes of the image files, for :func:`svetlana_core.io.read_image`.

    Raises
    ------
    InputError
        Labels naming an image that is not in the folder (up to 5 named), and everything
        :func:`build_samples` and :mod:`svetlana_core.io` raise.
    """
    config = config_for_parent(config)
    table = io.read_labels_csv(labels_csv)
    if images_dir is None:
        masks_dir = Path(masks_dir)
        if not masks_dir.is_dir():
            raise InputError(f"mask folder {masks_dir} does not exist or is not a folder")
        files = {
            p.name: (None, p)
            for p in sorted(masks_dir.iterdir())
            if p.is_file() and not p.name.startswith(".")
            and p.suffix.lower() in io.MASK_EXTENSIONS
        }
    else:
        files = {p.image.name: (p.image, p.mask) for p in io.pair_files(images_dir, masks_dir)}
    stems = {Path(name).stem: name for name in files}
    table["image"] = table["image"].map(lambda n: n if n in files else stems.get(n, n))
    unknown = sorted(set(table["image"]) - set(files))
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        where = masks_dir if images_dir is None else images_dir
        raise InputError(
            f"labels file {labels_csv} names image(s) {', '.join(unknown[:5])}{more} that are "
            f"not in {where}"
        )
    sources = []
    for name, labels in table.groupby("image", sort=True):
        image_path, mask_path = files[name]
        sources.append(_Source(
            name, _pair_loader(image_path, mask_path, axes), _labels_frame(labels, f"image {name}")
        ))
    return _build(sources, config, classes, group_by)


def _pair_loader(
    image_path: Path | None, mask_path: Path, axes: str | None
) -> Callable[[bool], tuple[np.ndarray | None, np.ndarray]]:
    def load(mask_only: bool) -> tuple[np.ndarray | None, np.ndarray]:
        if mask_only:
            return None, io.read_mask(mask_path)
        return io.load_pair(image_path, mask_path, axes=axes)

    return load


def dataset_from_project(
    project: Any,
    config: TrainConfig,
    group_by: Callable[[str], Any] | None = None,
) -> ObjectSet:
    """Build the training set from the current labels of a project.

    Parameters
    ----------
    project : svetlana_core.store.Project or path
        The project; its class order (``classes()``) sets the class indices (classes with no
        labelled object are left out).
    config, group_by
        As :func:`build_samples`.

    Raises
    ------
    InputError
        No labels, an image file that cannot be read (named by :mod:`svetlana_core.io`), labels
        that are not objects of their mask.
    """
    from svetlana_core.store import Project

    if not isinstance(project, Project):
        project = Project.open(project)
    config = config_for_parent(config)
    labels = project.labels()
    if labels.empty:
        raise InputError(f"project {project.folder} has no labelled objects to train on")
    images = project.images().set_index("name")
    present = set(labels["class"])
    order = [c for c in project.classes()["name"] if c in present]
    sources = []
    for name, rows in labels.groupby("image", sort=True):
        record = images.loc[name]
        image_path = None if record["path"] is None or pd.isna(record["path"]) else record["path"]
        axes = None if record["axes"] is None or pd.isna(record["axes"]) else record["axes"]
        sources.append(_Source(
            str(name), _pair_loader(image_path, record["mask_path"], axes),
            _labels_frame(rows, f"image {name}"),
        ))
    return _build(sources, config, order, group_by)
