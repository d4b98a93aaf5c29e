"""Parameter rules: presets by noise level, the default h, and the noise-level estimator.

Units: every σ and h here is on the float image's scale (integer images are scaled to [0, 1]), except where a
name ends in ``_255``: the 0–255 scale of the literature, ``sigma_255 = 255 * sigma / data_range``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ._validate import check_array, check_channel_axis, to_float


@dataclass(frozen=True)
class Preset:
    """Parameters for one band of noise levels (σ on the 0–255 scale, upper bound inclusive)."""

    sigma_255_max: float
    patch_size: int
    search_size: int
    h_over_sigma: float


# Buades, Coll & Morel, "Non-Local Means Denoising", IPOL 2011, table of parameters.
IPOL_GRAY = (
    Preset(15, 3, 21, 0.40),
    Preset(30, 5, 21, 0.40),
    Preset(45, 7, 35, 0.35),
    Preset(75, 9, 35, 0.35),
    Preset(np.inf, 11, 35, 0.30),
)
IPOL_COLOR = (
    Preset(25, 3, 21, 0.55),
    Preset(55, 5, 35, 0.40),
    Preset(np.inf, 7, 35, 0.35),
)

#: h used when σ is 0 (a clean image): small, so only identical patches average (float image scale)
H_FLOOR = 1e-3


def preset_for(sigma_255, n_channels=1):
    """The preset for noise level ``sigma_255`` (0–255 scale): gray table for 1 channel, color table else."""
    table = IPOL_GRAY if n_channels == 1 else IPOL_COLOR
    for preset in table:
        if sigma_255 <= preset.sigma_255_max:
            return preset
    return table[-1]


def default_h(sigma, preset, data_range=1.0):
    """The default filtering parameter: ``h = preset.h_over_sigma * sigma``, at least ``H_FLOOR * data_range``."""
    return max(preset.h_over_sigma * sigma, H_FLOOR * data_range)


def estimate_sigma(image, channel_axis=None):
    """Estimate the standard deviation of additive white Gaussian noise.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C) with ``channel_axis``
        uint8, uint16, float32 or float64.
    channel_axis : int or None
        Axis of the channels; the estimate is the mean over the channels.

    Returns
    -------
    sigma : float
        On the float image's scale: for integer input, a fraction of the dtype's full range (multiply by 255
        for the 0–255 scale of an 8-bit image); for float input, in the image's own units.

    Notes
    -----
    Robust median estimator on the finest diagonal wavelet sub-band, σ = median(|HH₁|) / 0.6745 (Donoho &
    Johnstone 1994), as implemented by scikit-image.

    References
    ----------
    .. [1] D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by wavelet shrinkage", Biometrika 81(3),
       1994.
    """
    from skimage.restoration import estimate_sigma as _sk_estimate_sigma

    arr = check_array(image)
    axis = check_channel_axis(arr, channel_axis)
    data = to_float(arr, np.float64)
    if axis is not None:
        data = np.moveaxis(data, axis, -1)
    if min(data.shape[:2]) < 2:
        raise ValueError(f"image of shape {arr.shape} is too small to estimate σ; it needs at least 2×2 pixels")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on extreme values: checked below
        # scikit-image guesses that a small last axis may be channels; we already know the layout
        warnings.filterwarnings("ignore", message=".*channel_axis is None.*", category=UserWarning)
        sigma = _sk_estimate_sigma(data, channel_axis=-1 if axis is not None else None, average_sigmas=True)
    if not np.isfinite(sigma):
        raise ValueError(
            f"could not estimate σ of this image (values up to {float(np.abs(data).max()):.3g} overflow the "
            "estimator); pass sigma explicitly or rescale the image"
        )
    return float(sigma)
