"""Every page renders without importing torch, so the app's first paint stays fast (``import
torch`` alone takes 2.4-3.7 s and ~650 MB here): on the demo project (no model yet) and on the
wave-1 fixture (a CNN, a forest and stored predictions: the Predict and Dashboard pages show a
model's classes, counts and maps).

Each page is rendered with AppTest in a fresh interpreter; on failure the test names the
project files on the stack of the first torch import.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["pages/project.py", "pages/annotate.py", "pages/object_map.py", "pages/train.py",
         "pages/predict.py", "pages/dashboard.py"]
HEAVY = ("torch", "torchvision", "captum", "albumentations")

RENDER = textwrap.dedent("""
    import importlib.abc, json, os, sys, traceback
    from pathlib import Path

    root, page, data, name = sys.argv[1:5]
    os.environ["SVETLANA_DATA_ROOT"] = data
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    sys.path.insert(0, root)
    first = []

    class Spy(importlib.abc.MetaPathFinder):
        # Records who imports torch first: the project files on the stack.
        def find_spec(self, name, path=None, target=None):
            if name == "torch" and not first:
                first.extend(f"{f.filename}:{f.lineno}" for f in traceback.extract_stack()
                             if f.filename.startswith(root) and "/tests/" not in f.filename)
            return None

    folder = Path(data) / "projects" / name
    if name == "demo":
        from svetlana_core.demo import create_demo

        create_demo(folder)
    else:  # the wave-1 fixture, its stored paths re-pointed to this copy
        import shutil, sqlite3

        shutil.copytree(Path(root) / "tests" / "fixtures" / "wave1", folder)
        with sqlite3.connect(folder / "project.sqlite") as conn:
            for table, column in (("images", "path"), ("images", "mask_path"),
                                  ("runs", "model_dir"), ("predictions", "model_dir")):
                conn.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)",
                             ("/tmp/svetlana-wave1", str(folder)))
    sys.meta_path.insert(0, Spy())
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(os.path.join(root, "app.py"), default_timeout=60)
    at.query_params["project"] = name
    at.run()
    at.switch_page(page)
    at.run()
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
    shown = [e.value for kind in ("title", "header", "subheader", "markdown", "caption", "info")
             for e in getattr(at, kind)]
    print(json.dumps({{"errors": [str(e.value) for e in at.exception], "shown": shown,
                      "heavy": [m for m in heavy if "." not in m], "first": first}}))
""").replace("{heavy!r}", repr(set(HEAVY))).replace("{{", "{").replace("}}", "}")


@pytest.mark.parametrize("project", ["demo", "wave1"])
@pytest.mark.parametrize("page", PAGES)
def test_a_page_renders_without_torch(page, project, tmp_path):
    result = subprocess.run([sys.executable, "-c", RENDER, str(ROOT), page, str(tmp_path),
                             project],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["errors"], report["errors"]
    # the page drew its content for this project, not the "choose a project" state
    shown = " ".join(map(str, report["shown"]))
    assert "demo_A01" in shown or "round" in shown or "labelled" in shown, shown[:500]
    assert not report["heavy"], (f"{page} imports {report['heavy']}; first torch import from "
                                 + " <- ".join(reversed(report["first"])))
