"""House rules that keep the layers apart (ARCHITECTURE.md, STYLE.md)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "svetlana_core"

#: Modules that must import without torch, so the app's first paint and ``--help`` stay fast.
TORCH_FREE = ["io", "objects", "patches", "store", "stats", "demo", "cli", "baseline", "metrics"]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_never_imports_streamlit(path):
    assert "streamlit" not in _imported_modules(path), f"{path.name} imports streamlit"


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_has_no_eval_or_pickle(path):
    tree = ast.parse(path.read_text())
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & {"eval", "exec"}, f"{path.name} calls eval/exec"
    if path.name != "io.py":
        # io.py reads Cellpose's *_seg.npy, a pickled dict, through a restricted
        # Unpickler that builds only numpy arrays and plain values (tested in test_io.py).
        assert "pickle" not in _imported_modules(path), f"{path.name} imports pickle"


@pytest.mark.parametrize("module", [m for m in TORCH_FREE if (CORE / f"{m}.py").exists()])
def test_light_modules_import_without_torch(module):
    code = (
        f"import sys, svetlana_core.{module}; "
        "bad = [m for m in ('torch', 'torchvision', 'streamlit') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"svetlana_core.{module} pulls in {result.stdout.strip()}"


def test_cli_help_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "svetlana_core", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0
    for command in ("objects", "import-labels", "export-labels", "demo"):
        assert command in result.stdout
