"""svetlana_core.values: the numeric checks and JSON-able copies of configs and model folders."""

import json
from pathlib import Path

import numpy as np
import pytest

from svetlana_core.values import is_int, is_number, json_safe, plain


def test_is_int_and_is_number():
    assert is_int(3) and is_int(np.int64(3)) and not is_int(True) and not is_int(3.0)
    assert is_number(2.5) and is_number(np.float32(1)) and is_number(4)
    assert not any(is_number(v) for v in (True, float("nan"), float("inf"), "1", None))


def test_plain_copies_into_json_values():
    value = {"shape": (2, np.int64(3)), 1: [np.float32(0.5)], "path": Path("a/b")}
    assert plain(value) == {"shape": [2, 3], "1": [0.5], "path": "a/b"}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -np.inf, np.float32("nan")])
def test_json_safe_writes_null_for_non_finite_numbers(bad):
    value = {"metrics": {"f1": bad, "n": np.int64(4)}, "history": [(1, bad)]}
    safe = json_safe(value)
    assert safe == {"metrics": {"f1": None, "n": 4}, "history": [[1, None]]}
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe
    assert np.isnan(value["metrics"]["f1"]) or np.isinf(value["metrics"]["f1"])  # a copy
