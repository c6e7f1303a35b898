"""Imports go down the layers of STYLE.md, never up; the renderer is a leaf.

Every module of the package is parsed with ``ast`` (imports inside functions count too) and
mapped to a group of the table below. A module may import its own group and groups of a strictly
lower rank. A new module that matches no group fails the test until it is given a place here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinyrnn"

# group (module prefix) -> rank, bottom to top
RANKS = {
    # 1. independent bottom layers: pure array code, graph mechanism, dtypes, randomness, data
    "tinyrnn.kernels": 1,
    "tinyrnn.engine": 1,
    "tinyrnn._dtype": 1,
    "tinyrnn._random": 1,
    "tinyrnn.data": 1,
    # 2. Function subclasses on arrays
    "tinyrnn.ops": 2,
    # BLAS thread control for the applications, on top of kernels.openblas
    "tinyrnn._blas": 2,
    # 3. the two node types
    "tinyrnn.tensor": 3,
    "tinyrnn.value": 3,
    # 4. tools that build and perturb tensors
    "tinyrnn.autograd": 4,
    "tinyrnn.compile": 4,
    # 5. neural network modules
    "tinyrnn.nn": 5,
    # 6. training and persistence
    "tinyrnn.optim": 6,
    "tinyrnn.serialization": 6,
    # 7. graph pictures: a leaf of the library
    "tinyrnn.viz": 7,
    # 8. the public facade (loads nn, optim, viz lazily, by name)
    "tinyrnn": 8,
    # 9. applications on top of the library
    "tinyrnn.cli": 9,
    "tinyrnn.__main__": 9,
    "tinyrnn.charmodel": 9,
    "tinyrnn.worked_example": 9,
}
APPS = {group for group, rank in RANKS.items() if rank == 9}  # one group: they may share code

# third-party packages and the groups allowed to import them
THIRD_PARTY = {
    "numba": {"tinyrnn.kernels", "tinyrnn.compile"},
    "llvmlite": {"tinyrnn.kernels", "tinyrnn.compile"},
    "graphviz": {"tinyrnn.viz"},
    "torch": set(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _group(module: str) -> str | None:
    """The longest table prefix that ``module`` falls under."""
    best = None
    for prefix in RANKS:
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return best


def _imports(module: str, is_package: bool, source: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                target = ".".join(parts[: len(parts) - node.level + 1] + [node.module or ""])
                target = target.rstrip(".")
            else:
                target = node.module or ""
            if node.module is None:  # from . import x: x is a module or a name of the package
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def _violations(module: str, is_package: bool, source: str) -> list[str]:
    group = _group(module)
    if group is None:
        return [f"{module} has no layer in RANKS"]
    bad = []
    for line, target in _imports(module, is_package, source):
        top = target.split(".")[0]
        if top in THIRD_PARTY and group not in THIRD_PARTY[top]:
            allowed = THIRD_PARTY[top]
            bad.append(f"line {line}: {module} imports {target}, allowed only in {allowed}")
        if top != "tinyrnn":
            continue
        tgroup = _group(target)
        if tgroup == group or (group in APPS and tgroup in APPS):
            continue
        if tgroup is None or RANKS[tgroup] >= RANKS[group]:
            rank = RANKS.get(tgroup) if tgroup else "?"
            bad.append(
                f"line {line}: {module} (rank {RANKS[group]}) imports {target} (rank {rank}): "
                "imports must go to a lower layer"
            )
    return bad


def _file_imports(path: Path) -> list[tuple[int, str]]:
    return _imports(_module_name(path), path.name == "__init__.py", path.read_text())


FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    missing = [_module_name(f) for f in FILES if _group(_module_name(f)) is None]
    assert not missing, f"modules with no layer in tests/test_layering.py RANKS: {missing}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: _module_name(p))
def test_imports_only_go_down(path):
    bad = _violations(_module_name(path), path.name == "__init__.py", path.read_text())
    assert not bad, "\n".join(bad)


def test_viz_is_a_leaf():
    """Nothing in the library imports the renderer; only applications on top do."""
    users = [
        f"{_module_name(f)} line {line}"
        for f in FILES
        for line, target in _file_imports(f)
        if _group(target) == "tinyrnn.viz"
        and _group(_module_name(f)) not in APPS | {"tinyrnn.viz"}
    ]
    assert not users, f"library modules importing tinyrnn.viz: {users}"


def test_kernels_import_no_other_tinyrnn_module():
    for f in FILES:
        if _group(_module_name(f)) == "tinyrnn.kernels":
            targets = [t for _, t in _file_imports(f) if t.split(".")[0] == "tinyrnn"]
            assert all(_group(t) == "tinyrnn.kernels" for t in targets), (_module_name(f), targets)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("tinyrnn.engine.graph", "from ..tensor import Tensor\n", "tinyrnn.tensor (rank 3)"),
        ("tinyrnn.engine.graph", "from . import mode\n", None),
        ("tinyrnn.ops.fused", "import tinyrnn\n", "imports tinyrnn (rank 8)"),
        ("tinyrnn.tensor", "from .value import Value\n", "imports tinyrnn.value (rank 3)"),
        ("tinyrnn.nn.cells", "from ..viz import draw\n", "imports tinyrnn.viz (rank 7)"),
        ("tinyrnn.nn.cells", "from ..ops.fused import LSTMCellStep\n", None),
        ("tinyrnn.tensor", "import graphviz\n", "allowed only in {'tinyrnn.viz'}"),
        ("tinyrnn.cli", "from .charmodel import train\nfrom . import viz\n", None),
    ],
)
def test_the_checker_itself(module, source, expected):
    bad = _violations(module, False, source)
    if expected is None:
        assert bad == []
    else:
        assert len(bad) == 1 and expected in bad[0], bad
