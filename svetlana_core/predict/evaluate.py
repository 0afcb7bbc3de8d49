"""Score a saved model (CNN or random forest) on labelled objects of image/mask files.

Used by ``python -m svetlana_core evaluate`` and by benchmarks, so the CNN and the
random-forest baseline are compared with the same metrics on the same objects.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from svetlana_core import io, objects
from svetlana_core.errors import InputError
from svetlana_core.models.folder import model_kind
from svetlana_core.stats import classification_metrics


def evaluate_folder(model_dir: str | os.PathLike, images_dir: str | os.PathLike | None,
                    masks_dir: str | os.PathLike, labels_csv: str | os.PathLike,
                    axes: str | None = None, device: str = "cpu",
                    label_name: str | None = None) -> dict[str, Any]:
    """Predict the labelled objects and compare with their labels.

    Parameters
    ----------
    model_dir : path
        A CNN (``weights.safetensors``) or random-forest (``forest.npz``) model folder.
    images_dir : path or None
        Images (None for mask-only models such as the 3D UroCell shape classifier).
    masks_dir : path
        Masks, paired with the images by :func:`svetlana_core.io.folder_files`.
    labels_csv : path
        ``image,label,class``; classes must be classes of the model.
    axes : str, optional
        Axes of the image files.
    device : str
        Device for a CNN ("cpu", "cuda", "auto").
    label_name : str, optional
        The label image of OME-Zarr images that is their mask.

    Returns
    -------
    dict
        :func:`svetlana_core.stats.classification_metrics` (``n, accuracy,
        balanced_accuracy, macro_f1, per_class, confusion, classes``).
    """
    labels = io.read_labels_csv(labels_csv)
    files = io.folder_files(images_dir, masks_dir, label_name=label_name)
    unknown = sorted(set(labels["image"]) - set(files))
    if unknown:
        raise InputError(f"labels file {labels_csv} names {len(unknown)} image(s) that are not "
                         f"in the folders: {', '.join(unknown[:5])}")
    kind = model_kind(model_dir)
    if kind == "rf":
        from svetlana_core import baseline

        model = baseline.load_baseline(model_dir)
        classes = list(model.classes)
    else:
        from svetlana_core.models.inference import load_predictor

        model = load_predictor(model_dir, device=device)
        classes = list(model.classes)
    foreign = sorted(set(labels["class"]) - set(classes))
    if foreign:
        raise InputError(f"labels file {labels_csv} has class(es) {', '.join(foreign)} that the "
                         f"model does not know (it has {', '.join(classes)})")
    truth, predicted = [], []
    for name, rows in labels.groupby("image", sort=True):
        # One image at a time bounds memory; the work per image is vectorised.
        image_path, mask_path = files[name]
        image, mask = io.load_pair(image_path, mask_path, axes=axes)
        wanted = rows["label"].to_numpy()
        missing = np.setdiff1d(wanted, np.unique(mask))
        if len(missing):
            raise InputError(f"labels file {labels_csv}: object(s) "
                             f"{', '.join(map(str, missing[:5]))} are not in mask {mask_path}")
        if kind == "rf":
            features = objects.object_features(image, mask, wanted.tolist())
            predicted += model.predict(features)
        else:
            from svetlana_core.predict.crop import object_patches
            from svetlana_core.predict.backends import predict_patches

            probabilities = predict_patches(model, object_patches(model, image, mask, wanted))
            predicted += [classes[k] for k in probabilities.argmax(axis=1)]
        truth += rows["class"].tolist()
    return classification_metrics(truth, predicted, classes)
