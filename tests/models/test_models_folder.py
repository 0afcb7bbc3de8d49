"""svetlana_core.models.folder: the one reader and writer of model folders, CNN and random forest."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from svetlana_core import models
from svetlana_core.errors import InputError
from tests.builders import cnn_model_folder

WAVE1 = Path(__file__).resolve().parents[1] / "fixtures" / "wave1" / "models"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A 1-block, 4-filter CNN folder for 1-channel images of two classes, random weights."""
    return cnn_model_folder(tmp_path_factory.mktemp("models") / "m",
                            arch_params={"depth": 1, "width": 4}, classes=["bright", "dark"])


def _tamper(src, dst, edit=None, drop_weights=False):
    shutil.copytree(src, dst)
    if edit is not None:
        meta = json.loads((dst / "model.json").read_text())
        edit(meta)
        (dst / "model.json").write_text(json.dumps(meta))
    if drop_weights:
        (dst / "weights.safetensors").unlink()
    return dst


def test_save_refuses_a_non_empty_folder(folder):
    model = models.load_model(folder)
    with pytest.raises(InputError, match="already exists and is not empty"):
        models.save_model(folder, model.module, model.meta)
    with pytest.raises(InputError, match=r"model.json has no key 'classes'"):
        meta = {k: v for k, v in model.meta.items() if k != "classes"}
        models.save_model(folder.parent / "other", model.module, meta)
    assert not (folder.parent / "other").exists()


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.pop("patch_size"), r"model.json has no key 'patch_size'"),
        (lambda m: m.update(classes="bright,dark"), r"key 'classes' must be a list of at least "
                                                    r"two distinct class names, got 'bright,dark'"),
        (lambda m: m.update(classes=["bright", 3]), r"key 'classes' must be a list"),
        (lambda m: m.update(in_channels="2"), r"key 'in_channels' must be an integer >= 1"),
        (lambda m: m.update(best_epoch=True), r"key 'best_epoch' must be an integer or null"),
        (lambda m: m.update(arch="cnn9"), r"keys 'arch'/'arch_params': unknown architecture"),
        (lambda m: m.update(arch_params={**m["arch_params"], "width": 8}),
         r"weights.safetensors key 'features.0.0.weight' has shape \(4, 2, 3, 3\) but the "
         r"architecture in model.json needs \(8, 2, 3, 3\)"),
        (lambda m: m.update(arch_params={**m["arch_params"], "depth": 2}),
         r"weights.safetensors does not fit .* key 'features.1.0.weight' is missing"),
        (lambda m: m.update(format_version=99), r"key 'format_version' is 99"),
        (lambda m: m.update(patch_size=[16]), r"key 'patch_size' must be 2 positive integers"),
    ],
)
def test_load_model_rejects_tampered_folders(folder, tmp_path, edit, match):
    bad = _tamper(folder, tmp_path / "bad", edit)
    with pytest.raises(InputError, match=match):
        models.load_model(bad)


def test_load_model_missing_pieces(folder, tmp_path):
    with pytest.raises(InputError, match=r"model folder .*nowhere not found"):
        models.load_model(tmp_path / "nowhere")
    bad = _tamper(folder, tmp_path / "noweights", drop_weights=True)
    with pytest.raises(InputError, match=r"weights.safetensors not found"):
        models.load_model(bad)
    (bad / "weights.pt").write_bytes(b"pickle")
    with pytest.raises(InputError, match=r"weights.pt in .* is not loaded: pickled files"):
        models.load_model(bad)
    bad = _tamper(folder, tmp_path / "badjson")
    (bad / "model.json").write_text("{not json")
    with pytest.raises(InputError, match=r"model.json is not valid JSON"):
        models.load_model(bad)
    (bad / "model.json").unlink()
    with pytest.raises(InputError, match=r"model.json not found: not a model folder"):
        models.load_model(bad)
    bad = _tamper(folder, tmp_path / "badweights")
    (bad / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"cannot be read as safetensors"):
        models.load_model(bad)


