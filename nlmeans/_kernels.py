"""Numba kernels of nlmeans (private).

Plain arrays and scalars in, arrays out; no validation here (``denoise.py`` does it). All kernels that call each
other live in this one file, because numba's on-disk cache does not notice edits to a jitted helper in another
module.

Layout conventions
------------------
Images are channel-first, ``(C, H, W)``, C-contiguous, already padded by ``pad = r + f`` on each side of both
spatial axes (``r`` the search radius, ``f`` the patch radius), so that every index in the inner loops is
non-negative and in bounds: the loops carry no branches and vectorise over contiguous ``x``. The pixelwise
kernel's row loops are written with explicit vectors (see "explicit vectors" below): its arrays carry spare
columns up to a whole number of vectors, and the padded images spare rows below (:func:`_nlm_pixelwise`), so
that a vector load may run up to one vector past a row's end. Those kernels need numba's JIT (no
``NUMBA_DISABLE_JIT``).

The fast NL-means kernel follows Darbon et al. (2008): loop over the search offsets ``delta`` and, for each,
box-filter the squared differences ``(v(p) - v(p + delta))**2`` to get every patch distance for that offset at
once: a running column sum over the patch rows (add the row entering, subtract the row leaving, both
recomputed from the guide) and a sum of ``P`` neighbouring column sums. Weights are symmetric,
``w(p, p + delta) == w(p + delta, p)``, so each offset pair is visited once and updates both pixels.
Four (or three, see :func:`_pass_sizes`) offsets with the same ``dy`` and consecutive ``dx`` are handled in one
pass over a row: the guide rows of ``p`` and the accumulator rows of ``p`` and of ``p + delta`` are loaded and
stored once for all of them.

The weight is ``exp(-max(S - bb, 0) * a)``, ``S`` the box sum of squared differences: libm's ``exp`` for float64
(the exact path) and, for float32, a degree-5 polynomial for ``2**y`` on ``[-1/2, 1/2]`` with the exponent bits
added as an integer (relative error < 3e-7), which vectorises where ``np.exp`` is a scalar call; float32 weights
are clamped at ``2**-64`` so that no product is a (slow) denormal number.

Parallel structure and determinism
----------------------------------
Rows are cut into bands of ``band_rows`` rows (:func:`nlmeans._config.band_rows`), aligned to row 0 of the
image, plus a "top band" for the rows above the image whose pairs reach into it. Each band is one parallel task
(handed out one at a time: the caller sets numba's parallel chunk size to 1) and accumulates into its own
buffers: its own rows plus the ``r`` rows below it that its pairs reach. At the end each image row adds its
band's sums and, for its first ``r`` rows, the band above's: two terms, and ``a + b == b + a``, so the result does
not depend on which band finished first. The running column sums restart at every band start, so a band's sums
depend only on the band's rows and the image around them: a full-width strip whose first row is a multiple of
``band_rows``, cut out with at least two bands of rows above the rows it keeps (so that the band above a kept
row is an ordinary band with real rows above it) and ``r + f`` rows below them, gives those rows bit-identical
values to the whole image
(``tests/test_kernels.py::test_strips_aligned_to_bands_are_bit_identical``). No ``reassoc`` fast-math flag is
used, so the arithmetic order written here is the one executed.
"""

from __future__ import annotations

import operator

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

from ._config import FASTMATH, JIT, PARALLEL_JIT

# exp(-87) ~ 1.6e-38 is still a normal float32; clamping there keeps the bit trick below in range.
_EXP_T_MAX = 87.0
# The pixelwise float32 weight is clamped at 2**-64 ~ 5e-20 (instead of ~0): a weight that small changes no
# result visibly (the centre weight is 1), and products w * v stay normal numbers: denormals cost ~15% on noise.
_Z_MAX = 64.0
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


@intrinsic
def _f32_bits(typingctx, x):
    """The bits of a float32 as an int32 (a register bitcast; vectorises)."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _f32_from_bits(typingctx, i):
    """The float32 whose bits are the low 32 bits of the integer ``i``."""
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        if i.bitwidth > 32:
            v = builder.trunc(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(i), codegen


# 1.5 * 2**23: adding it rounds a float32 in [0, 2**22) to an integer held in the low mantissa bits
_ROUND_MAGIC = 12582912.0
# 2**y on [-1/2, 1/2], degree 5, fitted at Chebyshev nodes: relative error 1.1e-7 (2.6e-7 in float32)
_P2 = (1.0000000754895593, 0.6931472082513906, 0.24022107254599765, 0.05550327183698553,
       0.009676036223935186, 0.0013400432182426376)


@njit(**JIT)
def _exp2_neg_f32(z):
    """``2**-z`` for float32 ``0 <= z <= 125``, relative error < 3e-7.

    ``2**-z = 2**-n * 2**y`` with ``n = round(z)`` (the magic-number add, no float/int conversion),
    ``y = n - z`` in ``[-1/2, 1/2]``: a degree-5 polynomial for ``2**y``, then ``n`` subtracted from its exponent
    bits. About ten vector instructions; ``np.exp`` would be a scalar libm call.
    """
    k = z + np.float32(_ROUND_MAGIC)
    y = (k - np.float32(_ROUND_MAGIC)) - z
    p = np.float32(_P2[5])
    p = p * y + np.float32(_P2[4])
    p = p * y + np.float32(_P2[3])
    p = p * y + np.float32(_P2[2])
    p = p * y + np.float32(_P2[1])
    p = p * y + np.float32(_P2[0])
    # the low bits of k are n; shifted by 23 the magic's own bits fall off the top
    return _f32_from_bits(_f32_bits(p) - (_f32_bits(k) << np.int32(23)))


def _weight_consts(a, bb):
    """The constants ``(aw, cw)`` of :func:`_vweight`: float32 ``(a log2(e), -bb a log2(e))``, else ``(a, bb)``."""
    if isinstance(a, np.float32):  # Python body: NUMBA_DISABLE_JIT=1 only
        aw = np.float32(a * np.float32(_LOG2E))
        return aw, np.float32(-(bb * aw))
    return a, bb


@overload(_weight_consts, jit_options=dict(fastmath=FASTMATH))
def _weight_consts_impl(a, bb):
    if a == types.float32:

        def impl(a, bb):
            aw = np.float32(a * np.float32(_LOG2E))
            return aw, np.float32(-(bb * aw))

        return impl
    return lambda a, bb: (a, bb)


@njit(**JIT)
def _exp_neg_f32(t, w, lo, hi):
    """``w[x] = exp(-t[x])`` for ``x`` in ``[lo, hi)``, ``t >= 0``, float32, relative error < 3e-7.

    The polynomial and bit trick of :func:`_exp2_neg_f32`.
    """
    for x in range(lo, hi):
        w[x] = _exp2_neg_f32(np.float32(min(t[x], _EXP_T_MAX)) * np.float32(_LOG2E))


@njit(**JIT)
def _exp_neg_exact(t, w, lo, hi):
    """``w[x] = exp(-t[x])`` with libm's exp (the float64 path, exact to rounding)."""
    for x in range(lo, hi):
        w[x] = np.exp(-t[x])


@njit(**JIT)
def _squared_diff_row(guide, gy, qy, dx, lo, hi, d):
    """``d[x] = sum_c (guide[c, gy, x] - guide[c, qy, x + dx])**2`` for ``x`` in ``[lo, hi)``."""
    for x in range(lo, hi):
        diff = guide[0, gy, x] - guide[0, qy, x + dx]
        d[x] = diff * diff
    for c in range(1, guide.shape[0]):
        for x in range(lo, hi):
            diff = guide[c, gy, x] - guide[c, qy, x + dx]
            d[x] += diff * diff


# The row loops below index the whole arrays with unsigned offsets instead of taking row views: every view of a
# shared array costs an atomic reference-count update, and with two threads those updates fight over one cache
# line (512² color, 2 threads: process CPU 93 -> 81 ms, bench/README.md). Unsigned indices also spare numba's
# wrap-around select for negative indices, which would turn the contiguous vector loads into gathers.
_U = np.uint64


# --- explicit vectors ---
# The pixelwise kernel's row loops (running-sum starts and slides, weight rows, accumulations) are written with
# explicit vector loads, stores and arithmetic instead of scalar loops for LLVM to vectorise: LLVM cannot prove
# that the dozen-odd rows such a loop reads do not overlap the rows it writes, so before every auto-vectorised
# loop it computes and compares all their address ranges (hundreds of instructions per call, once per row and
# pass), and it adds a remainder loop. An explicit vector loop needs neither: the arrays carry spare columns up
# to a whole number of vectors (see :func:`_nlm_pixelwise`), so every pixel goes through the same instructions
# wherever it sits in a row.
_VBYTES = 64  # one AVX-512 register; on AVX2 machines LLVM splits each operation in two


class _Vec(types.Type):
    """numba type of an LLVM vector of ``_VBYTES`` bytes of ``dtype`` (16 float32 or 8 float64)."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = _VBYTES // (dtype.bitwidth // 8)
        super().__init__(name=f"Vec({dtype} x {self.lanes})")


@register_model(_Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        elem = ir.FloatType() if fe_type.dtype == types.float32 else ir.DoubleType()
        super().__init__(dmm, fe_type, ir.VectorType(elem, fe_type.lanes))


def _lanes(a):
    """Elements of ``a``'s dtype in one vector (a compile-time constant in compiled code)."""
    return _VBYTES // a.itemsize


