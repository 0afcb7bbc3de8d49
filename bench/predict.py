"""Prediction benchmark: one 8000 x 8000 image with 10,000 objects, and a folder of 20 images.

Run from the repository root::

    python bench/predict.py                      # every case below, each in a fresh process
    python bench/predict.py image --size 8000 --objects 10000 --net original
    python bench/predict.py image --size 8000 --objects 10000 --net default --batch 256
    python bench/predict.py image --size 8000 --objects 10000 --net original --engine torch
    python bench/predict.py image --size 8000 --objects 10000 --net original --no-fold \
        --engine torch
    python bench/predict.py sweep --size 8000 --objects 10000 --net original   # batch sizes
    python bench/predict.py fold --net default --rounds 4     # BatchNorm folding on / off
    python bench/predict.py folder --workers 0   # 20 images of 2048 x 2048, locally
    python bench/predict.py folder --workers 2   # the same on a 2-worker Dask LocalCluster

Data (seeded, drawn without a loop over objects): disks of radius 8-20 pixels on a jittered
grid, a uint8 grey image (noisy background, one brightness per disk) and a uint16 mask, written
once to ``bench/out/predict/`` (.npy for the big image, TIFF for the folder). Networks: the
original plugin's smallest CNN (``build_model("cnn", depth=2, width=16, kernel=3)``, "original")
and the default CNN (depth 3, width 32, "default"), untrained random weights saved as model
folders, at the auto patch size of the data (:func:`svetlana_core.patches.auto_patch_size`).

Each ``image`` case runs :func:`svetlana_core.predict.predict_image` once on a 512 x 512 corner
(warm-up: oneDNN builds its kernels) and then twice on the whole image, and prints for the
first ("cold", as for any new image) and second ("warm_") call the wall time, the forward time
(a timer around the module calls) and the time outside the forward per object, and the peak
resident memory of the process (``ru_maxrss``: the inputs, torch, the pipeline), which is why
every case runs in its own process.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see svetlana_core/__init__.py
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from svetlana_core import models  # noqa: E402

OUT = ROOT / "bench" / "out" / "predict"
NETS = {"original": {"depth": 2, "width": 16, "kernel": 3}, "default": {"depth": 3, "width": 32}}


# --------------------------------------------------------------------------- data


def make_scene(size: int, n_objects: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disks of radius 8-20 on a jittered grid; image (1, size, size) uint8, mask uint16/32.

    Every disk is drawn at once from one (n, 41, 41) stencil, so 10,000 disks take a second.
    """
    rng = np.random.default_rng(seed)
    grid = int(np.ceil(np.sqrt(n_objects)))
    cell = size / grid
    row, column = np.divmod(np.arange(n_objects), grid)
    radius = rng.integers(8, 21, n_objects)
    slack = np.maximum(cell / 2 - radius - 1, 0)
    centre_row = np.round((row + 0.5) * cell + rng.uniform(-1, 1, n_objects) * slack).astype(int)
    centre_column = np.round((column + 0.5) * cell + rng.uniform(-1, 1, n_objects) * slack)
    centre_column = centre_column.astype(int)
    offsets = np.arange(-20, 21)
    inside = offsets[None, :, None] ** 2 + offsets[None, None, :] ** 2 <= radius[:, None, None] ** 2
    k, dr, dc = np.nonzero(inside)
    rr = np.clip(centre_row[k] + offsets[dr], 0, size - 1)
    cc = np.clip(centre_column[k] + offsets[dc], 0, size - 1)
    mask = np.zeros((size, size), np.uint16 if n_objects < 65535 else np.uint32)
    mask[rr, cc] = k + 1
    image = rng.integers(20, 45, (size, size), dtype=np.uint8)
    image[rr, cc] = rng.integers(80, 220, n_objects).astype(np.uint8)[k] + (dr % 3).astype(np.uint8)
    return image[np.newaxis], mask


