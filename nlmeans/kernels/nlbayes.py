"""NL-Bayes (Lebrun, Buades & Morel 2013): group selection, the Gaussian model of a group, the Cholesky solve;
on images (a row band's groups, :func:`_nlb_groups5` and its siblings, then their estimates,
:func:`_nlb_models`: pieces compiled and cached on their own; :func:`nlmeans.nlbayes._nlb_band` runs a band,
:func:`nlmeans.nlbayes._run_stages` the bands on threads) and on volumes and video with 3-D patches
(:func:`_nlbayes3_pass`, Arias & Morel 2018), which share the group model's steps.

Conventions of the package in :mod:`nlmeans.kernels`. Arrays padded by ``pad = r + f``; row bands (3-D: slabs
of slices, in two phases: even bands, then odd ones) of reference patches, each band's sums added whole, so the
result does not depend on the number of threads.

This file is one numba cache unit: it imports no compiled code from its siblings (see :mod:`nlmeans.kernels`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from .._config import FASTMATH, JIT, PARALLEL_JIT

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

    Row by row: row ``i`` takes the products of the finished rows above it, four per pass (loaded and stored
    once for four, as in :func:`_nlb_solve`), in the order a right-looking factorisation subtracts them, then
    is scaled by its pivot's square root: every upper entry is the same sum in the same order. The rows are
    updated whole (``A.shape[1]`` columns: whole vectors, as in :func:`_nlb_covariance`); the entries left of
    the diagonal then hold unused values.
    """
    Dv = A.shape[1]
    dmax = A[0, 0]
    for k in range(1, D):
        dmax = max(dmax, A[k, k])
    tol = dmax * (16 * D * np.finfo(A.dtype).eps)
    for i in range(D):
        ri = A[i]
        k = 0
        while k + 4 <= i:
            u0 = A[k, i]
            u1 = A[k + 1, i]
            u2 = A[k + 2, i]
            u3 = A[k + 3, i]
            c0 = A[k]
            c1 = A[k + 1]
            c2 = A[k + 2]
            c3 = A[k + 3]
            for j in range(Dv):
                ri[j] = ri[j] - u0 * c0[j] - u1 * c1[j] - u2 * c2[j] - u3 * c3[j]
            k += 4
        while k < i:
            u = A[k, i]
            ck = A[k]
            for j in range(Dv):
                ri[j] -= u * ck[j]
            k += 1
        pivot = ri[i]
        if not pivot > tol:  # also catches NaN
            return False
        s = np.sqrt(pivot)
        ri[i] = s
        inv = 1 / s
        for j in range(i + 1, D):
            ri[j] *= inv
    return True


@njit(**JIT)
def _nlb_solve(U, Bm, D, n):
    """``Bm[:D, :n] = (U^T U)^-1 Bm[:D, :n]`` in place, ``U`` upper triangular from :func:`_nlb_cholesky`.

    Row ``i`` takes the updates of four earlier (forward) or later (backward) rows per pass: loaded and stored
    once for four products instead of once each (the row ran through memory, with the loop's set-up, for a
    handful of vectors), subtracted in the same order, ``((b - u0 b0) - u1 b1) - ...``, as one at a time.
    """
    for i in range(D):  # U^T y = b
        bi = Bm[i]
        k = 0
        while k + 4 <= i:
            u0 = U[k, i]
            u1 = U[k + 1, i]
            u2 = U[k + 2, i]
            u3 = U[k + 3, i]
            c0 = Bm[k]
            c1 = Bm[k + 1]
            c2 = Bm[k + 2]
            c3 = Bm[k + 3]
            for m in range(n):
                bi[m] = bi[m] - u0 * c0[m] - u1 * c1[m] - u2 * c2[m] - u3 * c3[m]
            k += 4
        while k < i:
            uki = U[k, i]
            ck = Bm[k]
            for m in range(n):
                bi[m] -= uki * ck[m]
            k += 1
        inv = 1 / U[i, i]
        for m in range(n):
            bi[m] *= inv
    for i in range(D - 1, -1, -1):  # U x = y
        bi = Bm[i]
        ui = U[i]
        k = i + 1
        while k + 4 <= D:
            u0 = ui[k]
            u1 = ui[k + 1]
            u2 = ui[k + 2]
            u3 = ui[k + 3]
            c0 = Bm[k]
            c1 = Bm[k + 1]
            c2 = Bm[k + 2]
            c3 = Bm[k + 3]
            for m in range(n):
                bi[m] = bi[m] - u0 * c0[m] - u1 * c1[m] - u2 * c2[m] - u3 * c3[m]
            k += 4
        while k < D:
            uik = ui[k]
            ck = Bm[k]
            for m in range(n):
                bi[m] -= uik * ck[m]
            k += 1
        inv = 1 / U[i, i]
        for m in range(n):
            bi[m] *= inv


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


