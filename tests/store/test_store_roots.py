"""svetlana_core.store.roots: which paths lie inside the data roots (symlinks followed).

The app's use of these rules (typed folders, linked files) is tested in tests/test_access.py.
"""

from __future__ import annotations

import os
import re

import pytest

from svetlana_core.errors import InputError
from svetlana_core.store import (
    DATA_ROOT_ENV,
    check_files_inside_roots,
    configured_roots,
    data_roots,
    is_inside_roots,
    resolve_inside_roots,
)


@pytest.fixture
def lab(tmp_path):
    """A root ``lab`` holding a file, a link out of it and a link within it; ``outside``."""
    lab, outside = tmp_path / "lab", tmp_path / "outside"
    for folder in (lab / "plate", outside):
        folder.mkdir(parents=True)
    (lab / "plate" / "A01.tif").write_bytes(b"x")
    (outside / "B02.tif").write_bytes(b"x")
    (lab / "plate" / "B02.tif").symlink_to(outside / "B02.tif")
    (lab / "plate" / "again.tif").symlink_to(lab / "plate" / "A01.tif")
    return {"lab": lab, "outside": outside}


def test_a_path_is_inside_when_it_resolves_there(lab):
    roots = [lab["lab"]]
    assert is_inside_roots(lab["lab"], roots)
    assert is_inside_roots(lab["lab"] / "plate" / "A01.tif", roots)
    assert is_inside_roots(lab["lab"] / "plate" / "again.tif", roots)
    assert is_inside_roots(lab["lab"] / "plate" / ".." / "plate", roots)
    assert not is_inside_roots(lab["lab"] / "plate" / "B02.tif", roots)  # a link out
    assert not is_inside_roots(lab["lab"] / ".." / "outside", roots)
    assert not is_inside_roots(str(lab["lab"]) + "-other", roots)  # a prefix is not a parent
    assert is_inside_roots(lab["outside"] / "B02.tif", [lab["lab"], lab["outside"]])


def test_roots_come_from_the_environment(lab, monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert configured_roots() is None
    monkeypatch.setenv(DATA_ROOT_ENV, "  ")
    assert configured_roots() is None
    monkeypatch.setenv(DATA_ROOT_ENV, f"{lab['lab']}{os.pathsep}{lab['outside']}")
    assert configured_roots() == data_roots() == [lab["lab"], lab["outside"]]
    missing = lab["lab"].parent / "new-root"
    monkeypatch.setenv(DATA_ROOT_ENV, str(missing))
    assert data_roots() == [missing] and not missing.exists()  # only create=True makes it
    assert data_roots(create=True) == [missing] and missing.is_dir()


def test_resolve_inside_roots_names_what_it_refuses(lab):
    roots = [lab["lab"]]
    assert resolve_inside_roots("plate", roots) == lab["lab"] / "plate"
    with pytest.raises(InputError, match=r"^labels file .*B02.tif is outside the data roots \("):
        resolve_inside_roots(lab["lab"] / "plate" / "B02.tif", roots, what="labels file")
    with pytest.raises(InputError, match=r"^folder ~/x starts with '~'"):
        resolve_inside_roots("~/x", roots)


def test_check_files_inside_roots_names_the_first_link_out(lab):
    plate = lab["lab"] / "plate"
    check_files_inside_roots([plate / "A01.tif", None, plate / "again.tif"], [lab["lab"]])
    target = re.escape(str(lab["outside"] / "B02.tif"))
    with pytest.raises(InputError, match=rf"^file B02.tif is a link to {target}, outside the data"):
        check_files_inside_roots([plate / "A01.tif", plate / "B02.tif"], [lab["lab"]])