def test_read_model_meta_reads_both_kinds_of_folder():
    cnn = models.read_model_meta(WAVE1 / "cnn_wave1")
    assert cnn["arch"] == "cnn" and cnn["classes"] == ["round", "elongated", "speckled"]
    assert models.read_model_meta(WAVE1 / "cnn_wave1", kind="cnn") == cnn
    rf = models.read_model_meta(WAVE1 / "rf_wave1", kind="rf")
    assert rf["arch"] == "rf" and rf["feature_names"][0] == "area"
    assert models.model_kind(WAVE1 / "cnn_wave1") == "cnn"
    assert models.model_kind(WAVE1 / "rf_wave1") == "rf"
    assert models.MODEL_KINDS == ("cnn", "rf")


def test_read_model_meta_refuses_the_other_kind():
    with pytest.raises(InputError, match=r"rf_wave1.model\.json key 'arch' is 'rf': this is a "
                                         r"random-forest baseline"):
        models.read_model_meta(WAVE1 / "rf_wave1", kind="cnn")
    with pytest.raises(InputError, match=r"model\.json key 'arch' is 'rf'"):
        models.load_model(WAVE1 / "rf_wave1")
    with pytest.raises(InputError, match=r"key 'arch' is 'cnn', not 'rf': this is not a "
                                         r"random-forest baseline"):
        models.read_model_meta(WAVE1 / "cnn_wave1", kind="rf")
    with pytest.raises(InputError, match=r"kind='svm' is not valid; choose one of cnn, rf"):
        models.read_model_meta(WAVE1 / "cnn_wave1", kind="svm")


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.pop("forest_sha256"), r"model\.json has no key 'forest_sha256'"),
        (lambda m: m.update(feature_names="area"), r"key 'feature_names' must be a list, got str"),
        (lambda m: m.update(classes=["a", "a"]), r"key 'classes' must be a non-empty list of "
                                                 r"distinct names"),
        (lambda m: m.update(format_version=2), r"key 'format_version' is 2; this version of "
                                               r"Svetlana reads 1"),
        (lambda m: m.update(metrics=[1]), r"key 'metrics' must be a dict or null"),
    ],
)
def test_read_model_meta_checks_a_random_forest_folder(tmp_path, edit, match):
    bad = _tamper(WAVE1 / "rf_wave1", tmp_path / "rf", edit)
    with pytest.raises(InputError, match=match):
        models.read_model_meta(bad)


def test_read_model_meta_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"model folder \S*nowhere not found \(model\.json not "
                                         r"found\)"):
        models.model_kind(tmp_path / "nowhere")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "model.json").write_text("[1, 2]")
    with pytest.raises(InputError, match=r"list.model\.json must hold a JSON object, got list"):
        models.read_model_meta(tmp_path / "list")


def test_reading_a_model_folder_needs_no_torch():
    code = (
        "import sys; from svetlana_core.models import model_kind, read_model_meta; "
        f"print(model_kind({str(WAVE1 / 'cnn_wave1')!r}), "
        f"read_model_meta({str(WAVE1 / 'rf_wave1')!r})['arch'], 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "cnn rf False", result.stderr[-1000:]


# ---- one writer per model folder (issue 10, items 3 and 4)

def test_a_claimed_folder_is_refused_to_a_second_writer_and_released_after(tmp_path):
    target = tmp_path / "m"
    with models.claimed_folder(target) as held:
        assert held == target and target.is_dir()
        with pytest.raises(InputError, match=r"model folder \S+m is being written by another "
                                             r"training; choose another folder"):
            with models.claimed_folder(target):
                pass
        (target / "model.json").write_text("{}")
    with pytest.raises(InputError, match=r"model folder \S+m already exists and is not empty"):
        with models.claimed_folder(target):
            pass
    assert (target / "model.json").read_text() == "{}"  # untouched


def test_a_claim_that_saved_nothing_leaves_no_folder_and_a_file_is_refused(tmp_path):
    with pytest.raises(RuntimeError):
        with models.claimed_folder(tmp_path / "a" / "b"):
            raise RuntimeError("the training failed")
    assert not (tmp_path / "a" / "b").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"model folder \S+file is a file"):
        with models.claimed_folder(tmp_path / "file"):
            pass
    with pytest.raises(InputError, match=r"cannot be made: a part of its path is a file"):
        with models.claimed_folder(tmp_path / "file" / "m"):
            pass
    existing = tmp_path / "empty"
    existing.mkdir()  # a folder the user made for it: kept
    with models.claimed_folder(existing):
        pass
    assert existing.is_dir()
