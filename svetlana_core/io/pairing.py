"""Pair image files with their masks by file stem (the one resolver of folders), and group
image names for a split.

Two Cellpose masks of one image
-------------------------------
Cellpose saves ``<stem>_seg.npy`` (its GUI, and its CLI unless ``--no_npy``) and, when asked,
``<stem>_cp_masks.png`` (``.tif`` in 3D or past 65,535 objects) with the same masks. When both
are the only candidates of an image, the ``_cp_masks`` file is used (:data:`CELLPOSE_RULE`): it
is a plain integer image, read without unpickling and without the flows and probabilities
that make a ``_seg.npy`` several times the size of its masks. The pair keeps the other file in
``other_mask`` so that a reader of pixels can check that both hold the same masks (the app's
import does; :func:`svetlana_core.io.cellpose.masks_differ`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from svetlana_core.errors import InputError, listing
from svetlana_core.io import omezarr
from svetlana_core.io.read import IMAGE_EXTENSIONS, MASK_EXTENSIONS

MASK_SUFFIXES: tuple[str, ...] = ("_cp_masks", "_seg", "_masks", "_mask", "_labels", "_label")
"""Stem suffixes that mark a mask file (``_seg`` only with ``.npy``), longest match first."""

CELLPOSE_RULE = ("when an image has both <stem>_seg.npy and <stem>_cp_masks.<ext>, "
                 "<stem>_cp_masks.<ext> is used")
"""The documented choice between two Cellpose masks of one image (see the module docstring)."""


@dataclass(frozen=True)
class Pair:
    """An image file and its mask file, matched by file stem.

    ``other_mask`` is the Cellpose ``_seg.npy`` left unused by :data:`CELLPOSE_RULE` (None
    when the image had one mask).
    """

    image: Path
    mask: Path
    stem: str
    other_mask: Path | None = None

    @property
    def name(self) -> str:
        """The image's name in projects and tables (:func:`~svetlana_core.io.image_name`)."""
        return omezarr.image_name(self.image)

    @property
    def note(self) -> str:
        """What the pairing chose for this image, for its report line ("" when nothing)."""
        if self.other_mask is None:
            return ""
        return f"two Cellpose masks: used {self.mask.name}, not {self.other_mask.name}"


@dataclass(frozen=True)
class Unpaired:
    """A file that could not be paired, and why.

    ``message`` is one line naming the file; ``reason`` is which rule it broke:
    ``"no mask"``, ``"several masks"``, ``"shared mask"``, ``"no label image"`` (OME-Zarr),
    or ``"no image"`` (a mask of an upload that no image takes, reported by the app).
    """

    file: str
    message: str
    reason: str


@dataclass(frozen=True)
class Pairing:
    """What :func:`pair_folder` found: the pairs, and the files set aside.

    Attributes
    ----------
    pairs : list of Pair
        One per image that has exactly one mask, sorted by stem.
    problems : list of Unpaired
        Images with no mask or several, and images sharing one mask, in file-name order.
    unused_masks : list of Path
        Mask files that no image took (neither as ``mask`` nor ``other_mask``); they are
        not errors in a shared masks folder, but are in an upload.
    """

    pairs: list[Pair]
    problems: list[Unpaired]
    unused_masks: list[Path]


#: What a training or evaluation reads: image name -> (image path or None, mask path).
Files = dict[str, tuple[Path | None, Path]]


def folder_files(
    images_dir: str | os.PathLike[str] | None, masks_dir: str | os.PathLike[str] | None = None,
    *, label_name: str | None = None,
) -> Files:
    """The image/mask files of a folder, by image file name: the one resolver of folders.

    Parameters
    ----------
    images_dir : path or None
        Images, paired with their masks by :func:`pair_files`. None: mask-only data, every
        mask file of ``masks_dir`` is an "image" named by its file name (hidden files skipped).
    masks_dir : path, optional
        Masks (default: the images folder).
    label_name : str, optional
        The label image of OME-Zarr images to use as their masks (see :func:`pair_files`).

    Returns
    -------
    dict
        ``{image name: (image path or None, mask path)}``, sorted by name.

    Raises
    ------
    InputError
        A folder that does not exist, and everything :func:`pair_files` raises.
    """
    if images_dir is not None:
        pairs = pair_files(images_dir, masks_dir, label_name=label_name)
        return {p.name: (p.image, p.mask) for p in pairs}
    if masks_dir is None:
        raise InputError("mask-only data needs a mask folder")
    masks = Path(masks_dir)
    if not masks.is_dir():
        raise InputError(f"mask folder {masks} does not exist or is not a folder")
    return {p.name: (None, p) for p in sorted(_list_files(masks, MASK_EXTENSIONS))}


