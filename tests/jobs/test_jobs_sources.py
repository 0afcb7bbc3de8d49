"""svetlana_core.jobs.sources: typed data sources and the dicts a run's config stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from svetlana_core.errors import InputError
from svetlana_core.jobs import (
    FolderSource,
    FoldersSource,
    ProjectSource,
    prediction_source,
    source_from_dict,
    training_source,
)


@pytest.mark.parametrize("source", [
    ProjectSource(),
    ProjectSource(images=["A01.png", "B02.png"]),
    ProjectSource(group_pattern=r"train_(\d+)_"),
    FoldersSource("images", "masks", "labels.csv", axes="YXC", group_pattern=r"plate\d"),
    FoldersSource(None, Path("masks"), Path("labels.csv")),
    FolderSource("images"),
    FolderSource(Path("images"), Path("masks"), axes="ZYX"),
])
def test_a_source_survives_its_dict(source):
    data = source.to_dict()
    assert data["kind"] == source.kind
    assert all(not isinstance(value, (Path, tuple)) for value in data.values())  # JSON-able
    assert source_from_dict(data) == source


def test_dicts_stored_by_earlier_versions_are_read():
    # as the run config of the wave-1 fixture and the pages of the time wrote them
    assert source_from_dict({"kind": "project"}) == ProjectSource()
    assert source_from_dict({"kind": "project", "images": ["a.png"]}) == ProjectSource(("a.png",))
    assert source_from_dict({"kind": "folders", "images": "/d/i", "masks": "/d/m",
                             "labels": "/d/l.csv", "axes": None}) == \
        FoldersSource("/d/i", "/d/m", "/d/l.csv")
    assert source_from_dict({"kind": "folders", "masks": "/d/m", "labels": "/d/l.csv"}) == \
        FoldersSource(None, "/d/m", "/d/l.csv")
    assert source_from_dict({"kind": "folder", "images": "/d/i", "masks": None}) == \
        FolderSource("/d/i")


def test_sources_check_their_fields():
    with pytest.raises(InputError, match=r"folders source needs 'masks' \(a path\)"):
        FoldersSource("images", "", "labels.csv")
    with pytest.raises(InputError, match=r"folders source needs 'labels' \(a path\)"):
        source_from_dict({"kind": "folders", "masks": "m"})
    with pytest.raises(InputError, match=r"folder source needs 'images' \(a folder\)"):
        FolderSource(None)
    with pytest.raises(InputError, match=r"project source images must be a list of image "
                                         r"names, got 'A01.png'"):
        ProjectSource(images="A01.png")
    with pytest.raises(InputError, match=r"group_pattern '\(' is not a valid regular expression"):
        FoldersSource(None, "m", "l.csv", group_pattern="(")
    with pytest.raises(InputError, match=r"group_pattern 3 is not a valid regular expression"):
        ProjectSource(group_pattern=3)
    with pytest.raises(InputError, match=r"^folders source got unknown key\(s\) \['folder'\]; "
                                         r"valid: \['axes', 'group_pattern', 'images', 'kind', "
                                         r"'labels', 'masks'\]"):
        source_from_dict({"kind": "folders", "folder": "x", "masks": "m", "labels": "l"})
    with pytest.raises(InputError, match=r"^project source got unknown key\(s\) \['folder'\]"):
        training_source({"kind": "project", "folder": "x"})


def test_training_and_prediction_take_their_own_kinds():
    assert training_source(None) == ProjectSource()
    assert training_source({"kind": "folders", "masks": "m", "labels": "l"}) == \
        FoldersSource(None, "m", "l")
    assert prediction_source({"kind": "folder", "images": "i"}) == FolderSource("i")
    with pytest.raises(InputError, match=r"^source kind 'folder' is not valid; choose one of "
                                         r"project, folders$"):
        training_source({"kind": "folder", "images": "i"})
    with pytest.raises(InputError, match=r"^prediction source kind 'folders' is not valid; "
                                         r"choose one of project, folder$"):
        prediction_source({"kind": "folders", "masks": "m", "labels": "l"})
    with pytest.raises(InputError, match=r"prediction source kind 'cloud' is not valid"):
        prediction_source("cloud")
    with pytest.raises(InputError, match=r"group_pattern sets a training's validation split"):
        prediction_source(ProjectSource(group_pattern="x"))

