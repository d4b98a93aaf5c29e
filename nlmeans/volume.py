"""Volumes (Z, Y, X) and video (T, Y, X): validate, convert, pick parameters, run NL-Bayes 3-D
(:func:`nlmeans.nlbayes.nlbayes_3d_chw`, the default) or pixelwise NL-means
(:func:`nlmeans.kernels.offsets._nlm_3d`), convert back. σ and h on the float image's scale, as in
:func:`nlmeans.denoise`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from ._typing import Array, ArrayLike, Real, VolumeMethod
from ._validate import (
    check_array,
    check_channel_axis,
    check_int,
    check_integer_scale,
    check_magnitude,
    check_real,
    default_data_range,
    from_float,
    sigma_to_255,
    to_chw,
    work_dtype,
)
from .kernels import weight_constants
from .kernels.offsets import _nlm_3d
from .nlbayes import nlbayes_3d_chw, nlbayes_checked
from .noise_level import estimate_sigma
from .presets import (
    NLBAYES_BAND_SLICES,
    TEMPORAL_RADIUS,
    Settings,
    check_method_options,
    fit_size,
    nlbayes_video_params,
    nlbayes_volume_params,
    resolve_parameters,
    volume_sizes,
)

log = logging.getLogger(__name__)

#: slices σ is estimated on (evenly spaced; the estimate is their mean)
SIGMA_SLICES = 8


def _estimate_sigma_slices(arr, axis):
    """Mean of :func:`nlmeans.estimate_sigma` over up to :data:`SIGMA_SLICES` evenly spaced slices."""
    data = arr if axis is None else np.moveaxis(arr, axis, -1)
    picks = np.unique(np.linspace(0, data.shape[0] - 1, min(SIGMA_SLICES, data.shape[0])).round().astype(int))
    sigma = float(np.mean([estimate_sigma(data[i], channel_axis=None if axis is None else -1) for i in picks]))
    log.info("sigma estimated on %d slices: %.4g (float scale)", len(picks), sigma)
    return sigma


def nlmeans_3d_chw(value: NDArray[Any], sigma: float, h: float, patch_size: int, search_size: int,
                   temporal_radius: int | None = None) -> NDArray[Any]:
    """NL-means on a channel-first float stack ``(C, Z, H, W)`` (no validation).

    ``temporal_radius=None``: a volume, cubic patches and windows, reflect padding on all axes. An int: video,
    2-D patches, spatial window ``search_size`` squared over frames ``t ± temporal_radius`` that exist.
    """
    dtype = value.dtype.type
    f, r = patch_size // 2, search_size // 2
    if temporal_radius is None:
        fz, rz, z_reflect = f, r, True
    else:
        fz, rz, z_reflect = 0, int(temporal_radius), False
    zpad = rz + fz if z_reflect else 0
    padded = np.pad(value, ((0, 0), (zpad, zpad), (r + f, r + f), (r + f, r + f)), mode="reflect")
    n_terms = value.shape[0] * (2 * fz + 1) * patch_size * patch_size
    # the 2-D constants, clamped (a tiny h gives weights 0 or 1, not a division by zero); t = max(S a - b, 0)
    # takes b = a bb, formed in float64 before the rounding to the kernel's dtype
    a, bb = weight_constants(n_terms, sigma, h, float)
    a, b = dtype(a), dtype(a * bb)
    out = np.empty(value.shape, dtype=dtype)
    _nlm_3d(padded, padded, fz, f, rz, r, zpad, z_reflect, a, b, dtype is np.float32, out)
    return out


#: the methods of :func:`denoise_volume` and :func:`denoise_video`
METHODS = ("nlbayes", "pixelwise")


def _method(method, h):
    """The method to run, by :func:`nlmeans.denoise`'s rule (``None``: NL-Bayes, or NL-means when ``h`` is
    given; ``h`` refused with NL-Bayes), among this module's :data:`METHODS`."""
    if method is not None and (not isinstance(method, str) or method not in METHODS):
        raise ValueError(f"method={method!r} is not known; allowed: {', '.join(METHODS)}")
    return check_method_options(method, h=h)[0]