def pair_files(
    images_dir: str | os.PathLike[str], masks_dir: str | os.PathLike[str] | None = None,
    *, label_name: str | None = None,
) -> list[Pair]:
    """Match each image of a folder with its mask by file name, or refuse the folder.

    See the package docstring for the rules. Files are listed, not read. Two Cellpose masks
    of one image are resolved by :data:`CELLPOSE_RULE` (logged as a note).

    Parameters
    ----------
    images_dir : str or path-like
        Folder of images (:data:`IMAGE_EXTENSIONS`).
    masks_dir : str or path-like, optional
        Folder of masks; the image folder when None.
    label_name : str, optional
        For OME-Zarr images: the label image that is their mask (default: the first one their
        ``labels/`` group lists; an image without one takes a mask file from `masks_dir`).

    Returns
    -------
    list of Pair
        One pair per image, sorted by stem (then image file name).

    Raises
    ------
    InputError
        If a folder does not exist, holds no image, an image has no mask (up to 5 named), an
        image has several candidate masks, or a mask matches several images.
    """
    pairing = pair_folder(images_dir, masks_dir, label_name=label_name)
    images_dir = Path(images_dir)
    masks_dir = images_dir if masks_dir is None else Path(masks_dir)
    if omezarr.is_store(images_dir) and masks_dir == images_dir:
        masks_dir = images_dir.parent
    kinds: dict[str, list[Unpaired]] = {}
    for problem in pairing.problems:
        kinds.setdefault(problem.reason, []).append(problem)
    # The first problem of a kind, in the order (and wording) the strict pairing always used.
    if "several masks" in kinds:
        raise InputError(kinds["several masks"][0].message.replace(
            " has several candidate masks:", f" has several candidate masks in {masks_dir}:"))
    if "no mask" in kinds:
        missing = [problem.file for problem in kinds["no mask"]]
        raise InputError(
            f"{len(missing)} image(s) in {images_dir} have no mask in {masks_dir}: "
            f"{listing(sorted(missing))} ({_NAMING})"
        )
    if "shared mask" in kinds:
        raise InputError(kinds["shared mask"][0].message.split(";")[0])
    if "no label image" in kinds:
        missing = [problem.file for problem in kinds["no label image"]]
        raise InputError(
            f"{len(missing)} OME-Zarr image(s) have no label image (labels/ group) and no mask "
            f"file in {masks_dir}: {listing(sorted(missing))}")
    for pair in pairing.pairs:
        if pair.note:
            logging.getLogger("svetlana_core").warning(f"image {pair.name}: {pair.note}")
    return pairing.pairs


_NAMING = ("a mask is named <stem>.<ext> in its own folder, <stem>.npy, <stem>_cp_masks.<ext>, "
           "<stem>_seg.npy, <stem>_mask(s).<ext> or <stem>_label(s).<ext>")


