"""Slow, obviously-correct reference implementations that the kernels are tested against.

Plain loops over pixels, search offsets and patch offsets, straight from the formulas in the docstrings; the
only shared convention with the package is the boundary rule (numpy ``reflect`` padding), so they can be
compared on every pixel, not only on the interior.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=False)
def _weight(d2, sigma, h):
    """``exp(-max(d2 - 2 sigma^2, 0) / h^2)``; ``h = 0`` gives its limit for ``h -> 0+``: 1 when
    ``d2 <= 2 sigma^2``, else 0."""
    if h == 0.0:
        return 1.0 if d2 <= 2.0 * sigma * sigma else 0.0
    return np.exp(-max(d2 - 2.0 * sigma * sigma, 0.0) / (h * h))


@njit(cache=False)
def _nlm_pixelwise_loops(g, v, H, W, f, r, sigma, h):
    pad = r + f
    Cg = g.shape[0]
    Cv = v.shape[0]
    out = np.zeros((Cv, H, W))
    n = Cg * (2 * f + 1) ** 2
    for y in range(H):
        for x in range(W):
            num = np.zeros(Cv)
            den = 0.0
            for qy in range(y - r, y + r + 1):
                for qx in range(x - r, x + r + 1):
                    d2 = 0.0
                    for c in range(Cg):
                        for jy in range(-f, f + 1):
                            for jx in range(-f, f + 1):
                                diff = g[c, y + jy + pad, x + jx + pad] - g[c, qy + jy + pad, qx + jx + pad]
                                d2 += diff * diff
                    d2 /= n
                    wgt = _weight(d2, sigma, h)
                    for c in range(Cv):
                        num[c] += wgt * v[c, qy + pad, qx + pad]
                    den += wgt
            for c in range(Cv):
                out[c, y, x] = num[c] / den
    return out


def nlm_pixelwise(image, sigma, h, patch_size, search_size, guide=None):
    """Pixelwise NL-means in float64 by the definition.

    ``image`` and ``guide`` are (H, W) or (H, W, C) float arrays; weights come from ``guide`` (default: the
    image): ``w = exp(-max(d2 - 2 sigma^2, 0) / h^2)`` (``h = 0``: its limit, see :func:`_weight`), ``d2``
    the mean over patch and channels of the squared differences, the average taken over the
    ``search_size``-square window, centre included.
    """
    f, r = patch_size // 2, search_size // 2
    guide = image if guide is None else guide

    def chw(a):
        a = np.asarray(a, dtype=np.float64)
        a = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)
        return np.pad(a, ((0, 0), (r + f, r + f), (r + f, r + f)), mode="reflect")

    v, g = chw(image), chw(guide)
    H, W = np.shape(image)[:2]
    out = _nlm_pixelwise_loops(g, v, H, W, f, r, float(sigma), float(h))
    return out[0] if np.ndim(image) == 2 else np.moveaxis(out, 0, -1)


# --- 3-D volumes and video ---


@njit(cache=False)
def _nlm_3d_loops(g, v, Z, H, W, fz, f, rz, r, zpad, z_reflect, sigma, h):
    pad = r + f
    Cg = g.shape[0]
    Cv = v.shape[0]
    out = np.zeros((Cv, Z, H, W))
    n = Cg * (2 * fz + 1) * (2 * f + 1) ** 2
    for z in range(Z):
        for y in range(H):
            for x in range(W):
                num = np.zeros(Cv)
                den = 0.0
                for qz in range(z - rz, z + rz + 1):
                    if not z_reflect and (qz < 0 or qz >= Z):
                        continue  # video: the temporal window is cut at the first and last frame
                    for qy in range(y - r, y + r + 1):
                        for qx in range(x - r, x + r + 1):
                            d2 = 0.0
                            for c in range(Cg):
                                for jz in range(-fz, fz + 1):
                                    for jy in range(-f, f + 1):
                                        for jx in range(-f, f + 1):
                                            diff = (g[c, z + jz + zpad, y + jy + pad, x + jx + pad]
                                                    - g[c, qz + jz + zpad, qy + jy + pad, qx + jx + pad])
                                            d2 += diff * diff
                            d2 /= n
                            wgt = _weight(d2, sigma, h)
                            for c in range(Cv):
                                num[c] += wgt * v[c, qz + zpad, qy + pad, qx + pad]
                            den += wgt
                for c in range(Cv):
                    out[c, z, y, x] = num[c] / den
    return out


def _czyx(a, zpad, pad):
    a = np.asarray(a, dtype=np.float64)
    a = a[None] if a.ndim == 3 else np.moveaxis(a, -1, 0)
    return np.pad(a, ((0, 0), (zpad, zpad), (pad, pad), (pad, pad)), mode="reflect")


def _from_czyx(out, ndim):
    return out[0] if ndim == 3 else np.moveaxis(out, 0, -1)


def nlm_volume(volume, sigma, h, patch_size, search_size):
    """NL-means on a (Z, Y, X) or (Z, Y, X, C) volume by the definition, float64: cubic patches and cubic
    search windows, numpy ``reflect`` padding on all three axes."""
    f, r = patch_size // 2, search_size // 2
    v = _czyx(volume, r + f, r + f)
    Z, H, W = np.shape(volume)[:3]
    out = _nlm_3d_loops(v, v, Z, H, W, f, f, r, r, r + f, True, float(sigma), float(h))
    return _from_czyx(out, np.ndim(volume))


def nlm_video(frames, sigma, h, patch_size, search_size, temporal_radius):
    """NL-means on (T, Y, X) or (T, Y, X, C) frames by the definition, float64: 2-D patches compared across
    the frames ``t - temporal_radius .. t + temporal_radius`` that exist, spatial window ``search_size``
    squared, spatial ``reflect`` padding."""
    f, r = patch_size // 2, search_size // 2
    v = _czyx(frames, 0, r + f)
    T, H, W = np.shape(frames)[:3]
    out = _nlm_3d_loops(v, v, T, H, W, 0, f, int(temporal_radius), r, 0, False, float(sigma), float(h))
    return _from_czyx(out, np.ndim(frames))

def perona_malik(image, n_iter, kappa, dt):
    """Perona-Malik diffusion in float64 with numpy, straight from the update rule.

    ``image`` is (H, W) or (H, W, C). Each step: ``u += dt * sum over the 4 neighbours q of g * (u(q) - u)``,
    ``g = exp(-mean_c (u_c(q) - u_c)**2 / kappa**2)``; the border repeats the edge pixels (zero flux).
    """
    u = np.asarray(image, dtype=np.float64)
    u = u[None] if u.ndim == 2 else np.moveaxis(u, -1, 0)
    for _ in range(n_iter):
        p = np.pad(u, ((0, 0), (1, 1), (1, 1)), mode="edge")
        step = np.zeros_like(u)
        for d in (p[:, :-2, 1:-1] - u, p[:, 2:, 1:-1] - u, p[:, 1:-1, :-2] - u, p[:, 1:-1, 2:] - u):
            step += np.exp(-np.mean(d * d, axis=0) / kappa**2) * d
        u = u + dt * step
    return u[0] if np.ndim(image) == 2 else np.moveaxis(u, 0, -1)

# --- patchwise NL-means and Gaussian-weighted distance ---


def patch_kernel(patch_size, patch_sigma=None):
    """The (P, P) patch-offset weights g(j): ones (flat), or exp(-|j|^2 / (2 a^2)) with a = patch_sigma."""
    f = patch_size // 2
    j = np.arange(-f, f + 1, dtype=np.float64)
    if patch_sigma is None:
        return np.ones((patch_size, patch_size))
    return np.exp(-(j[:, None] ** 2 + j[None, :] ** 2) / (2.0 * patch_sigma**2))


@njit(cache=False)
def _weights_loops(g, ny, nx, off, f, r, gker, sigma, h):
    """wt[y, x, qy, qx] = w(p, p + (qy - r, qx - r)) for centres p = (y - off, x - off) (image coordinates)."""
    pad = (g.shape[1] - ny) // 2 + off
    Cg = g.shape[0]
    S = 2 * r + 1
    wt = np.zeros((ny, nx, S, S))
    norm = Cg * gker.sum()
    for y in range(ny):
        for x in range(nx):
            py = y - off + pad
            px = x - off + pad
            for qy in range(S):
                for qx in range(S):
                    d2 = 0.0
                    for c in range(Cg):
                        for jy in range(-f, f + 1):
                            for jx in range(-f, f + 1):
                                diff = g[c, py + jy, px + jx] - g[c, py + qy - r + jy, px + qx - r + jx]
                                d2 += gker[jy + f, jx + f] * diff * diff
                    d2 /= norm
                    wt[y, x, qy, qx] = np.exp(-max(d2 - 2.0 * sigma * sigma, 0.0) / (h * h))
    return wt


@njit(cache=False)
def _patchwise_loops(v, wt, H, W, f, r):
    """u(i) = mean over the patches B(p) containing i of sum_q w(p, q) v(q + i - p) / sum_q w(p, q)."""
    pad = (v.shape[1] - H) // 2
    Cv = v.shape[0]
    S = 2 * r + 1
    P = 2 * f + 1
    out = np.zeros((Cv, H, W))
    for y in range(H):
        for x in range(W):
            for jy in range(-f, f + 1):
                for jx in range(-f, f + 1):
                    # patch centre p = i - j; wt is indexed from p = (-f, -f)
                    ty = y - jy + f
                    tx = x - jx + f
                    C = 0.0
                    for qy in range(S):
                        for qx in range(S):
                            C += wt[ty, tx, qy, qx]
                    for c in range(Cv):
                        s = 0.0
                        for qy in range(S):
                            for qx in range(S):
                                s += wt[ty, tx, qy, qx] * v[c, y + qy - r + pad, x + qx - r + pad]
                        out[c, y, x] += s / C
    return out / (P * P)


def nlm_general(image, sigma, h, patch_size, search_size, guide=None, patchwise=False, patch_sigma=None):
    """NL-means in float64 by the definition, pixelwise or patchwise, flat or Gaussian-weighted distance.

    ``d2(p, q) = sum_j g(j) sum_c (v(p + j) - v(q + j))^2 / (C sum_j g(j))``, ``g`` from :func:`patch_kernel`
    (``patch_sigma`` in pixels; None: flat). Weights ``exp(-max(d2 - 2 sigma^2, 0) / h^2)`` over the
    search window, centre included. Pixelwise: weighted mean of the window's centre pixels. Patchwise
    (IPOL 2011, each patch normalised by its own weight sum): pixel i is the mean, over the P^2 patches
    B(p) containing it, of patch p's estimate at i. Boundary: numpy ``reflect`` padding; patches centred
    up to f pixels outside the image count.
    """
    f, r = patch_size // 2, search_size // 2
    guide = image if guide is None else guide
    pad = r + 2 * f

    def chw(a):
        a = np.asarray(a, dtype=np.float64)
        a = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)
        return np.pad(a, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")

    v, g = chw(image), chw(guide)
    H, W = np.shape(image)[:2]
    gker = patch_kernel(patch_size, patch_sigma)
    if patchwise:
        wt = _weights_loops(g, H + 2 * f, W + 2 * f, f, f, r, gker, float(sigma), float(h))
        out = _patchwise_loops(v, wt, H, W, f, r)
    else:
        wt = _weights_loops(g, H, W, 0, f, r, gker, float(sigma), float(h))
        Cv = v.shape[0]
        out = np.empty((Cv, H, W))
        for c in range(Cv):
            win = np.lib.stride_tricks.sliding_window_view(v[c], (2 * r + 1, 2 * r + 1))
            win = win[pad - r:pad - r + H, pad - r:pad - r + W]
            out[c] = (wt * win).sum(axis=(2, 3)) / wt.sum(axis=(2, 3))
    return out[0] if np.ndim(image) == 2 else np.moveaxis(out, 0, -1)


# --- NL-Bayes ---


def nlbayes_stage(image, basic, stage, sigma, patch_size, search_size, n_sim, beta, gamma, step, band_rows, *,
                  sbar=None, dist_dtype=np.float64):
    """One NL-Bayes stage in float64 by the formulas of ``nlmeans.nlbayes.nlbayes_chw``, numpy per group.

    ``image`` and ``basic`` (C, H, W) unpadded (``basic`` unused in stage 1). The kernel's conventions,
    spelled out: reflect padding; reference centres on the grid of ``step`` (plus the last row/column), in
    row-major order within row bands of ``max(band_rows, 2 (r + f))`` rows; a reference is skipped when a
    group of its own band already contained the patch centred there; group = the reference, then the
    ``n_sim - 1`` nearest other offsets by squared distance on channel 0 of the search image (noisy in
    stage 1, basic in stage 2), ties in
    row-major offset order (a stable sort); stage 1: ``X - beta s^2 C^-1 (X - mu)``, stage 2:
    ``mu + Cb (Cb + beta s^2 I)^-1 (X - mu)`` with ``mu`` the noisy patches' mean; a group whose model
    patches (noisy in stage 1, basic in stage 2) have variance <= ``gamma s^2`` becomes its mean pixel
    value; all estimates of a pixel averaged with equal weights; estimates of padding pixels dropped.

    With a σ map (``sbar``: σ̄², the patch mean of σ², at every padded centre; ``sigma`` unused): stage 1's
    squared distance to a candidate q becomes max(d² − P² (σ̄_q² − σ̄_p²), 0), stored in ``dist_dtype`` as the
    kernel's buffer, and each group's model takes as s² the mean σ̄² of its patches.
    """
    C, H, W = image.shape
    f, r = patch_size // 2, search_size // 2
    pad = r + f
    P = 2 * f + 1
    B = max(band_rows, 2 * pad, 1)
    s2 = None if sbar is not None else float(sigma) ** 2
    widths = ((0, 0), (pad, pad), (pad, pad))
    noisy = np.pad(np.asarray(image, np.float64), widths, mode="reflect")
    search = noisy if stage == 1 else np.pad(np.asarray(basic, np.float64), widths, mode="reflect")
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]

    def patch(img, c, cy, cx):  # patch centred at padded (cy, cx), flattened row-major
        return img[c, cy - f:cy + f + 1, cx - f:cx + f + 1].reshape(-1)

    num = np.zeros((C, H + 2 * pad, W + 2 * pad))
    den = np.zeros((H + 2 * pad, W + 2 * pad))
    for b0 in range(0, H, B):
        b1 = min(b0 + B, H)
        done = np.zeros((b1 - b0, W), bool)
        for y in range(b0, b1):
            if y % step and y != H - 1:
                continue
            for x in range(W):
                if (x % step and x != W - 1) or done[y - b0, x]:
                    continue
                py, px = y + pad, x + pad
                ref = patch(search, 0, py, px)
                d = np.array([((ref - patch(search, 0, py + dy, px + dx)) ** 2).sum() for dy, dx in offsets])
                if sbar is not None:
                    if stage == 1:
                        bias = np.array([sbar[py + dy, px + dx] for dy, dx in offsets]) - sbar[py, px]
                        d = np.maximum(d - P * P * bias, 0.0)
                    d = d.astype(dist_dtype).astype(np.float64)
                d[offsets.index((0, 0))] = -1.0  # the reference is always in its group, first
                group = [offsets[k] for k in np.argsort(d, kind="stable")[:n_sim]]
                if sbar is not None:
                    s2 = float(np.mean([sbar[py + dy, px + dx] for dy, dx in group]))
                for c in range(C):
                    X = np.array([patch(noisy, c, py + dy, px + dx) for dy, dx in group])
                    src = X if stage == 1 else np.array([patch(search, c, py + dy, px + dx) for dy, dx in group])
                    est = _nlb_group_estimate(X, src, stage, s2, beta, gamma)
                    for m, (dy, dx) in enumerate(group):
                        num[c, py + dy - f:py + dy + f + 1, px + dx - f:px + dx + f + 1] += est[m].reshape(P, P)
                for dy, dx in group:
                    den[py + dy - f:py + dy + f + 1, px + dx - f:px + dx + f + 1] += 1
                    if b0 <= y + dy < b1 and 0 <= x + dx < W:
                        done[y + dy - b0, x + dx] = True
    return num[:, pad:pad + H, pad:pad + W] / den[pad:pad + H, pad:pad + W]


def _nlb_group_estimate(X, src, stage, s2, beta, gamma):
    """The Gaussian model of one group (rows of ``X`` noisy patches, ``src`` the model's patches), numpy."""
    D = X.shape[1]
    mu = X.mean(axis=0)
    if gamma > 0 and src.var() <= gamma * s2:
        return np.full_like(X, mu.mean())
    cov = np.cov(src, rowvar=False, ddof=1).reshape(D, D)
    if stage == 1:
        return X - beta * s2 * np.linalg.solve(cov, (X - mu).T).T
    return mu + (X - mu) @ (cov @ np.linalg.inv(cov + beta * s2 * np.eye(D))).T


def nlbayes3_stage(image, basic, stage, sigma, patch, patch_z, search, search_z, n_sim, beta, gamma, step, step_z,
                   video, band_slices, *, sbar=None, dist_dtype=np.float64):
    """One NL-Bayes 3-D stage in float64 by the formulas of ``nlmeans.nlbayes.nlbayes_3d_chw``, numpy per group.

    ``image``, ``basic`` (C, Z, H, W) unpadded. Conventions spelled out: reflect padding on every axis;
    reference centres on the grids of ``step_z`` (slices) and ``step`` (rows, columns), the last of each
    included, in (z, y, x) order within bands of ``max(band_slices, 2 (search_z // 2 + patch_z // 2))``
    slices; a reference is skipped when a group of its band already held the patch centred there; candidates
    at every offset of the ``search_z × search × search`` window in (dz, dy, dx) order (``video``: only
    centres in existing slices); group = the reference then the ``n_sim - 1`` nearest (squared distance on
    channel 0 of the search image), ties to the earlier candidate; the model as in :func:`nlbayes_stage`.
    ``sbar`` (σ̄² at every padded centre, a map shaped as the padded slices) and ``dist_dtype``: the σ map of
    :func:`nlbayes_stage`, D = the patch's voxel count in place of P².
    """
    C, Zs, H, W = image.shape
    f, fz, r, rz = patch // 2, patch_z // 2, search // 2, search_z // 2
    pad = r + f
    zpad = fz if video else rz + fz
    B = max(band_slices, 2 * (rz + fz), 1)
    s2 = None if sbar is not None else float(sigma) ** 2
    widths = ((0, 0), (zpad, zpad), (pad, pad), (pad, pad))
    noisy = np.pad(np.asarray(image, np.float64), widths, mode="reflect")
    srch = noisy if stage == 1 else np.pad(np.asarray(basic, np.float64), widths, mode="reflect")

    def patch_at(img, c, cz, cy, cx):  # patch centred at padded (cz, cy, cx), flattened (z, y, x) row-major
        return img[c, cz - fz:cz + fz + 1, cy - f:cy + f + 1, cx - f:cx + f + 1].reshape(-1)

    num = np.zeros((C,) + noisy.shape[1:])
    den = np.zeros(noisy.shape[1:])
    for b0 in range(0, Zs, B):
        b1 = min(b0 + B, Zs)
        done = np.zeros((b1 - b0, H, W), bool)
        for z in range(b0, b1):
            if z % step_z and z != Zs - 1:
                continue
            offsets = [(dz, dy, dx) for dz in range(-rz, rz + 1) for dy in range(-r, r + 1)
                       for dx in range(-r, r + 1) if not video or 0 <= z + dz < Zs]
            for y in range(H):
                if y % step and y != H - 1:
                    continue
                for x in range(W):
                    if (x % step and x != W - 1) or done[z - b0, y, x]:
                        continue
                    pz, py, px = z + zpad, y + pad, x + pad
                    ref = patch_at(srch, 0, pz, py, px)
                    d = np.array([((ref - patch_at(srch, 0, pz + dz, py + dy, px + dx)) ** 2).sum()
                                  for dz, dy, dx in offsets])
                    if sbar is not None:
                        if stage == 1:
                            bias = np.array([sbar[pz + dz, py + dy, px + dx] for dz, dy, dx in offsets])
                            d = np.maximum(d - (2 * fz + 1) * (2 * f + 1) ** 2 * (bias - sbar[pz, py, px]), 0.0)
                        d = d.astype(dist_dtype).astype(np.float64)
                    d[offsets.index((0, 0, 0))] = -1.0  # the reference first
                    group = [offsets[k] for k in np.argsort(d, kind="stable")[:n_sim]]
                    if sbar is not None:
                        s2 = float(np.mean([sbar[pz + dz, py + dy, px + dx] for dz, dy, dx in group]))
                    for c in range(C):
                        X = np.array([patch_at(noisy, c, pz + dz, py + dy, px + dx) for dz, dy, dx in group])
                        src = X if stage == 1 else np.array(
                            [patch_at(srch, c, pz + dz, py + dy, px + dx) for dz, dy, dx in group])
                        est = _nlb_group_estimate(X, src, stage, s2, beta, gamma)
                        for m, (dz, dy, dx) in enumerate(group):
                            num[c, pz + dz - fz:pz + dz + fz + 1, py + dy - f:py + dy + f + 1,
                                px + dx - f:px + dx + f + 1] += est[m].reshape(2 * fz + 1, 2 * f + 1, 2 * f + 1)
                    for dz, dy, dx in group:
                        den[pz + dz - fz:pz + dz + fz + 1, py + dy - f:py + dy + f + 1,
                            px + dx - f:px + dx + f + 1] += 1
                        if b0 <= z + dz < b1 and 0 <= y + dy < H and 0 <= x + dx < W:
                            done[z + dz - b0, y + dy, x + dx] = True
    inner = (slice(zpad, zpad + Zs), slice(pad, pad + H), slice(pad, pad + W))
    return num[(slice(None),) + inner] / den[inner]
