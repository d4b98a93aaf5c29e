"""The public ``denoise()``: validate, convert, resolve the parameters, run a method, convert back."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Literal, overload

import numpy as np

from ._typing import Array, ArrayLike, Method, NoiseModel, PatchWeights, Real, SigmaLike
from ._validate import (
    POISSON_MODELS,
    check_array,
    check_channel_axis,
    check_integer_scale,
    check_magnitude,
    check_noise_model,
    check_real,
    default_data_range,
    from_float,
    is_sigma_array,
    to_chw,
    work_dtype,
)
from .nlbayes import nlbayes_checked
from .noise_level import estimate_sigma
from .presets import Settings, check_method_options, nlbayes_settings, nlmeans_settings, resolve_parameters


def _run_nlbayes(arr, axis, value, settings, patch_size, search_size):
    """The ``method="nlbayes"`` branch of :func:`denoise` (inputs already validated and converted)."""
    settings = nlbayes_settings(settings, value.shape[1:], value.shape[0], patch_size, search_size)
    out = nlbayes_checked(value, settings.sigma, settings.nlbayes)
    out = out[0] if axis is None else np.moveaxis(out, 0, axis)
    return from_float(out, arr.dtype), settings


@overload
def denoise(
    image: ArrayLike,
    sigma: SigmaLike | None = None,
    *,
    noise: NoiseModel = "gaussian",
    gain: Real | None = None,
    h: Real | Literal["auto"] | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    method: Method | None = None,
    channel_axis: int | None = None,
    guide: ArrayLike | None = None,
    guide_sigma: Real | None = None,
    guide_channel_axis: int | None = None,
    data_range: Real | None = None,
    patch_weights: PatchWeights = "flat",
    patch_sigma: Real | None = None,
    return_settings: Literal[False] = False,
) -> Array: ...


@overload
def denoise(
    image: ArrayLike,
    sigma: SigmaLike | None = None,
    *,
    noise: NoiseModel = "gaussian",
    gain: Real | None = None,
    h: Real | Literal["auto"] | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    method: Method | None = None,
    channel_axis: int | None = None,
    guide: ArrayLike | None = None,
    guide_sigma: Real | None = None,
    guide_channel_axis: int | None = None,
    data_range: Real | None = None,
    patch_weights: PatchWeights = "flat",
    patch_sigma: Real | None = None,
    return_settings: Literal[True],
) -> tuple[Array, Settings]: ...


def denoise(
    image: ArrayLike,
    sigma: SigmaLike | None = None,
    *,
    noise: NoiseModel = "gaussian",
    gain: Real | None = None,
    h: Real | Literal["auto"] | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    method: Method | None = None,
    channel_axis: int | None = None,
    guide: ArrayLike | None = None,
    guide_sigma: Real | None = None,
    guide_channel_axis: int | None = None,
    data_range: Real | None = None,
    patch_weights: PatchWeights = "flat",
    patch_sigma: Real | None = None,
    return_settings: bool = False,
) -> Array | tuple[Array, Settings]:
    """Denoise an image with Non-Local Means or its relative NL-Bayes.

    NL-means: each pixel becomes a weighted average of the pixels in a search window around it; a pixel's
    weight depends on how alike the patches around the two pixels are. NL-Bayes (the default): groups of
    alike patches are denoised with a Gaussian model of each group.

    Parameters
    ----------
    image : ndarray, shape (H, W), or (H, W, C) / (C, H, W) / ... with ``channel_axis``
        uint8/16/32, int8/16/32, float16/32/64 or a list, finite (the rule: ``nlmeans._validate``). Any
        number of channels.
    sigma : float, sequence of floats, ndarray or None
        Standard deviation of the noise, **on the float image's scale**: for integer input a fraction of
        the dtype's full range (σ = 20 on the 0–255 scale of an 8-bit image is ``sigma=20/255``; int16: σ in
        HU / 65535); for float input in the image's own units. ``None``: estimated with
        :func:`nlmeans.estimate_sigma`.
        With ``noise="poisson-gaussian"`` the σ of the read noise and with ``noise="rician"`` the σ of each
        of the two Gaussian components (see ``noise``); ``None``: estimated with
        :func:`nlmeans.estimate_noise`. Gaussian noise only: a sequence of one σ per channel (one joint run
        with the RMS of the σ_c, and every channel whose σ_c is below half of it denoised alone with its
        own σ_c, so that it is not over-smoothed), or an (H, W) map of σ per pixel (one map for every
        channel), taken inside the kernel by NL-Bayes (stage 1's distances lose the candidates' patch-mean
        σ², each group's model uses its patches' mean σ̄²) and by ``method="pixelwise"`` (flat patches,
        ``h`` not "auto": the distance's bias σ̄_p² + σ̄_q² and h_p = k · σ_p per pixel, a given ``h``
        everywhere), with the preset of the map's RMS σ; otherwise (patchwise, Gaussian patch weights,
        ``h="auto"``) the method runs once per σ level, the map's distinct values or 4 levels spread over
        its range, and each pixel interpolates between the two runs that bracket its σ. A constant sequence
        or map gives the scalar-σ result exactly. Neither with ``guide`` nor ``return_settings``.
    noise : {"gaussian", "poisson", "poisson-gaussian", "rician"}
        The noise model. ``"gaussian"``: additive white Gaussian noise of std ``sigma`` (everything below).
        ``"poisson"``: y = gain · Poisson(x / gain); ``"poisson-gaussian"``: y = gain · Poisson(x / gain)
        + N(0, σ²); ``"rician"``: y = |x + n₁ + i n₂|, n₁, n₂ ~ N(0, σ²) (MRI magnitude). The other models
        run the chosen ``method`` on a variance-stabilised image (noise σ = 1) and map its output back with
        the exact unbiased inverse: the generalized Anscombe transform with Mäkitalo & Foi's closed-form
        inverse [7]_ for the Poisson models, a Rician VST built from the Rice law's moments (Foi 2011 [8]_)
        with its exact unbiased inverse for ``"rician"`` (:mod:`nlmeans.noise_models`); where that Rician
        estimate is dark (below 3σ, where the inverse is steep) it moves to the squared-domain estimate
        sqrt(max(m₂ − 2σ², 0)), m₂ the mean of y² over pixels of alike patches in the estimate [9]_ [10]_
        (:func:`nlmeans.noise_models.rician_dark_correction`). **Units**: for the
        Poisson models every value, ``gain`` and ``sigma`` are in the image's own units and integer images
        are NOT scaled to [0, 1] (uint16 counts with ``gain=1`` are photon counts); for ``"rician"`` σ
        follows the usual rule (integers scaled to [0, 1]). ``h``, if given, is then on the stabilised
        scale (noise σ = 1), ``data_range`` is not used, ``guide`` is refused, and ``return_settings``
        returns the settings of the run on the stabilised image mapped onto [0, 1].
    gain : float > 0 or None
        The Poisson models' gain (image units per count); ``None``: estimated with
        :func:`nlmeans.estimate_noise`. Refused with ``"gaussian"`` and ``"rician"``.
    h : float, None or "auto"
        Filtering parameter, same scale as ``sigma``; larger h averages more. ``None``: ``h = k(σ) · σ``
        with ``k`` from the preset table (measured on a standard set: 0.55–0.70), but at least
        ``1e-3 · data_range`` so that a clean image (σ = 0) comes back unchanged. ``"auto"``: the h that
        minimises Stein's unbiased risk estimate (Monte-Carlo SURE, :func:`nlmeans.sure.choose_h`), found
        without the clean image at the cost of 16 extra NL-means runs per patch size tried; when
        ``patch_size`` is None, the patch size is chosen too, among the preset's and the odd sizes 2 below
        and above (48 runs). Not with ``guide``.
    patch_size : odd int or None
        Side P of the square patches compared, at most the image's smaller side. ``None``: from the preset
        table by σ (3 to 11; NL-Bayes: 5 or 7), shrunk to fit small images.
    search_size : odd int or None
        Side S of the square search window, at most the image's smaller side. ``None``: preset (21;
        NL-Bayes: 31 or 41 in stage 1, 21 or 41 in stage 2), shrunk to fit small images.
    method : {None, "nlbayes", "pixelwise", "patchwise"}
        ``None`` (default): ``"nlbayes"``, the best measured (bench/results/nl_family.md), or ``"pixelwise"``
        when ``h``, ``guide``, ``patch_weights`` or ``patch_sigma`` is given. ``"pixelwise"``: the estimator
        in the Notes. ``"patchwise"``: the patchwise NL-means of IPOL 2011 [2]_: every patch B(p) gets
        the estimate Σ_q w(p,q) v(B(q)) / C(p), C(p) = Σ_q w(p,q) (each patch normalised by its own weight
        sum, exactly, as IPOL's code does, not the pooled approximation), and each pixel is the mean of
        the P² patch estimates that contain it (patches centred up to f pixels outside the image count, on
        the reflected extension).
        ``"nlbayes"``: NL-Bayes [4]_ [5]_, two stages of Gaussian models of groups of similar patches
        (:func:`nlmeans.nlbayes.nlbayes_chw`); it has its own patch/search presets (``nlbayes_params``)
        and uses no ``h`` and no guide; the best of the three on our benchmark (bench/results/nl_family.md:
        mean PSNR within 0.25 dB of BM3D at σ = 10–50, more than 10× faster).
    channel_axis : int or None
        Axis of the channels. ``None``: a 2-D gray image. One weight per pixel pair serves all channels.
    guide : ndarray or None
        Guided (joint) NL-means: patch distances and weights are computed on ``guide`` (same height and width,
        any number of channels, any supported dtype) and the averages are taken over ``image``.
    guide_sigma : float or None
        Noise level of ``guide`` for the distance correction, on the guide's float scale; ``None``: estimated
        (use 0 for a clean guide). Ignored without ``guide``.
    guide_channel_axis : int or None
        Channel axis of a multichannel ``guide``; ``None``: the same as ``channel_axis``.
    data_range : float or None
        Range of the float image's values, used only to read σ on the 0–255 scale when choosing presets and
        the h floor. ``None``: 1.0 (integer images are scaled to [0, 1]).

    patch_weights : {"flat", "gaussian"}
        NL-means patch distance: ``"flat"`` the mean of the squared differences (IPOL 2011); ``"gaussian"``
        the weighted mean with weights g(j) = exp(−|j|² / (2a²)) over the patch offsets j (Buades et al.
        2005 [1]_), a = ``patch_sigma``. Measured worse than flat with the default h (bench/results).
    patch_sigma : float or None
        a, in **pixels**, for ``patch_weights="gaussian"``; ``None``: half the patch side.
    return_settings : bool
        Also return the :class:`Settings` the call used (method, σ and whether it was estimated, h, sizes).

    Returns
    -------
    denoised : ndarray
        Same shape and dtype as ``image``. Integer input is mapped from its dtype's range to [0, 1], computed
        in float32 (32-bit integers in float64) and comes back rounded and clipped to its dtype's range;
        float16 and float32 are computed in float32 and float64 in float64, the range untouched.
    settings : Settings
        Only with ``return_settings=True``: the parameters used (σ and h on the float image's scale;
        ``settings.sigma_255`` on the 0–255 scale).

    Raises
    ------
    TypeError
        Unsupported dtype or parameter type.
    ValueError
        Wrong number of dimensions, NaN or inf, an empty image, even or non-positive sizes, sizes larger than
        the image, ``sigma < 0``, ``h <= 0``, an unknown method or noise model, ``gain <= 0``, ``gain``
        with a model that has none, or a guide of another size.

    Notes
    -----
    For a noisy image v, patch side P = 2f + 1 and search side S = 2r + 1:

    - d²(p, q) = mean over the P×P patch offsets j and over the channels of (v(p + j) − v(q + j))²
    - w(p, q) = exp(−max(d²(p, q) − 2σ², 0) / h²)
    - u(p) = Σ_q w(p, q) v(q) / Σ_q w(p, q), q over the S×S window centred on p (q = p included, weight 1).

    Boundary: the image is extended by mirror reflection without repeating the edge pixel (numpy's
    ``mode="reflect"``), so windows and patches near the border see reflected pixels. Every pixel follows
    the formula on that extended image.

    The fast path loops over the search offsets and box-filters the squared differences (Darbon et al.
    2008), in parallel over row bands with numba. float64 input is computed with libm's exponential and
    matches the formula to about 1e-15 relative; float32 uses a vectorised exponential (relative error
    < 3e-6) and matches to about 1e-6 of the data range.

    References
    ----------
    .. [1] A. Buades, B. Coll and J.-M. Morel, "A non-local algorithm for image denoising", CVPR 2005.
    .. [2] A. Buades, B. Coll and J.-M. Morel, "Non-Local Means Denoising", Image Processing On Line 1, 2011.
    .. [3] J. Darbon, A. Cunha, T. F. Chan, S. Osher and G. J. Jensen, "Fast nonlocal filtering applied to
       electron cryomicroscopy", ISBI 2008.
    .. [4] M. Lebrun, A. Buades and J.-M. Morel, "A nonlocal Bayesian image denoising algorithm", SIAM J.
       Imaging Sciences 6(3), 2013.
    .. [5] M. Lebrun, A. Buades and J.-M. Morel, "Implementation of the Non-Local Bayes (NL-Bayes) image
       denoising algorithm", Image Processing On Line 3, 2013.
    .. [6] S. Ramani, T. Blu and M. Unser, "Monte-Carlo SURE: a black-box optimization of regularization
       parameters for general denoising algorithms", IEEE Trans. Image Processing 17(9), 2008.
    .. [7] M. Mäkitalo and A. Foi, "Optimal inversion of the generalized Anscombe transformation for
       Poisson-Gaussian noise", IEEE Trans. Image Processing 22(1), 2013.
    .. [8] A. Foi, "Noise estimation and removal in MR imaging: the variance-stabilization approach",
       ISBI 2011.
    .. [9] J. V. Manjón, J. Carbonell-Caballero, J. J. Lull, G. García-Martí, L. Martí-Bonmatí and M. Robles,
       "MRI denoising using Non-Local Means", Medical Image Analysis 12(4), 2008.
    .. [10] J. V. Manjón, P. Coupé, A. Buades, D. L. Collins and M. Robles, "New methods for MRI denoising based
       on sparseness and self-similarity", Medical Image Analysis 16(1), 2012.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> clean = np.tile(np.linspace(0, 1, 64), (64, 1))
    >>> noisy = nlmeans.add_noise(clean, 0.1, seed=0)
    >>> out = nlmeans.denoise(noisy, 0.1)
    >>> bool(nlmeans.psnr(clean, out) > nlmeans.psnr(clean, noisy) + 5)
    True
    """
    arr = check_array(image)
    model = check_noise_model(noise) != "gaussian" or gain is not None
    if noise not in POISSON_MODELS:  # the Poisson models count in the image's own units
        # (with a noise model h is on the stabilised scale, where the noise's σ is 1)
        check_integer_scale(arr.dtype, sigma=sigma, h=None if model else h)
    axis = check_channel_axis(arr, channel_axis)
    if model or is_sigma_array(sigma):
        # other noise models and σ per channel / per pixel run this function with one σ inside
        options = dict(h=h, patch_size=patch_size, search_size=search_size, method=method, guide=guide,
                       guide_sigma=guide_sigma, guide_channel_axis=guide_channel_axis, data_range=data_range,
                       patch_weights=patch_weights, patch_sigma=patch_sigma, return_settings=return_settings)
        from .noise_models import denoise_in_model  # (imported when used: start-up time)
        from .sigma_arrays import denoise_sigma_array

        if not model:
            return denoise_sigma_array(denoise, arr, axis, sigma, options)
        if is_sigma_array(sigma):
            raise ValueError(f"sigma must be one number with noise={noise!r}; per-channel σ and σ maps are "
                             "for noise='gaussian'")
        return denoise_in_model(denoise, arr, axis, noise, sigma, gain, options)
    method, patch_sigma = check_method_options(method, h=h, guide=guide, patch_weights=patch_weights,
                                               patch_sigma=patch_sigma)
    data_range = default_data_range(data_range)
    dtype = work_dtype(arr.dtype)
    value = to_chw(arr, axis, dtype)
    n_channels, height, width = value.shape

    guide_chw = value
    if guide is not None:
        garr = check_array(guide, "guide")
        gaxis = channel_axis if guide_channel_axis is None and garr.ndim == 3 else guide_channel_axis
        gaxis = check_channel_axis(garr, gaxis, "guide")
        guide_chw = to_chw(garr, gaxis, dtype)
        if guide_chw.shape[1:] != (height, width):
            raise ValueError(
                f"guide has height×width {guide_chw.shape[1]}×{guide_chw.shape[2]} but image has "
                f"{height}×{width}; they must be the same"
            )
        if guide_sigma is None:
            guide_sigma = estimate_sigma(garr, channel_axis=gaxis)
            logging.getLogger(__name__).info("guide sigma estimated: %.4g (float scale)", guide_sigma)
        else:
            guide_sigma = check_real(guide_sigma, "guide_sigma", minimum=0)
        if isinstance(h, str) and h == "auto":
            raise ValueError("h='auto' is not supported with a guide; give h as a positive number")

    auto_h = isinstance(h, str)
    if auto_h and h != "auto":
        raise ValueError(f"h={h!r} is not allowed; give a positive number, None or 'auto'")
    # NL-Bayes takes σ from here (and the same size checks) but has its own presets
    settings = resolve_parameters(
        (height, width), sigma, h=None if auto_h else h, patch_size=patch_size, search_size=search_size,
        n_channels=guide_chw.shape[0], data_range=data_range,
        estimate=lambda: estimate_sigma(arr, channel_axis=axis),
    )
    if auto_h and settings.sigma > 0:
        from .sure import choose_h

        # without a given patch size, SURE also picks it among the preset's and its odd neighbours
        limit = min(height, width)
        p = settings.patch_size
        sizes = None if patch_size is not None else [q for q in (p - 2, p, p + 2) if 1 <= q <= limit]
        h_auto, p_auto, risk = choose_h(arr, settings.sigma, patch_size=p, search_size=settings.search_size,
                                        channel_axis=axis, patch_sizes=sizes, data_range=data_range)
        settings = replace(settings, h=h_auto, patch_size=p_auto, sure_risk=risk)
    if method == "nlbayes":
        out, settings = _run_nlbayes(arr, axis, value, settings, patch_size, search_size)
        return (out, settings) if return_settings else out
    check_magnitude(arr if guide is None else garr, "image" if guide is None else "guide",
                    guide_chw.shape[0] * settings.patch_size**2, dtype)
    settings = nlmeans_settings(settings, method, patch_weights, patch_sigma, guide_sigma)
    from .nlm import run_nlmeans_chw  # the NL-means kernels: not imported (25 ms) on NL-Bayes's path

    out = run_nlmeans_chw(value, guide_chw, settings, settings.sigma if guide is None else guide_sigma)
    out = out[0] if axis is None else np.moveaxis(out, 0, axis)
    out = from_float(out, arr.dtype)
    return (out, settings) if return_settings else out




