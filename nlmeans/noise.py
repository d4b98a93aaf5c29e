"""Synthetic noise: Gaussian, Poisson, Poisson–Gaussian and Rician (the models of ``denoise(noise=...)``)."""

from __future__ import annotations

import numpy as np

from ._typing import Array, ArrayLike, NoiseModel, Real, Seed
from ._validate import check_array, check_model_parameters, check_real, default_data_range, model_values, to_float


def add_noise(image: ArrayLike, sigma: Real | None = None, seed: Seed = None, clip: bool = False, *,
              noise: NoiseModel = "gaussian", gain: Real | None = None, data_range: Real | None = None) -> Array:
    """Add i.i.d. Gaussian noise of standard deviation ``sigma``, or draw another noise model.

    Parameters
    ----------
    image : ndarray
        uint8, uint16, float32 or float64, any shape.
    sigma : float
        Noise standard deviation **on the float image's scale**: integer input is first scaled to [0, 1], so
        σ = 20 on the 0–255 scale is ``sigma=20/255``; float input is in its own units. Required for
        ``"gaussian"``, ``"poisson-gaussian"`` (the read noise, in the image's own units) and ``"rician"``.
    seed : int, numpy Generator or None
        Seed for reproducible noise; ``None`` draws fresh noise.
    clip : bool
        Clip the result to ``[0, data_range]``. Off by default: clipping changes the noise (it is no longer
        zero-mean Gaussian near black and white), which biases every denoiser that assumes Gaussian noise.
    noise : {"gaussian", "poisson", "poisson-gaussian", "rician"}
        The model, as in :func:`nlmeans.denoise`: ``"poisson"`` y = gain · Poisson(x / gain),
        ``"poisson-gaussian"`` that plus N(0, σ²), ``"rician"`` y = |x + n₁ + i n₂| with n ~ N(0, σ²).
        The Poisson models work in the image's own units (integer images are counts, not scaled to [0, 1];
        x must be ≥ 0); Rician follows the Gaussian rule (integers scaled to [0, 1]).
    gain : float > 0 or None
        The Poisson models' gain (image units per count); ``None``: 1 (the values are counts).
    data_range : float or None
        Upper clip bound on the float scale; ``None``: 1.0. With the Poisson models ``clip=True`` needs it
        (in the image's own units).

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
    sigma, gain = check_model_parameters(noise, sigma, gain)
    if sigma is None and noise != "poisson":
        raise ValueError(f"add_noise with noise={noise!r} needs sigma (a number >= 0)")
    if noise == "gaussian":
        sigma = check_real(sigma, "sigma", minimum=0)
    if clip and noise in ("poisson", "poisson-gaussian") and data_range is None:
        raise ValueError("clip=True with a Poisson model needs data_range (the clip bound in the image's units)")
    data_range = default_data_range(data_range)
    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    rng = np.random.default_rng(seed)
    if noise == "gaussian":
        noisy = to_float(arr, np.float64) + rng.normal(0.0, sigma, size=arr.shape)
    else:
        noisy = _draw_model(model_values(arr, noise), noise, sigma, 1.0 if gain is None else gain, rng)
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


def _draw_model(x, noise, sigma, gain, rng):
    """One draw of a non-Gaussian model for the clean float64 image ``x`` (the model's units)."""
    if noise == "rician":
        return np.hypot(x + rng.normal(0.0, sigma, size=x.shape), rng.normal(0.0, sigma, size=x.shape))
    if (x < 0).any():
        raise ValueError(f"noise={noise!r} needs a clean image >= 0 (a mean count), got values down to "
                         f"{float(x.min()):.3g}")
    lam = x / gain
    if lam.max() > 1e15:
        raise ValueError(f"x / gain reaches {float(lam.max()):.3g} counts, too many to draw; use a larger gain")
    out = gain * rng.poisson(lam).astype(np.float64)
    if noise == "poisson-gaussian":
        out += rng.normal(0.0, sigma, size=x.shape)
    return out