@overload(_lanes)
def _lanes_impl(a):
    n = _Vec(a.dtype).lanes
    return lambda a: n


def _element_pointer(context, builder, aty, aval, ity, ival):
    """LLVM pointer to ``a[idx]`` (no wrap-around, no bounds check: callers keep indices in the array)."""
    ary = context.make_array(aty)(context, builder, aval)
    vals = cgutils.unpack_tuple(builder, ival)
    inds = [context.cast(builder, v, t, types.intp) for v, t in zip(vals, ity, strict=True)]
    return cgutils.get_item_pointer2(context, builder, ary.data, cgutils.unpack_tuple(builder, ary.shape),
                                     cgutils.unpack_tuple(builder, ary.strides), aty.layout, inds)


def _is_float_array(a):
    return isinstance(a, types.Array) and a.dtype in (types.float32, types.float64)


def _vec_args_ok(a, idx):
    return (_is_float_array(a) and a.layout == "C"
            and isinstance(idx, types.BaseTuple) and len(idx) == a.ndim
            and all(isinstance(t, types.Integer) for t in idx))


@intrinsic
def _vload(typingctx, a, idx):
    """The vector ``a[idx[:-1]][idx[-1] : idx[-1] + lanes]`` (may run past the row's end into the next row)."""
    if not _vec_args_ok(a, idx):
        return None
    vt = _Vec(a.dtype)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        vptr = builder.bitcast(ptr, context.get_value_type(vt).as_pointer())
        return builder.load(vptr, align=a.dtype.bitwidth // 8)

    return vt(a, idx), codegen


@intrinsic
def _vstore(typingctx, a, idx, v):
    """Store the vector ``v`` at ``a[idx[:-1]][idx[-1] : idx[-1] + lanes]``."""
    if not (_vec_args_ok(a, idx) and isinstance(v, _Vec) and v.dtype == a.dtype):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        vptr = builder.bitcast(ptr, context.get_value_type(sig.args[2]).as_pointer())
        builder.store(args[2], vptr, align=a.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(a, idx, v), codegen


@intrinsic
def _vzeros(typingctx, a):
    """A vector of zeros of ``a``'s dtype."""
    if not _is_float_array(a):
        return None
    vt = _Vec(a.dtype)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vt), None)

    return vt(a), codegen


_VEC_FLAGS = tuple(sorted(FASTMATH))  # the scalar kernels' fast-math flags: contract lets a * b + c fuse


def _vec_pair_op(emit):
    """An intrinsic taking two vectors of one type and returning one: ``emit(builder, x, y)`` writes its IR."""

    @intrinsic
    def pair_op(typingctx, x, y):
        if not (isinstance(x, _Vec) and x == y):
            return None

        def codegen(context, builder, sig, args):
            return emit(builder, args[0], args[1])

        return x(x, y), codegen

    return pair_op


def _overload_vec_operator(op, opname):
    """Make ``op`` (operator.add, ...) work on two vectors of one type: the LLVM instruction ``opname``."""
    binop = _vec_pair_op(lambda builder, x, y: getattr(builder, opname)(x, y, flags=_VEC_FLAGS))

    @overload(op)
    def impl(x, y):
        if isinstance(x, _Vec) and x == y:
            return lambda x, y: binop(x, y)
        return None

    return impl


for _op, _opname in ((operator.add, "fadd"), (operator.sub, "fsub"), (operator.mul, "fmul")):
    _overload_vec_operator(_op, _opname)


@intrinsic
def _vsplat(typingctx, v, x):
    """A vector of ``v``'s type with every lane ``x`` (converted to the lane type)."""
    if not (isinstance(v, _Vec) and isinstance(x, (types.Float, types.Integer))):
        return None

    def codegen(context, builder, sig, args):
        lane = context.cast(builder, args[1], sig.args[1], v.dtype)
        vec = ir.Constant(context.get_value_type(v), ir.Undefined)
        vec = builder.insert_element(vec, lane, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(vec, vec, ir.Constant(ir.VectorType(ir.IntType(32), v.lanes), None))

    return v(v, x), codegen


def _vec_select(predicate):
    """Lane-wise ``x if x <predicate> y else y`` (numba's scalar min/max, vectorised)."""
    return _vec_pair_op(lambda builder, x, y: builder.select(builder.fcmp_ordered(predicate, x, y), x, y))


_vmax = _vec_select(">")
_vmin = _vec_select("<")


@intrinsic
def _vscale_exp2(typingctx, p, k):
    """float32 lanes: ``p * 2**-n``, ``n`` the integer in the low mantissa bits of ``k`` (see
    :func:`_exp2_neg_f32`): ``n`` subtracted from ``p``'s exponent bits."""
    if not (isinstance(p, _Vec) and p == k and p.dtype == types.float32):
        return None

    def codegen(context, builder, sig, args):
        ivec = ir.VectorType(ir.IntType(32), p.lanes)
        bits_p = builder.bitcast(args[0], ivec)
        bits_k = builder.bitcast(args[1], ivec)
        shifted = builder.shl(bits_k, ir.Constant(ivec, [23] * p.lanes))
        return builder.bitcast(builder.sub(bits_p, shifted), args[0].type)

    return p(p, k), codegen


@intrinsic
def _vexp(typingctx, x):
    """Lane-wise ``exp`` (LLVM calls libm's exp for each lane of a float64 vector: the exact path)."""
    if not isinstance(x, _Vec):
        return None

    def codegen(context, builder, sig, args):
        vt = args[0].type
        name = f"llvm.exp.v{x.lanes}f{x.dtype.bitwidth}"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt]), name)
        return builder.call(fn, [args[0]])

    return x(x), codegen


def _vweight(s, aw, cw):
    """NL-means weights from a vector ``s`` of box sums of squared differences: ``exp(-max(s - bb, 0) * a)``.

    ``(aw, cw)`` is :func:`_weight_consts` of ``(a, bb)``. float64: libm's exp (the exact path); float32:
    ``2**-min(max(s aw + cw, 0), 64)`` with ``aw = a log2(e)``, ``cw = -bb aw`` (one fused multiply-add), by the
    polynomial and bit trick of :func:`_exp2_neg_f32`. Compiled code only (the overload below).
    """
    raise NotImplementedError("_vweight runs in compiled code only")


@overload(_vweight, jit_options=dict(fastmath=FASTMATH))
def _vweight_impl(s, aw, cw):
    if not isinstance(s, _Vec):
        return None
    if s.dtype == types.float32:

        def impl(s, aw, cw):
            z = _vmin(_vmax(s * _vsplat(s, aw) + _vsplat(s, cw), _vsplat(s, 0.0)), _vsplat(s, _Z_MAX))
            k = z + _vsplat(s, _ROUND_MAGIC)
            y = (k - _vsplat(s, _ROUND_MAGIC)) - z
            p = _vsplat(s, _P2[5])
            p = p * y + _vsplat(s, _P2[4])
            p = p * y + _vsplat(s, _P2[3])
            p = p * y + _vsplat(s, _P2[2])
            p = p * y + _vsplat(s, _P2[1])
            p = p * y + _vsplat(s, _P2[0])
            return _vscale_exp2(p, k)

        return impl

    def impl(s, aw, cw):  # noqa: F811 - the float64 (exact) branch
        return _vexp(_vsplat(s, 0.0) - _vmax(s - _vsplat(s, cw), _vsplat(s, 0.0)) * _vsplat(s, aw))

    return impl


@njit(**JIT)
def _colsum_start(guide, gy0, P, dy, lo, dx, n, cs, k):
    """``cs[k, x] = sum over P rows from gy0 and the channels of (g[gy, lo + x] - g[gy + dy, lo + x + dx])**2``
    for ``x`` in ``[0, n)`` rounded up to whole vectors."""
    L = _U(_lanes(cs))
    k, lo, q = _U(k), _U(lo), _U(lo + dx)
    for x in range(_U(0), _U(n), L):
        s = _vzeros(cs)
        for c in range(_U(guide.shape[0])):
            for j in range(P):
                e = _vload(guide, (c, gy0 + j, lo + x)) - _vload(guide, (c, gy0 + j + dy, q + x))
                s = s + e * e
        _vstore(cs, (k, x), s)


@njit(**JIT)
def _colsum_slide(guide, gnew, gold, dy, lo, dx, n, cs):
    """Slide the running column sums ``cs[0]`` one row down: add guide row ``gnew``'s term, subtract row
    ``gold``'s."""
    L = _U(_lanes(cs))
    z, lo, q = _U(0), _U(lo), _U(lo + dx)
    qn = gnew + dy
    qo = gold + dy
    for x in range(z, _U(n), L):
        s = _vload(cs, (z, x))
        for c in range(_U(guide.shape[0])):
            e = _vload(guide, (c, gnew, lo + x)) - _vload(guide, (c, qn, q + x))
            o = _vload(guide, (c, gold, lo + x)) - _vload(guide, (c, qo, q + x))
            s = s + (e * e - o * o)
        _vstore(cs, (z, x), s)