def model_folder(net: str, patch_size: tuple[int, ...]) -> Path:
    """A model folder of untrained (seeded) weights for ``net`` at ``patch_size``."""
    import torch

    from svetlana_core import models

    folder = OUT / "models" / f"{net}-{'x'.join(map(str, patch_size))}"
    if (folder / models.MODEL_FILE).is_file():
        return folder
    torch.manual_seed(0)
    params = NETS[net]
    module = models.build_model("cnn", 2, 3, 2, **params)
    meta = {
        "format_version": models.FORMAT_VERSION, "arch": "cnn", "arch_params": params,
        "spatial_dims": 2, "in_channels": 2, "image_channels": 1,
        "classes": ["a", "b", "c"], "patch_size": list(patch_size), "patch_mode": "context",
        "dilation": 2, "normalisation": "percentile", "config": {}, "history": [],
        "best_epoch": None, "metrics": None, "data": {"note": "untrained, for benchmarks"},
        "versions": {}, "parent": None, "created_at": "2026-01-01T00:00:00+00:00",
    }
    return models.save_model(folder, module, meta)


def scene_files(size: int, n_objects: int) -> tuple[Path, Path, tuple[int, ...]]:
    """The .npy files of a scene (written once) and its auto patch size."""
    from svetlana_core.objects import object_table
    from svetlana_core.patches import auto_patch_size

    folder = OUT / f"scene-{size}-{n_objects}"
    image_path, mask_path = folder / "image.npy", folder / "mask.npy"
    if not mask_path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        image, mask = make_scene(size, n_objects)
        np.save(image_path, image)
        np.save(mask_path, mask)
    mask = np.load(mask_path, mmap_mode="r")
    size_file = folder / "patch_size.json"
    if not size_file.is_file():
        size_file.write_text(json.dumps(auto_patch_size(object_table(np.asarray(mask)), 2)))
    return image_path, mask_path, tuple(json.loads(size_file.read_text()))


def folder_files(n_images: int = 20, size: int = 2048, n_objects: int = 1500) -> Path:
    """A folder of TIFF images and masks named after wells (plate1_A01.tif …)."""
    import tifffile

    folder = OUT / f"folder-{n_images}x{size}-{n_objects}"
    if (folder / "done").is_file():
        return folder
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for k in range(n_images):
        image, mask = make_scene(size, n_objects, seed=100 + k)
        well = f"{'ABCDEFGH'[k // 12]}{k % 12 + 1:02d}"
        tifffile.imwrite(folder / "images" / f"plate1_{well}.tif", image[0])
        tifffile.imwrite(folder / "masks" / f"plate1_{well}.tif", mask, compression="zlib")
    (folder / "done").write_text("")
    return folder


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --------------------------------------------------------------------------- cases (children)


def _no_fold() -> None:
    """Measure the 'before': run the module as loaded (no BatchNorm folding)."""

    from svetlana_core.predict import network as predict_image_module

    # the torch runner calls the name bound in predict/network.py: patch it there
    predict_image_module._inference_module = lambda module, device, layout: copy.deepcopy(
        module).to(device, memory_format=layout)


def _load(folder: Path, args: argparse.Namespace):
    """The model as prediction loads it on a CPU (ONNX Runtime), or in torch."""
    if args.engine == "torch":
        return models.load_model(folder)
    return models.load_predictor(folder, device="cpu", threads=args.threads)


