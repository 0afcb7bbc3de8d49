"""Add image/mask pairs to a project, from a server folder or by upload, with a validation
report per file (the errors of :mod:`svetlana_core.io`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.store import Project

#: Uploads larger than this are refused before they are written (bytes); see README.
MAX_UPLOAD_BYTES = 2 * 1024**3


def validate_pairs(pairs: list[io.Pair]) -> pd.DataFrame:
    """Read every pair once and report ``image, mask, status, message, shape, objects, well``.

    Pixels are read to validate them (the io errors), then dropped; nothing is written.
    """
    rows = []
    for pair in pairs:
        # One file at a time keeps memory bounded; reading dominates, not the loop.
        record = {"image": pair.image.name, "mask": pair.mask.name, "status": "ok",
                  "message": "", "shape": "", "objects": 0,
                  "well": (w.name if (w := io.parse_well(pair.image.name)) else "")}
        try:
            image, mask = io.load_pair(pair.image, pair.mask)
            record["shape"] = " × ".join(str(s) for s in image.shape)
            record["objects"] = int(len(_labels(mask)))
        except InputError as error:
            record["status"], record["message"] = "error", str(error)
        rows.append(record)
    return pd.DataFrame(rows, columns=["image", "mask", "status", "message", "shape",
                                       "objects", "well"])


def _labels(mask):
    from svetlana_core.objects import labels_of

    return labels_of(mask)


def add_valid(project: Project, pairs: list[io.Pair], report: pd.DataFrame) -> int:
    """Register the pairs whose report status is ``ok``; returns how many were added."""
    ok = set(report.loc[report["status"] == "ok", "image"])
    chosen = [
        {"image_path": p.image, "mask_path": p.mask,
         "well": (w.name if (w := io.parse_well(p.image.name)) else None)}
        for p in pairs if p.image.name in ok
    ]
    if chosen:
        project.add_images(chosen)
    return len(chosen)


def save_uploads(project: Project, files) -> Path:
    """Write uploaded files into ``<project>/uploads/`` (names sanitised, size-limited).

    Returns the folder, to be paired with :func:`svetlana_core.io.pair_files`.
    """
    folder = project.folder / "uploads"
    folder.mkdir(exist_ok=True)
    for upload in files:
        name = Path(upload.name).name
        if not name or name.startswith(".") or Path(name).suffix.lower() not in (
                set(io.IMAGE_EXTENSIONS) | set(io.MASK_EXTENSIONS)):
            raise InputError(f"upload {upload.name!r}: unsupported file name or extension")
        if upload.size > MAX_UPLOAD_BYTES:
            raise InputError(f"upload {name} is {upload.size / 1e9:.1f} GB, over the "
                             f"{MAX_UPLOAD_BYTES / 1e9:.0f} GB limit")
        io.atomic_write_bytes(folder / name, upload.getvalue())
    return folder
