"""The README's set-up commands work on this clone.

``scripts/test.sh`` (the README's test command, which CI runs on a fresh clone) creates
``.venv`` and runs this suite from it; this test then runs the README's other command,
``scripts/demo.sh``, in the same fresh environment (quick mode, to keep CI short).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_REPO_VENV = Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()


def test_readme_names_both_scripts():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/demo.sh" in readme and "bash scripts/test.sh" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash scripts/test.sh" in ci


@pytest.mark.slow
@pytest.mark.skipif(not IN_REPO_VENV, reason="runs from the .venv that scripts/test.sh makes")
def test_demo_script_runs_the_main_job(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh"), "--quick", "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = {p.name for p in (tmp_path / "demo").iterdir()}
    assert {"unrolled.svg", "rolled.svg", "checkpoint.npz"} <= written, written
