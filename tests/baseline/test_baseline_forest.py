"""svetlana_core.baseline.forest: the numpy forest predicts exactly as scikit-learn."""

import numpy as np
import pandas as pd

from svetlana_core.baseline import train_baseline


def test_numpy_forest_equals_sklearn_exactly(trained):
    model, features, _, test_features, _ = trained
    model.estimator.set_params(n_jobs=1)
    for table in (features, test_features):
        x = table.to_numpy()
        np.testing.assert_array_equal(model.predict_proba(table), _sklearn_full(model, x))
        np.testing.assert_array_equal(model.forest.leaves(x) - model.forest.roots,
                                      model.estimator.apply(x))


def _sklearn_full(model, x):
    """sklearn's probabilities placed in the model's class columns."""
    proba = np.zeros((x.shape[0], len(model.classes)))
    proba[:, model.estimator.classes_] = model.estimator.predict_proba(x)
    return proba


def test_numpy_forest_equals_sklearn_with_nan():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 4))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "p", "q")
    x[rng.random(x.shape) < 0.15] = np.nan  # NaN seen in training
    features = pd.DataFrame(x, columns=list("abcd"))
    model = train_baseline(features, list(y), ["p", "q"], n_estimators=30, seed=4)
    test = pd.DataFrame(rng.normal(size=(200, 4)), columns=list("abcd"))
    test.iloc[::3, 2] = np.nan
    test.iloc[::5, 0] = np.nan
    for table in (features, test):
        np.testing.assert_array_equal(model.predict_proba(table),
                                      _sklearn_full(model, table.to_numpy()))
