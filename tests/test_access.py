"""Access (issue 6, item 4): nobody reaches files outside the data roots, nothing loaded from a
file can run code, and labels record who made them (login, trusted proxy header or typed
name). Uploads are in tests/test_uploads.py; the ``lab`` data roots fixture is in conftest."""

import ast
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import tifffile

from svetlana_core import io, models
from svetlana_core.demo import create_demo
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from tests.builders import app_test, messages
from ui import importer, state

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- fixtures


def disks_pair(folder: Path, stem: str) -> None:
    """``<stem>.tif`` (uint8 image) and ``<stem>_mask.tif`` (two labelled squares)."""
    folder.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((16, 16), np.uint16)
    mask[2:6, 2:6], mask[9:14, 8:13] = 1, 2
    tifffile.imwrite(folder / f"{stem}.tif", (mask * 60).astype(np.uint8))
    tifffile.imwrite(folder / f"{stem}_mask.tif", mask)


# --------------------------------------------------------------------------- data roots


def test_data_roots_reads_several_roots_from_the_environment(lab):
    assert state.data_roots() == [lab["lab"], lab["share"]]
    assert state.projects_dir() == lab["lab"] / "projects"


@pytest.mark.parametrize("typed", [
    "../outside",
    "plates/../../outside",
    "{outside}",
    "{outside}/../outside",
    "/etc",
    "~",
    "~/anything",
    "link_out",
    "link_out/sub",
])
def test_folder_outside_the_roots_is_refused(lab, typed):
    (lab["outside"] / "sub").mkdir()
    (lab["lab"] / "link_out").symlink_to(lab["outside"], target_is_directory=True)
    typed = typed.format(outside=lab["outside"])
    with pytest.raises(InputError, match=r"outside the data roots|starts with '~'") as caught:
        state.resolve_inside_roots(typed)
    assert typed in str(caught.value)


@pytest.mark.parametrize("typed", ["bad\x00name", "loop"])
def test_folder_that_cannot_be_resolved_is_an_input_error(lab, typed):
    (lab["lab"] / "loop").symlink_to(lab["lab"] / "loop")
    with pytest.raises(InputError, match=r"NUL character|cannot be resolved|outside the data"):
        state.resolve_inside_roots(typed)


def test_folders_inside_any_root_are_accepted(lab):
    (lab["lab"] / "plate1").mkdir()
    (lab["lab"] / "to_share").symlink_to(lab["share"] / "plates", target_is_directory=True)
    assert state.resolve_inside_roots("plate1") == lab["lab"] / "plate1"
    assert state.resolve_inside_roots("plate1/../plate1") == lab["lab"] / "plate1"
    assert state.resolve_inside_roots(str(lab["share"] / "plates")) == lab["share"] / "plates"
    # A relative path that exists only under the second root is found there.
    assert state.resolve_inside_roots("plates") == lab["share"] / "plates"
    # A symlink from one root into another stays inside the roots.
    assert state.resolve_inside_roots("to_share") == lab["share"] / "plates"
    assert state.resolve_inside_roots("") == lab["lab"]


def test_symlinked_files_that_leave_the_roots_are_skipped(lab):
    folder = lab["lab"] / "plate"
    disks_pair(folder, "A01")
    disks_pair(lab["outside"], "B02")
    (folder / "B02.tif").symlink_to(lab["outside"] / "B02.tif")
    (folder / "B02_mask.tif").symlink_to(lab["outside"] / "B02_mask.tif")
    disks_pair(lab["share"], "C03")  # a link into the other root is fine
    (folder / "C03.tif").symlink_to(lab["share"] / "C03.tif")
    (folder / "C03_mask.tif").symlink_to(lab["share"] / "C03_mask.tif")
    pairs = io.pair_files(folder)
    assert [p.stem for p in pairs] == ["A01", "B02", "C03"]
    kept, skipped = state.pairs_inside_roots(pairs)
    assert [p.stem for p in kept] == ["A01", "C03"]
    assert skipped == [f"image B02.tif is a link to {lab['outside'] / 'B02.tif'}, outside the "
                       "data roots: pair B02 skipped"]


