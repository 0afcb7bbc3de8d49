"""Views that fit the data, in a real browser (headless Debian Chromium driven by Playwright):
a project of 256² RGB tiles opens on the Annotate page with its canvas drawn wider than the
tile, the class legend visible, and a click on the enlarged canvas labels the object under it.
Skipped, with the reason, where Chromium or playwright is missing."""

import time

import numpy as np
import pytest
import tifffile

from svetlana_core.objects import object_table
from tests.browser_server import app_server, browser_page, chromium_missing, settled_canvas_box
from tests.builders import rgb_tile_project

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(chromium_missing() is not None,
                                 reason=chromium_missing() or "")]


def test_a_256_tile_is_drawn_enlarged_with_its_legend_and_clicks_stay_exact(tmp_path):
    project = rgb_tile_project(tmp_path / "projects" / "tiles", n_images=1)
    image = project.images()["name"].iloc[0]
    table = object_table(np.asarray(tifffile.imread(project.images()["mask_path"].iloc[0])))
    target = table.iloc[20]
    with app_server(tmp_path) as url, browser_page(width=1600, height=1400) as page:
        page.goto(f"{url}/annotate?project=tiles&image={image}")
        box = settled_canvas_box(page)  # sized to its column once the browser reported it
        assert box["width"] > 256 and box["height"] > 256, box  # 512 x 512: enlarged x 2
        legend = page.locator(".svetlana-legend")
        legend.wait_for()
        assert legend.is_visible()
        for name in ("tumour", "immune", "stroma", "no class (contour)"):
            assert name in legend.inner_text()
        assert legend.bounding_box()["y"] > box["y"] + box["height"] - 1  # under the canvas

        time.sleep(0.5)  # let the background image load into Fabric
        scale = box["width"] / 256
        page.mouse.click(box["x"] + (target["centroid_column"] + 0.5) * scale,
                         box["y"] + (target["centroid_row"] + 0.5) * scale)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            labels = project.labels(image).set_index("label")["class"].to_dict()
            if labels:
                break
            time.sleep(0.2)
        assert labels == {int(target["label"]): "tumour"}