def case_image(args: argparse.Namespace) -> dict:
    import torch

    from svetlana_core import predict

    torch.set_num_threads(args.threads)
    if args.no_fold:
        _no_fold()
    image_path, mask_path, patch_size = scene_files(args.size, args.objects)
    folder = model_folder(args.net, patch_size)
    image, mask = np.load(image_path), np.load(mask_path)
    model = _load(folder, args)
    predict.predict_image(model, image[:, :512, :512], mask[:512, :512], batch_size=args.batch)
    runs, peaks = [], []
    for _ in range(2):  # the first call on the whole image pays for fresh memory pages
        tic, cpu = time.perf_counter(), time.process_time()
        result = predict.predict_image(
            model, image, mask, batch_size=args.batch, chunk_objects=args.chunk
        )
        runs.append((time.perf_counter() - tic, time.process_time() - cpu, result.timings))
        peaks.append(peak_rss_mb())
        del result
    (wall, cpu, timings), (warm_wall, _, warm) = runs
    n = int(np.count_nonzero(np.bincount(mask.ravel())[1:]))
    return {
        "case": "image", "engine": args.engine, "size": args.size, "objects": n,
        "net": args.net, "patch_size": list(patch_size),
        "batch": args.batch or (predict.CPU_BATCH_SIZE if args.engine == "torch"
                                else predict.ONNX_BATCH_SIZE),
        "chunk": args.chunk or "auto", "threads": args.threads, "fold": not args.no_fold,
        "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
        "forward_s": round(timings["forward"], 3),
        "outside_ms_per_object": round((wall - timings["forward"]) / n * 1000, 4),
        "forward_ms_per_object": round(timings["forward"] / n * 1000, 4),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "warm_wall_s": round(warm_wall, 3),
        "warm_outside_ms_per_object": round((warm_wall - warm["forward"]) / n * 1000, 4),
        "warm_timings": {k: round(v, 3) for k, v in warm.items()},
        "peak_rss_mb": round(peaks[0]),  # inputs + torch + one prediction (the cold one)
        "peak_rss_after_warm_mb": round(peaks[1]),
        "load_average": round(os.getloadavg()[0], 2),
    }


def case_sweep(args: argparse.Namespace) -> dict:
    """Forward time per batch size, interleaved over rounds (min), in one process."""
    import torch

    from svetlana_core import predict

    torch.set_num_threads(args.threads)
    image_path, mask_path, patch_size = scene_files(args.size, args.objects)
    model = _load(model_folder(args.net, patch_size), args)
    image, mask = np.load(image_path), np.load(mask_path)
    predict.predict_image(model, image[:, :512, :512], mask[:512, :512])
    best: dict[int, dict] = {}
    for _ in range(args.rounds):
        for batch in args.batches:
            result = predict.predict_image(model, image, mask, batch_size=batch)
            if batch not in best or result.timings["total"] < best[batch]["total"]:
                best[batch] = result.timings
    n = int(mask.max())
    return {
        "case": "sweep", "net": args.net, "size": args.size, "objects": n,
        "patch_size": list(patch_size), "rounds": args.rounds,
        "forward_ms_per_object": {b: round(t["forward"] / n * 1000, 4) for b, t in best.items()},
        "wall_s": {b: round(t["total"], 3) for b, t in best.items()},
        "load_average": round(os.getloadavg()[0], 2),
    }


def case_fold(args: argparse.Namespace) -> dict:
    """Forward time with and without BatchNorm folding, alternated over rounds (min)."""
    import torch

    from svetlana_core import predict

    torch.set_num_threads(args.threads)
    image_path, mask_path, patch_size = scene_files(args.size, args.objects)
    model = models.load_model(model_folder(args.net, patch_size))
    image, mask = np.load(image_path), np.load(mask_path)
    from svetlana_core.predict import network as predict_image_module

    folded = predict_image_module._inference_module

    def unfolded(module, device, layout):
        return copy.deepcopy(module).to(device, memory_format=layout)

    predict.predict_image(model, image[:, :512, :512], mask[:512, :512])
    best = {"fold": [], "no_fold": []}
    for _ in range(args.rounds):
        for name, make in (("fold", folded), ("no_fold", unfolded)):
            predict_image_module._inference_module = make
            result = predict.predict_image(model, image, mask, batch_size=args.batch)
            best[name].append(result.timings["forward"])
    predict_image_module._inference_module = folded
    n = int(mask.max())
    return {
        "case": "fold", "net": args.net, "size": args.size, "objects": n,
        "rounds": args.rounds,
        "forward_ms_per_object_min": {k: round(min(v) / n * 1000, 4) for k, v in best.items()},
        "forward_ms_per_object_median": {
            k: round(float(np.median(v)) / n * 1000, 4) for k, v in best.items()
        },
        "load_average": round(os.getloadavg()[0], 2),
    }


