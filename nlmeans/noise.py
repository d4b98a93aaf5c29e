"""Synthetic noise."""

from __future__ import annotations

import numpy as np

from ._validate import check_array, check_real, default_data_range, to_float


def add_noise(image, sigma, seed=None, clip=False, *, data_range=None):
    """Add i.i.d. Gaussian noise of standard deviation ``sigma``.

    Parameters
    ----------
    image : ndarray
        uint8, uint16, float32 or float64, any shape.
    sigma : float
        Noise standard deviation **on the float image's scale**: integer input is first scaled to [0, 1], so
        σ = 20 on the 0–255 scale is ``sigma=20/255``; float input is in its own units.
    seed : int, numpy Generator or None
        Seed for reproducible noise; ``None`` draws fresh noise.
    clip : bool
        Clip the result to ``[0, data_range]``. Off by default: clipping changes the noise (it is no longer
        zero-mean Gaussian near black and white), which biases every denoiser that assumes Gaussian noise.
    data_range : float or None
        Upper clip bound on the float scale; ``None``: 1.0.

    Returns
    -------
    noisy : ndarray of float
        float32 for float32 input, float64 otherwise; integer input comes back on the [0, 1] scale.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> clean = np.full((256, 256), 128, dtype=np.uint8)
    >>> noisy = nlmeans.add_noise(clean, 20 / 255, seed=0)  # σ = 20 on the 0–255 scale
    >>> noisy.dtype, round(float(noisy.std() * 255))
    (dtype('float64'), 20)
    """
    arr = check_array(image)
    sigma = check_real(sigma, "sigma", minimum=0)
    data_range = default_data_range(data_range)
    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    rng = np.random.default_rng(seed)
    noisy = to_float(arr, np.float64) + rng.normal(0.0, sigma, size=arr.shape)
    if clip:
        np.clip(noisy, 0.0, data_range, out=noisy)
    with np.errstate(over="ignore"):
        out = noisy.astype(dtype, copy=False)
    if not np.isfinite(out).all():
        raise ValueError(
            f"sigma={sigma:g} on image values up to {float(np.abs(to_float(arr, np.float64)).max()):.3g} "
            f"overflows {np.dtype(dtype).name}; use a smaller sigma or float64 input"
        )
    return out
