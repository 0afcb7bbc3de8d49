"""Print the largest modules and functions of svetlana_core, ui/ and pages/.

    python bench/code_size.py [--top 10]

A function's size counts its lines of code: its whole span less its docstring, blank lines and
comment-only lines. tests/test_architecture.py holds the limits (a module ~600 lines, a function
~80 lines of code); this prints where the code stands against them.
"""

from __future__ import annotations

import argparse
import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("svetlana_core", "ui", "pages")


def _comment_or_blank_lines(source: str) -> set[int]:
    """Line numbers (1-based) that hold only a comment or nothing."""
    code_lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                              tokenize.DEDENT, tokenize.ENDMARKER):
            code_lines.update(range(token.start[0], token.end[0] + 1))
    return set(range(1, source.count("\n") + 2)) - code_lines


def function_sizes(path: Path) -> list[tuple[str, int, int]]:
    """``(qualified name, first line, lines of code)`` of every function in a file."""
    source = path.read_text()
    tree = ast.parse(source)
    empty = _comment_or_blank_lines(source)
    sizes = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = set(range(child.lineno, child.end_lineno + 1)) - empty
                body = child.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                        and isinstance(body[0].value.value, str):
                    lines -= set(range(body[0].lineno, body[0].end_lineno + 1))
                sizes.append((f"{prefix}{child.name}", child.lineno, len(lines)))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return sizes


def python_files(folders: tuple[str, ...] = FOLDERS) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    files = python_files()
    modules = sorted(((len(p.read_text().splitlines()), p.relative_to(ROOT)) for p in files),
                     reverse=True)
    functions = sorted(((size, f"{p.relative_to(ROOT)}:{line} {name}")
                        for p in files for name, line, size in function_sizes(p)), reverse=True)
    core = [n for n, p in modules if p.parts[0] == "svetlana_core"]
    print(f"{len(files)} files; svetlana_core: {len(core)} modules, {sum(core)} lines, "
          f"median {sorted(core)[len(core) // 2]} lines")
    print("largest modules (lines):")
    for n, p in modules[: args.top]:
        print(f"  {n:5d}  {p}")
    print(f"largest functions (lines of code, docstring excluded), of {len(functions)}:")
    for n, where in functions[: args.top]:
        print(f"  {n:5d}  {where}")


if __name__ == "__main__":
    main()
