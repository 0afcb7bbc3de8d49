"""One real lasso on the object map in Chromium labels the objects it encloses (issue 15).
Skipped where Chromium is missing."""

import re
import time

import pytest

from svetlana_core.demo import create_demo
from tests.browser_server import app_server, browser_page, chromium_missing

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(chromium_missing() is not None,
                                 reason=chromium_missing() or "")]


def test_a_lasso_on_the_map_labels_the_objects_it_encloses(tmp_path):
    project = create_demo(tmp_path / "projects" / "demo")
    image = project.images()["name"].iloc[0]
    first_class = project.classes()["name"].iloc[0]
    with app_server(tmp_path) as url, browser_page() as page:
        page.goto(f"{url}/object_map?project=demo&image={image}")
        caption = page.get_by_text(re.compile(r"^\d+ objects · 0 selected"))
        caption.wait_for()
        total = int(caption.inner_text().split()[0])
        chart = page.locator("[data-testid='stPlotlyChart']").first
        area = chart.locator(".nsewdrag").first
        area.wait_for()
        box = area.bounding_box()
        # A lasso around the whole plotting area: every point of the map.
        corners = [(0.01, 0.01), (0.99, 0.01), (0.99, 0.99), (0.01, 0.99), (0.01, 0.02)]
        page.mouse.move(box["x"] + corners[0][0] * box["width"],
                        box["y"] + corners[0][1] * box["height"])
        page.mouse.down()
        for fx, fy in corners[1:]:
            page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"],
                            steps=12)
        page.mouse.up()
        page.get_by_text(f"{total} objects · {total} selected").wait_for()
        page.get_by_role("button", name="Label selection").click()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            labels = project.labels(image)
            if (labels["source"] == "bulk").sum() == total:
                break
            time.sleep(0.2)
        assert (labels["source"] == "bulk").sum() == total
        assert set(labels["class"]) == {first_class}
