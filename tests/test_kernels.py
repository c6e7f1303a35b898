"""Every kernel in ``kernels.NAMES``: the jitted version against its NumPy twin (the spec).

Both dtypes, odd sizes, size-0 and size-1 edges, and non-contiguous inputs where an op may pass
them (the element-wise kernels get any view; the row-wise and cell kernels get contiguous
arrays from their ops). ``scripts/test.sh`` runs this file again with ``NUMBA_DISABLE_JIT=1``,
so the jitted source is also executed as plain Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from tinyrnn import kernels
from tinyrnn.kernels import jit, reference

DTYPES = [np.float32, np.float64]
# float32 results are O(1): a few float32 ulps (1.2e-7 each) of absolute error near 0 are expected
TOL = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-15)}

ELEMENTWISE_SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 3, 4), (0, 3)]
ROW_SHAPES = [(0, 4), (1, 1), (1, 5), (4, 1), (5, 7), (3, 0)]
CELL_SHAPES = [(0, 3), (1, 1), (3, 5)]  # (B, H)


def _noncontiguous(a: np.ndarray) -> list[np.ndarray]:
    """Views of the same values that are not C-contiguous: a transpose and a strided slice."""
    if a.ndim < 2:
        wide = np.repeat(a[..., None], 2, axis=-1)
        return [wide[..., 0]] if a.ndim == 1 else []
    return [np.ascontiguousarray(a.T).T, np.repeat(a, 2, axis=-1)[..., ::2]]


def _elementwise(rng, shape, dt, layout):
    x = np.asarray(rng.standard_normal(shape) * 4, dtype=dt)  # 0-d: an array, as ops pass
    x.flat[: min(x.size, 3)] = [0.0, 40.0, -40.0][: min(x.size, 3)]  # x == 0 and saturation
    g = np.asarray(rng.standard_normal(shape), dtype=dt)
    if layout == "noncontiguous":
        x, g = _noncontiguous(x)[0], _noncontiguous(g)[-1]
    return x, g


def _sigmoid(x):
    return reference.sigmoid_fwd(x)


CASES = {
    # name: (shapes, layouts, make(rng, shape, dtype, layout) -> args)
    "sigmoid_fwd": (ELEMENTWISE_SHAPES, ("contiguous", "noncontiguous"),
                    lambda rng, s, dt, lay: _elementwise(rng, s, dt, lay)[:1]),
    "sigmoid_bwd": (ELEMENTWISE_SHAPES, ("contiguous", "noncontiguous"),
                    lambda rng, s, dt, lay: (lambda x, g: (_sigmoid(x), g))(
                        *_elementwise(rng, s, dt, lay))),
    "tanh_bwd": (ELEMENTWISE_SHAPES, ("contiguous", "noncontiguous"),
                 lambda rng, s, dt, lay: (lambda x, g: (np.asarray(np.tanh(x)), g))(
                     *_elementwise(rng, s, dt, lay))),
    "relu_bwd": (ELEMENTWISE_SHAPES, ("contiguous", "noncontiguous"),
                 lambda rng, s, dt, lay: _elementwise(rng, s, dt, lay)),
    "log_softmax_fwd": (ROW_SHAPES, ("contiguous",), lambda rng, s, dt, lay: (_rows(rng, s, dt),)),
    "softmax_fwd": (ROW_SHAPES, ("contiguous",), lambda rng, s, dt, lay: (_rows(rng, s, dt),)),
    "log_softmax_bwd": (ROW_SHAPES, ("contiguous",), lambda rng, s, dt, lay: (
        reference.log_softmax_fwd(_rows(rng, s, dt)), rng.standard_normal(s).astype(dt))),
    "softmax_bwd": (ROW_SHAPES, ("contiguous",), lambda rng, s, dt, lay: (
        reference.softmax_fwd(_rows(rng, s, dt)), rng.standard_normal(s).astype(dt))),
    "cross_entropy_fwd": ([s for s in ROW_SHAPES if s[1] > 0], ("contiguous",),
                          lambda rng, s, dt, lay: (_rows(rng, s, dt), _targets(rng, s), -100)),
    "cross_entropy_bwd": ([s for s in ROW_SHAPES if s[1] > 0], ("contiguous",),
                          lambda rng, s, dt, lay: _ce_bwd_args(rng, s, dt)),
    "lstm_cell_fwd": (CELL_SHAPES, ("contiguous",), lambda rng, s, dt, lay: (
        _rows(rng, (s[0], 4 * s[1]), dt), rng.standard_normal(s).astype(dt))),
    "lstm_cell_bwd": (CELL_SHAPES, ("contiguous",),
                      lambda rng, s, dt, lay: _lstm_bwd_args(rng, s, dt)),
    "gru_cell_fwd": (CELL_SHAPES, ("contiguous",), lambda rng, s, dt, lay: (
        _rows(rng, (s[0], 3 * s[1]), dt), _rows(rng, (s[0], 3 * s[1]), dt),
        rng.standard_normal(s).astype(dt))),
    "gru_cell_bwd": (CELL_SHAPES, ("contiguous",),
                     lambda rng, s, dt, lay: _gru_bwd_args(rng, s, dt)),
}


def _rows(rng, shape, dt):
    x = (rng.standard_normal(shape) * 3).astype(dt)
    if x.size:
        x.flat[0] = 60.0  # exp would overflow without the max shift
    return x


def _targets(rng, shape):
    B, C = shape
    t = rng.integers(0, C, B).astype(np.int64)
    t[::3] = -100  # ignored rows
    return t


def _ce_bwd_args(rng, s, dt):
    _, probs = reference.cross_entropy_fwd(_rows(rng, s, dt), _targets(rng, s), -100)
    return probs, _targets(rng, s), -100, rng.standard_normal(s[0]).astype(dt)


def _lstm_bwd_args(rng, s, dt):
    gates = _rows(rng, (s[0], 4 * s[1]), dt)
    c_prev = rng.standard_normal(s).astype(dt)
    _, _, acts, tanh_c = reference.lstm_cell_fwd(gates, c_prev)
    grad_h, grad_c = rng.standard_normal((2, *s)).astype(dt)
    return acts, c_prev, tanh_c, grad_h, grad_c


def _gru_bwd_args(rng, s, dt):
    gi, gh = _rows(rng, (s[0], 3 * s[1]), dt), _rows(rng, (s[0], 3 * s[1]), dt)
    h_prev = rng.standard_normal(s).astype(dt)
    _, acts = reference.gru_cell_fwd(gi, gh, h_prev)
    return acts, gh, h_prev, rng.standard_normal(s).astype(dt)


PARAMS = [
    pytest.param(name, shape, dt, layout, id=f"{name}-{shape}-{dt.__name__}-{layout}")
    for name, (shapes, layouts, _) in CASES.items()
    for shape in shapes
    for dt in DTYPES
    for layout in layouts
    if shape != () or layout == "contiguous"  # a 0-d array has no non-contiguous view
]


def test_every_kernel_has_cases():
    assert set(CASES) == set(kernels.NAMES)


def test_every_kernel_has_a_twin_with_the_same_signature():
    import inspect

    for name in kernels.NAMES:
        ref_fn, jit_fn = getattr(reference, name), getattr(jit, name)
        jit_py = getattr(jit_fn, "py_func", jit_fn)  # the Python source under @njit
        assert inspect.signature(ref_fn) == inspect.signature(jit_py), name
        assert ref_fn.__doc__ and jit_py.__doc__, f"{name} needs a docstring in both files"


def _as_list(out):
    return list(out) if isinstance(out, tuple) else [out]


@pytest.mark.parametrize(("name", "shape", "dt", "layout"), PARAMS)
def test_jit_matches_reference(name, shape, dt, layout):
    # a seed that is the same in every process (str hashes are salted per process)
    rng = np.random.default_rng(zlib.crc32(repr((name, shape, layout)).encode()))
    args = CASES[name][2](rng, shape, dt, layout)
    before = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    want = _as_list(getattr(reference, name)(*args))
    got = _as_list(getattr(jit, name)(*args))
    for a, b in zip(args, before, strict=True):  # kernels never write into their inputs
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"{name}: shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype == dt, f"{name}: dtype {g.dtype}, reference {w.dtype}"
        np.testing.assert_allclose(g, w, **TOL[dt], err_msg=name)
        assert np.all(np.isfinite(g)), f"{name} produced a non-finite value"


def test_sigmoid_is_stable_at_the_extremes():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    for module in (jit, reference):
        y = module.sigmoid_fwd(x)
        assert np.all(np.isfinite(y))
        assert y[0] == 0.0 and y[2] == 0.5 and y[4] == 1.0
        np.testing.assert_allclose(y[1], np.exp(-50.0), rtol=1e-12)  # no cancellation


def test_elementwise_kernels_are_numpy_ufuncs_once_used():
    """The jitted element-wise kernels become plain NumPy ufuncs (called from C) on first use;
    like NumPy's own, they broadcast and turn integer inputs into float64."""
    if os.environ.get("TINYRNN_KERNELS", "numba") == "numpy":
        pytest.skip("the NumPy twins are selected")
    kernels.load("numba")
    y = np.array([[0.5, -0.25]], np.float32)
    g = np.array([[2.0], [3.0]], np.float32)  # broadcasts against y
    np.testing.assert_allclose(kernels.tanh_bwd(y, g), reference.tanh_bwd(y, g), rtol=1e-6)
    assert isinstance(kernels.tanh_bwd, np.ufunc)
    for module in (jit, reference):
        out = module.sigmoid_fwd(np.array([-2, 0, 3]))
        assert out.dtype == np.float64, module.__name__
        np.testing.assert_allclose(out, 1 / (1 + np.exp(-np.array([-2.0, 0.0, 3.0]))))


