"""The object map at the paper's scale: computing the features, the map, a selection, and the
page in Chromium.

Run from the repository root::

    python bench/object_map.py [--repeats 3] [--no-browser]

Data (shared with ``bench/predict_cli.py``, in ``--cache``, default /tmp/svbench): the peer's
synthetic 8000 x 8000 image with 10,000 objects, and the untrained 48² ``cnn``. A project of
that one image is made in a temporary folder. 100,000 objects are the 10,000 repeated ten times
with a little noise (the map's cost depends on the number of points, not on where they are).

Times, medians of ``--repeats``:

* ``embed_files`` (the CNN's penultimate features of every object, ONNX Runtime) and
  ``handcrafted_files`` (shape and intensity features), once per model and masks;
* ``pca_2d`` on 10,000 and 100,000 objects;
* the figure: ``ui.object_map.figure`` then ``fig.to_json()`` (what Streamlit sends);
* one selection's round trip: a 2,000-point event back to its ``(image, label)`` rows;
* with the features already in the project: reading them back, the PCA, the colours and the
  figure (what a page run does), and the page in Chromium from navigation until the map is
  drawn (``--no-browser`` skips it).

Prints a markdown table, the load average at start and end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from predict_cli import model_folder, synthetic  # noqa: E402


def timed(function, repeats: int) -> tuple[float, object]:
    seconds, result = [], None
    for _ in range(repeats):
        tic = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - tic)
    return statistics.median(seconds), result


def project_of(case: Path, folder: Path):
    """A project holding the synthetic image, its model run registered as done."""
    from svetlana_core.store import Project

    project = Project.create(folder / "projects" / "big")
    project.add_image(case / "image.tif", case / "mask.tif")
    return project


def page_seconds(root: Path, repeats: int) -> tuple[float, float]:
    """Until the map is drawn in Chromium: after opening its address (a fresh page, plotly.js
    loaded again) and after a click on its sidebar link from the Project page."""
    from tests.browser_server import app_server, browser_page

    def drawn(page, tic: float) -> float:
        page.get_by_text("10000 objects · 0 selected").wait_for(timeout=300_000)
        page.locator("[data-testid='stPlotlyChart'] .nsewdrag").first.wait_for()
        return time.perf_counter() - tic

    opened, clicked = [], []
    with app_server(root) as url, browser_page() as page:
        for k in range(repeats + 1):
            tic = time.perf_counter()
            page.goto(f"{url}/object_map?project=big")
            seconds = drawn(page, tic)
            page.goto(f"{url}/?project=big")
            page.get_by_text("Preview").first.wait_for(timeout=300_000)
            tic = time.perf_counter()
            page.get_by_role("link", name="Object map").click()
            if k:  # the first visit computes the map once and starts the server's imports
                clicked.append(drawn(page, tic))
                opened.append(seconds)
    return statistics.median(opened), statistics.median(clicked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/svbench"))
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    load_start = os.getloadavg()
    from svetlana_core.objects.embedding import feature_matrix, pca_2d
    from svetlana_core.predict.embed import embed_files, handcrafted_files
    from ui import object_map

    case, model = synthetic(args.cache, 8000, 10000), model_folder(args.cache)
    files = {"image.tif": (case / "image.tif", case / "mask.tif")}
    rows = []
    embed_s, deep = timed(lambda: embed_files(model, files), args.repeats)
    rows.append(("embed_files: CNN features of 10,000 objects (8000² image read included)",
                 embed_s))
    hand_s, hand = timed(lambda: handcrafted_files(files), args.repeats)
    rows.append(("handcrafted_files: shape + intensity features of 10,000 objects", hand_s))
    matrix, _ = feature_matrix(deep.drop(columns=["image", "label"]))
    rng = np.random.default_rng(0)
    big = np.concatenate([matrix + rng.normal(0, 1e-3, matrix.shape) for _ in range(10)])
    for n, values in ((10_000, matrix), (100_000, big)):
        rows.append((f"pca_2d, {n:,} objects × {values.shape[1]} features",
                     timed(lambda v=values: pca_2d(v), args.repeats)[0]))
    for n, values in ((10_000, matrix), (100_000, big)):
        xy = pca_2d(values)
        points = pd.DataFrame({"image": "image.tif", "label": np.arange(1, n + 1), "x": xy[:, 0],
                               "y": xy[:, 1], "labelled": np.where(np.arange(n) % 7, None, "a"),
                               "predicted": None, "confidence": np.nan, "well": None})
        rows.append((f"figure + to_json, {n:,} points",
                     timed(lambda p=points: object_map.figure(p, "label", {"a": "#e6194b"})
                           .to_json(), args.repeats)[0]))
    chosen = sorted(rng.choice(len(points), 2000, replace=False).tolist())
    event = {"selection": {"points": [{"customdata": i} for i in chosen]}}
    rows.append(("one selection of 2,000 points back to (image, label) rows",
                 timed(lambda: object_map.selected(event, points), args.repeats)[0]))

    with tempfile.TemporaryDirectory() as folder:
        project = project_of(case, Path(folder))
        object_map.features(project, object_map.HANDCRAFTED, None)  # computed once, kept

        def page_work():
            table = object_map.features(project, object_map.HANDCRAFTED, None)
            points = object_map.with_colours(
                object_map.coordinates(table, object_map.HANDCRAFTED), project, None)
            return object_map.figure(points, "label", {}).to_json()

        rows.append(("map from the kept features (read, PCA, colours, figure), 10,000 objects",
                     timed(page_work, args.repeats)[0]))
        if not args.no_browser:
            os.environ.setdefault("SVETLANA_DATA_ROOT", folder)
            opened, clicked = page_seconds(Path(folder), args.repeats)
            rows.append(("the page in Chromium, features kept: its address opened → map drawn",
                         opened))
            rows.append(("the page in Chromium, features kept: sidebar link → map drawn",
                         clicked))
        shutil.rmtree(project.folder / "object_maps", ignore_errors=True)
    print(f"load average at start {' '.join(f'{x:.2f}' for x in load_start)}; "
          f"{os.cpu_count()} CPUs; medians of {args.repeats}; features: CNN {matrix.shape[1]}, "
          f"hand-crafted {hand.shape[1] - 2}\n")
    print("| step | seconds |\n|---|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} |")
    print(f"\nload average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("command: python " + " ".join(["bench/object_map.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
