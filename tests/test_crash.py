"""Crash safety: a SIGKILL of the app server loses no acknowledged label, and a killed batch
prediction resumes without redoing the images it finished. (A killed training worker is tested
in tests/jobs/test_jobs_worker.py.)"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from svetlana_core.demo import create_demo
from svetlana_core.store import Project
from tests.browser_server import app_server, browser_page, chromium_missing
from svetlana_core import models
from svetlana_core.predict.resume import _outputs

ROOT = Path(__file__).resolve().parents[1]
GUIDED_CAPTION = re.compile(r"object (\d+) · (\d+) of (\d+) labelled")


def _integrity(project: Project) -> str:
    with closing(sqlite3.connect(project.db_path)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


# ------------------------------------------------------------------ the app server


def _label_in_guided_mode(page, classes: list[str], n: int) -> tuple[dict[int, str], int]:
    """Label ``n`` objects in guided mode; returns what the app acknowledged, and the total.

    The app shows the next object, with one more labelled, only after the store committed the
    label: that is the acknowledgement a user sees.
    """
    caption = page.get_by_text(GUIDED_CAPTION)
    acknowledged: dict[int, str] = {}
    for k in range(n):
        label, done, total = map(int, GUIDED_CAPTION.search(caption.inner_text()).groups())
        key, name = str(k % len(classes) + 1), classes[k % len(classes)]
        if k % 2:
            page.keyboard.press(key)  # the class's shortcut
        else:
            page.get_by_role("button", name=f"{key} · {name}").click()
        page.get_by_text(re.compile(rf"· {done + 1} of {total} labelled")).wait_for()
        acknowledged[label] = name
    return acknowledged, total


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")
def test_sigkill_of_the_server_loses_no_acknowledged_label(tmp_path):
    project = create_demo(tmp_path / "projects" / "demo")
    image = "demo_A01.png"
    annotate = f"/annotate?project=demo&image={image}"
    classes = project.classes()["name"].tolist()
    before = len(project.labels(image))
    with browser_page() as page:
        with app_server(tmp_path, with_process=True) as (url, server):
            page.goto(url + annotate)
            page.get_by_text("Guided", exact=True).click()
            acknowledged, total = _label_in_guided_mode(page, classes, 4)
            page.keyboard.press("1")  # one more label in flight when the server dies
            time.sleep(0.05)
            os.kill(server.pid, signal.SIGKILL)
            assert server.wait(timeout=30) == -signal.SIGKILL

        project = Project.open(project.folder)
        assert _integrity(project) == "ok"
        labels = project.labels(image).set_index("label")
        assert {label: labels.loc[label, "class"] for label in acknowledged} == acknowledged
        assert set(labels.loc[list(acknowledged), "source"]) == {"guided"}
        assert len(labels) - before - len(acknowledged) in (0, 1)  # 1: the one in flight

        # A new server on the same data root opens the project and shows the same counts.
        counts = project.label_counts(image).set_index("class")["n"]
        with app_server(tmp_path) as url:
            page.goto(url + annotate)
            for name in classes:  # the class picker shows each class's count on this image
                page.get_by_text(f"{name} ({counts.get(name, 0)})", exact=True).wait_for()
            page.get_by_text("Guided", exact=True).click()
            page.get_by_text(re.compile(rf"· {len(labels)} of {total} labelled")).wait_for()
    assert _integrity(project) == "ok"


# ------------------------------------------------------------------ batch prediction

N_IMAGES = 8
FAST = {"arch_params": {"depth": 1, "width": 4}, "patch_size": 16, "epochs": 1,
        "batch_size": 16, "device": "cpu", "patience": None, "val_fraction": 0.25}


def _disks(size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """A grey image with bright and dark disks on a grid, its mask and each disk's class."""
    rng = np.random.default_rng(seed)
    rows, columns = np.ogrid[:size, :size]
    image = rng.normal(300, 20, (size, size)).clip(0).astype(np.uint16)
    mask = np.zeros((size, size), np.uint16)
    labels = []
    centres = [(r, c) for r in range(8, size, 16) for c in range(8, size, 16)]
    for i, (r, c) in enumerate(centres):
        disk = (rows - r) ** 2 + (columns - c) ** 2 <= 25
        mask[disk] = i + 1
        name = "bright" if rng.random() < 0.5 else "dark"
        image[disk] = 1200 if name == "bright" else 50
        labels.append((i + 1, name))
    return image, mask, labels


