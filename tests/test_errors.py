"""svetlana_core.errors: the message helpers every module's errors use."""

import numpy as np
import pandas as pd
import pytest

from svetlana_core.errors import InputError, byte_size, listing, preview, require_columns


def test_listing_shows_five_then_how_many_more():
    assert listing(["a", "b"]) == "a, b"
    assert listing(list(range(8))) == "0, 1, 2, 3, 4 and 3 more"
    assert listing(list(range(8)), limit=2) == "0, 1 and 6 more"


def test_byte_size_in_decimal_units():
    assert [byte_size(n) for n in (130, 2048, 1_800_000_000, 2048 * 1024**2)] == [
        "130 bytes", "2.05 kB", "1.8 GB", "2.15 GB"]


def test_listing_as_a_list_quotes_values_and_shows_numpy_scalars_as_numbers():
    assert listing(["A01", "A 2"], as_list=True) == "['A01', 'A 2']"
    assert listing(np.arange(8), limit=2, as_list=True) == "[0, 1] (and 6 more)"
    assert listing(iter("abc")) == "a, b, c"  # any iterable


def test_preview_is_the_list_form_of_listing():
    values = [np.int64(3), "x", None, 2.5, "y", "z", "w"]
    shown = "[3, 'x', None, 2.5, 'y'] (and 2 more)"
    assert preview(values) == listing(values, as_list=True) == shown
    assert preview([]) == "[]"


@pytest.mark.parametrize(
    ("table", "message"),
    [({"a": [1]}, "counts must be a pandas DataFrame, got dict"),
     (pd.DataFrame({"a": [1]}), r"counts lacks column\(s\) \['well'\]; it has columns \['a'\]")],
)
def test_require_columns(table, message):
    require_columns(pd.DataFrame({"well": []}), ("well",), "counts")
    with pytest.raises(InputError, match=message):
        require_columns(table, ("well",), "counts")
