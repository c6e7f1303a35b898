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

Small float32 products without packing: ``cblas_sgemm`` copies ("packs") both operands into
blocks before it multiplies, which is most of the cost when one operand is a weight of a few
hundred KiB and the other a batch of 32 rows, as in every step of a recurrent layer. OpenBLAS's
AVX-512 build also has a kernel that works on the operands where they lie
(``sgemm_direct_SKYLAKEX``, for ``C = A B``, row-major, no transposes); its own dispatch takes
it only for products below a size it was tuned for, and not from NumPy's calls. Measured with
``benchmarks/bench_gemm.py`` on the test machine (one thread, us per product, packed/unpacked):
32x128 @ 128x512 53.1/36.4, 32x512 @ 512x128 48.1/35.8, 32x512 @ 512x2048 1100/682,
64x128 @ 128x512 92.4/72.6, 2048x64 @ 64x512 1339/1186; it loses only once the right operand
no longer fits the cache and the left one is tall (8192x256 @ 256x2048 84.4/91.2 ms). So a
float32 product with ``beta = 0``
and C-contiguous ``a``, ``b`` and ``out`` calls it (under the name ``tinyrnn_sgemm_direct``)
when ``M <= 64`` or ``K N <= 2^18``, if the library exports it, OpenBLAS runs its SkylakeX
(or later) kernels, the CPU has AVX-512 (F, CD, BW, DQ, VL) and one small product through it,
checked when this module is imported, comes out right. Elsewhere, or with
``TINYRNN_SGEMM_DIRECT=0``, the name is bound to a compiled function that makes the same call
through ``cblas_sgemm``, so cached kernels run anywhere. ``DIRECT`` says which is bound.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import llvmlite.binding as llb
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .openblas import PREFIXES, SUFFIXES, bundled_openblas_paths

_SYMBOLS = {
    "tinyrnn_sgemm": ("scipy_cblas_sgemm64_", "cblas_sgemm64_", "scipy_cblas_sgemm_64"),
    "tinyrnn_dgemm": ("scipy_cblas_dgemm64_", "cblas_dgemm64_", "scipy_cblas_dgemm_64"),
}
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_DIRECT_SYMBOL = "sgemm_direct_SKYLAKEX"
_DIRECT_CORES = ("skylakex", "cooperlake", "sapphirerapids")  # cores with AVX-512 kernels
_AVX512 = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")
_DIRECT_MAX_KN = 1 << 18  # above M = 64, the direct kernel pays while K N is at most this


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
            direct = _direct_address(lib)
            if direct is not None:
                found["tinyrnn_sgemm_direct"] = direct
            return found
    return {}


def _direct_address(lib) -> int | None:
    """The address of ``lib``'s unpacked small-product kernel, or None where it must not be
    called: not exported, OpenBLAS chose a core without AVX-512 kernels, the CPU (or the OS)
    lacks AVX-512, or ``TINYRNN_SGEMM_DIRECT=0``."""
    if os.environ.get("TINYRNN_SGEMM_DIRECT", "1").strip() == "0":
        return None
    fn = getattr(lib, _DIRECT_SYMBOL, None)
    if fn is None:
        return None
    core = ""
    for prefix in PREFIXES:
        for suffix in SUFFIXES:
            get = getattr(lib, f"{prefix}get_corename{suffix}", None)
            if get is not None:
                get.restype = ctypes.c_char_p
                core = (get() or b"").decode(errors="replace").lower()
                break
        if core:
            break
    features = llb.get_host_cpu_features()
    if core not in _DIRECT_CORES or not all(features.get(f, False) for f in _AVX512):
        return None
    address = ctypes.cast(fn, ctypes.c_void_p).value
    return address if _direct_works(address) else None


def _direct_fn(address: int):
    """A ctypes function for the direct interface at ``address``: ``(M, N, K, A, lda, B, ldb,
    C, ldc)``, ``C = A B`` on row-major float32 pointers."""
    fp, i64 = ctypes.POINTER(ctypes.c_float), ctypes.c_int64
    return ctypes.CFUNCTYPE(None, i64, i64, i64, fp, i64, fp, i64, fp, i64)(address)


