"""Legends of the coloured views, the default class palette and the class colour editor."""

import itertools
import re

import numpy as np
import pandas as pd
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab

from svetlana_core.errors import InputError
from svetlana_core.store import Project
from svetlana_core.values import PALETTE, default_colours, rgb
from ui import classes as class_edits
from ui import legend, overlay, predictions

CLASSES = pd.DataFrame({"name": ["tumour", "immune", 'say "<b>$5</b>"'],
                        "colour": ["#e69f00", "#56b4e9", "#009e73"]})


def _lab(colour: str) -> np.ndarray:
    return rgb2lab(np.array([[rgb(colour)]], dtype=float) / 255)[0, 0]


def _difference(a: str, b: str) -> float:
    return float(deltaE_ciede2000(_lab(a), _lab(b)))


def test_the_class_legend_names_every_class_in_its_colour():
    html = legend.class_legend_html(CLASSES, {"tumour": 4})
    for name, colour in zip(CLASSES["name"][:2], CLASSES["colour"][:2]):
        assert re.search(f"background:{colour};[^>]*></span>{name} ", html), name
    assert "tumour (4)" in html and "immune (0)" in html  # absent classes count 0
    # a name is text, never markup or a formula
    assert "say &quot;&lt;b&gt;&#36;5&lt;/b&gt;&quot;" in html and "<b>" not in html
    # the yellow contours are explained, as an outline
    assert f"border:2px solid {overlay.CONTOUR_COLOUR}" in html and legend.UNLABELLED in html
    assert html.count("svetlana-swatch") == 4 and "\n\n" not in html  # one HTML block


def test_the_class_legend_without_counts_or_contour_and_with_extra_entries():
    html = legend.class_legend_html(CLASSES[:1], extra={"gone": "#888888"}, contour=None)
    assert "></span>tumour</span>" in html and " (" not in html  # no count
    assert "background:#888888" in html and legend.UNLABELLED not in html


def test_the_confidence_bar_runs_through_the_colours_of_the_confidence_view():
    ramp = predictions.confidence_ramp(5)
    table = pd.DataFrame({"label": [1, 2], "confidence": [0.0, 1.0]})
    assert [ramp[0], ramp[-1]] == list(predictions.confidence_colours(table).values())
    html = legend.colour_bar_html(ramp, "0", "1", "confidence")
    stops = re.findall(r"(#[0-9a-f]{6}) ([\d.]+)%", html)
    assert stops == [(c, f"{100 * k / 4:g}") for k, c in enumerate(ramp)]
    assert ">confidence<" in html and ">0<" in html and ">1<" in html


def test_the_palette_is_twenty_distinct_colours_apart_from_the_contours():
    assert len(PALETTE) == 20 and len(set(PALETTE)) == 20
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in PALETTE)  # as the store keeps them
    # Okabe & Ito's colour-blind-safe colours first (their yellow and black left out)
    assert PALETTE[:6] == ("#e69f00", "#56b4e9", "#009e73", "#0072b2", "#d55e00", "#cc79a7")
    pairs = min(_difference(a, b) for a, b in itertools.combinations(PALETTE, 2))
    assert pairs >= 11, f"two palette colours differ by only {pairs:.1f} (CIEDE2000)"
    for avoided in (overlay.CONTOUR_COLOUR, "#ffffff", "#000000"):
        closest = min(_difference(c, avoided) for c in PALETTE)
        assert closest >= 15, f"a palette colour is {closest:.1f} from {avoided}"
    assert default_colours(["a", "b", "c"]) == dict(zip("abc", PALETTE[:3]))


def test_new_projects_take_the_palette_and_old_ones_keep_their_colours(tmp_path):
    project = Project.create(tmp_path / "p")
    project.add_class("old", "#ffe119")  # the yellow of the previous palette, stored
    project.add_class("new")
    assert project.classes()["colour"].tolist() == ["#ffe119", PALETTE[0]]


def test_class_colours_are_checked_before_any_edit_is_saved(tmp_path):
    project = Project.create(tmp_path / "p")
    project.add_class("live")
    project.add_class("dead")
    classes = project.classes()
    changes = {"edited_rows": {0: {"name": "alive"}, 1: {"colour": "red"}}}
    with pytest.raises(InputError, match=r"colour of class 'dead' must be like #1f77b4, "
                                         r"got 'red'"):
        class_edits.apply_class_edits(project, classes, changes)
    assert project.classes()["name"].tolist() == ["live", "dead"]  # the rename waited
    with pytest.raises(InputError, match=r"class 'new' must be like #1f77b4, got '#12345'"):
        class_edits.check_colours(classes, {"added_rows": [{"name": "new", "colour": "#12345"}]})
    class_edits.apply_class_edits(project, classes, {"edited_rows": {1: {"colour": "#123ABC"}}})
    assert project.classes()["colour"].tolist()[1] == "#123abc"
