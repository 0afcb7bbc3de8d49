"""Where a job reads its data: typed sources, and the JSON dicts a run's config keeps them as.

A training reads the project's labelled images (:class:`ProjectSource`) or image and mask
folders with a labels CSV (:class:`FoldersSource`); a prediction reads project images
(:class:`ProjectSource`, optionally a subset) or a folder (:class:`FolderSource`). Each
checks its fields when it is made, so a bad source fails at submission, not in the worker.

The run's config stores a source as ``to_dict()``: a dict with a ``"kind"``. Runs written by
earlier versions hold the dicts callers passed then (``{"kind": "folders", "images": ...}``);
:func:`source_from_dict` reads both, and the submit functions still accept such dicts.

Examples
--------
>>> FoldersSource(None, "masks", "labels.csv").to_dict()["kind"]
'folders'
>>> source_from_dict({"kind": "project", "images": ["A01.png"]})
ProjectSource(images=('A01.png',), group_pattern=None)
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from svetlana_core import io, store
from svetlana_core.errors import InputError


@dataclass(frozen=True)
class ProjectSource:
    """The project's own images and their current labels.

    Parameters
    ----------
    images : sequence of str, optional
        Prediction only: the image names to predict (default: every image).
    group_pattern : str, optional
        Training only: a regular expression whose first group (or whole match) in the image
        name is the validation-split group, e.g. ``r"train_(\\d+)_"`` for CoNSeP tiles.
    """

    images: tuple[str, ...] | None = None
    group_pattern: str | None = None
    kind: ClassVar[str] = "project"

    def __post_init__(self) -> None:
        if self.images is not None:
            if isinstance(self.images, str) or not all(isinstance(n, str) for n in self.images):
                raise InputError(f"project source images must be a list of image names, got "
                                 f"{self.images!r}")
            object.__setattr__(self, "images", tuple(self.images))
        _check_pattern(self.group_pattern)

    def to_dict(self) -> dict[str, Any]:
        """The source as the run's config stores it."""
        images = None if self.images is None else list(self.images)
        return {"kind": self.kind, "images": images, "group_pattern": self.group_pattern}


@dataclass(frozen=True)
class FoldersSource:
    """Training data in folders: images (or None for mask-only data), masks, a labels CSV.

    Parameters
    ----------
    images : path or None
        Images, paired with masks by :func:`svetlana_core.io.pair_files`; None for mask-only
        data (every mask file is an image).
    masks : path
        Masks.
    labels : path
        ``image,label,class`` CSV.
    axes : str, optional
        Axes of the image files.
    group_pattern : str, optional
        As for :class:`ProjectSource`.
    """

    images: str | None
    masks: str
    labels: str
    axes: str | None = None
    group_pattern: str | None = None
    kind: ClassVar[str] = "folders"

    def __post_init__(self) -> None:
        for key in ("masks", "labels"):
            if not getattr(self, key):
                raise InputError(f"folders source needs {key!r} (a path)")
        _paths_as_text(self, ("images", "masks", "labels"))
        _check_pattern(self.group_pattern)

    def to_dict(self) -> dict[str, Any]:
        """The source as the run's config stores it."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def files(self) -> io.Files:
        """The image/mask files the training will read (:func:`svetlana_core.io.folder_files`)."""
        return io.folder_files(self.images, self.masks)


@dataclass(frozen=True)
class FolderSource:
    """Images to predict in a folder, with their masks beside them or in another folder.

    Parameters
    ----------
    images : path
        Images.
    masks : path, optional
        Masks (default: the images folder).
    axes : str, optional
        Axes of the image files.
    """

    images: str
    masks: str | None = None
    axes: str | None = None
    kind: ClassVar[str] = "folder"

    def __post_init__(self) -> None:
        if not self.images:
            raise InputError("folder source needs 'images' (a folder)")
        _paths_as_text(self, ("images", "masks"))

    def to_dict(self) -> dict[str, Any]:
        """The source as the run's config stores it."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def files(self) -> io.Files:
        """The image/mask files the prediction will read."""
        return io.folder_files(self.images, self.masks)


