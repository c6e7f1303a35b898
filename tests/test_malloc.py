"""``import tinyrnn`` keeps freed memory for reuse (glibc): a loop that frees and reallocates
the same large arrays stops taking page faults for fresh pages; ``TINYRNN_KEEP_FREED_MEMORY=0``
leaves malloc alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

glibc = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")

# Frees and reallocates two 3 MiB arrays and a 1 MiB one per round, as a training step does
# with its per-step arrays, and counts the minor page faults of rounds 3 to 22.
PROBE = """
import resource, numpy as np
import tinyrnn._malloc as m
import tinyrnn
def step():
    a = np.ones((2048, 384), np.float32)
    b = a * 2.0
    c = np.ones((2048, 128), np.float32)
    return float(b[-1, -1] + c[-1, -1])
for _ in range(3):
    step()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(m.keep_freed_memory(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
"""


def _probe(**env: str) -> tuple[bool, int]:
    full = {**os.environ, **env}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=full, timeout=120
    )
    assert out.returncode == 0, out.stderr
    done, faults = out.stdout.split()
    return done == "True", int(faults)


@pytest.mark.skipif(not glibc, reason="the tuning applies to glibc's malloc only")
def test_freed_memory_is_reused_without_page_faults():
    on, faults_on = _probe()
    off, faults_off = _probe(TINYRNN_KEEP_FREED_MEMORY="0")
    assert on and not off
    # 20 rounds touch 7 MiB each: about 36,000 fresh pages when malloc gives the memory back
    assert faults_off > 10_000, faults_off
    assert faults_on < faults_off / 20, (faults_on, faults_off)


def test_opt_out_leaves_malloc_alone():
    done, _ = _probe(TINYRNN_KEEP_FREED_MEMORY="0")
    assert done is False
