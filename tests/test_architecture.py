"""House rules that keep the layers apart (ARCHITECTURE.md, STYLE.md), checked on the source."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "svetlana_core"
sys.path.insert(0, str(ROOT / "bench"))
from code_size import function_sizes  # noqa: E402

#: The core's packages in the order data flows: a package may import those before it, never
#: those after it. ``store`` and ``jobs`` stand beside the chain (they import it; it never
#: imports them); ``demo`` and ``cli`` sit on top.
ORDER = ["errors", "values", "lazy", "io", "plate", "objects", "stats", "patches", "models", "training",
         "baseline", "predict", "explain", "store", "jobs", "demo", "cli", "__main__"]
#: Modules every package may use (messages, value checks, lazy exports).
FOUNDATION = {"errors", "values", "lazy"}

#: Packages and modules that must import without torch, so the app's first paint and the
#: CLI's ``--help`` stay fast (the lazy packages included: their torch loads on first use).
TORCH_FREE = ["io", "plate", "objects", "stats", "patches", "store", "jobs", "demo", "cli",
              "baseline", "models", "models.registry", "models.folder", "models.inference",
              "training", "training.config", "training.split", "predict", "predict.backends",
              "predict.image", "predict.task", "predict.many", "predict.cluster",
              "predict.evaluate", "explain"]

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

CORE_FILES = sorted(CORE.rglob("*.py"))


def _part(path: Path) -> str:
    """The package (or top-level module) of the core a file belongs to."""
    relative = path.relative_to(CORE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _core_imports(path: Path) -> list[tuple[int, str]]:
    """Every ``svetlana_core.<part>`` a file imports, at any depth (lazy imports count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "svetlana_core":
                names = [f"svetlana_core.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "svetlana_core" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_core_package_has_a_place_in_the_order():
    parts = {_part(p) for p in CORE_FILES} - {"__init__"}
    assert parts <= set(ORDER), f"place {sorted(parts - set(ORDER))} in ORDER"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_imports_run_forward_only(path):
    here = _part(path)
    if here == "__init__":
        return
    backward = [
        f"{path.relative_to(ROOT)}:{line} imports svetlana_core.{target}"
        for line, target in _core_imports(path)
        if target != here and target not in FOUNDATION
        and ORDER.index(target) > ORDER.index(here)
    ]
    assert not backward, "imports against the data path: " + "; ".join(backward)


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_imports_are_absolute(path):
    # The forward-only check reads absolute module names; a relative import would slip past it.
    relative = [node.lineno for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) and node.level > 0]
    assert not relative, f"{path.relative_to(ROOT)}: relative import at line(s) {relative}"


@pytest.mark.parametrize("package", ["models", "training", "predict", "explain"])
def test_lazy_exports_point_inside_their_package(package):
    # The lazy map names modules as strings, which the import scan does not see.
    tree = ast.parse((CORE / package / "__init__.py").read_text())
    exports = next(ast.literal_eval(node.value) for node in tree.body
                   if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_EXPORTS")
    outside = sorted({m for m in exports.values() if not m.startswith(f"svetlana_core.{package}.")})
    assert not outside, f"{package} exports names from {outside}"


def test_the_chain_never_imports_store_or_jobs():
    chain = ORDER[: ORDER.index("explain") + 1]
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports svetlana_core.{target}"
        for path in CORE_FILES if _part(path) in chain
        for line, target in _core_imports(path) if target in ("store", "jobs")
    ]
    assert not offenders, "; ".join(offenders)


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_never_imports_streamlit(path):
    assert "streamlit" not in _imported_modules(path), f"{path.name} imports streamlit"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_has_no_eval_or_pickle(path):
    tree = ast.parse(path.read_text())
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & {"eval", "exec"}, f"{path.name} calls eval/exec"
    if path.relative_to(CORE) != Path("io/cellpose.py"):
        # io/cellpose.py reads Cellpose's *_seg.npy, a pickled dict, through a restricted
        # Unpickler that builds only numpy arrays and plain values (tested in tests/io).
        assert "pickle" not in _imported_modules(path), f"{path.name} imports pickle"


@pytest.mark.parametrize("module", TORCH_FREE)
def test_light_modules_import_without_torch(module):
    code = (
        f"import sys, svetlana_core.{module}; "
        "bad = [m for m in ('torch', 'torchvision', 'streamlit', 'albumentations') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"svetlana_core.{module} pulls in {result.stdout.strip()} {result.stderr[-500:]}")


def test_every_lazy_export_resolves():
    # The lazy packages map names to modules by hand-written strings: each must exist.
    code = (
        "import importlib\n"
        "for pkg in ('models', 'training', 'predict', 'explain'):\n"
        "    module = importlib.import_module('svetlana_core.' + pkg)\n"
        "    for name in module.__all__:\n"
        "        getattr(module, name)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-1500:]


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_functions_stay_short(path):
    long = [f"{name} (line {line}): {size} lines of code"
            for name, line, size in function_sizes(path) if size > MAX_FUNCTION_LINES]
    assert not long, f"{path.relative_to(ROOT)}: " + "; ".join(long)


def test_cli_help_lists_commands_without_loading_torch():
    code = ("import runpy, sys\n"
            "sys.argv = ['svetlana_core', '--help']\n"
            "try:\n    runpy.run_module('svetlana_core', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-1000:]
    assert result.stdout.strip().endswith("NO TORCH"), result.stdout[-300:]
    listed = set(re.findall(r"^    ([a-z-]+)", result.stdout, re.M))
    assert {"objects", "import-labels", "export-labels", "demo", "train", "evaluate", "predict",
            "gradcam"} <= listed, listed
