"""Stein's unbiased risk estimate (SURE): the mean squared error of a denoiser without the clean image.

Units: ``sigma``, ``h`` and the returned risk are on the float image's scale (integer images are scaled to
[0, 1]); the risk is a mean squared error per pixel and channel, so ``10 log10(data_range² / risk)`` is an
estimated PSNR.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from ._typing import ArrayLike, Real, Seed
from ._validate import (
    check_array,
    check_channel_axis,
    check_int,
    check_real,
    to_float,
)
from .presets import nlmeans_settings, resolve_parameters
from .tiles import denoise_strip

#: :func:`choose_h` averages enough probes that probes × pixels × channels reaches this (at most 8 probes)
SURE_TARGET_SAMPLES = 2**16

#: h / σ searched by :func:`choose_h` (golden-section inside this bracket)
H_OVER_SIGMA_BRACKET = (0.15, 1.5)


def _as_float(noisy):
    """``noisy`` as a float array (integers scaled to [0, 1]); float32 stays float32."""
    arr = check_array(noisy, "noisy")
    return to_float(arr)


def _probe_rng(seed):
    """The probes' generator: its own stream, never the one ``add_noise(seed=seed)`` draws the noise from.

    A probe equal to the noise itself (same seed, same stream) would bias the divergence completely.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x5E5E,)))


def default_epsilon(noisy: ArrayLike) -> float:
    """The finite-difference step of Monte-Carlo SURE: ``max|y| / 1000`` (float image scale).

    The usual choice with Monte-Carlo SURE (a thousandth of the signal's peak): small enough for a
    first-order difference, large enough that float32 rounding stays negligible. An all-zero image gets
    ``1e-3``.
    """
    peak = float(np.max(np.abs(noisy)))
    return 1e-3 * peak if peak > 0 else 1e-3


log = logging.getLogger(__name__)

#: a denoiser as SURE sees it: ``denoiser(y) -> ndarray`` of y's shape, on y's float scale
Denoiser = Callable[[NDArray[Any]], ArrayLike]
#: a candidate parameter value of :func:`minimize_sure`
_V = TypeVar("_V")


def mc_sure(denoiser: Denoiser, noisy: ArrayLike, sigma: Real, *, epsilon: Real | None = None, seed: Seed = 0,
            denoised: ArrayLike | None = None, probes: int = 1) -> float:
    """Monte-Carlo SURE: an unbiased estimate of a denoiser's mean squared error, from the noisy image alone.

    Parameters
    ----------
    denoiser : callable
        ``denoiser(y) -> ndarray`` of the same shape, on the same float scale as its input. It must be a
        deterministic function of ``y`` (same parameters for both calls; e.g. pass σ explicitly rather than
        letting the denoiser estimate it).
    noisy : ndarray
        The noisy image y = x + n, n ~ N(0, σ² I), any shape; uint8/uint16 are scaled to [0, 1].
    sigma : float
        Noise standard deviation on the float image's scale (σ = 20 on the 0–255 scale is ``20/255`` for an
        integer image or a [0, 1] float image).
    epsilon : float or None
        Finite-difference step, same scale; ``None``: :func:`default_epsilon` (``max|y| / 1000``).
    seed : int or numpy Generator
        Seed of the Gaussian probe vector b (the estimate is random through b; its spread is small for
        images of more than a few thousand pixels). An int seeds a stream of its own, so the probe never
        repeats noise drawn with ``numpy.random.default_rng(seed)`` (e.g. ``add_noise(..., seed=seed)``).
    denoised : ndarray or None
        ``denoiser(y)`` if already computed (saves one call).
    probes : int
        Number of probe vectors b whose divergence estimates are averaged (one denoiser call each); more
        probes lower the spread of the estimate, which matters on small images.

    Returns
    -------
    risk : float
        Estimated mean squared error per pixel (and channel), on the float image's scale squared:

        SURE = ‖y − f(y)‖² / N − σ² + 2σ² / (N ε) · bᵀ (f(y + ε b) − f(y)),   b ~ N(0, I).

    Notes
    -----
    Stein's lemma makes ‖y − f(y)‖²/N − σ² + 2σ² div f(y)/N an unbiased estimate of ‖f(y) − x‖²/N for any
    weakly differentiable f; the divergence is estimated with one extra call of the denoiser on a randomly
    perturbed input (Ramani, Blu & Unser 2008). Two denoiser calls in all (one if ``denoised`` is given).

    References
    ----------
    .. [1] C. Stein, "Estimation of the mean of a multivariate normal distribution", Annals of Statistics
       9(6), 1981.
    .. [2] S. Ramani, T. Blu and M. Unser, "Monte-Carlo SURE: a black-box optimization of regularization
       parameters for general denoising algorithms", IEEE Trans. Image Processing 17(9), 2008.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> from nlmeans.sure import mc_sure
    >>> clean = np.tile(np.linspace(0, 1, 64), (64, 1))
    >>> noisy = nlmeans.add_noise(clean, 0.1, seed=0)
    >>> risk = mc_sure(lambda y: nlmeans.denoise(y, 0.1), noisy, 0.1)
    >>> true = float(np.mean((nlmeans.denoise(noisy, 0.1) - clean) ** 2))
    >>> bool(abs(risk - true) < 0.2 * true)
    True
    """
    y = _as_float(noisy)
    sigma = check_real(sigma, "sigma", minimum=0)
    eps = default_epsilon(y) if epsilon is None else check_real(epsilon, "epsilon", minimum=0, strict=True)
    probes = check_int(probes, "probes")
    if probes < 1:
        raise ValueError(f"probes must be >= 1, got {probes}")
    rng = _probe_rng(seed)
    fy = np.asarray(denoiser(y) if denoised is None else denoised, dtype=np.float64)
    if fy.shape != y.shape:
        raise ValueError(f"denoiser returned shape {fy.shape} for an input of shape {y.shape}; they must match")
    divergence = 0.0
    for _ in range(probes):
        b = rng.standard_normal(y.shape)
        fyb = np.asarray(denoiser((y + eps * b).astype(y.dtype)), dtype=np.float64)
        divergence += float(np.sum(b * (fyb - fy))) / eps / probes
    n = y.size
    y64 = y.astype(np.float64)
    return float(np.sum((y64 - fy) ** 2) / n - sigma**2 + 2.0 * sigma**2 * divergence / n)


