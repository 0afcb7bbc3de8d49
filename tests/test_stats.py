"""Tests of svetlana_core.stats on a tiny synthetic plate with counts known by hand.

The plate (96 wells), classes alive / dead / mitotic (mitotic is never predicted):

    image        well  labels -> class                       alive dead
    A01_s1.png   A01   3 alive, 7 dead, 42 alive                 2    1
    A01_s2.png   A01   1 dead, 2 dead                            0    2
    A02_s1.png   A02   5 alive                                   1    0
    A02_s2.png   A02   (no object, given through `images`)       0    0
    B05_s1.png   B05   10 alive, 11 alive, 12 dead, 13 alive     3    1
    C03_s1.png   C03   (no object, given through `images`)       0    0
    loose.png    -     4 dead (no well)                          0    1

Per well: A01 5 objects (2 alive, 3 dead), A02 1 (1 alive), B05 4 (3 alive, 1 dead),
C03 imaged with 0 objects, the 92 other wells not imaged.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.plate import PLATE_LAYOUTS, add_wells, infer_layout, parse_well_name, plate_wells, well_name
from svetlana_core.stats import agreement, counts_per_image, counts_per_plate, counts_per_well, export_tables, plate_heatmap
from svetlana_core.io import write_csv

CLASSES = ["alive", "dead", "mitotic"]

OBJECTS = pd.DataFrame(
    [
        ("A01_s1.png", 3, "alive", 0.9, "A01"),
        ("A01_s1.png", 7, "dead", 0.8, "A01"),
        ("A01_s1.png", 42, "alive", 0.7, "A01"),
        ("A01_s2.png", 1, "dead", 0.6, "A01"),
        ("A01_s2.png", 2, "dead", 0.9, "A01"),
        ("A02_s1.png", 5, "alive", 0.5, "A02"),
        ("B05_s1.png", 10, "alive", 0.9, "B05"),
        ("B05_s1.png", 11, "alive", 0.9, "B05"),
        ("B05_s1.png", 12, "dead", 0.9, "B05"),
        ("B05_s1.png", 13, "alive", 0.9, "B05"),
        ("loose.png", 4, "dead", 0.9, None),
    ],
    columns=["image", "label", "class", "confidence", "well"],
)

# Images without objects, with their wells.
EMPTY_IMAGES = {"A02_s2.png": "A02", "C03_s1.png": "C03"}


def objects() -> pd.DataFrame:
    return OBJECTS.copy()


# ----------------------------------------------------------------------------- wells and layouts


def test_well_name_and_parse_round_trip():
    assert well_name(0, 1) == "A01"
    assert well_name(1, 7) == "B07"
    assert well_name(25, 24) == "Z24"
    assert well_name(26, 1) == "AA01"
    assert well_name(31, 48) == "AF48"
    assert parse_well_name("B07") == (1, 7)
    assert parse_well_name("b7") == (1, 7)
    assert parse_well_name(" H12 ") == (7, 12)
    assert parse_well_name("AA01") == (26, 1)
    assert parse_well_name("AF48") == (31, 48)
    for row, column in [(0, 1), (7, 12), (15, 24), (26, 9), (31, 48)]:
        assert parse_well_name(well_name(row, column)) == (row, column)


@pytest.mark.parametrize("name", ["", "A", "01", "A0", "A00", "r01c01", "ABC01", "A-1", None, 7])
def test_parse_well_name_rejects_non_wells(name):
    with pytest.raises(InputError, match="well name must look like 'B07'"):
        parse_well_name(name)


def test_well_name_rejects_bad_numbers():
    with pytest.raises(InputError, match=r"well row must be an integer >= 0.*-1"):
        well_name(-1, 1)
    with pytest.raises(InputError, match=r"well column must be an integer >= 1.*0"):
        well_name(0, 0)


@pytest.mark.parametrize(
    ("layout", "first", "twelfth_thirteenth", "last"),
    [
        (96, "A01", ("A12", "B01"), "H12"),
        (384, "A01", ("A12", "A13"), "P24"),
        (1536, "A01", ("A12", "A13"), "AF48"),
    ],
)
def test_plate_wells(layout, first, twelfth_thirteenth, last):
    wells = plate_wells(layout)
    n_rows, n_columns = PLATE_LAYOUTS[layout]
    assert len(wells) == layout == n_rows * n_columns
    assert len(set(wells)) == layout
    assert wells[0] == first
    assert tuple(wells[11:13]) == twelfth_thirteenth
    assert wells[-1] == last
    assert wells[n_columns] == "B01"  # row-major


def test_plate_wells_1536_rows_go_past_z():
    wells = plate_wells(1536)
    assert wells[25 * 48] == "Z01"
    assert wells[26 * 48] == "AA01"
    assert wells[31 * 48] == "AF01"
    assert all(len(name) == 4 for name in wells[26 * 48 :])


def test_plate_layouts():
    assert PLATE_LAYOUTS == {96: (8, 12), 384: (16, 24), 1536: (32, 48)}


@pytest.mark.parametrize("layout", [0, 24, 95, 386, "96", None, True])
def test_plate_wells_rejects_unknown_layout(layout):
    with pytest.raises(InputError, match=r"n_wells must be one of \[96, 384, 1536\] wells"):
        plate_wells(layout)


def test_infer_layout():
    assert infer_layout(["A01", "H12"]) == 96
    assert infer_layout(["A01", "H13"]) == 384
    assert infer_layout(["I01", None, np.nan]) == 384
    assert infer_layout(["P24"]) == 384
    assert infer_layout(["Q01"]) == 1536
    assert infer_layout(["A25"]) == 1536
    assert infer_layout(["AF48"]) == 1536


def test_infer_layout_errors():
    with pytest.raises(InputError, match="at least one well name, got none"):
        infer_layout([None])
    with pytest.raises(InputError, match=r"wells \['AG01', 'A49'\] do not fit on the largest plate"):
        infer_layout(["A01", "AG01", "A49"])
    with pytest.raises(InputError, match=r"not a well|look like 'B07'"):
        infer_layout(["A01", "plate1"])


def test_add_wells():
    table = OBJECTS.drop(columns="well")
    before = table.copy()
    with_wells = add_wells(table, {"A01_s1.png": "a1", "B05_s1.png": "B05"})
    assert with_wells["well"].tolist()[:3] == ["A01"] * 3
    assert with_wells.loc[with_wells["image"] == "B05_s1.png", "well"].eq("B05").all()
    assert with_wells.loc[with_wells["image"] == "A02_s1.png", "well"].isna().all()
    pd.testing.assert_frame_equal(table, before)  # input not modified


def test_add_wells_accepts_well_objects():
    class Well:  # stands in for svetlana_core.plate.Well
        def __init__(self, row, column):
            self.row, self.column = row, column

    with_wells = add_wells(OBJECTS.head(1), {"A01_s1.png": Well(1, 7)})
    assert with_wells["well"].tolist() == ["B07"]


def test_add_wells_errors():
    with pytest.raises(InputError, match="well_of_image must be a mapping"):
        add_wells(OBJECTS, ["A01"])
    with pytest.raises(InputError, match=r"well_of_image has values that are not well names.*'r01c01'"):
        add_wells(OBJECTS, {"A01_s1.png": "r01c01"})


# ----------------------------------------------------------------------------- per image


def expected_per_image() -> pd.DataFrame:
    counts = {
        "A01_s1.png": ("A01", 2, 1),
        "A01_s2.png": ("A01", 0, 2),
        "A02_s1.png": ("A02", 1, 0),
        "A02_s2.png": ("A02", 0, 0),
        "B05_s1.png": ("B05", 3, 1),
        "C03_s1.png": ("C03", 0, 0),
        "loose.png": (None, 0, 1),
    }
    table = pd.DataFrame(
        {
            "image": list(counts),
            "well": pd.Series([well for well, _, _ in counts.values()], dtype=object),
            "n_objects": np.array([a + d for _, a, d in counts.values()], dtype=np.int64),
            "n_alive": np.array([a for _, a, _ in counts.values()], dtype=np.int64),
            "n_dead": np.array([d for _, _, d in counts.values()], dtype=np.int64),
            "n_mitotic": np.zeros(len(counts), dtype=np.int64),
            "frac_alive": [1 / 3 * 2, 0.0, 1.0, 0.0, 0.75, 0.0, 0.0],
            "frac_dead": [1 / 3, 1.0, 0.0, 0.0, 0.25, 0.0, 1.0],
            "frac_mitotic": [0.0] * 7,
        }
    )
    return table


def test_counts_per_image_exact():
    table = counts_per_image(objects(), CLASSES, images=EMPTY_IMAGES)
    pd.testing.assert_frame_equal(table, expected_per_image(), check_dtype=True, check_index_type=False)
    assert table["image"].tolist() == sorted(table["image"])


def test_counts_per_image_zero_object_image_has_zeros_not_nan():
    table = counts_per_image(objects(), CLASSES, images=["C03_s1.png"]).set_index("image")
    row = table.loc["C03_s1.png"]
    assert row["n_objects"] == 0
    assert row[["n_alive", "n_dead", "n_mitotic", "frac_alive", "frac_dead", "frac_mitotic"]].eq(0).all()
    assert not table.drop(columns="well").isna().any().any()
    assert pd.isna(row["well"])  # no well given for it in a plain list


def test_counts_per_image_ignores_row_order():
    shuffled = OBJECTS.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert shuffled["image"].tolist() != OBJECTS["image"].tolist()
    pd.testing.assert_frame_equal(
        counts_per_image(shuffled, CLASSES, images=EMPTY_IMAGES),
        counts_per_image(OBJECTS, CLASSES, images=EMPTY_IMAGES),
    )


def test_counts_per_image_follows_class_order_and_does_not_modify_input():
    table = objects()
    before = table.copy()
    result = counts_per_image(table, ["mitotic", "dead", "alive"])
    assert list(result.columns) == [
        "image", "well", "n_objects", "n_mitotic", "n_dead", "n_alive",
        "frac_mitotic", "frac_dead", "frac_alive",
    ]  # fmt: skip
    assert result["n_mitotic"].tolist() == [0] * 5
    pd.testing.assert_frame_equal(table, before)


def test_counts_per_image_without_well_column_and_empty_table():
    result = counts_per_image(OBJECTS.drop(columns=["well", "confidence"]), CLASSES)
    assert result["well"].isna().all()
    assert result["n_objects"].sum() == 11

    empty = OBJECTS.iloc[:0]
    result = counts_per_image(empty, CLASSES, images={"x.png": "D04"})
    assert result["image"].tolist() == ["x.png"]
    assert result["well"].tolist() == ["D04"]
    assert result[["n_objects", "n_alive", "frac_alive"]].iloc[0].tolist() == [0, 0, 0.0]


def test_counts_per_image_images_table_fills_wells_and_canonicalises():
    images = pd.DataFrame({"image": ["loose.png", "new.png"], "well": ["g1", "H12"]})
    result = counts_per_image(objects(), CLASSES, images=images).set_index("image")
    assert result.loc["loose.png", "well"] == "G01"
    assert result.loc["new.png", "well"] == "H12"
    assert result.loc["new.png", "n_objects"] == 0


# ----------------------------------------------------------------------------- per well


def test_counts_per_well_without_layout_lists_imaged_wells_in_plate_order():
    table = counts_per_well(objects(), CLASSES, images=EMPTY_IMAGES)
    assert table["well"].tolist() == ["A01", "A02", "B05", "C03"]
    assert table["row"].tolist() == [0, 0, 1, 2]
    assert table["column"].tolist() == [1, 2, 5, 3]
    assert table["n_images"].tolist() == [2, 2, 1, 1]
    assert table["n_objects"].tolist() == [5, 1, 4, 0]
    assert table["n_alive"].tolist() == [2, 1, 3, 0]
    assert table["n_dead"].tolist() == [3, 0, 1, 0]
    assert table["n_mitotic"].tolist() == [0, 0, 0, 0]
    assert table["frac_alive"].tolist() == [0.4, 1.0, 0.75, 0.0]
    assert table["frac_dead"].tolist() == [0.6, 0.0, 0.25, 0.0]
    assert table["n_objects"].dtype == np.int64
    assert table.attrs["images_without_well"] == ["loose.png"]


def test_counts_per_well_with_layout_has_every_well_and_nan_for_missing():
    table = counts_per_well(objects(), CLASSES, layout=96, images=EMPTY_IMAGES)
    assert len(table) == 96
    assert table["well"].tolist() == plate_wells(96)
    assert list(table.columns) == [
        "well", "row", "column", "n_images", "n_objects", "n_alive", "n_dead", "n_mitotic",
        "frac_alive", "frac_dead", "frac_mitotic",
    ]  # fmt: skip
    assert table["row"].tolist() == [row for row in range(8) for _ in range(12)]
    assert table["column"].tolist() == list(range(1, 13)) * 8

    by_well = table.set_index("well")
    assert by_well.loc["A01", ["n_images", "n_objects", "n_alive", "n_dead"]].tolist() == [2, 5, 2, 3]
    assert by_well.loc["A01", "frac_dead"] == 0.6
    assert by_well.loc["B05", ["n_alive", "frac_alive"]].tolist() == [3, 0.75]
    # imaged, no object: zeros; never imaged: NaN.
    assert by_well.loc["C03"].drop(["row", "column"]).tolist() == [1, 0, 0, 0, 0, 0.0, 0.0, 0.0]
    measured = ["A01", "A02", "B05", "C03"]
    missing = by_well.drop(index=measured).drop(columns=["row", "column"])
    assert len(missing) == 92
    assert missing.isna().all().all()
    assert not by_well.loc[measured].isna().any().any()
    assert table.attrs["images_without_well"] == ["loose.png"]


def test_counts_per_well_384_keeps_every_well():
    table = counts_per_well(objects(), CLASSES, layout=384)
    assert len(table) == 384
    assert table["well"].iloc[-1] == "P24"
    assert table.set_index("well").loc["B05", "n_alive"] == 3


def test_counts_per_well_rejects_well_outside_layout_and_unknown_layout():
    outside = objects()
    outside.loc[0:2, "well"] = "I13"  # all objects of A01_s1.png
    message = r"well\(s\) \['I13'\] .* outside the 96-well plate \(rows A-H, columns 01-12\)"
    with pytest.raises(InputError, match=message):
        counts_per_well(outside, CLASSES, layout=96)
    with pytest.raises(InputError, match=r"layout must be one of \[96, 384, 1536\] wells, got 48"):
        counts_per_well(objects(), CLASSES, layout=48)


def test_counts_with_plates():
    two_plates = pd.concat(
        [
            objects().assign(plate="P1"),
            # Image names are the key across the whole project, so plate 2's differ.
            objects().assign(plate="P2", image=lambda t: "P2_" + t["image"]).query("well == 'B05'"),
        ],
        ignore_index=True,
    )
    per_well = counts_per_well(two_plates, CLASSES, layout=96)
    assert len(per_well) == 192
    assert per_well[["plate", "well"]].iloc[[0, 95, 96]].values.tolist() == [
        ["P1", "A01"], ["P1", "H12"], ["P2", "A01"],
    ]  # fmt: skip
    indexed = per_well.set_index(["plate", "well"])
    assert indexed.loc[("P1", "A01"), "n_objects"] == 5
    assert indexed.loc[("P2", "B05"), "n_alive"] == 3
    assert np.isnan(indexed.loc[("P2", "A01"), "n_objects"])

    per_plate = counts_per_plate(two_plates, CLASSES)
    assert per_plate["plate"].tolist() == ["P1", "P2"]
    assert per_plate["n_wells"].tolist() == [3, 1]
    assert per_plate["n_images"].tolist() == [5, 1]
    assert per_plate["n_objects"].tolist() == [11, 4]
    assert per_plate["n_dead"].tolist() == [5, 1]
    assert per_plate["frac_alive"].tolist() == [6 / 11, 0.75]
    assert per_plate.attrs["images_without_plate"] == []

    imaged = counts_per_well(two_plates, CLASSES)
    assert imaged[["plate", "well"]].values.tolist() == [
        ["P1", "A01"], ["P1", "A02"], ["P1", "B05"], ["P2", "B05"],
    ]  # fmt: skip
    assert imaged.attrs == {"images_without_well": ["loose.png"], "images_without_plate": []}


def test_images_without_plate_are_left_out_and_listed():
    table = objects().assign(plate="P1")
    table.loc[table["image"] == "A02_s1.png", "plate"] = None
    per_well = counts_per_well(table, CLASSES)
    assert per_well["well"].tolist() == ["A01", "B05"]
    assert per_well.attrs["images_without_plate"] == ["A02_s1.png"]
    per_plate = counts_per_plate(table, CLASSES)
    assert per_plate["n_objects"].tolist() == [10]
    assert per_plate.attrs["images_without_plate"] == ["A02_s1.png"]


def test_counts_per_plate_needs_a_plate_column():
    message = "needs a 'plate' column.*" + re.escape("['image', 'label', 'class', 'confidence', 'well']")
    with pytest.raises(InputError, match=message):
        counts_per_plate(objects(), CLASSES)


# ----------------------------------------------------------------------------- heatmap


def test_plate_heatmap():
    per_well = counts_per_well(objects(), CLASSES, layout=96, images=EMPTY_IMAGES)
    grid = plate_heatmap(per_well, "n_alive", 96)
    assert grid.shape == (8, 12)
    assert grid.index.tolist() == list("ABCDEFGH")
    assert grid.columns.tolist() == list(range(1, 13))
    assert grid.loc["B", 5] == 3
    assert grid.loc["A", 1] == 2
    assert grid.loc["C", 3] == 0
    assert int(grid.isna().sum().sum()) == 92
    assert np.isnan(grid.loc["H", 12])

    # Same grid from the table without a layout (only imaged wells), layout inferred.
    imaged = counts_per_well(objects(), CLASSES, images=EMPTY_IMAGES)
    pd.testing.assert_frame_equal(plate_heatmap(imaged, "n_alive"), grid)
    assert plate_heatmap(imaged, "frac_dead").loc["A", 1] == 0.6


def test_plate_heatmap_errors():
    per_well = counts_per_well(objects(), CLASSES, layout=96)
    message = re.escape("counts lacks column(s) ['n_cats']; it has columns ['well', 'row'")
    with pytest.raises(InputError, match=message):
        plate_heatmap(per_well, "n_cats", 96)
    with pytest.raises(InputError, match="outside the 96-well plate"):
        plate_heatmap(pd.DataFrame({"well": ["P24"], "n": [1]}), "n", 96)
    with pytest.raises(InputError, match=r"duplicated wells \['A01'\]"):
        plate_heatmap(pd.DataFrame({"well": ["A01", "a1"], "n": [1, 2]}), "n", 96)
    with pytest.raises(InputError, match="holds 2 plates"):
        plate_heatmap(pd.DataFrame({"plate": ["P1", "P2"], "well": ["A01", "A01"], "n": [1, 2]}), "n")
    with pytest.raises(InputError, match="column 'n' must be numeric"):
        plate_heatmap(pd.DataFrame({"well": ["A01"], "n": ["many"]}), "n")
    with pytest.raises(InputError, match="layout must be one of"):
        plate_heatmap(per_well, "n_alive", 100)


# ----------------------------------------------------------------------------- agreement


def test_agreement_perfect():
    values = pd.Series([3.0, 0.0, 7.0], index=["A01", "A02", "B05"])
    result = agreement(values, values.copy())
    assert result == {"n": 3, "r2": 1.0, "mae": 0.0, "pearson_r": pytest.approx(1.0)}


def test_agreement_hand_computed_and_aligned_by_index():
    # reference 1 2 3 4, predicted 2 2 3 5: errors 1 0 0 1 -> MAE 0.5;
    # SS_res = 2, SS_tot = 5 -> R2 = 0.6; r = 5 / sqrt(6 * 5).
    reference = pd.Series([1, 2, 3, 4], index=["a", "b", "c", "d"])
    predicted = pd.Series([5, 3, 2, 2], index=["d", "c", "b", "a"])  # another order
    result = agreement(predicted, reference)
    assert result["n"] == 4
    assert result["r2"] == pytest.approx(0.6, abs=1e-12)
    assert result["mae"] == pytest.approx(0.5, abs=1e-12)
    assert result["pearson_r"] == pytest.approx(5 / np.sqrt(30), abs=1e-12)
    # Arrays pair by position.
    assert agreement(np.array([2, 2, 3, 5]), [1, 2, 3, 4]) == result


def test_agreement_constant_reference():
    # r2_score is defined as 0 (not -inf) for an imperfect fit to a constant reference.
    result = agreement([1, 2, 3], [2, 2, 2])
    assert result["r2"] == 0.0
    assert result["mae"] == pytest.approx(2 / 3)
    assert np.isnan(result["pearson_r"])


def test_agreement_drops_missing_pairs():
    reference = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan], index=list("abcde"))
    predicted = pd.Series([2.0, 2.0, 3.0, 5.0, 9.0], index=list("abcde"))
    result = agreement(predicted.where(predicted.index != "b", np.nan), reference)
    assert result["n"] == 3
    assert result["mae"] == pytest.approx(2 / 3)


def test_agreement_errors():
    reference = pd.Series([1, 2, 3], index=["A01", "A02", "B05"])
    with pytest.raises(
        InputError, match=r"missing from reference \['C03'\], missing from predicted \['A02'\]"
    ):
        agreement(pd.Series([1, 2, 3], index=["A01", "B05", "C03"]), reference)
    with pytest.raises(InputError, match=r"predicted has duplicated index keys \['A01'\]"):
        agreement(pd.Series([1, 2, 3], index=["A01", "A01", "B05"]), reference)
    with pytest.raises(InputError, match="predicted has 2 values but reference has 3"):
        agreement([1, 2], [1, 2, 3])
    with pytest.raises(InputError, match="at least 2 pairs"):
        agreement([1, np.nan], [1, 2])
    with pytest.raises(InputError, match="reference must hold numbers"):
        agreement([1, 2], ["one", "two"])


# ----------------------------------------------------------------------------- errors on input


def test_missing_columns_name_what_was_found():
    message = "objects lacks column(s) ['class']; it has columns ['image', 'label', 'confidence', 'well']"
    with pytest.raises(InputError, match=re.escape(message)):
        counts_per_image(OBJECTS.drop(columns="class"), CLASSES)
    with pytest.raises(InputError, match="objects must be a pandas DataFrame, got dict"):
        counts_per_image({"image": []}, CLASSES)


def test_unknown_classes_are_named():
    table = objects()
    table.loc[3, "class"] = "zombie"
    message = "class(es) ['zombie'] that are not in classes ['alive', 'dead', 'mitotic']"
    with pytest.raises(InputError, match=re.escape(message)):
        counts_per_image(table, CLASSES)


def test_bad_class_lists():
    with pytest.raises(InputError, match="classes must be a list of class names, got 'alive'"):
        counts_per_image(OBJECTS, "alive")
    with pytest.raises(InputError, match="at least one class"):
        counts_per_image(OBJECTS, [])
    with pytest.raises(InputError, match=r"classes lists \['dead'\] more than once"):
        counts_per_image(OBJECTS, ["alive", "dead", "dead"])
    with pytest.raises(InputError, match=r"would clash with the count columns \['n_objects'\]"):
        counts_per_image(OBJECTS, ["alive", "dead", "objects"])


def test_objects_without_class_or_with_duplicated_keys():
    table = objects()
    table.loc[1, "class"] = None
    message = "1 row(s) with no class, e.g. (image, label) [('A01_s1.png', 7)]"
    with pytest.raises(InputError, match=re.escape(message)):
        counts_per_image(table, CLASSES)
    doubled = pd.concat([OBJECTS, OBJECTS.iloc[[6]]], ignore_index=True)
    message = "1 duplicated (image, label) key(s): [('B05_s1.png', 10)]"
    with pytest.raises(InputError, match=re.escape(message)):
        counts_per_image(doubled, CLASSES)


def test_inconsistent_or_bad_wells():
    table = objects()
    table.loc[1, "well"] = "A02"
    with pytest.raises(InputError, match=r"objects: image\(s\) \['A01_s1.png'\] have more than one well"):
        counts_per_well(table, CLASSES)
    table = objects()
    table.loc[5, "well"] = "well 7"
    message = "objects column 'well' has values that are not well names like 'A01': ['well 7']"
    with pytest.raises(InputError, match=re.escape(message)):
        counts_per_image(table, CLASSES)
    message = "images ['A02_s1.png'] have a well in objects (['A02']) that differs from images (['B01'])"
    with pytest.raises(InputError, match=re.escape(message)):
        counts_per_image(objects(), CLASSES, images={"A02_s1.png": "B1"})
    with pytest.raises(InputError, match="images must be a list of image names"):
        counts_per_image(objects(), CLASSES, images="A01_s1.png")


# ----------------------------------------------------------------------------- export


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


# ----------------------------------------------------------------------------- imports


def test_import_needs_neither_torch_nor_streamlit_nor_sklearn():
    code = (
        "import sys, svetlana_core.stats; "
        "print(sorted(m for m in ('torch', 'streamlit', 'sklearn', 'openpyxl') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.stdout.strip() == "[]"


def test_counts_of_no_object_at_all_are_empty_tables_not_errors():
    # e.g. a batch prediction where every image failed
    empty = pd.DataFrame(columns=["image", "label", "class"])
    per_image = counts_per_image(empty, ["a", "b"])
    assert per_image.empty and list(per_image.columns) == [
        "image", "well", "n_objects", "n_a", "n_b", "frac_a", "frac_b"]
    assert counts_per_well(empty, ["a", "b"]).empty
    zeros = counts_per_image(empty, ["a", "b"], images=["x"])
    assert zeros[["n_objects", "n_a", "n_b"]].values.tolist() == [[0, 0, 0]]
