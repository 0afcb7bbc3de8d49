"""How many objects one lasso on the object map labels, at 90 % purity, on real data.

Run from the repository root::

    python bench/lasso_purity.py [--minutes 3] [--fraction 0.1]

Data: the 177 CoNSeP training tiles in ``../shared/data/consep_train_tiles`` (H&E, 256², 6,361
nuclei whose classes are known: epithelial, inflammatory, spindle, other). Two maps of every
nucleus, as the Object map page draws them:

* **hand-crafted**: the PCA of ``handcrafted_files`` (shape and colour statistics), the map a
  project has before any model;
* **CNN**: the PCA of the penultimate-layer features of a CNN trained by
  ``python -m svetlana_core train`` on ``--fraction`` of the nuclei (drawn at random, seed 0,
  split by source image) for ``--minutes``.

One lasso is simulated as a disc on the map around an object of a class, grown as long as at
least 90 % of the objects inside are of that class (a lasso can draw any such region; a disc is
the simplest). For each class, over up to 400 centres: the largest such disc (the best lasso a
user can find) and the median one (a typical lasso). Labelling those objects by clicking takes
one click each; the "all" rows add up one lasso per class. Prints a markdown table, the
commands and the load average.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "consep_train_tiles"
PURITY = 0.9


def pure_disc_sizes(xy: np.ndarray, classes: np.ndarray, name: str, n_centres: int,
                    rng: np.random.Generator) -> np.ndarray:
    """For sampled objects of class ``name``: the most objects a disc around each holds with
    at least :data:`PURITY` of them of that class."""
    centres = np.flatnonzero(classes == name)
    centres = rng.choice(centres, min(n_centres, len(centres)), replace=False)
    same = classes == name
    sizes = []
    for centre in centres:  # a few hundred centres, each one vectorised over every object
        order = np.argsort(((xy - xy[centre]) ** 2).sum(axis=1), kind="stable")
        purity = np.cumsum(same[order]) / np.arange(1, len(order) + 1)
        sizes.append(int(np.flatnonzero(purity >= PURITY).max()) + 1)
    return np.asarray(sizes)


def train_cnn(labels: pd.DataFrame, fraction: float, minutes: float, folder: Path) -> Path:
    """A CNN trained by the CLI on a random ``fraction`` of the labelled nuclei."""
    subset = labels.sample(frac=fraction, random_state=0)
    subset.to_csv(folder / "labels.csv", index=False)
    command = [sys.executable, "-m", "svetlana_core", "train", "--images", str(DATA / "images"),
               "--masks", str(DATA / "masks"), "--labels", str(folder / "labels.csv"), "--out",
               str(folder / "model"), "--max-minutes", str(minutes), "--group-pattern",
               r"train_(\d+)_"]
    print("command:", " ".join(command), f"  ({len(subset)} labels)", flush=True)
    subprocess.run(command, cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
    return folder / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--centres", type=int, default=400)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: this benchmark needs the CoNSeP tiles")
    load_start = os.getloadavg()
    from svetlana_core import io
    from svetlana_core.objects.embedding import feature_matrix, pca_2d
    from svetlana_core.predict.embed import embed_files, handcrafted_files

    truth = pd.read_csv(DATA / "objects.csv", dtype={"class": str})
    files = io.folder_files(DATA / "images", DATA / "masks")
    maps = {}
    tic = time.perf_counter()
    maps["hand-crafted"] = handcrafted_files(files)
    seconds = {"hand-crafted": time.perf_counter() - tic}
    with tempfile.TemporaryDirectory() as folder:
        model = train_cnn(truth, args.fraction, args.minutes, Path(folder))
        tic = time.perf_counter()
        maps["CNN"] = embed_files(model, files)
        seconds["CNN"] = time.perf_counter() - tic
    rows = []
    for name, table in maps.items():
        table = table.merge(truth, on=["image", "label"])
        matrix, _ = feature_matrix(table.drop(columns=["image", "label", "class"]))
        xy = pca_2d(matrix)
        classes = table["class"].to_numpy()
        for cls in sorted(set(classes)):
            sizes = pure_disc_sizes(xy, classes, cls, args.centres, np.random.default_rng(0))
            rows.append((name, cls, int((classes == cls).sum()), int(sizes.max()),
                         float(np.median(sizes))))
        per_class = [row for row in rows if row[0] == name]
        rows.append((name, "all (one lasso per class)", sum(r[2] for r in per_class),
                     sum(r[3] for r in per_class), sum(r[4] for r in per_class)))
    print(f"\nload average at start {' '.join(f'{x:.2f}' for x in load_start)}, at end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; features computed in "
          + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()) + "\n")
    print(f"| map | class | objects | best lasso at ≥ {PURITY:.0%} purity (= clicks saved) "
          "| share of the class | median lasso |\n|---|---|---:|---:|---:|---:|")
    for name, cls, n, best, median in rows:
        print(f"| {name} | {cls} | {n} | {best} | {best / n:.0%} | {median:.0f} |")


if __name__ == "__main__":
    main()