@pytest.fixture(scope="module")
def plate(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Eight images of 128 × 128 with 64 disks each, and a tiny CNN trained on them."""
    from svetlana_core import training

    folder = tmp_path_factory.mktemp("plate")
    images, masks = folder / "images", folder / "masks"
    images.mkdir()
    masks.mkdir()
    rows = []
    for k in range(N_IMAGES):
        image, mask, labels = _disks(128, seed=k)
        name = f"plate1_A{k + 1:02d}.tif"
        tifffile.imwrite(images / name, image)
        tifffile.imwrite(masks / name, mask)
        rows += [(name, label, cls) for label, cls in labels]
    pd.DataFrame(rows, columns=["image", "label", "class"]).to_csv(folder / "labels.csv",
                                                                    index=False)
    config = training.TrainConfig.from_dict(FAST)
    dataset = training.dataset_from_folders(images, masks, folder / "labels.csv", config)
    run = training.train(dataset, config, out_dir=folder / "model")
    return images, masks, Path(run.model_dir)


# The prediction in a child process that reports each finished image on stdout. From the 3rd
# image on it pauses after each report, so that the test's kill lands before the last image
# even on a busy machine (an image takes ~30 ms here).
_PREDICT = textwrap.dedent("""
    import sys
    import time
    from svetlana_core import io
    from svetlana_core.predict import predict_many

    def progress(n, total, name):
        print(n, name, flush=True)
        if n >= 3:
            time.sleep(0.3)

    model, images, masks, out = sys.argv[1:]
    result = predict_many(model, io.pair_files(images, masks), out, device="cpu",
                          progress=progress, confidence_map=True)
    print("result", len(result.done), len(result.skipped), len(result.failed), flush=True)
""")


@pytest.mark.slow
def test_killed_batch_prediction_resumes_without_redoing_finished_images(plate, tmp_path):
    from svetlana_core import io
    from svetlana_core import predict

    images, masks, model_dir = plate
    pairs = io.pair_files(images, masks)
    names, stems = [pair.image.name for pair in pairs], [pair.stem for pair in pairs]
    out = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-c", _PREDICT, str(model_dir), str(images), str(masks), str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})
    try:
        reported = 0
        while reported < 3:
            line = child.stdout.readline()
            assert line and not line.startswith("result"), "the prediction ended before the kill"
            reported = int(line.split()[0])
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    finished = sorted(marker.stem for marker in (out / "done").glob("*.json"))
    assert 3 <= len(finished) < N_IMAGES and finished == stems[:len(finished)]
    assert not (out / "objects.csv").exists()  # the combined tables come last

    # The states a kill in the middle of an image leaves, made deterministic here:
    # * killed between an image's last output and its marker (written last): all its outputs
    #   are there but it is not finished;
    # * killed in the middle of a write (about one run in eight above): a hidden temporary file
    #   beside the output it was to become, never a half-written file under an output's name.
    interrupted = finished.pop()
    (out / "done" / f"{interrupted}.json").unlink()
    unstarted = stems[len(finished) + 1]
    (out / "class_maps" / f".{unstarted}.tif.k1ll3d00.tmp").write_bytes(b"II*\x00 half")
    (out / f".objects.csv.{'0' * 32}.tmp").write_text("image,well,lab")
    stamps = {path: path.stat().st_mtime_ns
              for stem in finished for path in _outputs(out, stem).values()}

    result = predict.predict_many(model_dir, pairs, out, device="cpu", confidence_map=True)
    assert result.skipped == names[:len(finished)]
    assert result.done == names[len(finished):] and result.failed == {}
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps  # not written again

    # Every output is complete and equals a fresh prediction; no stray file is left.
    model = models.load_predictor(model_dir, device="cpu")
    for sub, suffix in (("class_maps", "tif"), ("confidence", "tif"), ("objects", "csv"),
                        ("done", "json")):
        assert sorted(p.name for p in (out / sub).iterdir()) == [f"{s}.{suffix}" for s in stems]
    combined = pd.read_csv(out / "objects.csv")
    for pair in pairs:
        image, mask = io.load_pair(pair.image, pair.mask)
        expected = predict.predict_image(model, image, mask)
        np.testing.assert_array_equal(tifffile.imread(out / "class_maps" / f"{pair.stem}.tif"),
                                      expected.class_map)
        np.testing.assert_array_equal(tifffile.imread(out / "confidence" / f"{pair.stem}.tif"),
                                      expected.confidence_map)
        table = pd.read_csv(out / "objects" / f"{pair.stem}.csv")
        assert table["label"].tolist() == expected.objects["label"].tolist() == list(range(1, 65))
        assert table["class"].tolist() == expected.objects["class"].tolist()
        marker = json.loads((out / "done" / f"{pair.stem}.json").read_text())
        assert marker["n_objects"] == 64
        assert combined.query("image == @pair.image.name")["class"].tolist() == (
            expected.objects["class"].tolist())
    assert len(combined) == N_IMAGES * 64
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "counts_per_image.csv", "counts_per_well.csv", "objects.csv", "objects.parquet",
        "results.xlsx"]