def _direct_works(address: int) -> bool:
    """Does the function at ``address`` compute ``C = A B`` with the direct kernel's interface
    (checked once on a small product with leading dimensions wider than the matrices, so a
    library whose kernel changed its arguments is not used)?"""
    fn, fp = _direct_fn(address), ctypes.POINTER(ctypes.c_float)
    a = (np.arange(3 * 7, dtype=np.float32).reshape(3, 7) % 5) - 2  # A = a[:, :5], lda 7
    b = (np.arange(5 * 6, dtype=np.float32).reshape(5, 6) % 7) - 3  # B = b[:, :4], ldb 6
    c = np.full((3, 5), 9.0, np.float32)  # C = c[:, :4], ldc 5
    fn(3, 4, 5, a.ctypes.data_as(fp), 7, b.ctypes.data_as(fp), 6, c.ctypes.data_as(fp), 5)
    want = a[:, :5].astype(np.float64) @ b[:, :4].astype(np.float64)
    return bool(np.array_equal(c[:, :4], want) and np.all(c[:, 4] == 9.0))


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


def _emit_cblas(builder, f32, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """Emit ``tinyrnn_sgemm``/``tinyrnn_dgemm`` (the ILP64 ``cblas_?gemm``, row-major,
    ``alpha = 1``) on raw pointers ``a``, ``b``, ``c`` and LLVM integers and ``beta``."""
    fl = ir.FloatType() if f32 else ir.DoubleType()
    i32, i64, vp = ir.IntType(32), ir.IntType(64), ir.IntType(8).as_pointer()
    fnty = ir.FunctionType(
        ir.VoidType(), [i32, i32, i32, i64, i64, i64, fl, vp, i64, vp, i64, fl, vp, i64]
    )
    name = "tinyrnn_sgemm" if f32 else "tinyrnn_dgemm"
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    flags = [ir.Constant(i32, _TRANS if t else _NO_TRANS) for t in (trans_a, trans_b)]
    ptrs = [builder.bitcast(x, vp) for x in (a, b, c)]
    builder.call(
        fn,
        [ir.Constant(i32, _ROW_MAJOR), *flags, m, n, k, ir.Constant(fl, 1.0),
         ptrs[0], lda, ptrs[1], ldb, beta, ptrs[2], ldc],
    )  # fmt: skip


@intrinsic
def _sgemm_nn(typingctx, m, n, k, a, lda, b, ldb, c, ldc):
    """``cblas_sgemm``, no transposes, ``beta = 0``, on raw pointers: the call the direct
    kernel's stand-in makes."""

    def codegen(context, builder, signature, args):
        m_, n_, k_, a_, lda_, b_, ldb_, c_, ldc_ = args
        zero = ir.Constant(ir.FloatType(), 0.0)
        _emit_cblas(builder, True, False, False, m_, n_, k_, a_, lda_, b_, ldb_, zero, c_, ldc_)
        return context.get_dummy_value()

    return types.void(m, n, k, a, lda, b, ldb, c, ldc), codegen


def _direct_standin():
    """A compiled function with the direct kernel's interface, ``(M, N, K, A, lda, B, ldb, C,
    ldc)`` for ``C = A B`` (row-major float32), that calls ``cblas_sgemm``: what
    ``tinyrnn_sgemm_direct`` is bound to where the kernel itself must not be called."""
    i64, ptr = numba.int64, types.CPointer(numba.float32)
    sig = types.void(i64, i64, i64, ptr, i64, ptr, i64, ptr, i64)

    def direct(m, n, k, a, lda, b, ldb, c, ldc):
        _sgemm_nn(m, n, k, a, lda, b, ldb, c, ldc)

    return numba.cfunc(sig, cache=True)(direct)


def _bind() -> tuple[str, bool]:
    """Bind the names the compiled code calls; return ``(BACKEND, DIRECT)``."""
    try:
        found = _find(bundled_openblas_paths())
    except Exception:  # an unexpected layout must not break the kernels: use the fallback
        found = {}
    backend = "numpy-openblas"
    if found:
        for name, address in found.items():
            llb.add_symbol(name, address)
    else:
        try:
            for name, dtype in (("tinyrnn_sgemm", np.float32), ("tinyrnn_dgemm", np.float64)):
                fn = _fallback(dtype)
                _KEEP.append(fn)
                llb.add_symbol(name, fn.address)
        except Exception:  # NUMBA_DISABLE_JIT=1: nothing is compiled, ``gemm`` is plain NumPy
            return "numpy", False
        backend = "np.dot"
    if "tinyrnn_sgemm_direct" in found:
        return backend, True
    try:
        fn = _direct_standin()
    except Exception:  # NUMBA_DISABLE_JIT=1 (with NumPy's BLAS found): nothing calls the name
        return backend, False
    _KEEP.append(fn)
    llb.add_symbol("tinyrnn_sgemm_direct", fn.address)
    return backend, False


_KEEP: list = []  # fallback functions stay alive as long as the symbols point at them
BACKEND, DIRECT = _bind()


@intrinsic
def _call(typingctx, a, b, out, beta):
    """The BLAS call for 2-D ``a`` (M, K), ``b`` (K, N), ``out`` (M, N); ``out`` C-contiguous,
    ``a`` and ``b`` C- or Fortran-contiguous (a transposed C array: passed with its transpose
    flag, no copy)."""
    dtype = out.dtype
    trans_a, trans_b = a.layout == "F", b.layout == "F"
    sig = types.void(a, b, out, beta)

    def codegen(context, builder, signature, args):
        a_, b_, c_ = (
            context.make_array(ty)(context, builder, v)
            for ty, v in zip(signature.args[:3], args[:3], strict=True)
        )
        m, k = cgutils.unpack_tuple(builder, a_.shape, 2)
        n = cgutils.unpack_tuple(builder, b_.shape, 2)[1]
        beta_ = context.cast(builder, args[3], signature.args[3], dtype)
        f32 = dtype == types.float32
        lda, ldb = m if trans_a else k, k if trans_b else n
        _emit_cblas(builder, f32, trans_a, trans_b, m, n, k, a_.data, lda, b_.data, ldb, beta_,
                    c_.data, n)  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _call_direct(typingctx, a, b, out):
    """``out = a @ b`` for C-contiguous float32 ``a`` (M, K), ``b`` (K, N), ``out`` (M, N)
    through ``tinyrnn_sgemm_direct`` (the unpacked kernel, or its stand-in)."""
    sig = types.void(a, b, out)

    def codegen(context, builder, signature, args):
        i64, fp = ir.IntType(64), ir.FloatType().as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i64, i64, i64, fp, i64, fp, i64, fp, i64])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "tinyrnn_sgemm_direct")
        a_, b_, c_ = (
            context.make_array(ty)(context, builder, v)
            for ty, v in zip(signature.args, args, strict=True)
        )
        m, k = cgutils.unpack_tuple(builder, a_.shape, 2)
        n = cgutils.unpack_tuple(builder, b_.shape, 2)[1]
        builder.call(fn, [m, n, k, a_.data, k, b_.data, n, c_.data, n])
        return context.get_dummy_value()

    return sig, codegen


