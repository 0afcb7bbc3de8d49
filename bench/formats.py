"""What the exchange formats cost, as whole ``python -m svetlana_core`` processes.

Run from the repository root::

    python bench/formats.py [--repeats 3]

Data (in ``--cache``, default /tmp/svbench, shared with ``bench/predict_cli.py``): the peer's
synthetic 8000 x 8000 image with 10,000 objects, and the same image and mask written once as an
OME-Zarr image (``ome_zarr.writer``: a 5-level pyramid, and the mask as ``labels/cells``).
Model: the untrained ``cnn`` of ``bench/predict_cli.py`` (what is timed is the formats, not the
network). Each repeat runs, in the same order, with a fresh output folder:

* ``predict`` on the TIFF pair (the reference), then with ``--geojson``;
* ``predict`` on the OME-Zarr image (its label image as the mask), then with ``--zarr-copy``
  and ``--write-into-zarr`` (the latter on a copy made beforehand, untimed);
* ``import-labels --labels A01.geojson`` (the 10,000 classified outlines ``--geojson`` wrote)
  into a new project, then ``export-labels --format geojson`` of that project.

Prints one JSON line per measurement, then a markdown table of medians with the ratio to the
TIFF ``predict``, and the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict_cli import model_folder, run, synthetic, well_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "svetlana_core"]


def zarr_case(source: Path) -> Path:
    """``<cache>/s8000-zarr/A01.ome.zarr``: the synthetic image and mask as OME-Zarr, once."""
    folder = source.parent / f"{source.name}-zarr"
    store = folder / "A01.ome.zarr"
    if not (store / "labels" / "cells").is_dir():
        import tifffile
        import zarr
        from ome_zarr.writer import write_image, write_labels

        shutil.rmtree(folder, ignore_errors=True)
        group = zarr.open_group(str(store), mode="w")
        write_image(tifffile.imread(source / "image.tif")[None], group, axes="cyx")
        write_labels(tifffile.imread(source / "mask.tif"), group, name="cells", axes="yx",
                     scaler=None)
    return folder


def cases(cache: Path, model: Path) -> dict[str, tuple[list[str], Path | None]]:
    """Name -> (command, a folder to empty before each run)."""
    tiff = well_folder(synthetic(cache, 8000, 10000), 1)
    zarr = zarr_case(cache / "s8000")
    runs = cache / "runs-formats"
    predict = [*CLI, "predict", "--model", str(model), "--quiet", "--force", "--device", "cpu"]
    on_tiff = ["--images", str(tiff / "images"), "--masks", str(tiff / "masks")]
    return {
        "predict, TIFF": ([*predict, *on_tiff, "--out", str(runs / "t")], runs / "t"),
        "predict --geojson, TIFF": ([*predict, *on_tiff, "--out", str(runs / "g"),
                                     "--geojson"], runs / "g"),
        "predict, OME-Zarr": ([*predict, "--images", str(zarr), "--out", str(runs / "z")],
                              runs / "z"),
        "predict --zarr-copy, OME-Zarr": ([*predict, "--images", str(zarr), "--out",
                                           str(runs / "zc"), "--zarr-copy"], runs / "zc"),
        "predict --write-into-zarr, OME-Zarr": ([*predict, "--images", str(runs / "zi-data"),
                                                 "--out", str(runs / "zi"),
                                                 "--write-into-zarr"], runs / "zi"),
        "import-labels --labels A01.geojson": (
            [*CLI, "import-labels", str(runs / "p"), "--images", str(tiff / "images"),
             "--masks", str(tiff / "masks"), "--labels", str(runs / "A01.geojson")], runs / "p"),
        "export-labels --format geojson": (
            [*CLI, "export-labels", str(runs / "p"), "--format", "geojson", "--out",
             str(runs / "exported")], runs / "exported"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/svbench"))
    args = parser.parse_args()
    load_start = os.getloadavg()
    cache = args.cache.resolve()
    model = model_folder(cache)
    todo = cases(cache, model)
    runs = cache / "runs-formats"
    print(f"load average at start {' '.join(f'{x:.2f}' for x in load_start)}; "
          f"{os.cpu_count()} CPUs; {args.repeats} repeat(s)")
    records: dict[str, list[dict]] = {name: [] for name in todo}
    for repeat in range(args.repeats):
        for name, (command, fresh) in todo.items():
            if name.startswith("predict --write-into-zarr"):  # never the cached original
                shutil.rmtree(runs / "zi-data", ignore_errors=True)
                shutil.copytree(zarr_case(cache / "s8000"), runs / "zi-data")
            if fresh is not None:  # export-labels reads the project import-labels just made
                shutil.rmtree(fresh, ignore_errors=True)
            wall, rss, stdout = run(command, args.threads)
            if name == "predict --geojson, TIFF":
                shutil.copy(runs / "g" / "geojson" / "A01.geojson", runs / "A01.geojson")
            record = {"case": name, "repeat": repeat, "wall_s": round(wall, 3),
                      "peak_rss_mb": round(rss), "loadavg_1min": round(os.getloadavg()[0], 2),
                      "stdout": stdout.strip().splitlines()[-1][:160]}
            records[name].append(record)
            print(json.dumps(record), flush=True)
    reference = statistics.median(r["wall_s"] for r in records["predict, TIFF"])
    print(f"\nmedians of {args.repeats} repeat(s), 8000 x 8000, 10,000 objects, "
          f"{args.threads} threads\n")
    print("| command | seconds | × predict on TIFF | peak RSS (MB) |\n|---|---:|---:|---:|")
    for name, rows in records.items():
        wall = statistics.median(r["wall_s"] for r in rows)
        rss = statistics.median(r["peak_rss_mb"] for r in rows)
        print(f"| `{name}` | {wall:.2f} | {wall / reference:.2f} | {rss:.0f} |")
    print(f"\nload average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, (command, _) in todo.items():
        print(f"{name}: {' '.join(command)}")


if __name__ == "__main__":
    main()
