"""The public ``denoise()``: validate, convert, pick parameters, call a kernel, convert back."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numba
import numpy as np

from . import _config
from ._kernels import _nlm_pixelwise
from ._validate import (
    check_array,
    check_channel_axis,
    check_odd_size,
    check_real,
    default_data_range,
    from_float,
    to_float,
    work_dtype,
)
from .params import default_h, estimate_sigma, preset_for

#: the estimators ``denoise`` offers
METHODS = ("pixelwise",)


@dataclass(frozen=True)
class Settings:
    """What a denoise call used; σ and h on the float image's scale (see ``data_range``)."""

    method: str
    sigma: float
    h: float
    patch_size: int
    search_size: int
    guide_sigma: float | None
    data_range: float
    sigma_estimated: bool
    #: Monte-Carlo SURE estimate of the mean squared error (float scale squared) when h was chosen with
    #: ``h="auto"``; None otherwise
    sure_risk: float | None = None

    @property
    def sigma_255(self):
        """σ on the 0–255 scale."""
        return 255.0 * self.sigma / self.data_range

    @property
    def h_255(self):
        """h on the 0–255 scale."""
        return 255.0 * self.h / self.data_range

    def as_dict(self):
        return asdict(self)


def _to_chw(arr, axis, dtype):
    """Float, channel-first, C-contiguous copy of ``arr`` (a gray image gets one channel)."""
    x = to_float(arr, dtype)
    x = x[None] if axis is None else np.moveaxis(x, axis, 0)
    return np.ascontiguousarray(x)


def _default_size(preset_size, limit):
    """The preset side length, shrunk to the largest odd size that fits the image."""
    fit = limit if limit % 2 == 1 else limit - 1
    return min(preset_size, max(fit, 1))


def nlmeans_chw(value, guide, sigma, h, patch_size, search_size):
    """NL-means on channel-first float arrays (no validation): the core call of every entry point.

    ``value`` (Cv, H, W) and ``guide`` (Cg, H, W) share one float dtype (float32 or float64; float64 is the
    exact path with libm's exp, float32 the fast one); ``guide`` may be ``value`` itself. Boundary: numpy's
    ``reflect`` padding (mirror without repeating the edge pixel). Returns a new (Cv, H, W) array.
    """
    dtype = value.dtype.type
    f, r = patch_size // 2, search_size // 2
    pad = ((0, 0), (r + f, r + f), (r + f, r + f))
    value_p = np.pad(value, pad, mode="reflect")
    guide_p = value_p if guide is value else np.pad(guide, pad, mode="reflect")
    n_terms = guide.shape[0] * patch_size * patch_size
    a = dtype(1.0 / (n_terms * h * h))
    b = dtype(2.0 * sigma * sigma / (h * h))
    out = np.empty(value.shape, dtype=dtype)
    _nlm_pixelwise(
        guide_p, value_p, f, r, a, b, _config.BAND_ROWS, numba.get_num_threads(),
        dtype is np.float32, out,
    )
    return out


def run_denoise(
    image,
    sigma=None,
    *,
    h=None,
    patch_size=None,
    search_size=None,
    method="pixelwise",
    channel_axis=None,
    guide=None,
    guide_sigma=None,
    guide_channel_axis=None,
    data_range=None,
):
    """``denoise`` that also returns the :class:`Settings` it used (for the CLI and reports)."""
    arr = check_array(image)
    axis = check_channel_axis(arr, channel_axis)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method={method!r} is not known; allowed: {', '.join(METHODS)}")
    data_range = default_data_range(data_range)
    dtype = work_dtype(arr.dtype)
    value = _to_chw(arr, axis, dtype)
    n_channels, height, width = value.shape

    sigma_estimated = sigma is None
    if sigma_estimated:
        sigma = estimate_sigma(arr, channel_axis=axis)
    else:
        sigma = check_real(sigma, "sigma", minimum=0)

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

    preset = preset_for(255.0 * sigma / data_range, guide_chw.shape[0])
    limit = min(height, width)
    patch_given = patch_size is not None
    if patch_size is None:
        patch_size = _default_size(preset.patch_size, limit)
    else:
        patch_size = check_odd_size(patch_size, "patch_size", at_most=limit,
                                    limit_name=f"the image's smaller side ({limit} pixels)")
    if search_size is None:
        search_size = _default_size(preset.search_size, limit)
    else:
        search_size = check_odd_size(search_size, "search_size", at_most=limit,
                                     limit_name=f"the image's smaller side ({limit} pixels)")
    sure_risk = None
    if isinstance(h, str):
        if h != "auto":
            raise ValueError(f"h={h!r} is not allowed; give a positive number, None or 'auto'")
        if guide is not None:
            raise ValueError("h='auto' is not supported with a guide; give h as a positive number")
        if sigma > 0:
            from .sure import choose_h

            # without a given patch size, SURE also picks it among the preset's and its odd neighbours
            sizes = None if patch_given else [
                p for p in (patch_size - 2, patch_size, patch_size + 2) if 1 <= p <= limit
            ]
            h, patch_size, sure_risk = choose_h(
                arr, sigma, patch_size=patch_size, search_size=search_size, channel_axis=axis,
                patch_sizes=sizes, data_range=data_range,
            )
        else:
            h = default_h(sigma, preset, data_range)
    elif h is None:
        h = default_h(sigma, preset, data_range)
    else:
        h = check_real(h, "h", minimum=0, strict=True)

    distance_sigma = sigma if guide is None else guide_sigma
    out = nlmeans_chw(value, guide_chw, distance_sigma, h, patch_size, search_size)
    out = out[0] if axis is None else np.moveaxis(out, 0, axis)
    settings = Settings(
        method, sigma, h, patch_size, search_size, guide_sigma, data_range, sigma_estimated, sure_risk
    )
    return from_float(out, arr.dtype), settings


def denoise(
    image,
    sigma=None,
    *,
    h=None,
    patch_size=None,
    search_size=None,
    method="pixelwise",
    channel_axis=None,
    guide=None,
    guide_sigma=None,
    guide_channel_axis=None,
    data_range=None,
):
    """Denoise an image with Non-Local Means.

    Each pixel becomes a weighted average of the pixels in a search window around it; a pixel's weight
    depends on how alike the patches around the two pixels are.

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
        table by σ (3 to 9), shrunk to fit small images.
    search_size : odd int or None
        Side S of the square search window, at most the image's smaller side. ``None``: preset (21),
        shrunk to fit small images.
    method : {"pixelwise"}
        ``"pixelwise"``: the estimator in the Notes.
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

    Returns
    -------
    denoised : ndarray
        Same shape and dtype as ``image``. Integer input is computed on [0, 1] in float32 and comes back
        rounded and clipped to its dtype's range; float32 is computed in float32 and float64 in float64, the
        range untouched.

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
    .. [4] S. Ramani, T. Blu and M. Unser, "Monte-Carlo SURE: a black-box optimization of regularization
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
    return run_denoise(
        image, sigma, h=h, patch_size=patch_size, search_size=search_size, method=method,
        channel_axis=channel_axis, guide=guide, guide_sigma=guide_sigma,
        guide_channel_axis=guide_channel_axis, data_range=data_range,
    )[0]
