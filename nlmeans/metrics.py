"""Image quality metrics: thin wrappers over scikit-image with the data range made explicit."""

from __future__ import annotations

import numpy as np

from ._typing import ArrayLike, Real
from ._validate import check_array, check_channel_axis, default_data_range, to_float


def _pair(clean, test):
    a = check_array(clean, "clean")
    b = check_array(test, "test")
    if a.shape != b.shape:
        raise ValueError(f"clean has shape {a.shape} but test has shape {b.shape}; they must match")
    return a, b


def psnr(clean: ArrayLike, test: ArrayLike, data_range: Real | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range² / MSE)``.

    Integer inputs are scaled to [0, 1] first (like everywhere in nlmeans), so a uint8 image compares
    correctly with a float image on the [0, 1] scale.

    Parameters
    ----------
    clean, test : ndarray
        The reference and the image to score, same shape; any dtype of nlmeans.denoise (integers mapped to [0, 1]).
    data_range : float or None
        The peak on the float scale; ``None`` means 1.0 — the dtype's full range for integer images — and is
        never guessed from the data's min and max.

    Returns
    -------
    psnr : float
        In dB; identical images give ``inf``.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> clean = np.zeros((8, 8))
    >>> round(nlmeans.psnr(clean, clean + 0.1), 6)  # MSE 0.01 on a range of 1
    20.0
    """
    a, b = _pair(clean, test)
    data_range = default_data_range(data_range)
    diff = to_float(a, np.float64) - to_float(b, np.float64)
    peak = float(np.abs(diff).max())
    if peak == 0.0:
        return float("inf")
    if not np.isfinite(peak):
        raise ValueError("clean - test overflows float64; the images' values are too large to compare")
    # MSE as peak² · mean((diff/peak)²) and the log of each factor: no overflow for huge or tiny values
    rel_mse = float(np.mean((diff / peak) ** 2))
    return float(20.0 * np.log10(data_range) - 20.0 * np.log10(peak) - 10.0 * np.log10(rel_mse))


def ssim(clean: ArrayLike, test: ArrayLike, data_range: Real | None = None,
         channel_axis: int | None = None) -> float:
    """Structural similarity (Wang et al. 2004), via ``skimage.metrics.structural_similarity``.

    Parameters
    ----------
    clean, test : ndarray
        The reference and the image to score, same shape; any dtype of nlmeans.denoise (integers mapped
        to [0, 1], as in :func:`psnr`).
    data_range : float or None
        On the float scale; ``None`` → 1.0.
    channel_axis : int or None
        The channel axis of a multichannel image (mean SSIM over channels); ``None``: gray.

    Returns
    -------
    ssim : float
        In [-1, 1]; 1 for identical images. Windows of 7 pixels (smaller for tiny images).

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment: from error
       visibility to structural similarity", IEEE Trans. Image Processing 13(4), 2004.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> image = np.random.default_rng(0).random((32, 32))
    >>> nlmeans.ssim(image, image)
    1.0
    """
    from skimage.metrics import structural_similarity

    a, b = _pair(clean, test)
    axis = check_channel_axis(a, channel_axis, "clean", spatial_ndim=a.ndim - (channel_axis is not None))
    data_range = default_data_range(data_range)
    fa, fb = to_float(a, np.float64), to_float(b, np.float64)
    spatial = fa.shape if axis is None else tuple(n for i, n in enumerate(fa.shape) if i != axis)
    win = min(7, min(spatial) - (1 - min(spatial) % 2))
    if win < 3:
        raise ValueError(f"images of shape {a.shape} are too small for SSIM; each side needs >= 3 pixels")
    limit = 1e150  # local variances square the values: beyond this they overflow float64
    if max(np.abs(fa).max(), np.abs(fb).max(), data_range) > limit:
        raise ValueError(f"values or data_range above {limit:g} in magnitude overflow SSIM; rescale the images")
    value = float(structural_similarity(fa, fb, data_range=data_range, channel_axis=axis, win_size=win))
    if not np.isfinite(value):
        raise ValueError("SSIM is undefined for these images (non-finite result)")
    return value
