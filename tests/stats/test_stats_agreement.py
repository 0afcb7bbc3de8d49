"""svetlana_core.stats.agreement: predicted counts against reference ones."""

import numpy as np
import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.stats import agreement


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
