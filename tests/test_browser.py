"""The app in a real browser (headless Debian Chromium driven by Playwright), served on
127.0.0.1. Skipped, with the reason, where Chromium or playwright is missing."""

import time

import pytest

from svetlana_core.demo import create_demo
from svetlana_core.objects import object_table
from tests.browser_server import app_server, browser_page, chromium_missing

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(chromium_missing() is not None,
                                 reason=chromium_missing() or "")]

# URL path -> page title. Project is the default page: its address is "/" (a link to
# "/project" gets Streamlit's "Page not found" dialog, then the main page).
TITLES = {"": "Project", "annotate": "Annotate", "train": "Train", "predict": "Predict",
          "dashboard": "Dashboard"}


def test_deep_link_to_every_page_on_a_fresh_server(tmp_path):
    create_demo(tmp_path / "projects" / "demo")
    # A fresh server per page: the first deep link after a start is the risky one.
    for path, title in TITLES.items():
        with app_server(tmp_path) as url, browser_page() as page:
            page.goto(f"{url}/{path}?project=demo")
            page.get_by_role("heading", name=title, exact=True).wait_for()
            page.get_by_text("Svetlana").first.wait_for()  # the sidebar is there too
            assert "Error" not in page.locator("[data-testid='stException']").all_inner_texts()


def test_click_an_object_on_the_canvas_stores_its_label(served):
    url, project = served
    image = "demo_A01.png"
    mask_path = project.images().set_index("name").loc[image, "mask_path"]
    import tifffile

    table = object_table(tifffile.imread(mask_path))
    labelled = set(project.labels(image)["label"])
    target = table[~table["label"].isin(labelled)].iloc[0]
    with browser_page() as page:
        page.goto(f"{url}/annotate?project=demo&image={image}")
        canvas = page.locator("canvas.upper-canvas")
        canvas.wait_for()
        box = canvas.bounding_box()
        time.sleep(0.5)  # let the background image load into Fabric
        page.mouse.click(box["x"] + target["centroid_column"] * box["width"] / 384,
                         box["y"] + target["centroid_row"] * box["height"] / 384)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            labels = project.labels(image).set_index("label")
            if int(target["label"]) in labels.index:
                break
            time.sleep(0.2)
        assert labels.loc[int(target["label"]), "class"] == project.classes()["name"].iloc[0]
        page.get_by_text(f"objects [{int(target['label'])}]").wait_for()


def _points_in_chart(page) -> int:
    """Number of epochs drawn in the first trace of the Train page's curves."""
    return page.evaluate(
        """() => { const plot = document.querySelector('.js-plotly-plot');
                   if (!plot || !plot.calcdata || !plot.calcdata.length) return 0;
                   const first = plot.calcdata[0];
                   // an empty trace still has one placeholder point without x
                   return first.filter(p => p.x !== undefined && p.x !== null).length; }""")


@pytest.mark.slow
def test_train_shows_a_growing_chart_then_predict_and_dashboard(tmp_path):
    project = create_demo(tmp_path / "projects" / "demo")
    with app_server(tmp_path) as url, browser_page() as page:
        page.goto(f"{url}/train?project=demo")
        page.get_by_role("heading", name="Train", exact=True).wait_for()
        epochs = page.get_by_label("Epochs")
        epochs.fill("4")
        epochs.press("Enter")
        page.get_by_role("button", name="Start training").click()
        seen = set()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            seen.add(_points_in_chart(page))
            runs = project.runs()
            if not runs.empty and runs["status"].iloc[-1] in ("done", "failed", "stopped"):
                break
            time.sleep(0.25)
        assert project.runs()["status"].iloc[-1] == "done", project.runs()["error"].iloc[-1]
        page.wait_for_timeout(2500)   # the fragment's last refresh
        seen.add(_points_in_chart(page))
        grown = sorted(n for n in seen if n > 0)
        assert len(grown) >= 2, f"the chart never grew: saw {sorted(seen)} points"

        page.goto(f"{url}/predict?project=demo")
        page.get_by_role("heading", name="Predict", exact=True).wait_for()
        page.get_by_text("all images of the project").click()
        page.get_by_role("button", name="Start prediction").click()
        page.get_by_text("4/4 images").wait_for(timeout=120_000)
        model_dir = project.runs().query("kind == 'train'")["model_dir"].iloc[-1]
        assert len(project.predictions(model_dir)) == 144

        page.goto(f"{url}/dashboard?project=demo")
        page.get_by_role("heading", name="Per well", exact=True).wait_for()
        page.get_by_role("heading", name="Per image", exact=True).wait_for()