def _run(stack, sigma, h, patch_size, search_size, channel_axis, data_range, temporal_radius, method,
         return_settings):
    arr = check_array(stack)
    check_integer_scale(arr.dtype, sigma=sigma, h=h)
    axis = check_channel_axis(arr, channel_axis, spatial_ndim=3)
    method = _method(method, h)
    value = to_chw(arr, axis, work_dtype(arr.dtype))
    n_channels, depth, height, width = value.shape
    video = temporal_radius is not None
    if video:
        temporal_radius = check_int(temporal_radius, "temporal_radius")
        if temporal_radius < 0:
            raise ValueError(f"temporal_radius must be >= 0, got {temporal_radius}")
        shape = dict(shape=(height, width), side_name="the smaller side of a frame")
    else:
        shape = dict(shape=(depth, height, width), side_name="the volume's smallest side",
                     preset_sizes=volume_sizes)
    sigma_estimated = sigma is None
    if sigma_estimated:
        sigma = _estimate_sigma_slices(arr, axis)
    sigma = check_real(sigma, "sigma", minimum=0)
    if method == "nlbayes":
        sigma_255 = sigma_to_255(sigma, default_data_range(data_range))
        nlb = nlbayes_video_params(sigma_255, temporal_radius) if video else nlbayes_volume_params(sigma_255)
        shape["preset_sizes"] = lambda preset: (nlb["patch_size"], nlb["search_size"])
    # σ is known here; resolve_parameters checks the sizes and fits the presets (and picks NL-means's h)
    used = resolve_parameters(sigma=sigma, h=h, patch_size=patch_size, search_size=search_size,
                              n_channels=n_channels, data_range=data_range, **shape)
    sigma, h, patch_size, search_size = used.sigma, used.h, used.patch_size, used.search_size
    if method == "pixelwise":
        patch_depth = 1 if video else patch_size
        check_magnitude(arr, "volume" if not video else "frames", n_channels * patch_depth * patch_size**2,
                        value.dtype)
        out = nlmeans_3d_chw(value, sigma, h, patch_size, search_size, temporal_radius)
        used = replace(used, sigma_estimated=sigma_estimated)
    else:  # NL-Bayes: any scale, by a power of two (nlbayes_checked)
        nlb.update(patch_size=patch_size, search_size=search_size)
        if video:
            nlb["patch_z"] = fit_size(nlb["patch_z"], depth)
        else:
            nlb.update(patch_z=patch_size, search_z=search_size)
        out = nlbayes_checked(value, sigma, dict(nlb, video=video, band_slices=NLBAYES_BAND_SLICES),
                              run=nlbayes_3d_chw)
        used = replace(used, method="nlbayes", h=None, sigma_estimated=sigma_estimated, nlbayes=nlb)
    out = out[0] if axis is None else np.moveaxis(out, 0, axis)
    out = from_float(out, arr.dtype)
    return (out, used) if return_settings else out


@overload
def denoise_volume(
    volume: ArrayLike,
    sigma: Real | None = None,
    *,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    return_settings: Literal[False] = False,
) -> Array: ...


@overload
def denoise_volume(
    volume: ArrayLike,
    sigma: Real | None = None,
    *,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    return_settings: Literal[True],
) -> tuple[Array, Settings]: ...


