"""Labels from the files labs already have: a labels CSV, QuPath GeoJSON (one file, or a
folder of them, one per image), or a napari-svetlana project. The one gatherer behind
``import-labels`` and the app's import.

Everything is read and checked here before a project is touched: the caller stores the pairs
and the table in one transaction, so a refused file changes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from svetlana_core.errors import InputError, listing
from svetlana_core.io import omezarr
from svetlana_core.io.pairing import Pair, _list_files, pair_files
from svetlana_core.io.read import IMAGE_EXTENSIONS, read_image, read_mask
from svetlana_core.io.write import write_tiff

if TYPE_CHECKING:  # pandas loads inside the functions
    import pandas as pd

#: Extensions of QuPath GeoJSON exports (QuPath writes ``.geojson``; ``.json`` is common too).
GEOJSON_EXTENSIONS = (".geojson", ".json")


@dataclass
class Gathered:
    """Image pairs to register and their labels ``image, label, class``.

    ``written`` lists mask files made here (from GeoJSON outlines): the caller removes them if
    the labels are then refused.
    """

    pairs: list[Pair]
    table: "pd.DataFrame"
    notes: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


def is_geojson(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a GeoJSON file, or a folder holding GeoJSON files (one per image)."""
    path = Path(path)
    if path.is_dir():
        return any(p.suffix.lower() in GEOJSON_EXTENSIONS for p in path.iterdir())
    return path.suffix.lower() in GEOJSON_EXTENSIONS


def geojson_files(path: str | os.PathLike[str]) -> list[Path]:
    """The GeoJSON file, or the GeoJSON files of a folder (sorted, hidden files skipped)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"labels file {path} does not exist")
    if not path.is_dir():
        return [path]
    files = sorted(_list_files(path, GEOJSON_EXTENSIONS))
    if not files:
        raise InputError(f"folder {path} holds no GeoJSON file (*.geojson)")
    return files


def _image_of(geojson: Path, names: dict[str, str]) -> str:
    """The image a GeoJSON file belongs to: ``a.geojson`` and ``a.tif.geojson`` are ``a.tif``'s."""
    stem = geojson.name[: -len(geojson.suffix)]
    for key in (stem, Path(stem).stem if Path(stem).suffix else None):
        if key in names:
            return names[key]
    raise InputError(f"GeoJSON file {geojson} names no image: expected an image called "
                     f"{stem}.<ext> among {listing(sorted(set(names.values())))}")


def _name_index(names: list[str]) -> dict[str, str]:
    """Image name and image stem -> image name."""
    index = {}
    for name in names:
        index[name] = name
        index[omezarr.image_stem(name)] = name
    return index


def labels_from_geojson(labels: str | os.PathLike[str], masks: dict[str, Path]
                        ) -> tuple["pd.DataFrame", list[str]]:
    """Labels of the mask objects that QuPath outlines overlap (:mod:`svetlana_core.io.geojson`).

    Parameters
    ----------
    labels : path
        A GeoJSON file, or a folder of them: one per image, matched by name (``a.geojson`` or
        ``a.tif.geojson`` for ``a.tif``); a single file with a single image needs no matching
        name.
    masks : dict
        Image name -> its mask file.

    Returns
    -------
    table : DataFrame
        ``image, label, class``.
    notes : list of str
        What each file's outlines did (one line for all the files that labelled every outline).
    """
    import pandas as pd

    from svetlana_core.io import geojson

    files = geojson_files(labels)
    index = _name_index(list(masks))
    tables, notes, clean = [], [], 0
    for path in files:
        name = next(iter(masks)) if len(files) == 1 == len(masks) else _image_of(path, index)
        table, report = geojson.labels_from_features(
            geojson.read_features(path), read_mask(masks[name]), image=name, source=path)
        tables.append(table)
        troubles = (report.unclassified, report.not_areas, report.unmatched, report.ambiguous)
        if len(files) > 1 and not any(troubles):
            clean += 1  # a folder of clean files gets one line, not one per file
        else:
            notes.append(f"{path.name} -> {name}: {report.summary()}")
    if clean:
        notes.insert(0, f"{clean} GeoJSON file(s) labelled every outline they hold")
    return pd.concat(tables, ignore_index=True), notes


