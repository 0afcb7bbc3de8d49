"""The human-in-the-loop cycle, simulated on the CoNSeP training tiles (issue 16, item 2).

The known classes of ``../shared/data/consep_train_tiles`` play the annotator. The source
images (``train_<source>_<tile>``) are split once: a fifth of them, stratified by class, is
the test set, never labelled and never used to choose anything; the rest is the pool. Then:

1. 50 pool objects drawn at random are labelled;
2. a CNN (the default config, ``TrainConfig()``, with a fixed time budget, trained from
   scratch each round: no warm start, so each point of a curve is a model a user would get
   from that many labels) learns them, with no validation split (its last epoch is kept);
3. it is scored on the test set (macro-F1), and a random forest on hand-crafted object
   features (:mod:`svetlana_core.baseline`) learns the same labels and is scored beside it;
4. the model's probabilities on the unlabelled pool choose the next 50 labels by the
   strategy: ``random``; ``margin`` (least margin between the two most probable classes
   first, what the guided mode's "least confident first" does); ``margin-balanced``
   (least margin, taken in turn from each predicted class: rare classes get asked too);
5. back to 2 until ``--max-labels``.

Prints a table (strategy, labels, CNN macro-F1, RF macro-F1) and writes
``bench/out/active_learning.json`` and ``bench/out/active_learning.png`` (macro-F1 against
labels, one line per strategy, the forest dashed).

    python bench/active_learning.py                    # 50 → 400 labels, 45 s a round
    python bench/active_learning.py --max-labels 800 --seconds 60 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from svetlana_core import training as T  # noqa: E402
from svetlana_core.training.split import _split_with_note  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "consep_train_tiles"
OUT = ROOT / "bench" / "out"
STRATEGIES = ("random", "margin", "margin-balanced")


def source_image(name: str) -> str:
    """``train_12_003.png`` → ``12``."""
    return name.split("_")[1]


def margins(probabilities: np.ndarray) -> np.ndarray:
    """Top probability minus the second: small = doubtful."""
    top = np.sort(probabilities, axis=1)
    return top[:, -1] - top[:, -2]


def choose(strategy: str, pool: np.ndarray, probabilities: np.ndarray | None, k: int,
           rng: np.random.Generator) -> np.ndarray:
    """``k`` pool indices to label next (``probabilities``: rows of ``pool``)."""
    if strategy == "random" or probabilities is None:
        return rng.choice(pool, size=min(k, len(pool)), replace=False)
    order = np.argsort(margins(probabilities), kind="stable")
    if strategy == "margin":
        return pool[order[:k]]
    # margin-balanced: the least-margin objects of each predicted class, in turn
    predicted = probabilities.argmax(axis=1)
    queues = [list(order[predicted[order] == c]) for c in range(probabilities.shape[1])]
    chosen: list[int] = []
    while len(chosen) < min(k, len(pool)):
        for queue in queues:
            if queue and len(chosen) < k:
                chosen.append(queue.pop(0))
    return pool[np.asarray(chosen)]


def forest_features(dataset: T.ObjectSet):
    """Hand-crafted features of every object (once: 19 s per 10,000 objects)."""
    import pandas as pd

    from svetlana_core import io, objects

    pairs = {p.image.name: p for p in io.pair_files(DATA / "images", DATA / "masks")}
    parts = []
    for name in np.unique(dataset.images):
        image, mask = io.load_pair(pairs[name].image, pairs[name].mask)
        rows = np.flatnonzero(dataset.images == name)
        parts.append(objects.object_features(image, mask, dataset.labels[rows].tolist())
                     .set_index(rows))
    return pd.concat(parts).sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=int, default=50)
    parser.add_argument("--step", type=int, default=50)
    parser.add_argument("--max-labels", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=45.0, help="training budget a round")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"active_learning.py: the CoNSeP tiles are not at {DATA}")
    from svetlana_core import baseline
    from svetlana_core.predict.backends import predict_patches
    from svetlana_core.stats import classification_metrics

    print(f"load average before: {os.getloadavg()}", flush=True)
    started = time.monotonic()
    config = T.TrainConfig(max_minutes=args.seconds / 60, val_fraction=0.0, device="cpu")
    dataset = T.dataset_from_folders(DATA / "images", DATA / "masks", DATA / "objects.csv",
                                     config, group_by=source_image)
    features = forest_features(dataset)
    names = np.array(dataset.classes)[dataset.y]
    pool_all, test = _split_with_note(dataset.y, dataset.groups, 0.2, seed=0)[:2]
    print(f"{len(dataset)} objects, {len(pool_all)} in the pool, {len(test)} to test on "
          f"({len(np.unique(dataset.groups[test]))} source images); data ready in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    rows = []
    for seed in args.seeds:
        for strategy in args.strategies:
            rng = np.random.default_rng(seed)
            labelled = rng.choice(pool_all, size=args.start, replace=False)
            while True:
                part = dataset.subset(np.sort(labelled))
                tic = time.monotonic()
                run = T.train(part, config, split=(np.arange(len(part)), np.arange(0)))
                # the model knows the classes its labels had (a class not yet labelled is
                # not among them): name its predictions by its own class list
                predicted = np.array(run.model.classes)[
                    predict_patches(run.model, dataset.X[test]).argmax(1)]
                cnn = classification_metrics(list(names[test]), list(predicted),
                                             dataset.classes)
                forest = baseline.train_baseline(
                    features.iloc[labelled], list(names[labelled]), dataset.classes,
                    seed=seed, n_jobs=-1).evaluate(features.iloc[test], list(names[test]))
                row = {"seed": seed, "strategy": strategy, "labels": len(labelled),
                       "cnn_macro_f1": round(cnn["macro_f1"], 4),
                       "rf_macro_f1": round(forest["macro_f1"], 4),
                       "epochs": len(run.history), "seconds": round(time.monotonic() - tic)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if len(labelled) >= args.max_labels:
                    break
                pool = np.setdiff1d(pool_all, labelled)
                probabilities = None if strategy == "random" else predict_patches(
                    run.model, dataset.X[pool])
                labelled = np.concatenate([labelled, choose(strategy, pool, probabilities,
                                                            args.step, rng)])
    OUT.mkdir(exist_ok=True)
    (OUT / "active_learning.json").write_text(json.dumps(rows, indent=1))
    plot(rows, OUT / "active_learning.png")
    table(rows)
    print(f"load average after: {os.getloadavg()}; {time.monotonic() - started:.0f} s in all")


def table(rows: list[dict]) -> None:
    """Mean macro-F1 over seeds: labels down, strategies across, the forest (mean over the
    strategies' label sets) last."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    grid = frame.pivot_table(index="labels", columns="strategy", values="cnn_macro_f1")
    grid["random forest (random labels)"] = frame[frame["strategy"] == "random"].groupby(
        "labels")["rf_macro_f1"].mean()
    print("| labels | " + " | ".join(grid.columns) + " |")
    print("|---" * (len(grid.columns) + 1) + "|")
    for labels, values in grid.iterrows():
        print(f"| {labels} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.DataFrame(rows)
    figure, axis = plt.subplots(figsize=(6, 4))
    for strategy, part in frame.groupby("strategy"):
        mean = part.groupby("labels")["cnn_macro_f1"].mean()
        axis.plot(mean.index, mean.values, marker="o", label=f"CNN, {strategy}")
        if strategy == "random":
            forest = part.groupby("labels")["rf_macro_f1"].mean()
            axis.plot(forest.index, forest.values, "--", color="grey",
                      label="random forest, random")
    axis.set_xlabel("labelled objects")
    axis.set_ylabel("macro-F1 on held-out source images")
    axis.set_title("CoNSeP: accuracy against labels")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