def test_a_mask_linked_outside_is_skipped_and_all_outside_is_an_error(lab):
    folder = lab["lab"] / "plate"
    disks_pair(lab["outside"], "A01")
    folder.mkdir()
    tifffile.imwrite(folder / "A01.tif", np.zeros((16, 16), np.uint8))
    (folder / "A01_mask.tif").symlink_to(lab["outside"] / "A01_mask.tif")
    with pytest.raises(InputError, match=r"every file pair leads outside the data roots .* "
                                         r"mask A01_mask.tif is a link to .*pair A01 skipped"):
        state.pairs_inside_roots(io.pair_files(folder))


def _add_server_folder(project: str, folder: str):
    """The Project page of ``project`` after typing ``folder`` and pressing Check and add."""
    at = app_test(project)
    at.run()
    next(t for t in at.text_input if t.label == "Images folder").set_value(folder)
    next(b for b in at.button if b.label == "Check and add").click()
    at.run()
    assert not at.exception, messages(at.exception)
    return at


def test_project_page_refuses_a_folder_outside_the_roots(lab):
    Project.create(lab["lab"] / "projects" / "p")
    at = _add_server_folder("p", "../../etc")
    assert any("../../etc is outside the data roots" in m for m in messages(at.error))
    assert Project.open(lab["lab"] / "projects" / "p").images().empty


def test_project_page_skips_files_linked_outside_the_roots(lab):
    Project.create(lab["lab"] / "projects" / "p")
    folder = lab["lab"] / "plate"
    disks_pair(folder, "A01")
    disks_pair(lab["outside"], "B02")
    (folder / "B02.tif").symlink_to(lab["outside"] / "B02.tif")
    (folder / "B02_mask.tif").symlink_to(lab["outside"] / "B02_mask.tif")
    at = _add_server_folder("p", "plate")
    assert not at.error, messages(at.error)
    assert any("B02.tif is a link to" in m and "skipped" in m for m in messages(at.warning))
    images = Project.open(lab["lab"] / "projects" / "p").images()
    assert images["name"].tolist() == ["A01.tif"]


# --------------------------------------------------------------------------- no code from files


