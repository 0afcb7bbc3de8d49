"""svetlana_core.plate.layout: plate layouts, their wells, wells added to a table."""

import numpy as np
import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.plate import (
    PLATE_LAYOUTS,
    add_wells,
    check_on_layout,
    infer_layout,
    layout_shape,
    plate_wells,
    well_positions,
)
from tests.builders import plate_objects

OBJECTS = plate_objects()


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


def test_layout_shape_positions_and_bounds():
    assert [layout_shape(n) for n in (96, 384, 1536)] == [(8, 12), (16, 24), (32, 48)]
    with pytest.raises(InputError, match=r"plate must be one of \[96, 384, 1536\] wells, got '96'"):
        layout_shape("96", "plate")
    rows, columns = well_positions(pd.Index(["A01", "h12", "AF48", "A01"]))
    assert rows.tolist() == [0, 7, 31, 0] and columns.tolist() == [1, 12, 48, 1]
    assert rows.dtype == columns.dtype == np.int64
    with pytest.raises(InputError, match=r"the map: well name must look like 'B07'.*'1x'"):
        well_positions(pd.Index(["A01", "1x"]), "the map")
    check_on_layout(pd.Index(["A01", "P24"]), 384)
    with pytest.raises(InputError, match=r"well\(s\) \['I01', 'A13'\] in the map are outside the "
                                         r"96-well plate \(rows A-H, columns 01-12\)"):
        check_on_layout(pd.Index(["A01", "I01", "A13", "I01"]), 96, "the map")
