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
        ibuf = np.empty(W, dtype=np.int32)
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
                            _exp_neg_f32(t, w, ibuf, 0, W)
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
    return out
