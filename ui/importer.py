"""Add image/mask pairs to a project, from a server folder or by upload, with a validation
report per file (the errors of :mod:`svetlana_core.io`), and remove the uploads no image uses.

A folder or an upload batch is paired file by file (:func:`svetlana_core.io.pair_folder`): an
image that cannot be paired or read gets an error line in the report and is set aside, the
others are added. Each upload batch is a folder of its own, so nothing of one batch bears on
the next.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from datetime import datetime
from pathlib import Path

import pandas as pd

from svetlana_core import io, plate, store
from svetlana_core.errors import InputError, byte_size
from svetlana_core.io.cellpose import same_as_seg
from svetlana_core.store import Project

#: Uploads larger than this are refused before anything is written (bytes). It equals
#: ``server.maxUploadSize`` of .streamlit/config.toml (2048, in MiB), which makes the browser
#: refuse them first; change both together (tests/test_access.py checks they agree).
MAX_UPLOAD_BYTES = 2048 * 1024**2


REPORT_COLUMNS = ["image", "mask", "status", "message", "shape", "objects", "well"]


def pair_for_import(images_dir: Path, masks_dir: Path | None = None, *,
                    label_name: str | None = None, upload: bool = False,
                    ) -> tuple[list[io.Pair], list[io.Unpaired]]:
    """The pairs of a folder, and the files set aside with why.

    Parameters
    ----------
    images_dir, masks_dir, label_name
        As :func:`svetlana_core.io.pair_folder`.
    upload : bool
        The folder is an upload batch: a mask that no image takes is reported too (in a
        shared masks folder it is the norm).

    Raises
    ------
    InputError
        The folder does not exist or holds no image.
    """
    pairing = io.pair_folder(images_dir, masks_dir, label_name=label_name)
    problems = list(pairing.problems)
    if upload:
        problems += [io.Unpaired(mask.name, f"mask {mask.name} matches no image of the "
                                            "upload; it was not added", "no image")
                     for mask in pairing.unused_masks]
    return pairing.pairs, problems


def pairs_inside_roots(pairs: list[io.Pair]) -> tuple[list[io.Pair], list[str]]:
    """:func:`svetlana_core.store.pairs_inside_roots`, with the unused Cellpose mask of a pair
    checked too, as it is read to compare: one that leads outside is not compared (said in
    the messages)."""
    kept, skipped = store.pairs_inside_roots(pairs)
    for position, pair in enumerate(kept):
        if pair.other_mask is not None:
            try:
                store.check_files_inside_roots([pair.other_mask])
            except InputError as error:
                kept[position] = dataclasses.replace(pair, other_mask=None)
                skipped.append(f"{error}; image {pair.name} uses {pair.mask.name}, not compared")
    return kept, skipped


def project_channels(project: Project) -> int | None:
    """Channels of the project's images (of its first one; 0 for mask-only data), or None
    for a project without images."""
    images = project.images()
    if images.empty:
        return None
    first = images.iloc[0]
    axes = first["axes"] if isinstance(first["axes"], str) else None
    try:
        image, _ = io.load_pair(first["path"] or None, first["mask_path"], axes=axes)
    except InputError:  # moved or unreadable since: the batch's first image sets the rule
        return None
    return 0 if image is None else int(image.shape[0])


def validate_pairs(pairs: list[io.Pair], problems: list[io.Unpaired] = (),
                   channels: int | None = None) -> pd.DataFrame:
    """Read every pair once and report ``image, mask, status, message, shape, objects, well``.

    ``channels``: what the project's images have (:func:`project_channels`); an image with
    another number is an error line (a model trains on one kind of image: training would
    refuse the mix only after Start). In an empty project the first readable image sets it.

    Pixels are read to validate them (the io errors), then dropped; nothing is written. A
    pair whose image had two Cellpose masks says which one it uses, and is an error when the
    two differ (:func:`svetlana_core.io.cellpose.same_as_seg`). `problems` (files that could
    not be paired) follow as error lines, in the order given; the pairs' lines come first, in
    the order of `pairs` (:func:`add_valid` relies on it).
    """
    rows = []
    for pair in pairs:
        # One file at a time keeps memory bounded; reading dominates, not the loop.
        record = {"image": pair.name, "mask": pair.mask.name, "status": "ok",
                  "message": pair.note, "shape": "", "objects": 0,
                  "well": (w.name if (w := plate.parse_well(pair.name)) else "")}
        try:
            image, mask = io.load_pair(pair.image, pair.mask)
            record["shape"] = " × ".join(str(s) for s in image.shape)
            found = int(image.shape[0])
            if channels is None:
                channels = found
            elif found != channels:
                raise InputError(
                    f"image {pair.name} has {found} channel(s) but the project's images have "
                    f"{channels}: a model learns from one kind of image; make a project for "
                    "each kind")
            record["objects"] = int(len(_labels(mask)))
            if pair.other_mask is not None:
                compared = same_as_seg(mask, pair.mask, pair.other_mask)
                record["message"] += (" (same masks)" if compared else
                                      f" ({pair.other_mask.name} too large to compare)")
        except InputError as error:
            record["status"], record["message"] = "error", str(error)
        rows.append(record)
    rows += [{"image": problem.file, "mask": "", "status": "error", "message": problem.message,
              "shape": "", "objects": 0, "well": ""} for problem in problems]
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def _labels(mask):
    from svetlana_core.objects import labels_of

    return labels_of(mask)


def add_valid(project: Project, pairs: list[io.Pair], report: pd.DataFrame) -> int:
    """Register the pairs whose report status is ``ok``; returns how many were added.

    An image whose name the project holds already, from other files, is not added: its row of
    ``report`` becomes an error saying so (changed in place), and the stored image, mask and
    labels stay as they are.
    """
    stored = project.images().set_index("name")
    for row, pair in zip(report.index, pairs):
        name = report.at[row, "image"]
        if report.at[row, "status"] == "ok" and name in stored.index and (
                os.path.abspath(pair.image), os.path.abspath(pair.mask)) != (
                stored.at[name, "path"], stored.at[name, "mask_path"]):
            report.loc[row, ["status", "message"]] = ["error", (
                f"image {name} is already in the project (from {stored.at[name, 'path']}); "
                "its files and labels are kept: rename the new file to add it")]
    ok = set(report.loc[report["status"] == "ok", "image"])
    chosen = [
        {"image_path": p.image, "mask_path": p.mask,
         "well": (w.name if (w := plate.parse_well(p.name)) else None)}
        for p in pairs if p.name in ok
    ]
    if chosen:
        project.add_images(chosen)
    return len(chosen)


def save_uploads(project: Project, files, max_bytes: int | None = None) -> Path:
    """Write uploaded files into a new folder of their own, ``<project>/uploads/<batch>/``,
    after checking every one of them.

    Each upload must have a plain name (its last path component; not hidden), an image or
    mask extension, at most ``max_bytes`` (default :data:`MAX_UPLOAD_BYTES`, read at call
    time) and content that starts like a file of that kind (:func:`sniff_upload`). One bad
    upload refuses the whole batch before anything is written. A batch never writes over a
    file of an earlier one (a re-upload of ``A01.tif`` used to replace the stored image and
    mask before they were checked), and is paired on its own: a bad file of one batch does
    not block the next.

    Returns the batch folder, to be paired with :func:`svetlana_core.io.pair_files`; files
    that end up not added are removed with :func:`discard_unadded`.
    """
    limit = MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    checked = []
    for upload in files:
        name = upload_name(upload.name)
        if upload.size > limit:
            raise InputError(f"upload {name} is {byte_size(upload.size)}, over the "
                             f"{byte_size(limit)} limit")
        # getvalue() of an UploadedFile (a BytesIO made from bytes) returns those bytes
        # without a copy; getbuffer() would copy them (0.76 s for 300 MB here).
        data = upload.getvalue()
        sniff_upload(name, data[:16])
        checked.append((name, data))
    names = [name for name, _ in checked]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"uploads name the same file more than once: {', '.join(twice)}")
    folder = project.folder / "uploads" / f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)  # new: an earlier batch's files are never written over
    for name, data in checked:
        io.atomic_write_bytes(folder / name, data)
    return folder


def discard_unadded(folder: Path, pairs: list[io.Pair] | None,
                    report: pd.DataFrame | None = None) -> None:
    """Remove the files of an upload batch that were not added to the project (all of them
    when ``pairs`` is None, e.g. the batch could not be paired), and the folder if it is left
    empty. Files of added pairs stay: the project points at them."""
    added = set() if report is None else set(report.loc[report["status"] == "ok", "image"])
    keep = {p for pair in (pairs or []) if pair.name in added
            for p in (pair.image, pair.mask)}
    for path in folder.iterdir():
        if path not in keep and path.is_file():
            path.unlink()
    if not any(folder.iterdir()):
        folder.rmdir()


def unused_uploads(project: Project) -> list[Path]:
    """The uploaded files that no image of the project uses, sorted.

    Files of removed images are among them: once deleted, such an image cannot be brought
    back (its labels stay in the history).
    """
    folder = project.folder / "uploads"
    if not folder.is_dir():
        return []
    images = project.images()
    used = {os.path.abspath(p) for column in ("path", "mask_path")
            for p in images[column] if isinstance(p, str)}
    return sorted(path for path in folder.rglob("*")
                  if path.is_file() and os.path.abspath(path) not in used)


def remove_uploads(project: Project, files: list[Path]) -> int:
    """Delete uploaded files (those of :func:`unused_uploads`) and the batch folders they
    leave empty; returns how many files were deleted.

    Raises
    ------
    InputError
        For a file outside ``<project>/uploads`` or one an image of the project uses (an
        image added since the list was made), before anything is deleted.
    """
    uploads = (project.folder / "uploads").absolute()
    unused = set(unused_uploads(project))
    for path in files:
        if Path(path) not in unused:
            where = "is not an upload of" if uploads not in Path(path).absolute().parents \
                else "is used by an image of"
            raise InputError(f"file {path} {where} project {project.folder.name}; nothing "
                             "was deleted")
    for path in files:
        Path(path).unlink(missing_ok=True)
    for batch in {Path(path).parent for path in files}:
        if batch.is_dir() and not any(batch.iterdir()):
            batch.rmdir()
    return len(files)


def upload_name(raw: str) -> str:
    """The file name an upload is saved under: its last path component, checked.

    Browsers send a bare name, but a hand-made request can send ``../../x.tif`` or
    ``C:\\x.tif``; only the part after the last ``/`` or ``\\`` is kept. Hidden names,
    control characters and extensions that are not images or masks are refused.
    """
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    extensions = set(io.IMAGE_EXTENSIONS) | set(io.MASK_EXTENSIONS)
    if (not name or name.startswith(".") or any(ord(c) < 32 for c in name)
            or Path(name).suffix.lower() not in extensions):
        raise InputError(f"upload {raw!r}: unsupported file name or extension (a plain name "
                         f"ending in {', '.join(sorted(extensions))} is expected)")
    return name


#: First bytes of the formats :mod:`svetlana_core.io` reads. It reads TIFF, PNG and JPEG by
#: content whatever their extension, and ``.npy`` (plain or Cellpose ``*_seg.npy``) by name.
_PICTURE_SIGNATURES = {
    "TIFF": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
}
_NPY_SIGNATURE = b"\x93NUMPY"


def sniff_upload(name: str, data: bytes) -> str:
    """The format of an upload from its first bytes; refuse content that is no image.

    An HTML page, a script or a zip renamed ``.tif`` is refused here, before it is
    written; a damaged image that starts right is caught by the validation that reads it.

    Returns
    -------
    str
        ``"TIFF"``, ``"PNG"``, ``"JPEG"`` or ``"NPY"``.

    Raises
    ------
    InputError
        Naming the upload, what its extension promises and its first bytes.
    """
    if Path(name).suffix.lower() == ".npy":
        if data.startswith(_NPY_SIGNATURE):
            return "NPY"
        expected = "a NumPy .npy file"
    else:
        for kind, signatures in _PICTURE_SIGNATURES.items():
            if data.startswith(signatures):
                return kind
        expected = "a TIFF, PNG or JPEG image"
    raise InputError(f"upload {name} is not {expected}: it starts with {data[:8]!r}; "
                     "nothing was saved")
