"""Projects of the napari-svetlana plugin: pair their images, read their labels, refuse their
models.

A plugin project is a folder with ``Images/`` and ``Masks/``, paired by sorted file order, and
the annotations in ``Svetlana/labels``: a ``torch.save`` of a dict ::

    {"image_path": [paths relative to the folder (older versions: absolute)],
     "labels_path": [the same for the masks],
     "regionprops": [per image: [{"centroid": (...), "coords": (N, 2 or 3) ints,
                                  "label": the plugin's id}, ...]],
     "labels_list": [per image: [0-based class index (key pressed - 1), ...]],
     "patch_size": int or str}

The plugin relabels masks with ``skimage.measure.label`` before annotating, so its ``"label"``
ids need not be the ids stored in the mask file: objects are matched to the mask by their pixel
coordinates instead. The file is read with ``torch.load(weights_only=True)`` and an allow-list
of numpy globals, so it cannot run code. A trained plugin model (``.pth``) is a whole pickled
torch module, which is never loaded: :func:`refuse_plugin_model` says how to retrain instead.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from svetlana_core.errors import InputError, listing, preview
from svetlana_core.io.pairing import Pair, _list_files
from svetlana_core.io.read import IMAGE_EXTENSIONS, MASK_EXTENSIONS, read_mask

if TYPE_CHECKING:  # pandas loads inside the reader
    import pandas as pd

#: Where the plugin keeps its annotations, relative to the project folder.
LABELS_FILE = Path("Svetlana") / "labels"
#: The keys of the plugin's labels dict, all required (the plugin refuses a file without one).
LABELS_KEYS = ("image_path", "labels_path", "regionprops", "labels_list", "patch_size")
#: Suffixes of the plugin's trained models.
MODEL_SUFFIXES = (".pth", ".pt")

# numpy dtype classes a labels file may build (coordinates, centroids, ids): numbers only, so
# an object array, whose items would be arbitrary Python objects, is refused.
_NUMERIC_DTYPES = ("Bool", "Byte", "UByte", "Short", "UShort", "Int", "UInt", "Long", "ULong",
                   "LongLong", "ULongLong", "Int8", "UInt8", "Int16", "UInt16", "Int32",
                   "UInt32", "Int64", "UInt64", "Float16", "Float32", "Float64", "LongDouble")
# Bytes that only the pickle of a whole torch module (or optimizer) holds; a state dict names
# tensors and storages only.
_MODULE_MARKERS = (b"torch.nn.modules", b"napari_svetlana", b"torch.optim")
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True, eq=False)
class NapariLabels:
    """The annotations of a napari-svetlana project, as Svetlana names them.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``image`` (the image file name), ``label`` (int64, the id stored in the mask
        file) and ``class`` (str), one row per imported object, sorted by image and label.
    notes : list of str
        What the import changed or left out (paths found elsewhere, objects not matched), one
        line each; informational, not errors.
    patch_size : int or None
        The plugin's patch size, None when it is not a positive integer (a note says so).
    pairs : list of Pair
        Every image of the labels file with its mask, in the file's order, annotated or not.
    """

    table: "pd.DataFrame"
    notes: list[str]
    patch_size: int | None
    pairs: list[Pair]


def is_napari_project(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` has the ``Images/`` and ``Masks/`` sub-folders of a plugin project."""
    folder = Path(folder)
    return (folder / "Images").is_dir() and (folder / "Masks").is_dir()