def minimize_sure(make_denoiser: Callable[[_V], Denoiser], values: Iterable[_V], noisy: ArrayLike, sigma: Real, *,
                  epsilon: Real | None = None, seed: Seed = 0) -> tuple[_V, list[float]]:
    """Pick, from ``values``, the parameter whose denoiser has the smallest Monte-Carlo SURE.

    For tuning any denoiser (baselines included) without the clean image.

    Parameters
    ----------
    make_denoiser : callable
        ``make_denoiser(value) -> denoiser``, a callable as in :func:`mc_sure`.
    values : iterable
        Candidate parameter values (any objects).
    noisy, sigma, epsilon, seed
        As in :func:`mc_sure`; the same probe vector (``seed``) serves every candidate, so their risks are
        compared on equal terms.

    Returns
    -------
    best : object
        The value with the smallest estimated risk.
    risks : list of float
        The estimated risk of each value, in order (float image scale squared).

    References
    ----------
    .. [1] S. Ramani, T. Blu and M. Unser, "Monte-Carlo SURE: a black-box optimization of regularization
       parameters for general denoising algorithms", IEEE Trans. Image Processing 17(9), 2008.
    """
    values = list(values)
    if not values:
        raise ValueError("values is empty; give at least one candidate parameter value")
    risks = [mc_sure(make_denoiser(v), noisy, sigma, epsilon=epsilon, seed=seed) for v in values]
    return values[int(np.argmin(risks))], risks


def _golden_min(fun, lo, hi, n_evals):
    """Minimise a unimodal ``fun`` on [lo, hi] by golden-section search with ``n_evals`` evaluations.

    Returns (x_best, f_best, evaluated) with ``evaluated`` the list of (x, f(x)).
    """
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - inv_phi * (b - a), a + inv_phi * (b - a)
    fc, fd = fun(c), fun(d)
    seen = [(c, fc), (d, fd)]
    for _ in range(max(0, n_evals - 2)):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - inv_phi * (b - a)
            fc = fun(c)
            seen.append((c, fc))
        else:
            a, c, fc = c, d, fd
            d = a + inv_phi * (b - a)
            fd = fun(d)
            seen.append((d, fd))
    x, f = min(seen, key=lambda item: item[1])
    return x, f, seen


