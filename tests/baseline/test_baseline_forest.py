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


def test_a_forest_that_splits_on_missing_values_saves_loads_and_predicts(tmp_path):
    """scikit-learn stores +inf thresholds for "missing or not" splits (CoNSeP's ring
    features are NaN for crowded nuclei): the saved forest loads and predicts as it did."""
    from svetlana_core.baseline import load_baseline

    rng = np.random.default_rng(0)
    x = rng.random((200, 2))
    y = np.where(rng.random(200) < 0.5, "gone", "here")
    x[y == "gone", 0] = np.nan  # the class is whether feature a is missing
    features = pd.DataFrame(x, columns=["a", "b"])
    model = train_baseline(features, list(y), ["gone", "here"], n_estimators=5, seed=0)
    assert np.isinf(model.forest.threshold[model.forest.children_left >= 0]).any()
    loaded = load_baseline(model.save(tmp_path / "rf"))
    np.testing.assert_array_equal(loaded.predict_proba(features), model.predict_proba(features))
    assert loaded.predict(features) == list(y)