@njit(inline="always", **JIT)
def _nlb_lanes(search, px, f, r, drow):
    """Candidates per row of offsets of the window distances: ``2r + 1``, rounded up to whole 16-lane vectors
    where the padding allows (the extra columns are computed and ignored), so no scalar remainder loop is
    left."""
    return min((2 * r + 1 + 15) // 16 * 16, drow.shape[0], search.shape[2] - (px + f - r))


@njit(**JIT)
def _nlb_window_distances(search, py, px, f, r, dist, drow):
    """Squared distances on channel 0 of ``search`` between the ``P`` × ``P`` patch (``P = 2f + 1``) at padded
    ``(py, px)`` and every candidate of the ``(2r + 1)²`` window but the reference itself, into ``dist`` in
    scan order (row-major offsets); returns their number. Any patch size; 5 and 7 have their own routines
    (:func:`_nlb_window_distances5`, ``7``), each in its own group search (:func:`_nlb_groups5`), so a call
    compiles only the one it runs."""
    P = 2 * f + 1
    nk = _nlb_lanes(search, px, f, r, drow)
    nc = 0
    for dy in range(-r, r + 1):
        # distances to the 2r + 1 candidates of this row of offsets, vectorised over dx
        for k in range(nk):
            drow[k] = 0
        for jy in range(-f, f + 1):
            rrow = search[0, py + jy]
            crow = search[0, py + dy + jy]
            _nlb_row_distances(rrow, crow[px - f - r:], px - f, P, nk, drow)
        for dx in range(-r, r + 1):
            if dy != 0 or dx != 0:
                dist[nc] = drow[dx + r]
                nc += 1
    return nc


@njit(**JIT)
def _nlb_window_distances5(search, py, px, f, r, dist, drow):
    """The squared distances between the 5×5 patch at padded ``(py, px)`` of ``search[0]`` and every candidate
    of the ``(2r + 1)²`` window but itself, into ``dist`` in the scan order of :func:`_nlb_window_distances`
    (``f`` is 2); returns their number. ``nk`` candidates per row of offsets (:func:`_nlb_lanes`: ``2r + 1``
    and up to a whole vector more): each row is written straight into ``dist``, its extra values overwritten
    by the next row (``dist`` holds ``nk - 2r - 1`` spare values at its end), the reference's own row through
    ``drow`` and copied around the reference.

    Per row of offsets the sums of :func:`_nlb_row_distances` in the same order: the five patch rows in one
    loop, ``dist`` written once per candidate; the 25 reference values are loaded once for the whole window
    (a call per row of offsets spent ~30 ns on them and its set-up, a quarter of the time at 31 rows).
    """
    nk = _nlb_lanes(search, px, f, r, drow)
    x0 = px - 2
    q0 = px - 2 - r
    a0 = search[0, py - 2]
    a1 = search[0, py - 1]
    a2 = search[0, py]
    a3 = search[0, py + 1]
    a4 = search[0, py + 2]
    r00, r01, r02, r03, r04 = a0[x0], a0[x0 + 1], a0[x0 + 2], a0[x0 + 3], a0[x0 + 4]
    r10, r11, r12, r13, r14 = a1[x0], a1[x0 + 1], a1[x0 + 2], a1[x0 + 3], a1[x0 + 4]
    r20, r21, r22, r23, r24 = a2[x0], a2[x0 + 1], a2[x0 + 2], a2[x0 + 3], a2[x0 + 4]
    r30, r31, r32, r33, r34 = a3[x0], a3[x0 + 1], a3[x0 + 2], a3[x0 + 3], a3[x0 + 4]
    r40, r41, r42, r43, r44 = a4[x0], a4[x0 + 1], a4[x0 + 2], a4[x0 + 3], a4[x0 + 4]
    w = 2 * r + 1
    for t in range(w):
        dy = t - r
        c0 = search[0, py + dy - 2, q0:]
        c1 = search[0, py + dy - 1, q0:]
        c2 = search[0, py + dy, q0:]
        c3 = search[0, py + dy + 1, q0:]
        c4 = search[0, py + dy + 2, q0:]
        # the rows after the reference's start one candidate earlier (the reference is not a candidate)
        out = drow[0:] if t == r else dist[t * w - (1 if t > r else 0):]
        for k in range(nk):
            e0 = r00 - c0[k]
            e1 = r01 - c0[k + 1]
            e2 = r02 - c0[k + 2]
            e3 = r03 - c0[k + 3]
            e4 = r04 - c0[k + 4]
            s0 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + e4 * e4
            e0 = r10 - c1[k]
            e1 = r11 - c1[k + 1]
            e2 = r12 - c1[k + 2]
            e3 = r13 - c1[k + 3]
            e4 = r14 - c1[k + 4]
            s1 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + e4 * e4
            e0 = r20 - c2[k]
            e1 = r21 - c2[k + 1]
            e2 = r22 - c2[k + 2]
            e3 = r23 - c2[k + 3]
            e4 = r24 - c2[k + 4]
            s2 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + e4 * e4
            e0 = r30 - c3[k]
            e1 = r31 - c3[k + 1]
            e2 = r32 - c3[k + 2]
            e3 = r33 - c3[k + 3]
            e4 = r34 - c3[k + 4]
            s3 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + e4 * e4
            e0 = r40 - c4[k]
            e1 = r41 - c4[k + 1]
            e2 = r42 - c4[k + 2]
            e3 = r43 - c4[k + 3]
            e4 = r44 - c4[k + 4]
            s4 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + e4 * e4
            out[k] = (((s0 + s1) + s2) + s3) + s4
        if t == r:
            base = r * w
            for k in range(r):
                dist[base + k] = drow[k]
            for k in range(r + 1, w):
                dist[base + k - 1] = drow[k]
    return w * w - 1


@njit(**JIT)
def _nlb_window_distances7(search, py, px, f, r, dist, drow):
    """:func:`_nlb_window_distances5` for 7×7 patches (``f`` is 3): the seven patch rows in one loop, the 49
    reference values loaded once for the window; the sums of :func:`_nlb_row_distances` (``P == 7``) in the
    same order.
    """
    nk = _nlb_lanes(search, px, f, r, drow)
    x0 = px - 3
    q0 = px - 3 - r
    a0 = search[0, py + -3]
    a1 = search[0, py + -2]
    a2 = search[0, py + -1]
    a3 = search[0, py + 0]
    a4 = search[0, py + 1]
    a5 = search[0, py + 2]
    a6 = search[0, py + 3]
    r00, r01, r02, r03 = a0[x0], a0[x0 + 1], a0[x0 + 2], a0[x0 + 3]
    r04, r05, r06 = a0[x0 + 4], a0[x0 + 5], a0[x0 + 6]
    r10, r11, r12, r13 = a1[x0], a1[x0 + 1], a1[x0 + 2], a1[x0 + 3]
    r14, r15, r16 = a1[x0 + 4], a1[x0 + 5], a1[x0 + 6]
    r20, r21, r22, r23 = a2[x0], a2[x0 + 1], a2[x0 + 2], a2[x0 + 3]
    r24, r25, r26 = a2[x0 + 4], a2[x0 + 5], a2[x0 + 6]
    r30, r31, r32, r33 = a3[x0], a3[x0 + 1], a3[x0 + 2], a3[x0 + 3]
    r34, r35, r36 = a3[x0 + 4], a3[x0 + 5], a3[x0 + 6]
    r40, r41, r42, r43 = a4[x0], a4[x0 + 1], a4[x0 + 2], a4[x0 + 3]
    r44, r45, r46 = a4[x0 + 4], a4[x0 + 5], a4[x0 + 6]
    r50, r51, r52, r53 = a5[x0], a5[x0 + 1], a5[x0 + 2], a5[x0 + 3]
    r54, r55, r56 = a5[x0 + 4], a5[x0 + 5], a5[x0 + 6]
    r60, r61, r62, r63 = a6[x0], a6[x0 + 1], a6[x0 + 2], a6[x0 + 3]
    r64, r65, r66 = a6[x0 + 4], a6[x0 + 5], a6[x0 + 6]
    w = 2 * r + 1
    for t in range(w):
        dy = t - r
        c0 = search[0, py + dy + -3, q0:]
        c1 = search[0, py + dy + -2, q0:]
        c2 = search[0, py + dy + -1, q0:]
        c3 = search[0, py + dy + 0, q0:]
        c4 = search[0, py + dy + 1, q0:]
        c5 = search[0, py + dy + 2, q0:]
        c6 = search[0, py + dy + 3, q0:]
        # the rows after the reference's start one candidate earlier (the reference is not a candidate)
        out = drow[0:] if t == r else dist[t * w - (1 if t > r else 0):]
        for k in range(nk):
            e0 = r00 - c0[k]
            e1 = r01 - c0[k + 1]
            e2 = r02 - c0[k + 2]
            e3 = r03 - c0[k + 3]
            e4 = r04 - c0[k + 4]
            e5 = r05 - c0[k + 5]
            e6 = r06 - c0[k + 6]
            s0 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + ((e4 * e4 + e5 * e5) + e6 * e6)
            e0 = r10 - c1[k]
            e1 = r11 - c1[k + 1]
            e2 = r12 - c1[k + 2]
            e3 = r13 - c1[k + 3]
            e4 = r14 - c1[k + 4]
            e5 = r15 - c1[k + 5]
            e6 = r16 - c1[k + 6]
            s1 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + ((e4 * e4 + e5 * e5) + e6 * e6)
            e0 = r20 - c2[k]
            e1 = r21 - c2[k + 1]
            e2 = r22 - c2[k + 2]
            e3 = r23 - c2[k + 3]
            e4 = r24 - c2[k + 4]
            e5 = r25 - c2[k + 5]
            e6 = r26 - c2[k + 6]
            s2 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + ((e4 * e4 + e5 * e5) + e6 * e6)
            e0 = r30 - c3[k]
            e1 = r31 - c3[k + 1]
            e2 = r32 - c3[k + 2]
            e3 = r33 - c3[k + 3]
            e4 = r34 - c3[k + 4]
            e5 = r35 - c3[k + 5]
            e6 = r36 - c3[k + 6]
            s3 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + ((e4 * e4 + e5 * e5) + e6 * e6)
            e0 = r40 - c4[k]
            e1 = r41 - c4[k + 1]
            e2 = r42 - c4[k + 2]
            e3 = r43 - c4[k + 3]
            e4 = r44 - c4[k + 4]
            e5 = r45 - c4[k + 5]
            e6 = r46 - c4[k + 6]
            s4 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + ((e4 * e4 + e5 * e5) + e6 * e6)
            e0 = r50 - c5[k]
            e1 = r51 - c5[k + 1]
            e2 = r52 - c5[k + 2]
            e3 = r53 - c5[k + 3]
            e4 = r54 - c5[k + 4]
            e5 = r55 - c5[k + 5]
            e6 = r56 - c5[k + 6]
            s5 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + ((e4 * e4 + e5 * e5) + e6 * e6)
            e0 = r60 - c6[k]
            e1 = r61 - c6[k + 1]
            e2 = r62 - c6[k + 2]
            e3 = r63 - c6[k + 3]
            e4 = r64 - c6[k + 4]
            e5 = r65 - c6[k + 5]
            e6 = r66 - c6[k + 6]
            s6 = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + ((e4 * e4 + e5 * e5) + e6 * e6)
            out[k] = (((((s0 + s1) + s2) + s3) + s4) + s5) + s6
        if t == r:
            base = r * w
            for k in range(r):
                dist[base + k] = drow[k]
            for k in range(r + 1, w):
                dist[base + k - 1] = drow[k]
    return w * w - 1


@njit(**JIT)
def _nlb_covariance(Sc, n, D, inv_n1, cov):
    """Upper triangle of ``cov[:D, :D]`` = the covariance of the centred patches ``Sc[:n, :D]`` (``inv_n1 =
    1 / (n - 1)``): one row of products per patch entry, vectors over ``j``.

    The rows are updated whole, over the ``Dv = cov.shape[1]`` (D rounded up to 8) columns of ``Sc`` and
    ``cov`` (``Sc``'s extra columns zero): a fixed length of whole vectors, where the triangle's rows (lengths
    D down to 1) ran mostly in scalar remainder loops, 4x slower. The lower triangle is filled with
    unused values; every upper entry is the same sum in the same order as before.
    """
    Dv = cov.shape[1]
    for i in range(D):
        for j in range(Dv):
            cov[i, j] = Sc[0, 0] - Sc[0, 0]
    # four patches per pass over cov: a row is loaded and stored once for four products, added in the same
    # order (m ascending) as one at a time
    m = 0
    while m + 4 <= n:
        s0 = Sc[m]
        s1 = Sc[m + 1]
        s2 = Sc[m + 2]
        s3 = Sc[m + 3]
        for i in range(D):
            a0 = s0[i]
            a1 = s1[i]
            a2 = s2[i]
            a3 = s3[i]
            row = cov[i]
            for j in range(Dv):
                row[j] = row[j] + a0 * s0[j] + a1 * s1[j] + a2 * s2[j] + a3 * s3[j]
        m += 4
    while m < n:
        sc = Sc[m]
        for i in range(D):
            a = sc[i]
            row = cov[i]
            for j in range(Dv):
                row[j] += a * sc[j]
        m += 1
    for i in range(D):
        row = cov[i]
        for j in range(Dv):
            row[j] *= inv_n1


@njit(**JIT)
def _nlb_mean(X, n, D, inv_n, mu):
    """``mu[:D]`` = the mean of the patches ``X[:n, :D]`` (``inv_n = 1 / n``), computed over all the
    ``X.shape[1]`` columns (patches padded to whole vectors with zeros, as in :func:`_nlb_covariance`; a loop
    of 25 ran wholly in its scalar remainder)."""
    Dv = X.shape[1]
    for i in range(Dv):
        mu[i] = X[0, i] - X[0, i]
    for m in range(n):
        x = X[m]
        for i in range(Dv):
            mu[i] += x[i]
    for i in range(Dv):
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
    vectorised counting passes, no data-dependent branches; once the bracket holds at most 64 values they
    are copied to ``work`` and the remaining passes count those only (``work`` is overwritten). Other dtypes:
    :func:`_nth_smallest` on a copy in ``work``. The Python body only runs with ``NUMBA_DISABLE_JIT=1``.
    """
    return np.partition(np.asarray(a[:n]), k)[k]


@overload(_nth_smallest_nonneg, jit_options=dict(fastmath=FASTMATH))
def _nth_smallest_nonneg_impl(a, n, k, work):
    if a.dtype == types.float32:

        def impl(a, n, k, work):
            bits = a.view(np.int32)
            # the bracket [lo, hi] holds the answer: the smallest value, and the largest of any k + 1 values
            lo = bits[0]
            hi = bits[0]
            for i in range(k + 1):
                hi = max(hi, bits[i])
            for i in range(n):
                lo = min(lo, bits[i])
            below = 0  # how many values lie below the bracket [lo, hi] (its values: below .. below + inside)
            inside = n
            # counting passes over all values until the bracket holds few of them
            while lo < hi and inside > 64:
                mid = lo + (hi - lo) // 2
                count = 0
                for i in range(n):
                    count += 1 if bits[i] <= mid else 0
                if count > k:
                    hi = mid
                    inside = count - below
                else:
                    lo = mid + 1
                    inside -= count - below
                    below = count
            if lo < hi:
                # then over those few only, copied to work (branch-free: every value is written, the slot kept
                # only when it lies inside; the slot index never passes the value's own)
                wb = work.view(np.int32)
                m = 0
                for i in range(n):
                    v = bits[i]
                    wb[m] = v
                    m += 1 if lo <= v and v <= hi else 0
                kk = k - below
                while lo < hi:
                    mid = lo + (hi - lo) // 2
                    count = 0
                    for i in range(m):
                        count += 1 if wb[i] <= mid else 0
                    if count > kk:
                        hi = mid
                    else:
                        lo = mid + 1
            # the float32 whose bits are lo, through the work buffer: a bit-cast without an
            # intrinsic, which would have to be shared with offsets.py (one cache unit per file)
            wbits = work.view(np.int32)
            wbits[0] = lo
            return work[0]

        return impl

    def impl(a, n, k, work):  # noqa: F811 - float64: quickselect on a copy
        for i in range(n):
            work[i] = a[i]
        return _nth_smallest(work, n, k)

    return impl


def _nlb_nearest(dist, nc, m, work, idx):
    """The ``m`` nearest candidates (``1 <= m <= nc``): their indices into ``dist[:nc]`` (all values finite
    and >= 0) in ``idx[:m]``, ascending; ties at the ``m``-th smallest distance go to the earlier candidates
    (what a stable sort gives). ``work`` and ``idx`` (``nc`` long) are overwritten; ``dist`` is left as is.

    float32: the bracketed bit search of :func:`_nth_smallest_nonneg`, but its one scalar pass copies every
    value up to the bracket's top with its index (at most ``m - 1`` below the bracket and 64 inside), so the
    last counting passes, the count of the values below the threshold and the pick of the members run over
    those few instead of every candidate. Other dtypes: the threshold by :func:`_nth_smallest` on a copy, then
    a scan. The Python body only runs with ``NUMBA_DISABLE_JIT=1``.
    """
    order = np.argsort(np.asarray(dist[:nc]), kind="stable")[:m]
    idx[:m] = np.sort(order)


@overload(_nlb_nearest, jit_options=dict(fastmath=FASTMATH))
def _nlb_nearest_impl(dist, nc, m, work, idx):
    if dist.dtype == types.float32:

        def impl(dist, nc, m, work, idx):
            bits = dist.view(np.int32)
            k = m - 1
            lo = bits[0]
            hi = bits[0]
            for i in range(k + 1):
                hi = max(hi, bits[i])
            for i in range(nc):
                lo = min(lo, bits[i])
            below = 0
            inside = nc
            while lo < hi and inside > 64:
                mid = lo + (hi - lo) // 2
                count = 0
                for i in range(nc):
                    count += 1 if bits[i] <= mid else 0
                if count > k:
                    hi = mid
                    inside = count - below
                else:
                    lo = mid + 1
                    inside -= count - below
                    below = count
            # every value up to hi, with its index, in order (branch-free: each is written, the slot kept only
            # when the value is at most hi; the slot never passes the value's own index)
            wb = work.view(np.int32)
            c = 0
            for i in range(nc):
                v = bits[i]
                wb[c] = v
                idx[c] = i
                c += 1 if v <= hi else 0
            while lo < hi:
                mid = lo + (hi - lo) // 2
                count = 0
                for i in range(c):
                    count += 1 if wb[i] <= mid else 0
                if count > k:
                    hi = mid
                else:
                    lo = mid + 1
            n_less = 0
            for i in range(c):
                n_less += 1 if wb[i] < lo else 0
            n_equal = m - n_less  # how many at exactly the threshold join (the earliest)
            out = 0
            for i in range(c):
                v = wb[i]
                if v < lo or (v == lo and n_equal > 0):
                    if v == lo:
                        n_equal -= 1
                    idx[out] = idx[i]  # out <= i: a slot already read
                    out += 1

        return impl

    def impl(dist, nc, m, work, idx):  # noqa: F811 - float64: quickselect on a copy, then a scan
        for i in range(nc):
            work[i] = dist[i]
        thr = _nth_smallest(work, nc, m - 1)
        n_equal = m
        for i in range(nc):
            if dist[i] < thr:
                n_equal -= 1
        out = 0
        for i in range(nc):
            d = dist[i]
            if d < thr or (d == thr and n_equal > 0):
                if d == thr:
                    n_equal -= 1
                idx[out] = i
                out += 1

    return impl


@njit(inline="always", **JIT)
def _nlb_threshold(dist, nc, m, work):
    """The group's distance threshold: the ``m``-th smallest (from 1) of ``dist[:nc]``, and how many candidates
    at exactly that distance join the group (the earliest ones in scan order)."""
    thr = _nth_smallest_nonneg(dist, nc, m - 1, work)
    n_equal = m
    for k in range(nc):
        if dist[k] < thr:
            n_equal -= 1
    return thr, n_equal


@njit(inline="always", **JIT)
def _nlb_select_group(dist, nc, n_sim, work, idx, cand_y, cand_x, oy, ox):
    """The group of a reference: offsets ``(oy, ox)[:n]`` of the reference (first, ``(0, 0)``) and of its
    ``n_sim - 1`` nearest candidates (``dist[:nc]`` in scan order, candidate ``k`` at offset ``(cand_y[k],
    cand_x[k])``), in scan order; returns ``n``.

    Ties go to the earlier candidate in scan order (what a stable sort gives). A selection, not a sort:
    O(candidates) per reference (:func:`_nlb_nearest`).
    """
    oy[0] = 0
    ox[0] = 0
    n = np.int64(1)  # not the literal 1: callees typed with it would be compiled twice (Literal[int](1), int64)
    m = min(n_sim - 1, nc)
    if m > 0:
        _nlb_nearest(dist, nc, m, work, idx)
        for j in range(m):
            k = idx[j]
            oy[n] = cand_y[k]
            ox[n] = cand_x[k]
            n += 1
    return n


@njit(inline="always", **JIT)
def _nlb_gather(image, c, py, px, oy, ox, n, f, X):
    """``X[m]`` = channel ``c`` of the patch of ``image`` centred at padded ``(py + oy[m], px + ox[m])``,
    row-major, for ``m < n``. Unsigned indices: numba adds no negative-index wrap-around to each access."""
    P = np.uint64(2 * f + 1)
    cu = np.uint64(c)
    one = np.uint64(1)
    for m in range(n):
        qy = np.uint64(py + oy[m] - f)
        qx = np.uint64(px + ox[m] - f)
        xm = X[m]
        k = np.uint64(0)
        if P == 5:  # the default patch: rows unrolled (a loop of 5 ran scalar with its exit branch)
            for jy in range(P):
                row = image[cu, qy + jy]
                xm[k] = row[qx]
                xm[k + one] = row[qx + one]
                xm[k + np.uint64(2)] = row[qx + np.uint64(2)]
                xm[k + np.uint64(3)] = row[qx + np.uint64(3)]
                xm[k + np.uint64(4)] = row[qx + np.uint64(4)]
                k += P
            continue
        for jy in range(P):
            for jx in range(P):
                xm[k] = image[cu, qy + jy, qx + jx]
                k += one


@njit(inline="always", **JIT)
def _nlb_add_estimates(num, c, ly, lx, oy, ox, n, P, X, Z, bs):
    """``num[c]`` += the estimates ``X[m] - bs Z[:, m]`` (:func:`_nlb_bayes_solve`; ``P`` × ``P``, row-major)
    of the patches whose first pixel is at ``(ly + oy[m], lx + ox[m])``: the aggregation of a group, each
    estimate formed as it is added rather than written back to ``X`` first (one strided pass over ``X`` and
    ``Z`` less); the same values as :func:`_nlb_bayes_estimate`'s. Unsigned indices as in :func:`_nlb_gather`."""
    Pu = np.uint64(P)
    cu = np.uint64(c)
    for m in range(n):
        qy = np.uint64(ly + oy[m])
        qx = np.uint64(lx + ox[m])
        xm = X[m]
        k = np.uint64(0)
        for jy in range(Pu):
            for jx in range(Pu):
                num[cu, qy + jy, qx + jx] += xm[k] - bs * Z[k, m]
                k += np.uint64(1)


@njit(inline="always", **JIT)
def _nlb_add_value(num, c, ly, lx, oy, ox, n, P, g):
    """``num[c]`` += ``g`` over each of the ``n`` patches placed as in :func:`_nlb_add_estimates` (a homogeneous
    group: every estimate is the value ``g``)."""
    Pu = np.uint64(P)
    cu = np.uint64(c)
    for m in range(n):
        qy = np.uint64(ly + oy[m])
        qx = np.uint64(lx + ox[m])
        for jy in range(Pu):
            for jx in range(Pu):
                num[cu, qy + jy, qx + jx] += g


@njit(inline="always", **JIT)
def _nlb_is_homogeneous(src, msrc, mu, n, D, gamma, sigma2, vsum):
    """The homogeneous-area test: the model patches ``src[:n]`` vary no more than ``gamma sigma^2`` about their
    mean value (stage 1: the noisy ones, about sigma^2 if flat; stage 2: the basic ones, about 0). Returns
    ``(flat, mean of mu)``. Sums kept per patch pixel (vectors over i), then added: no long dependent chains."""
    zero = sigma2 - sigma2
    gm = zero
    sm = zero
    for i in range(D):
        gm += mu[i]
        sm += msrc[i]
    # divided in the data's dtype: "/= D" made them float64 and the variance loop below double precision
    gm = gm / (zero + D)
    sm = sm / (zero + D)
    Dv = src.shape[1]  # whole vectors; the padding columns' sums are not used
    for i in range(Dv):
        vsum[i] = zero
    for m in range(n):
        x = src[m]
        for i in range(Dv):
            e = x[i] - sm
            vsum[i] += e * e
    var = zero
    for i in range(D):
        var += vsum[i]
    var = var / (zero + n * D)
    return var <= gamma * sigma2, gm


@njit(inline="always", **JIT)
def _nlb_bayes_estimate(X, src, msrc, mu, stage, n, D, sigma2, beta, inv_n1, Sc, cov, Z):
    """The MAP / Wiener estimate of the patches ``X[:n]`` (in place) from the Gaussian model of the group: mean
    ``mu`` (of ``X``), covariance of the model patches ``src`` (mean ``msrc``).

    stage 1: ``X <- X - beta sigma^2 Cov^-1 (X - mu)``  [= mu + (Cov - beta sigma^2) Cov^-1 (X - mu)];
    stage 2: ``X <- mu + CovB (CovB + beta sigma^2)^-1 (X - mu)``, CovB from the basic patches, computed as
    ``X - beta sigma^2 (CovB + beta sigma^2)^-1 (X - mu)`` (the same matrix). :func:`_nlb_bayes_solve`, then
    the update.
    """
    _nlb_bayes_solve(X, src, msrc, mu, stage, n, D, sigma2, beta, inv_n1, Sc, cov, Z)
    for m in range(n):
        for i in range(D):
            X[m, i] -= beta * sigma2 * Z[i, m]


@njit(inline="always", **JIT)
def _nlb_bayes_solve(X, src, msrc, mu, stage, n, D, sigma2, beta, inv_n1, Sc, cov, Z):
    """The correction of :func:`_nlb_bayes_estimate`: ``Z[:D, :n] = M^-1 (X - mu)^T`` (``M`` the model's
    covariance, plus ``beta sigma^2`` in stage 2), the estimates being ``X[m] - beta sigma^2 Z[:, m]``. A
    model that cannot be factored even with ``beta sigma^2`` added leaves ``X[:n]`` = ``mu`` and ``Z`` = 0.
    """
    for m in range(n):
        x = src[m]
        sc = Sc[m]
        for i in range(src.shape[1]):  # the padding columns stay 0 - 0
            sc[i] = x[i] - msrc[i]  # the centred model patches
    _nlb_covariance(Sc, n, D, inv_n1, cov)
    # Z = (X - mu)^T, then solve; Z's rows padded with zero columns to whole vectors (nz, a multiple of 8 where
    # Z is wide enough): the solve's rows of 30 or 60 ran (wholly or half) in a 4-lane epilogue loop
    nz = min((n + 7) // 8 * 8, Z.shape[1])
    for i in range(D):
        for m in range(n):
            Z[i, m] = X[m, i] - mu[i]
        for m in range(n, nz):
            Z[i, m] = 0
    ridge = stage == 2
    if ridge:
        for i in range(D):
            cov[i, i] += beta * sigma2
    ok = _nlb_cholesky(cov, D)
    if not ok and not ridge:
        # a singular stage-1 model (e.g. a noise-free group of a few repeated patches): the model's covariance
        # plus beta sigma^2 instead, i.e. stage 2's Wiener form, always regular
        _nlb_covariance(Sc, n, D, inv_n1, cov)
        for i in range(D):
            cov[i, i] += beta * sigma2
        ok = _nlb_cholesky(cov, D)
    if ok:
        _nlb_solve(cov, Z, D, nz)  # the zero columns stay zero
    else:  # not even that (non-finite values): every patch becomes the group's mean patch
        for m in range(n):
            for i in range(D):
                X[m, i] = mu[i]
                Z[i, m] = 0


@njit(**JIT)
def _nlb_patch_sums(image, c, r0, P, s1, s2):
    """``s1[t, u]`` = the sum of the ``P`` × ``P`` patch of ``image[c]`` whose first pixel is at ``(r0 + t, u)``
    (float64), ``s2`` the sum of its squares, for every patch inside the image within ``s1``'s rows. Each sum
    is the same fixed-order sum wherever the band starts: columns of ``P`` rows, then ``P`` columns."""
    rows = min(s1.shape[0], image.shape[1] - r0 - P + 1)
    cols = image.shape[2] - P + 1
    v1 = np.empty(image.shape[2])
    v2 = np.empty(image.shape[2])
    for t in range(rows):
        for u in range(image.shape[2]):
            v1[u] = 0.0
            v2[u] = 0.0
        for a in range(P):
            row = image[c, r0 + t + a]
            for u in range(image.shape[2]):
                x = np.float64(row[u])
                v1[u] += x
                v2[u] += x * x
        o1 = s1[t]
        for u in range(cols):
            o1[u] = v1[u]
        for b in range(1, P):
            for u in range(cols):
                o1[u] += v1[u + b]
        o2 = s2[t]
        for u in range(cols):
            o2[u] = v2[u]
        for b in range(1, P):
            for u in range(cols):
                o2[u] += v2[u + b]


# --- a σ map (a noise variance per pixel) in the 2-D kernel ---
#
# The band's ``sigma2`` (:func:`_nlb_groups5`, :func:`_nlb_models`) is one variance (a scalar) or a map: the
# patch-mean noise variance at every padded patch centre. The two helpers below give a scalar ``sigma2`` back
# unchanged (no work, and the scalar path's code as before); numba compiles the map's version only when a map
# is passed.


@njit(**JIT)
def _nlb_map_unbias_plane(plane, s0, py, px, r, D, dist, k, centre):
    """``dist[k], dist[k + 1], ...`` -= ``D`` (the candidate's patch-mean σ² minus ``s0``, the reference's), at
    least 0, for the candidates centred at ``(py + dy, px + dx)`` of the map's ``plane``, ``|dy|, |dx| <= r``
    in row-major order, the offset (0, 0) left out when it is the reference (``centre``); returns the next
    ``k``. The expected squared distance of two noisy patches is the clean one plus ``D`` times their
    patch-mean variances, and the reference's is the same for every candidate. In float64; a constant map
    subtracts exactly 0."""
    for dy in range(-r, r + 1):
        row = plane[py + dy]
        for dx in range(-r, r + 1):
            if dy != 0 or dx != 0 or not centre:
                dist[k] = max(np.float64(dist[k]) - D * (np.float64(row[px + dx]) - s0), 0.0)
                k += 1
    return k


@njit(**JIT)
def _nlb_map_unbias(s2map, py, px, r, D, dist):
    """:func:`_nlb_map_unbias_plane` for the candidates of :func:`_nlb_window_distances`, in its scan order."""
    _nlb_map_unbias_plane(s2map, np.float64(s2map[py, px]), py, px, r, D, dist, 0, True)


@njit(**JIT)
def _nlb_map_group_mean(s2map, py, px, oy, ox, n):
    """The mean of the group members' patch-mean σ² (float64), summed as differences from the reference's:
    exactly the reference's for a constant map."""
    s0 = np.float64(s2map[py, px])
    acc = 0.0
    for m in range(n):
        acc += np.float64(s2map[py + oy[m], px + ox[m]]) - s0
    return s0 + acc / n


def _nlb_unbias_distances(sigma2, py, px, r, D, dist):
    """Stage 1 with a σ map: :func:`_nlb_map_unbias`, so that the group is chosen by the patches' signal;
    nothing for one σ. The Python body only runs with ``NUMBA_DISABLE_JIT=1``."""
    if np.ndim(sigma2):
        _nlb_map_unbias(sigma2, py, px, r, D, dist)


@overload(_nlb_unbias_distances, jit_options=dict(fastmath=FASTMATH))
def _nlb_unbias_distances_impl(sigma2, py, px, r, D, dist):
    if isinstance(sigma2, types.Array):
        def impl(sigma2, py, px, r, D, dist):
            _nlb_map_unbias(sigma2, py, px, r, D, dist)
        return impl
    return lambda sigma2, py, px, r, D, dist: None


def _nlb_group_sigma2(sigma2, py, px, oy, ox, n):
    """The noise variance of a group: ``sigma2`` itself for one σ; with a map, the mean of its members'
    patch-mean σ² (:func:`_nlb_map_group_mean`) in the map's dtype. The Python body only runs with
    ``NUMBA_DISABLE_JIT=1``."""
    if np.ndim(sigma2) == 0:
        return sigma2
    return sigma2.dtype.type(_nlb_map_group_mean(sigma2, py, px, oy, ox, n))


@overload(_nlb_group_sigma2, jit_options=dict(fastmath=FASTMATH))
def _nlb_group_sigma2_impl(sigma2, py, px, oy, ox, n):
    if isinstance(sigma2, types.Array):
        cast = as_dtype(sigma2.dtype).type

        def impl(sigma2, py, px, oy, ox, n):
            return cast(_nlb_map_group_mean(sigma2, py, px, oy, ox, n))
        return impl
    return lambda sigma2, py, px, oy, ox, n: sigma2


@njit(inline="always", **JIT)
def _nlb_groups_with(distances, search, sigma2, stage, b0, b1, f, r, n_sim, step, mask, counts, dist, work, idx,
                     cand_y, cand_x, drow, refs, goy, gox):
    """:func:`_nlb_groups5` and its siblings, with the window routine ``distances`` (a compile-time
    constant)."""
    pad = r + f
    P = 2 * f + 1
    D = P * P
    H = search.shape[1] - 2 * pad
    W = search.shape[2] - 2 * pad
    lo_row = b0 - r - f
    K = 0
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
            nc = distances(search, py, px, f, r, dist, drow)
            if stage == 1:
                _nlb_unbias_distances(sigma2, py, px, r, D, dist)
            oy = goy[K]
            ox = gox[K]
            n = _nlb_select_group(dist, nc, n_sim, work, idx, cand_y, cand_x, oy, ox)
            refs[K, 0] = py
            refs[K, 1] = px
            refs[K, 2] = n
            K += 1
            for m in range(n):
                counts[0, py + oy[m] - pad - lo_row - f + P - 1, px + ox[m] - f + P - 1] += 1
                cy = y + oy[m]
                cx = x + ox[m]
                if b0 <= cy < b1 and 0 <= cx < W:
                    mask[cy - b0, cx] = True
    return K


@njit(**JIT)
def _nlb_groups5(search, sigma2, stage, b0, b1, f, r, n_sim, step, mask, counts, dist, work, idx, cand_y, cand_x,
                 drow, refs, goy, gox):
    """The groups of one row band of an NL-Bayes stage, 5×5 patches (:func:`_nlb_window_distances5`); returns
    their number ``K``.

    For every reference patch of the band's grid (centre rows ``[b0, b1)`` of the padded ``search``, every
    ``step``-th row and column and the last ones) not yet in a group (``mask``, ``(b1 - b0, W)``, all False
    at the start): the squared distances on channel 0 to its window's candidates, less their noise in stage 1
    with a σ map (:func:`_nlb_unbias_distances`), and the group of it and its ``n_sim - 1`` nearest
    (:func:`_nlb_select_group`): ``refs[k] = (py, px, n)``, offsets ``goy[k, :n]``, ``gox[k, :n]``, in the
    order the references are met. The members are marked done in ``mask`` and counted at their first pixel in
    ``counts`` (zeros at the start; the band-local, ``P - 1``-offset layout of :func:`_nlb_models`' ``den``).
    ``cand_y``, ``cand_x``: the candidates' offsets in scan order; ``dist`` (``(2r + 1)² + 15`` long),
    ``work``, ``idx``, ``drow`` are overwritten. Which references are processed depends on the groups alone,
    not on the estimates, so the band's groups come first and its estimates after (:func:`_nlb_models`): the
    same sums as interleaved.
    """
    return _nlb_groups_with(_nlb_window_distances5, search, sigma2, stage, b0, b1, f, r, n_sim, step, mask, counts,
                            dist, work, idx, cand_y, cand_x, drow, refs, goy, gox)


@njit(**JIT)
def _nlb_groups7(search, sigma2, stage, b0, b1, f, r, n_sim, step, mask, counts, dist, work, idx, cand_y, cand_x,
                 drow, refs, goy, gox):
    """:func:`_nlb_groups5` for 7×7 patches (:func:`_nlb_window_distances7`)."""
    return _nlb_groups_with(_nlb_window_distances7, search, sigma2, stage, b0, b1, f, r, n_sim, step, mask, counts,
                            dist, work, idx, cand_y, cand_x, drow, refs, goy, gox)


@njit(**JIT)
def _nlb_groups(search, sigma2, stage, b0, b1, f, r, n_sim, step, mask, counts, dist, work, idx, cand_y, cand_x,
                drow, refs, goy, gox):
    """:func:`_nlb_groups5` for any patch size (:func:`_nlb_window_distances`)."""
    return _nlb_groups_with(_nlb_window_distances, search, sigma2, stage, b0, b1, f, r, n_sim, step, mask, counts,
                            dist, work, idx, cand_y, cand_x, drow, refs, goy, gox)


@njit(**JIT)
def _nlb_models(noisy, basic, stage, b0, f, r, n_sim, sigma2, beta, gamma, K, refs, goy, gox, s1, s2, m1, num,
                work):
    """The estimates of the ``K`` groups of a row band (:func:`_nlb_groups5` and siblings: ``refs``, ``goy``,
    ``gox``), in that order, added into the band's ``num`` (``(C, rows, W + 2 pad)`` zeros, ``rows = b1 - b0 +
    2 pad``, ``num[c, y - b0 + pad, x + pad]``: rows reach ``pad`` beyond the band).

    ``stage`` 1: model from ``noisy`` (``basic``: pass ``noisy``); 2: covariance and homogeneity test from
    ``basic``, the mean from the noisy patches, applied to the noisy patches. Per group and channel: the
    homogeneity test from the members' patch sums (``s1``, ``s2`` of the model patches, ``m1`` of the noisy
    ones, ``m1`` is ``s1`` in stage 1: :func:`_nlb_patch_sums` of the band, float64, by the patch's first
    pixel; only with ``gamma > 0``), a homogeneous group adding its mean value without gathering its patches
    (:func:`_nlb_add_value`); otherwise the group's patches (:func:`_nlb_gather`), their Gaussian model and
    estimates (:func:`_nlb_bayes_solve`), added as they are formed (:func:`_nlb_add_estimates`). ``sigma2``:
    the noise variance, or a σ map (the padded patch mean of σ² at each patch centre; each group then uses
    its members' mean, :func:`_nlb_group_sigma2`).

    ``work``: zeros, :func:`_nlb_models_work` long, reshaped here into the model's arrays (``X``, ``Y``,
    ``Sc``: patches padded with zero columns to whole vectors, which stay zero; ``mu``, ``muy``, ``cov``,
    ``Z``): shapes computed here let the compiler see whole-vector rows (no remainder loops; passed as 2-D
    arguments, the colour call ran 8 % slower), without compiling ``np.zeros``/``np.empty`` here.
    """
    pad = r + f
    P = 2 * f + 1
    D = P * P
    C = noisy.shape[0]
    zero = beta - beta  # sigma2 may be a map
    lo_row = b0 - r - f
    nmax = max(n_sim, D)
    Dv = (D + 7) // 8 * 8  # the covariance's row length (see _nlb_covariance)
    nz = (nmax + 7) // 8 * 8  # Z's rows of whole vectors (see _nlb_bayes_solve)
    a = nmax * Dv
    X = work[0:a].reshape((nmax, Dv))
    Y = work[a:2 * a].reshape((nmax, Dv))
    Sc = work[2 * a:3 * a].reshape((nmax, Dv))
    mu = work[3 * a:3 * a + Dv]
    muy = work[3 * a + Dv:3 * a + 2 * Dv]
    e = 3 * a + 2 * Dv
    cov = work[e:e + D * Dv].reshape((D, Dv))
    Z = work[e + D * Dv:e + D * Dv + D * nz].reshape((D, nz))
    for k in range(K):
        py = refs[k, 0]
        px = refs[k, 1]
        n = refs[k, 2]
        oy = goy[k]
        ox = gox[k]
        nvar = _nlb_group_sigma2(sigma2, py, px, oy, ox, n)  # the group's noise variance
        inv_n = 1 / (zero + n)
        inv_n1 = 1 / (zero + max(n - 1, 1))
        ly = py - pad - lo_row - f  # the band-local row of the reference patch's first pixel
        for c in range(C):
            if gamma > 0:
                # the homogeneity test from the members' patch sums: a flat group needs no gather
                t1 = 0.0
                t2 = 0.0
                g1 = 0.0
                for m in range(n):
                    qy = ly + oy[m]
                    qx = px - f + ox[m]
                    t1 += s1[c, qy, qx]
                    t2 += s2[c, qy, qx]
                    g1 += m1[c, qy, qx]
                nd = 1.0 / (n * D)
                sm = t1 * nd
                thr = gamma * nvar
                # E[x²] - mean² cancels when the mean dwarfs the noise (|mean| / σ beyond ~1e6; the error of
                # the sums is ~1e-14 of E[x²]): the test is then not trusted and the model estimates
                if (t2 * nd - sm * sm) <= thr and t2 * nd * 1e-12 <= thr:
                    # a homogeneous group: every patch becomes the mean value (of the noisy patches), added
                    # directly; rounded to the data's dtype, as a patch value would be
                    mu[0] = g1 * nd
                    _nlb_add_value(num, c, ly, px - f, oy, ox, n, P, mu[0])
                    continue
            for j in range(stage):  # one inlined gather for both (compile time)
                _nlb_gather(noisy if j == 0 else basic, c, py, px, oy, ox, n, f, X if j == 0 else Y)
            src = X if stage == 1 else Y  # the patches the model is learnt from
            _nlb_mean(X, n, D, inv_n, mu)
            msrc = mu  # the mean of the model patches
            if stage == 2:
                _nlb_mean(Y, n, D, inv_n, muy)
                msrc = muy
            _nlb_bayes_solve(X, src, msrc, mu, stage, n, D, nvar, beta, inv_n1, Sc, cov, Z)
            _nlb_add_estimates(num, c, ly, px - f, oy, ox, n, P, X, Z, beta * nvar)


def _nlb_models_work(f, n_sim):
    """The length of :func:`_nlb_models`' ``work`` for ``P = 2f + 1`` and groups of ``n_sim``."""
    D = (2 * f + 1) ** 2
    nmax = max(n_sim, D)
    Dv = (D + 7) // 8 * 8
    return 3 * nmax * Dv + 2 * Dv + D * Dv + D * ((nmax + 7) // 8 * 8)


#: the group search of a patch size (:func:`_nlb_groups5`); other sizes: :func:`_nlb_groups`
_NLB_GROUPS = {5: _nlb_groups5, 7: _nlb_groups7}


def _nlb_band_types(dtype, sigma_map):
    """numba's signatures of the band's pieces for data of ``dtype`` (float32 or float64) and a scalar σ² or a
    σ map (``sigma_map``), as :func:`nlmeans.nlbayes._nlb_band` calls them (C-contiguous arrays, the group
    offsets int32): ``{"groups": ..., "models": ..., "sums": ...}`` (``"groups"`` for any of
    :func:`_nlb_groups5`, ``7`` and :func:`_nlb_groups`), and ``"cholesky"``, ``"solve"`` as
    :func:`_nlb_models` calls them (:data:`nlmeans._compile.AHEAD`)."""
    from numba.np.numpy_support import from_dtype

    dt = from_dtype(np.dtype(dtype))
    f8, i8, i4 = types.float64, types.int64, types.int32

    def arr(ndim, of=dt):
        return types.Array(of, ndim, "C")

    s2 = arr(2) if sigma_map else dt
    ints = arr(1, i8)
    return dict(
        cholesky=types.boolean(arr(2), i8), solve=types.none(arr(2), arr(2), i8, i8),
        groups=i8(arr(3), s2, i8, i8, i8, i8, i8, i8, i8, arr(2, types.boolean), arr(3), arr(1), arr(1), ints,
                  ints, ints, arr(1), arr(2, i8), arr(2, i4), arr(2, i4)),
        models=types.none(arr(3), arr(3), i8, i8, i8, i8, i8, s2, dt, dt, i8, arr(2, i8), arr(2, i4), arr(2, i4),
                          arr(3, f8), arr(3, f8), arr(3, f8), arr(3), arr(1)),
        sums=types.none(arr(3), i8, i8, i8, arr(2, f8), arr(2, f8)),
    )


# --- NL-Bayes on volumes and video (3-D patches) ---
#
# The 2-D kernel's method on stacks (C, Z, H, W): patches of (2fz + 1) × (2f + 1) × (2f + 1) values, search
# windows of (2rz + 1) × (2r + 1) × (2r + 1) offsets (video: Z is time, the window cut at the first and last
# frame; Arias & Morel 2018). The group's model and estimate are the 2-D kernel's steps (inlined); bands are
# slabs of reference slices aligned to slice 0, processed in two phases as the 2-D row bands.


@njit(inline="always", **JIT)
def _nlb3_candidate_distances(search, pz, py, px, fz, f, dz0, dz1, r, zero, drow, dist):
    """Squared distances on channel 0 of ``search`` between the reference patch at padded ``(pz, py, px)`` and
    every candidate at offsets ``dz0 <= dz <= dz1``, ``|dy|, |dx| <= r`` but the reference itself, into
    ``dist`` in scan order (``(dz, dy, dx)`` row-major); returns their number. Rows of candidates vectorised
    over ``dx`` as in :func:`_nlb_window_distances`."""
    P = 2 * f + 1
    nk = min((2 * r + 1 + 15) // 16 * 16, drow.shape[0], search.shape[3] - (px + f - r))
    nc = 0
    for dz in range(dz0, dz1 + 1):
        for dy in range(-r, r + 1):
            for k in range(nk):
                drow[k] = zero
            for jz in range(-fz, fz + 1):
                for jy in range(-f, f + 1):
                    rrow = search[0, pz + jz, py + jy]
                    crow = search[0, pz + dz + jz, py + dy + jy]
                    _nlb_row_distances(rrow, crow[px - f - r:], px - f, P, nk, drow)
            for dx in range(-r, r + 1):
                if dz != 0 or dy != 0 or dx != 0:
                    dist[nc] = drow[dx + r]
                    nc += 1
    return nc


@njit(inline="always", **JIT)
def _nlb3_select_group(dist, nc, n_sim, dz0, dz1, r, work, oz, oy, ox):
    """:func:`_nlb_select_group` for the candidates of :func:`_nlb3_candidate_distances`: offsets
    ``(oz, oy, ox)[:n]``, the reference first; returns ``n``."""
    oz[0] = 0
    oy[0] = 0
    ox[0] = 0
    n = np.int64(1)  # not the literal 1: callees typed with it would be compiled twice (Literal[int](1), int64)
    m = min(n_sim - 1, nc)
    if m > 0:
        thr, n_equal = _nlb_threshold(dist, nc, m, work)
        k = 0
        for dz in range(dz0, dz1 + 1):
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    if dz == 0 and dy == 0 and dx == 0:
                        continue
                    d = dist[k]
                    k += 1
                    if d < thr or (d == thr and n_equal > 0):
                        if d == thr:
                            n_equal -= 1
                        oz[n] = dz
                        oy[n] = dy
                        ox[n] = dx
                        n += 1
    return n


@njit(inline="always", **JIT)
def _nlb3_gather(image, c, pz, py, px, oz, oy, ox, n, fz, f, X):
    """``X[m]`` = channel ``c`` of the patch of ``image`` centred at padded ``(pz + oz[m], py + oy[m],
    px + ox[m])``, (z, y, x) row-major, for ``m < n``."""
    P = 2 * f + 1
    PP = P * P
    for m in range(n):
        qz = pz + oz[m] - fz
        qy = py + oy[m] - f
        qx = px + ox[m] - f
        for jz in range(2 * fz + 1):
            for jy in range(P):
                for jx in range(P):
                    X[m, jz * PP + jy * P + jx] = image[c, qz + jz, qy + jy, qx + jx]


@njit(inline="always", **JIT)
def _nlb3_add_patches(num, c, lz, ly, lx, oz, oy, ox, n, fz, f, X):
    """``num[c]`` += the patches ``X[:n]`` whose first voxel is at ``(lz + oz[m], ly + oy[m], lx + ox[m])`` of
    the band's buffer (the aggregation of a group's estimates)."""
    P = 2 * f + 1
    PP = P * P
    for m in range(n):
        qz = lz + oz[m]
        qy = ly + oy[m]
        qx = lx + ox[m]
        for jz in range(2 * fz + 1):
            for jy in range(P):
                for jx in range(P):
                    num[c, qz + jz, qy + jy, qx + jx] += X[m, jz * PP + jy * P + jx]


# A σ map in the 3-D kernel: as in 2-D, the band's ``sigma2`` is one variance or the patch-mean σ² at every
# padded patch centre (a (Z + 2 zpad, H + 2 pad, W + 2 pad) map); a scalar compiles the scalar path unchanged.


@njit(**JIT)
def _nlb3_map_unbias(s2map, pz, py, px, dz0, dz1, r, D, dist):
    """:func:`_nlb_map_unbias` for the candidates of :func:`_nlb3_candidate_distances`, in its scan order."""
    s0 = np.float64(s2map[pz, py, px])
    k = 0
    for dz in range(dz0, dz1 + 1):
        k = _nlb_map_unbias_plane(s2map[pz + dz], s0, py, px, r, D, dist, k, dz == 0)


@njit(**JIT)
def _nlb3_map_group_mean(s2map, pz, py, px, oz, oy, ox, n):
    """:func:`_nlb_map_group_mean` for a group of 3-D patches."""
    s0 = np.float64(s2map[pz, py, px])
    acc = 0.0
    for m in range(n):
        acc += np.float64(s2map[pz + oz[m], py + oy[m], px + ox[m]]) - s0
    return s0 + acc / n


def _nlb3_unbias_distances(sigma2, pz, py, px, dz0, dz1, r, D, dist):
    """:func:`_nlb_unbias_distances` in 3-D (:func:`_nlb3_map_unbias`); nothing for one σ. The Python body only
    runs with ``NUMBA_DISABLE_JIT=1``."""
    if np.ndim(sigma2):
        _nlb3_map_unbias(sigma2, pz, py, px, dz0, dz1, r, D, dist)


@overload(_nlb3_unbias_distances, jit_options=dict(fastmath=FASTMATH))
def _nlb3_unbias_distances_impl(sigma2, pz, py, px, dz0, dz1, r, D, dist):
    if isinstance(sigma2, types.Array):
        def impl(sigma2, pz, py, px, dz0, dz1, r, D, dist):
            _nlb3_map_unbias(sigma2, pz, py, px, dz0, dz1, r, D, dist)
        return impl
    return lambda sigma2, pz, py, px, dz0, dz1, r, D, dist: None


def _nlb3_group_sigma2(sigma2, pz, py, px, oz, oy, ox, n):
    """:func:`_nlb_group_sigma2` in 3-D (:func:`_nlb3_map_group_mean`). The Python body only runs with
    ``NUMBA_DISABLE_JIT=1``."""
    if np.ndim(sigma2) == 0:
        return sigma2
    return sigma2.dtype.type(_nlb3_map_group_mean(sigma2, pz, py, px, oz, oy, ox, n))


@overload(_nlb3_group_sigma2, jit_options=dict(fastmath=FASTMATH))
def _nlb3_group_sigma2_impl(sigma2, pz, py, px, oz, oy, ox, n):
    if isinstance(sigma2, types.Array):
        cast = as_dtype(sigma2.dtype).type

        def impl(sigma2, pz, py, px, oz, oy, ox, n):
            return cast(_nlb3_map_group_mean(sigma2, pz, py, px, oz, oy, ox, n))
        return impl
    return lambda sigma2, pz, py, px, oz, oy, ox, n: sigma2


@njit(**JIT)
def _nlb3_band(noisy, basic, stage, b0, b1, Z, H, W, zpad, fz, f, rz, r, z_cut, n_sim, step, step_z, sigma2,
               beta, gamma, num, den, mask, dist, work, drow, oz, oy, ox, X, Y, Sc, mu, muy, vsum, cov, Zm):
    """Process the reference patches whose centre slice lies in ``[b0, b1)``, accumulating into the band's
    private ``num[c, z - b0 + rz + fz, y + pad, x + pad]`` and ``den`` (slices reach ``rz + fz`` beyond the
    band). ``z_cut``: candidates only in slices ``[0, Z)`` (video); else also in the reflected padding.
    The per-reference steps are those of :func:`_nlb_groups5` and :func:`_nlb_models`; ``sigma2`` the noise
    variance or a map of the patch-mean σ² at every padded centre (:func:`_nlb3_unbias_distances`,
    :func:`_nlb3_group_sigma2`)."""
    pad = r + f
    P = 2 * f + 1
    Pz = 2 * fz + 1
    PP = P * P
    D = Pz * PP
    C = noisy.shape[0]
    zero = beta - beta  # sigma2 may be a map
    search = noisy if stage == 1 else basic  # groups are found on channel 0 of this stack
    lo_z = b0 - rz - fz
    for z in range(b0, b1):
        if z % step_z != 0 and z != Z - 1:
            continue
        pz = z + zpad
        dz0 = max(-rz, -z) if z_cut else -rz
        dz1 = min(rz, Z - 1 - z) if z_cut else rz
        for y in range(H):
            if y % step != 0 and y != H - 1:
                continue
            py = y + pad
            for x in range(W):
                if x % step != 0 and x != W - 1:
                    continue
                if mask[z - b0, y, x]:
                    continue
                px = x + pad
                nc = _nlb3_candidate_distances(search, pz, py, px, fz, f, dz0, dz1, r, zero, drow, dist)
                if stage == 1:
                    _nlb3_unbias_distances(sigma2, pz, py, px, dz0, dz1, r, D, dist)
                n = _nlb3_select_group(dist, nc, n_sim, dz0, dz1, r, work, oz, oy, ox)
                nvar = _nlb3_group_sigma2(sigma2, pz, py, px, oz, oy, ox, n)  # the group's noise variance
                inv_n = 1 / (zero + n)
                inv_n1 = 1 / (zero + max(n - 1, 1))
                for c in range(C):
                    _nlb3_gather(noisy, c, pz, py, px, oz, oy, ox, n, fz, f, X)
                    if stage == 2:
                        _nlb3_gather(basic, c, pz, py, px, oz, oy, ox, n, fz, f, Y)
                    src = X if stage == 1 else Y  # the patches the model is learnt from
                    _nlb_mean(X, n, D, inv_n, mu)
                    msrc = mu
                    if stage == 2:
                        _nlb_mean(Y, n, D, inv_n, muy)
                        msrc = muy
                    flat = False
                    if gamma > 0:
                        flat, gm = _nlb_is_homogeneous(src, msrc, mu, n, D, gamma, nvar, vsum)
                        if flat:  # a homogeneous group: every patch becomes the mean value
                            for m in range(n):
                                for i in range(D):
                                    X[m, i] = gm
                    if not flat:
                        _nlb_bayes_estimate(X, src, msrc, mu, stage, n, D, nvar, beta, inv_n1, Sc, cov, Zm)
                    _nlb3_add_patches(num, c, z - fz - lo_z, py - f, px - f, oz, oy, ox, n, fz, f, X)
                for m in range(n):
                    qz = z + oz[m] - fz - lo_z
                    qy = py + oy[m] - f
                    qx = px + ox[m] - f
                    for jz in range(Pz):
                        for jy in range(P):
                            for jx in range(P):
                                den[qz + jz, qy + jy, qx + jx] += 1
                    gz = z + oz[m]
                    gy = y + oy[m]
                    gx = x + ox[m]
                    if b0 <= gz < b1 and 0 <= gy < H and 0 <= gx < W:
                        mask[gz - b0, gy, gx] = True


@njit(**PARALLEL_JIT)
def _nlbayes3_pass(noisy, basic, stage, zpad, fz, f, rz, r, z_cut, n_sim, step, step_z, sigma2, beta, gamma,
                   band_slices, out):
    """One NL-Bayes stage on padded ``(C, Z + 2 zpad, H + 2 pad, W + 2 pad)`` stacks, ``pad = r + f``.

    ``zpad``: ``rz + fz`` for volumes (candidates may be centred in the reflected padding), ``fz`` for video
    with ``z_cut`` (candidates centred in existing frames only). ``stage`` and ``basic`` as in
    :func:`_nlbayes_pass`; ``sigma2`` the noise variance, or a σ map: the padded patch mean of σ² at every
    patch centre, shaped as the padded stacks' slices (see :func:`nlmeans.nlbayes.nlbayes_3d_chw`). Bands of
    ``max(band_slices, 2 (rz + fz))`` reference slices, aligned to slice 0,
    each with its own "already processed" mask; even bands, then odd ones, add their private sums into the
    stack-wide ones, so the result does not depend on the number of threads. ``out`` (C, Z, H, W).
    """
    pad = r + f
    P = 2 * f + 1
    Pz = 2 * fz + 1
    D = Pz * P * P
    C = out.shape[0]
    Z = out.shape[1]
    H = out.shape[2]
    W = out.shape[3]
    Hp = H + 2 * pad
    Wp = W + 2 * pad
    reach = rz + fz
    B = max(band_slices, 2 * reach, 1)
    n_bands = (Z + B - 1) // B
    gnum = np.zeros((C, Z, H, W), dtype=out.dtype)
    gden = np.zeros((Z, H, W), dtype=out.dtype)
    nmax = max(n_sim, D)
    Dv = (D + 7) // 8 * 8  # the covariance's row length (see _nlb_covariance)
    n_cand = (2 * rz + 1) * (2 * r + 1) * (2 * r + 1)
    for phase in range(2):
        n_phase = (n_bands - phase + 1) // 2
        for j in prange(n_phase):
            band = phase + 2 * j
            b0 = band * B
            b1 = min(b0 + B, Z)
            nz = b1 - b0 + 2 * reach
            num = np.zeros((C, nz, Hp, Wp), dtype=out.dtype)
            den = np.zeros((nz, Hp, Wp), dtype=out.dtype)
            mask = np.zeros((b1 - b0, H, W), dtype=np.bool_)
            dist = np.empty(n_cand, dtype=out.dtype)
            work = np.empty(n_cand, dtype=out.dtype)
            drow = np.empty((2 * r + 1 + 15) // 16 * 16, dtype=out.dtype)
            oz = np.empty(n_sim, dtype=np.int64)
            oy = np.empty(n_sim, dtype=np.int64)
            ox = np.empty(n_sim, dtype=np.int64)
            X = np.zeros((nmax, Dv), dtype=out.dtype)  # patches padded with zeros to whole vectors
            Y = np.zeros((nmax, Dv), dtype=out.dtype)
            Sc = np.zeros((nmax, Dv), dtype=out.dtype)
            mu = np.empty(Dv, dtype=out.dtype)
            muy = np.empty(Dv, dtype=out.dtype)
            vsum = np.empty(Dv, dtype=out.dtype)
            cov = np.empty((D, Dv), dtype=out.dtype)
            Zm = np.empty((D, (nmax + 7) // 8 * 8), dtype=out.dtype)
            _nlb3_band(noisy, basic, stage, b0, b1, Z, H, W, zpad, fz, f, rz, r, z_cut, n_sim, step, step_z,
                       sigma2, beta, gamma, num, den, mask, dist, work, drow, oz, oy, ox, X, Y, Sc, mu, muy,
                       vsum, cov, Zm)
            for lz in range(nz):
                zz = b0 - reach + lz
                if zz < 0 or zz >= Z:
                    continue
                for c in range(C):
                    for y in range(H):
                        for x in range(W):
                            gnum[c, zz, y, x] += num[c, lz, y + pad, x + pad]
                for y in range(H):
                    for x in range(W):
                        gden[zz, y, x] += den[lz, y + pad, x + pad]
    for c in range(C):
        for z in prange(Z):
            for y in range(H):
                for x in range(W):
                    out[c, z, y, x] = gnum[c, z, y, x] / gden[z, y, x]
    return out
