"""Finding a Graphviz renderer and running it; the picture object that shows itself in Jupyter.

Lookup order (the first that exists wins):

1. ``TINYRNN_DOT``: a path to a ``dot``-compatible program (``none`` turns rendering off);
2. the ``graphviz-pure`` program installed with the ``graphviz-pure`` package (found through
   the package's file list or this interpreter's scripts folder, so an unactivated virtual
   environment works);
3. ``graphviz-pure`` on ``PATH``; 4. Graphviz's ``dot`` on ``PATH``.

``graphviz-pure`` (a pip-installable, self-contained port of Graphviz) writes svg and png but
not pdf; a system Graphviz writes all three.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import graphviz

FORMATS = ("svg", "png", "pdf", "dot")
PNG_MAX_PIXELS = 8000  # longest side of a PNG; bigger drawings are scaled down to fit
PNG_DPI = 96
TIMEOUT_S = 300

HINT = (
    "render it with: pip install graphviz-pure && graphviz-pure -Tsvg {dot} -o {out}"
    "  (or, with Graphviz installed: dot -Tsvg {dot} -o {out})"
)


def find_renderer() -> str | None:
    """Path of the program used to render DOT, or None when there is none.

    >>> exe = find_renderer()
    >>> exe is None or os.path.exists(exe)
    True
    """
    env = os.environ.get("TINYRNN_DOT")
    if env is not None and env.strip():
        if env.strip().lower() == "none":
            return None
        found = shutil.which(env) or (env if os.path.isfile(env) else None)
        if found is None:
            raise RuntimeError(
                f"TINYRNN_DOT={env!r} is not an executable file; point it at a dot-compatible "
                "renderer (graphviz-pure or Graphviz's dot), or unset it"
            )
        return found
    try:
        dist = importlib.metadata.distribution("graphviz-pure")
        for f in dist.files or ():
            if f.name in ("graphviz-pure", "graphviz-pure.exe"):
                path = Path(str(f.locate())).resolve()
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    except importlib.metadata.PackageNotFoundError:
        pass
    scripts = sysconfig.get_path("scripts")
    return (
        shutil.which("graphviz-pure", path=scripts)
        or shutil.which("graphviz-pure")
        or shutil.which("dot")
    )


def run_renderer(exe: str, source: str, fmt: str) -> bytes:
    """Pipe DOT ``source`` through the renderer and return the image bytes."""
    if fmt == "pdf" and "graphviz-pure" in Path(exe).name:
        raise RuntimeError(
            f"render: format 'pdf' is not supported by graphviz-pure ({exe}), which writes svg "
            "and png; use format='svg' or 'png', or install Graphviz and set TINYRNN_DOT to its "
            "dot program"
        )
    cmd = [exe, f"-T{fmt}"]
    if fmt == "png":
        inches = PNG_MAX_PIXELS / PNG_DPI
        cmd += [f"-Gdpi={PNG_DPI}", f"-Gsize={inches:.2f},{inches:.2f}"]
    try:
        done = subprocess.run(
            cmd, input=source.encode("utf-8"), capture_output=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"render: {Path(exe).name} did not finish within {TIMEOUT_S} s; draw fewer nodes "
            "(max_nodes=..., rolled=True or collapse=True)"
        ) from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(
            f"render: {Path(exe).name} -T{fmt} failed (exit {done.returncode}): "
            + (" / ".join(err[:3]) or "no message")
        )
    return done.stdout


def point_graphviz_at(exe: str | None) -> None:
    """Let ``Digraph.pipe()/render()/view()`` use the found renderer when no ``dot`` is on
    PATH (the ``graphviz`` package runs ``dot`` by name)."""
    if exe is not None and shutil.which("dot") is None:
        graphviz.backend.dot_command.DOT_BINARY = Path(exe)


class Picture(graphviz.Digraph):
    """A ``graphviz.Digraph`` that shows itself as SVG in Jupyter through the renderer that
    ``find_renderer`` locates (no system Graphviz needed)."""

    def _repr_svg_(self) -> str | None:
        exe = find_renderer()
        if exe is None:
            return None
        return run_renderer(exe, self.source, "svg").decode("utf-8")

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None, **_: Any
    ) -> dict[str, str]:
        svg = self._repr_svg_()
        if svg is None:
            return {"text/plain": self.source}
        return {"image/svg+xml": svg}


def write(dot: graphviz.Digraph, path: str | os.PathLike[str], fmt: str) -> Path:
    """Write ``dot`` to ``path`` as ``fmt``; without a renderer, write ``.dot`` and say how to
    render it. Returns the path written."""
    if fmt not in FORMATS:
        raise ValueError(f"render: format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    out = Path(path)
    if not out.suffix:
        out = out.with_suffix(f".{fmt}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        out.write_text(dot.source, encoding="utf-8")
        return out
    exe = find_renderer()
    if exe is None:
        dot_path = out.with_suffix(".dot")
        dot_path.write_text(dot.source, encoding="utf-8")
        print(
            f"tinyrnn.viz: no Graphviz renderer found; wrote {dot_path}; "
            + HINT.format(dot=dot_path, out=out.with_suffix(".svg")),
            file=sys.stderr,
        )
        return dot_path
    data = run_renderer(exe, dot.source, fmt)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out