def case_folder(args: argparse.Namespace) -> dict:
    import torch

    from svetlana_core import io
    from svetlana_core import predict

    torch.set_num_threads(args.threads)
    folder = folder_files()
    pairs = io.pair_files(folder / "images", folder / "masks")
    from svetlana_core.objects import object_table
    from svetlana_core.patches import auto_patch_size

    patch_size = auto_patch_size(object_table(io.read_mask(pairs[0].mask)), 2)
    model_dir = model_folder(args.net, patch_size)
    out = OUT / f"run-folder-{args.workers}"
    shutil.rmtree(out, ignore_errors=True)
    record = {"case": "folder", "images": len(pairs), "net": args.net,
              "patch_size": list(patch_size), "workers": args.workers}
    if args.workers:
        from distributed import Client, LocalCluster

        tic = time.perf_counter()
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        record["cluster_start_s"] = round(time.perf_counter() - tic, 2)
        tic = time.perf_counter()
        result = predict.predict_many(model_dir, pairs, out, device="cpu", client=client)
        record["wall_s"] = round(time.perf_counter() - tic, 2)
        client.close()
        cluster.close()
    else:
        tic = time.perf_counter()
        result = predict.predict_many(model_dir, pairs, out, device="cpu")
        record["wall_s"] = round(time.perf_counter() - tic, 2)
    tic = time.perf_counter()
    again = predict.predict_many(model_dir, pairs, out, device="cpu")
    record["resume_s"] = round(time.perf_counter() - tic, 2)
    record["skipped_on_resume"] = len(again.skipped)
    n = len(result.objects)
    record.update(
        objects=n, done=len(result.done), failed=len(result.failed),
        objects_per_s=round(n / record["wall_s"]), peak_rss_mb_client=round(peak_rss_mb()),
        load_average=round(os.getloadavg()[0], 2),
    )
    return record


# --------------------------------------------------------------------------- driver


def run_child(argv: list[str]) -> dict:
    """Run one case in a fresh process (so peak memory is its own) and parse its JSON line."""
    done = subprocess.run(
        [sys.executable, __file__, *argv, "--json"], capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode:
        raise RuntimeError(f"{argv} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_all() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cases = [
        ["image", "--size", "8000", "--objects", "10000", "--net", "original"],
        ["image", "--size", "8000", "--objects", "10000", "--net", "default"],
        ["image", "--size", "2048", "--objects", "1500", "--net", "original"],
        ["image", "--size", "2048", "--objects", "1500", "--net", "default"],
        ["folder", "--workers", "0"],
        ["folder", "--workers", "2"],
        ["sweep", "--size", "8000", "--objects", "10000", "--net", "original"],
        ["sweep", "--size", "8000", "--objects", "10000", "--net", "default"],
        ["fold", "--net", "original", "--rounds", "4"],
        ["fold", "--net", "default", "--rounds", "4"],
    ]
    for argv in cases:
        record = run_child(argv)
        print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="case")
    for name in ("image", "sweep", "fold", "folder"):
        p = sub.add_parser(name)
        p.add_argument("--size", type=int, default=8000)
        p.add_argument("--objects", type=int, default=10000)
        p.add_argument("--net", choices=list(NETS), default="original")
        p.add_argument("--batch", type=int, default=None)
        p.add_argument("--chunk", type=int, default=None, help="default: predict's (auto)")
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--no-fold", action="store_true")
        p.add_argument("--engine", choices=["onnx", "torch"], default="onnx",
                       help="ONNX Runtime (what predict runs on a CPU) or torch (fold: torch)")
        p.add_argument("--workers", type=int, default=0)
        p.add_argument("--rounds", type=int, default=2)
        p.add_argument("--batches", type=int, nargs="+", default=[16, 32, 64, 128, 256])
        p.add_argument("--json", action="store_true", help="print one JSON line (for the driver)")
    args = parser.parse_args()
    if args.case is None:
        run_all()
        return
    cases = {"image": case_image, "sweep": case_sweep, "fold": case_fold, "folder": case_folder}
    record = cases[args.case](args)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
