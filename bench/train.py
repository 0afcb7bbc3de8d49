"""Training benchmark: throughput of the default CNN, and the default config on real CoNSeP nuclei.

Run from the repository root::

    python bench/train.py                 # throughput + CoNSeP (5-minute budget) + RF baseline
    python bench/train.py --throughput    # throughput only (synthetic patches, ~1 min)
    python bench/train.py --minutes 2     # CoNSeP with another budget
    python bench/train.py --set lr=3e-3 --set batch_size=32   # try other settings

Throughput: the default CNN at the default patch size of CoNSeP (auto from its objects) when
the data are present, else 72 x 72 with 3 image channels + mask, trained by the same loop as
:func:`svetlana_core.training.train` (batch gather + batched flips/rot90 + forward/backward/
step); prints patches/s and the share of the time spent outside forward/backward/step. The
CoNSeP run is timed the same way, through :func:`svetlana_core.training.collect_timings`
(``train`` itself takes no timing argument).

CoNSeP (``/work/shared/data/consep_train_tiles``): 177 tiles of 27 source images, 6,361
nuclei in 4 classes. The split holds out ~20 % of the *source images* (the middle number of
``train_<source>_<tile>``), stratified by class (StratifiedGroupKFold); the default config
trains with ``max_minutes`` = 5, then a random forest on hand-crafted features
(:mod:`svetlana_core.baseline`) is fitted and scored on the same split. Prints validation
macro-F1, balanced accuracy, per-class recall for both.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from svetlana_core import training as T
from svetlana_core import objects
from svetlana_core import models
from svetlana_core.training.split import _split_with_note

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "consep_train_tiles"


def source_image(name: str) -> str:
    """``train_12_003.png`` -> ``12``: the CoNSeP image a tile was cut from."""
    return name.split("_")[1]


def throughput(patch_size: tuple[int, int], in_channels: int, seconds: float = 30.0) -> dict:
    """Train the default CNN on random patches for about ``seconds``; time every part."""
    config = T.TrainConfig(device="cpu")
    n = 2048
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.random((n, in_channels, *patch_size), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 4, n))
    model = models.build_model("cnn", in_channels, 4, 2).to(
        memory_format=models.memory_format_for(2))
    loss_fn = T.build_loss("cross_entropy", 4, T.class_weights(y.numpy(), 4))
    optimiser = T.build_optimiser("adam", model.parameters(), config.lr, config.weight_decay)
    augment = T.BatchAugment(config.augment, in_channels - 1, patch_size, seed=0)
    generator = torch.Generator().manual_seed(0)
    timings: dict[str, float] = {}
    seen = 0
    # one warm-up pass (allocator, oneDNN primitive cache), then measure
    T.train_one_epoch(model, (X[:256], y[:256]), loss_fn, optimiser, None, torch.device("cpu"),
                      augment, batch_size=config.batch_size)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        index = torch.randperm(n, generator=generator)
        batches = ((X[b], y[b]) for b in index.split(config.batch_size))
        T.train_one_epoch(model, batches, loss_fn, optimiser, None, torch.device("cpu"), augment,
                          batch_size=config.batch_size, timings=timings,
                          memory_format=models.memory_format_for(2))
        seen += n
    return {
        "patch": f"{in_channels}x{patch_size[0]}x{patch_size[1]}",
        "threads": torch.get_num_threads(),
        "patches_per_s": seen / timings["total"],
        "outside_share": 1 - timings["compute"] / timings["total"],
    }


def load_consep(config: T.TrainConfig) -> T.ObjectSet:
    return T.dataset_from_folders(DATA / "images", DATA / "masks", DATA / "objects.csv", config,
                                  group_by=source_image)


def rf_baseline(dataset: T.ObjectSet, train_idx: np.ndarray, val_idx: np.ndarray) -> dict:
    """Random forest on object features of the same objects and split."""
    import pandas as pd

    from svetlana_core import baseline
    from svetlana_core import io

    pairs = {p.image.name: p for p in io.pair_files(DATA / "images", DATA / "masks")}
    parts = []
    for name in np.unique(dataset.images):
        image, mask = io.load_pair(pairs[name].image, pairs[name].mask)
        rows = np.flatnonzero(dataset.images == name)
        features = objects.object_features(image, mask, dataset.labels[rows].tolist())
        parts.append(features.set_index(rows))
    features = pd.concat(parts).sort_index()
    names = np.array(dataset.classes)[dataset.y]
    model = baseline.train_baseline(features.iloc[train_idx], list(names[train_idx]),
                                    dataset.classes, n_jobs=-1)
    return model.evaluate(features.iloc[val_idx], list(names[val_idx]))


def report(title: str, metrics: dict) -> None:
    recalls = ", ".join(f"{c} {v['recall']:.2f}" for c, v in metrics["per_class"].items())
    print(f"{title}: macro-F1 {metrics['macro_f1']:.3f}, balanced accuracy "
          f"{metrics['balanced_accuracy']:.3f}, accuracy {metrics['accuracy']:.3f}; "
          f"recall: {recalls}")
    print(f"  confusion (rows true, columns predicted, {metrics['classes']}): "
          f"{metrics['confusion']}")


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughput", action="store_true", help="throughput only")
    parser.add_argument("--no-throughput", action="store_true", help="skip the throughput part")
    parser.add_argument("--minutes", type=float, default=5.0, help="CoNSeP training budget")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a TrainConfig field (JSON value)")
    parser.add_argument("--no-rf", action="store_true", help="skip the random forest")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load average "
          f"{os.getloadavg()[0]:.1f}")

    changes = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    config = T.TrainConfig(**{"max_minutes": args.minutes, "seed": args.seed, **changes})
    dataset = None
    if DATA.is_dir() and not args.throughput:
        tic = time.perf_counter()
        dataset = load_consep(config)
        print(f"CoNSeP: {len(dataset)} objects {dataset.counts()}, patches "
              f"{dataset.X.shape[1:]}, {len(set(dataset.groups))} source images; cropped in "
              f"{time.perf_counter() - tic:.1f} s")

    if not args.no_throughput:
        size = dataset.patch_size if dataset is not None else (72, 72)
        result = throughput(tuple(size), 4)
        print(f"throughput (default CNN, {result['patch']}, batch 64, {result['threads']} "
              f"threads): {result['patches_per_s']:.0f} patches/s; time outside "
              f"forward/backward/step {100 * result['outside_share']:.1f} %")
    if dataset is None:
        if not args.throughput:
            print(f"CoNSeP not found at {DATA}: skipped")
        return

    train_idx, val_idx, note = _split_with_note(dataset.y, dataset.groups, 0.2, args.seed)
    print(f"split: {note}; {len(train_idx)} training / {len(val_idx)} validation objects; "
          f"validation source images {sorted(set(dataset.groups[val_idx]), key=int)}")
    print(f"config: {json.dumps({k: v for k, v in config.to_dict().items() if k != 'augment'})}")

    def on_epoch(record: dict) -> None:
        recalls = " ".join(f"{k[7:]}={v:.2f}" for k, v in record.items()
                           if k.startswith("recall_"))
        print(f"  epoch {record['epoch']:3d} loss {record['train_loss'] or float('nan'):.3f} "
              f"val {record['val_loss']:.3f} F1 {record['macro_f1']:.3f} bal "
              f"{record['balanced_accuracy']:.3f} [{recalls}] lr {record['lr']:.1e} "
              f"{record['seconds']:.1f}s", flush=True)

    # collect_timings sums the time of every training pass and evaluation inside the block
    with T.collect_timings() as timings:
        run = T.train(dataset, config, on_epoch=on_epoch, split=(train_idx, val_idx))
    loop = timings["total"] + timings.get("evaluate", 0.0)
    print(f"CNN: {run.summary}")
    print(f"  time in training passes {timings['total']:.0f} s (outside forward/backward/step "
          f"{100 * (1 - timings['compute'] / timings['total']):.1f} %), evaluation "
          f"{timings.get('evaluate', 0):.0f} s, whole run {run.seconds:.0f} s "
          f"(loop {loop:.0f} s)")
    report(f"CNN best epoch {run.best_epoch}", run.metrics)
    if not args.no_rf:
        tic = time.perf_counter()
        report("Random forest (same split)", rf_baseline(dataset, train_idx, val_idx))
        print(f"  features + forest in {time.perf_counter() - tic:.0f} s")


if __name__ == "__main__":
    main()
