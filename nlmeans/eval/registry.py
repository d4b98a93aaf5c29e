"""The registry of denoisers: NL-means (ours and two peers) and the classical baselines, one signature for all.

Every entry of :data:`REGISTRY` is a :class:`Method`; calling it follows the conventions of
:func:`nlmeans.denoise`::

    out = REGISTRY["tv"](noisy, sigma, channel_axis=None, data_range=None, **params)

- ``noisy``: (H, W) gray, or with ``channel_axis`` any number of channels; uint8, uint16, float32, float64.
  Output: same shape and dtype (integers computed in float32 on [0, 1], rounded and clipped back).
- ``sigma`` and every σ-proportional parameter are **on the float image's scale** (integer images are scaled to
  [0, 1], so σ = 20 on the 0–255 scale is ``20/255``); ``data_range`` (``None`` → 1.0) is only used to read σ
  on the 0–255 scale where a rule depends on it.
- ``params`` omitted: derived from σ by the method's documented rule (:attr:`Method.rule`, its docstring says
  how). The baselines' rules were fitted by a coarse grid on 256×256 central crops of data/ at σ = 10, 20, 30,
  50 (seed 0), the mean PSNR over the three images. :meth:`Method.grid_for` lists the small grid ``--tune``
  searches (factors of the rule's float values, or integer values).
- Color: every method treats all channels, jointly where the method allows: one weight or conductance per pixel
  pair for the NL-means family, bilateral and diffusion; YCbCr for wavelets (3 channels), opponent colors for
  BM3D, Lab for OpenCV; Gaussian, TV and Wiener filter each channel.

The names are fixed: ``gaussian``, ``anisotropic``, ``bilateral``, ``tv``, ``wiener``, ``wavelet``,
``nlmeans`` (``nlmeans.denoise`` with its defaults, i.e. the default estimator, NL-Bayes; ``nlmeans_nlbayes``
is accepted as another name of this row and never listed twice), ``nlmeans_auto`` (σ estimated from the
image; the σ passed is ignored), ``nlmeans_twostage``,
``skimage_nlm``, ``opencv_nlm`` (needs OpenCV), ``bm3d`` (needs the ``bm3d`` package), and
``nlmeans_<method>`` for every other estimator of :data:`nlmeans.presets.METHODS`.

References
----------
.. [1] A. Buades, B. Coll and J.-M. Morel, "A review of image denoising algorithms, with a new one", Multiscale
   Model. Simul. 4(2), 2005.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._denoise import denoise
from .._optional import available, install_hint
from .._validate import (
    check_array,
    check_channel_axis,
    check_magnitude,
    check_real,
    default_data_range,
    from_float,
    sigma_to_255,
    to_float,
    work_dtype,
)
from ..presets import DEFAULT_METHOD, METHODS, default_h, fit_size, preset_for

# ---------------------------------------------------------------------------------------------------------------
# the registry entry


@dataclass(frozen=True)
class Method:
    """One denoiser of the registry.

    Attributes
    ----------
    name : str
        Registry name (used on the command line and in reports).
    core : callable
        ``core(x, sigma, data_range, **params) -> array`` on a float (H, W) or (H, W, C) array (channels last),
        σ on the float scale; returns an array of the same shape.
    rule : callable
        ``rule(sigma, data_range, n_channels) -> dict``: the default parameters from σ. Its docstring states
        the rule (it is what reports and ``--help`` quote).
    grid : dict
        ``{param: candidates}``: ``--tune`` tries every combination. For a float parameter the candidates are
        factors of the rule's value (``factor * rule value``); for an integer one, the values themselves.
        Empty: not tuned.
    summary : str
        One line: what the method is and which implementation.
    requires : str or None
        Module that must be importable (optional extras), e.g. ``"bm3d"``.
    jit : bool
        Compiled with numba on first call: warm it up before timing.
    """

    name: str
    core: Callable[..., np.ndarray]
    rule: Callable[[float, float, int], dict]
    grid: dict = field(default_factory=dict)
    summary: str = ""
    requires: str | None = None
    jit: bool = False

    @property
    def available(self):
        """Whether the method can run here (its optional package is installed)."""
        return self.requires is None or available(self.requires)

    @property
    def rule_doc(self):
        """The σ rule in words (the rule function's docstring, first paragraph)."""
        return " ".join((self.rule.__doc__ or "").strip().split("\n\n")[0].split())

    def params_for(self, sigma, data_range=1.0, n_channels=1):
        """Default parameters at noise level ``sigma`` (float scale) by the method's rule."""
        return dict(self.rule(float(sigma), float(data_range), int(n_channels)))

    def grid_for(self, sigma, data_range=1.0, n_channels=1):
        """The parameter sets ``--tune`` tries: every combination of the grid's candidates (see ``grid``)."""
        base = self.params_for(sigma, data_range, n_channels)
        if not self.grid:
            return [base]
        names = list(self.grid)
        out = []
        for factors in itertools.product(*(self.grid[n] for n in names)):
            params = dict(base)
            for n, k in zip(names, factors, strict=True):
                params[n] = int(k) if isinstance(base[n], int) else float(base[n] * k)
            if params not in out:
                out.append(params)
        return out

    def __call__(self, noisy, sigma, *, channel_axis=None, data_range=None, **params):
        """Denoise ``noisy`` (see the module docstring for the conventions); returns an array like it."""
        if not self.available:
            raise ValueError(
                f"method {self.name!r} needs the package {self.requires!r}, which is not installed "
                f"({install_hint(self.requires)})"
            )
        arr = check_array(noisy, "noisy")
        axis = check_channel_axis(arr, channel_axis, "noisy")
        sigma = check_real(sigma, "sigma", minimum=0)
        dr = default_data_range(data_range)
        if sigma > MAX_SIGMA_RATIO * dr:
            # the σ rules scale iterations and kernel sizes with σ: an absurd σ would mean hours of work
            raise ValueError(
                f"sigma={sigma:g} is more than {MAX_SIGMA_RATIO:g} × the data range ({dr:g}); "
                "σ is on the float image's scale (integers: a fraction of the full range)"
            )
        dtype = work_dtype(arr.dtype)
        check_magnitude(arr, "noisy", 1024, dtype)  # the baselines square values and differences too
        x = to_float(arr, dtype)
        if axis is not None:
            x = np.moveaxis(x, axis, -1)
        x = np.ascontiguousarray(x)
        n_channels = 1 if axis is None else x.shape[-1]
        # rules divide by σ-derived scales: a σ below 1e-6 of the range counts as 1e-6 (no visible change)
        base = self.params_for(max(sigma, SIGMA_FLOOR_RATIO * dr), dr, n_channels)
        unknown = sorted(set(params) - set(base))
        if unknown:
            raise ValueError(
                f"method {self.name!r} has no parameter {unknown[0]!r}; allowed: {', '.join(sorted(base))}"
            )
        base.update(params)
        with np.errstate(all="ignore"):  # degenerate inputs (1×1, σ = 0, ...): judged by the check below
            out = np.asarray(self.core(x, sigma, dr, **base)).astype(dtype, copy=False)
        if not np.isfinite(out).all():
            raise ValueError(f"method {self.name!r} gave non-finite values on this input; rescale the image")
        if axis is not None:
            out = np.moveaxis(out, -1, axis)
        return from_float(out, arr.dtype)


#: largest σ the baselines accept, as a multiple of the data range (σ = 255 × 4 on the 0–255 scale)
MAX_SIGMA_RATIO = 4.0
#: smallest σ the σ rules see, as a multiple of the data range
SIGMA_FLOOR_RATIO = 1e-6


def _channel_axis(x):
    return None if x.ndim == 2 else -1


# ---------------------------------------------------------------------------------------------------------------
# Gaussian smoothing


def _gaussian_rule(sigma, data_range, n_channels):
    """Spatial std s = 0.5 + 0.02·σ₂₅₅ pixels (σ₂₅₅: σ on the 0–255 scale; s = 0.9 at σ₂₅₅ = 20)."""
    return {"s": 0.5 + 0.02 * sigma_to_255(sigma, data_range)}


def _gaussian(x, sigma, data_range, *, s):
    """Gaussian convolution of each channel (scipy.ndimage.gaussian_filter, reflect boundary)."""
    from scipy.ndimage import gaussian_filter

    spatial = (s, s) if x.ndim == 2 else (s, s, 0)
    return gaussian_filter(x, sigma=spatial, mode="reflect")


# ---------------------------------------------------------------------------------------------------------------
# Perona-Malik anisotropic diffusion


def _anisotropic_rule(sigma, data_range, n_channels):
    """Edge threshold κ = 2.2·σ, n_iter = 2 + ⌈σ₂₅₅ / 15⌉ steps of dt = 0.25 (σ₂₅₅: σ on the 0–255 scale)."""
    n_iter = 2 + int(np.ceil(sigma_to_255(sigma, data_range) / 15.0 - 1e-9))
    return {"kappa": 2.2 * sigma, "n_iter": n_iter, "dt": 0.25}


def _anisotropic(x, sigma, data_range, *, kappa, n_iter, dt):
    """Perona-Malik diffusion (numba kernel ``_perona_malik``), conductance exp(-(|∇u|/κ)²), joint channels."""
    from .perona_malik import _perona_malik

    kappa = check_real(kappa, "kappa", minimum=0)
    dt = check_real(dt, "dt", minimum=0)
    if dt > 0.25:
        raise ValueError(f"dt={dt} makes the explicit 4-neighbour scheme unstable; allowed: 0 <= dt <= 0.25")
    n_iter = int(n_iter)
    if n_iter < 0:
        raise ValueError(f"n_iter must be >= 0, got {n_iter}")
    dtype = x.dtype.type
    u = np.ascontiguousarray(x[None] if x.ndim == 2 else np.moveaxis(x, -1, 0))
    out = np.empty_like(u)
    with np.errstate(divide="ignore", over="ignore"):  # κ -> 0: no diffusion across any edge (cap, no inf)
        inv = min(float(np.float64(1.0) / (u.shape[0] * np.float64(kappa) ** 2)), 1e30)
    _perona_malik(u, n_iter, dtype(inv), dtype(dt), out)
    return out[0] if x.ndim == 2 else np.moveaxis(out, 0, -1)


# ---------------------------------------------------------------------------------------------------------------
# bilateral (neighborhood) filter


def _bilateral_rule(sigma, data_range, n_channels):
    """Range std σ_r = 2.5·σ, spatial std σ_s = 1.5 pixels (window radius ⌈3σ_s⌉ = 5)."""
    return {"sigma_color": 2.5 * sigma, "sigma_spatial": 1.5}


def _bilateral(x, sigma, data_range, *, sigma_color, sigma_spatial):
    """Bilateral filter (Tomasi & Manduchi 1998), numpy, one loop over the window offsets.

    u(p) = Σ_q w(p, q) x(q) / Σ_q w(p, q), w = exp(−|p − q|² / 2σ_s²) · exp(−d²(p, q) / 2σ_r²), d² the mean over
    the channels of (x(p) − x(q))² (one weight for all channels), q over the square of radius ⌈3σ_s⌉, reflect
    boundary. (scikit-image 0.26's ``denoise_bilateral`` is not used: its spatial kernel is scrambled, a
    table built for an even side indexed with an odd one; its impulse response is not symmetric.)
    """
    sigma_color = check_real(sigma_color, "sigma_color", minimum=0, strict=True)
    sigma_spatial = check_real(sigma_spatial, "sigma_spatial", minimum=0, strict=True)
    dtype = x.dtype.type
    u = x[..., None] if x.ndim == 2 else x
    r = min(int(np.ceil(3 * sigma_spatial)), min(u.shape[:2]) - 1)
    H, W, C = u.shape
    p = np.pad(u, ((r, r), (r, r), (0, 0)), mode="reflect")
    num = np.zeros_like(u)
    den = np.zeros(u.shape[:2], dtype=u.dtype)
    a = dtype(-1.0 / (2.0 * C * sigma_color**2))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            q = p[r + dy:r + dy + H, r + dx:r + dx + W]
            d2 = np.einsum("ijc,ijc->ij", q - u, q - u)
            w = np.exp(d2 * a + dtype(-(dy * dy + dx * dx) / (2.0 * sigma_spatial**2)))
            den += w
            num += w[..., None] * q
    out = num / den[..., None]
    return out[..., 0] if x.ndim == 2 else out


# ---------------------------------------------------------------------------------------------------------------
# total variation


def _tv_rule(sigma, data_range, n_channels):
    """Chambolle weight λ = 0.8·σ."""
    return {"weight": 0.8 * sigma}


def _tv(x, sigma, data_range, *, weight):
    """skimage.restoration.denoise_tv_chambolle (ROF model, Chambolle's projection), per channel."""
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(x, weight=weight, channel_axis=_channel_axis(x))


# ---------------------------------------------------------------------------------------------------------------
# empirical (adaptive, local) Wiener filter


def _wiener_rule(sigma, data_range, n_channels):
    """Window side 3 for σ₂₅₅ ≤ 20, else 5 (σ₂₅₅ on the 0–255 scale); noise power (1.3σ)²."""
    return {"size": 3 if sigma_to_255(sigma, data_range) <= 20 else 5, "noise_scale": 1.3}


def _wiener(x, sigma, data_range, *, size, noise_scale):
    """Adaptive local (empirical) Wiener filter (Lee 1980; the formula of scipy.signal.wiener).

    u = m + max(v − n, 0) / max(v, n) · (x − m), with m and v the local mean and variance over a size×size
    window and the noise power n = (noise_scale·σ)². Unlike scipy.signal.wiener (zero padding, which darkens
    the border) the windows reflect at the border. Per channel.
    """
    from scipy.ndimage import uniform_filter

    size = int(size)
    x = x.astype(np.float64)
    spatial = (size, size) if x.ndim == 2 else (size, size, 1)
    mean = uniform_filter(x, spatial, mode="reflect")
    var = np.maximum(uniform_filter(x * x, spatial, mode="reflect") - mean * mean, 0.0)
    noise = (noise_scale * sigma) ** 2
    gain = np.maximum(var - noise, 0.0) / np.maximum(var, max(noise, 1e-300))
    return mean + gain * (x - mean)


# ---------------------------------------------------------------------------------------------------------------
# wavelet thresholding


def _wavelet_rule(sigma, data_range, n_channels):
    """BayesShrink soft thresholding, wavelet db4, 4 levels (fewer on small images), with the true σ."""
    return {"sigma_scale": 1.0, "wavelet_levels": 4}


def _wavelet(x, sigma, data_range, *, sigma_scale, wavelet_levels):
    """skimage.restoration.denoise_wavelet (BayesShrink, soft, db4); 3-channel images in YCbCr."""
    import pywt
    from skimage.restoration import denoise_wavelet

    levels = max(1, min(int(wavelet_levels), pywt.dwt_max_level(min(x.shape[:2]), pywt.Wavelet("db4").dec_len)))
    rgb = x.ndim == 3 and x.shape[-1] == 3
    return denoise_wavelet(
        x.astype(np.float64), sigma=sigma_scale * sigma, wavelet="db4", mode="soft", wavelet_levels=levels,
        method="BayesShrink", channel_axis=_channel_axis(x), convert2ycbcr=rgb, rescale_sigma=True,
    )


# ---------------------------------------------------------------------------------------------------------------
# NL-means: ours (every estimator of nlmeans.presets.METHODS), two-stage, and the two peers


def _nlmeans_rule(sigma, data_range, n_channels):
    """nlmeans.denoise's pixelwise defaults: patch, search and h = k·σ from the measured preset table by σ
    (:func:`nlmeans.presets.preset_for`; sizes not yet shrunk to the image, see :func:`_fit`)."""
    preset = preset_for(sigma_to_255(sigma, data_range), n_channels)
    return {"h": default_h(sigma, preset, data_range), "patch_size": preset.patch_size,
            "search_size": preset.search_size}


def _fit(size, x):
    """A preset side length shrunk to fit the image (as nlmeans.denoise does)."""
    return fit_size(int(size), min(x.shape[:2]))


#: estimators of nlmeans.denoise that take no h (their entries tune nothing)
H_FREE_METHODS = ("nlbayes",)


def _no_params(sigma, data_range, n_channels):
    """Nothing to set: nlmeans.denoise picks every parameter itself from σ (its presets, no h)."""
    return {}


def _nlmeans_default(x, sigma, data_range):
    """nlmeans.denoise(x, σ) with every default."""
    return denoise(x, sigma, channel_axis=_channel_axis(x), data_range=data_range)


def _auto_rule(sigma, data_range, n_channels):
    """Nothing to set, and the σ passed is ignored: nlmeans.denoise(x) estimates σ from the image
    (nlmeans.estimate_sigma) and takes every other parameter from its presets."""
    return {}


def _nlmeans_auto(x, sigma, data_range):
    """nlmeans.denoise(x) — fully automatic: σ estimated from the image; the registry's σ is ignored."""
    return denoise(x, channel_axis=_channel_axis(x), data_range=data_range)


def _nlmeans_core(method, with_h=True):
    def core(x, sigma, data_range, *, h, patch_size, search_size):
            return denoise(x, sigma, h=h, patch_size=_fit(patch_size, x), search_size=_fit(search_size, x),
                       method=method, channel_axis=_channel_axis(x), data_range=data_range)

    def core_no_h(x, sigma, data_range):
            return denoise(x, sigma, method=method, channel_axis=_channel_axis(x), data_range=data_range)

    chosen = core if with_h else core_no_h
    chosen.__doc__ = f"nlmeans.denoise(method={method!r})"
    return chosen


def twostage_k(sigma_255):
    """Second-pass h / σ of two-stage NL-means: k = clip(1.0 − 0.014·σ₂₅₅, 0.3, 0.75) (σ on the 0–255 scale).

    Measured on data/ (512², seed 0), mean PSNR over the three images: at σ = 20 the best k is 0.75 (0.6: −0.06
    dB, 0.5: −0.37 dB), at σ = 50 it is 0.3 (0.4: −0.16 dB, 0.6: −1.14 dB); the rule passes through both.
    """
    return float(np.clip(1.0 - 0.014 * sigma_255, 0.3, 0.75))


def _twostage_rule(sigma, data_range, n_channels):
    """First pass: the nlmeans defaults. Second pass: weights from the first-pass estimate (guide σ = 0),
    h₂ = k·σ with k = clip(1.0 − 0.014·σ₂₅₅, 0.3, 0.75) (0.72 at σ₂₅₅ = 20, 0.3 at 50)."""
    rule = _nlmeans_rule(sigma, data_range, n_channels)
    rule["h2"] = twostage_k(sigma_to_255(sigma, data_range)) * sigma
    return rule


def _twostage(x, sigma, data_range, *, h, patch_size, search_size, h2):
    """Two-stage NL-means: u₁ = NL-means(v); u = NL-means of v with patch weights from u₁ (clean guide).

    The second pass is the non-local operation of Wang et al. (2018) with θ = φ = patches of the first-pass
    estimate and g = the noisy values; Buades et al. (IPOL 2011) mention iterating NL-means this way.
    """
    kw = dict(patch_size=_fit(patch_size, x), search_size=_fit(search_size, x),
              channel_axis=_channel_axis(x), data_range=data_range)
    first = denoise(x, sigma, h=h, **kw)
    return denoise(x, sigma, h=h2, guide=first, guide_sigma=0.0, **kw)


def _skimage_nlm_rule(sigma, data_range, n_channels):
    """scikit-image's suggestion for fast_mode with σ given: h = 0.8·σ; its default patch 7, distance 11."""
    return {"h": 0.8 * sigma, "patch_size": 7, "patch_distance": 11}


def _skimage_nlm(x, sigma, data_range, *, h, patch_size, patch_distance):
    """skimage.restoration.denoise_nl_means(fast_mode=True, sigma=σ); color: one weight for all channels."""
    from skimage.restoration import denoise_nl_means

    out = denoise_nl_means(x.astype(np.float64), h=h, sigma=sigma, patch_size=int(patch_size),
                           patch_distance=int(patch_distance), fast_mode=True, channel_axis=_channel_axis(x))
    return np.reshape(out, x.shape)  # scikit-image squeezes a 1×1 image to a scalar


def _opencv_rule(sigma, data_range, n_channels):
    """OpenCV's convention h = σ on the 0–255 scale (hColor = h for color); template 7, search 21."""
    return {"h": sigma_to_255(sigma, data_range), "template": 7, "search": 21}


def _opencv_nlm(x, sigma, data_range, *, h, template, search):
    """cv2.fastNlMeansDenoising (gray) / ...Colored (3 channels, in Lab) on the image quantised to uint8.

    OpenCV works on 8-bit images only: x is mapped to 0–255 (``x / data_range · 255``), clipped and rounded;
    the result is mapped back. Other channel counts: each channel as gray.
    """
    import cv2

    u8 = np.clip(np.rint(x * (255.0 / data_range)), 0, 255).astype(np.uint8)
    h = float(h)
    if x.ndim == 2:
        out = cv2.fastNlMeansDenoising(u8, None, h, int(template), int(search))
    elif x.shape[-1] == 3:
        bgr = np.ascontiguousarray(u8[..., ::-1])
        out = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, int(template), int(search))[..., ::-1]
    else:
        out = np.stack([cv2.fastNlMeansDenoising(np.ascontiguousarray(u8[..., c]), None, h, int(template),
                                                 int(search)) for c in range(x.shape[-1])], axis=-1)
    return out.astype(np.float64) * (data_range / 255.0)


