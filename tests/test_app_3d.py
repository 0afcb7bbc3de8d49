"""Objects of a 3D stack on the Predict page (issue 13, item 3): the object as a 3D surface
with its neighbours, its orthogonal planes, a plane slider through its Grad-CAM patch, and
the doubtful objects as projections."""

import numpy as np
import pandas as pd
import pytest
import tifffile

from svetlana_core import predict, training
from svetlana_core.store import Project
from tests.builders import app_test, ball_mask
from ui import volume

CENTRES = [(8, 8, 8), (8, 8, 24), (8, 24, 8), (8, 24, 24), (20, 8, 8), (20, 8, 24),
           (20, 24, 8), (20, 24, 24)]


def _stack():
    """Balls of two sizes (the class) in a 28 × 32 × 32 stack, an image of their mask."""
    radii = [3 if k % 2 else 5 for k in range(len(CENTRES))]
    mask = ball_mask((28, 32, 32), CENTRES, radii, range(1, 9))
    return (mask > 0).astype(np.uint8)[None] * 200, mask


@pytest.fixture
def stack_project(data_root):
    image, mask = _stack()
    folder = data_root / "stacks"
    folder.mkdir()
    tifffile.imwrite(folder / "s.tif", image[0])
    tifffile.imwrite(folder / "s_mask.tif", mask)
    project = Project.create(data_root / "projects" / "stacks")
    project.add_image(folder / "s.tif", folder / "s_mask.tif", axes="ZYX")
    for name in ("big", "small"):
        project.add_class(name)
    labels = pd.DataFrame({"label": range(1, 9), "class": ["big", "small"] * 4})
    project.annotate_many([("s.tif", int(r.label), r["class"]) for _, r in labels.iterrows()],
                          author="t")
    config = training.TrainConfig(arch_params={"depth": 1, "width": 4}, patch_size=16,
                                  epochs=2, batch_size=8, device="cpu", val_fraction=0)
    dataset = training.build_samples([("s.tif", image.astype(np.float32), mask, labels)], config)
    model_dir = project.models_dir / "m"
    training.train(dataset, config, out_dir=model_dir)
    run = project.create_run("train", {"kind": "cnn", "config": config.to_dict()})
    project.update_run(run, status="done", model_dir=str(model_dir),
                       summary={"macro_f1": 0.5})
    objects = predict.predict_image(predict.backends.load_for_prediction(model_dir), image,
                                    mask).objects
    project.save_predictions(str(model_dir), "s.tif", objects)
    return project


def test_the_3d_surface_has_the_object_and_its_neighbours():
    _, mask = _stack()
    figure = volume.object_figure(mask, 1)
    names = [trace.name for trace in figure.data]
    assert names == ["object 1", "neighbours"]
    x = np.asarray(figure.data[0].x)
    assert 8 - 5 - 1 <= x.min() and x.max() <= 8 + 5 + 1  # the ball of radius 5 at column 8


def test_orthogonal_planes_cross_at_the_object_centre():
    _, mask = _stack()
    xy, xz, yz = volume.orthogonal_planes(mask, (8, 24, 24))
    assert xy[24, 24] == xz[8, 24] == yz[8, 24] == 4


def test_a_projection_draws_the_object_over_the_others():
    image, mask = _stack()
    flat_image, flat = volume.projected(image, mask, 2)
    assert flat.shape == (32, 32) and flat[8, 24] == 2 and flat_image.shape == (1, 32, 32)
    # the planes from the object table (what the gallery passes) give the same tile
    from svetlana_core.objects import object_table

    row = object_table(mask).set_index("label").loc[2]
    planes = slice(int(row["bbox_plane_start"]), int(row["bbox_plane_stop"]))
    again_image, again = volume.projected(image, mask, 2, planes)
    np.testing.assert_array_equal(again, flat)
    np.testing.assert_array_equal(again_image, flat_image)


def test_the_predict_page_shows_a_3d_object_with_a_plane_slider(stack_project):
    at = app_test("stacks")
    at.run()
    at.switch_page("pages/predict.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.session_state["predict_selected"] = 3
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(h.value == "Object 3 in 3D" for h in at.subheader)
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any('"mesh3d"' in spec for spec in specs)
    slider = at.slider(key="predict_cam_plane_3")
    assert slider.value == 8  # the middle of the 16-plane patch
    slider.set_value(2).run()
    assert not at.exception


def test_guided_mode_on_a_stack_moves_in_z_and_shows_the_object_in_3d(stack_project):
    for label in range(1, 9):  # nothing labelled: guided mode has objects to show
        stack_project.annotate("s.tif", label, None)
    at = app_test("stacks")
    at.run()
    at.switch_page("pages/annotate.py")
    at.run()
    at.segmented_control(key="annotate_mode").set_value("Guided").run()
    assert not at.exception, [e.value for e in at.exception]
    slider = next(s for s in at.slider if s.label == "Plane (z) through the object")
    assert slider.min < slider.value < slider.max  # the centroid's plane, inside the object
    assert any(h.value.endswith("in 3D") for h in at.subheader)
    slider.set_value(slider.min).run()
    assert not at.exception
