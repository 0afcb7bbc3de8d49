"""The Streamlit app through AppTest: every page renders, and the main flows work with the
custom components' values injected through session state (FIELD-NOTES.md)."""

import json
from pathlib import Path

import pandas as pd
import pytest

from svetlana_core import io
from svetlana_core import stats
from svetlana_core.objects import object_table
from svetlana_core.store import Project
from svetlana_core import plate
from tests.builders import canvas_click
from tests.builders import project_dataset

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["pages/project.py", "pages/annotate.py", "pages/train.py", "pages/predict.py",
         "pages/dashboard.py"]


def _app(project: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if project:
        at.query_params["project"] = project
    return at


def _no_exception(at: AppTest, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"


def _page(project: str | None, page: str, run: int | None = None) -> AppTest:
    """``page`` of ``project`` (None: no project chosen), rendered without an exception;
    ``run``: a run id in the URL, as the Train page keeps it across reloads."""
    at = _app(project)
    if run is not None:
        at.query_params["run"] = str(run)
    at.run()
    at.switch_page(page)
    at.run()
    _no_exception(at, page)
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_a_project(data_root, page):
    _page(None, page)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_project(data_root, page):
    Project.create(data_root / "projects" / "empty")
    _page("empty", page)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_the_demo(demo, page):
    _page("demo", page)


def test_open_demo_button_creates_and_selects_it(data_root):
    at = _app()
    at.run()
    next(b for b in at.button if b.label.startswith("Open the demo")).click()
    at.run()
    _no_exception(at, "project page")
    assert (data_root / "projects" / "demo" / "ground_truth.csv").exists()
    assert at.query_params["project"] == ["demo"] or at.query_params["project"] == "demo"


def test_click_on_object_labels_that_object(demo):
    at = _app("demo")
    at.run()
    at.switch_page("pages/annotate.py")
    at.run()
    _no_exception(at, "annotate")
    image = at.session_state["image"]
    mask_path = demo.images().set_index("name").loc[image, "mask_path"]
    import tifffile

    table = object_table(tifffile.imread(mask_path))
    labelled = set(demo.labels(image)["label"])
    target = table[~table["label"].isin(labelled)].iloc[0]
    click = canvas_click(target["centroid_column"], target["centroid_row"])
    at.radio(key="annotate_class").set_value("speckled")
    at.run()
    key = at.session_state["annotate_canvas_key"]
    at.session_state[key] = {
        "drawing": {"raw": {"objects": [click]}, "data": None},
        "backgroundFit": {"naturalWidth": 384, "naturalHeight": 384, "scaleX": 1.0,
                          "scaleY": 1.0, "offsetX": 0.0, "offsetY": 0.0},
    }
    at.run()
    _no_exception(at, "annotate after click")
    labels = demo.labels(image).set_index("label")
    assert labels.loc[int(target["label"]), "class"] == "speckled"
    assert labels.loc[int(target["label"]), "source"] == "manual"
    # A rerun with the same canvas state does not label the click again.
    demo.annotate(image, int(target["label"]), "round", author="someone else")
    at.run()
    assert demo.labels(image).set_index("label").loc[int(target["label"]), "class"] == "round"


def test_guided_mode_labels_the_shown_object(demo):
    at = _app("demo")
    at.run()
    at.switch_page("pages/annotate.py")
    at.run()
    at.segmented_control(key="annotate_mode").set_value("Guided")
    at.run()
    _no_exception(at, "guided")
    before = len(demo.labels())
    next(b for b in at.button if b.label.startswith("2 · ")).click()
    at.run()
    _no_exception(at, "guided after label")
    after = demo.labels()
    assert len(after) == before + 1
    assert (after["source"] == "guided").sum() == 1


def _fake_model_run(project: Project, name: str = "model-a") -> str:
    """A finished run with a model folder, as the Dashboard and Predict pages list them."""
    folder = project.models_dir / name
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps({"arch": "cnn", "classes": ["round"]}))
    run = project.create_run("train", {"kind": "cnn", "config": {"arch": "cnn"}})
    project.update_run(run, status="done", model_dir=str(folder),
                       summary={"macro_f1": 0.9, "text": "fake"})
    return str(folder)


def test_dashboard_tables_equal_stats(demo, data_root):
    model_dir = _fake_model_run(demo)
    truth = pd.read_csv(data_root / "projects" / "demo" / "ground_truth.csv")
    for image, rows in truth.groupby("image"):
        demo.save_predictions(model_dir, image, rows.assign(confidence=0.9))
    at = _page("demo", "pages/dashboard.py")
    assert not at.error, [e.value for e in at.error]
    shown = at.dataframe[0].value
    images = demo.images()[["name", "well"]].rename(columns={"name": "image"})
    objects = plate.add_wells(demo.predictions(model_dir),
                              dict(zip(images["image"], images["well"])))
    classes = demo.classes()["name"].tolist()
    expected = stats.counts_per_image(objects, classes, images=images)
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), expected.reset_index(drop=True),
                                  check_dtype=False)
    per_well = at.dataframe[-1].value
    assert per_well.set_index("well").loc["A01", "n_round"] == \
        ((truth["image"] == "demo_A01.png") & (truth["class"] == "round")).sum()
    # the fraction of "all objects" would be 1 everywhere: only a class has a fraction
    assert at.radio(key="dash_metric").disabled
    at.selectbox(key="dash_class").set_value("round").run()
    assert not at.radio(key="dash_metric").disabled


