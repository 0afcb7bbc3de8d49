"""Time the commands a user runs as whole processes (imports included), against another checkout.

    python bench/processes.py [--repeat 5] [--other ../old-checkout]

Each case is a fresh ``python`` process run under ``/usr/bin/time`` (wall seconds and peak RSS),
alternating between this checkout and ``--other`` (when given) so that both see the same load;
prints the median of ``--repeat`` runs per case and checkout, and the load average. The cases:
``--help`` of the CLI, importing the training configuration (what the Train form needs), the
app's Train-page modules, and a whole ``predict`` of the tests' wave-1 fixture (4 images,
144 objects) with its CNN.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "wave1"

CASES = {
    "cli --help": [sys.executable, "-m", "svetlana_core", "--help"],
    "import TrainConfig": [sys.executable, "-c", "from svetlana_core.training import TrainConfig"],
    "import Train page ui": [sys.executable, "-c", "import ui.train_form, ui.runs"],
    "cli predict (wave-1, 144 objects)": [
        sys.executable, "-m", "svetlana_core", "predict", "--model", "{data}/models/cnn_wave1",
        "--images", "{data}/images", "--masks", "{data}/masks", "--out", "{out}", "--force",
        "--device", "cpu", "--quiet"],
}


def _data_copy(folder: Path) -> Path:
    data = folder / "wave1"
    shutil.copytree(FIXTURE, data)
    return data


def _run(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process."""
    with tempfile.NamedTemporaryFile("r") as report:
        completed = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command],
                                   cwd=cwd, capture_output=True, text=True,
                                   env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})
        if completed.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{completed.stderr[-2000:]}")
        wall, rss_kb = report.read().split()[-2:]
    return float(wall), float(rss_kb) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--other", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    checkouts = [ROOT] + ([args.other.resolve()] if args.other else [])
    with tempfile.TemporaryDirectory() as tmp:
        data = _data_copy(Path(tmp))
        results: dict[tuple[str, Path], list[tuple[float, float]]] = {}
        for _ in range(args.repeat):
            for name, template in CASES.items():
                for checkout in checkouts:
                    command = [part.format(data=data, out=Path(tmp) / "out") for part in template]
                    results.setdefault((name, checkout), []).append(_run(command, checkout))
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}; "
          f"median of {args.repeat} runs")
    for name in CASES:
        cells = []
        for checkout in checkouts:
            runs = results[(name, checkout)]
            cells.append(f"{checkout.name}: {statistics.median(r[0] for r in runs):.2f} s, "
                         f"{statistics.median(r[1] for r in runs):.0f} MB")
        print(f"{name:36s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