def _product(a, b, out, beta):
    """The BLAS call of ``gemm`` once shapes are checked and non-empty (compiled only)."""


@overload(_product)
def _product_compiled(a, b, out, beta):
    if out.dtype == types.float32 and a.layout == b.layout == out.layout == "C":

        def unpacked(a, b, out, beta):
            if beta == 0 and (a.shape[0] <= 64 or a.shape[1] * b.shape[1] <= _DIRECT_MAX_KN):
                _call_direct(a, b, out)
            else:
                _call(a, b, out, beta)

        return unpacked

    def packed(a, b, out, beta):
        _call(a, b, out, beta)

    return packed


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
    blas = (
        all(
            isinstance(x, types.Array) and x.ndim == 2 and x.dtype == out.dtype for x in (a, b, out)
        )
        and out.dtype in (types.float32, types.float64)
        and out.layout in "CF"
        and a.layout in "CF"
        and b.layout in "CF"
    )
    if blas and out.layout == "F":  # out^T = b^T a^T, with a row-major out^T

        def impl_t(a, b, out, beta=0.0):
            gemm(b.T, a.T, out.T, beta)
            return out

        return impl_t
    if blas:

        def impl(a, b, out, beta=0.0):
            if a.shape[1] != b.shape[0] or out.shape[0] != a.shape[0] or out.shape[1] != b.shape[1]:
                raise ValueError("gemm: shapes do not match (M, K) @ (K, N) -> (M, N)")
            if a.shape[0] and b.shape[1]:
                if a.shape[1]:
                    _product(a, b, out, beta)
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
