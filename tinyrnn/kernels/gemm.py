"""``gemm(a, b, out, beta)``: ``out = a @ b + beta * out`` from compiled code, through NumPy's BLAS.

Inside a Numba kernel, ``np.dot`` reaches SciPy's bundled OpenBLAS through its Fortran
interface. NumPy bundles its own, newer OpenBLAS (64-bit integers), and for the small products
of a recurrent step it was measured faster (float32, one thread, 64 calls: 32x128 @ 128x512
3.8 -> 3.4 ms, 32x512 @ 512x128 3.8 -> 3.1 ms). This module finds that library's
``cblas_sgemm``/``cblas_dgemm`` (row-major, 64-bit integer interface), gives their addresses to
LLVM under fixed names (``tinyrnn_sgemm``, ``tinyrnn_dgemm``) and calls them from an intrinsic,
so the kernels that use it still cache on disk: the cached code refers to the name, which every
process binds again when this module is imported.

Where NumPy's library or the symbol is missing (another BLAS, another platform), the names are
bound to a compiled fallback with the same interface that calls ``np.dot``, so the kernels
work everywhere. ``BACKEND`` says which one is in use. With ``NUMBA_DISABLE_JIT=1``, ``gemm`` is
plain NumPy.

2-D float32/float64 operands of one dtype go to the BLAS call when ``out``, ``a`` and ``b`` are
C- or Fortran-contiguous (``x.T`` of a C array goes in as a transpose flag; a Fortran ``out`` is
filled as ``out^T = b^T a^T``); anything else takes ``np.dot``.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import llvmlite.binding as llb
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .openblas import bundled_openblas_paths

_SYMBOLS = {
    "tinyrnn_sgemm": ("scipy_cblas_sgemm64_", "cblas_sgemm64_", "scipy_cblas_sgemm_64"),
    "tinyrnn_dgemm": ("scipy_cblas_dgemm64_", "cblas_dgemm64_", "scipy_cblas_dgemm_64"),
}
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _find(paths: list[Path]) -> dict[str, int]:
    """Addresses of NumPy's ILP64 ``cblas_?gemm``, by our name, from the first library having
    both."""
    for path in paths:
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        found = {}
        for name, candidates in _SYMBOLS.items():
            for sym in candidates:
                fn = getattr(lib, sym, None)
                if fn is not None:
                    found[name] = ctypes.cast(fn, ctypes.c_void_p).value
                    break
        if len(found) == len(_SYMBOLS):
            return found
    return {}


def _fallback(dtype):
    """A compiled function with the ILP64 ``cblas_?gemm`` interface (row-major, the only order
    this module calls, with or without transposes) that computes with ``np.dot``."""
    fl = numba.float32 if dtype == np.float32 else numba.float64
    i32, i64, ptr = numba.int32, numba.int64, types.CPointer(fl)
    sig = types.void(i32, i32, i32, i64, i64, i64, fl, ptr, i64, ptr, i64, fl, ptr, i64)

    def gemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        if ta == _TRANS:  # A is stored (k, m)
            av = numba.carray(a, (k, lda))[:, :m].T
        else:
            av = numba.carray(a, (m, lda))[:, :k]
        if tb == _TRANS:  # B is stored (n, k)
            bv = numba.carray(b, (n, ldb))[:, :k].T
        else:
            bv = numba.carray(b, (k, ldb))[:, :n]
        cv = numba.carray(c, (m, ldc))[:, :n]
        prod = np.dot(np.ascontiguousarray(av), np.ascontiguousarray(bv))
        if beta == 0:
            cv[:, :] = alpha * prod
        else:
            cv[:, :] = alpha * prod + beta * cv

    return numba.cfunc(sig, cache=True)(gemm)


def _bind() -> str:
    try:
        found = _find(bundled_openblas_paths())
    except Exception:  # an unexpected layout must not break the kernels: use the fallback
        found = {}
    if found:
        for name, address in found.items():
            llb.add_symbol(name, address)
        return "numpy-openblas"
    try:
        for name, dtype in (("tinyrnn_sgemm", np.float32), ("tinyrnn_dgemm", np.float64)):
            fn = _fallback(dtype)
            _KEEP.append(fn)
            llb.add_symbol(name, fn.address)
    except Exception:  # NUMBA_DISABLE_JIT=1: nothing is compiled, ``gemm`` is plain NumPy
        return "numpy"
    return "np.dot"


_KEEP: list = []  # fallback functions stay alive as long as the symbols point at them
BACKEND = _bind()


@intrinsic
def _call(typingctx, a, b, out, beta):
    """The BLAS call for 2-D ``a`` (M, K), ``b`` (K, N), ``out`` (M, N); ``out`` C-contiguous,
    ``a`` and ``b`` C- or Fortran-contiguous (a transposed C array: passed with its transpose
    flag, no copy)."""
    dtype = out.dtype
    trans_a, trans_b = a.layout == "F", b.layout == "F"
    sig = types.void(a, b, out, beta)

    def codegen(context, builder, signature, args):
        fl = ir.FloatType() if dtype == types.float32 else ir.DoubleType()
        i32, i64, vp = ir.IntType(32), ir.IntType(64), ir.IntType(8).as_pointer()
        name = "tinyrnn_sgemm" if dtype == types.float32 else "tinyrnn_dgemm"
        fnty = ir.FunctionType(
            ir.VoidType(), [i32, i32, i32, i64, i64, i64, fl, vp, i64, vp, i64, fl, vp, i64]
        )
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        arrs = [
            context.make_array(ty)(context, builder, v)
            for ty, v in zip(signature.args[:3], args[:3], strict=True)
        ]
        a_, b_, c_ = arrs
        m, k = cgutils.unpack_tuple(builder, a_.shape, 2)
        n = cgutils.unpack_tuple(builder, b_.shape, 2)[1]
        beta_ = context.cast(builder, args[3], signature.args[3], dtype)
        builder.call(
            fn,
            [
                ir.Constant(i32, _ROW_MAJOR),
                ir.Constant(i32, _TRANS if trans_a else _NO_TRANS),
                ir.Constant(i32, _TRANS if trans_b else _NO_TRANS),
                m, n, k, ir.Constant(fl, 1.0),
                builder.bitcast(a_.data, vp), m if trans_a else k,
                builder.bitcast(b_.data, vp), k if trans_b else n,
                beta_, builder.bitcast(c_.data, vp), n,
            ],
        )  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray, beta=0.0) -> np.ndarray:
    """``out = a @ b + beta * out`` for 2-D ``a`` (M, K), ``b`` (K, N), ``out`` (M, N); returns
    ``out``. Compiled code calls NumPy's BLAS directly (see the module docstring); this Python
    version is its specification and what runs with ``NUMBA_DISABLE_JIT=1``.

    >>> a, b = np.ones((2, 3), np.float32), np.full((3, 4), 2, np.float32)
    >>> gemm(a, b, np.ones((2, 4), np.float32), 1.0)[0].tolist()
    [7.0, 7.0, 7.0, 7.0]
    """
    if a.shape[1] != b.shape[0] or out.shape != (a.shape[0], b.shape[1]):
        raise ValueError("gemm: shapes do not match (M, K) @ (K, N) -> (M, N)")
    if beta == 0:
        np.matmul(a, b, out=out)
    else:
        out[...] = a @ b + beta * out
    return out


@overload(gemm)
def _gemm_compiled(a, b, out, beta=0.0):
    direct = (
        all(
            isinstance(x, types.Array) and x.ndim == 2 and x.dtype == out.dtype for x in (a, b, out)
        )
        and out.dtype in (types.float32, types.float64)
        and out.layout in "CF"
        and a.layout in "CF"
        and b.layout in "CF"
    )
    if direct and out.layout == "F":  # out^T = b^T a^T, with a row-major out^T

        def impl_t(a, b, out, beta=0.0):
            gemm(b.T, a.T, out.T, beta)
            return out

        return impl_t
    if direct:

        def impl(a, b, out, beta=0.0):
            if a.shape[1] != b.shape[0] or out.shape[0] != a.shape[0] or out.shape[1] != b.shape[1]:
                raise ValueError("gemm: shapes do not match (M, K) @ (K, N) -> (M, N)")
            if a.shape[0] and b.shape[1]:
                if a.shape[1]:
                    _call(a, b, out, beta)
                else:
                    out[:, :] = out * beta
            return out

        return impl

    def impl_dot(a, b, out, beta=0.0):
        if beta == 0:
            np.dot(a, b, out)
        else:
            out[:, :] = np.dot(a, b) + beta * out
        return out

    return impl_dot