@njit(**JIT)
def _box_sum(cs, k, x, P):
    """The vector ``cs[k, x + j]`` summed over ``j`` in ``[0, P)``: the horizontal box sum (a balanced sum for
    the common patch sizes)."""
    one, two, three = _U(1), _U(2), _U(3)
    if P == 7:
        return (((_vload(cs, (k, x)) + _vload(cs, (k, x + one))) + (_vload(cs, (k, x + two))
                 + _vload(cs, (k, x + three)))) + ((_vload(cs, (k, x + _U(4))) + _vload(cs, (k, x + _U(5))))
                + _vload(cs, (k, x + _U(6)))))
    if P == 5:
        return (((_vload(cs, (k, x)) + _vload(cs, (k, x + one))) + (_vload(cs, (k, x + two))
                 + _vload(cs, (k, x + three)))) + _vload(cs, (k, x + _U(4))))
    if P == 3:
        return (_vload(cs, (k, x)) + _vload(cs, (k, x + one))) + _vload(cs, (k, x + two))
    s = _vload(cs, (k, x))
    for j in range(1, P):
        s = s + _vload(cs, (k, x + _U(j)))
    return s


@njit(**JIT)
def _weights_row(cs, k, P, aw, cw, n, wt):
    """``wt[k, x] = _vweight(cs[k, x] + ... + cs[k, x + P - 1])`` for ``x`` in ``[0, n)`` rounded up to whole
    vectors."""
    L = _U(_lanes(cs))
    k = _U(k)
    for x in range(_U(0), _U(n), L):
        _vstore(wt, (k, x), _vweight(_box_sum(cs, k, x, P), aw, cw))


@njit(**JIT)
def _weights_row2(cs, k, P, aw, cw, n, wt):
    """:func:`_weights_row` for rows ``k`` and ``k + 1`` in one loop: two independent chains, so the core overlaps
    them."""
    L = _U(_lanes(cs))
    k = _U(k)
    m = k + _U(1)
    for x in range(_U(0), _U(n), L):
        sa = _box_sum(cs, k, x, P)
        sb = _box_sum(cs, m, x, P)
        _vstore(wt, (k, x), _vweight(sa, aw, cw))
        _vstore(wt, (m, x), _vweight(sb, aw, cw))


@njit(**JIT)
def _sqdiff_rgb(a0, a1, a2, b0, b1, b2):
    """``sum_c (a_c - b_c)**2`` over three channels."""
    e0 = a0 - b0
    e1 = a1 - b1
    e2 = a2 - b2
    return (e0 * e0 + e1 * e1) + e2 * e2


@njit(**JIT)
def _slide_term_rgb(guide, qn, qo, j, a0, a1, a2, b0, b1, b2):
    """One offset's change of a running column sum, 3 channels: the new row's term minus the old row's."""
    z, one, two = _U(0), _U(1), _U(2)
    return (_sqdiff_rgb(a0, a1, a2, _vload(guide, (z, qn, j)), _vload(guide, (one, qn, j)),
                        _vload(guide, (two, qn, j)))
            - _sqdiff_rgb(b0, b1, b2, _vload(guide, (z, qo, j)), _vload(guide, (one, qo, j)),
                          _vload(guide, (two, qo, j))))


@njit(**JIT)
def _colsum_slide_rgb(guide, gnew, gold, dy, lo, d0, n, cs, nk):
    """:func:`_colsum_slide4` for a 3-channel guide, ``nk`` = 3 or 4 offsets: the sums are read and written once,
    not once per channel."""
    L = _U(_lanes(cs))
    z, one, two = _U(0), _U(1), _U(2)
    qn = gnew + dy
    qo = gold + dy
    lo, q = _U(lo), _U(lo + d0)
    for x in range(z, _U(n), L):
        i = lo + x
        a0, a1, a2 = _vload(guide, (z, gnew, i)), _vload(guide, (one, gnew, i)), _vload(guide, (two, gnew, i))
        b0, b1, b2 = _vload(guide, (z, gold, i)), _vload(guide, (one, gold, i)), _vload(guide, (two, gold, i))
        for k in range(_U(nk)):
            term = _slide_term_rgb(guide, qn, qo, q + x + k, a0, a1, a2, b0, b1, b2)
            _vstore(cs, (k, x), _vload(cs, (k, x)) + term)


@njit(**JIT)
def _colsum_slide4(guide, gnew, gold, dy, lo, d0, n, cs):
    """:func:`_colsum_slide` for the four offsets ``dx = d0 .. d0 + 3`` in one loop (rows ``cs[0 .. 3]``)."""
    if guide.shape[0] == 3:  # color: one pass over the sums for all channels (-10% on color, bench/README.md)
        _colsum_slide_rgb(guide, gnew, gold, dy, lo, d0, n, cs, 4)
        return
    L = _U(_lanes(cs))
    z, one, two, three = _U(0), _U(1), _U(2), _U(3)
    qn = gnew + dy
    qo = gold + dy
    lo, q = _U(lo), _U(lo + d0)
    for c in range(_U(guide.shape[0])):  # one channel per loop (see _accumulate4)
        for x in range(z, _U(n), L):
            a = _vload(guide, (c, gnew, lo + x))
            b = _vload(guide, (c, gold, lo + x))
            j = q + x
            e0, o0 = a - _vload(guide, (c, qn, j)), b - _vload(guide, (c, qo, j))
            e1, o1 = a - _vload(guide, (c, qn, j + one)), b - _vload(guide, (c, qo, j + one))
            e2, o2 = a - _vload(guide, (c, qn, j + two)), b - _vload(guide, (c, qo, j + two))
            e3, o3 = a - _vload(guide, (c, qn, j + three)), b - _vload(guide, (c, qo, j + three))
            _vstore(cs, (z, x), _vload(cs, (z, x)) + (e0 * e0 - o0 * o0))
            _vstore(cs, (one, x), _vload(cs, (one, x)) + (e1 * e1 - o1 * o1))
            _vstore(cs, (two, x), _vload(cs, (two, x)) + (e2 * e2 - o2 * o2))
            _vstore(cs, (three, x), _vload(cs, (three, x)) + (e3 * e3 - o3 * o3))


@njit(**JIT)
def _colsum_slide3(guide, gnew, gold, dy, lo, d0, n, cs):
    """:func:`_colsum_slide4` for the three offsets ``dx = d0 .. d0 + 2`` (rows ``cs[0 .. 2]``)."""
    if guide.shape[0] == 3:
        _colsum_slide_rgb(guide, gnew, gold, dy, lo, d0, n, cs, 3)
        return
    L = _U(_lanes(cs))
    z, one, two = _U(0), _U(1), _U(2)
    qn = gnew + dy
    qo = gold + dy
    lo, q = _U(lo), _U(lo + d0)
    for c in range(_U(guide.shape[0])):
        for x in range(z, _U(n), L):
            a = _vload(guide, (c, gnew, lo + x))
            b = _vload(guide, (c, gold, lo + x))
            j = q + x
            e0, o0 = a - _vload(guide, (c, qn, j)), b - _vload(guide, (c, qo, j))
            e1, o1 = a - _vload(guide, (c, qn, j + one)), b - _vload(guide, (c, qo, j + one))
            e2, o2 = a - _vload(guide, (c, qn, j + two)), b - _vload(guide, (c, qo, j + two))
            _vstore(cs, (z, x), _vload(cs, (z, x)) + (e0 * e0 - o0 * o0))
            _vstore(cs, (one, x), _vload(cs, (one, x)) + (e1 * e1 - o1 * o1))
            _vstore(cs, (two, x), _vload(cs, (two, x)) + (e2 * e2 - o2 * o2))


@njit(**JIT)
def _accumulate4_rgb(value, vrow, v0, v1, v2, v3, wt, o0, o1, o2, o3, acc, wsum, ly, W):
    """:func:`_accumulate4` for 3 channels in one loop: each weight is loaded once, not once per channel."""
    L = _U(_lanes(wt))
    z, one, two, three = _U(0), _U(1), _U(2), _U(3)
    for x in range(z, _U(W), L):
        w0, w1, w2 = _vload(wt, (z, o0 + x)), _vload(wt, (one, o1 + x)), _vload(wt, (two, o2 + x))
        w3 = _vload(wt, (three, o3 + x))
        i0, i1, i2, i3 = v0 + x, v1 + x, v2 + x, v3 + x
        for c in (z, one, two):
            s = (w0 * _vload(value, (c, vrow, i0)) + w1 * _vload(value, (c, vrow, i1))
                 + w2 * _vload(value, (c, vrow, i2)) + w3 * _vload(value, (c, vrow, i3)))
            _vstore(acc, (c, ly, x), _vload(acc, (c, ly, x)) + s)
        _vstore(wsum, (ly, x), _vload(wsum, (ly, x)) + ((w0 + w1) + (w2 + w3)))


