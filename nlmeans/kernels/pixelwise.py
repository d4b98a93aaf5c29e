"""Pixelwise NL-means in 2-D, the fast path, and the explicit-vector machinery it is written with.

Conventions of the package in :mod:`nlmeans.kernels`. Here: images padded by ``pad = r + f`` (``r`` the search
radius, ``f`` the patch radius) on both spatial axes; the row loops are written with explicit vectors (see
"explicit vectors" below): the arrays carry spare columns up to a whole number of vectors, and the padded images
spare rows below (:func:`_nlm_pixelwise_band`), so that a vector load may run up to one vector past a row's end.
These kernels need numba's JIT (no ``NUMBA_DISABLE_JIT``).

The kernel follows Darbon et al. (2008): loop over the search offsets ``delta`` and, for each, box-filter the
squared differences ``(v(p) - v(p + delta))**2`` to get every patch distance for that offset at once: a running
column sum over the patch rows (add the row entering, subtract the row leaving, both recomputed from the guide)
and a sum of ``P`` neighbouring column sums. Weights are symmetric, ``w(p, p + delta) == w(p + delta, p)``, so
each offset pair is visited once and updates both pixels. Four (or three, see :func:`_pass_sizes`) offsets with
the same ``dy`` and consecutive ``dx`` are handled in one pass over a row: the guide rows of ``p`` and the
accumulator rows of ``p`` and of ``p + delta`` are loaded and stored once for all of them.

Gray images (one guide and one value channel) run in the *segment layout* instead (:func:`_nlm_segments_band`,
the section "gray images" below): each padded row is cut into eight segments laid side by side, one per vector
lane, so that the horizontal box sum becomes a running sum along the columns (2 aligned loads and 2 adds per
vector instead of ``P`` split loads and ``P - 1`` adds), restarted every 64 columns; the running column sums and
the accumulations are the same functions with other column offsets. Colour and other channel counts keep the
row layout.

The weight is ``exp(-max(S - bb, 0) * a)``, ``S`` the box sum of squared differences: libm's ``exp`` for float64
(the exact path) and, for float32, a degree-4 polynomial for ``2**y`` on ``[-1/2, 1/2]`` with the exponent bits
added as an integer (relative error < 3e-6), which vectorises where ``np.exp`` is a scalar call; float32 weights
are clamped at ``2**-64`` so that no product is a (slow) denormal number.

:func:`_nlm_pixelwise_map_band` is the same pair loop with a noise level per pixel (a σ map): the bias ``bb``
becomes ``B(p) + B(q)`` from a map of patch means of σ², and ``a`` is each pixel's own, so each pair gets two
weights.

Parallel structure and determinism
----------------------------------
Rows are cut into bands of ``band_rows`` rows (:func:`nlmeans._config.band_rows`), aligned to row 0 of the
image, plus a "top band" for the rows above the image whose pairs reach into it. Each band is one task of a
Python thread (:func:`nlmeans.nlm._bands`, handed out one at a time) and accumulates into its own
buffers: its own rows plus the ``r`` rows below it that its pairs reach. At the end each image row adds its
band's sums and, for its first ``r`` rows, the band above's: two terms, and ``a + b == b + a``, so the result does
not depend on which band finished first. The running column sums restart at every band start, so a band's sums
depend only on the band's rows and the image around them: a full-width strip whose first row is a multiple of
``band_rows``, cut out with at least two bands of rows above the rows it keeps (so that the band above a kept
row is an ordinary band with real rows above it) and ``r + f`` rows below them, gives those rows bit-identical
values to the whole image
(``tests/test_kernels.py::test_strips_aligned_to_bands_are_bit_identical``); in the segment layout a pixel's
arithmetic also depends on its place in its segment, which only the image's width sets, so full-width strips keep
the property. No ``reassoc`` fast-math flag is used, so the arithmetic order written here is the one executed.

This file is one numba cache unit: it imports no compiled code from its siblings (see :mod:`nlmeans.kernels`).
"""

from __future__ import annotations

import operator

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

from .._config import FASTMATH, JIT

# The pixelwise float32 weight is clamped at 2**-64 ~ 5e-20 (instead of ~0): a weight that small changes no
# result visibly (the centre weight is 1), and products w * v stay normal numbers: denormals cost ~15% on noise.
_Z_MAX = 64.0
_LOG2E = 1.4426950408889634

# The fast exponential's numbers, also in offsets.py (one cache unit per file; tests/test_kernel_layout.py
# checks that the copies agree).
# 1.5 * 2**23: adding it rounds a float32 in [0, 2**22) to an integer held in the low mantissa bits
_ROUND_MAGIC = 12582912.0
# 2**y on [-1/2, 1/2], degree 4, fitted for the least largest relative error: 2.6e-6 (2.7e-6 in float32;
# degree 5 had 2.6e-7 for one more multiply-add per weight, 4 % of the gray kernel's time: docs/benchmarks.md)
_P2 = (0.9999992614254315, 0.6931218140516057, 0.24024744839276185, 0.05591786594766232,
       0.009570103661042745)


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
# to a whole number of vectors (see :func:`_nlm_pixelwise_band`), so every pixel goes through the same instructions
# wherever it sits in a row.
_VBYTES = 64  # one AVX-512 register; on AVX2 machines LLVM splits each operation in two


class _Vec(types.Type):
    """numba type of an LLVM vector of ``nbytes`` bytes of ``dtype`` (``_VBYTES``: 16 float32 or 8 float64)."""

    def __init__(self, dtype, nbytes=_VBYTES):
        self.dtype = dtype
        self.lanes = nbytes // (dtype.bitwidth // 8)
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


