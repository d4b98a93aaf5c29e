"""The public ``denoise()``: validate, convert, pick parameters, call a kernel, convert back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numba
import numpy as np

from . import _config
from ._validate import (
    check_array,
    check_channel_axis,
    check_magnitude,
    check_odd_size,
    check_real,
    default_data_range,
    from_float,
    sigma_to_255,
    to_float,
    work_dtype,
)
from .kernels import weight_constants
from .kernels.offsets import _nlm_offsets
from .kernels.pixelwise import _VBYTES, _nlm_pixelwise
from .noise_level import estimate_sigma
from .presets import (
    PATCH_WEIGHTS,
    default_h,
    default_patch_sigma,
    fit_size,
    preset_for,
    resolve_method,
    resolve_nlbayes,
)


@dataclass(frozen=True)
class Settings:
    """What a denoise call used; σ and h on the float image's scale (see ``data_range``)."""

    method: str
    sigma: float
    h: float | None  # None for NL-Bayes, which has no h
    patch_size: int
    search_size: int
    guide_sigma: float | None
    data_range: float
    sigma_estimated: bool
    patch_weights: str = "flat"
    patch_sigma: float | None = None
    #: Monte-Carlo SURE estimate of the mean squared error (float scale squared) when h was chosen with
    #: ``h="auto"``; None otherwise
    sure_risk: float | None = None
    #: the NL-Bayes parameters (keyword arguments of :func:`nlmeans.nlbayes.nlbayes_chw`) when the method is
    #: "nlbayes"; None otherwise
    nlbayes: dict | None = None

    @property
    def sigma_255(self):
        """σ on the 0–255 scale."""
        return sigma_to_255(self.sigma, self.data_range)

    @property
    def h_255(self):
        """h on the 0–255 scale."""
        return None if self.h is None else sigma_to_255(self.h, self.data_range)

    def as_dict(self):
        return asdict(self)


def _to_chw(arr, axis, dtype):
    """Float, channel-first, C-contiguous copy of ``arr`` (a gray image gets one channel)."""
    x = to_float(arr, dtype)
    x = x[None] if axis is None else np.moveaxis(x, axis, 0)
    return np.ascontiguousarray(x)




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
    g = np.ones(patch_size) if patch_sigma is None else np.exp(-(j**2) / (2.0 * patch_sigma**2))
    return g.astype(dtype)


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


def _preset_sizes(preset):
    return preset.patch_size, preset.search_size


def resolve_parameters(shape, sigma=None, *, h=None, patch_size=None, search_size=None, n_channels=1,
                       data_range=None, estimate=None, choose_h=None, preset_sizes=_preset_sizes,
                       side_name="the image's smaller side"):
    """The NL-means parameters a call uses: σ, presets by σ, patch and search sizes, h; one rule for every
    entry point (:func:`run_denoise`, :mod:`nlmeans.tiles` and :mod:`nlmeans.dask`, :mod:`nlmeans.volume`).

    Parameters
    ----------
    shape : tuple of int
        The spatial sides (H, W) (a volume: (Z, Y, X)); the sizes may not exceed the smallest.
    sigma, h : float or None
        **On the float image's scale** (integers scaled to [0, 1]). ``sigma=None``: ``estimate()``.
        ``h=None``: :func:`nlmeans.presets.default_h`; ``h="auto"`` only when ``choose_h`` is given.
    patch_size, search_size : odd int or None
        ``None``: ``preset_sizes(preset)``, shrunk to the largest odd size that fits ``shape``.
    n_channels : int
        Channels the patch distance spans (picks the gray or the color preset table).
    data_range : float or None
        Range of the float values, to read σ on the 0–255 scale; ``None``: 1.0.
    estimate : callable or None
        ``estimate() -> σ``, called only when ``sigma`` is None.
    choose_h : callable or None
        ``choose_h(sigma, patch_size, search_size, patch_sizes) -> (h, patch_size, sure_risk)`` for
        ``h="auto"`` (``patch_sizes``: the sizes to try, None when ``patch_size`` was given); None: a string h
        is refused as not a number.
    preset_sizes : callable
        ``preset -> (patch_size, search_size)`` before shrinking; default the preset's own.
    side_name : str
        How errors name the smallest side.

    Returns
    -------
    Settings
        ``method="pixelwise"``, no guide, flat patch weights; callers replace what they use differently.
    """
    data_range = default_data_range(data_range)
    sigma_estimated = sigma is None
    sigma = estimate() if sigma_estimated else check_real(sigma, "sigma", minimum=0)
    preset = preset_for(sigma_to_255(sigma, data_range), n_channels)
    limit = min(shape)
    limit_name = f"{side_name} ({limit} pixels)"
    preset_patch, preset_search = preset_sizes(preset)
    patch_given = patch_size is not None
    if patch_size is None:
        patch_size = fit_size(preset_patch, limit)
    else:
        patch_size = check_odd_size(patch_size, "patch_size", at_most=limit, limit_name=limit_name)
    if search_size is None:
        search_size = fit_size(preset_search, limit)
    else:
        search_size = check_odd_size(search_size, "search_size", at_most=limit, limit_name=limit_name)
    sure_risk = None
    if isinstance(h, str) and choose_h is not None:
        if h != "auto":
            raise ValueError(f"h={h!r} is not allowed; give a positive number, None or 'auto'")
        if sigma > 0:
            # without a given patch size, SURE also picks it among the preset's and its odd neighbours
            sizes = None if patch_given else [
                p for p in (patch_size - 2, patch_size, patch_size + 2) if 1 <= p <= limit
            ]
            h, patch_size, sure_risk = choose_h(sigma, patch_size, search_size, sizes)
        else:
            h = default_h(sigma, preset, data_range)
    elif h is None:
        h = default_h(sigma, preset, data_range)
    else:
        h = check_real(h, "h", minimum=0, strict=True)
    return Settings("pixelwise", sigma, h, patch_size, search_size, None, data_range, sigma_estimated,
                    sure_risk=sure_risk)


