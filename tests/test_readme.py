"""The README's Python snippets run as written (in order, in one namespace, in a temp folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_snippets():
    assert len(_snippets()) >= 4


@pytest.mark.slow
def test_readme_snippets_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in _snippets():
        exec(compile(code, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    # the seed example's corrected h2 and U_h gradient, as printed in the README
    assert "tensor([0.49189103, 0.9282668 ], grad_fn=<TanhBackward>)" in out
    assert "[[0.40710682, 0.3503048 ]," in out and "[0.07428507, 0.06392036]]" in out
    assert (tmp_path / "lstm.npz").exists()
    assert namespace["loss"].item() >= 0
    for name in ("lstm.svg", "lstm_rolled.svg", "lstm_grads.svg"):
        written = list(tmp_path.glob(name.replace(".svg", ".*")))
        assert written, f"{name} (or its .dot fallback) was not written"
