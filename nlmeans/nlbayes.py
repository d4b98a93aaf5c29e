"""NL-Bayes: the non-local Bayesian denoiser of Lebrun, Buades & Morel (2013), two stages, numba kernels."""

from __future__ import annotations

import numpy as np

from . import _config
from .kernels.nlbayes import _nlbayes_pass

# Orthonormal colour transform (Y, U, V rows): white noise of std σ stays white with std σ in every channel.
_YUV = np.array(
    [
        [1 / np.sqrt(3), 1 / np.sqrt(3), 1 / np.sqrt(3)],
        [1 / np.sqrt(2), 0.0, -1 / np.sqrt(2)],
        [1 / np.sqrt(6), -2 / np.sqrt(6), 1 / np.sqrt(6)],
    ]
)


def nlbayes_params(sigma_255, n_channels=1):
    """Parameters for noise level ``sigma_255`` (0–255 scale), as keyword arguments of :func:`nlbayes_chw`.

    Chosen by measurement on the standard set (bench/nl_family.py, 128×128 crops, gray and color;
    bench/nlbayes_presets.py, 256×256 crops), not copied from the paper's table: up to σ = 25, patches 5×5,
    groups of 60 (stage 1) and 30 (stage 2), search windows 31×31 (stage 1) and 21×21 (stage 2), reference
    grid step 3; above, patches 7×7, groups of 90 and 60, 41×41 windows in both stages, step 4. β = 1 in
    stage 1 and 1.2 in stage 2; homogeneous-group thresholds γ = 1.05 (stage 1, on the noisy group) and 0.02
    (stage 2, on the basic group). Against the earlier preset (31×31 windows above σ = 25, β₂ = 1.0): +0.15 dB
    at σ = 30, +0.11 dB at σ = 50 and +0.03 dB at σ = 10 and 20 (mean PSNR over the set, candidate
    ``search_41_above25_beta2_1.2`` in bench/results/nlbayes_presets.md). A stage-1 step of 5 above σ = 25
    gave back 0.03–0.04 dB for ~15 % less time; after the kernel got ~1.8× faster the finer grid is kept.
    ``n_channels`` is accepted for symmetry with the NL-means presets; colour images use the same values per
    (Y, U, V) channel.
    """
    if sigma_255 <= 25:
        patch, search, n_sim, step = 5, (31, 21), (60, 30), 3
    else:
        patch, search, n_sim, step = 7, (41, 41), (90, 60), 4
    return dict(patch_size=patch, search_size=search, n_similar=n_sim, beta=(1.0, 1.2), gamma=(1.05, 0.02),
                step=step)


def _pair(value):
    """(stage 1, stage 2) from one value or a pair."""
    return (value, value) if np.ndim(value) == 0 else tuple(value)


def nlbayes_chw(value, sigma, *, patch_size, search_size, n_similar, beta, gamma, step, stages=2):
    """NL-Bayes on a channel-first float array ``(C, H, W)`` (no validation); σ on the array's scale.

    ``patch_size``, ``search_size`` and ``step``: one value for both stages or a pair (stage 1, stage 2);
    ``n_similar``, ``beta`` and ``gamma`` are pairs (stage 1, stage 2).

    Stage 1: for every reference patch (centres on a grid of ``min(step, patch_size)`` pixels, the last
    row and column included, skipping centres already estimated as members of an earlier group of the same
    row band), the reference and its ``n_similar[0] - 1`` nearest patches in the search window (squared
    distance on the first channel) form a group; with its empirical mean μ and covariance C every patch P
    of the group is estimated as μ + (C − β₁σ²I) C⁻¹ (P − μ), or as the group's mean pixel value when the
    group's variance is at most γ₁σ² (a homogeneous area). Stage 2: groups of ``n_similar[1]`` found on the
    basic (stage-1) image; the covariance C̃ of the basic patches gives μ + C̃ (C̃ + β₂σ²I)⁻¹ (P − μ) for
    the noisy patches, μ their mean (homogeneous if the basic group's variance is at most γ₂σ²). Each
    stage averages all the estimates of a pixel with equal weights.

    Three channels are turned into an orthonormal (Y, U, V) first (the noise stays white with std σ) and
    back at the end; groups are found on Y; every channel gets its own Gaussian model. Boundary: numpy
    ``reflect`` padding. Returns a new ``(C, H, W)`` array of the input's dtype.

    References
    ----------
    .. [1] M. Lebrun, A. Buades and J.-M. Morel, "A nonlocal Bayesian image denoising algorithm", SIAM J.
       Imaging Sciences 6(3), 2013.
    .. [2] M. Lebrun, A. Buades and J.-M. Morel, "Implementation of the Non-Local Bayes (NL-Bayes) image
       denoising algorithm", Image Processing On Line 3, 2013.
    """
    dtype = value.dtype.type
    if sigma == 0:  # both stages are then the identity (X - 0 · ...); skip the singular covariances
        return np.array(value, dtype=dtype, copy=True)
    C = value.shape[0]
    yuv = C == 3
    v = np.einsum("ij,jhw->ihw", _YUV.astype(dtype), value) if yuv else value
    v = np.ascontiguousarray(v, dtype=dtype)
    patches, sizes, steps = (_pair(x) for x in (patch_size, search_size, step))
    s2 = dtype(sigma * sigma)
    out = v
    basic = None
    for stage in range(1, stages + 1):
        f = int(patches[stage - 1]) // 2
        # a grid no wider than a patch: every pixel lies in a reference patch
        step = min(int(steps[stage - 1]), 2 * f + 1)
        r = sizes[stage - 1] // 2
        widths = ((0, 0), (r + f, r + f), (r + f, r + f))
        vp = np.pad(v, widths, mode="reflect")
        bp = vp if basic is None else np.pad(basic, widths, mode="reflect")
        out = np.empty(v.shape, dtype=dtype)
        _nlbayes_pass(vp, bp, stage, f, r, int(n_similar[stage - 1]), int(step), s2, dtype(beta[stage - 1]),
                      dtype(gamma[stage - 1]), _config.BAND_ROWS, out)
        basic = out
    if yuv:
        out = np.einsum("ji,jhw->ihw", _YUV.astype(dtype), out)
    return np.ascontiguousarray(out, dtype=dtype)
