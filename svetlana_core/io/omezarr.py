"""OME-Zarr (OME-NGFF) images, their label images and HCS plates: read lazily, write labels.

An OME-Zarr image is a folder (``cells.ome.zarr``) holding a multiscale pyramid; Svetlana reads
level 0 only (the full resolution), and only that array's chunks. Its masks are the label images
of its ``labels/`` group. Paths name what they hold:

* ``cells.ome.zarr`` -- an image (its mask: a label image, see :func:`label_names`);
* ``cells.ome.zarr/labels/nuclei`` -- a label image, read as a mask;
* ``plate.ome.zarr/B/3/0`` -- field 0 of well B3 of an HCS plate, an image like any other,
  named ``plate_B03_f0`` (:func:`image_name`) so that its well is read from its name.

Both NGFF 0.4 (Zarr v2, ``.zattrs``) and 0.5 (Zarr v3, attributes under ``"ome"``) are read,
with the ``zarr`` library. Labels are written with ``ome-zarr``'s own writer
(:func:`write_class_labels`), in the format of the image they go into, so napari (with
napari-ome-zarr) and vizarr show them coloured by class.

Nothing here imports zarr at module import: the CLI's ``--help`` and TIFF-only runs skip it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from svetlana_core.errors import InputError, listing
from svetlana_core.values import rgb

if TYPE_CHECKING:  # zarr and pandas load inside the functions
    import pandas as pd
    import zarr

#: Folder names ending so (in any case) are Zarr stores: ``x.zarr`` and ``x.ome.zarr``.
ZARR_SUFFIX = ".zarr"

#: NGFF axis names -> the axis letters of :mod:`svetlana_core.io` (tifffile's letters).
_AXIS_LETTERS = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}

#: Name of the label image that prediction writes.
CLASSES_LABEL = "svetlana_classes"


def is_zarr_path(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is, or lies inside, a Zarr store (a folder named ``*.zarr``).

    Decided from the name, and a file is never one (a TIFF in a folder that happens to be
    named ``run.zarr`` is a TIFF).

    >>> is_zarr_path("a/cells.ome.zarr"), is_zarr_path("p.zarr/B/3/0"), is_zarr_path("a.tif")
    (True, True, False)
    """
    named = any(part.lower().endswith(ZARR_SUFFIX) and len(part) > len(ZARR_SUFFIX)
                for part in Path(path).parts)
    return named and not os.path.isfile(path)


