"""NL-means on channel-first float arrays (no validation): padding, weight constants, the kernel call.

The layer under every NL-means entry point (:func:`nlmeans.denoise`, strips and Dask, SURE): arrays are
``(C, H, W)`` float32 or float64, σ and h on the array's scale, sizes already checked.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from . import _config
from .kernels import WEIGHT_CAP, weight_constants
from .kernels.offsets import _nlm_offsets
from .kernels.pixelwise import (
    _VBYTES,
    _nlm_pixelwise_band,
    _nlm_pixelwise_map_band,
    _nlm_segments_band,
    _nlm_segments_map_band,
    _pixelwise_rows,
    _segment_columns,
    _segment_geometry,
    _segment_rows,
    _to_segments,
)


def _padded_for_pixelwise(value, guide, f, r):
    """``value`` and ``guide`` padded for the pixelwise kernels, and the padding's widths: ``r + f`` by
    reflection on both spatial axes, and below the bottom padding spare rows for the kernel's vector loads,
    which may read up to one vector past the end of a row (into columns no result uses)."""
    spare = -(-_VBYTES // (value.itemsize * (value.shape[2] + 2 * (r + f))))
    pad = ((0, 0), (r + f, r + f + spare), (r + f, r + f))
    value_p = np.pad(value, pad, mode="reflect")
    guide_p = value_p if guide is value else np.pad(guide, pad, mode="reflect")
    return value_p, guide_p, pad


def _run_banded(band_kernel, guide_p, value_p, f, r, c1, c2, band_rows, out):
    """Run a pixelwise band kernel of the row layout (:func:`~nlmeans.kernels.pixelwise._nlm_pixelwise_band`
    or the σ-map one, weight constants ``c1``, ``c2``) over the image's bands on threads (:func:`_bands`), then
    add the bands' sums into ``out``."""
    Cv, H, W = out.shape
    B = max(band_rows, r, 1)
    lanes = _VBYTES // out.itemsize
    Wr = -(-W // lanes) * lanes  # spare columns: the vector loops run over whole vectors
    rgb_g = True if guide_p.shape[0] == 3 else None  # a type: only the call's channel branch is compiled
    rgb_v = True if value_p.shape[0] == 3 else None
    pad = r + f
    bsum, bw = _band_sums(H, B, r, Cv, Wr, out.dtype)
    _bands(H, B,
           lambda k: band_kernel(guide_p, value_p, f, r, c1, c2, H, B, k, bsum, bw, rgb_g, rgb_v),
           lambda y0, y1: _pixelwise_rows(value_p, pad, r, B, bsum, bw, y0, y1, out))


def _run_segments(band_kernel, guide, value, f, r, c1, c2, band_rows, out):
    """:func:`_run_banded` for a gray image in the segment layout (:func:`_nlm_segments_band` or the σ-map one):
    ``guide``, ``value`` (1, H, W) unpadded, ``c1``, ``c2`` the weight constants or the (H, W) maps; each is
    laid out once (:func:`~nlmeans.kernels.pixelwise._to_segments`), the bands run on threads, and
    :func:`~nlmeans.kernels.pixelwise._segment_rows` adds their sums into ``out``."""
    from ._threads import _aligned

    _, H, W = out.shape
    B = max(band_rows, r, 1)
    pad = r + f
    Ws = _segment_geometry(W, r)

    def laid_out(image):
        arr = _aligned((H + 2 * pad, _segment_columns(Ws, pad)), out.dtype, zeros=False)
        _to_segments(image, f, r, Ws, arr)
        return arr

    value_s = laid_out(value[0])[None]
    guide_s = value_s if guide is value else laid_out(guide[0])[None]
    if isinstance(c1, np.ndarray):
        c1, c2 = laid_out(c1), laid_out(c2)
    bsum, bw = _band_sums(H, B, r, 1, _segment_columns(Ws, r), out.dtype)
    _bands(H, B,
           lambda k: band_kernel(guide_s, value_s, f, r, c1, c2, H, Ws, B, k, bsum, bw),
           lambda y0, y1: _segment_rows(value_s, f, r, Ws, B, bsum, bw, y0, y1, out))


def _band_sums(H, B, r, C, columns, dtype):
    """The bands' sums ``bsum`` (n_bands, C, B + r, columns) and weight sums ``bw`` (n_bands, B + r, columns),
    uninitialised (each band zeroes its own), 64-byte aligned, as numba's own arrays in the kernel were at
    least (numpy's 16 slow the vector loops)."""
    from ._threads import _aligned

    n_bands = (H + B - 1) // B + 1  # band 0 is the top band, rows [-r, 0)
    return (_aligned((n_bands, C, B + r, columns), dtype, zeros=False),
            _aligned((n_bands, B + r, columns), dtype, zeros=False))


def _bands(H, B, run_band, add_rows):
    """``run_band(k)`` for every band of ``B`` rows (band 0: the top band) on Python threads, and
    ``add_rows(y0, y1)`` for each band's rows as soon as it and the band above are done.

    The bands are handed out one at a time (:func:`_on_threads`; a static split leaves the faster thread
    waiting for the slower one when other work shares the cores); the kernels release the GIL. Python threads
    instead of a numba ``prange``: no parallel-loop compilation on the first run (docs/benchmarks.md,
    "Pixelwise first run"). Each band writes only its own sums and a row adds the same terms in the same
    order whichever thread ran them, so the result does not depend on the number of threads. An exception in a
    band reaches the caller.
    """
    from ._threads import _n_threads

    n_bands = (H + B - 1) // B + 1
    done = [False] * n_bands
    lock = threading.Lock()

    def band(k):
        run_band(k)
        # band j's rows need bands j and j - 1: whichever of the two ends last adds them (under the lock exactly
        # one sees both done), so the sums are added while other bands still run, without a second round
        with lock:
            done[k] = True
            ready = [j for j in (k, k + 1) if 0 < j < n_bands and done[j] and done[j - 1]]
        for j in ready:
            add_rows((j - 1) * B, min(j * B, H))

    _on_threads(band, n_bands, min(_n_threads(), n_bands))


def _on_threads(task, n, workers):
    """``task(k)`` for ``k`` in ``range(n)``, handed out one at a time to the calling thread and ``workers - 1``
    helper threads (a pool made per call, or numba's, cost 2-7 ms of a 25 ms call on 2 threads); the first
    exception raised by a task is raised here once the threads have stopped."""
    if workers <= 1:
        for k in range(n):
            task(k)
        return
    lock = threading.Lock()
    todo = iter(range(n))
    errors = []

    def work():
        while True:
            with lock:
                k = None if errors else next(todo, None)
            if k is None:
                return
            try:
                task(k)
            except BaseException as exc:  # handed to the calling thread, which raises it
                with lock:
                    errors.append(exc)
                return

    helpers = [threading.Thread(target=work, daemon=True) for _ in range(workers - 1)]
    for t in helpers:
        t.start()
    try:
        work()
    except BaseException as exc:  # e.g. Ctrl-C in this thread: the helpers take no further task
        with lock:
            errors.append(exc)
        raise
    finally:
        for t in helpers:
            t.join()
    if errors:
        raise errors[0]


def nlmeans_chw(value, guide, sigma, h, patch_size, search_size):
    """NL-means on channel-first float arrays (no validation): the core call of every entry point.

    ``value`` (Cv, H, W) and ``guide`` (Cg, H, W) share one float dtype (float32 or float64; float64 is the
    exact path with libm's exp, float32 the fast one); ``guide`` may be ``value`` itself. Boundary: numpy's
    ``reflect`` padding (mirror without repeating the edge pixel). Returns a new (Cv, H, W) array.
    """
    dtype = value.dtype.type
    f, r = patch_size // 2, search_size // 2
    a, bb = weight_constants(guide.shape[0] * patch_size * patch_size, sigma, h, dtype)
    out = np.empty(value.shape, dtype=dtype)
    if guide.shape[0] == value.shape[0] == 1:
        _run_segments(_nlm_segments_band, guide, value, f, r, a, bb, _config.band_rows(r), out)
        return out
    value_p, guide_p, _ = _padded_for_pixelwise(value, guide, f, r)
    _run_banded(_nlm_pixelwise_band, guide_p, value_p, f, r, a, bb, _config.band_rows(r), out)
    return out


def patch_mean(values, patch_size):
    """The mean of ``values`` (H, W) over the ``patch_size``-square patch centred on each pixel, on numpy's
    ``reflect`` extension, in float64; exactly the value itself where the patch is constant (a constant σ map
    then gives the scalar σ's constants bit for bit). ``values`` of any dimension with ``patch_size`` one odd
    side per axis (a tuple) takes the box mean over that box (3-D patches: :mod:`nlmeans.nlbayes`)."""
    from scipy.ndimage import maximum_filter, minimum_filter

    values = np.asarray(values, dtype=np.float64)
    sizes = (patch_size,) * values.ndim if np.ndim(patch_size) == 0 else tuple(patch_size)
    # each mean summed from its own window in a fixed order (a running sum's rounding would depend on where
    # the array starts, and strips of a map must see the whole map's values bit for bit: nlmeans.tiles)
    mean = np.pad(values, [(s // 2, s // 2) for s in sizes], mode="reflect")
    for axis, (n, size) in enumerate(zip(values.shape, sizes, strict=True)):
        lead = (slice(None),) * axis
        acc = mean[lead + (slice(0, n),)].copy()
        for k in range(1, size):
            acc += mean[lead + (slice(k, k + n),)]
        mean = acc
    mean /= math.prod(sizes)
    lo = minimum_filter(values, sizes, mode="mirror")
    hi = maximum_filter(values, sizes, mode="mirror")
    return np.where(lo == hi, lo, np.clip(mean, lo, hi))


def map_weight_constants(n_terms, sigma_map, h_map, patch_size, dtype):
    """Per-pixel weight constants of the σ-map kernel: :func:`nlmeans.kernels.weight_constants` pixel by pixel.

    ``a = 1 / (n_terms h²)`` with each pixel's h and ``B = n_terms σ̄²``, σ̄² the patch mean of σ²
    (:func:`patch_mean`), so that a pair's bias is ``B(p) + B(q) = n_terms (σ̄_p² + σ̄_q²)``. The same clamps:
    ``a <= 1e30``, σ² ``<= 1e30``, ``B <= 1e30 / 2`` and ``2 B max(a) <= 1e30`` (for a constant map exactly
    the scalar rule, ``bb = 2B``), so no pair makes ``inf · 0`` or ``inf − inf``. Returns ``(a, B)``, (H, W)
    arrays in ``dtype``.
    """
    inv_h = 1.0 / np.asarray(h_map, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        a = np.minimum(inv_h * inv_h / n_terms, WEIGHT_CAP)
        # σ² capped before the mean (a running sum over an inf would give inf - inf); above the cap B is
        # capped anyway
        s2 = np.minimum(np.asarray(sigma_map, dtype=np.float64) ** 2, WEIGHT_CAP)
        half = np.minimum(patch_mean(s2, patch_size) * n_terms, WEIGHT_CAP / 2)
    a_max = float(a.max())
    if 2.0 * float(half.max()) * a_max > WEIGHT_CAP:
        half = np.minimum(half, WEIGHT_CAP / (2.0 * a_max))
    return a.astype(dtype), half.astype(dtype)


def nlmeans_map_chw(value, sigma_map, h_map, patch_size, search_size):
    """Pixelwise NL-means with a noise level per pixel, on channel-first float arrays (no validation).

    ``value`` (C, H, W) float32 or float64; ``sigma_map`` and ``h_map`` (H, W), on the array's scale. The weight
    of q for p is ``exp(-max(d² - (σ̄_p² + σ̄_q²), 0) / h_p²)``: σ̄² the patch mean of σ² (the expected squared
    difference of two noisy patches is their clean one plus σ̄_p² + σ̄_q²) and h_p p's own h. Constant maps give
    :func:`nlmeans_chw`'s result bit for bit. Returns a new (C, H, W) array.
    """
    dtype = value.dtype.type
    f, r = patch_size // 2, search_size // 2
    a, half = map_weight_constants(value.shape[0] * patch_size * patch_size, sigma_map, h_map, patch_size, dtype)
    if value.shape[0] == 1:
        out = np.empty(value.shape, dtype=dtype)
        _run_segments(_nlm_segments_map_band, value, value, f, r, a, half, _config.band_rows(r), out)
        return out
    value_p, _, pad = _padded_for_pixelwise(value, value, f, r)
    amap = np.pad(a, pad[1:], mode="reflect")
    bmap = np.pad(half, pad[1:], mode="reflect")
    out = np.empty(value.shape, dtype=dtype)
    _run_banded(_nlm_pixelwise_map_band, value_p, value_p, f, r, amap, bmap, _config.band_rows(r), out)
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
