"""Slow, obviously-correct reference implementations that the kernels are tested against.

Plain loops over pixels, search offsets and patch offsets, straight from the formulas in the docstrings; the
only shared convention with the package is the boundary rule (numpy ``reflect`` padding), so they can be
compared on every pixel, not only on the interior.
"""

from __future__ import annotations

import numpy as np
from numba import njit


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
                    wgt = np.exp(-max(d2 - 2.0 * sigma * sigma, 0.0) / (h * h))
                    for c in range(Cv):
                        num[c] += wgt * v[c, qy + pad, qx + pad]
                    den += wgt
            for c in range(Cv):
                out[c, y, x] = num[c] / den
    return out


def nlm_pixelwise(image, sigma, h, patch_size, search_size, guide=None):
    """Pixelwise NL-means in float64 by the definition.

    ``image`` and ``guide`` are (H, W) or (H, W, C) float arrays; weights come from ``guide`` (default: the
    image): ``w = exp(-max(d2 - 2 sigma^2, 0) / h^2)``, ``d2`` the mean over patch and channels of the squared
    differences, the average taken over the ``search_size``-square window, centre included.
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
                            wgt = np.exp(-max(d2 - 2.0 * sigma * sigma, 0.0) / (h * h))
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