def denoise_volume(
    volume: ArrayLike,
    sigma: Real | None = None,
    *,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    return_settings: bool = False,
) -> Array | tuple[Array, Settings]:
    """Denoise a 3-D volume with NL-Bayes (default) or pixelwise Non-Local Means: cubic patches, cubic
    search window.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X), or with ``channel_axis`` (Z, Y, X, C) / ...
        any dtype of nlmeans.denoise (integers mapped to [0, 1]), finite.
    sigma : float or None
        Noise standard deviation **on the float image's scale** (integers are scaled to [0, 1]: σ = 20 on
        the 0–255 scale of an 8-bit volume is ``20/255``). ``None``: the mean of :func:`nlmeans.estimate_sigma`
        over up to 8 evenly spaced Z slices.
    method : {None, "nlbayes", "pixelwise"}
        ``None`` (default): ``"nlbayes"``, or ``"pixelwise"`` when ``h`` is given (as in
        :func:`nlmeans.denoise`). ``"nlbayes"``: NL-Bayes with 3-D patches (:func:`nlmeans.nlbayes.nlbayes_3d_chw`,
        presets :func:`nlmeans.presets.nlbayes_volume_params`: 3×3×3 patches, groups of 60 then 30 in a 9×9×9
        window). ``"pixelwise"``: NL-means, described in the Notes.
    h : float or None
        NL-means only. Filtering parameter, same scale as σ. ``None``: ``k(σ)·σ`` from the 2-D preset table.
    patch_size : odd int or None
        Side of the cubic patch (both stages of NL-Bayes), at most the volume's smallest side. ``None``: the
        method's preset (NL-Bayes 3; NL-means the 2-D preset, at most 5).
    search_size : odd int or None
        Side of the cubic search window. ``None``: NL-Bayes 9, NL-means 7 (shrunk to fit small volumes).
    channel_axis : int or None
        Axis of the channels; ``None``: a single-channel volume.
    data_range : float or None
        Range of float data, used only to read σ on the 0–255 scale for the presets. ``None``: 1.0.
    return_settings : bool
        Also return the :class:`~nlmeans.presets.Settings` used (method, σ and whether it was estimated, sizes).

    Returns
    -------
    denoised : ndarray
        Same shape and dtype as ``volume`` (integers computed in float32 on [0, 1], rounded and clipped).
    settings : Settings
        Only with ``return_settings=True``.

    Notes
    -----
    NL-Bayes: the two stages of :func:`nlmeans.denoise`'s NL-Bayes with P×P×P patches: groups of the most
    similar patches in the S×S×S window, a Gaussian model per group, every estimate of a voxel averaged.

    Pixelwise NL-means: for patch side P = 2f+1 and search side S = 2r+1: d²(p, q) = mean over the P³ patch
    offsets and the channels of (v(p+j) − v(q+j))², w = exp(−max(d² − 2σ², 0)/h²), u(p) = Σ_q w v(q) / Σ_q w
    over the S³ window (centre included, weight 1). The kernel loops over search offsets with separable box
    filters (Darbon et al. 2008), in parallel over Z slices. Both methods extend the volume by numpy's
    ``reflect`` padding on all axes; ``tests/naive.py`` holds the direct loops the kernels are tested against.

    References
    ----------
    .. [1] A. Buades, B. Coll and J.-M. Morel, "A non-local algorithm for image denoising", CVPR 2005.
    .. [2] P. Coupé, P. Yger, S. Prima, P. Hellier, C. Kervrann and C. Barillot, "An optimized blockwise
       nonlocal means denoising filter for 3-D magnetic resonance images", IEEE TMI 27(4), 2008.
    .. [3] J. Darbon, A. Cunha, T. F. Chan, S. Osher and G. J. Jensen, "Fast nonlocal filtering applied to
       electron cryomicroscopy", ISBI 2008.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> clean = np.zeros((16, 32, 32)); clean[4:12, 8:24, 8:24] = 1.0
    >>> noisy = nlmeans.add_noise(clean, 0.2, seed=0)
    >>> out = nlmeans.denoise_volume(noisy, 0.2)
    >>> bool(nlmeans.psnr(clean, out) > nlmeans.psnr(clean, noisy) + 5)
    True
    """
    return _run(volume, sigma, h, patch_size, search_size, channel_axis, data_range, None, method,
                return_settings)


@overload
def denoise_video(
    frames: ArrayLike,
    sigma: Real | None = None,
    *,
    temporal_radius: int = TEMPORAL_RADIUS,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    return_settings: Literal[False] = False,
) -> Array: ...


