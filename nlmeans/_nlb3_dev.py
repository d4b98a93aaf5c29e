"""NL-Bayes 3-D kernels, in development here until nlmeans/kernels/nlbayes.py exists (then moved there, next
to the 2-D helpers they call: numba's cache does not track jitted helpers imported from another file)."""

import numpy as np
from numba import njit, prange

from ._config import JIT, PARALLEL_JIT
from ._kernels import (
    _nlb_cholesky,
    _nlb_covariance,
    _nlb_mean,
    _nlb_row_distances,
    _nlb_solve,
    _nth_smallest_nonneg,
)


@njit(**JIT)
def _nlb_select(dist, nc, n_sim, work, cz, cy, cx, oz, oy, ox):
    """The group: offset 0 (the reference) then the ``n_sim - 1`` candidates ``k`` of smallest ``dist[k]``
    (``k < nc``), ties going to the smaller ``k`` (what a stable sort gives), written to ``oz/oy/ox[:n]`` in
    candidate order. A selection, not a sort: O(candidates). Returns ``n``."""
    oz[0] = 0
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
        for k in range(nc):
            d = dist[k]
            if d < thr or (d == thr and n_equal > 0):
                if d == thr:
                    n_equal -= 1
                oz[n] = cz[k]
                oy[n] = cy[k]
                ox[n] = cx[k]
                n += 1
    return n


@njit(**JIT)
def _nlb_group_estimate(X, Y, Sc, mu, muy, vsum, cov, Z, n, D, stage, sigma2, beta, gamma):
    """The Gaussian model of one group and one channel: ``X[:n, :D]`` (noisy patches) is replaced by its
    estimate; ``Y`` holds the basic patches in stage 2 (the model's source)."""
    zero = sigma2 - sigma2
    inv_n = 1 / (zero + n)
    inv_n1 = 1 / (zero + max(n - 1, 1))
    src = X if stage == 1 else Y  # the patches the model is learnt from
    _nlb_mean(X, n, D, inv_n, mu)
    msrc = mu  # the mean of the model patches
    if stage == 2:
        _nlb_mean(Y, n, D, inv_n, muy)
        msrc = muy
    if gamma > 0:
        # homogeneous group: the model patches vary no more than gamma sigma^2 -> all become the mean
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
            for m in range(n):
                for i in range(D):
                    X[m, i] = gm
            return
    for m in range(n):
        for i in range(D):
            Sc[m, i] = src[m, i] - msrc[i]
    _nlb_covariance(Sc, n, D, inv_n1, cov)
    for i in range(D):
        for m in range(n):
            Z[i, m] = X[m, i] - mu[i]
    ridge = stage == 2
    if ridge:
        for i in range(D):
            cov[i, i] += beta * sigma2
    ok = _nlb_cholesky(cov, D)
    if not ok and not ridge:
        _nlb_covariance(Sc, n, D, inv_n1, cov)
        for i in range(D):
            cov[i, i] += beta * sigma2
        ok = _nlb_cholesky(cov, D)
    if ok:
        _nlb_solve(cov, Z, D, n)
        for m in range(n):
            for i in range(D):
                X[m, i] -= beta * sigma2 * Z[i, m]
    else:
        for m in range(n):
            for i in range(D):
                X[m, i] = mu[i]


@njit(**JIT)
def _nlb3_band(noisy, basic, stage, b0, b1, Z, H, W, zpad, fz, f, rz, r, z_cut, n_sim, step, step_z,
               sigma2, beta, gamma, num, den, mask, dist, work, drow, cz, cy, cx, oz, oy, ox,
               X, Y, Sc, mu, muy, vsum, cov, Zm):
    """Reference patches whose centre slice lies in ``[b0, b1)``; sums into the band's private ``num[c, lz,
    y + pad, x + pad]`` and ``den``, ``lz = z - (b0 - rz - fz)``."""
    pad = r + f
    P = 2 * f + 1
    Pz = 2 * fz + 1
    PP = P * P
    D = Pz * PP
    C = noisy.shape[0]
    zero = sigma2 - sigma2
    search = noisy if stage == 1 else basic
    lo_z = b0 - rz - fz
    for z in range(b0, b1):
        if z % step_z != 0 and z != Z - 1:
            continue
        pz = z + zpad
        dz0 = -rz
        dz1 = rz
        if z_cut:
            dz0 = max(-rz, -z)
            dz1 = min(rz, Z - 1 - z)
        for y in range(0, H):
            if y % step != 0 and y != H - 1:
                continue
            py = y + pad
            for x in range(W):
                if x % step != 0 and x != W - 1:
                    continue
                if mask[z - b0, y, x]:
                    continue
                px = x + pad
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
                                cz[nc] = dz
                                cy[nc] = dy
                                cx[nc] = dx
                                nc += 1
                n = _nlb_select(dist, nc, n_sim, work, cz, cy, cx, oz, oy, ox)
                for c in range(C):
                    for m in range(n):
                        qz = pz + oz[m] - fz
                        qy = py + oy[m] - f
                        qx = px + ox[m] - f
                        for jz in range(Pz):
                            for jy in range(P):
                                for jx in range(P):
                                    X[m, jz * PP + jy * P + jx] = noisy[c, qz + jz, qy + jy, qx + jx]
                        if stage == 2:
                            for jz in range(Pz):
                                for jy in range(P):
                                    for jx in range(P):
                                        Y[m, jz * PP + jy * P + jx] = basic[c, qz + jz, qy + jy, qx + jx]
                    _nlb_group_estimate(X, Y, Sc, mu, muy, vsum, cov, Zm, n, D, stage, sigma2, beta, gamma)
                    for m in range(n):
                        qz = z + oz[m] - fz - lo_z
                        qy = py + oy[m] - f
                        qx = px + ox[m] - f
                        for jz in range(Pz):
                            for jy in range(P):
                                for jx in range(P):
                                    num[c, qz + jz, qy + jy, qx + jx] += X[m, jz * PP + jy * P + jx]
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
    """One NL-Bayes stage on padded ``(C, Z + 2 zpad, H + 2 pad, W + 2 pad)`` arrays, ``pad = r + f``."""
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
            cz = np.empty(n_cand, dtype=np.int64)
            cy = np.empty(n_cand, dtype=np.int64)
            cx = np.empty(n_cand, dtype=np.int64)
            oz = np.empty(n_sim, dtype=np.int64)
            oy = np.empty(n_sim, dtype=np.int64)
            ox = np.empty(n_sim, dtype=np.int64)
            X = np.empty((nmax, D), dtype=out.dtype)
            Y = np.empty((nmax, D), dtype=out.dtype)
            Sc = np.empty((nmax, D), dtype=out.dtype)
            mu = np.empty(D, dtype=out.dtype)
            muy = np.empty(D, dtype=out.dtype)
            vsum = np.empty(D, dtype=out.dtype)
            cov = np.empty((D, D), dtype=out.dtype)
            Zm = np.empty((D, nmax), dtype=out.dtype)
            _nlb3_band(noisy, basic, stage, b0, b1, Z, H, W, zpad, fz, f, rz, r, z_cut, n_sim, step, step_z,
                       sigma2, beta, gamma, num, den, mask, dist, work, drow, cz, cy, cx, oz, oy, ox,
                       X, Y, Sc, mu, muy, vsum, cov, Zm)
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
