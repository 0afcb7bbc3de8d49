"""svetlana_core.stats.metrics: one scoring for the CNN and the random forest; stats imports light."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from sklearn.metrics import balanced_accuracy_score

from svetlana_core.errors import InputError
from svetlana_core.stats import classification_metrics

CLASSES = ["a", "b", "c", "d"]
# c is in y_true but never predicted; d is in neither.
Y_TRUE = ["a", "a", "a", "b", "b", "c"]
Y_PRED = ["a", "a", "b", "b", "a", "a"]


def test_hand_computed_example():
    m = classification_metrics(Y_TRUE, Y_PRED, CLASSES)
    assert m["n"] == 6
    assert m["classes"] == CLASSES
    assert m["accuracy"] == 0.5
    # rows = true a, b, c, d; columns = predicted a, b, c, d
    assert m["confusion"] == [[2, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    a, b, c, d = (m["per_class"][k] for k in CLASSES)
    assert a == pytest.approx({"recall": 2 / 3, "precision": 0.5, "f1": 4 / 7, "support": 3},
                              rel=1e-12)
    assert b == {"recall": 0.5, "precision": 0.5, "f1": 0.5, "support": 2}
    assert c == {"recall": 0.0, "precision": 0.0, "f1": 0.0, "support": 1}
    assert d == {"recall": 0.0, "precision": 0.0, "f1": 0.0, "support": 0}
    # mean recall of a, b, c (d has no true object)
    assert m["balanced_accuracy"] == pytest.approx(7 / 18, rel=1e-12)
    # mean F1 of a, b, c (seen in y_true or y_pred); d would pull it down for no reason
    assert m["macro_f1"] == pytest.approx(5 / 14, rel=1e-12)


def test_balanced_accuracy_is_sklearns():
    # y_pred holds "c", absent from y_true: sklearn warns, ours does not, same figure.
    y_true, y_pred = ["a", "a", "b", "b", "b"], ["a", "c", "b", "b", "a"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["balanced_accuracy"] == pytest.approx(expected, rel=1e-12)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 3) / 2, rel=1e-12)


def test_perfect_and_json_ready():
    m = classification_metrics(["x", "y", "y"], ["x", "y", "y"], ["y", "x"])
    assert (m["accuracy"], m["balanced_accuracy"], m["macro_f1"]) == (1.0, 1.0, 1.0)
    assert m["confusion"] == [[2, 0], [0, 1]]  # classes order, not sorted order
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m


def test_inputs_are_not_changed():
    y_true, y_pred = list(Y_TRUE), list(Y_PRED)
    classification_metrics(y_true, y_pred, CLASSES)
    assert y_true == Y_TRUE and y_pred == Y_PRED


@pytest.mark.parametrize(
    ("y_true", "y_pred", "classes", "match"),
    [
        (["a", "b"], ["a"], ["a", "b"], "y_true has 2 values but y_pred has 1"),
        ([], [], ["a", "b"], "empty"),
        (["a", "z"], ["a", "a"], ["a", "b"], r"y_true has class name\(s\) \['z'\]"),
        (["a", "b"], ["a", "q"], ["a", "b"], r"y_pred has class name\(s\) \['q'\]"),
        (["a", None], ["a", "a"], ["a", "b"], "y_true has 1 missing value"),
        (["a"], ["a"], [], "classes is empty"),
        (["a"], ["a"], ["a", "b", "a"], r"classes repeats the name\(s\) \['a'\]"),
    ],
)
def test_bad_input(y_true, y_pred, classes, match):
    with pytest.raises(InputError, match=match):
        classification_metrics(y_true, y_pred, classes)


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
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.strip() == "[]"