def pair_napari_project(folder: str | os.PathLike[str]) -> tuple[list[Pair], list[str]]:
    """Pair ``Images/`` with ``Masks/`` by sorted file name, as napari-svetlana does.

    The plugin pairs the n-th image with the n-th mask in sorted order, whatever their names.
    Only image files count (:data:`IMAGE_EXTENSIONS` in ``Images/``, :data:`MASK_EXTENSIONS` in
    ``Masks/``, hidden files skipped), where the plugin lists every file.

    Returns
    -------
    pairs : list of Pair
        In sorted order; ``stem`` is the image's stem.
    notes : list of str
        One line for each pair whose stems differ (informational).

    Raises
    ------
    InputError
        If the folder is not a plugin project, ``Images/`` holds no image, or the two folders
        hold different numbers of files.
    """
    folder = Path(folder)
    if not is_napari_project(folder):
        raise InputError(f"folder {folder} is not a napari-svetlana project: it needs the "
                         "sub-folders Images/ and Masks/")
    images = sorted(_list_files(folder / "Images", IMAGE_EXTENSIONS), key=lambda p: p.name)
    masks = sorted(_list_files(folder / "Masks", MASK_EXTENSIONS), key=lambda p: p.name)
    if not images:
        raise InputError(f"napari-svetlana project {folder} holds no images in Images/ "
                         f"({', '.join(IMAGE_EXTENSIONS)})")
    if len(images) != len(masks):
        raise InputError(
            f"napari-svetlana project {folder} has {len(images)} images in Images/ but "
            f"{len(masks)} masks in Masks/; the plugin pairs them by sorted order, so the "
            "counts must match")
    notes = [f"image {image.name} paired with mask {mask.name} by sorted order, as "
             "napari-svetlana does; names differ"
             for image, mask in zip(images, masks) if image.stem != mask.stem]
    pairs = [Pair(image=image, mask=mask, stem=image.stem) for image, mask in zip(images, masks)]
    return pairs, notes


def read_napari_labels(
    folder: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    check_files: Callable[[list[Path]], None] | None = None,
) -> NapariLabels:
    """Read the annotations of a napari-svetlana project (``<folder>/Svetlana/labels``).

    Each annotated object is matched to the mask by its pixel coordinates: it takes the mask
    label that covers more than half of its pixels, never the plugin's own id. Objects that lie
    partly outside the mask, only on background, or on no majority label are left out with a
    note; so are objects that two annotations give different classes.

    Image and mask paths are read relative to ``folder`` (absolute in older files). A path
    that does not exist, or that leads out of ``folder`` (a project moved or copied), is
    replaced by the same file name in ``Images/`` or ``Masks/``, with a note.

    Parameters
    ----------
    folder : str or path-like
        The plugin's project folder (the one holding ``Images/``, ``Masks/``, ``Svetlana/``).
    class_names : sequence of str, optional
        Name of each class index: index ``k`` (key ``k + 1``) is ``class_names[k]``. By default
        the class is named after the key, ``str(k + 1)``.
    check_files : callable, optional
        Called with every image and mask path before any file is read; it raises to refuse
        them (the app passes :func:`svetlana_core.store.roots.check_files_inside_roots`).

    Returns
    -------
    NapariLabels
        The labels table ``image, label, class``, the notes, the patch size and the pairs.

    Raises
    ------
    InputError
        A missing or unreadable labels file, one that needs anything but numpy arrays and plain
        values (named, and not loaded), a dict of the wrong shape, an image or mask that cannot
        be found, a class index beyond ``class_names``, coordinates with a column count other
        than the mask's dimensions, and whatever :func:`read_mask` raises.
    """
    folder = Path(folder)
    path = folder / LABELS_FILE
    names = _check_class_names(class_names)
    content = _check_structure(_load_labels_file(path), path)
    _class_names_cover(content["labels_list"], names, path)
    notes: list[str] = []
    pairs = [_resolve_pair(folder, image, mask, path, notes)
             for image, mask in zip(content["image_path"], content["labels_path"])]
    _check_unique_images(pairs, path)
    if check_files is not None:
        check_files([p for pair in pairs for p in (pair.image, pair.mask)])
    rows = []
    for pair, props, classes in zip(pairs, content["regionprops"], content["labels_list"]):
        if props:
            labels = _match_objects(pair, props, path, notes)
            rows += [(pair.image.name, label, _class_name(k, names))
                     for label, k in zip(labels, classes) if label > 0]
    table = _labels_table(rows, notes)
    return NapariLabels(table, notes, _patch_size(content["patch_size"], path, notes), pairs)


def plugin_model_message(path: str | os.PathLike[str]) -> str:
    """Why a napari-svetlana model is not loaded, and how to retrain it (one line)."""
    return (f"{path} is a napari-svetlana model, a pickled torch module, which Svetlana does "
            "not load (unpickling it could run arbitrary code); retrain it from the plugin's "
            "annotations: python -m svetlana_core import-labels PROJECT --napari FOLDER, then "
            "python -m svetlana_core train PROJECT --out MODEL")


def refuse_plugin_model(path: str | os.PathLike[str]) -> NoReturn:
    """Raise :class:`InputError` with :func:`plugin_model_message`."""
    raise InputError(plugin_model_message(path))


