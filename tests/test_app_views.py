"""Views that fit the data, through AppTest: a small RGB tile on the Annotate page is enlarged,
in colour, zoomable and legended, and a click on the enlarged canvas labels the object under
it; the Predict page's legend and colour bar; the class colour pickers of the Project page."""

import base64
import io as bytes_io
import json
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from svetlana_core.objects import object_table
from svetlana_core.store import Project
from tests.builders import app_test, canvas_click, rgb_tile_project

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

WAVE1 = Path(__file__).parent / "fixtures" / "wave1"


@pytest.fixture
def tiles(data_root):
    return rgb_tile_project(data_root / "projects" / "tiles")


def _page(project: str, page: str):
    at = app_test(project)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _legends(at) -> list[str]:
    return [m.value for m in at.markdown if "svetlana-legend" in m.value]


def _canvas(at) -> dict:
    """The canvas's arguments (it is an inert component under AppTest)."""
    return json.loads(at.get("bidi_component")[0].proto.json)


def test_annotate_enlarges_a_256_tile_in_rgb_with_zoom_and_a_legend(tiles):
    at = _page("tiles", "pages/annotate.py")
    args = _canvas(at)
    assert (args["canvasWidth"], args["canvasHeight"]) == (512, 512)
    jpeg = base64.b64decode(args["backgroundImageURL"].split(",", 1)[1])
    picture = np.asarray(Image.open(bytes_io.BytesIO(jpeg)))
    assert picture.shape == (512, 512, 3)
    r, g, b = picture[4, 4].astype(int)  # the pink background, in its colours (not grey)
    assert r > g + 30 and b > g + 10
    assert at.select_slider(key="annotate_view_zoom").options == ["1", "2", "4", "8", "16"]
    assert at.segmented_control(key="annotate_view_colours").value == "RGB"
    assert at.multiselect(key="annotate_view_channels").options == ["red", "green", "blue"]
    [html] = _legends(at)
    for name, colour in tiles.classes()[["name", "colour"]].values:
        assert name in html and colour in html

    at.select_slider(key="annotate_view_zoom").set_value(4).run()  # a 64-px window
    assert not at.exception
    assert _canvas(at)["canvasWidth"] == 64 * 11
    assert at.slider(key="annotate_view_crow").value == 128  # and its pan


def test_a_click_on_the_enlarged_canvas_labels_the_object_under_it(tiles):
    at = _page("tiles", "pages/annotate.py")
    image = tiles.images()["name"].iloc[0]
    mask = np.asarray(Image.open(tiles.images()["mask_path"].iloc[0]))
    target = object_table(mask).iloc[7]
    at.radio(key="annotate_class").set_value("immune").run()
    key = at.session_state["annotate_canvas_key"]
    # canvas pixels are twice the image's: the object's centroid pixel, bottom-right corner
    x, y = 2 * target["centroid_column"] + 1, 2 * target["centroid_row"] + 1
    at.session_state[key] = {
        "drawing": {"raw": {"objects": [canvas_click(x, y)]}, "data": None},
        "backgroundFit": {"naturalWidth": 512, "naturalHeight": 512, "scaleX": 1.0,
                          "scaleY": 1.0, "offsetX": 0.0, "offsetY": 0.0},
    }
    at.run()
    assert not at.exception
    labels = tiles.labels(image).set_index("label")["class"]
    assert labels.to_dict() == {int(target["label"]): "immune"}


def test_the_project_page_colour_picker_recolours_a_class(tiles):
    at = _page("tiles", "pages/project.py")
    pickers = {p.label: p for p in at.color_picker}
    assert list(pickers) == ["tumour", "immune", "stroma"]
    assert pickers["immune"].value == tiles.classes()["colour"].iloc[1]
    pickers["immune"].set_value("#123456").run()
    assert not at.exception
    assert tiles.classes().set_index("name")["colour"]["immune"] == "#123456"
    assert {p.label: p.value for p in at.color_picker}["immune"] == "#123456"


@pytest.fixture
def wave1(data_root):
    folder = data_root / "projects" / "wave1"
    shutil.copytree(WAVE1, folder)
    with sqlite3.connect(folder / "project.sqlite") as conn:
        for table, column in (("images", "path"), ("images", "mask_path"),
                              ("runs", "model_dir"), ("predictions", "model_dir")):
            conn.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)",
                         ("/tmp/svetlana-wave1", str(folder)))
    # the CNN holds the fixture's predictions: the page opens on it
    Project.open(folder).set_current_model(folder / "models" / "cnn_wave1")
    return folder


def test_predict_shows_a_class_legend_then_a_confidence_colour_bar(wave1):
    at = _page("wave1", "pages/predict.py")
    assert len(_legends(at)) == 1, [str(i.value) for i in at.info]
    html = _legends(at)[0]
    assert all(name in html for name in ("round", "elongated", "speckled"))
    assert re.search(r"round \(\d+\)</span>", html)  # with the counts of the objects shown
    # the doubtful gallery's rows are headed by their class's swatch
    assert sum("svetlana-swatch" in m.value for m in at.markdown) > 1
    at.radio(key="predict_colour").set_value("confidence").run()
    assert not at.exception and not _legends(at)
    assert any("svetlana-colour-bar" in m.value for m in at.markdown)


@pytest.mark.slow
def test_predict_draws_gradcam_over_the_patch_in_the_channels_shown(wave1):
    at = _page("wave1", "pages/predict.py")
    at.session_state["predict_selected"] = 5
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(h.value.startswith("Why object 5?") for h in at.subheader)
    captions = [i.caption for image in at.get("image") for i in image.proto.imgs]
    assert "patch" in captions and any(c.startswith("evidence for") for c in captions)
