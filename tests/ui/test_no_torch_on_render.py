"""Every page of the demo project renders without importing torch (no model is used), so the
app's first paint stays fast (``import torch`` alone takes 2.4-3.7 s and ~650 MB here).

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
PAGES = ["pages/project.py", "pages/annotate.py", "pages/train.py", "pages/predict.py",
         "pages/dashboard.py"]
HEAVY = ("torch", "torchvision", "captum", "albumentations")

RENDER = textwrap.dedent("""
    import importlib.abc, json, os, sys, traceback
    from pathlib import Path

    root, page, data = sys.argv[1:4]
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

    from svetlana_core.demo import create_demo

    create_demo(Path(data) / "projects" / "demo")
    sys.meta_path.insert(0, Spy())
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(os.path.join(root, "app.py"), default_timeout=60)
    at.query_params["project"] = "demo"
    at.run()
    at.switch_page(page)
    at.run()
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
    print(json.dumps({{"errors": [str(e.value) for e in at.exception],
                      "heavy": [m for m in heavy if "." not in m], "first": first}}))
""").replace("{heavy!r}", repr(set(HEAVY))).replace("{{", "{").replace("}}", "}")


@pytest.mark.parametrize("page", PAGES)
def test_a_page_renders_without_torch(page, tmp_path):
    result = subprocess.run([sys.executable, "-c", RENDER, str(ROOT), page, str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["errors"], report["errors"]
    assert not report["heavy"], (f"{page} imports {report['heavy']}; first torch import from "
                                 + " <- ".join(reversed(report["first"])))