@njit(**JIT)
def _accumulate3_rgb(value, vrow, v0, v1, v2, wt, o0, o1, o2, acc, wsum, ly, W):
    """:func:`_accumulate4_rgb` for three offsets."""
    L = _U(_lanes(wt))
    z, one, two = _U(0), _U(1), _U(2)
    for x in range(z, _U(W), L):
        w0, w1, w2 = _vload(wt, (z, o0 + x)), _vload(wt, (one, o1 + x)), _vload(wt, (two, o2 + x))
        i0, i1, i2 = v0 + x, v1 + x, v2 + x
        for c in (z, one, two):
            s = (w0 * _vload(value, (c, vrow, i0)) + w1 * _vload(value, (c, vrow, i1))
                 + w2 * _vload(value, (c, vrow, i2)))
            _vstore(acc, (c, ly, x), _vload(acc, (c, ly, x)) + s)
        _vstore(wsum, (ly, x), _vload(wsum, (ly, x)) + ((w0 + w1) + w2))


@njit(**JIT)
def _accumulate4(value, vrow, v0, v1, v2, v3, wt, o0, o1, o2, o3, acc, wsum, ly, W):
    """``acc[c, ly, x] += sum_k wt[k, o_k + x] value[c, vrow, v_k + x]``, ``wsum[ly, x] += sum_k wt[k, o_k + x]``
    for ``x`` in ``[0, W)`` rounded up to whole vectors, four offsets (value columns ``v_k``, weight columns
    ``o_k``, all >= 0).

    One load and one store of the accumulator rows for four offsets; the weight sum rides on channel 0's loop
    (one channel per loop: a loop over a runtime number of channels inside the pixel loop costs gray 5%).
    """
    v0, v1, v2, v3, o0, o1, o2, o3 = _U(v0), _U(v1), _U(v2), _U(v3), _U(o0), _U(o1), _U(o2), _U(o3)
    if value.shape[0] == 3:  # color: the weights are read once for the three channels
        _accumulate4_rgb(value, vrow, v0, v1, v2, v3, wt, o0, o1, o2, o3, acc, wsum, ly, W)
        return
    L = _U(_lanes(wt))
    z, one, two, three = _U(0), _U(1), _U(2), _U(3)
    for c in range(_U(value.shape[0])):
        for x in range(z, _U(W), L):
            w0, w1, w2 = _vload(wt, (z, o0 + x)), _vload(wt, (one, o1 + x)), _vload(wt, (two, o2 + x))
            w3 = _vload(wt, (three, o3 + x))
            s = (w0 * _vload(value, (c, vrow, v0 + x)) + w1 * _vload(value, (c, vrow, v1 + x))
                 + w2 * _vload(value, (c, vrow, v2 + x)) + w3 * _vload(value, (c, vrow, v3 + x)))
            _vstore(acc, (c, ly, x), _vload(acc, (c, ly, x)) + s)
            if c == z:
                _vstore(wsum, (ly, x), _vload(wsum, (ly, x)) + ((w0 + w1) + (w2 + w3)))


@njit(**JIT)
def _accumulate3(value, vrow, v0, v1, v2, wt, o0, o1, o2, acc, wsum, ly, W):
    """:func:`_accumulate4` for three offsets."""
    v0, v1, v2, o0, o1, o2 = _U(v0), _U(v1), _U(v2), _U(o0), _U(o1), _U(o2)
    if value.shape[0] == 3:
        _accumulate3_rgb(value, vrow, v0, v1, v2, wt, o0, o1, o2, acc, wsum, ly, W)
        return
    L = _U(_lanes(wt))
    z, one, two = _U(0), _U(1), _U(2)
    for c in range(_U(value.shape[0])):
        for x in range(z, _U(W), L):
            w0, w1, w2 = _vload(wt, (z, o0 + x)), _vload(wt, (one, o1 + x)), _vload(wt, (two, o2 + x))
            s = (w0 * _vload(value, (c, vrow, v0 + x)) + w1 * _vload(value, (c, vrow, v1 + x))
                 + w2 * _vload(value, (c, vrow, v2 + x)))
            _vstore(acc, (c, ly, x), _vload(acc, (c, ly, x)) + s)
            if c == z:
                _vstore(wsum, (ly, x), _vload(wsum, (ly, x)) + ((w0 + w1) + w2))


@njit(**JIT)
def _accumulate1(value, vrow, v0, wt, o0, acc, wsum, ly, W):
    """:func:`_accumulate4` for one offset."""
    v0, o0 = _U(v0), _U(o0)
    L = _U(_lanes(wt))
    z = _U(0)
    for c in range(_U(value.shape[0])):
        for x in range(z, _U(W), L):
            w = _vload(wt, (z, o0 + x))
            _vstore(acc, (c, ly, x), _vload(acc, (c, ly, x)) + w * _vload(value, (c, vrow, v0 + x)))
            if c == z:
                _vstore(wsum, (ly, x), _vload(wsum, (ly, x)) + w)


@njit(**JIT)
def _pass_sizes(n_dx, r):
    """How the ``n_dx`` offsets of one ``dy`` are cut into passes: ``(n4, n3, n1)`` passes of 4, 3 and 1.

    As many passes of 4 as possible, then passes of 3 instead of single offsets. A pass of ``k`` offsets needs
    ``r >= k - 1`` to stay inside the padding.
    """
    if r < 3:
        return 0, 0, n_dx
    n3 = (4 - n_dx % 4) % 4
    if 3 * n3 > n_dx:
        n3 = 0
    n4 = (n_dx - 3 * n3) // 4
    return n4, n3, n_dx - 4 * n4 - 3 * n3


@njit(**JIT)
def _band_pixelwise(guide, value, b0, b1, H, W, f, r, aw, cw, acc, wsum, cs, wt):
    """Accumulate every offset pair whose first pixel ``p`` lies in rows ``[b0, b1)`` (image coordinates).

    Private sums: ``acc[c, y - b0, x]`` and ``wsum[y - b0, x]`` for image pixel ``(y, x)``; they cover rows
    ``[b0, b1 + r)`` since a pair reaches ``r`` rows down. ``b0 < 0`` marks the top band (rows above the image,
    which only contribute through their partner ``p + delta``). ``cs`` and ``wt`` are ``(4, >= W + 2 pad + lanes)``
    work rows: running column sums and weights of the (up to four) offsets of one pass; ``acc`` and ``wsum`` have
    ``W`` rounded up to whole vectors columns.
    """
    pad = r + f
    P = 2 * f + 1
    for dy in range(0, r + 1):
        ys = b0 if b0 >= 0 else -dy  # the top band only needs the rows whose partner is inside the image
        if ys >= b1:
            continue
        dx_first = 1 if dy == 0 else -r
        n4, n3, n1 = _pass_sizes(r + 1 - dx_first, r)
        for g in range(n4 + n3 + n1):
            if g < n4:
                d0 = dx_first + 4 * g
                nk = 4
            elif g < n4 + n3:
                d0 = dx_first + 4 * n4 + 3 * (g - n4)
                nk = 3
            else:
                d0 = dx_first + 4 * n4 + 3 * n3 + (g - n4 - n3)
                nk = 1
            d1 = d0 + nk - 1
            # columns (padded) of the pixels p whose weights are needed: p in the image, or p + delta in it
            xs = pad - max(d1, 0)
            xe = pad + W - min(d0, 0)
            n = xe - xs
            lo = xs - f
            for k in range(nk):
                _colsum_start(guide, ys + pad - f, P, dy, lo, d0 + k, n + 2 * f, cs, k)
            for y in range(ys, b1):
                gnew = y + pad + f
                gold = gnew - P
                if nk == 4:
                    if y > ys:
                        _colsum_slide4(guide, gnew, gold, dy, lo, d0, n + 2 * f, cs)
                    _weights_row2(cs, 0, P, aw, cw, n, wt)
                    _weights_row2(cs, 2, P, aw, cw, n, wt)
                elif nk == 3:
                    if y > ys:
                        _colsum_slide3(guide, gnew, gold, dy, lo, d0, n + 2 * f, cs)
                    _weights_row2(cs, 0, P, aw, cw, n, wt)
                    _weights_row(cs, 2, P, aw, cw, n, wt)
                else:
                    if y > ys:
                        _colsum_slide(guide, gnew, gold, dy, lo, d0, n + 2 * f, cs)
                    _weights_row(cs, 0, P, aw, cw, n, wt)
                ly = y - b0
                vy = y + pad
                # p = (y, x) in the image takes q = p + delta: weights of p at wt[k, pad - xs + x]
                if y >= 0:
                    o = pad - xs
                    v = pad + d0
                    if nk == 4:
                        _accumulate4(value, vy + dy, v, v + 1, v + 2, v + 3, wt, o, o, o, o, acc, wsum, ly, W)
                    elif nk == 3:
                        _accumulate3(value, vy + dy, v, v + 1, v + 2, wt, o, o, o, acc, wsum, ly, W)
                    else:
                        _accumulate1(value, vy + dy, v, wt, o, acc, wsum, ly, W)
                # q = (y + dy, x) in the image takes p = q - delta: weights of p at wt[k, pad - d0 - k - xs + x]
                if y + dy < H:
                    o = pad - d0 - xs
                    v = pad - d0
                    if nk == 4:
                        _accumulate4(value, vy, v, v - 1, v - 2, v - 3, wt, o, o - 1, o - 2, o - 3, acc, wsum,
                                     ly + dy, W)
                    elif nk == 3:
                        _accumulate3(value, vy, v, v - 1, v - 2, wt, o, o - 1, o - 2, acc, wsum, ly + dy, W)
                    else:
                        _accumulate1(value, vy, v, wt, o, acc, wsum, ly + dy, W)


