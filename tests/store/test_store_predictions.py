"""svetlana_core.store.predictions: a model's per-object predictions, by image."""

from __future__ import annotations

import pandas as pd
import pytest

from svetlana_core.errors import InputError


def test_save_predictions_replaces_rows_of_that_model_and_image(project):
    first = pd.DataFrame(
        {"label": [3, 1, 2], "class": ["live", "dead", "live"], "confidence": [0.9, 0.8, 0.6],
         "p_live": [0.9, 0.2, 0.6], "p_dead": [0.1, 0.8, 0.4]}
    )  # fmt: skip
    assert project.save_predictions("models/run1", "A01.png", first) == 3
    project.save_predictions("models/run1", "B02.png", first.iloc[:1])
    project.save_predictions("models/run2", "A01.png", first.iloc[:2])
    table = project.predictions("models/run1", "A01.png")
    assert table.columns.tolist() == ["image", "label", "class", "confidence", "p_live", "p_dead"]
    assert table.values.tolist() == [
        ["A01.png", 1, "dead", 0.8, 0.2, 0.8],
        ["A01.png", 2, "live", 0.6, 0.6, 0.4],
        ["A01.png", 3, "live", 0.9, 0.9, 0.1],
    ]
    second = pd.DataFrame({"label": [7], "class": ["dead"], "confidence": [0.7], "probabilities": [{"live": 0.3, "dead": 0.7}]})
    project.save_predictions("models/run1", "A01.png", second)
    assert project.predictions("models/run1", 1).values.tolist() == [["A01.png", 7, "dead", 0.7, 0.3, 0.7]]
    assert project.predictions("models/run1")[["image", "label"]].values.tolist() == [["A01.png", 7], ["B02.png", 3]]
    assert project.predictions("models/run2")["label"].tolist() == [1, 3]
    assert project.predictions("models/run3").empty
    with pytest.raises(InputError, match=r"predictions table repeats label\(s\) 3"):
        project.save_predictions("models/run1", "A01.png", pd.DataFrame({"label": [3, 3], "class": ["a", "b"]}))
    with pytest.raises(InputError, match=r"predictions table lacks column\(s\) class"):
        project.save_predictions("models/run1", "A01.png", pd.DataFrame({"label": [3]}))
    assert project.predictions("models/run1", 1)["label"].tolist() == [7]  # failed saves changed nothing