def check_method_options(method, *, h=None, guide=None, patch_weights="flat", patch_sigma=None):
    """``(method, patch_sigma)`` checked: the method by :func:`nlmeans.presets.resolve_method`, the patch
    distance options, and no NL-means-only option with NL-Bayes."""
    method = resolve_method(method, h=h, guide=guide, patch_weights=patch_weights, patch_sigma=patch_sigma)
    if not isinstance(patch_weights, str) or patch_weights not in PATCH_WEIGHTS:
        raise ValueError(
            f"patch_weights={patch_weights!r} is not known; allowed: {', '.join(PATCH_WEIGHTS)}"
        )
    if patch_sigma is not None:
        patch_sigma = check_real(patch_sigma, "patch_sigma", minimum=0, strict=True)
        if patch_weights != "gaussian":
            raise ValueError(f"patch_sigma={patch_sigma!r} needs patch_weights='gaussian'")
    if method == "nlbayes":
        unused = {"guide": guide is not None, "h": h is not None, "patch_weights": patch_weights != "flat"}
        for name, given in unused.items():
            if given:
                raise ValueError(f"{name} is not used by method='nlbayes'; leave it at its default")
    return method, patch_sigma


def nlmeans_settings(settings, method, patch_weights="flat", patch_sigma=None, guide_sigma=None):
    """The NL-means methods' :class:`Settings`: ``settings`` from :func:`resolve_parameters` with the method,
    the patch distance (a Gaussian's default ``patch_sigma`` from the patch size) and the guide's σ."""
    if patch_weights == "gaussian" and patch_sigma is None:
        patch_sigma = default_patch_sigma(settings.patch_size)
    return replace(settings, method=method, guide_sigma=guide_sigma, patch_weights=patch_weights,
                   patch_sigma=patch_sigma)


def run_nlmeans_chw(value, guide, settings, distance_sigma):
    """NL-means with resolved :class:`Settings` on channel-first float arrays: the symmetric pixelwise
    kernel for the flat distance, the offset loop for patchwise aggregation or Gaussian patch weights.
    ``distance_sigma``: the σ of the patch distance (the guide's when there is one)."""
    if settings.method == "pixelwise" and settings.patch_weights == "flat":
        return nlmeans_chw(value, guide, distance_sigma, settings.h, settings.patch_size, settings.search_size)
    return nlmeans_offsets_chw(value, guide, distance_sigma, settings.h, settings.patch_size,
                               settings.search_size, patchwise=settings.method == "patchwise",
                               patch_sigma=settings.patch_sigma)


def nlbayes_settings(settings, shape, n_channels, patch_size=None, search_size=None):
    """NL-Bayes's :class:`Settings` from the NL-means ones (σ and its estimate, the size checks): its own
    presets (:func:`nlmeans.presets.resolve_nlbayes`) for the (H, W) ``shape``; h is None. ``patch_size`` and
    ``search_size`` as the caller gave them (None: presets). ``search_size`` records stage 1's window."""
    params = resolve_nlbayes(shape, sigma_to_255(settings.sigma, settings.data_range), n_channels, patch_size,
                             search_size)
    return Settings("nlbayes", settings.sigma, None, params["patch_size"], params["search_size"][0],
                    None, settings.data_range, settings.sigma_estimated, nlbayes=params)


def _run_nlbayes(arr, axis, value, settings, patch_size, search_size):
    """The ``method="nlbayes"`` branch of :func:`run_denoise` (inputs already validated and converted)."""
    from .nlbayes import nlbayes_checked

    settings = nlbayes_settings(settings, value.shape[1:], value.shape[0], patch_size, search_size)
    out = nlbayes_checked(value, settings.sigma, settings.nlbayes)
    out = out[0] if axis is None else np.moveaxis(out, 0, axis)
    return from_float(out, arr.dtype), settings


