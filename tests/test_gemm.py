"""``kernels.gemm``: ``out = a @ b + beta * out`` from compiled code through NumPy's BLAS, its
``np.dot`` fallback, and the thread control around the sequence kernels."""

from __future__ import annotations

import ctypes

import numba
import numpy as np
import pytest

from tinyrnn.kernels import gemm as G
from tinyrnn.kernels import seq_jit
from tinyrnn.kernels.openblas import bundled_openblas_paths


@numba.njit(cache=False)
def _compiled(a, b, out, beta):
    return G.gemm(a, b, out, beta)


def _arrays(m, k, n, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    return a, b, rng.standard_normal((m, n)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
@pytest.mark.parametrize(
    "shape",
    # float32, beta 0: (32, 128, 512), (3, 5, 7), (1, 1, 1), (100, 64, 128) take the unpacked
    # kernel where it is bound (M <= 64 or K N <= 2^18); (70, 600, 450) the packed one
    [(32, 128, 512), (3, 5, 7), (1, 1, 1), (4, 0, 3), (0, 3, 2), (100, 64, 128), (70, 600, 450)],
)
def test_compiled_gemm_matches_numpy(dtype, beta, shape):
    a, b, c = _arrays(*shape, dtype, seed=sum(shape))
    want = a.astype(np.float64) @ b.astype(np.float64) + beta * c.astype(np.float64)
    got = _compiled(a, b, c.copy(), beta)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1, shape[1]))
    np.testing.assert_allclose(G.gemm(a, b, c.copy(), beta), want, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(True, False), (False, True), (True, True)])
def test_transposed_operands_go_in_with_transpose_flags(dtype, ta, tb):
    a, b, c = _arrays(7, 5, 6, dtype, seed=4)
    a_in = np.ascontiguousarray(a.T).T if ta else a  # Fortran-ordered views of C arrays
    b_in = np.ascontiguousarray(b.T).T if tb else b
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for beta in (0.0, 1.0):
        np.testing.assert_allclose(
            _compiled(a_in, b_in, c.copy(), beta), a @ b + beta * c, rtol=tol, atol=tol
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_fortran_out_is_filled_through_its_transpose(dtype, ta, tb):
    """A column-major ``out`` (the gradient of ``W.T`` in a compiled cell) is filled in place,
    as ``out^T = b^T a^T`` on the row-major ``out^T``."""
    a, b, c = _arrays(7, 5, 6, dtype, seed=6)
    a_in = np.ascontiguousarray(a.T).T if ta else a
    b_in = np.ascontiguousarray(b.T).T if tb else b
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for beta in (0.0, 1.0):
        out = np.asfortranarray(c)
        got = _compiled(a_in, b_in, out, beta)
        assert got is out and out.flags.f_contiguous
        np.testing.assert_allclose(out, a @ b + beta * c, rtol=tol, atol=tol)
        out = np.asfortranarray(c)
        np.testing.assert_allclose(G.gemm(a_in, b_in, out, beta), a @ b + beta * c, rtol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fallback_handles_transpose_flags(dtype):
    fn = G._fallback(dtype)
    a, b, c = _arrays(3, 4, 5, dtype, seed=5)
    at, bt = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)  # stored (k, m) and (n, k)
    ptr = fn.ctypes.argtypes[7]
    fn.ctypes(101, 112, 112, 3, 5, 4, 1.0, at.ctypes.data_as(ptr), 3, bt.ctypes.data_as(ptr), 4,
              0.0, c.ctypes.data_as(ptr), 5)  # fmt: skip
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, a @ b, rtol=tol, atol=tol)


@pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaPerformanceWarning")
def test_non_contiguous_operands_take_np_dot():
    a, b, c = _arrays(6, 4, 5, np.float64, seed=1)
    at = np.asfortranarray(a)
    np.testing.assert_allclose(_compiled(at, b[:, ::1], c.copy(), 1.0), a @ b + c, rtol=1e-12)
    bt = np.ascontiguousarray(np.concatenate([b, b], axis=1))[:, ::2]  # strided view
    np.testing.assert_allclose(_compiled(a, bt, c.copy(), 0.0), a @ bt, rtol=1e-12)


