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

TITLES = {"project": "Project", "annotate": "Annotate", "train": "Train", "predict": "Predict",
          "dashboard": "Dashboard"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    project = create_demo(root / "projects" / "demo")
    with app_server(root) as url:
        yield url, project


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