@njit(**PARALLEL_JIT)
def _nlm_pixelwise(guide, value, f, r, a, bb, band_rows, out):
    """Pixelwise NL-means, fast path.

    Parameters
    ----------
    guide : (Cg, H + 2 pad + spare, W + 2 pad) float array, padded; patch distances are computed on it.
        The ``spare`` rows below the padding (at least one vector, ``_VBYTES`` bytes, of them) are never used,
        only read past a row's end by vector loads whose extra lanes no result uses.
    value : (Cv, H + 2 pad + spare, W + 2 pad) float array of the same dtype, padded likewise; the values
        averaged.
    f, r : patch and search radius; ``pad = r + f``.
    a, bb : weight ``exp(-max(S - bb, 0) * a)`` with S the box sum of squared differences over the patch and
        the guide's channels, i.e. ``a = 1 / (Cg P^2 h^2)``, ``bb = 2 sigma^2 Cg P^2``; same dtype as the arrays.
        float32 arrays use the fast exponential, float64 libm's.
    band_rows : rows per parallel band (:func:`nlmeans._config.band_rows`), >= r.
    out : (Cv, H, W) result.
    """
    pad = r + f
    H = out.shape[1]
    W = out.shape[2]
    Cv = value.shape[0]
    Wp = W + 2 * pad
    L = _lanes(out)
    for arr in (guide, value):  # the vector loads' memory safety rests on this
        if arr.shape[2] != Wp or (arr.shape[1] - H - 2 * pad) * Wp < L:
            raise ValueError("_nlm_pixelwise: guide and value need W + 2 pad columns and spare rows below")
    B = max(band_rows, r, 1)
    aw, cw = _weight_consts(a, bb)
    n_img_bands = (H + B - 1) // B
    n_bands = n_img_bands + 1  # band 0 is the top band, rows [-r, 0)
    # every band's private sums, kept until the end: rows [b0, b1 + r) of band b at bsum[b, :, 0 : b1 - b0 + r]
    Wr = (W + L - 1) // L * L  # spare columns: the vector loops run over whole vectors
    bsum = np.empty((n_bands, Cv, B + r, Wr), dtype=out.dtype)
    bw = np.empty((n_bands, B + r, Wr), dtype=out.dtype)
    # one band per task; the caller sets numba's parallel chunk size to 1 so that the bands are handed out one at
    # a time (a thread that finishes early takes the next band): on shared cores a static split leaves the faster
    # thread waiting for the slower one (nlmeans.denoise.nlmeans_chw)
    for band in prange(n_bands):
        cs = np.zeros((4, Wp + L), dtype=out.dtype)
        wt = np.zeros((4, Wp + L), dtype=out.dtype)
        if band == 0:
            b0 = -r
            b1 = 0
        else:
            b0 = (band - 1) * B
            b1 = min(b0 + B, H)
        acc = bsum[band]
        wsum = bw[band]
        acc[:] = 0
        wsum[:] = 0
        _band_pixelwise(guide, value, b0, b1, H, W, f, r, aw, cw, acc, wsum, cs, wt)
    # a row's sums: its own band's, plus the band above's for its first r rows (pairs reach r rows down); two
    # terms, and a + b == b + a, so the result does not depend on which band finished first. The centre pixel
    # q = p has weight exp(0) = 1.
    for y in prange(H):
        band = y // B + 1
        ly = y - (band - 1) * B
        above = band - 1
        la = ly + (B if above > 0 else r)  # the row in the band above's sums (the top band starts at -r)
        if ly < r:
            for c in range(Cv):
                for x in range(W):
                    total = bsum[band, c, ly, x] + bsum[above, c, la, x]
                    weight = bw[band, ly, x] + bw[above, la, x]
                    out[c, y, x] = (total + value[c, y + pad, x + pad]) / (weight + 1)
        else:
            for c in range(Cv):
                for x in range(W):
                    out[c, y, x] = (bsum[band, c, ly, x] + value[c, y + pad, x + pad]) / (bw[band, ly, x] + 1)
    return out


# --- 3-D volumes and video ---


@njit(**PARALLEL_JIT)
def _nlm_3d(guide, value, fz, f, rz, r, zpad, z_reflect, a, b, fast_exp, out):
    """Pixelwise NL-means on a stack of slices: volumes (Z, Y, X) and video (T, Y, X).

    Parameters
    ----------
    guide : (Cg, Z + 2 zpad, H + 2 pad, W + 2 pad) float array, ``pad = r + f``; patch distances use it.
    value : (Cv, Z + 2 zpad, H + 2 pad, W + 2 pad) float array of the same dtype; the values averaged.
    fz, f : patch radius along the slice axis and within a slice (patches are (2fz+1) × (2f+1) × (2f+1)).
    rz, r : search radius along the slice axis and within a slice.
    zpad : padding of the slice axis (``rz + fz`` for volumes, 0 for video).
    z_reflect : True: partners outside ``[0, Z)`` come from the reflect padding (volumes); False: the search
        window is cut at the first and last slice (video).
    a, b : ``t = max(S * a - b, 0)``, ``S`` the patch sum of squared differences over the channels.
    fast_exp : use the vectorised float32 exponential.
    out : (Cv, Z, H, W) result.

    Each output slice is one parallel task. For every search offset ``(dz, dy, dx)`` the squared differences,
    summed over the ``2fz + 1`` slices and the channels, form one plane; a separable box filter (column sums,
    then row sums) gives every patch distance of the slice for that offset (Darbon et al. 2008). Every offset
    is visited from each pixel (no pair symmetry), so a task writes only its own slice.
    """
    Cv = out.shape[0]
    Z = out.shape[1]
    H = out.shape[2]
    W = out.shape[3]
    Cg = guide.shape[0]
    pad = r + f
    P = 2 * f + 1
    Wf = W + 2 * f
    zero = a - a
    for z in prange(Z):
        plane = np.empty((H + 2 * f, Wf), dtype=out.dtype)
        vs = np.empty(Wf, dtype=out.dtype)
        t = np.empty(W, dtype=out.dtype)
        w = np.empty(W, dtype=out.dtype)
        num = np.zeros((Cv, H, W), dtype=out.dtype)
        den = np.zeros((H, W), dtype=out.dtype)
        zc = z + zpad
        for dz in range(-rz, rz + 1):
            if not z_reflect and (z + dz < 0 or z + dz >= Z):
                continue
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    # plane[yy, xx]: squared differences at padded (gy, gx) = (yy + pad - f, xx + pad - f)
                    for yy in range(H + 2 * f):
                        gy = yy + pad - f
                        for xx in range(Wf):
                            plane[yy, xx] = zero
                        for kz in range(-fz, fz + 1):
                            for c in range(Cg):
                                for xx in range(Wf):
                                    gx = xx + pad - f
                                    diff = guide[c, zc + kz, gy, gx] - guide[c, zc + kz + dz, gy + dy, gx + dx]
                                    plane[yy, xx] += diff * diff
                    for y in range(H):
                        for xx in range(Wf):
                            vs[xx] = plane[y, xx]
                        for k in range(1, P):
                            for xx in range(Wf):
                                vs[xx] += plane[y + k, xx]
                        for x in range(W):
                            t[x] = vs[x]
                        for k in range(1, P):
                            for x in range(W):
                                t[x] += vs[x + k]
                        for x in range(W):
                            t[x] = max(t[x] * a - b, zero)
                        if fast_exp:
                            _exp_neg_f32(t, w, 0, W)
                        else:
                            _exp_neg_exact(t, w, 0, W)
                        qz = zc + dz
                        qy = y + pad + dy
                        for c in range(Cv):
                            for x in range(W):
                                num[c, y, x] += w[x] * value[c, qz, qy, x + pad + dx]
                        for x in range(W):
                            den[y, x] += w[x]
        for c in range(Cv):
            for y in range(H):
                for x in range(W):
                    out[c, z, y, x] = num[c, y, x] / den[y, x]

# --- Perona-Malik anisotropic diffusion ---


