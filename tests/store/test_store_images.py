"""svetlana_core.store.images: registering image and mask files, and finding them again."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.store import Project


def test_add_image_is_idempotent_and_names_default_to_the_file_name(tmp_path):
    project = Project.create(tmp_path / "p")
    first = project.add_image("images/A01.png", "masks/A01.tif")
    assert first == 1
    assert project.add_image("images/A01.png", "masks/A01.tif") == 1
    assert project.add_image(Path("images/A01.png").absolute(), "masks/A01.tif", axes="YXC") == 1
    assert project.add_image(None, "masks/fib1.tif") == 2  # mask-only: named after the mask
    assert project.add_image("other/A01.png", "masks/A01.tif", name="plate2_A01.png") == 3
    table = project.images()
    assert table.columns.tolist() == ["id", "name", "path", "mask_path", "axes", "well"]
    assert table["id"].tolist() == [1, 2, 3]
    assert table["name"].tolist() == ["A01.png", "fib1.tif", "plate2_A01.png"]
    assert table["path"].iloc[0] == os.path.abspath("images/A01.png")
    assert pd.isna(table["path"].iloc[1])
    assert table["mask_path"].tolist() == [os.path.abspath(p) for p in ("masks/A01.tif", "masks/fib1.tif", "masks/A01.tif")]
    assert table["axes"].iloc[0] == "YXC"  # updated by the repeated add


def test_add_image_with_the_same_name_but_other_paths_raises(tmp_path):
    project = Project.create(tmp_path / "p")
    project.add_image("images/A01.png", "masks/A01.tif")
    with pytest.raises(InputError, match="image A01.png is already in the project with image .*images/A01.png"):
        project.add_image("elsewhere/A01.png", "masks/A01.tif")
    with pytest.raises(InputError, match="image A01.png is already in the project"):
        project.add_image("images/A01.png", "masks/other.tif")
    assert len(project.images()) == 1


def test_add_images_is_one_transaction(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Pair:  # the shape of svetlana_core.io.Pair
        image: Path
        mask: Path
        stem: str

    project = Project.create(tmp_path / "p")
    ids = project.add_images(
        [
            Pair(Path("i/A01.png"), Path("m/A01.tif"), "A01"),
            ("i/A02.png", "m/A02.tif", "YX", "A02"),
            {"image_path": None, "mask_path": "m/v.tif", "name": "volume"},
        ]
    )
    assert ids == [1, 2, 3]
    assert project.images()[["name", "axes", "well"]].fillna("-").values.tolist() == [
        ["A01.png", "-", "-"],
        ["A02.png", "YX", "A02"],
        ["volume", "-", "-"],
    ]
    with pytest.raises(InputError, match="image A01.png is already in the project"):
        project.add_images([("i/B01.png", "m/B01.tif"), ("x/A01.png", "m/A01.tif")])
    assert project.images()["name"].tolist() == ["A01.png", "A02.png", "volume"]  # B01 rolled back
    with pytest.raises(InputError, match="pairs item 0 must be a Pair, a mapping or a tuple"):
        project.add_images(["just_a_string.png"])


def test_image_id_by_name_or_id(project):
    assert project.image_id("B02.png") == 2
    assert project.image_id(1) == 1
    with pytest.raises(InputError, match="no image named 'C03.png' in project"):
        project.image_id("C03.png")
    with pytest.raises(InputError, match="no image with id 9 in project"):
        project.image_id(9)
    with pytest.raises(InputError, match="image must be a name or an integer id, got 1.5"):
        project.image_id(1.5)
