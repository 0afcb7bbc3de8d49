"""Benchmark: object table and patch extraction on an 8000 × 8000 image with 10,000 objects.

The data are synthetic and seeded: a 100 × 100 grid of 80-pixel cells, one disk per cell with a
radius of 8–20 pixels at a jittered position (so objects never overlap), labels 1..10000 in a
uint16 mask; a uint16 image (1 channel by default, ``--channels`` for more) with objects brighter
than a noisy background. Prints the median wall time of ``--repeats`` runs of each step (with
the minimum and the median CPU time), the memory each extract call allocates (tracemalloc) and
the peak RSS.

    python bench/patches.py [--channels 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from svetlana_core.objects import object_table
from svetlana_core.patches import auto_patch_size, extract, normalise

SIDE, GRID = 8000, 100


def synthetic(channels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(image (C, 8000, 8000) uint16, mask (8000, 8000) uint16 with labels 1..10000)."""
    rng = np.random.default_rng(seed)
    cell = SIDE // GRID
    radius = rng.integers(8, 21, (GRID, GRID))
    centre_row = rng.integers(21, cell - 21, (GRID, GRID))
    centre_column = rng.integers(21, cell - 21, (GRID, GRID))
    brightness = rng.integers(500, 3000, (channels, GRID * GRID + 1)).astype(np.uint16)
    brightness[:, 0] = 0
    offsets = np.arange(cell, dtype=np.int32)
    mask = np.empty((SIDE, SIDE), dtype=np.uint16)
    image = np.empty((channels, SIDE, SIDE), dtype=np.uint16)
    # One band of cells at a time keeps the generator's own memory below what is measured.
    for band in range(GRID):
        inside = (
            (offsets[None, :, None] - centre_row[band, :, None, None]) ** 2
            + (offsets[None, None, :] - centre_column[band, :, None, None]) ** 2
            <= radius[band, :, None, None] ** 2
        )  # (grid column, row in cell, column in cell)
        labels = np.arange(band * GRID + 1, (band + 1) * GRID + 1, dtype=np.uint16)
        block = np.where(inside, labels[:, None, None], np.uint16(0))
        rows = slice(band * cell, (band + 1) * cell)
        mask[rows] = block.transpose(1, 0, 2).reshape(cell, SIDE)
        noise = rng.normal(200, 30, (channels, cell, SIDE)).astype(np.uint16)
        image[:, rows] = noise + brightness[:, mask[rows]]
    return image, mask


def median_time(function, repeats: int) -> tuple[str, object]:
    """"median wall s (min s; median CPU s)" of ``repeats`` calls, and the last result.

    The CPU time of this (single-threaded) process is what the wall time would be on an idle
    machine; on a shared one the wall time also counts waiting for a core.
    """
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        result = None  # free the previous result before the next run
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    summary = f"{np.median(walls):.3f} s (min {min(walls):.3f}; CPU {np.median(cpus):.3f})"
    return summary, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    image, mask = synthetic(args.channels)
    generated = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"numpy {np.__version__}, load average {os.getloadavg()[0]:.1f}")
    print(f"image {image.shape} {image.dtype}, mask {mask.shape} {mask.dtype}, "
          f"{GRID * GRID} objects, median of {args.repeats}")

    seconds, table = median_time(lambda: object_table(mask), args.repeats)
    print(f"object_table: {seconds} ({len(table)} rows)")
    size = auto_patch_size(table, 2)
    print(f"auto_patch_size: {size}")
    seconds, _ = median_time(lambda: normalise(image), args.repeats)
    print(f"normalise (percentile, whole image): {seconds}")

    cases = [
        ("context, percentile, auto size", dict(size=None, normalisation="percentile")),
        ("context, percentile, 32", dict(size=32, normalisation="percentile")),
        ("context, percentile, 64", dict(size=64, normalisation="percentile")),
        ("context, minmax, auto size", dict(size=None, normalisation="minmax")),
        ("masked, percentile, auto size", dict(size=None, mode="masked")),
        ("masked, minmax, auto size", dict(size=None, mode="masked", normalisation="minmax")),
        ("context, percentile, auto size, no table", dict(size=None, table=None)),
    ]
    for name, kwargs in cases:
        kwargs.setdefault("table", table)
        if name.endswith("no table"):
            kwargs["table"] = None
        seconds, patches = median_time(lambda: extract(image, mask, **kwargs), args.repeats)
        shape, output = patches.shape, patches.nbytes / 2**20
        patches = None
        # Traced separately: tracemalloc slows numpy allocations down.
        tracemalloc.start()
        extract(image, mask, **kwargs)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"extract ({name}): {seconds} -> {shape} "
              f"output {output:.0f} MiB, peak allocated during the call {peak:.0f} MiB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"peak RSS: {peak:.0f} MiB (after generating the data: {generated:.0f} MiB; "
          f"image + mask {(image.nbytes + mask.nbytes) / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