Source = ProjectSource | FoldersSource | FolderSource
TrainingSource = ProjectSource | FoldersSource
PredictionSource = ProjectSource | FolderSource
_CLASSES: dict[str, type] = {cls.kind: cls for cls in (ProjectSource, FoldersSource, FolderSource)}
#: The source kinds a training reads, and those a prediction reads.
SOURCE_KINDS = (ProjectSource.kind, FoldersSource.kind)
PREDICT_SOURCE_KINDS = (ProjectSource.kind, FolderSource.kind)


def source_from_dict(data: Mapping[str, Any], kinds: tuple[str, ...] = tuple(_CLASSES),
                     what: str = "source") -> Source:
    """The source a dict describes (``{"kind": ..., field: value}``), checked.

    Parameters
    ----------
    data : mapping
        As :meth:`ProjectSource.to_dict` and its siblings write it, or as earlier versions
        stored it.
    kinds : tuple of str
        The kinds accepted here.
    what : str
        How the source is named in messages.

    Raises
    ------
    InputError
        An unknown kind or key, and everything the source's own checks raise.
    """
    kind = data.get("kind")
    if kind not in kinds:
        raise InputError(f"{what} kind {kind!r} is not valid; choose one of {', '.join(kinds)}")
    cls = _CLASSES[kind]
    allowed = {"kind", *(field.name for field in dataclasses.fields(cls))}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InputError(f"{kind} source got unknown key(s) {unknown}; valid: {sorted(allowed)}")
    fields = {key: value for key, value in data.items() if key != "kind"}
    required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    return cls(**{**dict.fromkeys(required), **fields})


def training_source(source: TrainingSource | Mapping[str, Any] | None) -> TrainingSource:
    """The source of a training, from a source object, its dict form or None (the project)."""
    if source is None:
        return ProjectSource()
    if isinstance(source, Mapping):
        source = source_from_dict(source, SOURCE_KINDS)
    if not isinstance(source, (ProjectSource, FoldersSource)):
        raise InputError(f"a training reads a ProjectSource or a FoldersSource, got {source!r}")
    if isinstance(source, ProjectSource) and source.images is not None:
        raise InputError("a training reads every labelled image of the project; "
                         "ProjectSource(images=...) is for predictions")
    return source


def prediction_source(source: PredictionSource | Mapping[str, Any]) -> PredictionSource:
    """The source of a prediction, from a source object or its dict form."""
    if isinstance(source, Mapping):
        source = source_from_dict(source, PREDICT_SOURCE_KINDS, "prediction source")
    if not isinstance(source, (ProjectSource, FolderSource)):
        kind = getattr(source, "kind", source)
        raise InputError(f"prediction source kind {kind!r} is not valid; choose one of "
                         f"{', '.join(PREDICT_SOURCE_KINDS)}")
    if isinstance(source, ProjectSource) and source.group_pattern is not None:
        raise InputError("group_pattern sets a training's validation split; a prediction "
                         "has none")
    return source


def _check_inside_roots(source: Source, roots: store.Roots) -> None:
    """Refuse a source whose folders, labels file or listed files lead outside ``roots``.

    Relative paths are taken from the current folder, as the worker will read them.

    Raises
    ------
    InputError
        Naming the first path outside the roots (see :mod:`svetlana_core.store.roots`).
    """
    if isinstance(source, ProjectSource):
        return  # the project's files were checked when they were registered
    named = [("images folder", source.images), ("masks folder", source.masks)]
    if isinstance(source, FoldersSource):
        named.append(("labels file", source.labels))
    for what, path in named:
        if path is not None:
            store.resolve_inside_roots(os.path.abspath(path), roots, what=what)
    files = source.files().values()
    store.check_files_inside_roots([path for pair in files for path in pair], roots)


def _paths_as_text(source: Any, names: tuple[str, ...]) -> None:
    # Paths are stored as text in the run's JSON config.
    for name in names:
        value = getattr(source, name)
        if isinstance(value, os.PathLike):
            object.__setattr__(source, name, os.fspath(value))


def _check_pattern(pattern: Any) -> None:
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except (re.error, TypeError) as error:
        raise InputError(
            f"group_pattern {pattern!r} is not a valid regular expression: {error}"
        ) from None