def looks_like_plugin_model(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a ``.pth``/``.pt`` file holding a whole pickled torch module.

    Nothing is unpickled: the file must start as a torch archive (zip) or a pickle, and its
    pickle must name a class of ``torch.nn.modules``, ``torch.optim`` or ``napari_svetlana``,
    which a plain state dict (tensors only) never does.
    """
    path = Path(path)
    if path.suffix.lower() not in MODEL_SUFFIXES or not path.is_file():
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
            if head == _ZIP_MAGIC[:2]:
                data = _zip_pickle(path)
            elif len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO opcode
                data = head + handle.read(16 << 20)  # the objects precede the raw tensors
            else:
                return False
    except (OSError, zipfile.BadZipFile):
        return False
    return any(marker in data for marker in _MODULE_MARKERS)


def _zip_pickle(path: Path) -> bytes:
    """The ``data.pkl`` member of a torch zip archive (b"" when it has none)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.filename.endswith("/data.pkl") or info.filename == "data.pkl":
                with archive.open(info) as member:
                    return member.read(16 << 20)
    return b""


def _numpy_globals() -> list[Any]:
    """What a labels file may build besides torch's defaults: numpy arrays, dtypes, scalars."""
    multiarray = np._core.multiarray
    allowed: list[Any] = [np.ndarray, np.dtype,
                          multiarray._reconstruct, multiarray.scalar,
                          # the names numpy 1.x wrote
                          (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
                          (multiarray.scalar, "numpy.core.multiarray.scalar")]
    allowed += [getattr(np.dtypes, f"{name}DType") for name in _NUMERIC_DTYPES
                if hasattr(np.dtypes, f"{name}DType")]
    return allowed


def _load_labels_file(path: Path) -> Any:
    """The unpickled dict, built by torch's weights-only unpickler and the numpy allow-list."""
    if not path.is_file():
        raise InputError(f"napari-svetlana labels file {path} does not exist (the plugin writes "
                         "it when its annotations are saved)")
    import torch  # only here: the rest of io runs without torch

    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, RuntimeError (zip), EOFError, OSError...
        raise InputError(_load_failure(path, error)) from None


def _load_failure(path: Path, error: Exception) -> str:
    """One line for a labels file torch refused: the global it needed, or torch's reason."""
    text = str(error)
    found = (re.search(r"GLOBAL (\S+) was not an allowed global", text)
             or re.search(r"unsupported GLOBAL (\S+)", text)
             or re.search(r"unrecognized function (.+?)(?: which belongs|$)", text, re.M)
             or re.search(r"Can only (?:build|create new object for) .*?but got (.+)$", text,
                          re.M))
    if found:
        name = re.sub(r"^<class '(.+)'>$", r"\1", found.group(1).strip())
        return (f"napari-svetlana labels file {path} refers to {name}, which is "
                "not loaded for safety (only numpy arrays and plain values are); it is not a "
                "labels file written by the plugin")
    reason = re.search(r"WeightsUnpickler error: (.+)", text)
    line = reason.group(1) if reason else (text.strip().splitlines() or [""])[0]
    line = line.split(". ")[0].rstrip(".")  # torch goes on with advice about checkpoints
    return (f"could not read napari-svetlana labels file {path}: not a file saved by torch "
            f"({type(error).__name__}: {line})")


def _check_structure(content: Any, path: Path) -> dict[str, Any]:
    """The dict, checked: its keys, lists of one length, per-image lists of one length."""
    what = f"napari-svetlana labels file {path}"
    if not isinstance(content, dict):
        raise InputError(f"{what} does not hold a dict (found {type(content).__name__})")
    missing = [key for key in LABELS_KEYS if key not in content]
    if missing:
        raise InputError(f"{what} lacks key(s) {', '.join(missing)}; it has "
                         f"{preview(sorted(map(str, content)))}")
    for key in LABELS_KEYS[:4]:
        if not isinstance(content[key], (list, tuple)):
            raise InputError(f"{what}: '{key}' is a {type(content[key]).__name__}, "
                             "expected a list (one item per image)")
    lengths = {key: len(content[key]) for key in LABELS_KEYS[:4]}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{n} in '{key}'" for key, n in lengths.items())
        raise InputError(f"{what} lists different numbers of images: {shown}")
    for key in ("image_path", "labels_path"):
        bad = [i + 1 for i, item in enumerate(content[key]) if not isinstance(item, str)]
        if bad:
            raise InputError(f"{what}: '{key}' item(s) {listing(bad)} are not paths (text)")
    for image, props, classes in zip(content["image_path"], content["regionprops"],
                                     content["labels_list"]):
        _check_image_entry(image, props, classes, what)
    return content


def _check_image_entry(image: str, props: Any, classes: Any, what: str) -> None:
    """The objects and classes of one image: lists of one length, dicts with coords, indexes."""
    for key, value in (("regionprops", props), ("labels_list", classes)):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{what}: '{key}' of image {image} is a {type(value).__name__}, "
                             "expected a list")
    if len(props) != len(classes):
        raise InputError(f"{what}: image {image} has {len(props)} objects in 'regionprops' but "
                         f"{len(classes)} classes in 'labels_list'")
    bad = [k + 1 for k, prop in enumerate(props)
           if not isinstance(prop, dict) or "coords" not in prop]
    if bad:
        raise InputError(f"{what}: object(s) {listing(bad)} of image {image} are not dicts with "
                         "'coords'")
    bad = [k + 1 for k, index in enumerate(classes)
           if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer))
           or index < 0]
    if bad:
        shown = preview([classes[k - 1] for k in bad])
        raise InputError(f"{what}: 'labels_list' of image {image} holds {shown} at position(s) "
                         f"{listing(bad)}; a class is a 0-based integer index")


