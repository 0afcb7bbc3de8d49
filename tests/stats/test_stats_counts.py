"""svetlana_core.stats.counts on a tiny synthetic plate with counts known by hand
(:func:`tests.builders.plate_objects`)."""

import re

import numpy as np
import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.plate import plate_wells
from svetlana_core.stats import counts_per_image, counts_per_plate, counts_per_well, plate_heatmap
from tests.builders import PLATE_CLASSES, PLATE_EMPTY_IMAGES, plate_objects

CLASSES = list(PLATE_CLASSES)
OBJECTS = plate_objects()
# Images without objects, with their wells.
EMPTY_IMAGES = dict(PLATE_EMPTY_IMAGES)


def objects() -> pd.DataFrame:
    return OBJECTS.copy()


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


def test_counts_of_no_object_at_all_are_empty_tables_not_errors():
    # e.g. a batch prediction where every image failed
    empty = pd.DataFrame(columns=["image", "label", "class"])
    per_image = counts_per_image(empty, ["a", "b"])
    assert per_image.empty and list(per_image.columns) == [
        "image", "well", "n_objects", "n_a", "n_b", "frac_a", "frac_b"]
    assert counts_per_well(empty, ["a", "b"]).empty
    zeros = counts_per_image(empty, ["a", "b"], images=["x"])
    assert zeros[["n_objects", "n_a", "n_b"]].values.tolist() == [[0, 0, 0]]
