"""The random-forest baseline model and its model folder."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from svetlana_core import io
from svetlana_core.baseline.forest import FOREST_FILE, Forest
from svetlana_core.errors import InputError
from svetlana_core.values import is_int
from svetlana_core.models.folder import (
    MODEL_FILE,
    RF_FORMAT_VERSION,
    library_versions,
    read_model_meta,
    write_rf_meta,
)
from svetlana_core.stats import classification_metrics


def _feature_matrix(features: Any, feature_names: Sequence[str], what: str) -> np.ndarray:
    if not isinstance(features, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame of features, got "
                         f"{type(features).__name__}")
    missing = [name for name in feature_names if name not in features.columns]
    if missing:
        raise InputError(
            f"{what} lacks {len(missing)} feature column(s) the model was trained on: "
            f"{missing[:5]}{' ...' if len(missing) > 5 else ''} (was it computed with the same "
            f"image channels and dimensionality?)"
        )
    subset = features[list(feature_names)]
    not_numeric = [c for c in subset.columns if not pd.api.types.is_numeric_dtype(subset[c])]
    if not_numeric:
        raise InputError(f"{what} has non-numeric feature column(s) {not_numeric[:5]}")
    x = subset.to_numpy(dtype=np.float64)
    if np.isinf(x).any():
        column = subset.columns[np.isinf(x).any(axis=0)][0]
        raise InputError(f"{what} column {column!r} has infinite values")
    return x


@dataclass(frozen=True)
class BaselineModel:
    """A fitted random forest on object features, with what it needs to predict and describe
    itself.

    Attributes
    ----------
    classes : tuple of str
        Class names in probability-column order.
    feature_names : tuple of str
        The feature columns, in the order the forest uses them.
    forest : Forest
        The trees (numpy arrays; predicting never touches scikit-learn).
    params : dict
        Training parameters (``n_estimators``, ``class_weight``, ``seed``, ...).
    metrics : dict or None
        Evaluation metrics attached with :meth:`with_metrics` (saved in ``model.json``).
    feature_importances : dict
        Impurity-based importance of each feature (sums to 1), for display.
    data : dict
        Training-data summary: ``n`` and ``n_per_class``.
    estimator : RandomForestClassifier or None
        The scikit-learn forest right after training; None once loaded from a folder.
    """

    classes: tuple[str, ...]
    feature_names: tuple[str, ...]
    forest: Forest
    params: dict
    metrics: dict | None = None
    feature_importances: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    estimator: Any = field(default=None, repr=False, compare=False)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Class probabilities of each row of ``features``.

        Parameters
        ----------
        features : DataFrame, n rows
            Must hold every column of ``feature_names`` (extra columns are ignored).

        Returns
        -------
        ndarray of float64, shape (n, n_classes), columns in ``classes`` order.
        """
        return self.forest.predict_proba(_feature_matrix(features, self.feature_names,
                                                         "features"))

    def predict(self, features: pd.DataFrame) -> list[str]:
        """Most probable class name of each row (the first class on a tie)."""
        proba = self.predict_proba(features)
        return [self.classes[i] for i in proba.argmax(axis=1)]

    def evaluate(self, features: pd.DataFrame, y_true: Sequence[str]) -> dict:
        """:func:`svetlana_core.stats.classification_metrics` of the predictions of
        ``features`` against ``y_true``."""
        return classification_metrics(list(y_true), self.predict(features), self.classes)

    def with_metrics(self, metrics: dict) -> BaselineModel:
        """A copy carrying ``metrics`` (e.g. from :meth:`evaluate`), to be saved with it."""
        return replace(self, metrics=dict(metrics))

    def save(self, folder: str | Path) -> Path:
        """Write ``model.json`` and ``forest.npz`` into ``folder`` (created if needed).

        Each file is written atomically (:func:`svetlana_core.io.atomic_write`), the forest
        first: a reader sees the old model or the new one, and a ``model.json`` that names a
        forest it does not match is refused on load (``forest_sha256``). Values that are not
        finite (a NaN metric) are written as ``null``: the file is strict JSON.

        Returns the folder. Existing files of those names are replaced.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        forest_path = io.atomic_write(
            folder / FOREST_FILE, lambda handle: np.savez(handle, **self.forest.to_arrays())
        )
        meta = {
            "format_version": RF_FORMAT_VERSION,
            "arch": "rf",
            "classes": list(self.classes),
            "feature_names": list(self.feature_names),
            "params": self.params,
            "metrics": self.metrics,
            "feature_importances": self.feature_importances,
            "data": self.data,
            "n_trees": self.forest.n_trees,
            "forest_file": FOREST_FILE,
            "forest_sha256": hashlib.sha256(forest_path.read_bytes()).hexdigest(),
            "versions": library_versions("rf"),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_rf_meta(folder, meta)
        return folder


def train_baseline(
    features: pd.DataFrame,
    y: Sequence[str] | pd.Series,
    classes: Sequence[str],
    *,
    n_estimators: int = 200,
    class_weight: str | None = "balanced",  # or "balanced_subsample" or None
    seed: int = 0,
    max_depth: int | None = None,
    min_samples_leaf: int = 1,
    max_features: str | float | None = "sqrt",
    n_jobs: int | None = None,
) -> BaselineModel:
    """Fit a random forest on object features.

    Parameters
    ----------
    features : DataFrame, n rows
        Numeric feature columns (e.g. :func:`object_features` of several images concatenated);
        every column is used, NaN allowed.
    y : sequence of str or Series, length n
        Class name of each row. A Series must have the index of ``features`` (so rows cannot
        be silently misaligned); pass ``list(series)`` to align by position.
    classes : sequence of str
        All class names, in the order of the probability columns. A class absent from ``y``
        gets probability 0.
    n_estimators, class_weight, max_depth, min_samples_leaf, max_features, n_jobs
        As :class:`sklearn.ensemble.RandomForestClassifier` (``class_weight="balanced"``
        weighs classes by inverse frequency, like the CNN's default loss weights).
    seed : int
        ``random_state`` of the forest: same data and seed give the same trees.

    Returns
    -------
    BaselineModel

    Raises
    ------
    InputError
        For a length or index mismatch, missing or unknown class names, fewer than two
        classes in ``y``, repeated class names, or non-numeric / infinite features.
    """
    from sklearn.ensemble import RandomForestClassifier

    if class_weight not in ("balanced", "balanced_subsample", None):
        raise InputError(f"class_weight must be 'balanced', 'balanced_subsample' or None, got "
                         f"{class_weight!r}")
    _check_forest_params(n_estimators=n_estimators, max_depth=max_depth,
                         min_samples_leaf=min_samples_leaf, max_features=max_features,
                         n_jobs=n_jobs, seed=seed)
    class_list, codes = _class_codes(features, y, classes)
    names = [str(c) for c in features.columns]
    x = _feature_matrix(features, names, "features")
    params = {"n_estimators": int(n_estimators), "class_weight": class_weight, "seed": int(seed),
              "max_depth": max_depth, "min_samples_leaf": int(min_samples_leaf),
              "max_features": max_features}
    estimator = RandomForestClassifier(
        n_estimators=n_estimators, class_weight=class_weight, random_state=seed,
        max_depth=max_depth, min_samples_leaf=min_samples_leaf, max_features=max_features,
        n_jobs=n_jobs,
    ).fit(x, codes)
    counts = np.bincount(codes, minlength=len(class_list))
    return BaselineModel(
        classes=tuple(class_list),
        feature_names=tuple(names),
        forest=Forest.from_sklearn(estimator, len(class_list)),
        params=params,
        feature_importances={n: float(v) for n, v in zip(names, estimator.feature_importances_,
                                                         strict=True)},
        data={"n": int(codes.size), "n_per_class": {c: int(k) for c, k in
                                                    zip(class_list, counts, strict=True)}},
        estimator=estimator,
    )


#: Upper bounds that keep a forest's size and fitting time sane (a config is user input).
_MAX_TREES = 10_000


def _check_forest_params(**given: Any) -> None:
    """Each random-forest parameter is of a type and range scikit-learn takes, or one line
    saying which is not (scikit-learn's own errors are tracebacks several lines long)."""
    def whole(value: Any, low: int, high: float = float("inf")) -> bool:
        return is_int(value) and low <= value <= high

    rules = {
        "n_estimators": (whole(given["n_estimators"], 1, _MAX_TREES),
                         f"an integer from 1 to {_MAX_TREES}"),
        "max_depth": (given["max_depth"] is None or whole(given["max_depth"], 1),
                      "null or an integer >= 1"),
        "min_samples_leaf": (whole(given["min_samples_leaf"], 1), "an integer >= 1"),
        "max_features": (given["max_features"] in ("sqrt", "log2", None)
                         or whole(given["max_features"], 1)
                         or (isinstance(given["max_features"], float)
                             and 0.0 < given["max_features"] <= 1.0),
                         "'sqrt', 'log2', null, an integer >= 1 or a fraction in (0, 1]"),
        "n_jobs": (given["n_jobs"] is None or (is_int(given["n_jobs"]) and given["n_jobs"] != 0),
                   "null or a non-zero integer"),
        "seed": (whole(given["seed"], 0, 2**32 - 1), "an integer from 0 to 2**32 - 1"),
    }
    for name, (ok, what) in rules.items():
        if not ok:
            raise InputError(f"random-forest parameter {name} must be {what}, got "
                             f"{given[name]!r}")


def _class_codes(
    features: Any, y: Sequence[str] | pd.Series, classes: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """The class names and the class index of each row, after checking `y` against both."""
    class_list = [str(c) for c in classes]
    if len(set(class_list)) != len(class_list):
        raise InputError(f"classes repeats names: {class_list}")
    if not isinstance(features, pd.DataFrame):
        raise InputError(f"features must be a pandas DataFrame, got {type(features).__name__}")
    if len({str(c) for c in features.columns}) != len(features.columns):
        raise InputError("features has repeated column names")
    if isinstance(y, pd.Series) and not y.index.equals(features.index):
        raise InputError("y is a Series whose index differs from the index of features; "
                         "align them or pass list(y)")
    y_list = list(y)
    if len(y_list) != len(features):
        raise InputError(f"y has {len(y_list)} values but features has {len(features)} rows")
    missing = np.flatnonzero(pd.isna(np.asarray(y_list, dtype=object)))
    if missing.size:
        raise InputError(f"y has {missing.size} missing class name(s) (first at row {missing[0]})")
    y_names = [str(v) for v in y_list]
    unknown = sorted(set(y_names) - set(class_list))
    if unknown:
        raise InputError(f"y has class name(s) {unknown} that are not in classes {class_list}")
    if len(set(y_names)) < 2:
        raise InputError(f"y has {len(set(y_names))} distinct class(es); a classifier needs at "
                         f"least two")
    index = {name: code for code, name in enumerate(class_list)}
    return class_list, np.array([index[v] for v in y_names], dtype=np.int64)


def load_baseline(folder: str | Path) -> BaselineModel:
    """Read a model folder written by :meth:`BaselineModel.save`.

    Nothing is unpickled: ``model.json`` is plain JSON, ``forest.npz`` is read with
    ``allow_pickle=False``, must match the SHA-256 recorded in ``model.json``, and every array
    is checked (shapes, dtypes, indices) before use.

    Raises
    ------
    InputError
        Naming the file and the key for a missing folder or file, invalid JSON, a missing or
        mistyped key, another architecture, a checksum mismatch or a malformed array.
    """
    folder = Path(folder)
    meta = read_model_meta(folder, kind="rf")  # model.json, checked as every model folder's
    forest_path = folder / FOREST_FILE
    if not forest_path.is_file():
        raise InputError(f"{forest_path} not found (named by {folder / MODEL_FILE})")
    digest = hashlib.sha256(forest_path.read_bytes()).hexdigest()
    if digest != meta["forest_sha256"]:
        raise InputError(f"{forest_path} does not match key 'forest_sha256' of "
                         f"{folder / MODEL_FILE}: the files were changed or mixed up")
    try:
        with np.load(forest_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError) as error:
        raise InputError(f"{forest_path} cannot be read as arrays: {error}") from None
    forest = Forest.from_arrays(arrays, n_features=len(meta["feature_names"]),
                                n_classes=len(meta["classes"]), source=str(forest_path))
    return BaselineModel(
        classes=tuple(meta["classes"]),
        feature_names=tuple(meta["feature_names"]),
        forest=forest,
        params=meta["params"],
        metrics=meta.get("metrics"),
        feature_importances=meta.get("feature_importances") or {},
        data=meta.get("data") or {},
    )
