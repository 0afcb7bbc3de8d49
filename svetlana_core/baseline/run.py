"""Train the baseline from labelled files on the same kind of split as the CNN."""

from __future__ import annotations

import contextlib
import inspect
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from svetlana_core import io
from svetlana_core.baseline.model import BaselineModel, train_baseline
from svetlana_core.errors import InputError
from svetlana_core.models.folder import claimed_folder
from svetlana_core.objects import object_features

# The split of the CNN, from its numpy module: the lazy training package would not load torch
# for it either, but naming the module says that none is needed.
from svetlana_core.training.split import split_train_val


@dataclass(frozen=True)
class BaselineRun:
    """The result of :func:`train_from_labels`.

    Attributes
    ----------
    model : BaselineModel
        Fitted on the training objects, carrying the validation metrics.
    metrics : dict or None
        :func:`svetlana_core.stats.classification_metrics` on the validation objects (None
        when ``val_fraction`` is 0).
    n_train, n_val : int
    model_dir : Path or None
        Where the model was saved (``out_dir``), or None.
    """

    model: BaselineModel
    metrics: dict | None
    n_train: int
    n_val: int
    model_dir: Path | None = None


def train_from_labels(
    files: dict[str, tuple[Any, Any]],
    labels: pd.DataFrame,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    group_by: Any = None,
    axes: str | None = None,
    stop: Any = None,
    out_dir: str | os.PathLike | None = None,
    **params: Any,
) -> BaselineRun | None:
    """Compute features of the labelled objects, split grouped by image, fit, score and save.

    The split is :func:`svetlana_core.training.split_train_val` (stratified, grouped), the
    same as the CNN's, so the two are compared on the same kind of split. Nothing here imports
    torch: ``training.split`` is a numpy module.

    Parameters
    ----------
    files : dict
        image name → (image path or None, mask path).
    labels : DataFrame
        ``image, label, class`` (see :func:`svetlana_core.io.read_labels_csv`).
    val_fraction, seed : float, int
        Split settings.
    group_by : callable, optional
        image name → split group (default: the image).
    axes : str, optional
        Axes of the image files.
    stop : object with ``is_set()``, optional
        Checked between images; returns None when set.
    out_dir : path, optional
        Model folder to save the forest in: it must not exist or be empty, and is held for this
        run from the start (:func:`~svetlana_core.models.claimed_folder`), as a CNN's is.
    **params
        Keyword arguments of :func:`train_baseline`.

    Returns
    -------
    BaselineRun, or None when stopped.
    """
    with contextlib.ExitStack() as held:
        if out_dir is not None:
            out_dir = held.enter_context(claimed_folder(out_dir))
        run = _fit(files, labels, val_fraction, seed, group_by, axes, stop, params)
        if run is None or out_dir is None:
            return run
        return replace(run, model_dir=run.model.save(out_dir))


def _fit(files: dict[str, tuple[Any, Any]], labels: pd.DataFrame, val_fraction: float,
         seed: int, group_by: Any, axes: str | None, stop: Any,
         params: dict[str, Any]) -> BaselineRun | None:
    """:func:`train_from_labels` without the folder: features, split, fit, score."""
    accepted = [name for name, parameter in inspect.signature(train_baseline).parameters.items()
                if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "seed"]
    foreign = sorted(set(params) - set(accepted))
    if foreign:
        raise InputError(f"random-forest config: unknown key(s) {', '.join(foreign)}; valid "
                         f"keys are val_fraction, seed, {', '.join(accepted)}")
    unknown = sorted(set(labels["image"]) - set(files))
    if unknown:
        raise InputError(f"labels name {len(unknown)} image(s) that are not in the folders: "
                         f"{', '.join(unknown[:5])}")
    parts = []
    for name, rows in labels.groupby("image", sort=True):
        # One image at a time bounds memory; features are computed per image.
        image_path, mask_path = files[name]
        image, mask = io.load_pair(image_path, mask_path, axes=axes)
        features = object_features(image, mask, rows["label"].astype(int).tolist())
        parts.append(features.assign(_image=name, _class=rows["class"].astype(str).to_numpy()))
        if stop is not None and stop.is_set():
            return None
    data = pd.concat(parts, ignore_index=True)
    classes = sorted(data["_class"].unique())
    y = pd.Categorical(data["_class"], categories=classes).codes.astype(np.int64)
    group = group_by or (lambda name: name)
    # One call of group_by per image, not per object.
    groups = np.array(data["_image"].map({name: group(name) for name in files}).tolist())
    train_idx, val_idx = split_train_val(y, groups, val_fraction, seed)
    features = data.drop(columns=["_image", "_class"])
    model = train_baseline(features.iloc[train_idx], list(data["_class"].iloc[train_idx]),
                           classes, seed=seed, **params)
    metrics = (model.evaluate(features.iloc[val_idx], list(data["_class"].iloc[val_idx]))
               if len(val_idx) else None)
    return BaselineRun(model.with_metrics(metrics or {}), metrics, int(len(train_idx)),
                       int(len(val_idx)))