@njit(**PARALLEL_JIT)
def _perona_malik(u, n_iter, a, dt, out):
    """Perona-Malik anisotropic diffusion, explicit 4-neighbour scheme (Perona & Malik 1990).

    One step, for every pixel p and channel c, with ``N(p)`` its 4 neighbours::

        u_c(p) <- u_c(p) + dt * sum_{q in N(p)} g(p, q) * (u_c(q) - u_c(p))
        g(p, q) = exp(-a * sum_c (u_c(q) - u_c(p))**2),   a = 1 / (C * kappa**2)

    i.e. the conductance ``exp(-(|grad u| / kappa)**2)`` on the mean squared difference over the channels, one
    conductance per edge shared by all channels (joint color diffusion). Boundary: zero flux (the image is
    extended by repeating its edge pixels, so differences across the border are 0). Stable for ``dt <= 1/4``.

    Parameters
    ----------
    u : (C, H, W) float array, not padded.
    n_iter : number of steps.
    a, dt : ``1 / (C kappa^2)`` and the time step, of ``u``'s dtype.
    out : (C, H, W) result, ``u``'s dtype.
    """
    C = u.shape[0]
    H = u.shape[1]
    W = u.shape[2]
    zero = a - a
    # two padded buffers (ping-pong); ge[y, x]: edge (y, x)-(y, x+1), gs[y, x]: edge (y, x)-(y+1, x), padded
    buf = np.empty((2, C, H + 2, W + 2), dtype=out.dtype)
    ge = np.empty((H + 2, W + 2), dtype=out.dtype)
    gs = np.empty((H + 2, W + 2), dtype=out.dtype)
    for c in range(C):
        for y in range(H):
            for x in range(W):
                buf[0, c, y + 1, x + 1] = u[c, y, x]
    for it in range(n_iter + 1):
        cur = buf[it % 2]
        # zero-flux boundary: repeat the edge rows, then the edge columns (corners included)
        for c in range(C):
            for x in range(1, W + 1):
                cur[c, 0, x] = cur[c, 1, x]
                cur[c, H + 1, x] = cur[c, H, x]
            for y in range(H + 2):
                cur[c, y, 0] = cur[c, y, 1]
                cur[c, y, W + 1] = cur[c, y, W]
        if it == n_iter:
            break
        nxt = buf[(it + 1) % 2]
        # conductances: gs for padded rows 0..H (columns 1..W), ge for padded rows 1..H (columns 0..W)
        for y in prange(H + 1):
            for x in range(1, W + 1):
                gs[y, x] = zero
            for c in range(C):
                for x in range(1, W + 1):
                    d = cur[c, y + 1, x] - cur[c, y, x]
                    gs[y, x] += d * d
            for x in range(1, W + 1):
                gs[y, x] = np.exp(-a * gs[y, x])
            if y >= 1:
                for x in range(W + 1):
                    ge[y, x] = zero
                for c in range(C):
                    for x in range(W + 1):
                        d = cur[c, y, x + 1] - cur[c, y, x]
                        ge[y, x] += d * d
                for x in range(W + 1):
                    ge[y, x] = np.exp(-a * ge[y, x])
        for y in prange(1, H + 1):
            for c in range(C):
                for x in range(1, W + 1):
                    v = cur[c, y, x]
                    nxt[c, y, x] = v + dt * (
                        ge[y, x] * (cur[c, y, x + 1] - v)
                        - ge[y, x - 1] * (v - cur[c, y, x - 1])
                        + gs[y, x] * (cur[c, y + 1, x] - v)
                        - gs[y - 1, x] * (v - cur[c, y - 1, x])
                    )
    last = buf[n_iter % 2]
    for c in range(C):
        for y in range(H):
            for x in range(W):
                out[c, y, x] = last[c, y + 1, x + 1]

# --- patchwise NL-means and Gaussian-weighted distance ---
#
# One kernel for the variants that the symmetric pixelwise kernel above does not cover: the patchwise
# aggregation of IPOL 2011 and the Gaussian-weighted patch distance of Buades et al. 2005 (with either
# aggregation). It visits every offset of the S×S window for every pixel (no symmetric pairing), so each row
# band owns its output rows and the bands run in parallel without sharing anything.


@njit(**JIT)
def _offset_weights(guide, y0, ny, x0, nx, dy, dx, f, gk, flat, a, b, fast_exp, sq, col, t, w):
    """``w[k, x] = exp(-max(a * D(p) - b, 0))`` for ``p = (y0 + k, x)``, ``k < ny``, ``x0 <= x < x0 + nx``.

    Padded coordinates. ``D(p) = sum_{jy, jx} gk[jy] gk[jx] sum_c (g(p + j) - g(p + delta + j))**2`` with
    ``delta = (dy, dx)``: a separable weighted patch sum (``gk`` all ones and ``flat`` True for the flat
    distance, whose column sums then run down the rows).
    Work buffers: ``sq`` (ny + 2f rows), ``col`` (ny rows), ``t`` (one row).
    """
    P = 2 * f + 1
    zero = a - a
    lo = x0 - f
    hi = x0 + nx + f
    for k in range(ny + 2 * f):
        _squared_diff_row(guide, y0 - f + k, y0 - f + k + dy, dx, lo, hi, sq[k])
    if flat:
        # running column sums: one add and one subtract per row instead of P adds
        for x in range(lo, hi):
            col[0, x] = sq[0, x]
        for j in range(1, P):
            for x in range(lo, hi):
                col[0, x] += sq[j, x]
        for k in range(1, ny):
            for x in range(lo, hi):
                col[k, x] = col[k - 1, x] + sq[k + P - 1, x] - sq[k - 1, x]
    else:
        for k in range(ny):
            g0 = gk[0]
            for x in range(lo, hi):
                col[k, x] = g0 * sq[k, x]
            for j in range(1, P):
                gj = gk[j]
                for x in range(lo, hi):
                    col[k, x] += gj * sq[k + j, x]
    for k in range(ny):
        g0 = gk[0]
        for x in range(x0, x0 + nx):
            t[x] = g0 * col[k, x - f]
        for j in range(1, P):
            gj = gk[j]
            for x in range(x0, x0 + nx):
                t[x] += gj * col[k, x - f + j]
        for x in range(x0, x0 + nx):
            t[x] = max(t[x] * a - b, zero)
        if fast_exp:
            _exp_neg_f32(t, w[k], x0, x0 + nx)
        else:
            _exp_neg_exact(t, w[k], x0, x0 + nx)


@njit(**PARALLEL_JIT)
def _nlm_offsets(guide, value, f, r, pad, gk, flat, a, b, band_rows, patchwise, fast_exp, out):
    """NL-means by a full loop over the search offsets: pixelwise or patchwise, any separable patch weight.

    Parameters
    ----------
    guide, value : (Cg | Cv, H + 2 pad, W + 2 pad) float arrays of one dtype, padded by ``pad``
        (``r + f`` pixelwise, ``r + 2f`` patchwise, whose patches reach ``f`` beyond the image).
    f, r : patch and search radius.
    gk : (2f + 1,) separable patch weights (ones for the flat distance).
    flat : True when ``gk`` is all ones (running sums instead of weighted ones).
    a, b : ``t = max(D * a - b, 0)``, ``w = exp(-t)``; for weights normalised to a mean,
        ``a = 1 / (Cg (sum gk)^2 h^2)``, ``b = 2 sigma^2 / h^2``.
    band_rows : output rows per parallel band.
    patchwise : False: ``u(p) = sum_q w(p,q) v(q) / sum_q w(p,q)``. True: every patch centred at ``p``
        (``p`` ranging ``f`` pixels beyond the image) gets its own normalised estimate
        ``sum_q w(p,q) v(q + j) / C(p)``, ``C(p) = sum_q w(p,q)``, and pixel ``i`` is the mean of the
        ``P^2`` estimates of the patches containing it. Two passes per band: ``C`` first, then the sums
        ``u(i) = P^-2 sum_delta v(i + delta) boxsum_P(w(., . + delta) / C)(i)``.
    fast_exp : vectorised float32 exponential instead of libm's.
    out : (Cv, H, W) result.
    """
    H = out.shape[1]
    W = out.shape[2]
    Cv = value.shape[0]
    Wp = guide.shape[2]
    P = 2 * f + 1
    B = max(band_rows, 1)
    n_bands = (H + B - 1) // B
    e = f if patchwise else 0  # patch centres reach e pixels beyond the band and the image
    for band in prange(n_bands):
        b0 = band * B
        b1 = min(b0 + B, H)
        nb = b1 - b0
        ny = nb + 2 * e
        y0 = b0 + pad - e
        x0 = pad - e
        nx = W + 2 * e
        sq = np.empty((ny + 2 * f, Wp), dtype=out.dtype)
        col = np.empty((ny, Wp), dtype=out.dtype)
        w = np.empty((ny, Wp), dtype=out.dtype)
        t = np.empty(Wp, dtype=out.dtype)
        wsum = np.zeros((ny, Wp), dtype=out.dtype)
        acc = np.zeros((Cv, nb, Wp), dtype=out.dtype)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                _offset_weights(guide, y0, ny, x0, nx, dy, dx, f, gk, flat, a, b, fast_exp, sq, col, t, w)
                for k in range(ny):
                    for x in range(x0, x0 + nx):
                        wsum[k, x] += w[k, x]
                if not patchwise:
                    for c in range(Cv):
                        for k in range(nb):
                            for x in range(x0, x0 + nx):
                                acc[c, k, x] += w[k, x] * value[c, y0 + k + dy, x + dx]
        if not patchwise:
            for c in range(Cv):
                for k in range(nb):
                    for x in range(W):
                        out[c, b0 + k, x] = acc[c, k, x + pad] / wsum[k, x + pad]
            continue
        one = a - a + 1
        for k in range(ny):
            for x in range(x0, x0 + nx):
                wsum[k, x] = one / wsum[k, x]
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                _offset_weights(guide, y0, ny, x0, nx, dy, dx, f, gk, flat, a, b, fast_exp, sq, col, t, w)
                for k in range(ny):
                    for x in range(x0, x0 + nx):
                        w[k, x] *= wsum[k, x]
                # box sum over the P x P patch centres around each output pixel (running down the rows)
                for x in range(x0, x0 + nx):
                    col[0, x] = w[0, x]
                for j in range(1, P):
                    for x in range(x0, x0 + nx):
                        col[0, x] += w[j, x]
                for k in range(1, nb):
                    for x in range(x0, x0 + nx):
                        col[k, x] = col[k - 1, x] + w[k + P - 1, x] - w[k - 1, x]
                for k in range(nb):
                    for x in range(pad, pad + W):
                        t[x] = col[k, x - f]
                    for j in range(1, P):
                        for x in range(pad, pad + W):
                            t[x] += col[k, x - f + j]
                    vy = b0 + pad + k + dy
                    for c in range(Cv):
                        for x in range(pad, pad + W):
                            acc[c, k, x] += t[x] * value[c, vy, x + dx]
        scale = one / (P * P)
        for c in range(Cv):
            for k in range(nb):
                for x in range(W):
                    out[c, b0 + k, x] = acc[c, k, x + pad] * scale
    return out