def pair_folder(
    images_dir: str | os.PathLike[str], masks_dir: str | os.PathLike[str] | None = None,
    *, label_name: str | None = None,
) -> Pairing:
    """Pair what can be paired, and set the rest aside with one line each.

    The rules are those of :func:`pair_files`; where it refuses the whole folder, this keeps
    the images that pair and reports each one that does not (an upload batch is checked file
    by file).

    Parameters
    ----------
    images_dir, masks_dir, label_name
        As :func:`pair_files`.

    Returns
    -------
    Pairing

    Raises
    ------
    InputError
        Only for the folder itself: it does not exist or holds no image.
    """
    images_dir = Path(images_dir)
    masks_dir = images_dir if masks_dir is None else Path(masks_dir)
    if omezarr.is_store(images_dir):
        # One OME-Zarr image or plate given by its own path: its images are paired inside it.
        pairs, problems = _zarr_pairs(omezarr.zarr_images(images_dir), {}, label_name)
        return Pairing(sorted(pairs, key=lambda pair: (pair.stem, pair.name)), problems, [])
    for folder, what in ((images_dir, "image"), (masks_dir, "mask")):
        if not folder.is_dir():
            raise InputError(f"{what} folder {folder} does not exist or is not a folder")
    if masks_dir == images_dir and _napari_layout(images_dir):
        return Pairing(_napari_pairs(images_dir), [], [])
    same_folder = images_dir.resolve() == masks_dir.resolve()
    masks = _list_files(masks_dir, MASK_EXTENSIONS)
    candidates: dict[str, list[Path]] = {}
    for mask in masks:
        for stem in _stems_matched_by_mask(mask, same_folder):
            candidates.setdefault(stem, []).append(mask)
    images = [
        path
        for path in _list_files(images_dir, IMAGE_EXTENSIONS)
        if not (same_folder and _mask_suffix(path) is not None)
    ]
    stores = _zarr_stores(images_dir)
    if not images and not stores:
        raise InputError(
            f"image folder {images_dir} holds no images ({', '.join(IMAGE_EXTENSIONS)}, "
            "OME-Zarr)"
        )
    pairs, problems = _one_mask_each(sorted(images), candidates)
    zarr_images = [image for store in stores for image in omezarr.zarr_images(store)]
    zarr_pairs, zarr_problems = _zarr_pairs(zarr_images, candidates, label_name)
    pairs, problems = pairs + zarr_pairs, problems + zarr_problems
    taken = {path for pair in pairs for path in (pair.image, pair.mask, pair.other_mask)}
    if same_folder:  # an image of a shared folder is listed among the mask files too
        taken.update(images)
    unused = sorted(mask for mask in masks if mask not in taken)
    return Pairing(sorted(pairs, key=lambda pair: (pair.stem, pair.name)), problems, unused)


def _napari_layout(folder: Path) -> bool:
    """A napari-svetlana project (``Images/`` and ``Masks/``) with no images of its own."""
    from svetlana_core.io.napari_project import is_napari_project

    return is_napari_project(folder) and not _list_files(folder, IMAGE_EXTENSIONS)


def _napari_pairs(folder: Path) -> list[Pair]:
    """The plugin's pairs (by sorted order, as it pairs them); names that differ are logged
    (the CLI prints them as ``note:`` lines)."""
    from svetlana_core.io.napari_project import pair_napari_project

    pairs, notes = pair_napari_project(folder)
    for note in notes:
        logging.getLogger("svetlana_core").warning(note)
    return pairs


def _zarr_stores(folder: Path) -> list[Path]:
    """The OME-Zarr stores (``*.zarr`` folders) of a folder, not hidden ones."""
    return sorted(Path(entry.path) for entry in os.scandir(folder)
                  if entry.is_dir() and not entry.name.startswith(".")
                  and omezarr.is_store(entry.path))


def _zarr_pairs(images: list[Path], candidates: dict[str, list[Path]],
                label_name: str | None) -> tuple[list[Pair], list[Unpaired]]:
    """Each OME-Zarr image with its label image, or else a mask file named after it."""
    pairs, problems = [], []
    for image in images:
        stem, name = omezarr.image_stem(image), omezarr.image_name(image)
        mask = omezarr.mask_of(image, label_name)
        found = candidates.get(stem, [])
        if mask is None and len(found) > 1:
            names = ", ".join(sorted(path.name for path in found))
            problems.append(Unpaired(name, f"image {name} has several candidate masks: "
                                           f"{names}; keep one", "several masks"))
        elif mask is None and not found:
            problems.append(Unpaired(name, f"OME-Zarr image {name} has no label image "
                                           "(labels/ group) and no mask file", "no label image"))
        else:
            pairs.append(Pair(image=image, mask=mask or found[0], stem=stem))
    return pairs, problems


