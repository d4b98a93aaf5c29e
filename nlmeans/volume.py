"""NL-means on 3-D volumes (Z, Y, X) and on video (T, Y, X): validate, convert, pick parameters, call
:func:`nlmeans.kernels.offsets._nlm_3d`, convert back. σ and h on the float image's scale, as in
:func:`nlmeans.denoise`.
"""

from __future__ import annotations

import numpy as np

from ._validate import (
    check_array,
    check_channel_axis,
    check_int,
    check_magnitude,
    from_float,
    to_chw,
    work_dtype,
)
from .kernels import weight_constants
from .kernels.offsets import _nlm_3d
from .noise_level import estimate_sigma
from .presets import TEMPORAL_RADIUS, resolve_parameters, volume_sizes

#: slices σ is estimated on (evenly spaced; the estimate is their mean)
SIGMA_SLICES = 8


def _estimate_sigma_slices(arr, axis):
    """Mean of :func:`nlmeans.estimate_sigma` over up to :data:`SIGMA_SLICES` evenly spaced slices."""
    data = arr if axis is None else np.moveaxis(arr, axis, -1)
    picks = np.unique(np.linspace(0, data.shape[0] - 1, min(SIGMA_SLICES, data.shape[0])).round().astype(int))
    return float(np.mean([estimate_sigma(data[i], channel_axis=None if axis is None else -1) for i in picks]))


def nlmeans_3d_chw(value, sigma, h, patch_size, search_size, temporal_radius=None):
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


def _run(stack, sigma, h, patch_size, search_size, channel_axis, data_range, temporal_radius):
    arr = check_array(stack)
    axis = check_channel_axis(arr, channel_axis, spatial_ndim=3)
    value = to_chw(arr, axis, work_dtype(arr.dtype))
    n_channels, depth, height, width = value.shape
    video = temporal_radius is not None
    if video:
        shape = dict(shape=(height, width), side_name="the smaller side of a frame")
    else:
        shape = dict(shape=(depth, height, width), side_name="the volume's smallest side",
                     preset_sizes=volume_sizes)
    used = resolve_parameters(
        sigma=sigma, h=h, patch_size=patch_size, search_size=search_size, n_channels=n_channels,
        data_range=data_range, estimate=lambda: _estimate_sigma_slices(arr, axis), **shape,
    )
    if video:
        temporal_radius = check_int(temporal_radius, "temporal_radius")
        if temporal_radius < 0:
            raise ValueError(f"temporal_radius must be >= 0, got {temporal_radius}")
    sigma, h, patch_size, search_size = used.sigma, used.h, used.patch_size, used.search_size
    patch_depth = 1 if video else patch_size
    check_magnitude(arr, "volume" if not video else "frames", n_channels * patch_depth * patch_size**2,
                    value.dtype)
    out = nlmeans_3d_chw(value, sigma, h, patch_size, search_size, temporal_radius)
    out = out[0] if axis is None else np.moveaxis(out, 0, axis)
    return from_float(out, arr.dtype)


def denoise_volume(volume, sigma=None, *, h=None, patch_size=None, search_size=None, channel_axis=None,
                   data_range=None):
    """Denoise a 3-D volume with Non-Local Means: cubic patches, cubic search window.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X), or with ``channel_axis`` (Z, Y, X, C) / ...
        any dtype of nlmeans.denoise (integers mapped to [0, 1]), finite.
    sigma : float or None
        Noise standard deviation **on the float image's scale** (integers are scaled to [0, 1]: σ = 20 on
        the 0–255 scale of an 8-bit volume is ``20/255``). ``None``: the mean of :func:`nlmeans.estimate_sigma`
        over up to 8 evenly spaced Z slices.
    h : float or None
        Filtering parameter, same scale as σ. ``None``: ``k(σ)·σ`` from the 2-D preset table.
    patch_size : odd int or None
        Side of the cubic patch, at most the volume's smallest side. ``None``: the 2-D preset, at most 5.
    search_size : odd int or None
        Side of the cubic search window. ``None``: 7 (shrunk to fit small volumes).
    channel_axis : int or None
        Axis of the channels; ``None``: a single-channel volume.
    data_range : float or None
        Range of float data, used only to read σ on the 0–255 scale for the presets. ``None``: 1.0.

    Returns
    -------
    denoised : ndarray
        Same shape and dtype as ``volume`` (integers computed in float32 on [0, 1], rounded and clipped).

    Notes
    -----
    For patch side P = 2f+1 and search side S = 2r+1: d²(p, q) = mean over the P³ patch offsets and the
    channels of (v(p+j) − v(q+j))², w = exp(−max(d² − 2σ², 0)/h²), u(p) = Σ_q w v(q) / Σ_q w over the S³
    window (centre included, weight 1). The volume is extended by numpy's ``reflect`` padding on all axes.
    The kernel loops over search offsets with separable box filters (Darbon et al. 2008), in parallel over
    Z slices; ``tests/naive.py`` holds the direct loops it is tested against.

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
    return _run(volume, sigma, h, patch_size, search_size, channel_axis, data_range, None)


def denoise_video(frames, sigma=None, *, temporal_radius=TEMPORAL_RADIUS, h=None, patch_size=None,
                  search_size=None, channel_axis=None, data_range=None):
    """Denoise a stack of frames (T, Y, X) with Non-Local Means across neighbouring frames.

    Each pixel of frame t is averaged over an S×S spatial window in every frame t − R … t + R that exists
    (``R = temporal_radius``; the window is cut, not reflected, at the first and last frame); weights compare
    2-D P×P patches, as OpenCV's ``fastNlMeansDenoisingMulti`` does.

    Parameters
    ----------
    frames : ndarray, shape (T, Y, X), or with ``channel_axis`` (T, Y, X, C) / ...
        any dtype of nlmeans.denoise (integers mapped to [0, 1]), finite.
    sigma : float or None
        Noise standard deviation **on the float image's scale** (integers scaled to [0, 1]). ``None``: the mean
        of :func:`nlmeans.estimate_sigma` over up to 8 evenly spaced frames.
    temporal_radius : int
        Frames on each side searched (default 2, i.e. 5 frames); 0 denoises each frame on its own.
    h, patch_size, search_size, channel_axis, data_range
        As in :func:`nlmeans.denoise` (2-D presets; sizes at most the frame's smaller side).

    Returns
    -------
    denoised : ndarray
        Same shape and dtype as ``frames``.

    Notes
    -----
    d²(p, q) = mean over the P×P patch offsets (in the frames of p and q) and the channels of
    (v(p+j) − v(q+j))²; w and u as in :func:`nlmeans.denoise`. Spatial boundary: numpy's ``reflect``.

    References
    ----------
    .. [1] A. Buades, B. Coll and J.-M. Morel, "Denoising image sequences does not require motion
       estimation", IEEE AVSS 2005.
    .. [2] A. Buades, B. Coll and J.-M. Morel, "Non-Local Means Denoising", Image Processing On Line 1, 2011.

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
    return _run(frames, sigma, h, patch_size, search_size, channel_axis, data_range, temporal_radius)