# --- NL-Bayes ---
#
# Lebrun, Buades & Morel (2013), implemented from the paper: for each reference patch, the n most similar
# patches in a search window form a group; a Gaussian model of the group (mean and covariance) gives the MAP /
# Wiener estimate of every patch of the group; estimates are aggregated (plain mean over all the estimates of
# a pixel). Stage 1 models the noisy patches; stage 2 takes the group and the covariance from the stage-1
# (basic) estimate and filters the noisy patches again.


@njit(**JIT)
def _nlb_cholesky(A, D):
    """In-place upper Cholesky factor ``U`` (``A = U^T U``) of the symmetric ``A[:D, :D]``, read from and written
    to the upper triangle (the lower part is not used). Returns False, leaving ``A`` half-factored, when ``A`` is
    not numerically positive definite: a pivot at or below ``16 D eps`` times the largest diagonal entry (``eps``
    of the dtype), where the solve would amplify rounding errors into garbage.

    Right-looking: each step scales row ``k`` and subtracts its outer product from the trailing rows, all
    contiguous vector operations (the left-looking dot products would be dependent scalar chains).
    """
    dmax = A[0, 0]
    for k in range(1, D):
        dmax = max(dmax, A[k, k])
    tol = dmax * (16 * D * np.finfo(A.dtype).eps)
    for k in range(D):
        pivot = A[k, k]
        if not pivot > tol:  # also catches NaN
            return False
        s = np.sqrt(pivot)
        A[k, k] = s
        inv = 1 / s
        rk = A[k]
        for j in range(k + 1, D):
            rk[j] *= inv
        for i in range(k + 1, D):
            u = rk[i]
            ri = A[i]
            for j in range(i, D):
                ri[j] -= u * rk[j]
    return True


@njit(**JIT)
def _nlb_solve(U, Bm, D, n):
    """``Bm[:D, :n] = (U^T U)^-1 Bm[:D, :n]`` in place, ``U`` upper triangular from :func:`_nlb_cholesky`."""
    for i in range(D):  # U^T y = b
        for k in range(i):
            uki = U[k, i]
            for m in range(n):
                Bm[i, m] -= uki * Bm[k, m]
        inv = 1 / U[i, i]
        for m in range(n):
            Bm[i, m] *= inv
    for i in range(D - 1, -1, -1):  # U x = y
        for k in range(i + 1, D):
            uik = U[i, k]
            for m in range(n):
                Bm[i, m] -= uik * Bm[k, m]
        inv = 1 / U[i, i]
        for m in range(n):
            Bm[i, m] *= inv


@njit(**JIT)
def _nlb_row_distances(rrow, cand, x0, P, nk, drow):
    """``drow[k] += sum_j (rrow[x0 + j] - cand[k + j])**2`` over the ``P`` columns ``j`` of one patch row.

    ``cand`` is a row view indexed from 0 (no wrap-around). P = 5 and 7: the patch row's terms are summed in
    registers and ``drow`` is read and written once per row, not once per column (its add goes through memory,
    so a chain of them is latency-bound).
    """
    if P == 5:
        r0, r1, r2, r3, r4 = rrow[x0], rrow[x0 + 1], rrow[x0 + 2], rrow[x0 + 3], rrow[x0 + 4]
        for k in range(nk):
            e0 = r0 - cand[k]
            e1 = r1 - cand[k + 1]
            e2 = r2 - cand[k + 2]
            e3 = r3 - cand[k + 3]
            e4 = r4 - cand[k + 4]
            drow[k] += ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + e4 * e4
    elif P == 7:
        r0, r1, r2, r3 = rrow[x0], rrow[x0 + 1], rrow[x0 + 2], rrow[x0 + 3]
        r4, r5, r6 = rrow[x0 + 4], rrow[x0 + 5], rrow[x0 + 6]
        for k in range(nk):
            e0 = r0 - cand[k]
            e1 = r1 - cand[k + 1]
            e2 = r2 - cand[k + 2]
            e3 = r3 - cand[k + 3]
            e4 = r4 - cand[k + 4]
            e5 = r5 - cand[k + 5]
            e6 = r6 - cand[k + 6]
            drow[k] += ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + ((e4 * e4 + e5 * e5) + e6 * e6)
    else:
        for j in range(P):
            ref = rrow[x0 + j]
            c = cand[j:]
            for k in range(nk):
                diff = ref - c[k]
                drow[k] += diff * diff


@njit(**JIT)
def _nlb_covariance(Sc, n, D, inv_n1, cov):
    """Upper triangle of ``cov[:D, :D]`` = the covariance of the centred patches ``Sc[:n, :D]`` (``inv_n1 =
    1 / (n - 1)``): one row of products per patch entry, vectors over ``j``."""
    for i in range(D):
        for j in range(i, D):
            cov[i, j] = Sc[0, 0] - Sc[0, 0]
    for m in range(n):
        sc = Sc[m]
        for i in range(D):
            a = sc[i]
            row = cov[i]
            for j in range(i, D):
                row[j] += a * sc[j]
    for i in range(D):
        for j in range(i, D):
            cov[i, j] *= inv_n1


@njit(**JIT)
def _nlb_mean(X, n, D, inv_n, mu):
    """``mu[:D]`` = the mean of the patches ``X[:n, :D]`` (``inv_n = 1 / n``)."""
    for i in range(D):
        mu[i] = X[0, i] - X[0, i]
    for m in range(n):
        for i in range(D):
            mu[i] += X[m, i]
    for i in range(D):
        mu[i] *= inv_n


@njit(**JIT)
def _nth_smallest(a, n, k):
    """The ``k``-th smallest (from 0) of ``a[:n]``; reorders ``a[:n]`` (Hoare's quickselect, median-of-3 pivot)."""
    lo = 0
    hi = n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        # median of three to the middle: sorted a[lo] <= a[mid] <= a[hi]
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while pivot < a[j]:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        # now a[lo..j] <= pivot <= a[i..hi], and a[j+1..i-1] == pivot
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return a[k]
    return a[k]


def _nth_smallest_nonneg(a, n, k, work):
    """The ``k``-th smallest (from 0) of ``a[:n]``, all values finite and >= 0; ``a`` is left as it is.

    float32: a binary search over the bit patterns (non-negative floats order like their bits as integers):
    31 vectorised counting passes, no data-dependent branches. Other dtypes: :func:`_nth_smallest` on a copy
    in ``work``. The Python body only runs with ``NUMBA_DISABLE_JIT=1``.
    """
    return np.partition(np.asarray(a[:n]), k)[k]


@overload(_nth_smallest_nonneg, jit_options=dict(fastmath=FASTMATH))
def _nth_smallest_nonneg_impl(a, n, k, work):
    if a.dtype == types.float32:

        def impl(a, n, k, work):
            bits = a.view(np.int32)
            lo = 0
            hi = 0x7F7FFFFF  # the largest finite float32
            while lo < hi:
                mid = lo + (hi - lo) // 2
                count = 0
                for i in range(n):
                    count += 1 if bits[i] <= mid else 0
                if count > k:
                    hi = mid
                else:
                    lo = mid + 1
            return _f32_from_bits(lo)

        return impl

    def impl(a, n, k, work):  # noqa: F811 - float64: quickselect on a copy
        for i in range(n):
            work[i] = a[i]
        return _nth_smallest(work, n, k)

    return impl


