"""Perona–Malik anisotropic diffusion, the numba kernel of the ``anisotropic`` baseline of ``nlmeans eval``.

Not a denoiser of the library: it lives outside :mod:`nlmeans.kernels` with the baselines' registry
(:mod:`nlmeans.eval.registry`), which validates the parameters and calls it.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._config import PARALLEL_JIT


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
