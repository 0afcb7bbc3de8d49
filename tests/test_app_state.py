"""Issue 12, item 5: where a tab is (project, image, model, author) survives navigation,
reloads and shared links; "Create project" opens the project it made."""

import json
import shutil
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from svetlana_core.store import Project

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["pages/project.py", "pages/annotate.py", "pages/object_map.py", "pages/train.py",
         "pages/predict.py", "pages/dashboard.py"]


def _param(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def _run(at: AppTest, where: str) -> AppTest:
    at.run()
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    return at


def _links(at: AppTest) -> dict[str, dict[str, str]]:
    """Sidebar page links: page file -> their query parameters."""
    links = {}
    for element in at.get("page_link"):
        query = parse_qs(element.proto.query_string)
        links[element.proto.page] = {k: v[0] for k, v in query.items()}
    return links


def _fake_model(project: Project, name: str, macro_f1: float) -> str:
    """A finished training run whose folder holds a (copied) model file."""
    folder = project.models_dir / name
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps({"arch": "cnn", "classes": ["round"]}))
    run = project.create_run("train", {})
    project.update_run(run, status="done", model_dir=str(folder),
                       summary={"macro_f1": macro_f1})
    return str(folder)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_puts_project_and_image_in_the_url_and_its_links(demo, page):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = "demo"
    _run(at, "first page")
    at.switch_page(page)
    _run(at, page)
    image = demo.images()["name"].iloc[0]
    assert _param(at, "project") == "demo" and _param(at, "image") == image
    links = _links(at)
    assert len(links) == 6, links
    assert all(q.get("project") == "demo" and q.get("image") == image
               for q in links.values()), links


def test_a_link_that_lost_the_query_still_lands_on_the_tabs_project(demo):
    """Streamlit's own page links dropped ``?project=``: a reload then lost the project."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = "demo"
    _run(at, "project page")
    at.query_params.clear()  # what a link without the query does to the URL
    at.switch_page("pages/annotate.py")
    _run(at, "annotate")
    assert _param(at, "project") == "demo" and _param(at, "image")


def test_choosing_an_image_reaches_the_links_in_the_same_run(demo):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = "demo"
    _run(at, "project page")
    at.switch_page("pages/annotate.py")
    _run(at, "annotate")
    second = demo.images()["name"].iloc[1]
    at.selectbox(key="annotate_image").set_value(second)
    _run(at, "annotate, second image")
    assert _param(at, "image") == second
    assert all(q["image"] == second for q in _links(at).values())
    at.switch_page("pages/predict.py")  # another page opens on the same image
    _run(at, "predict")
    assert _param(at, "image") == second


def test_create_project_opens_the_new_project(demo):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = "demo"
    _run(at, "project page")
    at.text_input[0].input("wells-2026")
    next(b for b in at.button if b.label == "Create project").click()
    _run(at, "create")
    assert _param(at, "project") == "wells-2026"
    assert at.selectbox(key="sidebar_project").value == "wells-2026"
    _run(at, "the next run")  # and it stays there
    assert at.selectbox(key="sidebar_project").value == "wells-2026"
    assert "wells-2026" in at.title[0].value or any(
        "wells-2026" in s.value for s in at.subheader)


def test_the_demo_button_opens_the_demo_from_another_project(data_root):
    Project.create(data_root / "projects" / "other")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = "other"
    _run(at, "project page")
    next(b for b in at.button if b.label.startswith("Open the demo")).click()
    _run(at, "demo")
    assert at.selectbox(key="sidebar_project").value == "demo"
    assert _param(at, "project") == "demo"


def _predict_linked_to(model: str) -> AppTest:
    """The demo's Predict page reached from a link that carries ``?model=<folder name>``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = "demo"
    at.query_params["model"] = model
    _run(at, "first page")
    at.switch_page("pages/predict.py")
    return _run(at, "predict")


def test_a_link_with_model_opens_predict_on_that_model_and_a_choice_wins_over_it(demo):
    good = _fake_model(demo, "good", 0.9)
    other = _fake_model(demo, "other", 0.5)
    at = _predict_linked_to("other")
    assert at.selectbox(key="predict_model").value == other
    assert demo.current_model() == good  # a link changes the tab, not the project's setting
    at.selectbox(key="predict_model").set_value(good)
    _run(at, "predict, model chosen")
    assert at.selectbox(key="predict_model").value == good
    assert _param(at, "model") == "good"
    links = _links(at)
    assert all(q.get("model") == "good" for q in links.values())
    # follow the sidebar link as a browser does (AppTest's switch_page keeps the first URL)
    at.query_params.clear()
    at.query_params.update(links["dashboard"])
    at.switch_page("pages/dashboard.py")
    _run(at, "dashboard")
    assert at.selectbox(key="predict_model").value == good


def test_a_link_to_a_model_that_is_gone_opens_on_the_current_model(demo):
    good = _fake_model(demo, "good", 0.9)
    gone = _fake_model(demo, "gone", 0.95)
    shutil.rmtree(gone)
    at = _predict_linked_to("gone")
    assert at.selectbox(key="predict_model").value == good


def test_the_typed_name_is_kept_in_a_cookie_that_no_name_can_break_out_of(demo):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = "demo"
    _run(at, "project page")
    name = "Ana </script><script>alert(1)</script>"
    at.sidebar.text_input(key="author").input(name)
    _run(at, "name typed")
    scripts = [e.proto.body for e in at.get("html") if "svetlana_author" in e.proto.body]
    assert len(scripts) == 1, scripts
    assert "</script><script>" not in scripts[0].replace("<script>document", "", 1)
    assert "\\u003c/script>" in scripts[0]
    _run(at, "next run")  # written once, not on every run
    assert not [e for e in at.get("html") if "svetlana_author" in e.proto.body]
    assert at.sidebar.text_input(key="author").value == name