@pytest.fixture
def demo_with_model(demo):
    """The demo with a small CNN trained for one epoch and its predictions stored, recorded
    as a finished run (what the Train page's job leaves behind)."""
    from svetlana_core import predict
    from svetlana_core import training

    config = training.TrainConfig(arch_params={"depth": 2, "width": 8}, epochs=1,
                                  batch_size=16, augment=None)
    dataset = project_dataset(demo, config)
    model_dir = demo.models_dir / "tiny"
    result = training.train(dataset, config, out_dir=model_dir)
    run = demo.create_run("train", {"kind": "cnn", "config": config.to_dict()})
    demo.update_run(run, status="done", model_dir=str(model_dir),
                    summary={"macro_f1": result.metrics["macro_f1"], "text": result.summary})
    images = demo.images()
    outcome = predict.predict_many(model_dir, list(zip(images["path"], images["mask_path"])),
                                   demo.outputs_dir / "tiny")
    for name, rows in outcome.objects.groupby("image"):
        demo.save_predictions(str(model_dir), name, rows)
    return demo, str(model_dir), run


@pytest.mark.slow
def test_finished_run_shows_its_metrics_and_predict_shows_gradcam(demo_with_model):
    project, model_dir, run = demo_with_model
    at = _page("demo", "pages/train.py", run=run)
    assert any("Validation of the kept model" in h.value for h in at.subheader)
    assert any(m.label.startswith("Macro-F1 on ") for m in at.metric)  # on N objects

    at.switch_page("pages/predict.py")
    at.run()
    _no_exception(at, "predict")
    labels = [button.proto.label for button in at.get("download_button")]
    assert "Download QuPath GeoJSON" in labels and "Download objects.csv" in labels
    at.session_state["predict_selected"] = 5
    at.run()
    _no_exception(at, "predict with an object selected")
    assert any(h.value.startswith("Why object 5?") for h in at.subheader)


@pytest.mark.slow
def test_a_selected_row_never_points_into_another_table(demo_with_model):
    """The browser audit: with row 30 selected, a shorter table (a class filter, another
    image) raised IndexError on every rerun, or explained another object without a word."""
    from ui import predictions

    project, model_dir, run = demo_with_model
    at = _page("demo", "pages/predict.py")
    image = at.session_state["predict_image"] if "predict_image" in at.session_state else \
        project.images()["name"].iloc[0]
    key = predictions.table_key(image, model_dir, [], 0.0, 1.0)
    at.session_state[key] = {"selection": {"rows": [30], "columns": []}}
    at.run()
    _no_exception(at, "predict with row 30 selected")
    label = at.session_state["predict_selected"]
    assert any(h.value == f"Why object {label}? (Grad-CAM)" for h in at.subheader)
    at.session_state[key] = {"selection": {"rows": [999], "columns": []}}  # past the end
    at.run()
    _no_exception(at, "predict with a row past the end selected")
    shown = project.predictions(model_dir, image)["class"].iloc[0]
    at.multiselect(key="predict_classes").set_value([shown]).run()
    _no_exception(at, "predict filtered to one class")
    assert at.session_state["predict_selected"] == label  # kept, not swapped for another
    other = project.images()["name"].iloc[1]
    at.selectbox(key="predict_image").set_value(other).run()
    _no_exception(at, "predict on another image")
    assert "predict_selected" not in at.session_state
    assert not any(h.value.startswith("Why object") for h in at.subheader)


