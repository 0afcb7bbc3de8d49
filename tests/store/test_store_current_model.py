"""One current model per project (issue 12 item 1): the best finished training by default,
never a stopped, failed or prediction run; a choice shared by the lab."""

import pytest

from svetlana_core.errors import InputError
from svetlana_core.store import Project


def _run(project, kind, status, score, name):
    folder = project.models_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text("{}")
    run = project.create_run(kind, {})
    summary = {} if score is None else {"macro_f1": score}
    project.update_run(run, status=status, model_dir=str(folder), summary=summary)
    return str(folder)


@pytest.fixture
def project(tmp_path):
    return Project.create(tmp_path / "p")


def test_the_best_finished_training_is_current_not_the_newest(project):
    assert project.current_model() is None
    good = _run(project, "train", "done", 0.896, "good")
    _run(project, "train-rf", "done", 0.5, "forest")
    _run(project, "train", "stopped", 0.95, "stopped")     # stopped: never by default
    _run(project, "train", "failed", 0.99, "failed")
    _run(project, "predict", "done", None, "prediction")
    assert project.current_model() == good


def test_a_choice_is_shared_and_falls_back_when_its_folder_goes(project, tmp_path):
    good = _run(project, "train", "done", 0.9, "good")
    stopped = _run(project, "train", "stopped", 0.1, "stopped")
    project.set_current_model(stopped, author="ann")
    assert Project.open(project.folder).current_model() == stopped  # another user sees it
    (project.models_dir / "stopped" / "model.json").unlink()
    assert project.current_model() == good
    project.set_current_model(None)
    assert project.current_model() == good
    with pytest.raises(InputError, match=r"is not a model folder of project .*'s runs"):
        project.set_current_model(tmp_path / "elsewhere")


def test_ties_go_to_the_newest(project):
    _run(project, "train", "done", 0.8, "a")
    newest = _run(project, "train", "done", 0.8, "b")
    assert project.current_model() == newest
