"""ui.plate: the Dashboard's plate map upload and per-condition summary (no server)."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.store import Project
from ui import plate


def test_read_plate_map_keeps_text_and_extra_columns():
    table = plate.read_plate_map(b"well,condition,dose\na1,DMSO,0\nA02,drug NA,10\n", "map.csv")
    assert table.to_dict("list") == {"well": ["a1", "A02"], "condition": ["DMSO", "drug NA"],
                                     "dose": ["0", "10"]}


@pytest.mark.parametrize("data,message", [
    (b"well;condition\nA01;x\n", r"plate map map.csv needs columns well and condition; it has "
                                 r"well;condition"),
    (b"", r"plate map map.csv is not a readable CSV"),
    ("well,condition\nA01,Kälte\n".encode("latin-1"), r"plate map map.csv is not UTF-8 text"),
])
def test_read_plate_map_errors_name_the_file(data, message):
    with pytest.raises(InputError, match=message):
        plate.read_plate_map(data, "map.csv")


def test_condition_summary_matches_wells_by_normalised_name():
    per_well = pd.DataFrame({"well": ["A01", "A02", "B01", "B02"],
                             "n_objects": [10, 20, 30, None]})
    plate_map = pd.DataFrame({"well": ["a1", "A2", "b01", "B02"],
                              "condition": ["ctrl", "ctrl", "drug", "drug"]})
    summary = plate.condition_summary(per_well, plate_map, "n_objects")
    assert summary["condition"].tolist() == ["ctrl", "drug"]
    assert summary["mean"].tolist() == [15.0, 30.0]
    assert summary["wells"].tolist() == [2, 1]  # B02 has no value: not counted


def test_project_counts_count_a_class_the_model_never_predicted_as_zero(tmp_path):
    # An undertrained model that calls every object 'round' still has 'speckled': the tables
    # must show 0 speckled objects, not leave the column out.
    fixture = tmp_path / "wave1"
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "wave1", fixture)
    project = Project.open(fixture)
    model_dir = str(fixture / "models" / "cnn_wave1")
    for image in ("demo_A01.png", "demo_B01.png"):
        project.save_predictions(model_dir, image, pd.DataFrame(
            {"label": [1, 2], "class": ["round", "elongated"], "confidence": [0.9, 0.8]}))
    per_image, _, classes = plate.project_counts(project, model_dir, layout=None)
    assert classes == ["round", "elongated", "speckled"]
    row = per_image.set_index("image").loc["demo_A01.png"]
    assert (row["n_round"], row["n_elongated"], row["n_speckled"]) == (1, 1, 0)
    assert row["frac_speckled"] == 0
