"""svetlana_core.plate.wells: the one parser and writer of well names."""

import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.plate import Well, canonical_wells, parse_well, parse_well_name, well_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("A01.tif", "A01"),
        ("A1.png", "A01"),
        ("P24.tif", "P24"),
        ("H12", "H12"),
        ("AF48_image.tif", "AF48"),
        ("AA01-x.tif", "AA01"),
        ("Plate_A01_s1_w1.tif", "A01"),
        ("MFGTMP_B03_s2_w1ABCD.TIF", "B03"),
        ("Plate_B03_S1_W1.tif", "B03"),
        ("VID1_C3_1_00d00h00m.tif", "C03"),
        ("exp 2024 D07 field1.tif", "D07"),
        ("well-H12.tif", "H12"),
        ("r01c01f01p01-ch1sk1fk1fl1.tiff", "A01"),
        ("r16c24f03p01-ch2.tiff", "P24"),
        ("R02C03F01.tif", "B03"),
        ("plate3/r03c12f01.tif", "C12"),
        ("train_1_000.png", None),
        ("train_10_006.png", None),
        ("DAPI.tif", None),
        ("sample.tif", None),
        ("fib1-0-0-0.tif", None),
        ("cell_s1_w1.tif", None),
        ("a01.tif", None),
        ("A0.tif", None),
        ("A49.tif", None),
        ("AG01.tif", None),
        ("BA01.tif", None),
        ("B123.tif", None),
        ("xA01.tif", None),
        ("A01x.tif", None),
        ("r00c01.tif", None),
        ("r33c01.tif", None),
        ("r01c49.tif", None),
        ("", None),
    ],
)
def test_parse_well(name, expected):
    well = parse_well(name)
    assert (None if well is None else well.name) == expected


def test_well_fields_and_names():
    assert parse_well("B03.tif") == Well(row=1, column=3)
    assert Well(0, 1).row_letter == "A"
    assert Well(25, 7).name == "Z07"
    assert Well(26, 10).name == "AA10"
    assert Well(31, 48).row_letter == "AF"
    assert sorted([Well(1, 2), Well(0, 12), Well(0, 3)]) == [Well(0, 3), Well(0, 12), Well(1, 2)]


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [(32, 1, "row must be"), (-1, 1, "row must be"), (0, 0, "column must be"), (0, 49, "column")],
)
def test_well_out_of_plate(row, column, message):
    with pytest.raises(InputError, match=message):
        Well(row, column)


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
    ("name", "expected"),
    [("A01", (0, 1)), ("a1", (0, 1)), ("B007", (1, 7)), ("b0007", (1, 7)), ("AF48", (31, 48)),
     ("af48", (31, 48)), ("AG01", (32, 1)), ("A49", (0, 49)), ("ZZ999", (701, 999))],
)
def test_parse_well_name_accepts_the_documented_forms(name, expected):
    # A name need not fit a plate: the layouts say AG01 and A49 lie outside a 1536-well plate.
    assert parse_well_name(name) == expected


def test_file_names_and_well_names_read_rows_alike():
    # One letters-to-row rule for both parsers, on every well of a 1536-well plate.
    for row in range(32):
        for column in (1, 9, 48):
            name = well_name(row, column)
            assert Well(row, column).name == name
            assert parse_well(f"plate_{name}_s1.tif") == Well(*parse_well_name(name))


def test_file_names_hold_phenix_wells_in_any_case():
    assert parse_well("r2c3.tif") == Well(1, 3)
    assert parse_well("R32C48F01.tif") == Well(31, 48)
    assert parse_well("plate_r2c3f1_B04.tif") == Well(1, 3)  # the Phenix token first


def test_file_names_refuse_what_a_well_name_accepts():
    # In a file name s1, w1, a1 name sites and wavelengths; three-digit columns are no well.
    assert parse_well("a1.tif") is None and parse_well_name("a1") == (0, 1)
    assert parse_well("B007.tif") is None and parse_well_name("B007") == (1, 7)


def test_canonical_wells():
    class Position:  # anything with integer row and column attributes
        row, column = 1, 7

    values = pd.Series(["b7", "A01", None, Well(31, 48), Position()], index=[5, 6, 7, 8, 9])
    canonical = canonical_wells(values)
    assert canonical.tolist() == ["B07", "A01", None, "AF48", "B07"]
    assert canonical.index.tolist() == [5, 6, 7, 8, 9] and canonical.dtype == object
    with pytest.raises(InputError, match=r"the map has values that are not well names like "
                                         r"'A01': \['r01c01', 'x'\]"):
        canonical_wells(pd.Series(["A01", "r01c01", "x", "r01c01"]), "the map")
