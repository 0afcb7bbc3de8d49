"""Whole ``predict`` command as a process, side by side with the original plugin's prediction.

Run from the repository root::

    python bench/predict_cli.py [--repeats 3] [--threads 2] [--ours-args="--batch-size 64"]

Data (written once into ``--cache``, default /tmp/svbench): the peer's synthetic case
``make_synthetic.py --size 8000 --objects 10000 --seed 0`` (grey uint8 image, uint32 mask), laid
out as a folder of 1 image (``images/A01.tif`` + ``masks/A01.tif``) and a folder of 4 (the same
files hard-linked as A01..A04). Model: our ``cnn`` of depth 2, width 16, kernel 3 (the plugin's
smallest, ``lightNN_2_3``), 48 x 48 patches, 1 image channel, seeded untrained weights.

Each repeat runs, alternating the order from one repeat to the next:

* ours, 1 image and folder of 4: ``python -m svetlana_core predict --model M --images D/images
  --masks D/masks --out OUT --quiet --force --device cpu [--ours-args]``, a fresh OUT each time;
* peer: ``/work/shared/peer/bench_peer_predict.py --arch lightNN_2_3 --patch-size 48
  --batch-size 100 --threads N --device cpu`` on the same image (napari-svetlana 1.6.1's own code;
  its ``seconds_total`` excludes imports and file reading: "compute only").

Every child gets ``OMP_NUM_THREADS=N``; its wall time is measured around the process and its
peak RSS is its own ``ru_maxrss`` (``os.wait4`` on that one child). One untimed warm-up of both
on a 512 x 512 case comes first (it also lets the peer script download its wheel). Prints one
JSON line per measurement, then a markdown table of medians, the load average at start and end
and the exact command lines.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = Path("/work/shared/peer")
PATCH = 48
ARCH_PARAMS = {"depth": 2, "width": 16, "kernel": 3}  # the plugin's lightNN_2_3


def synthetic(cache: Path, size: int, objects: int) -> Path:
    """The peer's synthetic case (image.tif, mask.tif), generated once."""
    folder = cache / f"s{size}"
    if not (folder / "meta.json").is_file():
        subprocess.run([sys.executable, str(PEER / "make_synthetic.py"), "--size", str(size),
                        "--objects", str(objects), "--seed", "0", "--out", str(folder)],
                       check=True, stdout=subprocess.DEVNULL)
    meta = json.loads((folder / "meta.json").read_text())
    assert not meta["rgb"] and meta["image"] == "image.tif", meta  # grey uint8 TIFF: 1 channel
    return folder


def well_folder(source: Path, n_images: int) -> Path:
    """images/A01.tif .. + masks/A01.tif .., hard links (else symlinks) to one image and mask."""
    folder = source.parent / f"{source.name}-wells{n_images}"
    for sub, name in (("images", "image.tif"), ("masks", "mask.tif")):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for k in range(n_images):
            link = folder / sub / f"A{k + 1:02d}.tif"
            if not link.exists():
                try:
                    os.link(source / name, link)
                except OSError:
                    link.symlink_to(source / name)
    return folder


def model_folder(cache: Path) -> Path:
    """Our cnn (depth 2, width 16, kernel 3), 48 x 48 patches, seeded untrained weights."""
    folder = cache / "models" / f"cnn-d2w16k3-{PATCH}"
    if (folder / "model.json").is_file():
        return folder
    sys.path.insert(0, str(ROOT))
    import torch

    from svetlana_core import models

    torch.manual_seed(0)
    module = models.build_model("cnn", 2, 2, 2, **ARCH_PARAMS)
    meta = {
        "format_version": models.FORMAT_VERSION, "arch": "cnn", "arch_params": ARCH_PARAMS,
        "spatial_dims": 2, "in_channels": 2, "image_channels": 1, "classes": ["a", "b"],
        "patch_size": [PATCH, PATCH], "patch_mode": "context", "dilation": 2,
        "normalisation": "percentile", "config": {}, "history": [], "best_epoch": None,
        "metrics": None, "data": {"note": "untrained, for benchmarks"}, "versions": {},
        "parent": None, "created_at": "2026-01-01T00:00:00+00:00",
    }
    return models.save_model(folder, module, meta)


def run(command: list[str], threads: int) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of this one child (os.wait4), and its stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "NO_ALBUMENTATIONS_UPDATE": "1"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        tic = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - tic
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise SystemExit(f"{shlex.join(command)} failed ({child.returncode}):\n"
                             f"{err.read()[-3000:]}")
        return wall, usage.ru_maxrss / 1024, out.read()  # ru_maxrss: KiB on Linux


def ours_case(model: Path, data: Path, out: Path,
              args: argparse.Namespace) -> tuple[list[str], Path, int]:
    """Our CLI on a well folder: (command, output folder, number of images)."""
    command = [sys.executable, "-m", "svetlana_core", "predict", "--model", str(model),
               "--images", str(data / "images"), "--masks", str(data / "masks"),
               "--out", str(out), "--quiet", "--force", "--device", args.device,
               *shlex.split(args.ours_args)]
    return command, out, len(list((data / "images").iterdir()))