def _load_codegen(vt, first):
    """Codegen of a load of the vector type ``vt`` from ``a[idx]``, ``a`` and ``idx`` the arguments from
    position ``first`` on (the loads :func:`_vload` and :func:`_vload_as`)."""

    def codegen(context, builder, sig, args):
        aty = sig.args[first]
        ptr = _element_pointer(context, builder, aty, args[first], sig.args[first + 1], args[first + 1])
        vptr = builder.bitcast(ptr, context.get_value_type(vt).as_pointer())
        return builder.load(vptr, align=aty.dtype.bitwidth // 8)

    return codegen


@intrinsic
def _vload(typingctx, a, idx):
    """The vector ``a[idx[:-1]][idx[-1] : idx[-1] + lanes]`` (may run past the row's end into the next row)."""
    if not _vec_args_ok(a, idx):
        return None
    vt = _Vec(a.dtype)
    return vt(a, idx), _load_codegen(vt, 0)


@intrinsic
def _vload_as(typingctx, like, a, idx):
    """:func:`_vload` of a vector of ``like``'s type (e.g. :func:`_vhalf`'s narrower one)."""
    if not (_vec_args_ok(a, idx) and isinstance(like, _Vec) and like.dtype == a.dtype):
        return None
    return like(like, a, idx), _load_codegen(like, 1)


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


def _zeros_signature(a, nbytes):
    """Signature and codegen of a vector of ``nbytes`` bytes of zeros of ``a``'s dtype (None: not a float
    array)."""
    if not _is_float_array(a):
        return None
    vt = _Vec(a.dtype, nbytes)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vt), None)

    return vt(a), codegen


@intrinsic
def _vzeros(typingctx, a):
    """A vector of zeros of ``a``'s dtype."""
    return _zeros_signature(a, _VBYTES)


