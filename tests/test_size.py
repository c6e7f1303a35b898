"""Small is measured: code-line budgets for the core, the nn package and the renderer.

A code line is a line holding a token that is not a comment or part of a docstring: blank lines,
comments and documentation are free, so the budget never argues against explaining things.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinyrnn"

CORE = ["kernels", "engine", "ops", "tensor.py", "value.py", "autograd", "_dtype.py", "_random.py"]
BUDGETS = {
    # (3335: the per-op paths of Function.apply make their Tensor inline, as a call there
    # costs a tenth of a small op; gradients come in their parameter's memory order;
    # 3422: kernels.gemm binds OpenBLAS's unpacked float32 kernel, checked once, or a stand-in)
    "core (kernels, engine, ops, tensor, value, autograd)": (CORE, 3422),
    "nn": (["nn"], 3500),
    "viz": (["viz"], 2500),
}


def code_lines(source: str) -> int:
    """Lines with code on them, docstrings and comments excluded."""
    docstring_lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstring_lines.update(range(value.lineno, value.end_lineno + 1))
    lines = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in skip:
            continue
        for line in range(tok.start[0], tok.end[0] + 1):
            if line not in docstring_lines:
                lines.add(line)
    return len(lines)


def _files(parts: list[str]) -> list[Path]:
    out = []
    for part in parts:
        path = PACKAGE / part
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
    return out


@pytest.mark.parametrize("name", list(BUDGETS))
def test_code_line_budget(name):
    parts, budget = BUDGETS[name]
    files = _files(parts)
    assert files, f"no files found for {name}"
    counts = {str(f.relative_to(PACKAGE)): code_lines(f.read_text()) for f in files}
    total = sum(counts.values())
    biggest = sorted(counts.items(), key=lambda kv: -kv[1])[:5]
    assert total <= budget, f"{name}: {total} code lines > budget {budget}; largest: {biggest}"


def test_code_lines_counts_only_code():
    source = '''"""Module docstring
over two lines."""

# a comment
def f(x):
    """Docstring."""
    y = [x,
         x]  # trailing comment
    return y
'''
    assert code_lines(source) == 4  # def, the two lines of the list, return


def test_no_source_file_is_a_god_file():
    """One concern per file: a few hundred code lines (STYLE.md); 700 is the hard ceiling."""
    big = {
        str(f.relative_to(PACKAGE)): n
        for parts, _ in BUDGETS.values()
        for f in _files(parts)
        if (n := code_lines(f.read_text())) > 700
    }
    assert not big, f"files over 700 code lines: {big}"
