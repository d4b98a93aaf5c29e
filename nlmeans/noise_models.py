"""Variance-stabilising transforms for signal-dependent noise, their exact unbiased inverses, and a Gaussian
denoiser run inside them (:func:`denoise_in_model`: the Poisson passes, the Rician dark step). Gaussian noise
whose σ varies per channel or over the image is :mod:`nlmeans.sigma_arrays`.

A denoiser built for white Gaussian noise of one σ runs on ``f(y)``, where ``f`` makes the noise's variance
(approximately) 1 whatever the signal; its output D estimates E[f(y) | x], not f(x), so the inverse that
maps D back must be the *exact unbiased* inverse D ↦ x with E[f(y) | x] = D. The algebraic inverse f⁻¹(D)
is badly biased at low counts (Mäkitalo & Foi 2011).

Models (values, gain and σ all in the image's own units):

- ``"poisson"``: y = gain · Poisson(x / gain);
- ``"poisson-gaussian"``: y = gain · Poisson(x / gain) + N(0, σ²);
- ``"rician"``: y = |x + n₁ + i n₂|, n₁, n₂ ~ N(0, σ²), x ≥ 0.

Poisson and Poisson–Gaussian use the generalized Anscombe transform (GAT) and the closed-form approximation
of its exact unbiased inverse (Mäkitalo & Foi 2011, 2013). Rician uses a variance-stabilising transform
built numerically from the Rice law's moments (the construction of Foi 2011) and its exact unbiased inverse
tabulated by quadrature of the Rice density; everything is computed once on the σ = 1 scale (the Rice law is
a scale family, so y/σ covers every σ) and cached.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import numpy as np

_SQRT_3_2 = math.sqrt(1.5)
#: GAT of a zero count (σ = 0): every D at or below it inverts to x = 0
_GAT_ZERO = 2.0 * math.sqrt(3.0 / 8.0)


# --------------------------------------------------------------------------------------------------------
# Poisson and Poisson–Gaussian: the generalized Anscombe transform


def gat(y, gain=1.0, sigma=0.0):
    """Generalized Anscombe transform of y = gain · Poisson(x / gain) + N(0, σ²).

    f(y) = (2 / gain) · sqrt(gain · y + 3/8 · gain² + σ²), and 0 where the root's argument is negative.
    Its output has variance ≈ 1 (exactly 1 asymptotically) for every x; ``sigma = 0`` is Anscombe's
    transform 2 sqrt(y/gain + 3/8) (Mäkitalo & Foi 2013, eq. 4).
    """
    y = np.asarray(y, dtype=np.float64)
    arg = gain * y + 0.375 * gain * gain + sigma * sigma
    return (2.0 / gain) * np.sqrt(np.maximum(arg, 0.0))


def gat_inverse(d, gain=1.0, sigma=0.0, *, kind="closed-form"):
    """Inverse of :func:`gat`: the x (image units) whose E[gat(y) | x] is ``d``.

    Parameters
    ----------
    d : array_like
        Values on the stabilised scale, typically a denoiser's output.
    gain, sigma : float
        The model's parameters, as in :func:`gat`.
    kind : {"closed-form", "asymptotic", "algebraic"}
        ``"closed-form"``: Mäkitalo & Foi's closed-form approximation of the exact unbiased inverse,
        I(D) = D²/4 + √(3/2)/(4D) − 11/(8D²) + 5√(3/2)/(8D³) − 1/8 − σ², on counts (σ in counts,
        σ/gain), with I = 0 for D ≤ 2√(3/8) (the GAT of a zero count; the D⁻³ term would turn the formula
        up again below it); the exact unbiased inverse for Poisson to within 0.3 % of x at x ≥ 0.5
        (tests/test_noise_models.py), and for σ > 0 the approximation of Mäkitalo & Foi 2013.
        ``"asymptotic"``: D²/4 − 1/8 − σ² (unbiased for large counts only). ``"algebraic"``: D²/4 − 3/8 − σ²,
        the plain inverse of f (biased: kept for comparison).

    Returns
    -------
    x : ndarray of float64
        Non-negative, in the image's units (``gain`` times counts).
    """
    d = np.asarray(d, dtype=np.float64)
    s2 = (sigma / gain) ** 2
    if kind == "algebraic":
        counts = d * d / 4.0 - 0.375 - s2
    elif kind == "asymptotic":
        counts = d * d / 4.0 - 0.125 - s2
    elif kind == "closed-form":
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            inv = 1.0 / d
            counts = (d * d / 4.0 + _SQRT_3_2 / 4.0 * inv - 11.0 / 8.0 * inv * inv
                      + 5.0 / 8.0 * _SQRT_3_2 * inv * inv * inv - 0.125 - s2)
        counts = np.where(d > _GAT_ZERO, counts, 0.0)
    else:
        raise ValueError(f"kind={kind!r} is not an inverse; allowed: 'closed-form', 'asymptotic', 'algebraic'")
    return gain * np.maximum(counts, 0.0)


def bin_counts(x, k):
    """Sums of ``x`` (…, H, W) over disjoint k×k blocks: shape (…, ⌈H/k⌉, ⌈W/k⌉).

    A sum of k² independent Poisson counts is Poisson with the sum of their means, so the binned image of
    y = gain · Poisson(x / gain) is the same model at k² times the intensity (and read noise of std k σ),
    on a k² times smaller image (Azzari & Foi 2016, the binning operator B). When H or W is not a multiple of
    k the image is first extended at its bottom and right by mirror symmetry (the edge pixel repeated), so
    every block sums k² pixels and the last row and column of blocks have the same mean as their neighbours
    (their counts include mirrored pixels: those few blocks are a little noisier than Poisson).

    Parameters
    ----------
    x : array_like
        Counts or intensities, the last two axes spatial (H, W); leading axes (channels) are kept.
    k : int
        The block side (1: ``x`` as float64, unchanged).

    Returns
    -------
    sums : ndarray of float64
        Shape (…, ⌈H/k⌉, ⌈W/k⌉): block i, j sums rows i·k … i·k + k − 1 and columns j·k … j·k + k − 1.
    """
    x = np.asarray(x, dtype=np.float64)
    if k == 1:
        return x
    *lead, height, width = x.shape
    pad = [(0, 0)] * len(lead) + [(0, -height % k), (0, -width % k)]
    x = np.pad(x, pad, mode="symmetric")
    blocks = x.reshape(*lead, x.shape[-2] // k, k, x.shape[-1] // k, k)
    return blocks.sum(axis=(-3, -1))


#: refinement steps of :func:`debin`: each adds the interpolated residual of the binned values
DEBIN_ITERATIONS = 9


@functools.lru_cache(maxsize=16)
def _spline_upsampler(n_blocks, k, n):
    """The (n, n_blocks) matrix of cubic-spline interpolation from block centres to pixels along one axis.

    Column j is the interpolation of the j-th unit impulse (``scipy.ndimage.zoom`` in grid mode: block i
    covers pixels i·k … i·k + k − 1, its centre at i·k + (k − 1)/2; beyond the outer centres the edge value
    continues). The 2-D interpolation is separable, so it is U_h · R · U_wᵀ: two small matrix products
    in place of a spline evaluation at every pixel (cached: the matrix depends on the sizes only).
    """
    from scipy import ndimage, sparse

    parts = []
    for start in range(0, n_blocks, 256):  # a band of columns at a time: no n × n_blocks dense matrix
        width = min(256, n_blocks - start)
        impulses = np.zeros((n_blocks, width))
        impulses[start + np.arange(width), np.arange(width)] = 1.0
        dense = ndimage.zoom(impulses, (k, 1), order=3, mode="nearest", grid_mode=True)[:n]
        # the spline's weights decay by 0.27 a block: beyond 1e-12 they are dropped, and the sparse product
        # runs in one thread (multithreaded BLAS on these small matrices waits on a busy machine)
        dense[np.abs(dense) < 1e-12] = 0.0
        parts.append(sparse.csr_array(dense))
    return sparse.hstack(parts, format="csr")


def debin(binned, shape, k, iterations=DEBIN_ITERATIONS):
    """Back from block sums (…, ⌈H/k⌉, ⌈W/k⌉) to an image of ``shape`` (…, H, W) whose k×k sums match them.

    The debinning of Azzari & Foi (2016): starting from 0, each step adds the residual's block means
    (binned − :func:`bin_counts` of the current image, divided by k²) interpolated from the block centres
    to every pixel by a cubic spline, and clips at 0 (the estimate is an intensity). The first step alone
    is the interpolation of the block means; the next ones remove the smoothing that interpolation leaves
    in the block sums. A constant comes back constant; ``k = 1`` returns ``binned`` itself.

    Parameters
    ----------
    binned : array_like
        Block sums as :func:`bin_counts` returns them (…, ⌈H/k⌉, ⌈W/k⌉), e.g. a binned pass's estimate.
    shape : tuple of int
        The full-resolution shape (…, H, W), the leading axes those of ``binned``.
    k : int
        The block side the sums were taken over.
    iterations : int
        Interpolation steps (at least 1; 1 is the plain spline interpolation of the block means).

    Returns
    -------
    image : ndarray of float64
        Shape ``shape``, non-negative, per-pixel values (the block sums divided among the k² pixels).
    """
    binned = np.asarray(binned, dtype=np.float64)
    if k == 1:
        return binned
    height, width = shape[-2:]
    up_h = _spline_upsampler(binned.shape[-2], k, height)
    up_w = _spline_upsampler(binned.shape[-1], k, width)
    out = np.zeros(tuple(shape), dtype=np.float64)
    for _ in range(max(1, iterations)):
        residual = (binned - bin_counts(out, k)) / (k * k)
        step = [up_h @ (up_w @ r.T).T for r in residual.reshape(-1, *residual.shape[-2:])]
        out = np.maximum(out + np.reshape(step, out.shape), 0.0)
    return out


# --------------------------------------------------------------------------------------------------------
# Rician: a numerically built VST on the σ = 1 scale


def rice_moments(nu):
    """Mean and standard deviation of Rice(ν, σ = 1), the magnitude |ν + n₁ + i n₂|, n ~ N(0, 1).

    mean = √(π/2) L_{1/2}(−ν²/2), with L_{1/2}(−t) = e^{−t/2} [(1 + t) I₀(t/2) + t I₁(t/2)] written with the
    exponentially scaled Bessel functions (no overflow at large ν); variance = 2 + ν² − mean².
    """
    from scipy.special import i0e, i1e

    nu = np.asarray(nu, dtype=np.float64)
    t = nu * nu / 2.0
    mean = math.sqrt(math.pi / 2.0) * ((1.0 + t) * i0e(t / 2.0) + t * i1e(t / 2.0))
    var = np.maximum(2.0 + nu * nu - mean * mean, 0.0)
    return mean, np.sqrt(var)


#: ν grid of the tabulated Rician transform (σ = 1): dense where the law changes shape, up to where it is
#: Gaussian to ~1e-4 (beyond, the transform is y + constant)
_RICE_NU_MAX = 40.0


@functools.lru_cache(maxsize=1)
def _rice_tables():
    """(y grid, f on it, ν grid, E[f(y) | ν] on it) of the Rician VST on the σ = 1 scale.

    f(y) = ∫ dt / s(m⁻¹(t)) from m(0) (the classical VST built from the law's mean m(ν) and std s(ν)),
    extended below m(0) linearly with slope 1/s(0) and above m(ν_max) with slope 1 (s → 1). E[f(y) | ν] is
    the quadrature of f against the Rice density y e^{−(y−ν)²/2} I₀e(yν) on a fine y grid.
    """
    from scipy.special import i0e

    nu = np.concatenate([np.linspace(0.0, 8.0, 401), np.linspace(8.0, _RICE_NU_MAX, 161)[1:]])
    mean, std = rice_moments(nu)
    # f on the means: trapezoid of 1/std over the mean
    f_mean = np.concatenate([[0.0], np.cumsum(np.diff(mean) * 0.5 * (1 / std[1:] + 1 / std[:-1]))])
    y = np.linspace(0.0, _RICE_NU_MAX + 12.0, 5201)
    f_y = _rice_vst_on(y, mean, f_mean, std)
    # E[f(y) | ν] by quadrature of the Rice density on the y grid
    dy = y[1] - y[0]
    dens = y[None, :] * np.exp(-0.5 * (y[None, :] - nu[:, None]) ** 2) * i0e(y[None, :] * nu[:, None])
    dens /= dens.sum(axis=1, keepdims=True) * dy
    expected = dens @ f_y * dy
    return mean, f_mean, std, nu, expected


def _rice_vst_on(y, mean, f_mean, std):
    """The tabulated VST evaluated at ``y`` (σ = 1 scale), with its linear extensions."""
    out = np.interp(y, mean, f_mean)
    below = y < mean[0]
    out[below] = (y[below] - mean[0]) / std[0]
    above = y > mean[-1]
    out[above] = f_mean[-1] + (y[above] - mean[-1])
    return out


def rician_vst(y, sigma):
    """Variance-stabilising transform for Rician data of noise level ``sigma``: f(y/σ), variance ≈ 1.

    Built as in Foi (ISBI 2011) from the Rice law's mean and standard deviation (the classical integral
    of 1/std, not Foi's optimised transform): measured stabilised std within 8 % of 1 for ν/σ ≥ 0.5 and
    0.89 at ν = 0, the Rayleigh background (tests/test_noise_models.py).
    """
    mean, f_mean, std, _, _ = _rice_tables()
    y = np.asarray(y, dtype=np.float64) / sigma
    return _rice_vst_on(y.ravel(), mean, f_mean, std).reshape(y.shape)


def rician_vst_inverse(d, sigma):
    """Exact unbiased inverse of :func:`rician_vst`: the x ≥ 0 with E[rician_vst(y) | x] = d.

    Tabulated E[f(y) | ν] inverted by interpolation (it increases with ν); below its value at ν = 0 the
    estimate is 0; above ν_max = 40 (SNR 40) the offset E[f] − ν is constant to 1e-4 and extends it.
    """
    _, _, _, nu, expected = _rice_tables()
    d = np.asarray(d, dtype=np.float64)
    flat = d.ravel()
    out = np.interp(flat, expected, nu)
    above = flat > expected[-1]
    out[above] = nu[-1] + (flat[above] - expected[-1])
    return sigma * out.reshape(d.shape)


# --------------------------------------------------------------------------------------------------------
# Running a Gaussian denoiser inside a transform


@dataclass(frozen=True)
class Stabilised:
    """A variance-stabilised image mapped affinely onto [0, 1], and the way back.

    Attributes
    ----------
    image : ndarray of float64
        (f(y) − lo) / span, with f the model's transform: values in [0, 1], noise σ ≈ ``sigma``.
    sigma : float
        The noise's σ on that scale, 1 / span (0 for a constant image): the σ to give a Gaussian denoiser.
    lo, span : float
        The affine map: f(y) = lo + span · image.
    noise : str
        The model (``"poisson"``, ``"poisson-gaussian"`` or ``"rician"``).
    model_sigma, gain : float
        The model's parameters (σ 0 for ``"poisson"``; gain unused for ``"rician"``).
    """

    image: np.ndarray
    sigma: float
    lo: float
    span: float
    noise: str
    model_sigma: float
    gain: float

    def invert(self, out):
        """The exact unbiased inverse of a denoiser's output on the [0, 1] scale: the estimate of x
        (float64, in the model's units)."""
        d = np.asarray(out, dtype=np.float64) * self.span + self.lo
        if self.noise == "rician":
            return rician_vst_inverse(d, self.model_sigma)
        return gat_inverse(d, self.gain, self.model_sigma)


def model_transform(x, noise, sigma, gain=1.0):
    """The model's variance-stabilising transform of ``x`` (model values, float), unmapped: noise σ ≈ 1."""
    return rician_vst(x, sigma) if noise == "rician" else gat(x, gain, sigma or 0.0)


def stabilise(x, noise, sigma, gain=1.0, *, bounds=None):
    """The variance-stabilised image of ``x`` (model values, float) under ``noise``, mapped onto [0, 1].

    The map onto [0, 1] makes the stabilised noise σ = 1 read as σ = 1 / span on the usual float scale, so
    a Gaussian denoiser's presets (chosen by σ on that scale) see an ordinary image; every denoiser run on
    ``Stabilised.image`` with ``Stabilised.sigma`` is thus "σ = 1 on the stabilised scale". ``sigma`` and
    ``gain`` are the model's parameters (``sigma > 0`` for ``"rician"``). ``bounds``: the (min, max) of
    :func:`model_transform` over the whole image when ``x`` is a part of it (a slab of a stack), so that
    every part is mapped as the whole is; None: those of ``x``.
    """
    t = model_transform(x, noise, sigma, gain)
    lo, hi = (float(t.min()), float(t.max())) if bounds is None else (float(bounds[0]), float(bounds[1]))
    span = hi - lo
    if span == 0:  # a constant image: nothing to denoise, the inverse of its one value
        image, inner_sigma, span = np.zeros(t.shape), 0.0, 1.0
    else:
        image, inner_sigma = (t - lo) / span, 1.0 / span
    return Stabilised(image, inner_sigma, lo, span, noise, float(sigma or 0.0), float(gain))


def rician_sigma_for_snr(clean, snr):
    """The Rician σ that gives ``clean`` the signal-to-noise ratio ``snr``: the mean of its foreground
    (values above 5 % of its maximum, so the dark background does not count) divided by ``snr``."""
    clean = np.asarray(clean, dtype=np.float64)
    top = float(clean.max()) if clean.size else 0.0
    if not top > 0:
        raise ValueError("an SNR needs an image with a positive maximum (its foreground mean over σ)")
    return float(clean[clean > 0.05 * top].mean()) / snr


def rician_dark_correction(denoise, y, est, sigma, axis):
    """The Rician estimate ``est`` of the noisy magnitudes ``y`` (float, the model's σ ``sigma``, channels on
    ``axis`` or None) with its dark regions re-estimated in the squared domain; ``denoise`` is
    :func:`nlmeans.denoise` (passed in: this module is imported by it).

    E[y²] = x² + 2σ² holds exactly for Rician noise at every x, while the VST's inverse is steep near x = 0,
    where the estimate's residual spread becomes a positive bias. So where ``est`` is below
    :data:`nlmeans.presets.RICIAN_DARK` [1] σ the result moves (linearly in ``est`` / σ, fully below
    ``RICIAN_DARK[0]``) to sqrt(max(m₂ − 2σ², 0)), m₂ the mean of y² over the pixels whose patches of ``est``
    are alike: guided pixelwise NL-means of y² with ``est`` as the (noise-free) guide, in float32 (a weighted
    mean of values ≥ 0: its rounding is far below the noise). Manjón et al. (2008) take this estimator with
    weights from the noisy image; weights from a denoised image follow their PRI-NLM (2012). Measured in
    docs/real-noise.md, "Rician".
    """
    from . import presets

    shape = y.shape if axis is None else np.delete(y.shape, axis)
    side = int(min(shape))
    h = presets.RICIAN_SQUARED_H * sigma
    m2 = denoise((y * y).astype(np.float32), sigma, guide=est.astype(np.float32), guide_sigma=0.0, h=h,
                 patch_size=presets.fit_size(presets.RICIAN_SQUARED_PATCH, side),
                 search_size=presets.fit_size(presets.RICIAN_SQUARED_SEARCH, side), method="pixelwise",
                 channel_axis=axis)
    squared = np.sqrt(np.maximum(m2.astype(np.float64) - 2.0 * sigma * sigma, 0.0))
    lo, hi = presets.RICIAN_DARK
    a = np.clip((est / sigma - lo) / (hi - lo), 0.0, 1.0)
    return a * est + (1.0 - a) * squared


def model_parameters(noise, sigma, gain, kwargs, estimate):
    """``(sigma, gain)`` of a model call: checked (:func:`nlmeans._validate.check_model_parameters`), the
    missing ones from ``estimate()`` (a :class:`nlmeans.noise_level.NoiseEstimate`), ``gain`` 1 when the
    model has none; a ``guide`` in ``kwargs`` refused."""
    from ._validate import POISSON_MODELS, check_model_parameters

    sigma, gain = check_model_parameters(noise, sigma, gain)
    if kwargs.get("guide") is not None:
        raise ValueError(f"guide is not supported with noise={noise!r}; use noise='gaussian'")
    if (noise == "rician" and sigma is None) or (noise in POISSON_MODELS and gain is None) or (
            noise == "poisson-gaussian" and sigma is None):
        est = estimate()
        logging.getLogger(__name__).info("noise model estimated from the image: %s", est)
        sigma = est.sigma if sigma is None else sigma
        gain = getattr(est, "gain", None) if gain is None else gain
    return sigma, 1.0 if gain is None else gain


def presentation(st, noise, method, h):
    """``(scale, h)`` for the run on ``st`` (:class:`Stabilised`): the factor its image and σ are multiplied
    by (Rician with NL-Bayes: :func:`nlmeans.presets.rician_presentation_scale`, else 1) and a given ``h``
    (on the stabilised scale, where the noise's σ is 1) on that presented scale."""
    from . import presets

    scale = presets.rician_presentation_scale(st.sigma, method) if noise == "rician" else 1.0
    return scale, (h * scale / st.span if h is not None and not isinstance(h, str) else h)


def from_model(est, dtype, noise):
    """An estimate of x (float64, model units) in the caller's ``dtype``: integer counts rounded and clipped
    in their own units for the Poisson models, else :func:`nlmeans._validate.from_float`."""
    from ._validate import POISSON_MODELS, from_float

    dtype = np.dtype(dtype)
    if dtype.kind in "ui" and noise in POISSON_MODELS:  # counts in their own units
        info = np.iinfo(dtype)
        return np.clip(np.rint(est), info.min, info.max).astype(dtype)
    return from_float(est, dtype)


def rician_dark_slices(denoise, y, est, sigma, z_axis, axis):
    """:func:`rician_dark_correction` of a stack, slice by slice along ``z_axis`` (channels on ``axis`` of the
    stack, or None): the 2-D step on each slice, so a slab of slices gets the whole stack's values."""
    out = np.empty(est.shape, dtype=np.float64)
    slice_axis = None if axis is None else (axis % y.ndim) - (1 if axis % y.ndim > z_axis else 0)
    for z in range(est.shape[z_axis]):
        index = (slice(None),) * z_axis + (z,)
        out[index] = rician_dark_correction(denoise, y[index], est[index], sigma, slice_axis)
    return out


def count_level(total, total_sq, size, gain, sigma=0.0):
    """The count level that picks the Poisson models' passes (:func:`nlmeans.presets.poisson_schedule`): the
    photon-weighted mean count E[λ²] / E[λ] of the clean counts λ = x / gain, estimated without bias from the
    noisy values' sum ``total`` and sum of squares ``total_sq`` over ``size`` values (E[c²] = λ² + λ + (σ /
    gain)² for c = y / gain). A uniform image's level is its mean count; a mostly dark one's is its
    foreground's, which its mean (pulled down by the background) is not."""
    mean = total / size / gain
    if not mean > 0:
        return 0.0
    return max((total_sq / size / gain**2 - mean - (sigma / gain) ** 2) / mean, 0.0)


def denoise_in_model(denoise, arr, axis, noise, sigma, gain, kwargs, *, estimate=None, image_denoise=None):
    """``denoise`` (a public Gaussian denoiser) run on the variance-stabilised image, then inverted.

    The stabilised image (noise σ = 1) is mapped affinely onto [0, 1] (:func:`stabilise`) so that the
    Gaussian path's presets see its σ on their usual scale (1 / span); the method's output is mapped back
    and inverted with the exact unbiased inverse. Missing parameters come from ``estimate()`` (default
    :func:`nlmeans.estimate_noise` on ``arr``). Rician with NL-Bayes: the mapped image and its σ are further
    multiplied by :func:`nlmeans.presets.rician_presentation_scale`, so NL-Bayes runs its high-noise row at
    every SNR; the inverted estimate's dark regions are then re-estimated in the squared domain
    (:func:`rician_dark_correction` with ``denoise``; a stack's slices one by one with ``image_denoise``,
    :func:`nlmeans.denoise`, passed in by the stack's caller: :func:`rician_dark_slices`).
    ``denoise(image, sigma, h=..., channel_axis=..., **kwargs)`` may be :func:`nlmeans.denoise`
    or a stack's (:func:`nlmeans.denoise_volume`, whose ``arr`` is (Z, Y, X) with channels at ``axis``):
    the transforms are pointwise and the binning below sums over the last two spatial axes only.

    At low counts the Poisson models iterate (Azzari & Foi 2016): pass i denoises the combination
    y_i = λ_i z + (1 − λ_i) x̂_{i−1} of the noisy image z and the previous estimate, whose noise is that of
    the model with gain λ_i² · gain and read noise λ_i σ (x̂ taken as noise-free), so the same GAT and exact
    unbiased inverse apply with those parameters. The early passes bin: y_i is summed over k_i×k_i blocks
    (:func:`bin_counts`; the sums follow the same model at k_i² times the counts, read noise k_i σ, on a
    k_i² times smaller image), denoised and inverted there, and brought back to full resolution by
    :func:`debin`. The passes (λ_i, k_i) come from the count level (:func:`count_level`,
    :func:`nlmeans.presets.poisson_schedule`):
    where the Anscombe transform stops stabilising (below ~2 counts its std falls from 1 towards 0) the
    binned passes see counts where it works, at a fraction of the cost.
    """
    from . import presets
    from ._validate import POISSON_MODELS, model_values, work_dtype
    from .noise_level import estimate_noise

    if estimate is None:
        def estimate():
            return estimate_noise(arr, noise=noise, channel_axis=axis)
    sigma, gain = model_parameters(noise, sigma, gain, kwargs, estimate)
    x = model_values(arr, noise)
    if noise == "rician" and sigma == 0:  # no noise: the Gaussian path with σ = 0 returns the image unchanged
        return denoise(arr, 0.0, channel_axis=axis, **kwargs)
    method = presets.resolve_method(kwargs.get("method"), h=kwargs.get("h"), guide=None,
                                    patch_weights=kwargs.get("patch_weights", "flat"),
                                    patch_sigma=kwargs.get("patch_sigma"))
    h = kwargs.pop("h", None)
    kwargs.pop("data_range", None)  # the stabilised image is on [0, 1]
    if noise in POISSON_MODELS:
        flat = x.astype(np.float64).ravel()
        passes = presets.poisson_schedule(count_level(float(np.sum(flat)), float(flat @ flat), flat.size, gain,
                                                      sigma or 0.0))
    else:
        passes = ((1.0, 1),)
    spatial = x if axis is None else np.moveaxis(x, axis, 0)  # binning sums over the last two axes
    passes = [(lam, presets.poisson_bin_factor(k, spatial.shape[-2:])) for lam, k in passes]
    est, settings = None, None
    for lam, k in passes:
        y = spatial if est is None else lam * spatial + (1.0 - lam) * est
        binned = bin_counts(y, k)
        if axis is not None:
            binned = np.moveaxis(binned, 0, axis)
        # a k×k sum has k² times the mean and the read noise's variance; the combination scales the
        # Poisson part's gain by λ² and the read noise's std by λ
        model_sigma = sigma if noise == "rician" else lam * k * (sigma or 0.0)
        st = stabilise(binned, noise, model_sigma, lam * lam * gain)
        if st.sigma == 0 and est is None:  # a constant image: nothing to denoise (one pass, no iteration)
            passes = [(lam, k)]
        scale, step_h = presentation(st, noise, method, h)
        out = denoise((st.image * scale).astype(work_dtype(arr.dtype)), st.sigma * scale, h=step_h,
                      channel_axis=axis, **kwargs)
        if kwargs.get("return_settings"):
            out, settings = out
        est = st.invert(np.asarray(out, dtype=np.float64) / scale)
        if axis is not None:
            est = np.moveaxis(est, axis, 0)
        est = debin(est, spatial.shape, k)
        if len(passes) == 1:
            break
    if noise == "rician" and image_denoise is None:
        est = rician_dark_correction(denoise, spatial, est, sigma, None if axis is None else 0)
    elif noise == "rician":
        est = rician_dark_slices(image_denoise, spatial, est, sigma, 0 if axis is None else 1,
                                 None if axis is None else 0)
    if axis is not None:
        est = np.moveaxis(est, 0, axis)
    result = from_model(est, arr.dtype, noise)
    return (result, settings) if settings is not None else result
