"""The labels CSV (``image,label,class``): the one reader, with line-numbered errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from svetlana_core.errors import InputError, listing
from svetlana_core.io.write import formula_unsafe

if TYPE_CHECKING:  # pandas loads inside the reader
    import pandas as pd


def read_labels_csv(path: str | os.PathLike) -> "pd.DataFrame":
    """Read a labels CSV ``image,label,class`` (the exchange format of labels).

    The one reader of labels files: the CLI, training, evaluation and project imports all use
    it. Class names are kept as text (a class called ``NA`` or ``None`` survives), spaces
    around the three values are stripped, labels must be positive integers (int64), exact
    duplicate rows are collapsed and extra columns are kept.

    Raises
    ------
    InputError
        Missing, empty, unreadable or non-UTF-8 file, missing columns, an empty image or
        class, a label that is not a positive integer, or one object given two different
        classes; the message names the file, the lines and the values.
    """
    import pandas as pd  # only here: reading images does not need pandas

    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file {path} does not exist")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"labels file {path} is empty (expected columns image,label,class)"
                         ) from None
    except UnicodeDecodeError as error:
        raise InputError(f"labels file {path} is not UTF-8 text ({error.reason} at byte "
                         f"{error.start}); save it as 'CSV UTF-8'") from None
    except (OSError, pd.errors.ParserError) as error:
        raise InputError(f"labels file {path} is not a readable CSV: {error}") from None
    table.columns = [str(column).strip() for column in table.columns]
    missing = [column for column in ("image", "label", "class") if column not in table]
    if missing:
        raise InputError(
            f"labels file {path} lacks column(s) {', '.join(missing)}; it has "
            f"{', '.join(map(repr, table.columns))} (expected image,label,class)"
        )
    for column in ("image", "label", "class"):
        table[column] = table[column].str.strip()
    for column in ("image", "class"):  # names protected from spreadsheets by write_csv
        table[column] = table[column].map(formula_unsafe)
    line = table.index.to_series() + 2  # the header is line 1
    for column in ("image", "class"):
        empty = table[column] == ""
        if empty.any():
            raise InputError(f"labels file {path} has an empty {column} on line(s) "
                             f"{listing(line[empty].tolist())}")
    numbers = pd.to_numeric(table["label"], errors="coerce")
    # Labels are int64 (and SQLite INTEGERs): a larger number would wrap negative.
    bad = numbers.isna() | (numbers % 1 != 0) | (numbers <= 0) | (numbers >= 2**63)
    if bad.any():
        shown = [f"{n} ({value!r})" for n, value in zip(line[bad], table.loc[bad, "label"])]
        raise InputError(f"labels file {path}: label must be a positive integer; {bad.sum()} "
                         f"rows are not, on line(s) {listing(shown)}")
    table["label"] = numbers.astype("int64")
    table = table.drop_duplicates(["image", "label", "class"])
    clash = table.duplicated(["image", "label"], keep=False)
    if clash.any():
        objects = table.loc[clash, ["image", "label"]].drop_duplicates()
        shown = [f"{image} label {label}" for image, label in objects.itertuples(index=False)]
        raise InputError(f"labels file {path} gives {len(objects)} objects two different "
                         f"classes: {listing(shown)}")
    return table.reset_index(drop=True)