@njit(**JIT)
def _nlb_band(noisy, basic, stage, b0, b1, H, W, f, r, n_sim, step, sigma2, beta, gamma,
              num, den, mask, dist, work, drow, oy, ox, X, Y, Sc, mu, muy, vsum, cov, Z):
    """Process the reference patches whose centre row lies in ``[b0, b1)``, accumulating into the band's
    private ``num[c, y - b0 + r + f, x + pad]`` and ``den`` (rows reach ``r + f`` beyond the band)."""
    pad = r + f
    P = 2 * f + 1
    D = P * P
    C = noisy.shape[0]
    zero = sigma2 - sigma2
    search = noisy if stage == 1 else basic  # groups are found on channel 0 of this image
    lo_row = b0 - r - f
    for y in range(b0, b1):
        if y % step != 0 and y != H - 1:
            continue
        for x in range(W):
            if x % step != 0 and x != W - 1:
                continue
            if mask[y - b0, x]:
                continue
            py = y + pad
            px = x + pad
            # candidates per row of offsets: 2r + 1, rounded up to whole 16-lane vectors where the padding allows
            # (the extra columns are computed and ignored), so no scalar remainder loop is left
            nk = min((2 * r + 1 + 15) // 16 * 16, drow.shape[0], search.shape[2] - (px + f - r))
            # every candidate's distance in scan order (row-major offsets, the centre left out)
            nc = 0
            for dy in range(-r, r + 1):
                # distances to the 2r + 1 candidates of this row of offsets, vectorised over dx
                for k in range(nk):
                    drow[k] = zero
                for jy in range(-f, f + 1):
                    rrow = search[0, py + jy]
                    crow = search[0, py + dy + jy]
                    _nlb_row_distances(rrow, crow[px - f - r:], px - f, P, nk, drow)
                for dx in range(-r, r + 1):
                    if dy != 0 or dx != 0:
                        dist[nc] = drow[dx + r]
                        nc += 1
            # the group: the reference, then the n_sim - 1 nearest candidates, ties going to the earlier one in
            # scan order (what a stable sort gives): those below the (n_sim - 1)-th smallest distance, then as
            # many equal to it as are needed. A selection, not a sort: O(candidates) per reference.
            oy[0] = 0
            ox[0] = 0
            n = 1
            m = min(n_sim - 1, nc)
            if m > 0:
                thr = _nth_smallest_nonneg(dist, nc, m - 1, work)
                n_equal = m
                for k in range(nc):
                    if dist[k] < thr:
                        n_equal -= 1
                k = 0
                for dy in range(-r, r + 1):
                    for dx in range(-r, r + 1):
                        if dy == 0 and dx == 0:
                            continue
                        d = dist[k]
                        k += 1
                        if d < thr or (d == thr and n_equal > 0):
                            if d == thr:
                                n_equal -= 1
                            oy[n] = dy
                            ox[n] = dx
                            n += 1
            inv_n = 1 / (zero + n)
            inv_n1 = 1 / (zero + max(n - 1, 1))
            for c in range(C):
                for m in range(n):
                    qy = py + oy[m]
                    qx = px + ox[m]
                    for jy in range(P):
                        for jx in range(P):
                            X[m, jy * P + jx] = noisy[c, qy + jy - f, qx + jx - f]
                    if stage == 2:
                        for jy in range(P):
                            for jx in range(P):
                                Y[m, jy * P + jx] = basic[c, qy + jy - f, qx + jx - f]
                src = X if stage == 1 else Y  # the patches the model is learnt from
                _nlb_mean(X, n, D, inv_n, mu)
                msrc = mu  # the mean of the model patches
                if stage == 2:
                    _nlb_mean(Y, n, D, inv_n, muy)
                    msrc = muy
                flat = False
                if gamma > 0:
                    # homogeneous group: the model patches vary no more than gamma sigma^2 (stage 1: the noisy
                    # ones, about sigma^2 if flat; stage 2: the basic ones, about 0) -> all become the mean.
                    # Sums kept per patch pixel (vectors over i), then added: no long dependent chains.
                    gm = zero
                    sm = zero
                    for i in range(D):
                        gm += mu[i]
                        sm += msrc[i]
                    gm /= D
                    sm /= D
                    for i in range(D):
                        vsum[i] = zero
                    for m in range(n):
                        for i in range(D):
                            e = src[m, i] - sm
                            vsum[i] += e * e
                    var = zero
                    for i in range(D):
                        var += vsum[i]
                    var /= n * D
                    if var <= gamma * sigma2:
                        flat = True
                        for m in range(n):
                            for i in range(D):
                                X[m, i] = gm
                if not flat:
                    for m in range(n):
                        for i in range(D):
                            Sc[m, i] = src[m, i] - msrc[i]  # the centred model patches
                    _nlb_covariance(Sc, n, D, inv_n1, cov)
                    # Z = (X - mu)^T, then solve
                    for i in range(D):
                        for m in range(n):
                            Z[i, m] = X[m, i] - mu[i]
                    # stage 1: X <- X - beta sigma^2 Cov^-1 (X - mu)  [= mu + (Cov - beta sigma^2) Cov^-1 (X - mu)]
                    # stage 2: X <- mu + CovB (CovB + beta sigma^2)^-1 (X - mu), CovB from the basic patches,
                    # computed as X - beta sigma^2 (CovB + beta sigma^2)^-1 (X - mu) (the same matrix)
                    ridge = stage == 2
                    if ridge:
                        for i in range(D):
                            cov[i, i] += beta * sigma2
                    ok = _nlb_cholesky(cov, D)
                    if not ok and not ridge:
                        # a singular stage-1 model (e.g. a noise-free group of a few repeated patches): the
                        # model's covariance plus beta sigma^2 instead, i.e. stage 2's Wiener form, always regular
                        _nlb_covariance(Sc, n, D, inv_n1, cov)
                        for i in range(D):
                            cov[i, i] += beta * sigma2
                        ok = _nlb_cholesky(cov, D)
                    if ok:
                        _nlb_solve(cov, Z, D, n)
                        for m in range(n):
                            for i in range(D):
                                X[m, i] -= beta * sigma2 * Z[i, m]
                    else:  # not even that (non-finite values): every patch becomes the group's mean patch
                        for m in range(n):
                            for i in range(D):
                                X[m, i] = mu[i]
                # aggregate every patch of the group
                for m in range(n):
                    qy = py + oy[m] - pad - lo_row
                    qx = px + ox[m]
                    for jy in range(P):
                        for jx in range(P):
                            num[c, qy + jy - f, qx + jx - f] += X[m, jy * P + jx]
            for m in range(n):
                qy = py + oy[m] - pad - lo_row
                qx = px + ox[m]
                for jy in range(P):
                    for jx in range(P):
                        den[qy + jy - f, qx + jx - f] += 1
                cy = y + oy[m]
                cx = x + ox[m]
                if b0 <= cy < b1 and 0 <= cx < W:
                    mask[cy - b0, cx] = True


@njit(**PARALLEL_JIT)
def _nlbayes_pass(noisy, basic, stage, f, r, n_sim, step, sigma2, beta, gamma, band_rows, out):
    """One NL-Bayes stage on padded ``(C, H + 2 pad, W + 2 pad)`` arrays, ``pad = r + f``.

    ``stage`` 1: groups and model from ``noisy`` (``basic`` unused, pass ``noisy``); 2: groups, covariance and
    homogeneity test from ``basic``, the mean from the noisy patches, applied to the noisy patches.
    Bands of ``band_rows`` (>= 2 (r + f)) reference rows; even bands, then odd ones, add their private sums
    into the image-wide ones, so the result does not depend on the number of threads.
    ``out`` (C, H, W): the aggregated estimate (image pixels only; estimates falling in the padding are
    dropped).
    """
    pad = r + f
    P = 2 * f + 1
    D = P * P
    C = out.shape[0]
    H = out.shape[1]
    W = out.shape[2]
    Wp = W + 2 * pad
    B = max(band_rows, 2 * pad, 1)
    n_bands = (H + B - 1) // B
    gnum = np.zeros((C, H, W), dtype=out.dtype)
    gden = np.zeros((H, W), dtype=out.dtype)
    nmax = max(n_sim, D)
    for phase in range(2):
        n_phase = (n_bands - phase + 1) // 2
        for j in prange(n_phase):
            band = phase + 2 * j
            b0 = band * B
            b1 = min(b0 + B, H)
            rows = b1 - b0 + 2 * pad
            num = np.zeros((C, rows, Wp), dtype=out.dtype)
            den = np.zeros((rows, Wp), dtype=out.dtype)
            mask = np.zeros((b1 - b0, W), dtype=np.bool_)
            n_cand = (2 * r + 1) * (2 * r + 1) - 1
            dist = np.empty(n_cand, dtype=out.dtype)
            work = np.empty(n_cand, dtype=out.dtype)
            drow = np.empty((2 * r + 1 + 15) // 16 * 16, dtype=out.dtype)
            oy = np.empty(n_sim, dtype=np.int64)
            ox = np.empty(n_sim, dtype=np.int64)
            X = np.empty((nmax, D), dtype=out.dtype)
            Y = np.empty((nmax, D), dtype=out.dtype)
            Sc = np.empty((nmax, D), dtype=out.dtype)
            mu = np.empty(D, dtype=out.dtype)
            muy = np.empty(D, dtype=out.dtype)
            vsum = np.empty(D, dtype=out.dtype)
            cov = np.empty((D, D), dtype=out.dtype)
            Z = np.empty((D, nmax), dtype=out.dtype)
            _nlb_band(noisy, basic, stage, b0, b1, H, W, f, r, n_sim, step, sigma2, beta, gamma,
                      num, den, mask, dist, work, drow, oy, ox, X, Y, Sc, mu, muy, vsum, cov, Z)
            for ly in range(rows):
                yy = b0 - pad + ly
                if yy < 0 or yy >= H:
                    continue
                for c in range(C):
                    for x in range(W):
                        gnum[c, yy, x] += num[c, ly, x + pad]
                for x in range(W):
                    gden[yy, x] += den[ly, x + pad]
    for c in range(C):
        for y in prange(H):
            for x in range(W):
                out[c, y, x] = gnum[c, y, x] / gden[y, x]
    return out
