"""svetlana_core.stats.export (and io.write_csv) on the count tables of
:func:`tests.builders.plate_objects`."""

import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.io import write_csv
from svetlana_core.stats import counts_per_image, counts_per_well, export_tables, plate_heatmap
from tests.builders import PLATE_CLASSES, PLATE_EMPTY_IMAGES, plate_objects

CLASSES = list(PLATE_CLASSES)
OBJECTS = plate_objects()
# Images without objects, with their wells.
EMPTY_IMAGES = dict(PLATE_EMPTY_IMAGES)


def objects() -> pd.DataFrame:
    return OBJECTS.copy()


def test_export_tables_round_trip(tmp_path):
    per_image = counts_per_image(objects(), CLASSES, images=EMPTY_IMAGES)
    per_well = counts_per_well(objects(), CLASSES, layout=96, images=EMPTY_IMAGES)
    grid = plate_heatmap(per_well, "n_objects", 96)
    out = tmp_path / "counts.xlsx"
    assert export_tables(out, {"per image": per_image, "per well": per_well, "heatmap": grid}) == out

    sheets = pd.read_excel(out, sheet_name=None)
    assert list(sheets) == ["per image", "per well", "heatmap"]
    back = sheets["per image"]
    assert list(back.columns) == list(per_image.columns)  # no index column written
    assert back["n_alive"].tolist() == [2, 0, 1, 0, 3, 0, 0]
    assert back["frac_alive"].tolist() == per_image["frac_alive"].tolist()
    assert back["well"].tolist()[:6] == ["A01", "A01", "A02", "A02", "B05", "C03"]
    assert pd.isna(back["well"].iloc[6])

    wells = sheets["per well"]
    assert len(wells) == 96
    assert wells.set_index("well").loc["B05", "n_alive"] == 3
    assert wells["n_objects"].isna().sum() == 92

    heat = pd.read_excel(out, sheet_name="heatmap", index_col=0)
    assert heat.shape == (8, 12)
    assert heat.index.tolist() == list("ABCDEFGH")
    assert heat.loc["B", 5] == 4
    assert heat.loc["A", 1] == 5
    assert heat.isna().sum().sum() == 92
    assert sorted(path.name for path in tmp_path.iterdir()) == ["counts.xlsx"]


def test_export_tables_failure_keeps_previous_file_and_leaves_no_temp(tmp_path):
    out = tmp_path / "counts.xlsx"
    export_tables(out, {"old": pd.DataFrame({"a": [1]})})
    unwritable = pd.DataFrame({"time": pd.to_datetime(["2024-01-01"]).tz_localize("UTC")})
    with pytest.raises(ValueError, match="timezone"):  # Excel has no time zones: openpyxl refuses
        export_tables(out, {"new": unwritable})
    assert list(pd.read_excel(out, sheet_name=None)) == ["old"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["counts.xlsx"]


def test_export_tables_errors(tmp_path):
    table = pd.DataFrame({"a": [1]})
    with pytest.raises(InputError, match=r"writes \.xlsx files, got out_path .*counts\.xls'"):
        export_tables(tmp_path / "counts.xls", {"a": table})
    with pytest.raises(InputError, match="folder .*nowhere.* does not exist"):
        export_tables(tmp_path / "nowhere" / "counts.xlsx", {"a": table})
    with pytest.raises(InputError, match="non-empty mapping"):
        export_tables(tmp_path / "counts.xlsx", {})
    with pytest.raises(InputError, match=r"sheet name 'a/b' has a character Excel refuses"):
        export_tables(tmp_path / "counts.xlsx", {"a/b": table})
    with pytest.raises(InputError, match="1 to 31 characters"):
        export_tables(tmp_path / "counts.xlsx", {"x" * 32: table})
    with pytest.raises(InputError, match="'Counts' is used twice"):
        export_tables(tmp_path / "counts.xlsx", {"counts": table, "Counts": table})
    with pytest.raises(InputError, match="sheet 'a' must be a pandas DataFrame, got list"):
        export_tables(tmp_path / "counts.xlsx", {"a": [1, 2]})
    assert list(tmp_path.iterdir()) == []


def test_write_csv_round_trip_is_atomic(tmp_path):
    per_image = counts_per_image(objects(), CLASSES, images=EMPTY_IMAGES)
    out = tmp_path / "per_image.csv"
    out.write_text("old content\n")
    assert write_csv(out, per_image) == out
    back = pd.read_csv(out)
    assert list(back.columns) == list(per_image.columns)
    assert back["n_dead"].tolist() == [1, 2, 0, 0, 1, 0, 1]
    assert back["frac_alive"].tolist() == per_image["frac_alive"].tolist()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["per_image.csv"]

    grid = plate_heatmap(counts_per_well(objects(), CLASSES, layout=96), "n_alive", 96)
    write_csv(tmp_path / "grid.csv", grid)
    assert (tmp_path / "grid.csv").read_text().splitlines()[0] == "row," + ",".join(map(str, range(1, 13)))
    with pytest.raises(InputError, match="write_csv needs a pandas DataFrame, got dict"):
        write_csv(out, {"a": 1})
