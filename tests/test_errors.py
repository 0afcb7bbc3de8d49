"""svetlana_core.errors: the message helpers every module's errors use."""

from svetlana_core.errors import byte_size, listing


def test_listing_shows_five_then_how_many_more():
    assert listing(["a", "b"]) == "a, b"
    assert listing(list(range(8))) == "0, 1, 2, 3, 4 and 3 more"
    assert listing(list(range(8)), limit=2) == "0, 1 and 6 more"


def test_byte_size_in_decimal_units():
    assert [byte_size(n) for n in (130, 2048, 1_800_000_000, 2048 * 1024**2)] == [
        "130 bytes", "2.05 kB", "1.8 GB", "2.15 GB"]
