"""3D benchmark: branched vs non-branched mitochondria (UroCell masks), 3D CNN vs random forest.

Run from the repository root::

    python bench/train3d.py                       # 32^3 patches, 3D CNN depth 3 width 16
    python bench/train3d.py --size 48 --minutes 4 --class-weights balanced

Data (``/work/shared/data/urocell_mito_3d_masks_only``): 5 FIB-SEM mask volumes of 256^3,
286 labelled mitochondria (23 branched, 263 non-branched), no raw image: the object's own
mask is the only channel. Leave-one-volume-out cross-validation: each volume in turn is the
test set, the model is trained on the other four (no validation split inside, the last-best
weights by training macro-F1 are kept, so nothing is selected on the test volume). Prints the
balanced accuracy and macro-F1 of the pooled out-of-fold predictions, and per fold.

The auto patch size of these objects is 128^3 (the largest allowed): a 3D CNN on that many
voxels per object is far too slow for a 2-core CPU, so the cube is a parameter. The default,
32^3, holds the core of the median mitochondrion (35 x 26 x 31 voxels) but not the whole of
the large ones; 48^3 ran one epoch a minute here, too slow for a 2-minute budget per fold.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from svetlana_core import training as T
from svetlana_core.stats import classification_metrics
from svetlana_core import objects
from svetlana_core import predict

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "urocell_mito_3d_masks_only"


def rf_features(dataset: T.ObjectSet) -> pd.DataFrame:
    from svetlana_core import io

    parts = []
    for name in np.unique(dataset.images):
        mask = io.read_mask(DATA / "masks" / name)
        rows = np.flatnonzero(dataset.images == name)
        parts.append(objects.object_features(None, mask, dataset.labels[rows].tolist())
                     .set_index(rows))
    return pd.concat(parts).sort_index()


def line(title: str, m: dict) -> str:
    recalls = ", ".join(f"{c} {v['recall']:.2f}" for c, v in m["per_class"].items())
    return (f"{title}: balanced accuracy {m['balanced_accuracy']:.3f}, macro-F1 "
            f"{m['macro_f1']:.3f}, accuracy {m['accuracy']:.3f}; recall: {recalls}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="cubic patch side (voxels)")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=2.0, help="time limit per fold")
    parser.add_argument("--class-weights", default="sqrt", choices=["sqrt", "balanced", "none"])
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"UroCell masks not found at {DATA}: skipped")
        return
    from svetlana_core import baseline

    config = T.TrainConfig(
        arch_params={"depth": args.depth, "width": args.width}, patch_size=(args.size,) * 3,
        epochs=args.epochs, batch_size=16, val_fraction=0.0, patience=None,
        max_minutes=args.minutes, augment={"flips": True, "rot90": True, "flip_planes": True},
        class_weights=None if args.class_weights == "none" else args.class_weights,
    )
    tic = time.perf_counter()
    dataset = T.dataset_from_folders(None, DATA / "masks", DATA / "objects.csv", config)
    print(f"UroCell: {len(dataset)} objects {dataset.counts()}, patches {dataset.X.shape[1:]}; "
          f"cropped in {time.perf_counter() - tic:.1f} s; load average {os.getloadavg()[0]:.1f}")
    features = rf_features(dataset)
    names = np.array(dataset.classes)[dataset.y]
    cnn_pred = np.empty(len(dataset), dtype=object)
    rf_pred = np.empty(len(dataset), dtype=object)
    for volume in np.unique(dataset.groups):
        test = np.flatnonzero(dataset.groups == volume)
        fit = np.flatnonzero(dataset.groups != volume)
        tic = time.perf_counter()
        run = T.train(dataset.subset(fit), config)
        probs = predict.predict_patches(run.model, dataset.X[test])
        cnn_pred[test] = np.array(run.classes)[probs.argmax(1)]
        forest = baseline.train_baseline(features.iloc[fit], list(names[fit]), dataset.classes,
                                         n_jobs=-1)
        rf_pred[test] = forest.predict(features.iloc[test])
        cnn = classification_metrics(names[test], cnn_pred[test], dataset.classes)
        rf = classification_metrics(names[test], rf_pred[test], dataset.classes)
        print(f"  test {volume}: {len(test)} objects ({int((names[test] == 'branched').sum())} "
              f"branched); CNN {len(run.history)} epochs in {time.perf_counter() - tic:.0f} s "
              f"({run.stop_reason}): balanced accuracy {cnn['balanced_accuracy']:.3f}; RF "
              f"{rf['balanced_accuracy']:.3f}", flush=True)
    print(line("3D CNN, pooled out-of-fold", classification_metrics(names, cnn_pred,
                                                                     dataset.classes)))
    print(line("Random forest, pooled out-of-fold", classification_metrics(names, rf_pred,
                                                                           dataset.classes)))


if __name__ == "__main__":
    main()