def peer_command(case: Path, out: Path, args: argparse.Namespace) -> list[str]:
    """The plugin's own prediction (lightNN_2_3) on case/image.tif + case/mask.tif."""
    return [sys.executable, str(PEER / "bench_peer_predict.py"), "--image",
            str(case / "image.tif"), "--mask", str(case / "mask.tif"), "--arch", "lightNN_2_3",
            "--patch-size", str(PATCH), "--batch-size", str(args.peer_batch_size), "--threads",
            str(args.threads), "--device", args.device, "--out-dir", str(out)]


def measure(name: str, command: list[str], out: Path, n_images: int,
            args: argparse.Namespace, repeat: int | None = None) -> dict:
    """Run one case in a fresh output folder; its JSON record (checks our CLI's summary)."""
    shutil.rmtree(out, ignore_errors=True)
    wall, rss, stdout = run(command, args.threads)
    shutil.rmtree(out, ignore_errors=True)
    last = json.loads(stdout.strip().splitlines()[-1])
    record = {"case": name, "repeat": repeat, "wall_s": round(wall, 3),
              "peak_rss_mb": round(rss), "loadavg_1min": round(os.getloadavg()[0], 2)}
    if name.startswith("peer"):
        record.update(compute_s=last["seconds_total"], peer_peak_rss_mb=last["peak_rss_mb"],
                      objects=last["objects"], peer_code_verified=last["peer_files"]["verified"])
    elif last.get("done") != n_images or last.get("failed"):
        raise SystemExit(f"{name}: expected {n_images} images done, got {last}")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS / peer --threads")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/svbench"))
    parser.add_argument("--ours-args", default="",
                        help='extra flags of our CLI, after "=": --ours-args="--batch-size 64"')
    parser.add_argument("--peer-batch-size", type=int, default=100, help="plugin default 100")
    parser.add_argument("--device", default="cpu", help="--device of both (default cpu)")
    args = parser.parse_args()
    load_start = os.getloadavg()
    cache = args.cache.resolve()
    big, small = synthetic(cache, 8000, 10000), synthetic(cache, 512, 40)
    model = model_folder(cache)
    runs = cache / "runs"
    # name: (command, its output folder, number of images)
    cases = {"ours 1 image": ours_case(model, well_folder(big, 1), runs / "o1", args),
             "ours folder of 4": ours_case(model, well_folder(big, 4), runs / "o4", args),
             "peer 1 image": (peer_command(big, runs / "peer", args), runs / "peer", 1)}
    # warm-up, untimed: .pyc files, the peer's wheel download, the page cache of the big files
    measure("ours warm-up", *ours_case(model, well_folder(small, 1), runs / "w", args), args)
    measure("peer warm-up", peer_command(small, runs / "w", args), runs / "w", 1, args)
    for path in (big / "image.tif", big / "mask.tif"):
        path.read_bytes()
    print(f"load average at start {' '.join(f'{x:.2f}' for x in load_start)}; "
          f"{os.cpu_count()} CPUs; {args.repeats} repeat(s)")
    for name, (command, _, _) in cases.items():
        print(f"{name}: OMP_NUM_THREADS={args.threads} {shlex.join(command)}")
    records: dict[str, list[dict]] = {name: [] for name in cases}
    for repeat in range(args.repeats):
        for name in list(cases) if repeat % 2 == 0 else list(reversed(cases)):
            records[name].append(measure(name, *cases[name], args, repeat))
            print(json.dumps(records[name][-1]), flush=True)

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in records[name])

    one, four = median("ours 1 image", "wall_s"), median("ours folder of 4", "wall_s")
    further = (four - one) / 3
    compute = median("peer 1 image", "compute_s")
    rows = [
        ("ours, 1 image, whole process", one, median("ours 1 image", "peak_rss_mb")),
        ("ours, folder of 4, whole process", four, median("ours folder of 4", "peak_rss_mb")),
        ("ours, per further image ((4 - 1) / 3)", further, None),
        ("peer, compute only, per image", compute, median("peer 1 image", "peer_peak_rss_mb")),
        ("peer, whole process", median("peer 1 image", "wall_s"),
         median("peer 1 image", "peak_rss_mb")),
    ]
    print(f"\nmedians of {args.repeats} repeat(s), 8000 x 8000, "
          f"{records['peer 1 image'][0]['objects']} objects per image, {args.threads} threads\n")
    print("| measurement | seconds | peak RSS (MB) |\n|---|---:|---:|")
    for label, seconds, rss in rows:
        print(f"| {label} | {seconds:.2f} | {'' if rss is None else f'{rss:.0f}'} |")
    print(f"| ratio peer compute / ours 1 image | {compute / one:.2f}x | |")
    print(f"| ratio peer compute / ours per further image | {compute / further:.2f}x | |")
    print(f"\nload average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
