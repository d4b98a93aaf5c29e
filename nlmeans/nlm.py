"""NL-means on channel-first float arrays (no validation): padding, weight constants, the kernel call.

The layer under every NL-means entry point (:func:`nlmeans.denoise`, strips and Dask, SURE): arrays are
``(C, H, W)`` float32 or float64, σ and h on the array's scale, sizes already checked.
"""

from __future__ import annotations

import numba
import numpy as np

from . import _config
from .kernels import weight_constants
from .kernels.offsets import _nlm_offsets
from .kernels.pixelwise import _VBYTES, _nlm_pixelwise


def nlmeans_chw(value, guide, sigma, h, patch_size, search_size):
    """NL-means on channel-first float arrays (no validation): the core call of every entry point.

    ``value`` (Cv, H, W) and ``guide`` (Cg, H, W) share one float dtype (float32 or float64; float64 is the
    exact path with libm's exp, float32 the fast one); ``guide`` may be ``value`` itself. Boundary: numpy's
    ``reflect`` padding (mirror without repeating the edge pixel). Returns a new (Cv, H, W) array.
    """
    dtype = value.dtype.type
    f, r = patch_size // 2, search_size // 2
    # below the bottom padding, spare rows for the kernel's vector loads, which may read up to one vector past
    # the end of a row (into columns no result uses)
    spare = -(-_VBYTES // (value.itemsize * (value.shape[2] + 2 * (r + f))))
    pad = ((0, 0), (r + f, r + f + spare), (r + f, r + f))
    value_p = np.pad(value, pad, mode="reflect")
    guide_p = value_p if guide is value else np.pad(guide, pad, mode="reflect")
    a, bb = weight_constants(guide.shape[0] * patch_size * patch_size, sigma, h, dtype)
    out = np.empty(value.shape, dtype=dtype)
    # bands handed out one at a time: a static split of the bands over the threads leaves the faster thread
    # waiting for the slower one when other work shares the cores (2 threads, 512²: 22-31 ms -> 21-22 ms)
    previous = numba.set_parallel_chunksize(1)
    try:
        _nlm_pixelwise(guide_p, value_p, f, r, a, bb, _config.band_rows(r), out)
    finally:
        numba.set_parallel_chunksize(previous)
    return out


def patch_kernel_1d(patch_size, patch_sigma=None, dtype=np.float64):
    """Separable patch weights ``g(j) = exp(-j^2 / (2 a^2))``, ``a = patch_sigma`` pixels; None: ones."""
    f = patch_size // 2
    j = np.arange(-f, f + 1, dtype=np.float64)
    if patch_sigma is None:
        return np.ones(patch_size, dtype=dtype)
    with np.errstate(under="ignore"):
        width = 2.0 * patch_sigma**2
    if width == 0.0:  # a tiny a (1e-300) underflows: the limit is the centre pixel alone, not 0/0 = NaN
        return (j == 0).astype(dtype)
    with np.errstate(under="ignore"):
        return np.exp(-(j**2) / width).astype(dtype)


def nlmeans_offsets_chw(value, guide, sigma, h, patch_size, search_size, *, patchwise=False, patch_sigma=None):
    """NL-means on channel-first float arrays by the full offset loop (no validation).

    Like :func:`nlmeans_chw`, with two options the symmetric pixelwise kernel does not have: ``patchwise``
    aggregation (IPOL 2011, each patch normalised by its own weight sum) and a Gaussian-weighted patch
    distance (Buades et al. 2005) of standard deviation ``patch_sigma`` pixels (None: flat).
    """
    dtype = value.dtype.type
    f, r = patch_size // 2, search_size // 2
    pad = r + 2 * f if patchwise else r + f
    widths = ((0, 0), (pad, pad), (pad, pad))
    value_p = np.pad(value, widths, mode="reflect")
    guide_p = value_p if guide is value else np.pad(guide, widths, mode="reflect")
    gk = patch_kernel_1d(patch_size, patch_sigma)
    a, bb = weight_constants(guide.shape[0] * float(gk.sum()) ** 2, sigma, h, dtype)
    b = dtype(float(a) * float(bb))  # this kernel takes t = max(S a - b, 0): b = 2σ²/h², finite by the clamps
    out = np.empty(value.shape, dtype=dtype)
    _nlm_offsets(
        guide_p, value_p, f, r, pad, gk.astype(dtype), patch_sigma is None, a, b, _config.BAND_ROWS, patchwise,
        dtype is np.float32, out,
    )
    return out


def run_nlmeans_chw(value, guide, settings, distance_sigma):
    """NL-means with resolved :class:`Settings` on channel-first float arrays: the symmetric pixelwise
    kernel for the flat distance, the offset loop for patchwise aggregation or Gaussian patch weights.
    ``distance_sigma``: the σ of the patch distance (the guide's when there is one)."""
    if settings.method == "pixelwise" and settings.patch_weights == "flat":
        return nlmeans_chw(value, guide, distance_sigma, settings.h, settings.patch_size, settings.search_size)
    return nlmeans_offsets_chw(value, guide, distance_sigma, settings.h, settings.patch_size,
                               settings.search_size, patchwise=settings.method == "patchwise",
                               patch_sigma=settings.patch_sigma)