@overload
def denoise_video(
    frames: ArrayLike,
    sigma: Real | None = None,
    *,
    temporal_radius: int = TEMPORAL_RADIUS,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    return_settings: Literal[True],
) -> tuple[Array, Settings]: ...


def denoise_video(
    frames: ArrayLike,
    sigma: Real | None = None,
    *,
    temporal_radius: int = TEMPORAL_RADIUS,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    return_settings: bool = False,
) -> Array | tuple[Array, Settings]:
    """Denoise a stack of frames (T, Y, X) with NL-Bayes on space-time patches (default) or pixelwise
    Non-Local Means, both searching neighbouring frames.

    The search window is S×S pixels in every frame t − R … t + R that exists (``R = temporal_radius``; the
    window is cut, not reflected, at the first and last frame). NL-Bayes (Arias & Morel 2018): patches of
    3 frames × P×P pixels (fewer frames if the video has fewer), groups of the most similar space-time
    patches in that window, a Gaussian model per group, two stages, every estimate of a pixel averaged
    (presets :func:`nlmeans.presets.nlbayes_video_params`). NL-means: weights compare 2-D P×P patches, as
    OpenCV's ``fastNlMeansDenoisingMulti`` does.

    Parameters
    ----------
    frames : ndarray, shape (T, Y, X), or with ``channel_axis`` (T, Y, X, C) / ...
        any dtype of nlmeans.denoise (integers mapped to [0, 1]), finite.
    sigma : float or None
        Noise standard deviation **on the float image's scale** (integers scaled to [0, 1]). ``None``: the mean
        of :func:`nlmeans.estimate_sigma` over up to 8 evenly spaced frames.
    temporal_radius : int
        Frames on each side searched (default 2, i.e. 5 frames); 0 searches each frame on its own (NL-Bayes's
        3-frame patches still see the neighbouring frames).
    method : {None, "nlbayes", "pixelwise"}
        ``None`` (default): ``"nlbayes"``, or ``"pixelwise"`` when ``h`` is given.
    h, patch_size, search_size, channel_axis, data_range
        As in :func:`nlmeans.denoise` (``h`` NL-means only; sizes are spatial, at most the frame's smaller
        side; ``None``: the method's preset, NL-Bayes 5 and 15).
    return_settings : bool
        Also return the :class:`~nlmeans.presets.Settings` used (method, σ and whether it was estimated, sizes).

    Returns
    -------
    denoised : ndarray
        Same shape and dtype as ``frames``.
    settings : Settings
        Only with ``return_settings=True``.

    Notes
    -----
    NL-means: d²(p, q) = mean over the P×P patch offsets (in the frames of p and q) and the channels of
    (v(p+j) − v(q+j))²; w and u as in :func:`nlmeans.denoise`. Spatial boundary: numpy's ``reflect``.

    References
    ----------
    .. [1] A. Buades, B. Coll and J.-M. Morel, "Denoising image sequences does not require motion
       estimation", IEEE AVSS 2005.
    .. [2] A. Buades, B. Coll and J.-M. Morel, "Non-Local Means Denoising", Image Processing On Line 1, 2011.
    .. [3] P. Arias and J.-M. Morel, "Video denoising via empirical Bayesian estimation of space-time
       patches", J. Math. Imaging and Vision 60(1), 2018.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> frame = np.tile(np.linspace(0, 1, 48), (48, 1))
    >>> clean = np.stack([np.roll(frame, t, axis=1) for t in range(8)])  # a ramp moving right
    >>> noisy = nlmeans.add_noise(clean, 0.1, seed=0)
    >>> out = nlmeans.denoise_video(noisy, 0.1)
    >>> bool(nlmeans.psnr(clean, out) > nlmeans.psnr(clean, noisy) + 5)
    True
    """
    if temporal_radius is None:
        raise TypeError("temporal_radius must be an integer >= 0, got None")
    return _run(frames, sigma, h, patch_size, search_size, channel_axis, data_range, temporal_radius, method,
                return_settings)
