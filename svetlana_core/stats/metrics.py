"""Classification metrics shared by the CNN training loop and the random-forest baseline.

One function, :func:`classification_metrics`, so that a CNN run and the baseline are scored the
same way on the same split and their figures can be put side by side. The arithmetic is
scikit-learn's; this module fixes the conventions (class order, absent classes, JSON-ready
output) in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from svetlana_core.errors import InputError


def _as_names(values: Sequence[str], name: str) -> np.ndarray:
    """Class names as an object array of str; missing values are refused."""
    array = np.asarray(list(values), dtype=object)
    if array.ndim != 1:
        raise InputError(f"{name} must be a flat sequence of class names, got shape {array.shape}")
    missing = np.flatnonzero(pd.isna(array))
    if missing.size:
        raise InputError(
            f"{name} has {missing.size} missing value(s) (first at position {missing[0]})"
        )
    return array.astype(str).astype(object)


def classification_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]
) -> dict:
    """Score predicted class names against true ones.

    Parameters
    ----------
    y_true, y_pred : sequence of str, length n
        True and predicted class name of each object, in the same order.
    classes : sequence of str
        All class names of the model, in index order. Sets the order of ``per_class`` and of
        the rows and columns of ``confusion``; a class may be absent from ``y_true`` or
        ``y_pred``.

    Returns
    -------
    dict
        JSON-ready (plain ``int``, ``float``, ``list``, ``dict``):

        - ``n``: number of objects;
        - ``accuracy``: fraction of objects predicted right;
        - ``balanced_accuracy``: mean recall over the classes present in ``y_true``;
        - ``macro_f1``: mean F1 over the classes present in ``y_true`` or ``y_pred`` (a class
          seen in neither has no F1 and does not drag the mean to 0);
        - ``per_class``: ``{class: {"recall", "precision", "f1", "support"}}`` for every class
          of ``classes``; ``support`` is the count in ``y_true``. A precision, recall or F1
          whose denominator is 0 (class never predicted, or absent) is 0.0, scikit-learn's
          ``zero_division=0`` convention, so the dict stays valid JSON (no NaN);
        - ``confusion``: ``n_classes`` lists of ``n_classes`` ints; row = true class,
          column = predicted class, both in ``classes`` order;
        - ``classes``: the class names, in that order.

    Raises
    ------
    InputError
        When the lengths differ, there are no objects, a value is missing, a name is not in
        ``classes``, or ``classes`` is empty or repeats a name.

    Examples
    --------
    >>> m = classification_metrics(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    >>> m["accuracy"], m["confusion"]
    (0.6666666666666666, [[1, 1], [0, 1]])
    """
    # scikit-learn loads here, not with the package: stats is imported by the app's first page.
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    class_list = [str(c) for c in classes]
    if not class_list:
        raise InputError("classes is empty: give at least one class name")
    if len(set(class_list)) != len(class_list):
        repeated = sorted({c for c in class_list if class_list.count(c) > 1})
        raise InputError(f"classes repeats the name(s) {repeated}")
    truth = _as_names(y_true, "y_true")
    pred = _as_names(y_pred, "y_pred")
    if truth.size != pred.size:
        raise InputError(f"y_true has {truth.size} values but y_pred has {pred.size}")
    if truth.size == 0:
        raise InputError("y_true and y_pred are empty: there is nothing to score")
    for name, values in (("y_true", truth), ("y_pred", pred)):
        unknown = sorted(set(values) - set(class_list))
        if unknown:
            raise InputError(
                f"{name} has class name(s) {unknown} that are not in classes {class_list}"
            )

    present = [c for c in class_list if c in set(truth) | set(pred)]
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, pred, labels=class_list, zero_division=0
    )
    confusion = confusion_matrix(truth, pred, labels=class_list)
    return {
        "n": int(truth.size),
        "accuracy": float(accuracy_score(truth, pred)),
        # The mean recall over the classes present in y_true, which is what
        # sklearn.metrics.balanced_accuracy_score returns; taken from the recalls above because
        # that function warns whenever y_pred holds a class absent from y_true.
        "balanced_accuracy": float(recall[support > 0].mean()),
        "macro_f1": float(f1_score(truth, pred, labels=present, average="macro", zero_division=0)),
        "per_class": {
            c: {
                "recall": float(recall[i]),
                "precision": float(precision[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(class_list)
        },
        "confusion": confusion.astype(int).tolist(),
        "classes": class_list,
    }
