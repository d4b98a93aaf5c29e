"""NL-means by a full loop over the search offsets: patchwise aggregation and Gaussian-weighted patch distance
in 2-D, and pixelwise NL-means on volumes and video (3-D); the scalar fast exponential they share.

Conventions of the package in :mod:`nlmeans.kernels`; each kernel's docstring gives its padding. These kernels
take ``t = max(S a - b, 0)`` and the weight ``exp(-t)``: ``a`` and ``b = a bb`` from
:func:`nlmeans.kernels.weight_constants`. float64 uses libm's ``exp``; float32 (``fast_exp``) a degree-4
polynomial for ``2**y`` on ``[-1/2, 1/2]`` with the exponent bits added as an integer (relative error < 3e-6),
the same polynomial as the vector exponential of :mod:`nlmeans.kernels.pixelwise`.

This file is one numba cache unit: it imports no compiled code from its siblings (see :mod:`nlmeans.kernels`).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .._config import JIT, PARALLEL_JIT

# exp(-87) ~ 1.6e-38 is still a normal float32; clamping there keeps the bit trick below in range.
_EXP_T_MAX = 87.0
_LOG2E = 1.4426950408889634


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


# The fast exponential's numbers, also in pixelwise.py (one cache unit per file; tests/test_kernel_layout.py
# checks that the copies agree).
# 1.5 * 2**23: adding it rounds a float32 in [0, 2**22) to an integer held in the low mantissa bits
_ROUND_MAGIC = 12582912.0
# 2**y on [-1/2, 1/2], degree 4, fitted for the least largest relative error: 2.6e-6 (2.7e-6 in float32;
# degree 5 had 2.6e-7 for one more multiply-add per weight, 4 % of the gray kernel's time: docs/benchmarks.md)
_P2 = (0.9999992614254315, 0.6931218140516057, 0.24024744839276185, 0.05591786594766232,
       0.009570103661042745)


@njit(**JIT)
def _exp2_neg_f32(z):
    """``2**-z`` for float32 ``0 <= z <= 125``, relative error < 3e-6.

    ``2**-z = 2**-n * 2**y`` with ``n = round(z)`` (the magic-number add, no float/int conversion),
    ``y = n - z`` in ``[-1/2, 1/2]``: a degree-4 polynomial for ``2**y``, then ``n`` subtracted from its exponent
    bits. About ten vector instructions; ``np.exp`` would be a scalar libm call.
    """
    k = z + np.float32(_ROUND_MAGIC)
    y = (k - np.float32(_ROUND_MAGIC)) - z
    p = np.float32(_P2[4])
    p = p * y + np.float32(_P2[3])
    p = p * y + np.float32(_P2[2])
    p = p * y + np.float32(_P2[1])
    p = p * y + np.float32(_P2[0])
    # the low bits of k are n; shifted by 23 the magic's own bits fall off the top
    return _f32_from_bits(_f32_bits(p) - (_f32_bits(k) << np.int32(23)))


@njit(**JIT)
def _exp_neg_f32(t, w, lo, hi):
    """``w[x] = exp(-t[x])`` for ``x`` in ``[lo, hi)``, ``t >= 0``, float32, relative error < 3e-6.

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