def _one_mask_each(
    images: list[Path], candidates: dict[str, list[Path]]
) -> tuple[list[Pair], list[Unpaired]]:
    """The pair of each image that has one mask (or the two Cellpose ones), and one line for
    each image with none or several, or sharing its mask with another image."""
    pairs, problems = [], []
    for image in images:
        found = candidates.get(image.stem, [])
        if not found:
            problems.append(Unpaired(image.name, f"image {image.name} has no mask ({_NAMING})",
                                     "no mask"))
        elif len(found) == 1:
            pairs.append(Pair(image=image, mask=found[0], stem=image.stem))
        elif (cellpose := _cellpose_pair(found)) is not None:
            pairs.append(Pair(image=image, mask=cellpose[0], stem=image.stem,
                              other_mask=cellpose[1]))
        else:
            names = ", ".join(sorted(path.name for path in found))
            problems.append(Unpaired(image.name, f"image {image.name} has several candidate "
                                                 f"masks: {names}; keep one", "several masks"))
    users: dict[Path, list[Path]] = {}
    for pair in pairs:
        users.setdefault(pair.mask, []).append(pair.image)
    shared = {image for images_of in users.values() if len(images_of) > 1 for image in images_of}
    for pair in pairs:
        if pair.image in shared:
            names = ", ".join(sorted(path.name for path in users[pair.mask]))
            problems.append(Unpaired(pair.image.name, f"mask {pair.mask.name} matches several "
                                                      f"images: {names}; rename one of them",
                                     "shared mask"))
    problems.sort(key=lambda problem: problem.file)
    return [pair for pair in pairs if pair.image not in shared], problems


def _cellpose_pair(found: list[Path]) -> tuple[Path, Path] | None:
    """``(used, other)`` when `found` is one ``_cp_masks.*`` and one ``_seg.npy`` of a stem
    (:data:`CELLPOSE_RULE`), else None."""
    suffixes = {_mask_suffix(path): path for path in found}
    if len(found) == 2 and set(suffixes) == {"_cp_masks", "_seg"}:
        return suffixes["_cp_masks"], suffixes["_seg"]
    return None


def _list_files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    files = [
        Path(entry.path)
        for entry in os.scandir(folder)
        if entry.is_file()
        and not entry.name.startswith(".")
        and os.path.splitext(entry.name)[1].lower() in extensions
    ]
    for path in files:
        try:  # names are stored as UTF-8 text (project, tables): say which one cannot be
            path.name.encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(path.name)
            raise InputError(f"file name {shown!r} in folder {folder} is not valid UTF-8 text: "
                             "rename the file") from None
    return files


def _mask_suffix(path: Path) -> str | None:
    """The mask suffix that ends the stem of `path` (``_seg`` for ``.npy`` only), if any."""
    stem = path.stem.lower()
    for suffix in MASK_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            if suffix == "_seg" and path.suffix.lower() != ".npy":
                continue
            return suffix
    return None


def _stems_matched_by_mask(mask: Path, same_folder: bool) -> set[str]:
    stems = set()
    suffix = _mask_suffix(mask)
    if suffix is not None:
        stems.add(mask.stem[: -len(suffix)])
    # "<stem>.<ext>" is the image itself when the masks share its folder; ".npy" never is.
    if not same_folder or mask.suffix.lower() == ".npy":
        stems.add(mask.stem)
    return stems


def group_by_pattern(pattern: str | None) -> Callable[[str], str] | None:
    """Image name → validation-split group, from a regular expression.

    The group is the pattern's first group (or its whole match) in the name, e.g.
    ``r"train_(\\d+)_"`` gives CoNSeP tiles of one source image the same group; names it does
    not match are their own group. None or "" gives None (every image its own group).

    Raises
    ------
    InputError
        If the pattern is not a valid regular expression.
    """
    if not pattern:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise InputError(f"group pattern {pattern!r} is not a valid regular expression: "
                         f"{error}") from None

    def group(name: str) -> str:
        match = compiled.search(name)
        if match is None:
            return name
        return match.group(1) if compiled.groups else match.group(0)

    return group