def _check_class_names(class_names: Sequence[str] | None) -> list[str] | None:
    if class_names is None:
        return None
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise InputError(f"class_names must be a list of names, got {class_names!r}")
    names = list(class_names)
    bad = [name for name in names if not isinstance(name, str) or not name.strip()]
    if bad or not names:
        raise InputError(f"class_names must be non-empty texts, got {preview(names)}")
    return [name.strip() for name in names]


def _class_names_cover(labels_list: Sequence[Sequence[int]], names: list[str] | None,
                       path: Path) -> None:
    """Refuse a class index that ``names`` does not name."""
    if names is None:
        return
    used = {int(k) for classes in labels_list for k in classes}
    beyond = sorted(k for k in used if k >= len(names))
    if beyond:
        keys = listing(f"{k} (key {k + 1})" for k in beyond)
        raise InputError(f"napari-svetlana labels file {path} uses class index {keys} but "
                         f"class_names has {len(names)} name(s): {preview(names)}")


def _class_name(index: int, names: list[str] | None) -> str:
    """The plugin's 0-based class index as a name: the key pressed, or ``names[index]``."""
    return str(int(index) + 1) if names is None else names[int(index)]


def _resolve_pair(folder: Path, image: str, mask: str, path: Path, notes: list[str]) -> Pair:
    image_path = _resolve_file(folder, image, "Images", path, notes)
    mask_path = _resolve_file(folder, mask, "Masks", path, notes)
    return Pair(image=image_path, mask=mask_path, stem=image_path.stem)


def _resolve_file(folder: Path, entry: str, sub: str, path: Path, notes: list[str]) -> Path:
    """A path of the labels file, inside ``folder``, else the same name under ``folder/sub``."""
    name = PureWindowsPath(entry).name  # splits on "/" and "\\" alike (files saved on Windows)
    what = "image" if sub == "Images" else "mask"
    candidate = folder / entry  # an absolute entry replaces the folder
    root = os.path.normpath(folder.absolute())
    inside = os.path.normpath(candidate.absolute()).startswith(root + os.sep)
    if inside and candidate.is_file():
        return candidate
    fallback = folder / sub / name
    if not name or not fallback.is_file():
        raise InputError(f"napari-svetlana labels file {path} names {what} {entry!r}, which is "
                         f"not a file in {folder} (nor is {sub}/{name})")
    if entry.replace("\\", "/") != f"{sub}/{name}":  # not just Windows separators
        where = "is outside the project folder" if candidate.is_file() else "does not exist"
        notes.append(f"{what} path {entry} in {path} {where}; using {fallback} (the same "
                     f"file name in {sub}/)")
    return fallback


def _check_unique_images(pairs: list[Pair], path: Path) -> None:
    counts = Counter(pair.image.name for pair in pairs)
    twice = sorted(name for name, n in counts.items() if n > 1)
    if twice:
        raise InputError(f"napari-svetlana labels file {path} lists image name(s) "
                         f"{listing(twice)} more than once")


