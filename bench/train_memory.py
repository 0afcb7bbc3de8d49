"""Peak memory of one training step, measured, beside svetlana_core.training.memory's estimate.

Each config runs in a fresh Python process: two Adam steps on random data on the CPU, the
growth of the process's peak RSS (``ru_maxrss``) over the steps is the step's memory. The
estimate's factors (``CNN_STEP_FACTOR``, ``TORCHVISION_STEPS``) come from this table.

    python bench/train_memory.py            # the default set (about 2 minutes on 2 cores)
    python bench/train_memory.py --quick    # three configs
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEP = """
import resource, sys, time
import torch
from svetlana_core import models
arch, dims, side, batch, width, channels = sys.argv[1], *map(int, sys.argv[2:7])
torch.set_num_threads(2)
params = {"width": width, "depth": 3 if side < 64 else 4 if side < 128 else 5} if arch == "cnn" else {}
net = models.build_model(arch, in_channels=channels, n_classes=3, spatial_dims=dims, **params)
optimiser = torch.optim.Adam(net.parameters())
x, y = torch.randn(batch, channels, *([side] * dims)), torch.randint(0, 3, (batch,))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
for _ in range(2):
    optimiser.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    optimiser.step()
seconds = (time.perf_counter() - started) / 2
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024, seconds)
"""

CONFIGS = [  # arch, spatial dims, side, batch, width, channels (image + mask)
    ("cnn", 2, 72, 64, 32, 4), ("cnn", 2, 128, 64, 32, 4), ("cnn", 2, 256, 64, 32, 2),
    ("cnn", 3, 32, 64, 32, 2), ("cnn", 3, 48, 64, 32, 2), ("cnn", 3, 48, 32, 32, 2),
    ("cnn", 3, 64, 16, 32, 2), ("resnet18", 2, 72, 64, 0, 4), ("resnet18", 2, 128, 64, 0, 4),
    ("resnet50", 2, 72, 64, 0, 4), ("densenet121", 2, 72, 64, 0, 4),
    ("alexnet", 2, 72, 64, 0, 4),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three configs only")
    args = parser.parse_args()
    from svetlana_core.training.memory import step_bytes

    print(f"load average before: {os.getloadavg()}")
    print("| arch | patch | batch | width | measured step MB | estimate MB | ratio | s/step |")
    print("|---|---|---|---|---|---|---|---|")
    configs = CONFIGS[:1] + CONFIGS[4:5] + CONFIGS[7:8] if args.quick else CONFIGS
    for arch, dims, side, batch, width, channels in configs:
        out = subprocess.run([sys.executable, "-c", STEP, arch, str(dims), str(side), str(batch),
                              str(width), str(channels)], capture_output=True, text=True,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
        measured, seconds = (float(v) for v in out.stdout.split())
        estimate = step_bytes(arch, {"width": width}, (side,) * dims, batch)
        print(f"| {arch} | {side}{'³' if dims == 3 else '²'} | {batch} | {width or '-'} | "
              f"{measured / 2**20:.0f} | {estimate / 2**20:.0f} | {estimate / measured:.2f} | "
              f"{seconds:.2f} |")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