def denoise(
    image,
    sigma=None,
    *,
    h=None,
    patch_size=None,
    search_size=None,
    method=None,
    channel_axis=None,
    guide=None,
    guide_sigma=None,
    guide_channel_axis=None,
    data_range=None,
    patch_weights="flat",
    patch_sigma=None,
    return_settings=False,
):
    """Denoise an image with Non-Local Means or its relative NL-Bayes.

    NL-means: each pixel becomes a weighted average of the pixels in a search window around it; a pixel's
    weight depends on how alike the patches around the two pixels are. NL-Bayes (the default): groups of
    alike patches are denoised with a Gaussian model of each group.

    Parameters
    ----------
    image : ndarray, shape (H, W), or (H, W, C) / (C, H, W) / ... with ``channel_axis``
        uint8, uint16, float32 or float64, finite. Any number of channels.
    sigma : float or None
        Standard deviation of the noise, **on the float image's scale**: for uint8/uint16 input a fraction of
        the dtype's full range (σ = 20 on the 0–255 scale of an 8-bit image is ``sigma=20/255``); for float
        input in the image's own units. ``None``: estimated with :func:`nlmeans.estimate_sigma`.
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
        Same shape and dtype as ``image``. Integer input is computed on [0, 1] in float32 and comes back
        rounded and clipped to its dtype's range; float32 is computed in float32 and float64 in float64, the
        range untouched.
    settings : Settings
        Only with ``return_settings=True``: the parameters used (σ and h on the float image's scale;
        ``settings.sigma_255`` on the 0–255 scale).

    Raises
    ------
    TypeError
        Unsupported dtype or parameter type.
    ValueError
        Wrong number of dimensions, NaN or inf, an empty image, even or non-positive sizes, sizes larger than
        the image, ``sigma < 0``, ``h <= 0``, an unknown method, or a guide of another size.

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
    < 3e-7) and matches to about 1e-6 of the data range.

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
    axis = check_channel_axis(arr, channel_axis)
    method, patch_sigma = check_method_options(method, h=h, guide=guide, patch_weights=patch_weights,
                                               patch_sigma=patch_sigma)
    data_range = default_data_range(data_range)
    dtype = work_dtype(arr.dtype)
    value = _to_chw(arr, axis, dtype)
    n_channels, height, width = value.shape

    guide_chw = value
    if guide is not None:
        garr = check_array(guide, "guide")
        gaxis = channel_axis if guide_channel_axis is None and garr.ndim == 3 else guide_channel_axis
        gaxis = check_channel_axis(garr, gaxis, "guide")
        guide_chw = _to_chw(garr, gaxis, dtype)
        if guide_chw.shape[1:] != (height, width):
            raise ValueError(
                f"guide has height×width {guide_chw.shape[1]}×{guide_chw.shape[2]} but image has "
                f"{height}×{width}; they must be the same"
            )
        if guide_sigma is None:
            guide_sigma = estimate_sigma(garr, channel_axis=gaxis)
        else:
            guide_sigma = check_real(guide_sigma, "guide_sigma", minimum=0)
        if isinstance(h, str) and h == "auto":
            raise ValueError("h='auto' is not supported with a guide; give h as a positive number")

    def sure(sigma, patch_size, search_size, patch_sizes):
        from .sure import choose_h

        return choose_h(arr, sigma, patch_size=patch_size, search_size=search_size, channel_axis=axis,
                        patch_sizes=patch_sizes, data_range=data_range)

    # NL-Bayes takes σ from here (and the same size checks) but has its own presets
    settings = resolve_parameters(
        (height, width), sigma, h=h, patch_size=patch_size, search_size=search_size,
        n_channels=guide_chw.shape[0], data_range=data_range,
        estimate=lambda: estimate_sigma(arr, channel_axis=axis), choose_h=sure,
    )
    if method == "nlbayes":
        out, settings = _run_nlbayes(arr, axis, value, settings, patch_size, search_size)
        return (out, settings) if return_settings else out
    check_magnitude(arr if guide is None else garr, "image" if guide is None else "guide",
                    guide_chw.shape[0] * settings.patch_size**2, dtype)
    settings = nlmeans_settings(settings, method, patch_weights, patch_sigma, guide_sigma)
    out = run_nlmeans_chw(value, guide_chw, settings, settings.sigma if guide is None else guide_sigma)
    out = out[0] if axis is None else np.moveaxis(out, 0, axis)
    out = from_float(out, arr.dtype)
    return (out, settings) if return_settings else out




def run_denoise(*args, **kwargs):  # TEMPORARY until the CLI branch merges: denoise(..., return_settings=True)
    return denoise(*args, **kwargs, return_settings=True)