@intrinsic
def _vhalf(typingctx, a):
    """A vector of zeros of ``a``'s dtype, half as wide as :func:`_vzeros`'s (one AVX2 register): the weight rows
    run on these, whose exponential needs more registers than AVX2's 16 hold at full width (see
    :func:`_weights_row2`)."""
    return _zeros_signature(a, _VBYTES // 2)


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
    """A vector of ``v``'s type with every lane ``x`` (converted to the lane type); a vector ``x`` of that type
    is returned as it is (so :func:`_vweight` also takes per-lane constants, the σ-map kernel's)."""
    if isinstance(v, _Vec) and x == v:
        return v(v, x), lambda context, builder, sig, args: args[1]
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
            p = _vsplat(s, _P2[4])
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
def _box_sum(cs, k, x, P, like):
    """The vector (of ``like``'s type) ``cs[k, x + j]`` summed over ``j`` in ``[0, P)``: the horizontal box sum (a
    balanced sum for the common patch sizes)."""
    one, two, three = _U(1), _U(2), _U(3)
    if P == 7:
        return (((_vload_as(like, cs, (k, x)) + _vload_as(like, cs, (k, x + one)))
                 + (_vload_as(like, cs, (k, x + two)) + _vload_as(like, cs, (k, x + three))))
                + ((_vload_as(like, cs, (k, x + _U(4))) + _vload_as(like, cs, (k, x + _U(5))))
                   + _vload_as(like, cs, (k, x + _U(6)))))
    if P == 5:
        return (((_vload_as(like, cs, (k, x)) + _vload_as(like, cs, (k, x + one)))
                 + (_vload_as(like, cs, (k, x + two)) + _vload_as(like, cs, (k, x + three))))
                + _vload_as(like, cs, (k, x + _U(4))))
    if P == 3:
        return ((_vload_as(like, cs, (k, x)) + _vload_as(like, cs, (k, x + one)))
                + _vload_as(like, cs, (k, x + two)))
    s = _vload_as(like, cs, (k, x))
    for j in range(1, P):
        s = s + _vload_as(like, cs, (k, x + _U(j)))
    return s


# The weight rows run on half-width vectors (one AVX2 register of 8 float32): at full width the exponential's
# constants and chains need more than AVX2's 16 registers and spill to the stack (inspect_asm), and LLVM turns the
# split max(x, 0) into a compare and a mask; at half width neither happens. The lanes' arithmetic is the same.
@njit(**JIT)
def _weights_row(cs, k, P, aw, cw, n, wt):
    """``wt[k, x] = _vweight(cs[k, x] + ... + cs[k, x + P - 1])`` for ``x`` in ``[0, n)`` rounded up to whole
    vectors."""
    h = _vhalf(cs)
    L = _U(_lanes(cs) // 2)
    k = _U(k)
    for x in range(_U(0), _U(n), L):
        _vstore(wt, (k, x), _vweight(_box_sum(cs, k, x, P, h), aw, cw))


@njit(**JIT)
def _weights_row2(cs, k, P, aw, cw, n, wt):
    """:func:`_weights_row` for rows ``k`` and ``k + 1`` in one loop: two independent chains, so the core overlaps
    them."""
    h = _vhalf(cs)
    L = _U(_lanes(cs) // 2)
    k = _U(k)
    m = k + _U(1)
    for x in range(_U(0), _U(n), L):
        sa = _box_sum(cs, k, x, P, h)
        sb = _box_sum(cs, m, x, P, h)
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
    """:func:`_colsum_slide4` for a 3-channel guide (row layout), ``nk`` = 3 or 4 offsets: the sums are read and
    written once, not once per channel."""
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
def _colsum_slide4(guide, gnew, gold, dy, lo, d0, n, cs, rgb, step=1):
    """:func:`_colsum_slide` for the four offsets ``dx = d0 .. d0 + 3`` in one loop (rows ``cs[0 .. 3]``).

    ``rgb``: None, or True for a 3-channel guide (a type, so only the branch taken is compiled: the gray call
    compiles no colour code, and the colour call no gray code). ``step``: the columns between two neighbouring
    offsets' partners, 1 in the row layout, ``_SEG`` in the segment layout (gray only; there ``d0`` is given in
    columns too)."""
    if rgb is not None:  # color: one pass over the sums for all channels (-10% on color, bench/README.md)
        _colsum_slide_rgb(guide, gnew, gold, dy, lo, d0, n, cs, 4)
        return
    L = _U(_lanes(cs))
    z = _U(0)
    one, two, three = _U(step), _U(2 * step), _U(3 * step)
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
            _vstore(cs, (_U(1), x), _vload(cs, (_U(1), x)) + (e1 * e1 - o1 * o1))
            _vstore(cs, (_U(2), x), _vload(cs, (_U(2), x)) + (e2 * e2 - o2 * o2))
            _vstore(cs, (_U(3), x), _vload(cs, (_U(3), x)) + (e3 * e3 - o3 * o3))


@njit(**JIT)
def _colsum_slide3(guide, gnew, gold, dy, lo, d0, n, cs, rgb, step=1):
    """:func:`_colsum_slide4` for the three offsets ``dx = d0 .. d0 + 2`` (rows ``cs[0 .. 2]``)."""
    if rgb is not None:
        _colsum_slide_rgb(guide, gnew, gold, dy, lo, d0, n, cs, 3)
        return
    L = _U(_lanes(cs))
    z = _U(0)
    one, two = _U(step), _U(2 * step)
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
            _vstore(cs, (_U(1), x), _vload(cs, (_U(1), x)) + (e1 * e1 - o1 * o1))
            _vstore(cs, (_U(2), x), _vload(cs, (_U(2), x)) + (e2 * e2 - o2 * o2))


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
def _accumulate4(value, vrow, v0, v1, v2, v3, wt, o0, o1, o2, o3, acc, wsum, ly, W, rgb, a0=0):
    """``acc[c, ly, a0 + x] += sum_k wt[k, o_k + x] value[c, vrow, v_k + x]``, ``wsum[ly, a0 + x] += sum_k
    wt[k, o_k + x]`` for ``x`` in ``[0, W)`` rounded up to whole vectors, four offsets (value columns ``v_k``,
    weight columns ``o_k``, all >= 0).

    One load and one store of the accumulator rows for four offsets; the weight sum rides on channel 0's loop
    (one channel per loop: a loop over a runtime number of channels inside the pixel loop costs gray 5%).
    ``rgb``: None, or True for a 3-channel ``value`` (see :func:`_colsum_slide4`). ``a0``: the first
    accumulator column (the segment layout's; gray only, the 3-channel branch starts at 0).
    """
    v0, v1, v2, v3, o0, o1, o2, o3 = _U(v0), _U(v1), _U(v2), _U(v3), _U(o0), _U(o1), _U(o2), _U(o3)
    if rgb is not None:  # color: the weights are read once for the three channels
        _accumulate4_rgb(value, vrow, v0, v1, v2, v3, wt, o0, o1, o2, o3, acc, wsum, ly, W)
        return
    L = _U(_lanes(wt))
    z, one, two, three = _U(0), _U(1), _U(2), _U(3)
    a0 = _U(a0)
    for c in range(_U(value.shape[0])):
        for x in range(z, _U(W), L):
            w0, w1, w2 = _vload(wt, (z, o0 + x)), _vload(wt, (one, o1 + x)), _vload(wt, (two, o2 + x))
            w3 = _vload(wt, (three, o3 + x))
            s = (w0 * _vload(value, (c, vrow, v0 + x)) + w1 * _vload(value, (c, vrow, v1 + x))
                 + w2 * _vload(value, (c, vrow, v2 + x)) + w3 * _vload(value, (c, vrow, v3 + x)))
            i = a0 + x
            _vstore(acc, (c, ly, i), _vload(acc, (c, ly, i)) + s)
            if c == z:
                _vstore(wsum, (ly, i), _vload(wsum, (ly, i)) + ((w0 + w1) + (w2 + w3)))


@njit(**JIT)
def _accumulate3(value, vrow, v0, v1, v2, wt, o0, o1, o2, acc, wsum, ly, W, rgb, a0=0):
    """:func:`_accumulate4` for three offsets."""
    v0, v1, v2, o0, o1, o2 = _U(v0), _U(v1), _U(v2), _U(o0), _U(o1), _U(o2)
    if rgb is not None:
        _accumulate3_rgb(value, vrow, v0, v1, v2, wt, o0, o1, o2, acc, wsum, ly, W)
        return
    L = _U(_lanes(wt))
    z, one, two = _U(0), _U(1), _U(2)
    a0 = _U(a0)
    for c in range(_U(value.shape[0])):
        for x in range(z, _U(W), L):
            w0, w1, w2 = _vload(wt, (z, o0 + x)), _vload(wt, (one, o1 + x)), _vload(wt, (two, o2 + x))
            s = (w0 * _vload(value, (c, vrow, v0 + x)) + w1 * _vload(value, (c, vrow, v1 + x))
                 + w2 * _vload(value, (c, vrow, v2 + x)))
            i = a0 + x
            _vstore(acc, (c, ly, i), _vload(acc, (c, ly, i)) + s)
            if c == z:
                _vstore(wsum, (ly, i), _vload(wsum, (ly, i)) + ((w0 + w1) + w2))


@njit(**JIT)
def _accumulate1(value, vrow, v0, wt, o0, acc, wsum, ly, W, a0=0):
    """:func:`_accumulate4` for one offset."""
    v0, o0, a0 = _U(v0), _U(o0), _U(a0)
    L = _U(_lanes(wt))
    z = _U(0)
    for c in range(_U(value.shape[0])):
        for x in range(z, _U(W), L):
            w = _vload(wt, (z, o0 + x))
            i = a0 + x
            _vstore(acc, (c, ly, i), _vload(acc, (c, ly, i)) + w * _vload(value, (c, vrow, v0 + x)))
            if c == z:
                _vstore(wsum, (ly, i), _vload(wsum, (ly, i)) + w)


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
def _band_passes(b0, b1, r):
    """The passes of a band's pair loop, in order: rows ``(dy, ys, d0, nk)``, the offsets ``(dy, d0)`` to
    ``(dy, d0 + nk - 1)`` of one pass (:func:`_pass_sizes`) over the band's rows ``[ys, b1)`` of pixels ``p``;
    ``ys = b0``, but for the top band (``b0 < 0``) only the rows whose partner is inside the image."""
    out = np.empty(((r + 1) * (2 * r + 1), 4), dtype=np.int64)
    n = 0
    for dy in range(0, r + 1):
        ys = b0 if b0 >= 0 else -dy
        if ys >= b1:
            continue
        dx_first = 1 if dy == 0 else -r
        n4, n3, n1 = _pass_sizes(r + 1 - dx_first, r)
        for g in range(n4 + n3 + n1):
            out[n, 0] = dy
            out[n, 1] = ys
            out[n, 2] = dx_first + 4 * min(g, n4) + 3 * min(max(g - n4, 0), n3) + max(g - n4 - n3, 0)
            out[n, 3] = 4 if g < n4 else (3 if g < n4 + n3 else 1)
            n += 1
    return out[:n]


@njit(**JIT)
def _band_extent(band, B, H, r):
    """Rows ``[b0, b1)`` of the pixels ``p`` of band ``band``: the top band (0) is ``[-r, 0)``, band ``k >= 1``
    is ``[(k - 1) B, min(k B, H))``."""
    b0 = -r if band == 0 else (band - 1) * B
    return b0, (0 if band == 0 else min(b0 + B, H))


@njit(**JIT)
def _band_of_row(y, B, r):
    """``(band, ly, above, la)`` of image row ``y``: its band and row in that band's sums, the band above and
    the row in its sums (the top band's sums start at row ``-r``)."""
    band = y // B + 1
    ly = y - (band - 1) * B
    above = band - 1
    return band, ly, above, ly + (B if above > 0 else r)


@njit(**JIT)
def _band_pixelwise(guide, value, b0, b1, H, W, f, r, aw, cw, amap, bmap, acc, wsum, cs, wt, wq, rgb_g, rgb_v):
    """Accumulate every offset pair whose first pixel ``p`` lies in rows ``[b0, b1)`` (image coordinates).

    Private sums: ``acc[c, y - b0, x]`` and ``wsum[y - b0, x]`` for image pixel ``(y, x)``; they cover rows
    ``[b0, b1 + r)`` since a pair reaches ``r`` rows down. ``b0 < 0`` marks the top band (rows above the image,
    which only contribute through their partner ``p + delta``). ``cs`` and ``wt`` are ``(4, >= W + 2 pad + lanes)``
    work rows: running column sums and weights of the (up to four) offsets of one pass; ``acc`` and ``wsum`` have
    ``W`` rounded up to whole vectors columns. ``rgb_g``, ``rgb_v``: None, or True for a 3-channel guide, value
    (see :func:`_colsum_slide4`). With a σ map (``amap`` not None; a type, so the scalar call compiles no map
    code): per-pixel ``a`` and bias from ``amap`` and ``bmap`` (padded like the guide), ``wt`` holds the weights
    p takes and ``wq`` those its partner p + delta takes (without a map, pass ``wq = wt``).
    """
    pad = r + f
    P = 2 * f + 1
    passes = _band_passes(b0, b1, r)
    for i in range(passes.shape[0]):
        dy, ys, d0, nk = passes[i, 0], passes[i, 1], passes[i, 2], passes[i, 3]
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
            if y > ys:
                if nk == 4:
                    _colsum_slide4(guide, gnew, gold, dy, lo, d0, n + 2 * f, cs, rgb_g)
                elif nk == 3:
                    _colsum_slide3(guide, gnew, gold, dy, lo, d0, n + 2 * f, cs, rgb_g)
                else:
                    _colsum_slide(guide, gnew, gold, dy, lo, d0, n + 2 * f, cs)
            if amap is not None:
                for k in range(nk):
                    _weights_row_map(cs, k, P, amap, bmap, y + pad, dy, xs, d0 + k, n, wt, wq)
            elif nk == 4:
                _weights_row2(cs, 0, P, aw, cw, n, wt)
                _weights_row2(cs, 2, P, aw, cw, n, wt)
            elif nk == 3:
                _weights_row2(cs, 0, P, aw, cw, n, wt)
                _weights_row(cs, 2, P, aw, cw, n, wt)
            else:
                _weights_row(cs, 0, P, aw, cw, n, wt)
            ly = y - b0
            vy = y + pad
            # p = (y, x) in the image takes q = p + delta: weights of p at wt[k, pad - xs + x]
            if y >= 0:
                o = pad - xs
                v = pad + d0
                if nk == 4:
                    _accumulate4(value, vy + dy, v, v + 1, v + 2, v + 3, wt, o, o, o, o, acc, wsum, ly, W,
                                 rgb_v)
                elif nk == 3:
                    _accumulate3(value, vy + dy, v, v + 1, v + 2, wt, o, o, o, acc, wsum, ly, W, rgb_v)
                else:
                    _accumulate1(value, vy + dy, v, wt, o, acc, wsum, ly, W)
            # q = (y + dy, x) in the image takes p = q - delta: weights of p at wt[k, pad - d0 - k - xs + x]
            if y + dy < H:
                o = pad - d0 - xs
                v = pad - d0
                if nk == 4:
                    _accumulate4(value, vy, v, v - 1, v - 2, v - 3, wq, o, o - 1, o - 2, o - 3, acc, wsum,
                                 ly + dy, W, rgb_v)
                elif nk == 3:
                    _accumulate3(value, vy, v, v - 1, v - 2, wq, o, o - 1, o - 2, acc, wsum, ly + dy, W, rgb_v)
                else:
                    _accumulate1(value, vy, v, wq, o, acc, wsum, ly + dy, W)


@njit(**JIT)
def _nlm_pixelwise_band(guide, value, f, r, a, bb, H, B, band, bsum, bw, rgb_g, rgb_v):
    """One row band of pixelwise NL-means, the fast path: band ``band``'s sums into ``bsum[band]``, ``bw[band]``.

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
    H : the image's height.
    B : rows per band, ``max(band_rows, r, 1)`` (:func:`nlmeans._config.band_rows`).
    band : 0 for the top band (rows ``[-r, 0)``), ``k >= 1`` for rows ``[(k - 1) B, k B)``.
    bsum, bw : (n_bands, Cv, B + r, Wr) and (n_bands, B + r, Wr) sums, ``Wr`` = W rounded up to whole vectors;
        the band's own rows plus the ``r`` rows below them that its pairs reach (written whole here).
    rgb_g, rgb_v : None, or True for a 3-channel guide, value (see :func:`_colsum_slide4`).

    Non-parallel and ``nogil``: the bands run on Python threads (:func:`nlmeans.nlm._bands`), which spares
    the first run numba's parallel-loop compilation; :func:`_pixelwise_rows` adds the bands' sums.
    """
    pad = r + f
    Wp = guide.shape[2]
    W = Wp - 2 * pad
    L = _lanes(bsum)
    for arr in (guide, value):  # the vector loads' memory safety rests on this
        if arr.shape[2] != Wp or (arr.shape[1] - H - 2 * pad) * Wp < L or bsum.shape[3] < W:
            raise ValueError("_nlm_pixelwise_band: guide and value need W + 2 pad columns and spare rows below")
    b0, b1 = _band_extent(band, B, H, r)
    cs = np.zeros((4, Wp + L), dtype=bsum.dtype)
    wt = np.zeros((4, Wp + L), dtype=bsum.dtype)
    aw, cw = _weight_consts(a, bb)
    acc = bsum[band]
    wsum = bw[band]
    acc[:] = 0
    wsum[:] = 0
    _band_pixelwise(guide, value, b0, b1, H, W, f, r, aw, cw, None, None, acc, wsum, cs, wt, wt, rgb_g, rgb_v)


@njit(**JIT)
def _pixelwise_rows(value, pad, r, B, bsum, bw, y0, y1, out):
    """Rows ``[y0, y1)`` of the result from the bands' sums (:func:`_nlm_pixelwise_band`, or the σ-map one).

    A row's sums: its own band's, plus the band above's for its first ``r`` rows (pairs reach ``r`` rows down);
    two terms, and ``a + b == b + a``, so the result does not depend on which band finished first. The centre
    pixel ``q = p`` has weight ``exp(0) = 1``.
    """
    Cv = out.shape[0]
    W = out.shape[2]
    for y in range(y0, y1):
        band, ly, above, la = _band_of_row(y, B, r)
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
# --- σ maps: a noise level per pixel ---
# The weight of q for p becomes exp(-max(S - (B(p) + B(q)), 0) a(p)): B = Cg P² σ̄², σ̄² the patch mean of the σ²
# map (the bias of the patch's squared differences), and a(p) = 1 / (Cg P² h(p)²) with p's own h. S and the bias
# are symmetric in p and q, so the kernel keeps the scalar one's pair loop (each box sum computed once) and
# only computes two weights per pair: one with a(p) for p's sums, one with a(q) for q's.


def _vweight_map(s, a, bias):
    """:func:`_vweight` of the vector of box sums ``s`` with per-lane ``a`` and ``bb = bias`` (vectors): the
    constants made as :func:`_weight_consts` makes them, lane by lane, so a constant map gives the scalar
    kernel's weights bit for bit. Compiled code only."""
    raise NotImplementedError("_vweight_map runs in compiled code only")


@overload(_vweight_map, jit_options=dict(fastmath=FASTMATH))
def _vweight_map_impl(s, a, bias):
    if not isinstance(s, _Vec):
        return None
    if s.dtype == types.float32:

        def impl(s, a, bias):
            aw = a * _vsplat(s, np.float32(_LOG2E))
            return _vweight(s, aw, (_vsplat(s, 0.0) - bias) * aw)

        return impl
    return lambda s, a, bias: _vweight(s, a, bias)


@njit(**JIT)
def _weights_row_map(cs, k, P, amap, bmap, yp, dy, xs, d, n, wt, wq):
    """The weights of one offset ``(dy, d)`` for the pixels ``p`` at padded row ``yp``, columns ``xs + x``:
    ``wt[k, x]`` with ``a(p)`` (p's sums), ``wq[k, x]`` with ``a(p + delta)`` (its partner's), ``x`` in
    ``[0, n)`` rounded up to whole vectors; box sums from ``cs[k]`` as in :func:`_weights_row`."""
    L = _U(_lanes(cs))
    k, yp, xp = _U(k), _U(yp), _U(xs)
    yq, xq = yp + _U(dy), _U(xs + d)
    for x in range(_U(0), _U(n), L):
        s = _box_sum(cs, k, x, P, _vzeros(cs))
        bias = _vload(bmap, (yp, xp + x)) + _vload(bmap, (yq, xq + x))
        _vstore(wt, (k, x), _vweight_map(s, _vload(amap, (yp, xp + x)), bias))
        _vstore(wq, (k, x), _vweight_map(s, _vload(amap, (yq, xq + x)), bias))


@njit(**JIT)
def _nlm_pixelwise_map_band(guide, value, f, r, amap, bmap, H, B, band, bsum, bw, rgb_g, rgb_v):
    """One row band of pixelwise NL-means with a noise level per pixel: :func:`_nlm_pixelwise_band` with the
    weight of ``q`` for ``p`` ``exp(-max(S - (bmap[p] + bmap[q]), 0) * amap[p])``.

    Parameters
    ----------
    guide, value, f, r, H, B, band, bsum, bw, rgb_g, rgb_v
        As in :func:`_nlm_pixelwise_band`.
    amap, bmap : (H + 2 pad + spare, W + 2 pad) arrays of the arrays' dtype, padded like them
        ``amap = 1 / (Cg P^2 h^2)`` with each pixel's h, ``bmap = Cg P^2 σ̄²`` with σ̄² the patch mean of the σ²
        map; values needed within ``r`` of the image (the partners p + delta), the rest only read by vector loads
        whose extra lanes no result uses. A constant map gives :func:`_nlm_pixelwise_band`'s result bit for bit
        (``tests/test_sigma_map.py``).
    """
    pad = r + f
    Wp = guide.shape[2]
    W = Wp - 2 * pad
    L = _lanes(bsum)
    ok = bsum.shape[3] >= W  # the vector loads' memory safety rests on this
    for arr in (guide, value):
        ok = ok and arr.shape[2] == Wp and (arr.shape[1] - H - 2 * pad) * Wp >= L
    for arr in (amap, bmap):
        ok = ok and arr.shape[1] == Wp and (arr.shape[0] - H - 2 * pad) * Wp >= L
    if not ok:
        raise ValueError("_nlm_pixelwise_map_band: every array needs W + 2 pad columns and spare rows below")
    cs = np.zeros((4, Wp + L), dtype=bsum.dtype)
    wt = np.zeros((4, Wp + L), dtype=bsum.dtype)
    wq = np.zeros((4, Wp + L), dtype=bsum.dtype)
    b0, b1 = _band_extent(band, B, H, r)
    acc = bsum[band]
    wsum = bw[band]
    acc[:] = 0
    wsum[:] = 0
    unused = amap[0, 0]
    _band_pixelwise(guide, value, b0, b1, H, W, f, r, unused, unused, amap, bmap, acc, wsum, cs, wt, wq, rgb_g,
                    rgb_v)


# --- gray images: the segment layout ---
# In the row layout the horizontal box sum of the running column sums takes P shifted (cache-line splitting)
# loads and P - 1 adds per weight vector: the largest part of the weight rows' time. In the segment layout a
# padded row is cut into _SEG segments laid side by side, one per vector lane: column j of the layout holds
# pixel j of every segment. A shift by one column is then a whole (aligned) vector, and the box sum runs along
# the columns: S(j) = S(j - 1) + (C(j + f) - C(j - f - 1)), 2 loads and 2 adds (issue #17: 1-thread time of
# 512² gray -22 %, docs/benchmarks.md). Every other piece (running column sums, accumulations) is the row
# layout's code with other column offsets.
_SEG = 8  # segments per row: one 32-byte vector of float32 (the weight rows' width), 64 bytes of float64
# A running sum's rounding grows with its length: it restarts from the direct sum every _SEG_RESTART columns,
# as the running column sums restart every band of 64 rows (the restarts cost ~2 % of the time).
_SEG_RESTART = 64


@intrinsic
def _vseg(typingctx, a):
    """A vector of ``_SEG`` zeros of ``a``'s dtype: one column of the segment layout."""
    if not _is_float_array(a):
        return None
    return _zeros_signature(a, _SEG * (a.dtype.bitwidth // 8))


def _segment_geometry(W, r):
    """The segment width ``Ws`` of a gray image of width ``W``.

    The pixels ``p`` of the pairs are the image's columns ``[-r, W + r)`` (a pixel outside the image is needed
    when its partner is inside), cut into ``_SEG`` segments of ``Ws`` columns: lane ``l``, column ``j`` is image
    column ``-r + l Ws + j``. In the layout each segment carries ``pad = r + f`` columns of its neighbours on
    both sides (the partners and their patches).
    """
    return -(-(W + 2 * r) // _SEG)


@njit(**JIT)
def _reflect(i, n):
    """numpy's ``reflect`` padding as an index: ``i`` folded into ``[0, n)`` (mirror without repeating the edge,
    period ``2 (n - 1)``, for any ``i``)."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i = i % period
    return i if i < n else period - i


@njit(**JIT)
def _to_segments(image, f, r, Ws, out):
    """``out[pad + y, (pad + j) _SEG + l] = image[y, -r + l Ws + j]`` on numpy's ``reflect`` extension, for the
    rows ``[-pad, H + pad)`` (as many as ``out`` has) and the columns ``j`` in ``[-pad, Ws + pad)`` (and as many
    more as ``out`` holds); ``image`` (H, W), ``pad = r + f``."""
    H, W = image.shape
    pad = r + f
    ncol = out.shape[1] // _SEG
    cols = np.empty(ncol * _SEG, dtype=np.int64)
    for jj in range(ncol):
        for lane in range(_SEG):
            cols[jj * _SEG + lane] = _reflect(-r + lane * Ws + jj - pad, W)
    for yy in range(out.shape[0]):
        src = _reflect(yy - pad, H)
        for i in range(cols.size):
            out[yy, i] = image[src, cols[i]]


@njit(**JIT)
def _segment_weight(s, k, x, aw, cw, wt, amap, bmap, ip, iq, wq):
    """Store the weights of the box sums ``s`` at ``wt[k, x]`` (and ``wq[k, x]``, the partners', with a σ map:
    :func:`_weights_row_map`'s per-pixel constants from ``amap``, ``bmap`` at ``ip`` and ``iq``)."""
    if amap is None:
        _vstore(wt, (k, x), _vweight(s, aw, cw))
    else:
        bias = _vload_as(s, bmap, ip) + _vload_as(s, bmap, iq)
        _vstore(wt, (k, x), _vweight_map(s, _vload_as(s, amap, ip), bias))
        _vstore(wq, (k, x), _vweight_map(s, _vload_as(s, amap, iq), bias))


@njit(**JIT)
def _segment_weights(cs, k, P, j0, j1, w0, aw, cw, wt, amap, bmap, yp, yq, m0, dq, wq):
    """The weights of offset ``k`` for the columns ``[j0, j1)`` of one row of pixels ``p`` (segment layout):
    ``wt[k, w0 + j _SEG + l]`` of the box sum ``cs[k, j _SEG + l] + ... + cs[k, (j + P - 1) _SEG + l]``,
    summed directly at ``j0``, then running along the columns (2 loads and 2 adds per column).

    With a σ map (``amap`` not None) also ``wq``, the weights the partners take: p's map values at
    ``amap[yp, m0 + j _SEG + l]``, its partner's ``dq`` columns further in row ``yq``
    (:func:`_segment_weight`). One loop without branches: a restart inside it cost 7-9 % (register pressure).
    """
    v = _vseg(cs)
    S = _U(_SEG)
    k, w0, last = _U(k), _U(w0), _U(P - 1) * S
    yp, yq, m0 = _U(yp), _U(yq), _U(m0)
    mq = _U(m0 + dq * _SEG)
    x = _U(j0) * S
    s = _vload_as(v, cs, (k, x))
    for t in range(1, P):
        s = s + _vload_as(v, cs, (k, x + _U(t) * S))
    _segment_weight(s, k, w0 + x, aw, cw, wt, amap, bmap, (yp, m0 + x), (yq, mq + x), wq)
    for j in range(_U(j0 + 1), _U(j1)):
        x = j * S
        s = s + (_vload_as(v, cs, (k, x + last)) - _vload_as(v, cs, (k, x - S)))
        _segment_weight(s, k, w0 + x, aw, cw, wt, amap, bmap, (yp, m0 + x), (yq, mq + x), wq)


@njit(**JIT)
def _band_segments(guide, value, b0, b1, H, Ws, f, r, aw, cw, acc, wsum, cs, wt, amap, bmap, wq):
    """:func:`_band_pixelwise` in the segment layout (gray): every offset pair whose first pixel ``p`` lies in
    rows ``[b0, b1)`` and columns ``[-r, W + r)``.

    Layout columns: the guide, value and maps ``(pad + j) _SEG + l`` (``pad = r + f``), the running column sums
    ``cs[k, (f + j) _SEG + l]``, the weights ``wt[k, (r + j) _SEG + l]`` (zero outside ``[0, Ws)``, so a partner's
    sum takes nothing from a pixel no segment owns) and the sums ``acc[0, ly, (r + j) _SEG + l]``. With a σ map
    ``wq`` holds the weights the partners take (without, pass ``wq = wt``).
    """
    pad = r + f
    P = 2 * f + 1
    S = _SEG
    lo = (pad - f) * S
    ncs = (Ws + 2 * f) * S
    passes = _band_passes(b0, b1, r)
    for i in range(passes.shape[0]):
        dy, ys, d0, nk = passes[i, 0], passes[i, 1], passes[i, 2], passes[i, 3]
        for k in range(nk):
            _colsum_start(guide, ys + pad - f, P, dy, lo, (d0 + k) * S, ncs, cs, k)
        for y in range(ys, b1):
            gnew = y + pad + f
            gold = gnew - P
            if y > ys:
                if nk == 4:
                    _colsum_slide4(guide, gnew, gold, dy, lo, d0 * S, ncs, cs, None, S)
                elif nk == 3:
                    _colsum_slide3(guide, gnew, gold, dy, lo, d0 * S, ncs, cs, None, S)
                else:
                    _colsum_slide(guide, gnew, gold, dy, lo, d0 * S, ncs, cs)
            for k in range(nk):
                for j0 in range(0, Ws, _SEG_RESTART):
                    _segment_weights(cs, k, P, j0, min(j0 + _SEG_RESTART, Ws), r * S, aw, cw, wt, amap, bmap,
                                     y + pad, y + pad + dy, pad * S, d0 + k, wq)
            ly = y - b0
            vy = y + pad
            # p = (y, j) in the image takes its partners: weights wt[k, (r + j) S], values at column j + d0 + k
            if y >= 0:
                o = r * S
                v = (pad + d0) * S
                if nk == 4:
                    _accumulate4(value, vy + dy, v, v + S, v + 2 * S, v + 3 * S, wt, o, o, o, o, acc, wsum, ly,
                                 Ws * S, None, o)
                elif nk == 3:
                    _accumulate3(value, vy + dy, v, v + S, v + 2 * S, wt, o, o, o, acc, wsum, ly, Ws * S, None,
                                 o)
                else:
                    _accumulate1(value, vy + dy, v, wt, o, acc, wsum, ly, Ws * S, o)
            # the partners (y + dy, jq), jq in [d0, Ws + d0 + nk - 1), take p = jq - d0 - k of offset k
            if y + dy < H:
                o = r * S
                v = pad * S
                n = (Ws + nk - 1) * S
                a0 = (r + d0) * S
                if nk == 4:
                    _accumulate4(value, vy, v, v - S, v - 2 * S, v - 3 * S, wq, o, o - S, o - 2 * S, o - 3 * S,
                                 acc, wsum, ly + dy, n, None, a0)
                elif nk == 3:
                    _accumulate3(value, vy, v, v - S, v - 2 * S, wq, o, o - S, o - 2 * S, acc, wsum, ly + dy,
                                 n, None, a0)
                else:
                    _accumulate1(value, vy, v, wq, o, acc, wsum, ly + dy, n, a0)


@njit(**JIT)
def _segment_columns(Ws, margin):
    """Columns of a segment-layout array with ``margin`` columns on each side of the ``Ws`` (two more: the
    vector loops run over whole 64-byte vectors, up to one column past the last)."""
    return (Ws + 2 * margin + 2) * _SEG


@njit(**JIT)
def _segments_band(guide, value, f, r, aw, cw, amap, bmap, H, Ws, B, band, bsum, bw):
    """The body of :func:`_nlm_segments_band` and :func:`_nlm_segments_map_band` (``amap`` None: no map)."""
    pad = r + f
    ok = bsum.shape[3] >= _segment_columns(Ws, r) and bw.shape[2] >= _segment_columns(Ws, r)
    for arr in (guide, value):  # the vector loads' memory safety rests on this
        ok = ok and arr.shape[2] >= _segment_columns(Ws, pad) and arr.shape[1] >= H + 2 * pad
    if amap is not None:
        for arr in (amap, bmap):
            ok = ok and arr.shape[1] >= _segment_columns(Ws, pad) and arr.shape[0] >= H + 2 * pad
    if not ok:
        raise ValueError("_nlm_segments_band: arrays too small for the segment layout")
    b0, b1 = _band_extent(band, B, H, r)
    cs = np.zeros((4, _segment_columns(Ws, f)), dtype=bsum.dtype)
    wt = np.zeros((4, _segment_columns(Ws, r)), dtype=bsum.dtype)
    if amap is None:
        wq = wt
    else:
        wq = np.zeros_like(wt)
    acc = bsum[band]
    wsum = bw[band]
    acc[:] = 0
    wsum[:] = 0
    _band_segments(guide, value, b0, b1, H, Ws, f, r, aw, cw, acc, wsum, cs, wt, amap, bmap, wq)
    _fold_margins(acc, wsum, Ws, r)


@njit(**JIT)
def _nlm_segments_band(guide, value, f, r, a, bb, H, Ws, B, band, bsum, bw):
    """One row band of pixelwise NL-means on a gray image in the segment layout: :func:`_nlm_pixelwise_band`'s
    sums, band ``band``'s into ``bsum[band]``, ``bw[band]``.

    Parameters
    ----------
    guide, value : (1, H + 2 pad, _segment_columns(Ws, pad)) arrays, ``pad = r + f``: the guide and the image
        in the layout (:func:`_to_segments`).
    Ws : the segment width (:func:`_segment_geometry`).
    bsum, bw : (n_bands, 1, B + r, _segment_columns(Ws, r)) and (n_bands, B + r, _segment_columns(Ws, r));
        :func:`_segment_rows` adds the bands' sums.
    f, r, a, bb, H, B, band : as in :func:`_nlm_pixelwise_band`.
    """
    aw, cw = _weight_consts(a, bb)
    _segments_band(guide, value, f, r, aw, cw, None, None, H, Ws, B, band, bsum, bw)


@njit(**JIT)
def _nlm_segments_map_band(guide, value, f, r, amap, bmap, H, Ws, B, band, bsum, bw):
    """:func:`_nlm_segments_band` with a noise level per pixel (:func:`_nlm_pixelwise_map_band`'s weights):
    ``amap``, ``bmap`` (H + 2 pad, _segment_columns(Ws, pad)) in the layout. A constant map gives
    :func:`_nlm_segments_band`'s sums bit for bit."""
    unused = amap[0, 0]
    _segments_band(guide, value, f, r, unused, unused, amap, bmap, H, Ws, B, band, bsum, bw)


@njit(**JIT)
def _fold_margins(acc, wsum, Ws, r):
    """Add the sums in each segment's margins (its pixels' partners that fell past the segment's ends) to the
    pixels of the segments they belong to, in lane order, in place: afterwards a pixel's sums are in its own
    column alone."""
    for row in range(wsum.shape[0]):
        for lane in range(_SEG):
            for other in range(_SEG):
                if other == lane:
                    continue
                # pixel j of ``lane`` is column jj of ``other``; the margins are jj in [-r, 0) and [Ws, Ws + r)
                shift = (lane - other) * Ws
                for j in range(max(-r - shift, 0), min(Ws + r - shift, Ws)):
                    jj = j + shift
                    if jj < 0 or jj >= Ws:
                        i, k = (r + j) * _SEG + lane, (r + jj) * _SEG + other
                        acc[0, row, i] += acc[0, row, k]
                        wsum[row, i] += wsum[row, k]


@njit(**JIT)
def _segment_rows(value, f, r, Ws, B, bsum, bw, y0, y1, out):
    """:func:`_pixelwise_rows` for the segment layout: rows ``[y0, y1)`` of ``out`` (1, H, W) from the bands'
    sums of :func:`_nlm_segments_band` (margins folded): a row's sums are its band's plus, for its first ``r``
    rows, the band above's."""
    pad = r + f
    W = out.shape[2]
    for y in range(y0, y1):
        band, ly, above, la = _band_of_row(y, B, r)
        for lane in range(_SEG):
            c0 = lane * Ws - r  # the image column of the segment's first pixel
            for j in range(max(-c0, 0), min(W - c0, Ws)):
                i = (r + j) * _SEG + lane
                v = value[0, y + pad, (pad + j) * _SEG + lane]
                if ly < r:
                    out[0, y, c0 + j] = ((bsum[band, 0, ly, i] + bsum[above, 0, la, i]) + v) / (
                        (bw[band, ly, i] + bw[above, la, i]) + 1)
                else:
                    out[0, y, c0 + j] = (bsum[band, 0, ly, i] + v) / (bw[band, ly, i] + 1)