def masks_from_geojson(labels: str | os.PathLike[str], images_dir: str | os.PathLike[str],
                       masks_out: str | os.PathLike[str]) -> Gathered:
    """Images with no mask: each GeoJSON file's outlines become the mask of its image.

    The masks are written to ``masks_out/<stem>_mask.tif`` (a label per outline, in the
    file's order) and the classified outlines label them.
    """
    from svetlana_core.io import geojson

    images = sorted(_list_files(Path(images_dir), IMAGE_EXTENSIONS)) \
        if Path(images_dir).is_dir() else []
    if not images:
        raise InputError(f"image folder {images_dir} holds no images to outline "
                         f"({', '.join(IMAGE_EXTENSIONS)})")
    path_of = {omezarr.image_name(image): image for image in images}
    index = _name_index(list(path_of))
    made = []
    for path in geojson_files(labels):
        name = _image_of(path, index)
        features = geojson.read_features(path)
        shape = read_image(path_of[name]).shape[1:]
        made.append((path, name, geojson.mask_from_features(features, shape, source=path)))
    pairs, written = [], []
    for path, name, mask in made:  # written only once every file has been read and checked
        target = Path(masks_out) / f"{omezarr.image_stem(name)}_mask.tif"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_tiff(target, mask.astype("uint32" if mask.max() > 65535 else "uint16"))
        written.append(target)
        pairs.append(Pair(image=path_of[name], mask=target, stem=omezarr.image_stem(name)))
    table, notes = labels_from_geojson(labels, {pair.name: pair.mask for pair in pairs})
    notes.insert(0, f"{len(written)} mask(s) made from the outlines in {masks_out}")
    return Gathered(pairs, table, notes, written)


def gather_labels(
    labels: str | os.PathLike[str] | None,
    *,
    images: str | os.PathLike[str] | None = None,
    masks: str | os.PathLike[str] | None = None,
    label_name: str | None = None,
    napari: str | os.PathLike[str] | None = None,
    class_names: list[str] | None = None,
    geojson_as_mask: bool = False,
    masks_out: str | os.PathLike[str] | None = None,
) -> Gathered:
    """Read labels and the image pairs they belong to, from any of the supported sources.

    Parameters
    ----------
    labels : path, optional
        A labels CSV, a QuPath GeoJSON file, or a folder of GeoJSON files. Not needed with
        `napari`.
    images, masks, label_name
        The images the labels belong to, paired by :func:`svetlana_core.io.pair_files`.
    napari : path, optional
        A napari-svetlana project (``Images/``, ``Masks/``, ``Svetlana/labels``): its images
        and labels (:func:`svetlana_core.io.napari_project.read_napari_labels`).
    class_names : list of str, optional
        Names of the plugin's classes 1, 2, … (default: ``"1"``, ``"2"``, …).
    geojson_as_mask : bool
        The images have no mask: the GeoJSON outlines become the masks, written to
        `masks_out`.

    Raises
    ------
    InputError
        Any source that cannot be read, matched or trusted, naming the file.
    """
    from svetlana_core.io.labels import read_labels_csv

    if napari is not None:
        from svetlana_core.io.napari_project import read_napari_labels

        if labels is not None or images is not None:
            raise InputError("a napari-svetlana project brings its own images and labels: "
                             "give --napari alone (no --images or --labels)")
        read = read_napari_labels(napari, class_names=class_names)
        return Gathered(list(read.pairs), read.table, list(read.notes))
    if labels is None or images is None:
        raise InputError("import needs the images (--images) and the labels (--labels), or a "
                         "napari-svetlana project (--napari)")
    if geojson_as_mask:
        if not is_geojson(labels):
            raise InputError(f"--geojson-as-mask needs GeoJSON outlines; {labels} is not a "
                             "GeoJSON file or a folder of them")
        if masks_out is None:
            raise InputError("--geojson-as-mask needs a folder to write the masks to")
        return masks_from_geojson(labels, images, masks_out)
    pairs = pair_files(images, masks, label_name=label_name)
    if is_geojson(labels):
        return Gathered(pairs, *labels_from_geojson(labels, {p.name: p.mask for p in pairs}))
    return Gathered(pairs, read_labels_csv(labels))