class _Payload:
    """Unpickling this creates ``marker``: the proof that a file ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def _model_meta(**changes) -> dict:

    meta = {
        "format_version": models.FORMAT_VERSION, "arch": "cnn",
        "arch_params": {"depth": 1, "width": 4}, "spatial_dims": 2, "in_channels": 2,
        "image_channels": 1, "classes": ["a", "b"], "patch_size": [8, 8],
        "patch_mode": "context", "dilation": 0, "normalisation": "percentile", "config": {},
        "history": [], "best_epoch": None, "metrics": None, "data": {}, "versions": {},
        "parent": None, "created_at": "2026-01-01T00:00:00+00:00",
    }
    return {**meta, **changes}


def test_payload_really_runs_code_when_unpickled(tmp_path):
    # The control: the same bytes given to pickle.loads do create the marker, so the tests
    # below that find no marker prove the loaders refused them.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("file_name", ["weights.pt", "weights.safetensors"])
def test_load_model_never_unpickles_weights(tmp_path, file_name):
    import torch


    folder, marker = tmp_path / "model", tmp_path / "ran"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps(_model_meta()))
    torch.save({"state_dict": _Payload(marker)}, folder / file_name)
    with pytest.raises(InputError, match=r"weights.safetensors (not found|cannot be read as "
                                         r"safetensors)"):
        models.load_model(folder)
    assert not marker.exists()


def test_code_like_strings_in_model_json_are_only_data(tmp_path):
    import torch

    from svetlana_core import models

    marker = tmp_path / "ran"
    code = f"__import__('os').system('touch {marker}')"
    meta = _model_meta(classes=[code, "eval('1+1')"], data={"note": code},
                       config={"on_load": code}, extra_hook=code)
    torch.manual_seed(0)
    module = models.build_model("cnn", 2, 2, 2, depth=1, width=4)
    folder = models.save_model(tmp_path / "model", module, meta)
    loaded = models.load_model(folder)
    assert loaded.classes == (code, "eval('1+1')")
    assert loaded.meta["data"] == {"note": code} and loaded.meta["extra_hook"] == code
    assert not marker.exists()
    # A code-like architecture name is looked up, not run.
    (folder / "model.json").write_text(json.dumps(_model_meta(arch=code)))
    with pytest.raises(InputError, match=r"model.json keys 'arch'/'arch_params'"):
        models.load_model(folder)
    assert not marker.exists()


def _object_npy(path: Path, content) -> None:
    boxed = np.empty((), dtype=object)
    boxed[()] = content
    np.save(path, boxed, allow_pickle=True)


@pytest.mark.parametrize("name", ["A01_seg.npy", "A01.npy"])
def test_masks_with_a_pickle_payload_never_run_it(tmp_path, name):
    marker = tmp_path / "ran"
    masks = np.zeros((8, 8), np.uint16)
    masks[2:5, 2:5] = 1
    _object_npy(tmp_path / name, {"masks": masks, "outlines": _Payload(marker)})
    with pytest.raises(InputError, match=r"refers to builtins.exec, which is not loaded for "
                                         r"safety|holds Python objects, which are not loaded"):
        io.read_mask(tmp_path / name)
    assert not marker.exists()


def test_seg_npy_payload_is_refused_through_the_import_report(tmp_path):
    marker = tmp_path / "ran"
    tifffile.imwrite(tmp_path / "A01.tif", np.zeros((8, 8), np.uint8))
    _object_npy(tmp_path / "A01_seg.npy", {"masks": _Payload(marker)})
    report = importer.validate_pairs(io.pair_files(tmp_path))
    assert report["status"].tolist() == ["error"]
    assert "refers to builtins.exec" in report["message"][0]
    assert not marker.exists()


# --------------------------------------------------------------------------- code scan

APP_CODE = sorted([*(ROOT / "svetlana_core").rglob("*.py"), *(ROOT / "ui").glob("*.py"),
                   *(ROOT / "pages").glob("*.py"), ROOT / "app.py"])

#: Modules that turn bytes into arbitrary Python objects (and so can run code).
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal",
                  "shelve", "jsonpickle"}
#: The one allowed use: svetlana_core/io/cellpose.py reads Cellpose's *_seg.npy, a pickled dict,
#: through ``_NumpyOnlyUnpickler`` (a pickle.Unpickler whose find_class admits numpy arrays
#: and plain values only; tests above and in tests/io/test_io_cellpose.py). It may name these
#: and nothing else of pickle: no pickle.load / pickle.loads.
ALLOWED_PICKLE_NAMES = {"svetlana_core/io/cellpose.py": {"Unpickler", "UnpicklingError"}}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword_is(call: ast.Call, name: str, value) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value
               for k in call.keywords)


def unsafe_uses(source: str, where: str) -> list[str]:
    """Every way ``source`` could run code from a file: eval/exec/compile, pickle-like
    modules (except the allow-list), torch.load without weights_only=True, np.load without
    allow_pickle=False, yaml.load, pandas.read_pickle."""
    tree = ast.parse(source)
    allowed = ALLOWED_PICKLE_NAMES.get(where, set())
    found = []
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                # The allow-listed file may `import pickle` under that name only, so that
                # every use reads `pickle.<name>` and is checked below.
                plain_pickle = allowed and alias.name == "pickle" and alias.asname is None
                if alias.name.split(".")[0] in UNSAFE_MODULES and not plain_pickle:
                    found.append(f"{line} imports {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] in UNSAFE_MODULES:
                found.append(f"{line} imports names from {module}")
            if module in {"torch", "numpy", "yaml"} and "load" in {a.name for a in node.names}:
                found.append(f"{line} imports load from {module}")
        elif isinstance(node, ast.Attribute) and _dotted(node.value) in UNSAFE_MODULES:
            if node.attr not in allowed:
                found.append(f"{line} uses {_dotted(node)}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            last = name.rsplit(".", 1)[-1]
            if name in {"eval", "exec", "compile", "__import__", "builtins.eval",
                        "builtins.exec"}:
                found.append(f"{line} calls {name}")
            elif name == "torch.load" and not _keyword_is(node, "weights_only", True):
                found.append(f"{line} calls torch.load without weights_only=True")
            elif name in {"np.load", "numpy.load"} and not _keyword_is(node, "allow_pickle", False):
                found.append(f"{line} calls {name} without allow_pickle=False")
            elif name in {"yaml.load", "yaml.unsafe_load"} or last == "read_pickle":
                found.append(f"{line} calls {name}")
    return found


@pytest.mark.parametrize("path", APP_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_code_runs_from_files(path):
    where = path.relative_to(ROOT).as_posix()
    assert unsafe_uses(path.read_text(), where) == []


def test_the_one_unpickler_only_admits_an_allow_list():
    # The allow-list above is only safe while the unpickler restricts what it builds.
    tree = ast.parse((ROOT / "svetlana_core" / "io" / "cellpose.py").read_text())
    subclasses = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                  and any(_dotted(b) == "pickle.Unpickler" for b in node.bases)]
    assert [c.name for c in subclasses] == ["_NumpyOnlyUnpickler"]
    methods = {f.name for f in subclasses[0].body if isinstance(f, ast.FunctionDef)}
    assert "find_class" in methods


@pytest.mark.parametrize(("source", "flagged"), [
    ("eval(text)", "calls eval"),
    ("exec(code)", "calls exec"),
    ("import pickle\npickle.load(f)", "imports pickle"),
    ("from pickle import loads", "imports names from pickle"),
    ("import joblib", "imports joblib"),
    ("import cloudpickle as cp", "imports cloudpickle"),
    ("from torch import load", "imports load from torch"),
    ("torch.load(path)", "torch.load without weights_only=True"),
    ("torch.load(path, weights_only=False)", "torch.load without weights_only=True"),
    ("np.load(path, allow_pickle=True)", "np.load without allow_pickle=False"),
    ("np.load(path)", "np.load without allow_pickle=False"),
    ("pd.read_pickle(path)", "calls pd.read_pickle"),
    ("yaml.load(text)", "calls yaml.load"),
])
def test_the_scan_catches_unsafe_code(source, flagged):
    assert any(flagged in f for f in unsafe_uses(source, "x.py"))
    assert unsafe_uses("torch.load(p, weights_only=True)\nnp.load(p, allow_pickle=False)",
                       "x.py") == []
    # io/cellpose.py may name pickle.Unpickler, but not pickle.loads.
    assert unsafe_uses("import pickle\nclass U(pickle.Unpickler): pass",
                       "svetlana_core/io/cellpose.py") == []
    assert unsafe_uses("import pickle\npickle.loads(b)", "svetlana_core/io/cellpose.py") == [
        "svetlana_core/io/cellpose.py:2 uses pickle.loads"]
    assert unsafe_uses("import dill", "svetlana_core/io/cellpose.py") == [
        "svetlana_core/io/cellpose.py:1 imports dill"]
    assert unsafe_uses("import pickle as p", "svetlana_core/io/cellpose.py") == [
        "svetlana_core/io/cellpose.py:1 imports pickle"]


# --------------------------------------------------------------------------- who made it


@pytest.fixture
def demo(tmp_path, monkeypatch):
    monkeypatch.setenv("SVETLANA_DATA_ROOT", str(tmp_path))
    return create_demo(tmp_path / "projects" / "demo")


#: Start of the small scripts run with AppTest.from_string / from_file below.
_SCRIPT_PREFIX = (f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nimport streamlit as st\n"
                  "from ui import auth, state\n")


def _headers(monkeypatch, headers: dict) -> None:
    # AppTest cannot send request headers; st.context.headers is replaced for the test.
    monkeypatch.setattr(type(st.context), "headers", property(lambda self: headers))


def _guided_label(at: AppTest) -> None:
    at.segmented_control(key="annotate_mode").set_value("Guided")
    at.run()
    next(b for b in at.button if b.label.startswith("2 · ")).click()
    at.run()
    assert not at.exception, messages(at.exception)


@pytest.mark.parametrize(("env", "user", "expected"), [
    ("X-Remote-User", {}, "ada@lab.org"),  # the proxy's header, trusted when configured
    (None, {}, "typed"),  # the same header without SVETLANA_USER_HEADER is ignored
    ("X-Remote-User", {"is_logged_in": True, "email": "eve@lab.org"}, "eve@lab.org"),
    (None, {"is_logged_in": False, "email": "old@lab.org"}, "typed"),
])
def test_a_label_made_in_the_app_records_its_author(demo, monkeypatch, env, user, expected):
    if env:
        monkeypatch.setenv("SVETLANA_USER_HEADER", env)
    else:
        monkeypatch.delenv("SVETLANA_USER_HEADER", raising=False)
    _headers(monkeypatch, {"X-Remote-User": "ada@lab.org"})
    at = app_test("demo")
    at.user = user
    at.run()
    at.switch_page("pages/annotate.py")
    at.run()
    # The sidebar's name field; absent once the server identifies the user.
    for field in [f for f in at.text_input if f.key == "author"]:
        field.set_value("typed")
    at.run()
    before = len(demo.labels())
    _guided_label(at)
    after = demo.labels()
    assert len(after) == before + 1
    assert after.sort_values("time")["author"].iloc[-1] == expected


def test_author_falls_back_to_the_typed_name_when_the_header_is_missing(monkeypatch):
    monkeypatch.setenv("SVETLANA_USER_HEADER", "X-Remote-User")
    _headers(monkeypatch, {})
    at = AppTest.from_string(_SCRIPT_PREFIX + "st.session_state['author'] = 'bob'\n"
                             "st.write(state.author())\n")
    at.run()
    assert [m.value for m in at.markdown] == ["bob"]


def test_the_typed_name_survives_a_page_change_and_hides_when_identified(tmp_path,
                                                                         monkeypatch):
    # Two pages that draw the sidebar themselves, as every page of the app does.
    page = _SCRIPT_PREFIX + "with st.sidebar:\n    state.author_field()\nst.write(state.author())\n"
    (tmp_path / "a.py").write_text(page)
    (tmp_path / "b.py").write_text(page)
    (tmp_path / "app.py").write_text(
        "import streamlit as st\nst.navigation([st.Page('a.py'), st.Page('b.py')]).run()\n")
    at = AppTest.from_file(str(tmp_path / "app.py"), default_timeout=30)
    at.run()
    at.sidebar.text_input(key="author").set_value("typed")
    at.run()
    at.switch_page("b.py")
    at.run()
    assert [m.value for m in at.markdown] == ["typed"]
    assert at.sidebar.text_input(key="author").value == "typed"
    # Once the proxy vouches for the user, the field gives way to who they are.
    monkeypatch.setenv("SVETLANA_USER_HEADER", "X-Remote-User")
    _headers(monkeypatch, {"X-Remote-User": "ada@lab.org"})
    at.run()
    assert [m.value for m in at.markdown] == ["ada@lab.org"]
    assert not at.sidebar.text_input
    assert "Labels are recorded as **ada@lab.org**" in [c.value for c in at.sidebar.caption]


# --------------------------------------------------------------------------- login control

_GATED = _SCRIPT_PREFIX + "auth.login_gate()\nst.write('page body')\n"
_AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
         "client_id": "svetlana", "client_secret": "s",
         "server_metadata_url": "https://id.lab.org/.well-known/openid-configuration"}


def test_no_login_control_without_auth_configured():
    at = AppTest.from_string(_GATED)
    at.run()
    assert not at.exception, messages(at.exception)
    assert [m.value for m in at.markdown] == ["page body"]
    assert not at.button


def test_with_auth_configured_a_visitor_must_log_in():
    at = AppTest.from_string(_GATED)
    at.secrets = {"auth": _AUTH}
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception, messages(at.exception)
    assert [b.label for b in at.button] == ["Log in"]
    assert "page body" not in [m.value for m in at.markdown]


def test_a_logged_in_user_sees_who_they_are_and_can_log_out():
    at = AppTest.from_string(_GATED + "st.write('author: ' + state.author())\n")
    at.secrets = {"auth": _AUTH}
    at.user = {"is_logged_in": True, "email": "eve@lab.org", "name": "Eve"}
    at.run()
    assert not at.exception, messages(at.exception)
    assert "page body" in [m.value for m in at.markdown]
    assert "author: eve@lab.org" in [m.value for m in at.markdown]
    assert ":material/person: eve@lab.org" in [c.value for c in at.sidebar.caption]
    at.sidebar.button(key="auth_logout").click()
    at.run()
    at.run()
    assert [b.label for b in at.button] == ["Log in"]
    assert "page body" not in [m.value for m in at.markdown]


def test_readme_shows_the_auth_keys_streamlit_reads():
    readme = (ROOT / "README.md").read_text()
    for key in ("[auth]", *_AUTH, "SVETLANA_USER_HEADER", "proxy_set_header",
                "--server.address 127.0.0.1"):
        assert key in readme, key


def test_with_login_configured_a_visitor_sees_only_the_login_button(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SVETLANA_DATA_ROOT", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback",
                          "cookie_secret": "x" * 32, "client_id": "svetlana",
                          "client_secret": "s", "server_metadata_url":
                          "https://idp.example.org/.well-known/openid-configuration"}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.selectbox and not at.text_input  # no project picker, no name field
