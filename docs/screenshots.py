"""Regenerate the README screenshots, docs/screenshots/<page>.png, for the five pages and a
small tile on the Annotate page.

Usage (from the repo root)::

    python docs/screenshots.py

What it does, in a fresh data root ``<temp dir>/svetlana-screenshots`` (a fixed path, since the
Project page shows it; emptied at the start, removed at the end unless a step failed):

1. creates the demo project (:func:`svetlana_core.demo.create_demo`);
2. trains a small CNN on it for 3 epochs as a Train-page job
   (:func:`svetlana_core.jobs.submit_training`, so the run has its per-epoch curves), then
   predicts its 4 images as a Predict-page job (:func:`svetlana_core.jobs.submit_prediction`,
   so the predictions are stored and the batch outputs written);
3. serves the app on 127.0.0.1 (``streamlit run app.py``, as the browser tests do), opens each
   page with ``?project=demo`` in headless Debian Chromium (``/usr/bin/chromium``, driven by
   Python playwright; no browser is downloaded) and waits for what the page draws (headings,
   images, the annotation canvas, plotly charts, no animation running). Train is opened on the
   run (``&run=<id>``) with its Settings unfolded (the patch-preview tiles) and set to what the
   run was trained with; Dashboard shows the fraction of elongated cells per well (every demo
   well has 36 objects, so the default count map is one colour);
4. grows the viewport to the page's content height (Streamlit scrolls an inner container, so a
   "full page" screenshot would only show the viewport) and saves docs/screenshots/<page>.png,
   1400 pixels wide, re-encoded with Pillow's ``optimize=True`` (and with a 256-colour palette
   where that is still over 400 kB).

Everything is seeded (the demo, the split, the weights; training runs on the CPU), so a rerun
gives the same pages; only the run's timestamps and model folder name change. Takes about 30 s
on a 2-core CPU. Exits with status 2 and a message if Chromium or playwright is missing, 1 if a
step fails (the data root with the server log is then kept).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
WIDTH = 1400
#: Viewport height while a page loads; the shot is then as tall as the page's content,
#: at least MIN_HEIGHT and at most MAX_HEIGHT.
START_HEIGHT, MIN_HEIGHT, MAX_HEIGHT = 1500, 1000, 3200
EPOCHS = 3
#: The Train page's default settings, but a smaller CNN (3 conv blocks of 16 filters) and
#: batches of 8: the demo has only 24 training objects, and 3 epochs of one batch of 64 learn
#: next to nothing (validation macro-F1 0.38 instead of 0.75). On the CPU, so that the run is
#: the same on any machine; it takes a few seconds.
TRAIN_CONFIG = {"arch": "cnn", "arch_params": {"depth": 3, "width": 16}, "patch_size": None,
                "patch_mode": "context", "epochs": EPOCHS, "lr": 2e-3, "batch_size": 8,
                "val_fraction": 0.2, "augment": {"flips": True, "rot90": True, "transforms": []},
                "class_weights": "sqrt", "max_minutes": None, "seed": 0, "device": "cpu"}

sys.path.insert(0, str(ROOT))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


class ScreenshotError(RuntimeError):
    """A step failed; the message says which and why."""


# --------------------------------------------------------------------------------------------
# the demo project with a trained model and its predictions


def make_demo(data_root: Path):
    """The demo project under ``data_root/projects/demo``, trained and predicted.

    Returns ``(project, train_run_id)``.
    """
    from svetlana_core import jobs
    from svetlana_core.demo import create_demo

    project = create_demo(data_root / "projects" / "demo")
    started = time.monotonic()
    run_id = jobs.submit_training(project.folder, TRAIN_CONFIG)
    status = jobs.wait(project.folder, run_id, timeout=300)
    record = project.run(run_id)
    if status != "done" or not record.get("model_dir"):
        raise ScreenshotError(f"training run {run_id} ended {status!r}: {record.get('error')}")
    print(f"  trained {EPOCHS} epochs in {time.monotonic() - started:.0f} s "
          f"(macro-F1 {(record.get('summary') or {}).get('macro_f1', float('nan')):.3f})")

    started = time.monotonic()
    model_dir = record["model_dir"]
    out_dir = project.outputs_dir / Path(model_dir).name  # where the Predict page looks
    predict_id = jobs.submit_prediction(project.folder, model_dir,
                                        {"kind": "project", "images": None}, out_dir)
    status = jobs.wait(project.folder, predict_id, timeout=300)
    predicted = project.predictions(model_dir)
    n_images = len(project.images())
    if status != "done" or predicted["image"].nunique() != n_images:
        raise ScreenshotError(f"prediction run {predict_id} ended {status!r} with "
                              f"{predicted['image'].nunique()} of {n_images} images: "
                              f"{project.run(predict_id).get('error')}")
    print(f"  predicted {n_images} images ({len(predicted)} objects) in "
          f"{time.monotonic() - started:.0f} s")
    return project, run_id


#: A real small tile for the enlarged view with its legend (issue 12): one 256² CoNSeP H&E
#: tile, when ../shared/data is there; else the synthetic RGB tiles of tests/builders.py.
CONSEP = ROOT.parent / "shared" / "data" / "consep_train_tiles"
TILE = "train_1_000.png"


def make_tiles(data_root: Path) -> str:
    """A project ``tiles`` of one small RGB tile, a third of its nuclei labelled with their
    known classes; returns the image name."""
    import pandas as pd

    from svetlana_core.store import Project

    folder = data_root / "projects" / "tiles"
    if not (CONSEP / "images" / TILE).exists():
        from tests.builders import rgb_tile_project

        project = rgb_tile_project(folder, n_images=1)
        name = project.images()["name"].iloc[0]
        project.annotate_many([(name, k, ("tumour", "immune", "stroma")[k % 3])
                               for k in range(1, 13)], author="screenshots")
        return name
    project = Project.create(folder)
    truth = pd.read_csv(CONSEP / "objects.csv")
    truth = truth[truth["image"] == TILE]
    for name in sorted(truth["class"].unique()):
        project.add_class(name)
    project.add_image(CONSEP / "images" / TILE, CONSEP / "masks" / TILE.replace(".png", ".tif"))
    shown = truth.iloc[::3]
    project.annotate_many([(TILE, int(r.label), r["class"]) for _, r in shown.iterrows()],
                          author="screenshots")
    return TILE


# --------------------------------------------------------------------------------------------
# waiting for a page and taking its picture

#: True once Streamlit has finished running the script, nothing is animating, every image
#: has loaded, every plotly chart is drawn, and the fonts are in.
_SETTLED_JS = """() => {
    const widget = document.querySelector("[data-testid='stStatusWidget']");
    if (widget && /running|connecting/i.test(widget.innerText)) return false;
    if (document.querySelector("[data-testid='stSkeleton']")) return false;
    // an expander opening or closing animates its height
    if (document.querySelector("[data-testid='stExpander'] details[style*='height']"))
        return false;
    if (document.fonts && document.fonts.status !== 'loaded') return false;
    // CSS transitions and finite animations (a fading mode bar, a folding expander) are over
    for (const a of document.getAnimations()) {
        const timing = a.effect && a.effect.getComputedTiming();
        if (a.playState === 'running' && timing && timing.iterations !== Infinity) return false;
    }
    for (const img of document.querySelectorAll("[data-testid='stMain'] img"))
        if (!img.complete || img.naturalWidth === 0) return false;
    for (const plot of document.querySelectorAll('.js-plotly-plot'))
        if (!plot._fullLayout || !plot.querySelector('.main-svg')) return false;
    return true;
}"""

#: Height the page needs to show everything in the main column without scrolling.
_CONTENT_HEIGHT_JS = """() => {
    const main = document.querySelector("[data-testid='stMain']");
    const block = document.querySelector("[data-testid='stMainBlockContainer']");
    if (!main || !block) return document.documentElement.scrollHeight;
    const top = main.getBoundingClientRect().top;
    const bottom = block.getBoundingClientRect().bottom + main.scrollTop;
    return Math.ceil(bottom - top);
}"""


def _settle(page) -> None:
    page.wait_for_function(_SETTLED_JS, polling=100)
    # two animation frames: what was laid out last is painted
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                  "requestAnimationFrame(r)))")


def _heading(page, name: str) -> None:
    page.get_by_role("heading", name=name, exact=True).first.wait_for()


def _canvas_painted(page) -> None:
    """The annotation canvas exists and its background (the image with contours and class
    fills) has been drawn into it by Fabric."""
    canvas = page.locator("canvas.lower-canvas").first
    canvas.wait_for()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lit = canvas.evaluate("""c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4 * 97) if (d[i] + d[i + 1] + d[i + 2] > 60) n++;
            return n; }""")
        if lit > 50:
            return
        page.wait_for_timeout(100)
    raise ScreenshotError("the Annotate canvas never drew its background image")


def _plots(page, n: int) -> None:
    page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {n}",
                           polling=100)


def _project_ready(page) -> None:
    _heading(page, "Images of demo")
    _heading(page, "Preview")
    # data frames are drawn on a canvas; their hidden accessible table holds the text
    page.get_by_text("demo_B02.png").first.wait_for(state="attached")
    page.locator("[data-testid='stMain'] [data-testid='stImage'] img").first.wait_for()


def _annotate_ready(page) -> None:
    page.get_by_text("round (", exact=False).first.wait_for()
    _canvas_painted(page)


def _slider_to(page, label: str, value: str, key: str) -> None:
    """Move a (select) slider with the keyboard until its thumb shows ``value``."""
    slider = page.locator("[data-testid='stSlider']").filter(has_text=label)
    thumb, shown = slider.get_by_role("slider"), slider.locator(
        "[data-testid='stSliderThumbValue']")
    for _ in range(10):
        if shown.inner_text().strip() == value:
            return
        thumb.press(key)
        _settle(page)
    raise ScreenshotError(f"the {label!r} slider of the Train page did not reach {value}")


def _train_ready(page) -> None:
    page.get_by_text(f"done · {EPOCHS} epoch(s)").first.wait_for()
    _heading(page, "Validation of the kept model")
    _heading(page, "Runs")
    _plots(page, 2)  # the curves and the confusion matrix
    # the settings start folded when the URL names a run: open them for the patch preview,
    # and set them to what the run was trained with (the form shows its defaults)
    settings = page.locator("[data-testid='stExpander'] summary").filter(has_text="Settings").first
    settings.click()
    page.get_by_text("Patches as the network sees them").wait_for()
    _settle(page)
    epochs = page.get_by_label("Epochs")
    epochs.fill(str(TRAIN_CONFIG["epochs"]))
    epochs.press("Enter")
    _settle(page)
    _slider_to(page, "Width (filters)", str(TRAIN_CONFIG["arch_params"]["width"]), "ArrowLeft")
    _slider_to(page, "Batch size", str(TRAIN_CONFIG["batch_size"]), "ArrowLeft")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    # a slider moved with the keys keeps its min/max labels until the mouse has left it
    for slider in page.locator("[data-testid='stSlider']").all():
        slider.hover()
    page.mouse.move(0, 0)
    page.wait_for_function("""() => [...document.querySelectorAll(
        "[data-testid='stSliderTickBar']")].every(t => getComputedStyle(t).opacity === '0')""",
                           polling=100)
    page.locator("[data-testid='stExpander'] [data-testid='stImage'] img").first.wait_for()


def _predict_ready(page) -> None:
    page.get_by_text("round:").first.wait_for()  # the class counts beside the image
    page.locator("[data-testid='stMain'] [data-testid='stImage'] img").first.wait_for()
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    page.get_by_role("button", name="Download objects.csv").wait_for()


def _dashboard_ready(page) -> None:
    _heading(page, "Per image")
    _heading(page, "Per well")
    _plots(page, 1)  # the plate heat map
    page.get_by_role("button", name="Download counts per well (CSV)").wait_for()
    # every demo well has 36 objects: show the fraction of elongated cells, which differs
    # (the class first: for "all objects" the Metric choice is disabled)
    _settle(page)
    page.locator("[data-testid='stSelectbox']").filter(has_text="Class").click()
    page.get_by_role("option", name="elongated", exact=True).click()
    page.locator(".js-plotly-plot").get_by_text("n_elongated").first.wait_for()
    _settle(page)
    page.locator("[data-testid='stRadio']").filter(has_text="Metric").get_by_text(
        "fraction", exact=True).click()
    page.locator(".js-plotly-plot").get_by_text("frac_elongated").first.wait_for()
    page.evaluate("() => document.activeElement && document.activeElement.blur()")


#: Largest PNG kept lossless; a bigger one is saved with a 256-colour palette instead (fine for
#: the flat UI and the demo's cells, but it bands colour scales, so only when needed).
MAX_BYTES = 400_000


def _save_png(png: bytes, path: Path) -> int:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=True)
    if path.stat().st_size > MAX_BYTES:
        palette = image.quantize(256, method=Image.Quantize.FASTOCTREE,
                                 dither=Image.Dither.NONE)
        palette.save(path, format="PNG", optimize=True)
    return path.stat().st_size


def shoot(page, url: str, path: Path, ready) -> None:
    """Open ``url``, wait with ``ready`` and for the page to settle, grow the viewport to the
    content and save the screenshot to ``path``."""
    page.set_viewport_size({"width": WIDTH, "height": START_HEIGHT})
    page.goto(url)
    ready(page)
    _settle(page)
    height = min(max(page.evaluate(_CONTENT_HEIGHT_JS), MIN_HEIGHT), MAX_HEIGHT)
    page.set_viewport_size({"width": WIDTH, "height": height})
    _settle(page)
    # the new height may need a little more (a scroll bar gone, a chart redrawn wider)
    needed = min(max(page.evaluate(_CONTENT_HEIGHT_JS), MIN_HEIGHT), MAX_HEIGHT)
    if needed > height:
        page.set_viewport_size({"width": WIDTH, "height": needed})
        _settle(page)
    page.evaluate("() => { const m = document.querySelector(\"[data-testid='stMain']\");"
                  " if (m) m.scrollTop = 0; }")
    # no hover effects (the plotly mode bar, the sidebar's collapse button): the mouse in the
    # empty bottom-right corner
    page.mouse.move(page.viewport_size["width"] - 2, page.viewport_size["height"] - 2)
    _settle(page)
    size = _save_png(page.screenshot(), path)
    shape = page.viewport_size
    print(f"  wrote {path.relative_to(ROOT)} ({shape['width']}×{shape['height']}, "
          f"{size / 1024:.0f} KB)")


def _tile_ready(page) -> None:
    _canvas_painted(page)
    page.get_by_text("no class (contour)").first.wait_for()  # the legend under the canvas


def take_screenshots(data_root: Path, run_id: int, tile: str) -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser_server import CHROMIUM, CHROMIUM_ARGS, app_server

    shots = [
        # the Project page is the default page: its address is "/" ("/project" says
        # "Page not found" in a dialog, then shows the main page anyway)
        ("project", "?project=demo", _project_ready),
        ("annotate", "annotate?project=demo", _annotate_ready),
        ("train", f"train?project=demo&run={run_id}", _train_ready),
        ("predict", "predict?project=demo", _predict_ready),
        ("dashboard", "dashboard?project=demo", _dashboard_ready),
        # a 256² tile enlarged to fill the canvas, with the class legend
        ("annotate_tile", f"annotate?project=tiles&image={tile}", _tile_ready),
    ]
    with app_server(data_root) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": START_HEIGHT},
                                    device_scale_factor=1)
            page.set_default_timeout(60_000)
            page.goto(url)  # a first visit of "/" so later deep links run through app.py
            _heading(page, "Project")
            for name, path, ready in shots:
                shoot(page, f"{url}/{path}", OUT / f"{name}.png", ready)
                errors = page.locator("[data-testid='stException']").all_inner_texts()
                if errors:
                    raise ScreenshotError(f"the {name} page shows an exception: {errors[0]}")
        finally:
            browser.close()


def main() -> int:
    from tests.browser_server import chromium_missing

    missing = chromium_missing()
    if missing:
        print(f"screenshots.py: cannot take screenshots: {missing}", file=sys.stderr)
        return 2
    started = time.monotonic()
    data_root = Path(tempfile.gettempdir()) / "svetlana-screenshots"
    shutil.rmtree(data_root, ignore_errors=True)
    data_root.mkdir(parents=True)
    try:
        print(f"demo project in {data_root}")
        _, run_id = make_demo(data_root)
        tile = make_tiles(data_root)
        print("screenshots")
        take_screenshots(data_root, run_id, tile)
    except Exception as error:  # noqa: BLE001 - one clear line after the traceback
        if not isinstance(error, ScreenshotError):
            import traceback

            traceback.print_exc()
        print(f"screenshots.py: failed: {str(error).splitlines()[0] if str(error) else error!r}"
              f"\n(the data root and the server log are kept in {data_root})", file=sys.stderr)
        return 1
    finally:
        from svetlana_core import jobs

        jobs.shutdown_workers()
    shutil.rmtree(data_root, ignore_errors=True)
    print(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