@pytest.mark.slow
def test_a_failed_run_with_a_checkpoint_shows_its_error_and_its_model_can_predict(
        demo_with_model):
    # what a killed training worker leaves: status failed, the best model so far on disk
    project, model_dir, run = demo_with_model
    error = f"worker died; the best model so far (epoch 1) is kept in {model_dir}"
    project.update_run(run, status="failed", error=error)
    at = _page("demo", "pages/train.py", run=run)
    assert any(error in e.value for e in at.error), [e.value for e in at.error]
    at.switch_page("pages/predict.py")
    at.run()
    _no_exception(at, "predict")
    options = [o for box in at.selectbox for o in box.options]
    assert any("tiny · checkpoint of a failed run" in o for o in options), options


def test_a_random_forest_predicts_on_the_predict_page_and_says_why_no_gradcam(demo):
    """A forest (what train --arch rf and the Train page's baseline leave) is offered on the
    Predict page, its predictions show, and the Grad-CAM panel says it explains CNNs only."""
    from svetlana_core import baseline, predict

    trained = baseline.train_from_labels(demo.training_files()[0], demo.labels(),
                                         n_estimators=10)
    model_dir = trained.model.save(demo.models_dir / "forest")
    run = demo.create_run("train-rf", {"kind": "rf"})
    demo.update_run(run, status="done", model_dir=str(model_dir), summary={"text": "rf"})
    images = demo.images()
    outcome = predict.predict_many(model_dir, list(zip(images["path"], images["mask_path"])),
                                   demo.outputs_dir / "forest")
    assert outcome.engine == "random forest (CPU)"
    for name, rows in outcome.objects.groupby("image"):
        demo.save_predictions(str(model_dir), name, rows)
    at = _page("demo", "pages/predict.py")
    _no_exception(at, "predict with a forest")
    options = [o for box in at.selectbox for o in box.options]
    assert "run 1 · train-rf · forest" in options, options
    at.session_state["predict_selected"] = 5
    at.run()
    _no_exception(at, "predict with a forest and an object selected")
    assert any("is a random forest: Grad-CAM explains a CNN" in i.value for i in at.info)


@pytest.mark.parametrize("value", ["abc", "1e3", "-1", "99999999999999999999999"])
def test_a_hand_typed_run_id_in_the_url_is_ignored(demo_with_model, value):
    """?run=abc or ?run=1e3 on the Train page was a ValueError on every load (issue 10)."""
    at = _app("demo")
    at.query_params["run"] = value
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    _no_exception(at, f"train with ?run={value}")


def test_train_page_previews_labelled_patches_at_the_chosen_size(demo):
    at = _page("demo", "pages/train.py")
    assert any("Patches as the network sees them" in c.value and "automatic" in c.value
               for c in at.caption)
    at.toggle(key="train_auto_patch").set_value(False).run()
    at.number_input(key="train_patch").set_value(24).run()
    _no_exception(at, "train with a fixed patch size")
    caption = next(c.value for c in at.caption if "Patches as the network sees them" in c.value)
    assert "24×24 pixels (set above)" in caption
    images = at.get("image")
    assert len(images) == 1
    labelled = demo.labels(demo.images()["name"].iloc[0])
    assert images[0].captions == [f"{label} · {cls}" for label, cls in
                                  zip(labelled["label"].head(8), labelled["class"].head(8))]


