"""The Train page through AppTest: the form trains what the CLI trains (issue 16, item 1),
the validation split is shown honestly before the run (issue 12, item 3), and predictions
live in their own table (issue 12, item 6)."""

from pathlib import Path

import numpy as np
import pytest

from svetlana_core import jobs, models
from svetlana_core.demo import create_demo
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from svetlana_core.training import TrainConfig
from tests.builders import model_meta, write_pair

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def submitted(monkeypatch):
    """What the page submits, instead of starting a worker."""
    calls = []

    def submit(project_dir, config, source=None, author="", kind="cnn", **_):
        calls.append({"config": config, "source": source, "kind": kind})
        return 1

    monkeypatch.setattr(jobs, "submit_training", submit)
    return calls


def _train_page(project: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = project
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _tiles_project(root: Path, names: list[str], per_image: int = 12) -> Project:
    """Images of 2 classes (labels alternate), ``per_image`` objects labelled on each."""
    project = Project.create(root / "projects" / "tiles")
    for name in names:
        mask = np.zeros((64, 64), np.uint16)
        for k in range(per_image):
            r, c = divmod(k, 4)
            mask[2 + 15 * r: 10 + 15 * r, 2 + 15 * c: 10 + 15 * c] = k + 1
        image = (mask > 0).astype(np.uint8) * 200
        image_path, mask_path = write_pair(root / "data", name, image, mask)
        project.add_image(image_path, mask_path, name=f"{name}.tif")
    project.add_class("a")
    project.add_class("b")
    project.annotate_many([(f"{n}.tif", k + 1, "ab"[k % 2]) for n in names
                           for k in range(per_image)], author="t")
    return project


def test_the_forms_defaults_are_train_configs_with_an_automatic_depth(data_root, submitted):
    create_demo(data_root / "projects" / "demo")
    at = _train_page("demo")
    depth = at.select_slider(key="train_depth")
    assert depth.value == "auto" and depth.format_func("auto").startswith("auto (")
    _button(at, "Start training").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    config = submitted[0]["config"]
    assert "depth" not in config["arch_params"]  # auto_depth decides, as in the CLI
    assert config["arch_params"] == {"width": models.architecture_params("cnn")["width"]}
    sent, default = TrainConfig.from_dict(config).to_dict(), TrainConfig().to_dict()
    for key in ("arch_params", "augment"):
        sent.pop(key), default.pop(key)
    assert sent == default
    assert TrainConfig.from_dict(config).augment["flips"] == TrainConfig().augment["flips"]
    assert submitted[0]["source"] == {"kind": "project", "group_pattern": None}


def test_moving_the_depth_slider_puts_the_depth_in_the_config(data_root, submitted):
    create_demo(data_root / "projects" / "demo")
    at = _train_page("demo")
    at.select_slider(key="train_depth").set_value(2).run()
    _button(at, "Start training").click()
    at.run()
    assert submitted[0]["config"]["arch_params"]["depth"] == 2


def test_a_thin_validation_set_is_a_warning_with_its_size(data_root):
    create_demo(data_root / "projects" / "demo")  # 36 labels on 4 images: 1 image held out
    at = _train_page("demo")
    warning = " ".join(w.value for w in at.warning)
    assert "Validation: **" in warning and "Fewer than 30 validation objects" in warning


def test_labels_on_one_image_are_an_ungrouped_split_said_in_red(data_root):
    _tiles_project(data_root, ["only"], per_image=12)
    at = _train_page("tiles")
    errors = " ".join(e.value for e in at.error)
    assert "NOT grouped" in errors and "Validation: **" in errors


def test_tiles_grouped_by_their_slide_go_to_the_worker(data_root, submitted):
    names = [f"train_{slide}_{tile}" for slide in (1, 2, 3, 4, 5) for tile in (1, 2)]
    _tiles_project(data_root, names)
    at = _train_page("tiles")
    at.radio(key="train_grouping").set_value("a part of the image name").run()
    at.text_input(key="train_group_pattern").input(r"train_(\d+)_").run()
    caption = " ".join(c.value for c in at.caption)
    assert "train_1_1.tif → 1" in caption
    # 5 slides of 24 objects: one slide (two tiles) held out
    shown = " ".join(m.value for m in at.warning) + " ".join(m.value for m in at.success)
    assert "**24 objects** from 1 of 5 group(s)" in shown, shown
    _button(at, "Start training").click()
    at.run()
    assert submitted[0]["source"]["group_pattern"] == r"train_(\d+)_"


def test_a_bad_pattern_is_one_line_and_starts_nothing(data_root, submitted):
    _tiles_project(data_root, ["train_1_1", "train_2_1"])
    at = _train_page("tiles")
    at.radio(key="train_grouping").set_value("a part of the image name").run()
    at.text_input(key="train_group_pattern").input("train_(").run()
    assert any("not a valid regular expression" in e.value for e in at.error)
    assert not at.exception


def test_a_class_without_labels_is_named_and_training_waits_for_a_yes(data_root, submitted):
    demo = create_demo(data_root / "projects" / "demo")
    demo.add_class("other")
    at = _train_page("demo")
    assert any("class other has no labels" in w.value for w in at.warning)
    assert _button(at, "Start training").disabled
    at.checkbox(key="train_confirm_classes").check().run()
    assert not _button(at, "Start training").disabled
    _button(at, "Start training").click()
    at.run()
    assert len(submitted) == 1


def test_prediction_runs_have_their_own_table_not_the_run_picker(data_root):
    demo = create_demo(data_root / "projects" / "demo")
    train = demo.create_run("train", {"config": {"arch": "cnn", "epochs": 3}})
    demo.update_run(train, status="running")
    folder = demo.models_dir / "m"
    predict = demo.create_run("predict", {"kind": "predict", "model_dir": str(folder)})
    demo.update_run(predict, status="done", summary={"finished": 4, "total": 4,
                                                    "engine": "ONNX Runtime (CPU)"})
    at = _train_page("demo")
    picker = next(s for s in at.selectbox if s.label == "Run")
    assert picker.options == [f"run {train} · train (running)"]
    tables = [t.value for t in at.dataframe]
    runs = next(t for t in tables if "arch" in t)
    predictions = next(t for t in tables if "engine" in t)
    assert runs["run"].tolist() == [train] and runs["status"].tolist() == ["running"]
    assert predictions["run"].tolist() == [predict]
    assert predictions[["model", "images"]].values.tolist() == [["m", "4/4"]]


def test_a_score_from_few_objects_says_so_beside_it():
    from ui.runs import validation_caution

    summary = {"split": "stratified split NOT grouped (there is only one group (image)): …"}
    metrics = {"per_class": {"a": {"support": 5}, "b": {"support": 40}}}
    said = validation_caution(summary, metrics)
    assert "not grouped" in said and "a 5" in said and "b 40" not in said
    assert validation_caution({"split": "grouped split: 3 group(s) for training, 1 for "
                               "validation"}, {"per_class": {"a": {"support": 30}}}) == ""


def test_the_memory_estimate_is_shown_and_a_run_that_would_not_fit_cannot_start(
        data_root, monkeypatch):
    """Issue 13, item 4: the refusal the worker would give, before the start."""
    create_demo(data_root / "projects" / "demo")
    at = _train_page("demo")
    assert any(c.value.startswith("Memory: about") for c in at.caption)
    assert not _button(at, "Start training").disabled
    monkeypatch.setenv("SVETLANA_MEMORY_GB", "0.2")
    at.run()
    assert any("Cannot start: this training needs about" in e.value for e in at.error)
    assert _button(at, "Start training").disabled
    help_text = at.toggle(key="train_auto_patch").help
    assert "256 pixels in 2D and 48³ in 3D" in help_text


def _finished_run(project: Project, name: str, config: dict, scores: list[float]) -> int:
    """A done training with per-epoch curves and a model folder holding its metrics."""
    import json as _json

    folder = project.models_dir / name
    folder.mkdir(parents=True)
    metrics = {"macro_f1": scores[-1], "per_class": {
        "round": {"recall": 0.9, "precision": 0.8, "f1": 0.85, "support": 12},
        "speckled": {"recall": 0.5, "precision": 0.6, "f1": 0.55, "support": 12}}}
    (folder / "model.json").write_text(_json.dumps(model_meta(metrics=metrics)))
    run = project.create_run("train", {"kind": "cnn", "config": config,
                                       "source": {"kind": "project"}})
    for epoch, score in enumerate(scores, 1):
        project.add_epoch(run, epoch, {"macro_f1": score, "val_loss": 1 - score})
    project.update_run(run, status="done", model_dir=str(folder),
                       summary={"macro_f1": scores[-1]})
    return run


def test_two_runs_compared_curves_settings_and_scores_side_by_side(data_root):
    """Issue 16, item 4."""
    demo = create_demo(data_root / "projects" / "demo")
    a = _finished_run(demo, "a", {"arch": "cnn", "arch_params": {"depth": 2}, "lr": 0.002},
                      [0.4, 0.6])
    b = _finished_run(demo, "b", {"arch": "cnn", "arch_params": {"width": 16}, "lr": 0.01},
                      [0.5, 0.7, 0.8])
    at = _train_page("demo")
    assert at.multiselect(key="compare_runs").value == [b, a]
    chart = next(c for c in at.get("plotly_chart") if "Validation macro-F1" in c.proto.spec)
    assert f'"run {a}"' in chart.proto.spec and f'"run {b}"' in chart.proto.spec
    tables = [t.value for t in at.dataframe]
    diff = next(t for t in tables if "setting" in t.columns)
    assert set(diff["setting"]) == {"arch_params.depth", "arch_params.width", "lr"}
    assert diff.set_index("setting").loc["arch_params.depth", f"run {b}"] == "auto"
    scores = next(t for t in tables if "metric" in t.columns).set_index(["class", "metric"])
    assert scores.loc[("all", "macro_f1"), f"run {b}"] == 0.8
    assert scores.loc[("round", "recall"), f"run {a}"] == 0.9


def test_a_two_by_two_sweep_queues_four_runs_and_fills_its_grid(data_root, monkeypatch):
    """Issue 16, item 4: one run per cell, a table that fills in as they finish."""
    from svetlana_core.jobs import submit

    started = []
    monkeypatch.setattr(submit, "_start_worker", lambda project, run_id, name:
                        started.append(run_id))
    demo = create_demo(data_root / "projects" / "demo")
    at = _train_page("demo")
    at.text_input(key="sweep_values_1").input("1, 2").run()
    at.selectbox(key="sweep_key_2").set_value("width").run()
    at.text_input(key="sweep_values_2").input("4, 8").run()
    _button(at, "Start the sweep (4 runs, one after another)").click()
    at.run()
    assert not at.exception and len(started) == 4
    cells = [demo.run(r)["config"] for r in started]
    assert [c["sweep"]["cell"] for c in cells] == [
        {"depth": 1, "width": 4}, {"depth": 1, "width": 8}, {"depth": 2, "width": 4},
        {"depth": 2, "width": 8}]
    assert [c["config"]["arch_params"] for c in cells][0] == {"width": 4, "depth": 1}
    for k, run in enumerate(started):  # the workers finish
        demo.update_run(run, status="done", summary={"macro_f1": 0.5 + k / 10})
    at.run()
    grid = next(t.value for t in at.dataframe if t.value.index.name == "depth")
    assert grid.loc[2, 8] == 0.8 and grid.loc[1, 4] == 0.5
    table = next(t.value for t in at.dataframe if "status" in t.value and "depth" in t.value)
    assert table["status"].tolist() == ["done"] * 4


def test_a_bad_sweep_value_is_one_line_and_starts_nothing(data_root, monkeypatch):
    from svetlana_core.jobs import submit

    monkeypatch.setattr(submit, "_start_worker", lambda *a: pytest.fail("started"))
    create_demo(data_root / "projects" / "demo")
    at = _train_page("demo")
    at.text_input(key="sweep_values_1").input("2, 9").run()
    assert any("depth=9" in e.value and "out of range" in e.value for e in at.error)
    assert _button(at, "Start the sweep (0 runs, one after another)").disabled


def test_deleting_a_run_keeps_its_model_folder_aside(data_root):
    demo = create_demo(data_root / "projects" / "demo")
    run = _finished_run(demo, "kept", {"arch": "cnn"}, [0.5])
    moved = demo.delete_run(run)
    assert moved == str(demo.folder / "deleted_models" / "kept")
    assert (demo.folder / "deleted_models" / "kept" / "model.json").exists()
    assert demo.runs().empty
    busy = demo.create_run("train", {})
    demo.update_run(busy, status="running")
    with pytest.raises(InputError, match="stop it before deleting it"):
        demo.delete_run(busy)


def test_the_channels_the_network_sees_go_into_the_config(data_root, submitted):
    """Issue 13, item 7: a choice of training channels, named red/green/blue for RGB."""
    from tests.builders import rgb_tile_project

    project = rgb_tile_project(data_root / "projects" / "tiles")
    name = project.images()["name"].iloc[0]
    project.annotate_many([(name, k, ("tumour", "immune")[k % 2]) for k in range(1, 13)],
                          author="t")
    at = _train_page("tiles")
    picker = at.multiselect(key="train_channels")
    assert picker.value == [0, 1, 2] and picker.format_func(0) == "red"
    at.checkbox(key="train_confirm_classes").check().run()  # "stroma" has no labels
    _button(at, "Start training").click()
    at.run()
    assert submitted[-1]["config"]["channels"] is None  # all of them: the default
    at.multiselect(key="train_channels").set_value([2, 0]).run()
    _button(at, "Start training").click()
    at.run()
    assert submitted[-1]["config"]["channels"] == [0, 2]
