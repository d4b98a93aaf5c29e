"""Numba kernels of nlmeans (private).

Plain arrays and scalars in, arrays out; no validation here (``denoise.py`` does it). All kernels that call each
other live in this one file, because numba's on-disk cache does not notice edits to a jitted helper in another
module.

Layout conventions
------------------
Images are channel-first, ``(C, H, W)``, C-contiguous, already padded by ``pad = r + f`` on each side of both
spatial axes (``r`` the search radius, ``f`` the patch radius), so that every index in the inner loops is
non-negative and in bounds: the loops carry no branches and vectorise over contiguous ``x``.

The fast NL-means kernel follows Darbon et al. (2008): loop over the search offsets ``delta`` and, for each,
box-filter the squared differences ``(v(p) - v(p + delta))**2`` to get every patch distance for that offset at
once, so the cost does not grow with the patch height (running column sums) and grows only by one vector add
per extra patch column. Weights are symmetric, ``w(p, p + delta) == w(p + delta, p)``, so each offset pair is
visited once and updates both pixels.

Parallel structure: rows are cut into bands of ``band_rows`` rows, aligned to row 0 of the image, plus a
"top band" for the rows above the image whose pairs reach into it. Each worker accumulates a band into private
buffers (its own rows plus the ``r`` rows below it that its pairs reach), then adds them to the image-wide sums.
Bands of even index run first, then odd ones, so no two workers add into the same rows at once; because the
image-wide sums start at zero and receive at most two band sums per pixel, the result does not depend on the
order either, nor on where the image was cut: tiled runs are bit-identical to untiled ones.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._config import JIT, PARALLEL_JIT

# exp(-87) ~ 1.6e-38 is still a normal float32; clamping there keeps the bit trick below in range.
_EXP_T_MAX = 87.0


@njit(**JIT)
def _exp_neg_f32(t, w, ibuf, lo, hi):
    """``w[x] = exp(-t[x])`` for ``x`` in ``[lo, hi)``, ``t >= 0``, float32, relative error < 3e-7.

    ``exp(-t) = 2**-n * 2**-g`` with ``n = round(t log2 e)`` and ``|g| <= 1/2``: a degree-6 Taylor polynomial for
    ``2**-g`` and the exponent bits for ``2**-n``. ``np.exp`` is a scalar call in numba; this vectorises.
    """
    fbuf = ibuf.view(np.float32)
    for x in range(lo, hi):
        z = min(t[x], np.float32(_EXP_T_MAX)) * np.float32(1.4426950408889634)
        n = np.int32(z + np.float32(0.5))
        y = (np.float32(n) - z) * np.float32(0.6931471805599453)
        p = np.float32(1.0) + y * (
            np.float32(1.0)
            + y
            * (
                np.float32(0.5)
                + y
                * (
                    np.float32(1.0 / 6.0)
                    + y
                    * (
                        np.float32(1.0 / 24.0)
                        + y * (np.float32(1.0 / 120.0) + y * np.float32(1.0 / 720.0))
                    )
                )
            )
        )
        w[x] = p
        ibuf[x] = (np.int32(127) - n) << 23
    for x in range(lo, hi):
        w[x] = w[x] * fbuf[x]


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


@njit(**JIT)
def _band_pixelwise(
    guide, value, b0, b1, H, W, f, r, a, b, fast_exp, acc, wsum, colsum, ring, d, t, w, ibuf
):
    """Accumulate every offset pair whose first pixel ``p`` lies in rows ``[b0, b1)`` (image coordinates).

    Private sums: ``acc[c, y - b0, x + pad]`` and ``wsum[y - b0, x + pad]`` for pixel ``(y, x)``; they cover
    rows ``[b0, b1 + r)`` since a pair reaches ``r`` rows down. ``b0 < 0`` marks the top band (rows above the
    image, which only contribute through their partner ``p + delta``).
    """
    pad = r + f
    P = 2 * f + 1
    zero = a - a
    for dy in range(0, r + 1):
        ys = b0 if b0 >= 0 else -dy  # the top band only needs the rows whose partner is inside the image
        if ys >= b1:
            continue
        dx_first = 1 if dy == 0 else -r
        for dx in range(dx_first, r + 1):
            # columns of p (padded coordinates) such that p or p + delta lies inside the image
            xs = pad + min(0, -dx)
            xe = pad + max(W, W - dx)
            lo = xs - f
            hi = xe + f
            # running column sums of d over the 2f+1 rows around p's row: start at row ys
            for x in range(lo, hi):
                colsum[x] = zero
            for k in range(P):
                gy = ys - f + k + pad
                _squared_diff_row(guide, gy, gy + dy, dx, lo, hi, d)
                for x in range(lo, hi):
                    ring[k, x] = d[x]
                    colsum[x] += d[x]
            for y in range(ys, b1):
                if y > ys:
                    slot = (y - ys - 1) % P
                    gy = y + f + pad
                    _squared_diff_row(guide, gy, gy + dy, dx, lo, hi, d)
                    for x in range(lo, hi):
                        colsum[x] += d[x] - ring[slot, x]
                        ring[slot, x] = d[x]
                # patch distance -> corrected, scaled distance t = max(d2 - 2 sigma^2, 0) / h^2
                for x in range(xs, xe):
                    t[x] = colsum[x - f]
                for k in range(1, P):
                    for x in range(xs, xe):
                        t[x] += colsum[x - f + k]
                for x in range(xs, xe):
                    t[x] = max(t[x] * a - b, zero)
                if fast_exp:
                    _exp_neg_f32(t, w, ibuf, xs, xe)
                else:
                    _exp_neg_exact(t, w, xs, xe)
                ly = y - b0
                vy = y + pad
                for c in range(value.shape[0]):
                    for x in range(xs, xe):
                        acc[c, ly, x] += w[x] * value[c, vy + dy, x + dx]
                    for x in range(xs, xe):
                        acc[c, ly + dy, x + dx] += w[x] * value[c, vy, x]
                for x in range(xs, xe):
                    wsum[ly, x] += w[x]
                for x in range(xs, xe):
                    wsum[ly + dy, x + dx] += w[x]


@njit(**PARALLEL_JIT)
def _nlm_pixelwise(guide, value, f, r, a, b, band_rows, n_threads, fast_exp, out):
    """Pixelwise NL-means, fast path.

    Parameters
    ----------
    guide : (Cg, H + 2 pad, W + 2 pad) float array, padded; patch distances are computed on it.
    value : (Cv, H + 2 pad, W + 2 pad) float array of the same dtype, padded; the values averaged.
    f, r : patch and search radius; ``pad = r + f``.
    a, b : ``t = max(S * a - b, 0)`` with S the box sum of squared differences, i.e.
        ``a = 1 / (Cg P^2 h^2)``, ``b = 2 sigma^2 / h^2``; same dtype as the arrays.
    band_rows : rows per parallel band, >= r.
    n_threads : number of workers (numba's thread count; passed in, so the kernel can be cached).
    fast_exp : use the vectorised float32 exponential (float32 path) instead of libm's.
    out : (Cv, H, W) result.
    """
    pad = r + f
    H = out.shape[1]
    W = out.shape[2]
    Cv = value.shape[0]
    Wp = W + 2 * pad
    B = max(band_rows, r, 1)
    n_img_bands = (H + B - 1) // B
    n_bands = n_img_bands + 1  # band 0 is the top band, rows [-r, 0)
    gsum = np.zeros((Cv, H, W), dtype=out.dtype)
    gw = np.zeros((H, W), dtype=out.dtype)
    n_workers = max(1, min(n_threads, (n_bands + 1) // 2))
    for phase in range(2):
        n_phase = (n_bands - phase + 1) // 2
        for worker in prange(n_workers):
            acc = np.empty((Cv, B + r, Wp), dtype=out.dtype)
            wsum = np.empty((B + r, Wp), dtype=out.dtype)
            colsum = np.empty(Wp, dtype=out.dtype)
            ring = np.empty((2 * f + 1, Wp), dtype=out.dtype)
            d = np.empty(Wp, dtype=out.dtype)
            t = np.empty(Wp, dtype=out.dtype)
            w = np.empty(Wp, dtype=out.dtype)
            ibuf = np.empty(Wp, dtype=np.int32)
            for j in range(worker, n_phase, n_workers):
                band = phase + 2 * j
                if band == 0:
                    b0 = -r
                    b1 = 0
                else:
                    b0 = (band - 1) * B
                    b1 = min(b0 + B, H)
                acc[:] = 0
                wsum[:] = 0
                _band_pixelwise(
                    guide, value, b0, b1, H, W, f, r, a, b, fast_exp,
                    acc, wsum, colsum, ring, d, t, w, ibuf,
                )
                # add the band's private sums into the image-wide ones (rows [b0, b1 + r) inside the image)
                for ly in range(b1 - b0 + r):
                    y = b0 + ly
                    if y < 0 or y >= H:
                        continue
                    for c in range(Cv):
                        for x in range(W):
                            gsum[c, y, x] += acc[c, ly, x + pad]
                    for x in range(W):
                        gw[y, x] += wsum[ly, x + pad]
    # the centre pixel q = p has weight exp(0) = 1
    for y in prange(H):
        for c in range(Cv):
            for x in range(W):
                out[c, y, x] = (gsum[c, y, x] + value[c, y + pad, x + pad]) / (gw[y, x] + 1)
    return out


# --- patchwise NL-means and Gaussian-weighted distance ---
#
# One kernel for the variants that the symmetric pixelwise kernel above does not cover: the patchwise
# aggregation of IPOL 2011 and the Gaussian-weighted patch distance of Buades et al. 2005 (with either
# aggregation). It visits every offset of the S×S window for every pixel (no symmetric pairing), so each row
# band owns its output rows and the bands run in parallel without sharing anything.


@njit(**JIT)
def _offset_weights(guide, y0, ny, x0, nx, dy, dx, f, gk, flat, a, b, fast_exp, sq, col, t, w, ibuf):
    """``w[k, x] = exp(-max(a * D(p) - b, 0))`` for ``p = (y0 + k, x)``, ``k < ny``, ``x0 <= x < x0 + nx``.

    Padded coordinates. ``D(p) = sum_{jy, jx} gk[jy] gk[jx] sum_c (g(p + j) - g(p + delta + j))**2`` with
    ``delta = (dy, dx)``: a separable weighted patch sum (``gk`` all ones and ``flat`` True for the flat
    distance, whose column sums then run down the rows).
    Work buffers: ``sq`` (ny + 2f rows), ``col`` (ny rows), ``t``, ``ibuf`` (one row each).
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
            _exp_neg_f32(t, w[k], ibuf, x0, x0 + nx)
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
        ibuf = np.empty(Wp, dtype=np.int32)
        wsum = np.zeros((ny, Wp), dtype=out.dtype)
        acc = np.zeros((Cv, nb, Wp), dtype=out.dtype)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                _offset_weights(guide, y0, ny, x0, nx, dy, dx, f, gk, flat, a, b, fast_exp, sq, col, t, w, ibuf)
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
                _offset_weights(guide, y0, ny, x0, nx, dy, dx, f, gk, flat, a, b, fast_exp, sq, col, t, w, ibuf)
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
    """In-place lower Cholesky factor of the symmetric positive-definite ``A[:D, :D]`` (upper part unused)."""
    zero = A[0, 0] - A[0, 0]
    for j in range(D):
        s = A[j, j]
        for k in range(j):
            s -= A[j, k] * A[j, k]
        s = np.sqrt(max(s, zero + 1e-12))
        A[j, j] = s
        inv = 1 / s
        for i in range(j + 1, D):
            v = A[i, j]
            for k in range(j):
                v -= A[i, k] * A[j, k]
            A[i, j] = v * inv


@njit(**JIT)
def _nlb_solve(L, Bm, D, n):
    """``Bm[:D, :n] = (L L^T)^-1 Bm[:D, :n]`` in place, ``L`` lower triangular from :func:`_nlb_cholesky`."""
    for i in range(D):
        for k in range(i):
            lik = L[i, k]
            for m in range(n):
                Bm[i, m] -= lik * Bm[k, m]
        inv = 1 / L[i, i]
        for m in range(n):
            Bm[i, m] *= inv
    for i in range(D - 1, -1, -1):
        for k in range(i + 1, D):
            lki = L[k, i]
            for m in range(n):
                Bm[i, m] -= lki * Bm[k, m]
        inv = 1 / L[i, i]
        for m in range(n):
            Bm[i, m] *= inv


@njit(**JIT)
def _nlb_band(noisy, basic, stage, b0, b1, H, W, f, r, n_sim, step, sigma2, beta, gamma,
              num, den, mask, dist, drow, oy, ox, X, Y, mu, cov, Z):
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
            # the reference first (always in its group), then the n_sim - 1 nearest others (sorted insertion)
            dist[0] = zero - 1
            oy[0] = 0
            ox[0] = 0
            n = 1
            for dy in range(-r, r + 1):
                # distances to the 2r + 1 candidates of this row of offsets, vectorised over dx
                for k in range(2 * r + 1):
                    drow[k] = zero
                for jy in range(-f, f + 1):
                    for jx in range(-f, f + 1):
                        ref = search[0, py + jy, px + jx]
                        base = px + jx - r
                        for k in range(2 * r + 1):
                            diff = ref - search[0, py + dy + jy, base + k]
                            drow[k] += diff * diff
                for dx in range(-r, r + 1):
                    if dy == 0 and dx == 0:
                        continue
                    d = drow[dx + r]
                    if n == n_sim and d >= dist[n - 1]:
                        continue
                    k = n if n < n_sim else n_sim - 1
                    while k > 0 and dist[k - 1] > d:
                        dist[k] = dist[k - 1]
                        oy[k] = oy[k - 1]
                        ox[k] = ox[k - 1]
                        k -= 1
                    dist[k] = d
                    oy[k] = dy
                    ox[k] = dx
                    if n < n_sim:
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
                for i in range(D):
                    mu[i] = zero
                for m in range(n):
                    for i in range(D):
                        mu[i] += X[m, i]
                for i in range(D):
                    mu[i] *= inv_n
                flat = False
                if gamma > 0:
                    # homogeneous group: the model patches vary no more than gamma sigma^2 (stage 1: the noisy
                    # ones, about sigma^2 if flat; stage 2: the basic ones, about 0) -> all become the mean
                    gm = zero
                    for i in range(D):
                        gm += mu[i]
                    gm /= D
                    sm = zero
                    for m in range(n):
                        for i in range(D):
                            sm += src[m, i]
                    sm /= n * D
                    var = zero
                    for m in range(n):
                        for i in range(D):
                            var += (src[m, i] - sm) * (src[m, i] - sm)
                    var /= n * D
                    if var <= gamma * sigma2:
                        flat = True
                        for m in range(n):
                            for i in range(D):
                                X[m, i] = gm
                if not flat:
                    # covariance of the model patches
                    for i in range(D):
                        for j in range(D):
                            cov[i, j] = zero
                    if stage == 2:
                        for i in range(D):
                            Z[i, 0] = zero
                        for m in range(n):
                            for i in range(D):
                                Z[i, 0] += Y[m, i]
                        for i in range(D):
                            Z[i, 0] *= inv_n
                    else:
                        for i in range(D):
                            Z[i, 0] = mu[i]
                    for m in range(n):
                        for i in range(D):
                            a = src[m, i] - Z[i, 0]
                            for j in range(i + 1):
                                cov[i, j] += a * (src[m, j] - Z[j, 0])
                    for i in range(D):
                        for j in range(i + 1):
                            cov[i, j] *= inv_n1
                            cov[j, i] = cov[i, j]
                    # Z = (X - mu)^T, then solve
                    for i in range(D):
                        for m in range(n):
                            Z[i, m] = X[m, i] - mu[i]
                    if stage == 1:
                        # X <- X - beta sigma^2 Cov^-1 (X - mu)   [= mu + (Cov - beta sigma^2) Cov^-1 (X - mu)]
                        _nlb_cholesky(cov, D)
                        _nlb_solve(cov, Z, D, n)
                        for m in range(n):
                            for i in range(D):
                                X[m, i] -= beta * sigma2 * Z[i, m]
                    else:
                        # X <- mu + CovB (CovB + beta sigma^2)^-1 (X - mu), CovB from the basic patches,
                        # computed as X - beta sigma^2 (CovB + beta sigma^2)^-1 (X - mu) (the same matrix)
                        for i in range(D):
                            cov[i, i] += beta * sigma2
                        _nlb_cholesky(cov, D)
                        _nlb_solve(cov, Z, D, n)
                        for m in range(n):
                            for i in range(D):
                                X[m, i] -= beta * sigma2 * Z[i, m]
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
            dist = np.empty(n_sim, dtype=out.dtype)
            drow = np.empty(2 * r + 1, dtype=out.dtype)
            oy = np.empty(n_sim, dtype=np.int64)
            ox = np.empty(n_sim, dtype=np.int64)
            X = np.empty((nmax, D), dtype=out.dtype)
            Y = np.empty((nmax, D), dtype=out.dtype)
            mu = np.empty(D, dtype=out.dtype)
            cov = np.empty((D, D), dtype=out.dtype)
            Z = np.empty((D, nmax), dtype=out.dtype)
            _nlb_band(noisy, basic, stage, b0, b1, H, W, f, r, n_sim, step, sigma2, beta, gamma,
                      num, den, mask, dist, drow, oy, ox, X, Y, mu, cov, Z)
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