def test_log_softmax_is_stable_for_large_logits():
    x = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    for module in (jit, reference):
        y = module.log_softmax_fwd(x)
        np.testing.assert_allclose(y, [[0.0, -1000.0, -2000.0]])
        np.testing.assert_allclose(module.softmax_fwd(x), [[1.0, 0.0, 0.0]])


def test_load_switches_every_kernel_and_back():
    try:
        kernels.load("numpy")
        assert all(getattr(kernels, n) is getattr(reference, n) for n in kernels.NAMES)
        kernels.load("numba")
        for n in kernels.NAMES:  # an element-wise kernel, once built, is its NumPy ufunc
            fn = getattr(jit, n)
            assert getattr(kernels, n) in (fn, getattr(fn, "ufunc", None)), n
    finally:
        kernels.load()


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120
    )


def test_env_var_selects_the_numpy_twins_without_importing_numba():
    code = (
        "import sys, tinyrnn as tr\n"
        "from tinyrnn import kernels\n"
        "x = tr.tensor([0.5, -1.0], requires_grad=True)\n"
        "x.sigmoid().sum().backward()\n"
        "assert kernels.sigmoid_fwd.__module__ == 'tinyrnn.kernels.reference'\n"
        "assert 'numba' not in sys.modules, 'numba was imported'\n"
        "print(kernels.backend_name())\n"
    )
    out = _run(code, TINYRNN_KERNELS="numpy")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "numpy"


def test_bad_backend_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TINYRNN_KERNELS", "cuda")
    expected = r"TINYRNN_KERNELS='cuda': expected one of \['numba', 'numpy'\]"
    with pytest.raises(ValueError, match=expected):
        kernels.backend_name()