def test_shape_mismatch_is_an_error():
    a, b, c = _arrays(3, 4, 5, np.float32, seed=2)
    with pytest.raises(ValueError, match=r"gemm: shapes do not match \(M, K\) @ \(K, N\)"):
        _compiled(a, b[:3], c, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fallback_has_the_cblas_interface(dtype):
    """The fallback bound when NumPy's BLAS is not found: called here through ctypes with the
    ILP64 cblas argument list, on operands with leading dimensions wider than the matrices."""
    fn = G._fallback(dtype)
    rng = np.random.default_rng(3)
    A = rng.standard_normal((3, 6)).astype(dtype)  # a = A[:, :4], lda = 6
    B = rng.standard_normal((4, 7)).astype(dtype)  # b = B[:, :5], ldb = 7
    C = rng.standard_normal((3, 8)).astype(dtype)  # c = C[:, :5], ldc = 8
    want = 2.0 * (A[:, :4] @ B[:, :5]) + 0.5 * C[:, :5]
    tail = C[:, 5:].copy()
    fn.ctypes(101, 111, 111, 3, 5, 4, 2.0, A.ctypes.data_as(fn.ctypes.argtypes[7]), 6,
              B.ctypes.data_as(fn.ctypes.argtypes[9]), 7, 0.5,
              C.ctypes.data_as(fn.ctypes.argtypes[12]), 8)  # fmt: skip
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(C[:, :5], want, rtol=tol, atol=tol)
    np.testing.assert_array_equal(C[:, 5:], tail)  # columns past n are left alone


def test_backend_is_reported():
    assert G.BACKEND in ("numpy-openblas", "np.dot", "numpy")


def test_one_blas_thread_restores_every_library():
    pairs = seq_jit._blas_controls()
    before = [int(get()) for get, _ in pairs]
    with seq_jit.one_blas_thread():
        assert all(int(get()) == 1 for get, _ in pairs)
    assert [int(get()) for get, _ in pairs] == before


def _padded(m, k, n, seed):
    """float32 ``A`` (m, k+2), ``B`` (k, n+3), ``C`` (m, n+1): operands with leading dimensions
    wider than the matrices, as the direct kernel's interface allows."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, k + 2)).astype(np.float32)
    B = rng.standard_normal((k, n + 3)).astype(np.float32)
    return A, B, rng.standard_normal((m, n + 1)).astype(np.float32)


def _through_direct_interface(address, m, k, n, seed):
    """``C = A B`` through the direct interface at ``address``, on operands with leading
    dimensions wider than the matrices: (result, float64 product, C's column past n before
    and after)."""
    fp = ctypes.POINTER(ctypes.c_float)
    A, B, C = _padded(m, k, n, seed)
    tail = C[:, n:].copy()
    G._direct_fn(address)(m, n, k, A.ctypes.data_as(fp), k + 2, B.ctypes.data_as(fp), n + 3,
                          C.ctypes.data_as(fp), n + 1)  # fmt: skip
    want = A[:, :k].astype(np.float64) @ B[:, :n].astype(np.float64)
    return C[:, :n], want, tail, C[:, n:]


@pytest.mark.parametrize("shape", [(32, 128, 512), (5, 7, 3), (1, 33, 17), (70, 9, 40)])
def test_direct_standin_is_cblas_with_the_direct_interface(shape):
    """What ``tinyrnn_sgemm_direct`` is bound to where the unpacked kernel is not used."""
    got, want, tail, after = _through_direct_interface(
        G._direct_standin().address, *shape, seed=sum(shape)
    )
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * shape[1])
    np.testing.assert_array_equal(after, tail)  # the column past n is left alone


@pytest.mark.parametrize("shape", [(32, 128, 512), (5, 7, 3), (1, 33, 17), (70, 9, 40)])
def test_unpacked_kernel_where_bound(shape):
    if not G.DIRECT:
        pytest.skip("OpenBLAS's unpacked float32 kernel is not used on this machine")
    found = G._find(bundled_openblas_paths())
    got, want, tail, after = _through_direct_interface(
        found["tinyrnn_sgemm_direct"], *shape, seed=sum(shape)
    )
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * shape[1])
    np.testing.assert_array_equal(after, tail)  # the column past n is left alone


class _FakeLib:
    """A library object with the given symbols (ctypes-like attributes)."""

    def __init__(self, core: bytes | None, direct: bool):
        if direct:
            self.sgemm_direct_SKYLAKEX = ctypes.cast(ctypes.c_void_p(1), ctypes.c_void_p)
        if core is not None:
            self.openblas_get_corename = lambda: core


def test_the_direct_interface_is_checked_before_use():
    assert G._direct_works(G._direct_standin().address)
    i64, ptr = numba.int64, numba.types.CPointer(numba.float32)
    sig = numba.types.void(i64, i64, i64, ptr, i64, ptr, i64, ptr, i64)

    @numba.cfunc(sig)
    def swapped(m, n, k, a, lda, b, ldb, c, ldc):  # a kernel taking (M, K, N): wrong results
        G._sgemm_nn(m, k, n, a, lda, b, ldb, c, ldc)

    assert not G._direct_works(swapped.address)


def test_unpacked_kernel_is_refused_without_its_preconditions(monkeypatch):
    monkeypatch.setattr(G, "_direct_works", lambda address: True)
    monkeypatch.setattr(G.llb, "get_host_cpu_features", lambda: dict.fromkeys(G._AVX512, True))
    monkeypatch.delenv("TINYRNN_SGEMM_DIRECT", raising=False)
    assert G._direct_address(_FakeLib(b"SkylakeX", direct=False)) is None  # not exported
    assert G._direct_address(_FakeLib(b"Haswell", direct=True)) is None  # no AVX-512 kernels
    assert G._direct_address(_FakeLib(None, direct=True)) is None  # core unknown
    assert G._direct_address(_FakeLib(b"SkylakeX", direct=True)) == 1
    monkeypatch.setenv("TINYRNN_SGEMM_DIRECT", "0")
    assert G._direct_address(_FakeLib(b"SkylakeX", direct=True)) is None
    monkeypatch.delenv("TINYRNN_SGEMM_DIRECT")
    features = dict.fromkeys(G._AVX512, True) | {"avx512bw": False}
    monkeypatch.setattr(G.llb, "get_host_cpu_features", lambda: features)
    assert G._direct_address(_FakeLib(b"SkylakeX", direct=True)) is None  # CPU lacks AVX-512BW