@pytest.mark.slow
def test_gradcam_of_an_object_gone_from_a_changed_mask_is_one_error_line(demo_with_model):
    project, model_dir, run = demo_with_model
    row = project.images().iloc[0]
    mask = io.read_mask(row["mask_path"])
    mask[mask == 5] = 0  # the mask was edited after the prediction: object 5 is gone
    io.write_tiff(row["mask_path"], mask)  # the demo's masks are TIFFs
    at = _page("demo", "pages/predict.py")
    at.session_state["predict_selected"] = 5
    at.run()
    _no_exception(at, "predict with an object that left the mask")
    assert any(e.value.startswith(f"No Grad-CAM for object 5 of {row['name']} with model tiny")
               for e in at.error), [e.value for e in at.error]


def test_a_done_run_whose_model_folder_was_deleted_names_it_on_the_train_page(demo):
    run = demo.create_run("train", {"kind": "cnn", "config": {}})
    gone = demo.models_dir / "deleted"
    demo.update_run(run, status="done", model_dir=str(gone))
    at = _page("demo", "pages/train.py", run=run)
    assert any(str(gone) in e.value for e in at.error), [e.value for e in at.error]


def test_predict_opens_on_the_current_model_not_the_newest_stopped_run(demo_with_model):
    """Issue 12: Predict defaulted to the newest run, a stopped one (macro-F1 0.133), instead
    of the good one; the sidebar's current model is what every page opens on."""
    import shutil

    project, model_dir, run = demo_with_model
    stopped = project.models_dir / "stopped"
    shutil.copytree(model_dir, stopped)
    newer = project.create_run("train", {})
    project.update_run(newer, status="stopped", model_dir=str(stopped),
                       summary={"macro_f1": 0.133})
    at = _page("demo", "pages/predict.py")
    assert at.selectbox(key="predict_model").value == str(model_dir)
    sidebar = next(s for s in at.sidebar.selectbox if s.label == "Current model")
    assert sidebar.value == str(model_dir)
    sidebar.set_value(str(stopped)).run()  # a user picks the stopped run on purpose
    _no_exception(at, "predict after choosing another current model")
    assert project.current_model() == str(stopped)
    assert at.selectbox(key="predict_model").value == str(stopped)


def _predicted_and_a_newer_stopped_run(demo, data_root) -> str:
    """Run 1: a good model that predicted every image; run 2, newer: stopped, no predictions
    (the case of issue 12's 'Where we stand', item 1)."""
    good = _fake_model_run(demo, "good")
    truth = pd.read_csv(data_root / "projects" / "demo" / "ground_truth.csv")
    for image, rows in truth.groupby("image"):
        demo.save_predictions(good, image, rows.assign(confidence=0.9))
    stopped = demo.models_dir / "stopped"
    stopped.mkdir()
    (stopped / "model.json").write_text(json.dumps({"arch": "cnn", "classes": []}))
    run = demo.create_run("train", {"kind": "cnn", "config": {"arch": "cnn"}})
    demo.update_run(run, status="stopped", model_dir=str(stopped),
                    summary={"macro_f1": 0.133})
    return good


def test_the_dashboard_opens_on_the_model_that_predicted_not_the_newest_stopped_run(
        demo, data_root):
    """It opened with 'classes must name at least one class, got an empty list'."""
    _predicted_and_a_newer_stopped_run(demo, data_root)
    at = _page("demo", "pages/dashboard.py")
    assert not at.error, [e.value for e in at.error]
    assert any(h.value == "Per image" for h in at.subheader)


def test_correct_predictions_shows_the_current_models_predictions(demo, data_root):
    """'No predictions for this image yet' although run 1 had predicted every image: it read
    only the newest run."""
    good = _predicted_and_a_newer_stopped_run(demo, data_root)
    at = _page("demo", "pages/annotate.py")
    at.segmented_control(key="annotate_mode").set_value("Correct predictions").run()
    _no_exception(at, "correct predictions")
    assert not any("No predictions for this image yet" in w.value for w in at.warning)
    assert demo.current_model() == good