# ---------------------------------------------------------------------------------------------------------------
# BM3D


def _bm3d_rule(sigma, data_range, n_channels):
    """The true σ (sigma_psd = σ), the bm3d package's default profile; not tuned."""
    return {"sigma_scale": 1.0}


def _bm3d(x, sigma, data_range, *, sigma_scale):
    """bm3d.bm3d (gray, each channel of a non-RGB image) or bm3d.bm3d_rgb (3 channels, opponent colors)."""
    import bm3d

    s = sigma_scale * sigma
    x64 = x.astype(np.float64)
    if x.ndim == 3 and x.shape[-1] == 3:
        return bm3d.bm3d_rgb(x64, sigma_psd=s)
    if x.ndim == 3:
        return np.stack([bm3d.bm3d(x64[..., c], sigma_psd=s) for c in range(x.shape[-1])], axis=-1)
    return bm3d.bm3d(x64, sigma_psd=s)


# ---------------------------------------------------------------------------------------------------------------
# the registry


def _build_registry(nlmeans_methods):
    """The registry for the given estimators of ``nlmeans.denoise`` (the first is the default one)."""
    h_grid = {"h": (0.6, 0.75, 0.9, 1.0, 1.15, 1.35, 1.6)}
    entries = [
        Method("gaussian", _gaussian, _gaussian_rule, {"s": (0.7, 0.85, 1.0, 1.2, 1.4)},
               "Gaussian smoothing (scipy.ndimage.gaussian_filter)"),
        Method("anisotropic", _anisotropic, _anisotropic_rule,
               {"kappa": (0.7, 1.0, 1.4), "n_iter": (2, 3, 4, 6, 8, 11)},
               "Perona-Malik anisotropic diffusion (numba kernel)", jit=True),
        Method("bilateral", _bilateral, _bilateral_rule,
               {"sigma_color": (0.6, 0.8, 1.0, 1.25, 1.5), "sigma_spatial": (0.7, 1.0, 1.5)},
               "bilateral / neighborhood filter (numpy, Tomasi & Manduchi)"),
        Method("tv", _tv, _tv_rule, {"weight": (0.6, 0.8, 1.0, 1.25, 1.6)},
               "total-variation minimisation (skimage denoise_tv_chambolle)"),
        Method("wiener", _wiener, _wiener_rule, {"size": (3, 5, 7), "noise_scale": (0.75, 1.0, 1.3)},
               "adaptive empirical Wiener filter (scipy.signal.wiener's formula, reflect border)"),
        Method("wavelet", _wavelet, _wavelet_rule, {"sigma_scale": (0.85, 1.0, 1.15)},
               "wavelet thresholding, BayesShrink (skimage denoise_wavelet)"),
        Method("nlmeans", _nlmeans_default, _no_params, {},
               f"this package's nlmeans.denoise with its defaults (method={nlmeans_methods[0]!r})", jit=True),
        Method("nlmeans_auto", _nlmeans_auto, _auto_rule, {},
               "this package's nlmeans.denoise(x), fully automatic: σ estimated from the image, the σ given "
               "is ignored", jit=True),
    ]
    for m in nlmeans_methods[1:]:
        if m == nlmeans_methods[0]:  # the default estimator is the "nlmeans" row (alias nlmeans_<m>): once
            continue
        if m in H_FREE_METHODS:
            entries.append(Method(f"nlmeans_{m}", _nlmeans_core(m, with_h=False), _no_params, {},
                                  f"this package, method={m!r} (no h)", jit=True))
        else:
            entries.append(Method(f"nlmeans_{m}", _nlmeans_core(m), _nlmeans_rule, h_grid,
                                  f"NL-means, this package, method={m!r}", jit=True))
    entries += [
        Method("nlmeans_twostage", _twostage, _twostage_rule, {"h2": (0.6, 0.8, 1.0, 1.25, 1.6)},
               "two-stage NL-means: second pass weighted by the first-pass estimate", jit=True),
        Method("skimage_nlm", _skimage_nlm, _skimage_nlm_rule, h_grid,
               "NL-means, scikit-image denoise_nl_means (fast_mode)"),
        Method("opencv_nlm", _opencv_nlm, _opencv_rule, h_grid,
               "NL-means, OpenCV fastNlMeansDenoising on uint8", requires="cv2"),
        Method("bm3d", _bm3d, _bm3d_rule, {}, "BM3D (bm3d package), the quality reference", requires="bm3d"),
    ]
    return {m.name: m for m in entries}


def _registry():
    # "nlmeans" is denoise() with its defaults; every estimator gets its own nlmeans_<method> entry too
    return _build_registry((DEFAULT_METHOD,) + tuple(METHODS))


#: name -> :class:`Method`; built at import from ``nlmeans.presets.METHODS`` so new estimators appear here
REGISTRY: dict[str, Method] = _registry()
#: other names of a registered method: ``nlmeans_<default method>`` is the ``nlmeans`` row (the same call),
#: listed once under ``nlmeans``
ALIASES: dict[str, str] = {f"nlmeans_{DEFAULT_METHOD}": "nlmeans"}


def available_methods():
    """Names of the registered methods that can run here (optional packages installed), registry order."""
    return [name for name, m in REGISTRY.items() if m.available]


def get_method(name):
    """The :class:`Method` called ``name``; ValueError naming the allowed ones otherwise."""
    name = ALIASES.get(name, name) if isinstance(name, str) else name
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"method {name!r} is not known; allowed: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def describe(params: dict[str, Any]) -> str:
    """Parameters as a short ``k=v`` string (floats to 4 significant digits)."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
