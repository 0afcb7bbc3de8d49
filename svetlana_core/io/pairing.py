"""Pair image files with their masks by file stem (the one resolver of folders), and group
image names for a split."""

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


@dataclass(frozen=True)
class Pair:
    """An image file and its mask file, matched by file stem."""

    image: Path
    mask: Path
    stem: str

    @property
    def name(self) -> str:
        """The image's name in projects and tables (:func:`~svetlana_core.io.image_name`)."""
        return omezarr.image_name(self.image)


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
    """Match each image of a folder with its mask by file name.

    See the module docstring for the rules. Files are listed, not read.

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
    images_dir = Path(images_dir)
    masks_dir = images_dir if masks_dir is None else Path(masks_dir)
    if omezarr.is_store(images_dir):
        # One OME-Zarr image or plate given by its own path: its images are paired inside it.
        if masks_dir == images_dir:
            masks_dir = images_dir.parent
        pairs = _zarr_pairs(omezarr.zarr_images(images_dir), {}, masks_dir, label_name)
        return sorted(pairs, key=lambda pair: (pair.stem, pair.name))
    for folder, what in ((images_dir, "image"), (masks_dir, "mask")):
        if not folder.is_dir():
            raise InputError(f"{what} folder {folder} does not exist or is not a folder")
    if masks_dir == images_dir and _napari_layout(images_dir):
        return _napari_pairs(images_dir)
    same_folder = images_dir.resolve() == masks_dir.resolve()
    candidates: dict[str, list[Path]] = {}
    for mask in _list_files(masks_dir, MASK_EXTENSIONS):
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
    pairs = _one_mask_each(images, candidates, images_dir, masks_dir) if images else []
    zarr_images = [image for store in stores for image in omezarr.zarr_images(store)]
    pairs += _zarr_pairs(zarr_images, candidates, masks_dir, label_name)
    return sorted(pairs, key=lambda pair: (pair.stem, pair.name))


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


def _zarr_pairs(images: list[Path], candidates: dict[str, list[Path]], masks_dir: Path,
                label_name: str | None) -> list[Pair]:
    """Each OME-Zarr image with its label image, or else a mask file named after it."""
    pairs, missing = [], []
    for image in images:
        stem = omezarr.image_stem(image)
        mask = omezarr.mask_of(image, label_name)
        found = candidates.get(stem, [])
        if mask is None and len(found) > 1:
            names = ", ".join(sorted(path.name for path in found))
            raise InputError(f"image {omezarr.image_name(image)} has several candidate masks in "
                             f"{masks_dir}: {names}; keep one")
        if mask is None and not found:
            missing.append(omezarr.image_name(image))
            continue
        pairs.append(Pair(image=image, mask=mask or found[0], stem=stem))
    if missing:
        raise InputError(
            f"{len(missing)} OME-Zarr image(s) have no label image (labels/ group) and no mask "
            f"file in {masks_dir}: {listing(sorted(missing))}")
    return pairs


def _one_mask_each(
    images: list[Path], candidates: dict[str, list[Path]], images_dir: Path, masks_dir: Path
) -> list[Pair]:
    """The pair of each image, or InputError: an image with no or several masks, a shared mask."""
    pairs, missing = [], []
    for image in images:
        found = candidates.get(image.stem, [])
        if not found:
            missing.append(image.name)
        elif len(found) > 1:
            names = ", ".join(sorted(path.name for path in found))
            raise InputError(
                f"image {image.name} has several candidate masks in {masks_dir}: {names}; "
                "keep one"
            )
        else:
            pairs.append(Pair(image=image, mask=found[0], stem=image.stem))
    if missing:
        raise InputError(
            f"{len(missing)} image(s) in {images_dir} have no mask in {masks_dir}: "
            f"{listing(sorted(missing))} (a mask is named <stem>.<ext> in its own folder, "
            "<stem>.npy, <stem>_cp_masks.<ext>, <stem>_seg.npy, <stem>_mask(s).<ext> or "
            "<stem>_label(s).<ext>)"
        )
    users: dict[Path, list[Path]] = {}
    for pair in pairs:
        users.setdefault(pair.mask, []).append(pair.image)
    for mask, shared in users.items():
        if len(shared) > 1:
            names = ", ".join(sorted(path.name for path in shared))
            raise InputError(f"mask {mask.name} matches several images: {names}")
    return pairs


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
