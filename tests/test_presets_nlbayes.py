"""The NL-Bayes preset table (nlmeans.presets.nlbayes_params): every row is usable, and the high-noise rows
denoise (their quality on the standard set is measured by bench/high_sigma.py, not here)."""

import numpy as np
import pytest

import nlmeans
from nlmeans.nlbayes import _pair
from nlmeans.presets import fit_size, nlbayes_params, resolve_nlbayes

SIGMAS_255 = (0.5, 5, 10, 20, 25, 25.5, 30, 40, 50, 60, 75, 100, 200)


@pytest.mark.parametrize("n_channels", [1, 3])
@pytest.mark.parametrize("sigma_255", SIGMAS_255)
def test_every_row_gives_regular_stage1_groups(sigma_255, n_channels):
    p = nlbayes_params(sigma_255, n_channels)
    patches, windows, steps = (_pair(p[k]) for k in ("patch_size", "search_size", "step"))
    for patch, window, step in zip(patches, windows, steps, strict=True):
        assert patch % 2 == 1 and window % 2 == 1 and window > patch
        assert 1 <= step <= patch  # a coarser grid would leave pixels outside every reference patch
    # stage 1 inverts the noisy group's covariance: it needs more patches than a patch has pixels
    assert p["n_similar"][0] > patches[0] ** 2
    # a window must hold the group
    assert all(w * w >= n for w, n in zip(windows, p["n_similar"], strict=True))


@pytest.mark.parametrize("sigma_255", [40, 50, 75])
def test_high_noise_rows_denoise_gray_and_color(camera, astronaut, sigma_255):
    """The rows above σ = 25 (patch 7, 5 in stage 1 for color; 47×47 windows) on small crops: a clear gain
    over the noisy input and over pixelwise NL-means at its own presets, gray and color."""
    cases = ((camera[200:296, 200:296], None), (astronaut[100:180, 150:230], -1))
    for k, (clean, axis) in enumerate(cases):
        clean = clean.astype(np.float64) / 255
        noisy = nlmeans.add_noise(clean, sigma_255 / 255, seed=k).astype(np.float32)
        out, used = nlmeans.denoise(noisy, sigma_255 / 255, channel_axis=axis, return_settings=True)
        assert used.method == "nlbayes" and np.isfinite(out).all()
        pixelwise = nlmeans.denoise(noisy, sigma_255 / 255, channel_axis=axis, method="pixelwise")
        assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, noisy) + 8
        assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, pixelwise)


@pytest.mark.parametrize("n_channels", [1, 3])
@pytest.mark.parametrize("sigma_255", [10, 15, 50])
@pytest.mark.parametrize("side", [4, 5, 40])
def test_resolve_fits_each_stage_and_settings_record_the_larger_patch(sigma_255, n_channels, side):
    """A per-stage patch pair of the presets (color rows) is fitted stage by stage to the image like a single
    size; the call's Settings record the larger of the two patches, the full pair in ``nlbayes``."""
    preset = _pair(nlbayes_params(sigma_255, n_channels)["patch_size"])
    params = resolve_nlbayes((side, 64), sigma_255, n_channels)
    assert _pair(params["patch_size"]) == tuple(fit_size(p, side) for p in preset)
    shape = (side, 64, 3) if n_channels == 3 else (side, 64)
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    out, used = nlmeans.denoise(image, sigma_255 / 255, channel_axis=-1 if n_channels == 3 else None,
                                return_settings=True)
    assert used.nlbayes["patch_size"] == params["patch_size"]
    assert used.patch_size == max(_pair(params["patch_size"])) and np.isfinite(out).all()
