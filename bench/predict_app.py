"""Time the app's Predict "this image" as the server runs it: the job, from submit to done.

    python bench/predict_app.py [--repeats 3] [--cache /tmp/svbench]

The Predict page's button calls :func:`svetlana_core.jobs.submit_prediction` for one project
image; a worker process (spawned) queues for the CPU, loads the model, predicts, writes the
outputs and stores the per-object table in the project, and the page shows it once the run is
``done``. This measures that whole span (process start and imports included) on the 8000² /
10,000-object case of ``bench/predict_cli.py`` (made there, reused from ``--cache``), with
``--force`` so every repeat predicts again; it prints each repeat, the median, the engine the
job used and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/svbench"))
    args = parser.parse_args()

    from predict_cli import model_folder, synthetic, well_folder  # the CLI benchmark's case

    from svetlana_core import jobs
    from svetlana_core.store import Project

    print(f"load average at start: {os.getloadavg()}")
    folder = well_folder(synthetic(args.cache, 8000, 10_000), 1)
    model_dir = model_folder(args.cache)
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.create(Path(tmp) / "project")
        project.add_image(folder / "images" / "A01.tif", folder / "masks" / "A01.tif")
        seconds = []
        for repeat in range(args.repeats):
            tic = time.perf_counter()
            run_id = jobs.submit_prediction(project.folder, model_dir,
                                            {"kind": "project", "images": ["A01.tif"]},
                                            project.outputs_dir / "bench", force=True)
            status = jobs.wait(project.folder, run_id, timeout=600)
            seconds.append(time.perf_counter() - tic)
            run = project.run(run_id)
            print(f"repeat {repeat + 1}: {seconds[-1]:.2f} s, status {status}, "
                  f"engine {(run['summary'] or {}).get('engine')}, "
                  f"{len(project.predictions(str(model_dir), 'A01.tif'))} objects stored")
        jobs.shutdown_workers()
    print(f"Predict 'this image' (8000², 10,000 objects), submit -> done: median "
          f"{statistics.median(seconds):.2f} s over {len(seconds)}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
