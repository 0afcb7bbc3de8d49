"""svetlana_core.explain.heatmap: the heat map drawn over its patch, as an array and a PNG."""

import imageio.v3 as iio
import numpy as np
import pytest

from svetlana_core import explain
from svetlana_core.errors import InputError
from tests.builders import random_patch


def test_save_heatmap_png(tmp_path):
    patch = random_patch((2, 32, 32))
    heat = np.zeros((32, 32), np.float32)
    heat[:8, :8] = 1.0
    path = explain.save_heatmap_png(tmp_path / "heat.png", patch, heat)
    picture = iio.imread(path)
    assert picture.shape == (256, 256, 3) and picture.dtype == np.uint8
    hot, cold = picture[8, 8].astype(int), picture[200, 8].astype(int)
    assert hot[0] > hot[2] and abs(cold[0] - cold[2]) <= 1  # red where hot, grey where cold
    outline = np.all(picture == 255, axis=-1)
    assert outline[120:136].any()  # the object's outline crosses the middle rows
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_save_heatmap_png_3d_shows_the_middle_plane(tmp_path):
    patch = random_patch((1, 8, 16, 16))
    heat = np.zeros((8, 16, 16), np.float32)
    heat[4] = 1.0
    picture = iio.imread(explain.save_heatmap_png(tmp_path / "h.png", patch, heat))
    assert picture.shape == (256, 256, 3)
    inside = ~np.all(picture == 255, axis=-1)
    assert (picture[inside][:, 0] > picture[inside][:, 2]).all()  # all hot on plane 4


def test_save_heatmap_png_refuses_a_heat_map_of_another_shape(tmp_path):
    with pytest.raises(InputError, match=r"heat has shape \(16, 16\) but patch has shape"):
        explain.save_heatmap_png(tmp_path / "h.png", np.zeros((2, 32, 32)), np.zeros((16, 16)))
    with pytest.raises(InputError, match="does not exist"):
        explain.save_heatmap_png(tmp_path / "no" / "h.png", random_patch((2, 32, 32)),
                                 np.zeros((32, 32)))


def test_the_png_holds_the_picture_of_heatmap_rgb(tmp_path):
    patch = random_patch((2, 16, 16), seed=3)
    heat = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    picture = explain.heatmap_rgb(patch, heat, alpha=0.7, min_side=40)
    assert picture.shape == (48, 48, 3) and picture.dtype == np.uint8  # 16 x 3 >= 40
    saved = iio.imread(explain.save_heatmap_png(tmp_path / "h.png", patch, heat, 0.7, 40))
    np.testing.assert_array_equal(saved, picture)
    with pytest.raises(InputError, match=r"heat has shape \(4, 4\) but patch has shape"):
        explain.heatmap_rgb(patch, np.zeros((4, 4)))
