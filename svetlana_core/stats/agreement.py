"""Agreement between two labellings (or a labelling and a prediction) of the same objects."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from svetlana_core.errors import InputError, preview


def agreement(
    predicted: pd.Series | np.ndarray | Sequence[float],
    reference: pd.Series | np.ndarray | Sequence[float],
) -> dict[str, float | int]:
    """How well predicted counts (or fractions) match reference ones.

    Two Series are paired by index (image or well names); anything else is paired by position.
    Pairs where either value is missing (NaN) are left out, e.g. wells that were not imaged.

    Parameters
    ----------
    predicted, reference : pandas.Series or array-like, shape (n,)
        Numeric values.

    Returns
    -------
    dict
        ``n`` (pairs used), ``r2`` (coefficient of determination of `predicted` against
        `reference`, :func:`sklearn.metrics.r2_score`; 1 for a perfect match, 0 when the
        reference is constant and not matched exactly), ``mae`` (mean absolute error) and
        ``pearson_r`` (Pearson correlation; NaN when either side is constant).

    Raises
    ------
    InputError
        Two Series whose indexes differ (the message names the keys missing on each side), a
        duplicated index, different lengths, non-numeric values, or fewer than 2 pairs.

    Examples
    --------
    >>> reference = pd.Series([1, 2, 3, 4], index=["a", "b", "c", "d"])
    >>> predicted = pd.Series([5, 3, 2, 2], index=["d", "c", "b", "a"])
    >>> result = agreement(predicted, reference)
    >>> result["n"], result["r2"], result["mae"]
    (4, 0.6, 0.5)
    """
    # Imported here: scikit-learn and scipy take about a second to import, which the app's
    # pages that never compare counts should not pay.
    from scipy.stats import ConstantInputWarning, pearsonr
    from sklearn.metrics import mean_absolute_error, r2_score

    predicted_values, reference_values = _paired_values(predicted, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        pearson = float(pearsonr(predicted_values, reference_values).statistic)
    return {
        "n": int(len(predicted_values)),
        "r2": float(r2_score(reference_values, predicted_values)),
        "mae": float(mean_absolute_error(reference_values, predicted_values)),
        "pearson_r": pearson,
    }


def _paired_values(predicted: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays of the pairs to compare, aligned, with missing pairs dropped."""
    if isinstance(predicted, pd.Series) and isinstance(reference, pd.Series):
        for argument, series in (("predicted", predicted), ("reference", reference)):
            if series.index.has_duplicates:
                duplicated = series.index[series.index.duplicated()].unique()
                raise InputError(f"{argument} has duplicated index keys {preview(duplicated)}")
        not_in_reference = predicted.index.difference(reference.index)
        not_in_predicted = reference.index.difference(predicted.index)
        if len(not_in_reference) or len(not_in_predicted):
            raise InputError(
                "predicted and reference must have the same index keys: "
                f"missing from reference {preview(not_in_reference)}, "
                f"missing from predicted {preview(not_in_predicted)}"
            )
        reference = reference.reindex(predicted.index)
    arrays = []
    for argument, values in (("predicted", predicted), ("reference", reference)):
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            found = preview(np.asarray(values, dtype=object).ravel())
            raise InputError(f"{argument} must hold numbers, got {found}") from None
        if array.ndim != 1:
            raise InputError(f"{argument} must be one-dimensional, got shape {array.shape}")
        arrays.append(array)
    predicted_values, reference_values = arrays
    if len(predicted_values) != len(reference_values):
        raise InputError(
            f"predicted has {len(predicted_values)} values "
            f"but reference has {len(reference_values)}"
        )
    kept = ~(np.isnan(predicted_values) | np.isnan(reference_values))
    if kept.sum() < 2:
        raise InputError(
            "agreement needs at least 2 pairs of values present on both sides, "
            f"got {int(kept.sum())}"
        )
    return predicted_values[kept], reference_values[kept]
