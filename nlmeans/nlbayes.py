"""NL-Bayes: the non-local Bayesian denoiser of Lebrun, Buades & Morel (2013), two stages, numba kernels."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np

from . import _config
from ._progress import report
from .kernels.nlbayes import _nlb_band, _nlbayes3_pass

# Orthonormal colour transform (Y, U, V rows): white noise of std σ stays white with std σ in every channel.
_YUV = np.array(
    [
        [1 / np.sqrt(3), 1 / np.sqrt(3), 1 / np.sqrt(3)],
        [1 / np.sqrt(2), 0.0, -1 / np.sqrt(2)],
        [1 / np.sqrt(6), -2 / np.sqrt(6), 1 / np.sqrt(6)],
    ]
)


def _pair(value):
    """(stage 1, stage 2) from one value or a pair."""
    return (value, value) if np.ndim(value) == 0 else tuple(value)


def _n_threads():
    """Threads for the row bands: numba's setting of this thread (``numba.set_num_threads``), 1 with
    ``NLMEANS_SERIAL=1`` (the bounds-checked CI step runs the kernels serially)."""
    if not _config.PARALLEL_JIT["parallel"]:
        return 1
    import numba

    return numba.get_num_threads()


def _nlbayes_pass(noisy, basic, stage, f, r, n_sim, step, sigma2, beta, gamma, band_rows, out, what="NL-Bayes"):
    """One NL-Bayes stage on padded ``(C, H + 2 pad, W + 2 pad)`` arrays, ``pad = r + f``, into ``out``
    ``(C, H, W)`` (estimates falling in the padding are dropped); returns ``out``.

    ``stage``, ``basic`` as in :func:`nlmeans.kernels.nlbayes._nlb_band`. Bands of ``max(band_rows, 2 pad)``
    reference rows aligned to row 0, handed out to threads as they come free (the kernel releases the GIL),
    each adding its sums into the image-wide ones under a lock. A band reaches ``pad`` rows beyond itself and
    is at least ``2 pad`` rows high, so every pixel gets at most two bands' sums, and ``(0 + a) + b`` is
    ``(0 + b) + a`` exactly: the result does not depend on the number of threads nor on the order. Python
    threads instead of a numba ``prange``: no parallel-loop compilation (it took longer than the band itself).
    The bands done are reported to a listener (:func:`nlmeans._progress.report`, ``what``) as they finish.
    """
    pad = r + f
    C, H, W = out.shape
    B = max(band_rows, 2 * pad, 1)
    gnum = np.zeros((C, H, W), dtype=out.dtype)
    gden = np.zeros((H, W), dtype=out.dtype)
    lock = threading.Lock()

    def band(b0):
        b1 = min(b0 + B, H)
        num, den = _nlb_band(noisy, basic, stage, b0, b1, f, r, n_sim, step, sigma2, beta, gamma)
        y0, y1 = max(b0 - pad, 0), min(b1 + pad, H)
        # silent overflow, as the kernel's own sums (numpy's error state is per thread, and the callers check
        # the result: nlbayes_checked)
        with lock, np.errstate(over="ignore", invalid="ignore"):
            gnum[:, y0:y1] += num[:, y0 - b0 + pad:y1 - b0 + pad, pad:pad + W]
            gden[y0:y1] += den[y0 - b0 + pad:y1 - b0 + pad, pad:pad + W]

    starts = range(0, H, B)
    workers = min(_n_threads(), len(starts))
    if workers <= 1:
        for i, b0 in enumerate(starts):
            band(b0)
            report(i + 1, len(starts), what)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for i, done in enumerate(as_completed([pool.submit(band, b0) for b0 in starts])):
                done.result()
                report(i + 1, len(starts), what)
    np.divide(gnum, gden, out=out)
    return out


def nlbayes_chw(value, sigma, *, patch_size, search_size, n_similar, beta, gamma, step, stages=2):
    """NL-Bayes on a channel-first float array ``(C, H, W)`` (no validation); σ on the array's scale.

    ``patch_size``, ``search_size`` and ``step``: one value for both stages or a pair (stage 1, stage 2);
    ``n_similar``, ``beta`` and ``gamma`` are pairs (stage 1, stage 2).

    Stage 1: for every reference patch (centres on a grid of ``min(step, patch_size)`` pixels, the last
    row and column included, skipping centres already estimated as members of an earlier group of the same
    row band), the reference and its ``n_similar[0] - 1`` nearest patches in the search window (squared
    distance on the first channel) form a group; with its empirical mean μ and covariance C every patch P
    of the group is estimated as μ + (C − β₁σ²I) C⁻¹ (P − μ), or as the group's mean pixel value when the
    group's variance is at most γ₁σ² (a homogeneous area). Stage 2: groups of ``n_similar[1]`` found on the
    basic (stage-1) image; the covariance C̃ of the basic patches gives μ + C̃ (C̃ + β₂σ²I)⁻¹ (P − μ) for
    the noisy patches, μ their mean (homogeneous if the basic group's variance is at most γ₂σ²). Each
    stage averages all the estimates of a pixel with equal weights.

    Three channels are turned into an orthonormal (Y, U, V) first (the noise stays white with std σ) and
    back at the end; groups are found on Y; every channel gets its own Gaussian model. Boundary: numpy
    ``reflect`` padding. Returns a new ``(C, H, W)`` array of the input's dtype.

    ``sigma`` may be an ``(H, W)`` map of σ per pixel, the same for every channel (the orthonormal transform
    keeps a pixel's noise std σ_p in Y, U and V). With σ̄² the mean of σ² over a patch: stage 1's squared
    distance to a candidate q loses ``P² σ̄_q²`` (its noise's expected share; the reference's is the same for
    every candidate), so groups gather patches alike in signal, and each group uses the mean σ̄² of its
    patches where σ² enters (homogeneity test, β σ², the Wiener step), in both stages. A constant map gives
    the scalar result bit for bit.

    References
    ----------
    .. [1] M. Lebrun, A. Buades and J.-M. Morel, "A nonlocal Bayesian image denoising algorithm", SIAM J.
       Imaging Sciences 6(3), 2013.
    .. [2] M. Lebrun, A. Buades and J.-M. Morel, "Implementation of the Non-Local Bayes (NL-Bayes) image
       denoising algorithm", Image Processing On Line 3, 2013.
    """
    dtype = value.dtype.type
    if not np.any(sigma):  # both stages are then the identity (X - 0 · ...); skip the singular covariances
        return np.array(value, dtype=dtype, copy=True)
    C = value.shape[0]
    yuv = C == 3
    v = np.einsum("ij,jhw->ihw", _YUV.astype(dtype), value) if yuv else value
    v = np.ascontiguousarray(v, dtype=dtype)
    patches, sizes, steps = (_pair(x) for x in (patch_size, search_size, step))
    s2 = dtype(sigma * sigma) if np.ndim(sigma) == 0 else None
    if s2 is None:
        from .nlm import patch_mean
    out = v
    basic = None
    for stage in range(1, stages + 1):
        f = int(patches[stage - 1]) // 2
        # a grid no wider than a patch: every pixel lies in a reference patch
        step = min(int(steps[stage - 1]), 2 * f + 1)
        r = sizes[stage - 1] // 2
        widths = ((0, 0), (r + f, r + f), (r + f, r + f))
        if np.ndim(sigma):  # the patch mean of σ² at every padded patch centre (the kernel's sigma2 map)
            s2 = patch_mean(np.pad(np.square(sigma), r + f, mode="reflect"), 2 * f + 1).astype(dtype)
        vp = np.pad(v, widths, mode="reflect")
        bp = vp if basic is None else np.pad(basic, widths, mode="reflect")
        out = np.empty(v.shape, dtype=dtype)
        _nlbayes_pass(vp, bp, stage, f, r, int(n_similar[stage - 1]), int(step), s2, dtype(beta[stage - 1]),
                      dtype(gamma[stage - 1]), _config.BAND_ROWS, out, f"NL-Bayes stage {stage}/{stages}")
        basic = out
    if yuv:
        out = np.einsum("ji,jhw->ihw", _YUV.astype(dtype), out)
    return np.ascontiguousarray(out, dtype=dtype)


#: σ outside [2^-24, 2^24] is brought inside by a power of two (see :func:`nlbayes_checked`)
SIGMA_SAFE_EXPONENT = 24


def nlbayes_checked(value, sigma, params, run=None):
    """``run(value, sigma, **params)`` (default :func:`nlbayes_chw` with ``params`` from
    :func:`nlmeans.presets.resolve_nlbayes`; or :func:`nlbayes_3d_chw`) on data of any scale, refusing a
    result that overflowed.

    NL-Bayes is scale-equivariant, but float32 is not: σ² underflows for tiny data (1e-30: σ² = 0, no
    denoising) and covariances overflow for huge data. So a σ outside [2^-24, 2^24] is first scaled into that
    range by a power of two, which is exact, and the result scaled back; the scale depends on σ alone, so
    strips reproduce it, and data in the usual ranges is untouched. When that scaling would take the data past
    the float range (σ tiny next to the data, not the data tiny), the plain run is used.
    """
    run = nlbayes_chw if run is None else run
    scale = 1.0
    level = float(np.max(sigma))  # a σ map (nlbayes_chw only) is scaled by its largest σ
    if level > 0:
        exponent = math.frexp(level)[1]
        if abs(exponent) > SIGMA_SAFE_EXPONENT:
            # the factor itself must be a normal number of the data's dtype (float32: 2^±126)
            limit = 100 if value.dtype == np.float32 else 1000
            scale = math.ldexp(1.0, max(-limit, min(limit, exponent)))
    if scale != 1.0 and value.size:
        # a σ far below the data (1e-300 on [0, 1]) would scale the data past the float range: the data are
        # not tiny then, only σ, and the plain run is the right one. (This looks at the values, so strips
        # could decide differently from the whole image only when σ is below ~1e-16 of their values.)
        safe = math.sqrt(float(np.finfo(value.dtype).max)) * 1e-6
        if float(np.abs(value).max()) / scale > safe:
            scale = 1.0
    with np.errstate(all="ignore"):  # overflow is caught just below
        if scale == 1.0:
            out = run(value, sigma, **params)
        else:
            dtype = value.dtype.type
            out = run(value / dtype(scale), sigma / scale, **params) * dtype(scale)
    if not np.isfinite(out).all():
        raise ValueError(
            f"NL-Bayes overflowed on this image (values up to {float(np.abs(value).max()):.3g} in "
            f"{value.dtype}); pass float64 input, rescale it, or use method='pixelwise'"
        )
    return out


def stage_bands(params, band_rows=_config.BAND_ROWS):
    """``[(B, pad, step), ...]`` per stage as :func:`nlbayes_chw` runs them: rows per band of the kernel
    (bands aligned to row 0, the "already processed" mask restarted in each), the rows a band reads beyond
    its own (``pad = r + f``) and the reference grid step. :mod:`nlmeans.tiles` derives strip halos from it."""
    patches, sizes, steps = _pair(params["patch_size"]), _pair(params["search_size"]), _pair(params["step"])
    out = []
    for patch, size, step in zip(patches, sizes, steps, strict=True):
        f, r = int(patch) // 2, int(size) // 2
        out.append((max(band_rows, 2 * (r + f), 1), r + f, min(int(step), 2 * f + 1)))
    return out


def nlbayes_3d_chw(value, sigma, *, patch_size, patch_z, search_size, search_z, n_similar, beta, gamma, step,
                   step_z, video, band_slices=8, stages=2):
    """NL-Bayes on a channel-first float stack ``(C, Z, H, W)``: a volume, or a video (Z = time); σ on the
    array's scale (no validation).

    Patches are ``patch_z × patch_size × patch_size`` (slices × rows × columns), the search window
    ``search_z × search_size × search_size``; every size and ``step``, ``step_z`` (the reference grid along
    the rows/columns and along the slices) may be a pair (stage 1, stage 2); ``n_similar``, ``beta`` and
    ``gamma`` are pairs. The two stages are those of :func:`nlbayes_chw` with 3-D patches. ``video=False``:
    ``reflect`` padding on all three axes (candidates may be centred in the padding, as in 2-D); ``video=True``:
    the search window is cut at the first and last frame (candidates are centred in existing frames), patches
    still reach ``reflect``-padded frames beyond them. Reference slices are cut into bands of ``band_slices``
    (at least twice the slice reach ``search_z // 2 + patch_z // 2``) aligned to slice 0, the "already
    processed" mask restarting at each band. Returns a new ``(C, Z, H, W)`` array of the input's dtype.

    References
    ----------
    .. [1] P. Arias and J.-M. Morel, "Video denoising via empirical Bayesian estimation of space-time
       patches", J. Math. Imaging and Vision 60(1), 2018.
    """
    dtype = value.dtype.type
    if sigma == 0:
        return np.array(value, dtype=dtype, copy=True)
    yuv = value.shape[0] == 3
    v = np.einsum("ij,j...->i...", _YUV.astype(dtype), value) if yuv else value
    v = np.ascontiguousarray(v, dtype=dtype)
    patches, patches_z, sizes, sizes_z, steps, steps_z = (
        _pair(x) for x in (patch_size, patch_z, search_size, search_z, step, step_z))
    s2 = dtype(sigma * sigma)
    out = v
    basic = None
    for k in range(stages):
        f, fz = int(patches[k]) // 2, int(patches_z[k]) // 2
        r, rz = int(sizes[k]) // 2, int(sizes_z[k]) // 2
        # grids no wider than a patch: every voxel lies in a reference patch
        st, st_z = min(int(steps[k]), 2 * f + 1), min(int(steps_z[k]), 2 * fz + 1)
        zpad = fz if video else rz + fz
        widths = ((0, 0), (zpad, zpad), (r + f, r + f), (r + f, r + f))
        vp = np.pad(v, widths, mode="reflect")
        bp = vp if basic is None else np.pad(basic, widths, mode="reflect")
        out = np.empty(v.shape, dtype=dtype)
        _nlbayes3_pass(vp, bp, k + 1, zpad, fz, f, rz, r, bool(video), int(n_similar[k]), st, st_z, s2,
                       dtype(beta[k]), dtype(gamma[k]), int(band_slices), out)
        basic = out
    if yuv:
        out = np.einsum("ji,j...->i...", _YUV.astype(dtype), out)
    return np.ascontiguousarray(out, dtype=dtype)