def is_store(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a Zarr group on disk (its ``zarr.json``, or ``.zgroup`` in Zarr v2)."""
    path = Path(path)
    return is_zarr_path(path) and any((path / name).is_file()
                                      for name in ("zarr.json", ".zgroup", ".zattrs"))


def _split(path: Path) -> tuple[Path, tuple[str, ...]]:
    """The store folder of `path` (its last ``*.zarr`` part) and the parts inside it."""
    parts = path.parts
    for k in range(len(parts) - 1, -1, -1):
        if parts[k].lower().endswith(ZARR_SUFFIX):
            return Path(*parts[: k + 1]), parts[k + 1:]
    raise InputError(f"{path} is not inside a Zarr store (a folder named *.zarr)")


def zarr_stem(path: str | os.PathLike[str]) -> str:
    """A store's name without ``.ome.zarr`` / ``.zarr``: ``"cells"`` for ``cells.ome.zarr``."""
    name = Path(path).name
    return re.sub(r"(\.ome)?\.zarr$", "", name, flags=re.IGNORECASE) or name


def image_name(path: str | os.PathLike[str]) -> str:
    """The name an image goes by in projects and outputs.

    A file's name; the store's folder name for an OME-Zarr image; ``<plate>_<well>_f<field>``
    for a field of an HCS plate (``plate.ome.zarr/B/3/0`` is ``plate_B03_f0``), so the well is
    read from the name as for any plate file.

    >>> image_name("x/plate.ome.zarr/B/3/0"), image_name("x/cells.ome.zarr"), image_name("a.tif")
    ('plate_B03_f0', 'cells.ome.zarr', 'a.tif')
    """
    path = Path(path)
    if not is_zarr_path(path):
        return path.name
    store, inner = _split(path)
    if len(inner) == 3 and inner[1].isdigit():
        row, column, field = inner
        return f"{zarr_stem(store)}_{row.upper()}{int(column):02d}_f{field}"
    if not inner:
        return store.name
    return f"{zarr_stem(store)}_{'_'.join(inner)}"


def image_stem(path: str | os.PathLike[str]) -> str:
    """The stem of :func:`image_name`, which names an image's output files.

    >>> image_stem("x/cells.ome.zarr"), image_stem("p.zarr/A/1/0"), image_stem("a.tif")
    ('cells', 'p_A01_f0', 'a')
    """
    path = Path(path)
    if not is_zarr_path(path):
        return path.stem
    name = image_name(path)
    return zarr_stem(name) if name.lower().endswith(ZARR_SUFFIX) else name


def _open_group(path: Path, what: str) -> "zarr.Group":
    import zarr

    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    try:
        return zarr.open_group(str(path), mode="r")
    except Exception as error:  # zarr raises several types for a folder that is not a group
        raise InputError(f"{what} {path} is not a readable Zarr group "
                         f"({type(error).__name__}: {error})") from None


def _ngff(group: "zarr.Group") -> dict[str, Any]:
    """The OME-NGFF attributes of a group: under ``"ome"`` in 0.5, at the top in 0.4."""
    attributes = dict(group.attrs)
    ome = attributes.get("ome")
    return dict(ome) if isinstance(ome, Mapping) else attributes


def _level0(group: "zarr.Group", path: Path, what: str) -> tuple["zarr.Array", str]:
    """The full-resolution array of a multiscale group and its axes (our letters)."""
    multiscales = _ngff(group).get("multiscales")
    if not isinstance(multiscales, list) or not multiscales \
            or not isinstance(multiscales[0], Mapping):
        raise InputError(
            f"{what} {path} is a Zarr group without OME-NGFF 'multiscales' metadata, so its "
            "resolution levels and axes are unknown; write it with ome-zarr or ngff-zarr "
            "(or bioformats2raw), or convert it to TIFF")
    first = multiscales[0]
    datasets = first.get("datasets")
    if not isinstance(datasets, list) or not datasets or "path" not in datasets[0]:
        raise InputError(f"{what} {path}: its multiscales metadata lists no datasets")
    level = str(datasets[0]["path"])
    try:
        array = group[level]
    except KeyError:
        raise InputError(f"{what} {path}: its level-0 array {level!r} is missing") from None
    axes = first.get("axes")
    if axes is None:  # NGFF 0.1-0.3: always 5D t, c, z, y, x (0.3 may name them as strings)
        names = ["t", "c", "z", "y", "x"][-array.ndim:]
    else:
        names = [axis.get("name") if isinstance(axis, Mapping) else axis for axis in axes]
    letters = [_AXIS_LETTERS.get(str(name).lower()) for name in names]
    if len(letters) != array.ndim or None in letters or len(set(letters)) != len(letters):
        raise InputError(f"{what} {path}: axes {names} do not describe its level-0 array of "
                         f"shape {tuple(array.shape)} with t, c, z, y, x")
    return array, "".join(letters)


def read_level0(path: str | os.PathLike[str], what: str) -> tuple[np.ndarray, str]:
    """Read the level-0 array of an OME-Zarr multiscale image or label image.

    Only that array's chunks are read, never the rest of the pyramid. A time axis of length 1
    is dropped.

    Parameters
    ----------
    path : path
        The multiscale group (``cells.ome.zarr``, ``…/labels/nuclei``, ``plate.zarr/B/3/0``).
    what : str
        ``"image"`` or ``"mask"``, for messages.

    Returns
    -------
    array : ndarray
        As stored (e.g. ``(C, planes, rows, columns)``), the store's dtype.
    axes : str
        Its axes in :mod:`svetlana_core.io` letters, e.g. ``"CZYX"``.

    Raises
    ------
    InputError
        A missing or unreadable store, no multiscales metadata, axes that do not fit, a time
        series, or more values than :func:`svetlana_core.io.read.max_values`.
    """
    from svetlana_core.io.read import check_declared_size

    path = Path(path)
    array, axes = _level0(_open_group(path, what), path, what)
    if "T" in axes:
        t = axes.index("T")
        if array.shape[t] != 1:
            raise InputError(
                f"{what} {path} is a time series (axes {axes}, shape {tuple(array.shape)}); "
                "time series are not supported: save one image per time point")
    check_declared_size(tuple(array.shape), array.dtype, path, what)
    try:
        data = np.asarray(array[...])
    except Exception as error:  # a missing or corrupt chunk, a codec we lack
        raise InputError(f"could not read {what} {path}: {type(error).__name__}: {error}"
                         ) from None
    if "T" in axes:
        data = data.squeeze(axes.index("T"))
        axes = axes.replace("T", "")
    return data, axes


def label_names(image: str | os.PathLike[str]) -> list[str]:
    """The label images of an OME-Zarr image, in the order its ``labels/`` group lists them.

    Returns an empty list when the image has no ``labels/`` group.
    """
    image = Path(image)
    labels = image / "labels"
    if not labels.is_dir():
        return []
    names = _ngff(_open_group(labels, "labels group")).get("labels")
    if not isinstance(names, list):
        raise InputError(f"labels group {labels} does not list its label images "
                         "(no 'labels' attribute)")
    return [str(name) for name in names]


def mask_of(image: str | os.PathLike[str], label_name: str | None = None) -> Path | None:
    """The mask of an OME-Zarr image: the label image named `label_name`, else its first.

    Returns None when the image has no label image (its mask must then come from a file).

    Raises
    ------
    InputError
        `label_name` is not one of the image's label images (the message lists them), or the
        label image has another shape than the image.
    """
    names = label_names(image)
    if label_name is not None and label_name not in names:
        raise InputError(f"image {image} has no label image {label_name!r}; its labels/ group "
                         f"holds {listing(names) if names else 'none'}")
    if not names:
        return None
    return Path(image) / "labels" / (label_name or names[0])


def is_plate(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is an OME-Zarr HCS plate (a group with ``plate`` metadata)."""
    path = Path(path)
    return is_zarr_path(path) and path.is_dir() and "plate" in _ngff(_open_group(path, "plate"))


def plate_fields(path: str | os.PathLike[str]) -> list[Path]:
    """The image paths of every field of every well of an HCS plate, in the plate's order.

    Raises
    ------
    InputError
        The plate or one of its wells lacks the metadata that lists its wells or fields.
    """
    path = Path(path)
    plate = _ngff(_open_group(path, "plate")).get("plate")
    wells = plate.get("wells") if isinstance(plate, Mapping) else None
    if not isinstance(wells, list):
        raise InputError(f"plate {path} does not list its wells (plate.wells)")
    fields = []
    for well in wells:
        well_path = path / str(well.get("path", "")) if isinstance(well, Mapping) else None
        if well_path is None or not well_path.is_dir():
            raise InputError(f"plate {path}: well {well!r} is not a folder of the plate")
        images = _ngff(_open_group(well_path, "well")).get("well", {}).get("images")
        if not isinstance(images, list):
            raise InputError(f"well {well_path} does not list its fields (well.images)")
        fields.extend(well_path / str(image["path"]) for image in images)
    return fields


def zarr_images(folder: str | os.PathLike[str]) -> list[Path]:
    """The OME-Zarr images a folder entry stands for: the fields of a plate, else the image."""
    folder = Path(folder)
    return plate_fields(folder) if is_plate(folder) else [folder]


def content_stamp(path: str | os.PathLike[str]) -> list[int]:
    """Files, bytes and newest modification time (ns) of a Zarr group's level-0 array.

    A Zarr image is a folder whose own time does not change when its pixels are rewritten:
    the level-0 array's files do (a listing of its chunks, milliseconds for thousands). New
    label images or other levels leave it unchanged. Used to tell whether a prediction is
    still up to date.
    """
    path = Path(path)
    try:
        level = path / str(_ngff(_open_group(path, "image"))["multiscales"][0]["datasets"][0]
                           ["path"])
    except (InputError, KeyError, IndexError, TypeError):
        level = path
    files = size = newest = 0
    for folder, _, names in os.walk(level):
        for name in names:
            stat = os.stat(os.path.join(folder, name))
            files, size, newest = files + 1, size + stat.st_size, max(newest, stat.st_mtime_ns)
    return [files, size, newest]


def write_class_labels(
    image: str | os.PathLike[str],
    mask: np.ndarray,
    objects: "pd.DataFrame",
    colours: Mapping[str, Sequence[int] | str],
    *,
    copy_to: str | os.PathLike[str] | None = None,
    name: str = CLASSES_LABEL,
) -> Path:
    """Write the predicted objects as a label image of an OME-Zarr image.

    The label image holds the objects' own labels (the mask), its ``image-label`` metadata
    colours each object with its class colour and gives, per object, ``label-value``,
    ``class`` and ``confidence`` -- what napari and vizarr show. Written with ``ome-zarr``'s
    writer, in the NGFF version of the image (0.4 into a Zarr v2 store, 0.5 into v3), with a
    nearest-neighbour pyramid.

    Parameters
    ----------
    image : path
        The OME-Zarr image the objects were predicted on.
    mask : ndarray
        ``(rows, columns)`` or ``(planes, rows, columns)``, the objects predicted.
    objects : DataFrame
        ``label``, ``class`` and ``confidence`` per object.
    colours : mapping
        Class name -> colour (``"#rrggbb"`` or ``(r, g, b)``).
    copy_to : path, optional
        Copy the image there first (a new ``.ome.zarr`` folder, replaced if it exists) and
        write into the copy; None writes into `image` itself, which the caller must have been
        asked to do (CLI ``--write-into-zarr``).
    name : str
        Name of the label image (replaced if it exists).

    Returns
    -------
    Path
        The label image written.
    """
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_labels

    source = Path(image)
    target = source
    if copy_to is not None:
        target = Path(copy_to)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)
    old = target / "labels" / name
    if old.is_dir():  # ours, from an earlier prediction: zarr will not write over an array
        shutil.rmtree(old)
    group = zarr.open_group(str(target), mode="a")
    version_2 = group.metadata.zarr_format == 2
    level, axes = _level0(group, target, "image")
    spatial = [letter for letter in axes if letter in "ZYX"]
    if tuple(np.shape(mask)) != tuple(level.shape[axes.index(a)] for a in spatial):
        raise InputError(f"image {source}: the mask's shape {np.shape(mask)} is not the image's "
                         f"{tuple(level.shape)} (axes {axes})")
    scale = _level0_scale(group, axes, spatial)
    known = objects.dropna(subset=["class"])
    properties = [{"label-value": int(label), "class": str(cls), "confidence": float(conf)}
                  for label, cls, conf in zip(known["label"], known["class"],
                                              known["confidence"])]
    colour_of = {cls: [*rgb(colour), 255] for cls, colour in colours.items()}
    colours_list = [{"label-value": int(label), "rgba": colour_of[str(cls)]}
                    for label, cls in zip(known["label"], known["class"]) if cls in colour_of]
    steps = _pyramid_steps(np.shape(mask), spatial)
    labels = _narrowest(np.asarray(mask))
    # Measured on 8000² with 10,000 objects: uint16 in ome-zarr's default chunks writes in
    # 1.0 s, uint32 in 4.0 s (2.0 s in 1024² chunks).
    chunks = None if labels.itemsize <= 2 else {"chunks": (1,) * (labels.ndim - 2) + (1024, 1024)}
    write_labels(labels, group, name=name, axes="".join(spatial).lower(),
                 fmt=FormatV04() if version_2 else FormatV05(), scaler=None, scale_factors=steps,
                 scale=scale, storage_options=chunks,
                 label_metadata={"colors": colours_list, "properties": properties})
    _list_once(group["labels"], name)
    return target / "labels" / name


def _list_once(labels: "zarr.Group", name: str) -> None:
    """ome-zarr appends the name to the labels list even when a rewrite already had it."""
    attributes = dict(labels.attrs)
    ome = "ome" in attributes and isinstance(attributes["ome"], Mapping)
    holder = dict(attributes["ome"]) if ome else attributes
    names = list(holder.get("labels", []))
    if names.count(name) > 1:
        holder["labels"] = list(dict.fromkeys(names))
        labels.attrs.update({"ome": holder} if ome else {"labels": holder["labels"]})


def _narrowest(mask: np.ndarray) -> np.ndarray:
    """The mask in the smallest unsigned dtype that holds its labels (half the bytes to write
    for most masks, which are uint32 or int32 with fewer than 65,536 objects)."""
    highest = int(mask.max())
    for dtype in (np.uint8, np.uint16, np.uint32):
        if highest <= np.iinfo(dtype).max:
            return mask.astype(dtype, copy=False)
    return mask.astype(np.uint64, copy=False)


def _level0_scale(group: "zarr.Group", axes: str, spatial: list[str]) -> dict[str, float] | None:
    """The pixel size of the image's level 0 on each spatial axis, so the labels overlay it."""
    try:
        transforms = _ngff(group)["multiscales"][0]["datasets"][0]["coordinateTransformations"]
        scale = next(t["scale"] for t in transforms if t.get("type") == "scale")
        return {letter.lower(): float(scale[axes.index(letter)]) for letter in spatial}
    except (KeyError, IndexError, TypeError, StopIteration, ValueError):
        return None


def _pyramid_steps(shape: tuple[int, ...], spatial: list[str]) -> list[dict[str, int]]:
    """Halve rows and columns (not planes) while the smaller side stays at least 256 pixels."""
    steps: list[dict[str, int]] = []
    factor = 2
    while min(shape[-2:]) // factor >= 256 and len(steps) < 5:
        steps.append({a.lower(): (1 if a == "Z" else factor) for a in spatial})
        factor *= 2
    return steps
