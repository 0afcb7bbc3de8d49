"""Data roots: the folders a Svetlana server may read images from and keep projects in.

A server is shared by a lab, and the people typing folder names into it must not reach the
server's other files. ``$SVETLANA_DATA_ROOT`` lists the allowed folders (separated by
``os.pathsep``, ":" on Linux; default ``./workspace``). A path is inside the roots when it
*resolves* there: ``..`` that climbs out, and symlinks that lead out, are outside, while a
symlink from one root into another is fine. Folders are checked where the user names them
(:func:`resolve_inside_roots`); the files listed in an accepted folder are checked again one by
one (:func:`pairs_inside_roots`, :func:`check_files_inside_roots`), since a folder inside a root
may hold a link to ``/etc/...``.

The app checks every folder it is given (the default root included); the job API
(:mod:`svetlana_core.jobs`) checks folder sources only when the environment sets the roots
(:func:`configured_roots`), so scripts and the command line keep reading any folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from svetlana_core.errors import InputError

#: Environment variable with the data roots, separated by ``os.pathsep`` (":" on Linux).
DATA_ROOT_ENV = "SVETLANA_DATA_ROOT"
DEFAULT_DATA_ROOT = "./workspace"

Roots = Sequence[str | os.PathLike[str]]


def data_roots(create: bool = False) -> list[Path]:
    """The data roots from ``$SVETLANA_DATA_ROOT`` (default ``./workspace``), resolved.

    Parameters
    ----------
    create : bool
        Make the first root if it is missing (the app keeps its projects there).

    Returns
    -------
    list of Path
        At least one folder.
    """
    raw = os.environ.get(DATA_ROOT_ENV, DEFAULT_DATA_ROOT)
    roots = [Path(part.strip()).expanduser().resolve() for part in raw.split(os.pathsep)
             if part.strip()]
    if not roots:
        roots = [Path(DEFAULT_DATA_ROOT).resolve()]
    if create:
        roots[0].mkdir(parents=True, exist_ok=True)
    return roots


def configured_roots() -> list[Path] | None:
    """The data roots when ``$SVETLANA_DATA_ROOT`` is set (and not blank), else None."""
    if not os.environ.get(DATA_ROOT_ENV, "").strip():
        return None
    return data_roots()


def is_inside_roots(path: str | os.PathLike[str], roots: Roots | None = None) -> bool:
    """Whether ``path`` resolves (symlinks followed) to a root or somewhere below one.

    Parameters
    ----------
    path : str or path-like
        A file or folder; a relative path is taken from the current folder.
    roots : sequence of paths, optional
        Default :func:`data_roots`.

    Examples
    --------
    >>> is_inside_roots("/srv/lab/plate1/../plate2", ["/srv/lab"])
    True
    >>> is_inside_roots("/srv/lab/../etc", ["/srv/lab"])
    False
    """
    return _inside(Path(path).resolve(), _resolved(roots))


def resolve_inside_roots(
    path: str | os.PathLike[str], roots: Roots | None = None, what: str = "folder"
) -> Path:
    """Resolve a user-given path and refuse it unless it stays inside a data root.

    A relative path is looked up in each root in turn (the first where it exists wins, else
    the first root). ``..`` that climbs out, absolute paths elsewhere, ``~`` and symlinks
    that lead out of the roots are refused with :class:`InputError`: the server's files
    outside the lab's data folders are never listed or read.

    Parameters
    ----------
    path : str or path-like
        As the user typed it.
    roots : sequence of paths, optional
        Default :func:`data_roots`.
    what : str
        How the path is named in messages (``"folder"``, ``"labels file"``).

    Returns
    -------
    Path
        The resolved path.

    Raises
    ------
    InputError
        For a path outside the roots, one that starts with ``~`` or holds a NUL character,
        or one that cannot be resolved (a symlink loop).
    """
    roots = _resolved(roots)
    text = str(path).strip()
    if text.startswith("~"):
        # expanduser would open the server account's home folder, never a data root.
        raise InputError(f"{what} {text} starts with '~': give a path inside the data roots "
                         f"({_shown(roots)})")
    if "\x00" in text:
        raise InputError(f"{what} {text!r} contains a NUL character")
    candidate = Path(text)
    if not candidate.is_absolute():
        candidates = [root / candidate for root in roots]
        candidate = next((c for c in candidates if c.exists()), candidates[0])
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop, a name too long
        raise InputError(f"{what} {text} cannot be resolved: {error}") from None
    if not _inside(resolved, roots):
        raise InputError(f"{what} {text} is outside the data roots ({_shown(roots)})")
    return resolved


def pairs_inside_roots(pairs: Sequence[Any], roots: Roots | None = None
                       ) -> tuple[list[Any], list[str]]:
    """Keep the pairs whose image and mask files resolve inside a data root.

    A folder inside a root may hold a symlink to a file elsewhere (``/etc/…``, another
    lab's share); :func:`resolve_inside_roots` checks the folder only, so each file is
    checked here too.

    Parameters
    ----------
    pairs : sequence of svetlana_core.io.Pair
        Anything with ``image``, ``mask`` (paths) and ``stem``.
    roots : sequence of paths, optional
        Default :func:`data_roots`.

    Returns
    -------
    kept : list of Pair
        The pairs whose two files stay inside the roots, in their order.
    skipped : list of str
        One message per pair left out, naming the file and where it leads.

    Raises
    ------
    InputError
        When every pair leads outside the roots.
    """
    roots = _resolved(roots)
    kept, skipped = [], []
    for pair in pairs:
        message = _link_out("image", pair.image, roots) or _link_out("mask", pair.mask, roots)
        if message:
            skipped.append(f"{message}: pair {pair.stem} skipped")
        else:
            kept.append(pair)
    if pairs and not kept:
        raise InputError(f"every file pair leads outside the data roots ({_shown(roots)}); "
                         f"first: {skipped[0]}")
    return kept, skipped


def check_files_inside_roots(
    files: Iterable[str | os.PathLike[str] | None], roots: Roots | None = None
) -> None:
    """Refuse a list of files when one of them resolves outside the data roots.

    Parameters
    ----------
    files : iterable of paths (None entries are skipped: a mask-only pair has no image)
    roots : sequence of paths, optional
        Default :func:`data_roots`.

    Raises
    ------
    InputError
        Naming the first file that leads out, and where it leads.
    """
    roots = _resolved(roots)
    for path in files:
        message = None if path is None else _link_out("file", Path(path), roots)
        if message:
            raise InputError(message)


def _link_out(what: str, path: Path, roots: list[Path]) -> str | None:
    """A message when ``path`` resolves outside ``roots``, else None."""
    target = path.resolve()
    if _inside(target, roots):
        return None
    return f"{what} {path.name} is a link to {target}, outside the data roots"


def _resolved(roots: Roots | None) -> list[Path]:
    return [Path(root).resolve() for root in (roots or data_roots())]


def _inside(resolved: Path, roots: list[Path]) -> bool:
    return any(resolved == root or root in resolved.parents for root in roots)


def _shown(roots: list[Path]) -> str:
    return ", ".join(str(r) for r in roots)