def _match_objects(pair: Pair, props: Sequence[dict], path: Path, notes: list[str]
                   ) -> np.ndarray:
    """The mask label of each annotated object (0 when none matches, with a note).

    An object takes the label that covers more than half of its pixel coordinates.
    """
    mask = read_mask(pair.mask)
    coords = [_object_coords(prop, k, mask, pair, path) for k, prop in enumerate(props)]
    sizes = np.array([len(c) for c in coords], np.int64)
    points = np.concatenate(coords) if coords else np.zeros((0, mask.ndim), np.int64)
    owner = np.repeat(np.arange(len(coords)), sizes)
    outside = ((points < 0) | (points >= mask.shape)).any(axis=1)
    values = np.zeros(len(points), np.int64)
    values[~outside] = mask[tuple(points[~outside].T)]
    on_label = values > 0
    found, counts = np.unique(np.column_stack([owner, values])[on_label], axis=0,
                              return_counts=True)
    # per owner, the (owner, label) row with the largest count: last after sorting by count
    order = np.lexsort((counts, found[:, 0]))
    found, counts = found[order], counts[order]
    last = np.append(found[1:, 0] != found[:-1, 0], True) if len(found) else np.zeros(0, bool)
    best = np.zeros(len(coords), np.int64)
    cover = np.zeros(len(coords), np.int64)
    best[found[last, 0]] = found[last, 1]
    cover[found[last, 0]] = counts[last]
    off = np.bincount(owner[outside], minlength=len(coords)) > 0
    matched = (cover * 2 > sizes) & ~off
    for k in np.flatnonzero(~matched):
        seen = np.unique(found[found[:, 0] == k, 1])
        reason = _why_unmatched(sizes[k], off[k], seen, mask.shape)
        notes.append(f"image {pair.image.name}: annotated object {k + 1} of {len(props)} "
                     f"(plugin label {_plugin_id(props[k])}) {reason}; it is not imported")
    return np.where(matched, best, 0)


def _why_unmatched(size: int, outside: bool, labels: np.ndarray, shape: tuple[int, ...]) -> str:
    if size == 0:
        return "has no pixel coordinates"
    if outside:
        return f"has pixels outside the mask (shape {shape})"
    if len(labels) == 0:
        return "lies on the background of the mask only"
    return (f"spans mask labels {listing(labels.tolist())} with none covering most of its "
            f"{size} pixels")


def _plugin_id(prop: dict) -> Any:
    value = prop.get("label", "?")
    return value.item() if isinstance(value, np.generic) else value


def _object_coords(prop: dict, k: int, mask: np.ndarray, pair: Pair, path: Path) -> np.ndarray:
    """The ``(N, mask.ndim)`` int64 coordinates of one object, checked."""
    coords = np.asarray(prop["coords"])
    if coords.size == 0:
        return np.zeros((0, mask.ndim), np.int64)
    if coords.dtype.kind not in "iu" or coords.ndim != 2 or coords.shape[1] != mask.ndim:
        raise InputError(
            f"napari-svetlana labels file {path}: object {k + 1} of image {pair.image.name} has "
            f"coords of shape {coords.shape} and type {coords.dtype}, but mask {pair.mask} is "
            f"{mask.ndim}D (shape {mask.shape}): expected integer (N, {mask.ndim}) coordinates")
    return coords.astype(np.int64, copy=False)


def _labels_table(rows: Iterable[tuple[str, int, str]], notes: list[str]) -> "pd.DataFrame":
    """The labels table, without repeated objects; objects given two classes are dropped."""
    import pandas as pd

    table = pd.DataFrame(list(rows), columns=["image", "label", "class"])
    table["label"] = table["label"].astype("int64")
    table = table.drop_duplicates()
    clash = table.duplicated(["image", "label"], keep=False)
    for (image, label), group in table[clash].groupby(["image", "label"], sort=True):
        notes.append(f"image {image}: mask label {label} was annotated with classes "
                     f"{listing(sorted(group['class']))}; it is not imported")
    table = table[~clash].sort_values(["image", "label"], kind="stable")
    return table.reset_index(drop=True)


def _patch_size(value: Any, path: Path, notes: list[str]) -> int | None:
    """The plugin's patch size (an int or the text of its widget), or None with a note."""
    try:
        size = int(str(value).strip())
    except ValueError:
        size = 0
    if size > 0 and not isinstance(value, (bool, float)):
        return size
    notes.append(f"napari-svetlana labels file {path} has patch size {value!r}, not a positive "
                 "integer; it is not used")
    return None
