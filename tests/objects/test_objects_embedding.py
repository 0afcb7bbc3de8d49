"""Feature matrices and their two principal components, exact on small cases."""

import numpy as np
import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.objects.embedding import feature_matrix, pca_2d


def test_pca_finds_the_axis_the_points_spread_along():
    # points on the line rows = 2 * columns, a little noise across it
    t = np.linspace(-1, 1, 9)
    across = np.array([1, -1, 1, -1, 0, 1, -1, 1, -1]) * 1e-3
    features = np.column_stack([t, 2 * t + across])
    xy = pca_2d(features)
    assert np.corrcoef(xy[:, 0], t)[0, 1] == pytest.approx(1.0, abs=1e-6)
    assert np.abs(xy[:, 1]).max() < 1e-2
    np.testing.assert_array_equal(pca_2d(features), xy)  # the same map every time
    assert np.argmax(xy[:, 0]) == 8  # signs fixed: the largest loading is positive


def test_pca_is_exact_where_the_principal_axes_are_known():
    # columns 0 and 1 are the same feature t, column 2 a feature s uncorrelated with it; both
    # standardised already: the axes are (1, 1, 0) / sqrt 2 (variance 2) and (0, 0, 1)
    t, s = np.array([1.0, -1, 1, -1]), np.array([1.0, 1, -1, -1])
    xy = pca_2d(np.column_stack([t, t, s]))
    np.testing.assert_allclose(xy, np.column_stack([np.sqrt(2) * t, s]), atol=1e-12)


def test_one_varying_feature_gives_a_flat_second_axis():
    xy = pca_2d(np.column_stack([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    np.testing.assert_allclose(xy[:, 0], np.array([-1, 0, 1]) * np.sqrt(1.5))
    np.testing.assert_array_equal(xy[:, 1], [0, 0, 0])


@pytest.mark.parametrize("features, message", [
    (np.ones((1, 3)), r"at least 2 objects"),
    (np.ones((4, 3)), r"none of the 3 features varies between the 4 objects"),
    (np.ones((4, 0)), r"none of the 0 features varies between the 4 objects"),
    (np.ones(5), r"at least 2 objects with features, got shape \(5,\)"),
])
def test_nothing_to_map_is_refused(features, message):
    with pytest.raises(InputError, match=message):
        pca_2d(features)


def test_feature_matrix_keeps_numbers_that_vary_and_fills_gaps_with_the_median():
    table = pd.DataFrame({"area": [1.0, np.nan, 3.0, 5.0], "flat": [2.0] * 4,
                          "name": list("abcd"), "empty": [np.nan] * 4,
                          "ratio": [0.5, 0.25, np.inf, 1.0]})
    matrix, names = feature_matrix(table)
    assert names == ["area", "ratio"]
    np.testing.assert_array_equal(matrix, [[1, 0.5], [3, 0.25], [3, 0.5], [5, 1.0]])
