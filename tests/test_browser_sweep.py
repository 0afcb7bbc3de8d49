"""Issue 16, item 4 in a real browser: two runs compared, and a 2 × 2 sweep started from the
Train page whose four runs train one after another and fill the sweep's grid."""

import json
import time

import pytest

from svetlana_core.demo import create_demo
from tests.browser_server import app_server, browser_page, chromium_missing
from tests.builders import model_meta

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(chromium_missing() is not None,
                                 reason=chromium_missing() or "")]


def _finished(project, name, lr, scores):
    folder = project.models_dir / name
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps(model_meta(metrics={"macro_f1": scores[-1]})))
    run = project.create_run("train", {"kind": "cnn", "config": {"arch": "cnn", "lr": lr}})
    for epoch, score in enumerate(scores, 1):
        project.add_epoch(run, epoch, {"macro_f1": score, "val_loss": 1 - score})
    project.update_run(run, status="done", model_dir=str(folder), summary={"macro_f1": scores[-1]})
    return run


@pytest.mark.slow
def test_compare_two_runs_then_a_two_by_two_sweep(tmp_path):
    project = create_demo(tmp_path / "projects" / "demo")
    first = _finished(project, "a", 0.002, [0.4, 0.6])
    second = _finished(project, "b", 0.01, [0.5, 0.7])
    with app_server(tmp_path) as url, browser_page() as page:
        page.goto(f"{url}/train?project=demo")
        page.get_by_role("heading", name="Train", exact=True).wait_for()
        page.get_by_text("Compare runs").click()
        page.get_by_text("Settings that differ").wait_for()
        page.locator(".js-plotly-plot").get_by_text(f"run {first}").first.wait_for()
        page.locator(".js-plotly-plot").get_by_text(f"run {second}").first.wait_for()

        epochs = page.get_by_label("Epochs")  # a quick sweep: one epoch a cell
        epochs.fill("1")
        epochs.press("Enter")
        page.wait_for_timeout(1000)
        page.get_by_text("Sweep: one run per cell").click()
        values = page.get_by_label("Values (comma-separated)")
        values.fill("1, 2")
        values.press("Enter")
        second_values = page.get_by_label("Values", exact=True)
        second_values.fill("4, 8")
        second_values.press("Enter")
        page.get_by_role("button", name="Start the sweep (4 runs, one after another)").click()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            runs = project.runs()
            cells = runs[runs["config"].str.contains('"sweep"')]
            if len(cells) == 4 and cells["status"].isin(["done", "failed", "stopped"]).all():
                break
            time.sleep(1)
        assert cells["status"].tolist() == ["done"] * 4, cells[["status", "error"]]
        page.get_by_text("Validation macro-F1 per cell").wait_for(timeout=30_000)