def _pixelwise(v, axis, sigma, h, patch_size, search_size, data_range):
    """Pixelwise NL-means of the float image ``v`` exactly as ``nlmeans.denoise(v, sigma, h=h, ...)``
    computes it, and the settings used."""
    shape = tuple(n for i, n in enumerate(v.shape) if i != axis)
    settings = resolve_parameters(shape, sigma, h=h, patch_size=patch_size, search_size=search_size,
                                  n_channels=1 if axis is None else v.shape[axis], data_range=data_range)
    settings = nlmeans_settings(settings, "pixelwise")
    # the whole image as one strip: the same conversion, magnitude check and kernel call as every path
    return denoise_strip(v, settings, axis, 0, shape[0]), settings


def choose_h(
    noisy: ArrayLike,
    sigma: Real,
    *,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    patch_sizes: Sequence[int] | None = None,
    bracket: tuple[float, float] = H_OVER_SIGMA_BRACKET,
    n_evals: int = 8,
    epsilon: Real | None = None,
    seed: Seed = 0,
    data_range: Real | None = None,
) -> tuple[float, int, float]:
    """Choose NL-means' h (and optionally the patch size) by minimising Monte-Carlo SURE.

    Parameters
    ----------
    noisy : ndarray
        (H, W) gray or multichannel with ``channel_axis``; uint8, uint16, float32, float64.
    sigma : float
        Noise standard deviation on the float image's scale (integers scaled to [0, 1]); must be > 0.
    patch_size, search_size : odd int or None
        As in :func:`nlmeans.denoise`; ``None``: the presets for σ.
    channel_axis : int or None
        Axis of the channels, as in :func:`nlmeans.denoise`.
    patch_sizes : sequence of odd int or None
        If given, h is chosen for each of these patch sizes and the (patch, h) pair of least risk wins
        (``patch_size`` is then ignored).
    bracket : (float, float)
        Range of h / σ searched (golden-section search, assumes one minimum inside).
    n_evals : int
        Risk evaluations per patch size (each costs two NL-means runs).
    epsilon, seed
        As in :func:`mc_sure`. Images of fewer than 65536 values (pixels × channels) average several
        probes (up to 8) so that the risk curve stays smooth.
    data_range : float or None
        As in :func:`nlmeans.denoise` (used for the presets); ``None``: 1.0.

    Returns
    -------
    h : float
        The chosen h, on the float image's scale.
    patch_size : int
        The patch size used (the chosen one when ``patch_sizes`` is given).
    risk : float
        The estimated mean squared error per pixel at that choice (float scale squared).

    Notes
    -----
    The risk of NL-means as a function of h has one minimum in practice (too small h leaves noise, too large
    h blurs), so golden-section search over h/σ in ``bracket`` finds it in a few evaluations. The same probe
    vector is used for every h, so the risk curve is smooth in h.

    References
    ----------
    .. [1] S. Ramani, T. Blu and M. Unser, "Monte-Carlo SURE: a black-box optimization of regularization
       parameters for general denoising algorithms", IEEE Trans. Image Processing 17(9), 2008.
    .. [2] D. Van De Ville and M. Kocher, "SURE-based non-local means", IEEE Signal Processing Letters
       16(11), 2009.
    """
    sigma = check_real(sigma, "sigma", minimum=0, strict=True)
    arr = check_array(noisy, "noisy")
    axis = check_channel_axis(arr, channel_axis, "noisy")
    lo, hi = (check_real(v, "bracket", minimum=0, strict=True) for v in bracket)
    if not lo < hi:
        raise ValueError(f"bracket={tuple(bracket)!r} must be (low, high) with 0 < low < high")
    y = _as_float(arr)
    sizes = [patch_size] if patch_sizes is None else list(patch_sizes)
    if not sizes:
        raise ValueError("patch_sizes is empty; give at least one odd patch size")

    probes = int(min(8, max(1, math.ceil(SURE_TARGET_SAMPLES / y.size))))
    best = None
    for p in sizes:
        settings = {}

        def risk(k, p=p, settings=settings):
            def f(v):
                out, used = _pixelwise(v, axis, sigma, k * sigma, p, search_size, data_range)
                settings["patch_size"] = used.patch_size
                return out

            return mc_sure(f, y, sigma, epsilon=epsilon, seed=seed, probes=probes)

        k, r, _ = _golden_min(risk, lo, hi, n_evals)
        log.debug("SURE, patch %d: h/sigma %.3g, risk %.4g", settings["patch_size"], k, r)
        if best is None or r < best[2]:
            best = (k * sigma, settings["patch_size"], r)
    log.info("h chosen by SURE: %.4g (h/sigma %.3g), patch %d", best[0], best[0] / sigma, best[1])
    return best
