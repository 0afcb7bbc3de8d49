"""Checking labels from a file against a project before they are stored: the one report behind
the CLI's ``import-labels`` and the Project page's import.

The labels come from :func:`svetlana_core.io.label_sources.gather_labels` (a CSV, QuPath
GeoJSON, a napari-svetlana project). :func:`check_labels` reads every new image and the mask of
every labelled image once, and says what would be refused (images the project does not have,
objects that are not in their mask) and what needs the user's word (classes the project does
not have yet, objects whose label would change). :func:`store_checked` then stores the images
and labels in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from svetlana_core import io, plate
from svetlana_core.errors import InputError, listing
from svetlana_core.objects.table import labels_of

if TYPE_CHECKING:
    from svetlana_core.io.label_sources import Gathered
    from svetlana_core.store.project import Project


@dataclass
class LabelCheck:
    """What storing gathered labels in a project would do.

    Attributes
    ----------
    gathered : Gathered
        The pairs and labels read from the file.
    origin : str
        The file, for messages (``"labels file x.csv"``).
    errors : list of str
        Reasons to refuse the whole import (nothing is stored while there is one).
    new_classes : list of str
        Classes the project does not have; stored only when the user agrees.
    changed : int
        Objects already labelled with another class, which the import relabels.
    per_image : DataFrame
        ``image, labels, new image`` (bool): what each image gets.
    """

    gathered: "Gathered"
    origin: str
    errors: list[str] = field(default_factory=list)
    new_classes: list[str] = field(default_factory=list)
    changed: int = 0
    per_image: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def table(self) -> pd.DataFrame:
        return self.gathered.table

    def summary(self) -> str:
        """One line: what would be stored, what needs a decision."""
        n_images = int(self.per_image["new image"].sum()) if len(self.per_image) else 0
        parts = [f"{len(self.table)} label(s) on {self.table['image'].nunique()} image(s)"]
        if n_images:
            parts.append(f"{n_images} new image(s)")
        if self.new_classes:
            parts.append(f"new class(es) {', '.join(map(repr, self.new_classes))}")
        if self.changed:
            parts.append(f"{self.changed} object(s) relabelled")
        return "; ".join(parts)


def check_labels(project: "Project | None", gathered: "Gathered", origin: str) -> LabelCheck:
    """Check gathered labels against their masks and the project (None: a new project).

    Every new image and its mask are read (as the Project page's import does), then the mask of
    each labelled image, one at a time. A labelled object absent from its mask and an image
    that is neither new nor in the project are errors.
    """
    check = LabelCheck(gathered, origin)
    stored = project.images() if project is not None else pd.DataFrame(
        columns=["name", "mask_path"])
    masks = {**dict(stored[["name", "mask_path"]].values),
             **{pair.name: pair.mask for pair in gathered.pairs}}
    present = {}
    for pair in gathered.pairs:
        present[pair.name] = labels_of(io.load_pair(pair.image, pair.mask)[1])
    unknown = sorted(set(gathered.table["image"]) - set(masks))
    if unknown:
        check.errors.append(f"{origin} names {len(unknown)} images that are not in the "
                            f"project: {listing(unknown)}")
    for name, labels in gathered.table.groupby("image")["label"]:
        if name not in masks:
            continue
        if name not in present:
            present[name] = labels_of(io.read_mask(masks[name]))
        absent = np.setdiff1d(labels.to_numpy(), present[name])
        if absent.size:
            check.errors.append(_absent(origin, name, masks[name], present[name], absent))
    known = set(project.classes()["name"]) if project is not None else set()
    check.new_classes = sorted(set(gathered.table["class"]) - known) if known else []
    if project is not None and len(gathered.table):
        current = project.labels()[["image", "label", "class"]]
        both = gathered.table.merge(current, on=["image", "label"], suffixes=("", "_now"))
        check.changed = int((both["class"] != both["class_now"]).sum())
    new = {pair.name for pair in gathered.pairs} - set(stored["name"])
    counts = gathered.table.groupby("image").size()
    names = sorted(set(counts.index) | new)
    check.per_image = pd.DataFrame({"image": names,
                                    "labels": [int(counts.get(n, 0)) for n in names],
                                    "new image": [n in new for n in names]})
    return check


def store_checked(project: "Project", check: LabelCheck, *, add_classes: bool,
                  author: str = "", source: str = "import",
                  hint: str = "add them, or rename them in the file") -> int:
    """Store the checked images and labels in one transaction; the number of labels.

    Raises
    ------
    InputError
        The check found errors, or there are new classes and `add_classes` is False (the
        message lists them and the project's classes).
    """
    if check.errors:
        raise InputError(check.errors[0])
    if check.new_classes and not add_classes:
        known = sorted(set(project.classes()["name"]))
        raise InputError(
            f"{check.origin} names class(es) that project {project.folder} does not have: "
            f"{', '.join(map(repr, check.new_classes))} (its classes: "
            f"{', '.join(map(repr, known))}); {hint}")
    images = [(pair.image, pair.mask, None, _well(pair.name), pair.name)
              for pair in check.gathered.pairs]
    return project.import_labels(check.table, origin=check.origin, author=author,
                                 source=source, images=images)


def _absent(origin: str, image: str, mask: Any, present: np.ndarray, absent: np.ndarray) -> str:
    more = f" and {absent.size - 5} more" if absent.size > 5 else ""
    return (f"{origin} names object(s) {', '.join(map(str, absent[:5]))}{more} of image "
            f"{image}, which are not in its mask {mask} ({present.size} objects, labels "
            f"{present.min()} to {present.max()})")


def _well(name: str) -> str | None:
    well = plate.parse_well(name)
    return None if well is None else well.name
