"""denoise(noise=...), estimate_noise, per-channel σ and σ maps, add_noise(noise=...)."""

import numpy as np
import pytest

import nlmeans
from nlmeans.noise_models import gat, gat_inverse
from nlmeans.sigma_arrays import denoise_sigma_array


def _smooth(size=96, peak=1.0):
    """A smooth test image with an edge: values in [0.1, 1] · peak."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.55 + 0.35 * np.sin(3 * xx) * np.cos(2 * yy)
    img[:, size // 2 :] += 0.1
    return np.clip(img, 0.1, 1.0) * peak


@pytest.mark.parametrize("method", ["nlbayes", "pixelwise", "patchwise"])
def test_poisson_denoises_without_bias_at_low_counts(method):
    # (against the Gaussian path on real images: bench/real_noise.py; on this smooth image they tie)
    rng = np.random.default_rng(0)
    clean = _smooth(peak=2.0)
    counts = rng.poisson(clean).astype(np.float64)
    out = nlmeans.denoise(counts, noise="poisson", gain=1.0, method=method)
    assert np.sqrt(np.mean((out - clean) ** 2)) < 0.4 * np.sqrt(np.mean((counts - clean) ** 2))
    # unbiased on average: the exact unbiased inverse (the algebraic one is biased low at these counts)
    assert out.mean() == pytest.approx(clean.mean(), rel=0.02)


@pytest.mark.parametrize(("lam", "tol"), [(0.2, 0.03), (0.5, 0.01), (1.0, 0.01), (3.0, 0.01), (10.0, 0.01)])
def test_binned_poisson_path_is_unbiased_on_a_flat_region(monkeypatch, lam, tol):
    # a flat Poisson image at each band of POISSON_ITERATION_SCHEDULES: the mean of the estimate is the
    # counts' own mean (the best any estimator can do) to within ``tol`` (measured over seeds 0-3: at most
    # +3.7 % at λ = 0.2, where passes see under 1 count a pixel, 1 % from λ = 0.5); the binned passes run
    from nlmeans import noise_models, presets

    factors = []
    original = noise_models.debin  # called once a pass, with the pass's bin factor
    monkeypatch.setattr(noise_models, "debin", lambda b, shape, k: factors.append(k) or original(b, shape, k))
    counts = np.random.default_rng(7).poisson(lam, (128, 128)).astype(np.float64)
    out = nlmeans.denoise(counts, noise="poisson", gain=1.0)
    assert out.mean() == pytest.approx(counts.mean(), rel=tol)
    assert out.std() < 0.1 * lam  # and flat: the Poisson std is √λ
    planned = [presets.poisson_bin_factor(k, counts.shape) for _, k in presets.poisson_schedule(lam)]
    assert factors == planned and max(planned) > 1


def test_poisson_binned_path_with_a_channel_axis():
    # binning sums over the two spatial axes only: a colour image of counts (mean counts 0.3-1.3, binned
    # passes) keeps its shape and each channel's mean, and is denoised
    rng = np.random.default_rng(4)
    clean = np.stack([_smooth(peak=p) for p in (0.5, 1.0, 2.0)], axis=-1)
    counts = rng.poisson(clean).astype(np.float64)
    out = nlmeans.denoise(counts, noise="poisson", gain=1.0, channel_axis=-1)
    assert out.shape == counts.shape
    np.testing.assert_allclose(out.mean(axis=(0, 1)), counts.mean(axis=(0, 1)), rtol=0.03)
    assert np.mean((out - clean) ** 2) < 0.3 * np.mean((counts - clean) ** 2)


def test_poisson_integer_counts_stay_in_their_units():
    rng = np.random.default_rng(1)
    clean = _smooth(peak=200.0)
    counts = rng.poisson(clean).astype(np.uint16)
    out = nlmeans.denoise(counts, noise="poisson", gain=1.0)
    assert out.dtype == np.uint16
    # not scaled to [0, 1]: the counts come back near the clean counts
    assert np.abs(out.astype(float) - clean).mean() < 0.5 * np.abs(counts - clean).mean()


def test_poisson_gaussian_and_gain():
    rng = np.random.default_rng(2)
    clean = _smooth(peak=0.2)
    gain, sigma = 0.01, 0.02
    noisy = gain * rng.poisson(clean / gain) + rng.normal(0, sigma, clean.shape)
    out = nlmeans.denoise(noisy, noise="poisson-gaussian", gain=gain, sigma=sigma)
    assert np.sqrt(np.mean((out - clean) ** 2)) < 0.4 * np.sqrt(np.mean((noisy - clean) ** 2))
    # leaving the parameters out estimates them (estimate_noise) and gives nearly the same result
    est = nlmeans.denoise(noisy, noise="poisson-gaussian")
    assert np.sqrt(np.mean((est - clean) ** 2)) < 1.15 * np.sqrt(np.mean((out - clean) ** 2))


def test_rician_removes_the_bias_of_the_magnitude():
    rng = np.random.default_rng(3)
    clean = _smooth(peak=1.0)
    clean[:20, :20] = 0.0  # a background
    sigma = 0.1
    noisy = np.abs(clean + rng.normal(0, sigma, clean.shape) + 1j * rng.normal(0, sigma, clean.shape))
    out = nlmeans.denoise(noisy, sigma, noise="rician")
    gauss = nlmeans.denoise(noisy, sigma)
    # the Gaussian path keeps the Rayleigh background's mean σ √(π/2); the Rician model removes it
    assert gauss[:20, :20].mean() > 0.1
    assert out[:20, :20].mean() < 0.04
    assert np.mean((out - clean) ** 2) < np.mean((gauss - clean) ** 2)


@pytest.mark.parametrize("seed", [1, 2])
def test_rician_flat_region_is_unbiased_at_low_snr(seed):
    # SNR 2: the magnitude's mean is ~13 % high; the VST and its exact unbiased inverse bring it within 3 %
    clean = np.full((128, 128), 0.2)
    sigma = 0.1
    noisy = nlmeans.add_noise(clean, sigma, noise="rician", seed=seed)
    assert noisy.mean() > 1.1 * 0.2
    out = nlmeans.denoise(noisy, sigma, noise="rician")
    assert out.mean() == pytest.approx(0.2, rel=0.03)
    # a zero background (Rayleigh noise, mean σ √(π/2) ≈ 1.25 σ) comes back within 0.2 σ of 0
    dark = nlmeans.denoise(nlmeans.add_noise(np.zeros((128, 128)), sigma, noise="rician", seed=seed), sigma,
                           noise="rician")
    assert 0 <= dark.mean() < 0.2 * sigma


def _guided_mean_reference(values, guide, h, patch, search):
    """Σ_q w(p, q) values(q) / Σ_q w(p, q) over the search window, w = exp(−d² / h²), d² the mean squared
    difference of the guide's patches (both arrays reflect-padded, as the kernels pad), pixel by pixel."""
    f, r = patch // 2, search // 2
    g = np.pad(guide, f + r, mode="reflect")
    v = np.pad(values, f + r, mode="reflect")
    out = np.empty(values.shape)
    for y in range(values.shape[0]):
        for x in range(values.shape[1]):
            py, px = y + f + r, x + f + r
            ref = g[py - f:py + f + 1, px - f:px + f + 1]
            num = den = 0.0
            for qy in range(py - r, py + r + 1):
                for qx in range(px - r, px + r + 1):
                    d2 = np.mean((ref - g[qy - f:qy + f + 1, qx - f:qx + f + 1]) ** 2)
                    w = np.exp(-d2 / (h * h))
                    num, den = num + w * v[qy, qx], den + w
            out[y, x] = num / den
    return out


@pytest.mark.parametrize("shape", [(14, 17), (23, 9)])
def test_rician_dark_correction_against_the_formula(monkeypatch, shape):
    from nlmeans import presets
    from nlmeans.noise_models import rician_dark_correction

    rng = np.random.default_rng(sum(shape))
    sigma = 0.1
    est = rng.random(shape) * 0.4  # from 0 to 4σ: dark, blended and bright pixels
    y = np.abs(est + rng.normal(0, sigma, shape) + 1j * rng.normal(0, sigma, shape))
    monkeypatch.setattr(presets, "RICIAN_SQUARED_SEARCH", 7)
    out = rician_dark_correction(nlmeans.denoise, y, est, sigma, None)
    m2 = _guided_mean_reference(y * y, est, presets.RICIAN_SQUARED_H * sigma, presets.RICIAN_SQUARED_PATCH, 7)
    squared = np.sqrt(np.maximum(m2 - 2 * sigma * sigma, 0))
    lo, hi = presets.RICIAN_DARK
    a = np.clip((est / sigma - lo) / (hi - lo), 0, 1)
    # float32 guided mean: within 1e-5 relative of the float64 reference
    np.testing.assert_allclose(out, a * est + (1 - a) * squared, rtol=0, atol=1e-5)
    bright = est >= hi * sigma
    assert bright.any() and np.array_equal(out[bright], est[bright])


def test_rician_dark_correction_gains_on_a_zero_background(monkeypatch):
    # an MRI-like disk on a zero background at SNR 5: the squared-domain estimate in the dark lowers the error
    from nlmeans import noise_models

    yy, xx = np.mgrid[0:96, 0:96]
    clean = np.where((yy - 48) ** 2 + (xx - 48) ** 2 < 30**2, 0.6 + 0.3 * np.sin(xx / 6.0), 0.0)
    sigma = noise_models.rician_sigma_for_snr(clean, 5)
    noisy = nlmeans.add_noise(clean, sigma, noise="rician", seed=5)
    with_it = nlmeans.denoise(noisy, sigma, noise="rician")
    monkeypatch.setattr(noise_models, "rician_dark_correction", lambda denoise, y, est, s, axis: est)
    without = nlmeans.denoise(noisy, sigma, noise="rician")
    background = clean == 0
    assert np.mean(with_it[background] ** 2) < 0.7 * np.mean(without[background] ** 2)
    assert nlmeans.psnr(clean, with_it) > nlmeans.psnr(clean, without) + 1.0


def test_rician_nlbayes_runs_the_high_noise_row():
    # at SNR 20 the stabilised image's σ on [0, 1] is in NL-Bayes's low-noise row; the Rician path scales it
    # to RICIAN_NLBAYES_SIGMA_255 so the 7×7 / 47×47 row runs; pixelwise NL-means keeps σ = 1 / span
    from nlmeans import presets
    from nlmeans.noise_models import stabilise

    clean = _smooth(peak=1.0)
    sigma = 0.05 * clean.mean()
    noisy = nlmeans.add_noise(clean, sigma, noise="rician", seed=4)
    st = stabilise(noisy, "rician", sigma)
    assert st.sigma * 255 < 25
    _, settings = nlmeans.denoise(noisy, sigma, noise="rician", return_settings=True)
    assert settings.sigma * 255 == pytest.approx(presets.RICIAN_NLBAYES_SIGMA_255)
    assert settings.nlbayes["patch_size"] == 7 and settings.nlbayes["search_size"] == (47, 47)
    _, settings = nlmeans.denoise(noisy, sigma, noise="rician", method="pixelwise", return_settings=True)
    assert settings.sigma == pytest.approx(st.sigma)


def test_noise_model_inverse_is_the_closed_form():
    # a constant image of counts: the transformed image is constant, the result is the inverse of its value
    image = np.full((32, 32), 5.0)
    out = nlmeans.denoise(image, noise="poisson", gain=1.0)
    np.testing.assert_allclose(out, gat_inverse(gat(5.0)), rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"noise": "poisson", "gain": -1.0}, ValueError, "gain must be > 0"),
        ({"noise": "poisson", "gain": 0.0}, ValueError, "gain must be > 0"),
        ({"noise": "speckle"}, ValueError, "allowed: 'gaussian'"),
        ({"noise": "gaussian", "gain": 1.0}, ValueError, "gain is a parameter of"),
        ({"noise": "rician", "gain": 1.0}, ValueError, "gain is a parameter of"),
        ({"noise": "poisson", "gain": 1.0, "sigma": 0.1}, ValueError, "noise='poisson' has no sigma"),
        ({"noise": "rician", "sigma": -0.1}, ValueError, "sigma must be >= 0"),
        ({"noise": "poisson", "gain": "1"}, TypeError, "gain must be a real number"),
        ({"noise": None}, ValueError, "not a noise model"),
    ],
)
def test_bad_model_parameters_are_refused(kwargs, error, match):
    image = _smooth(32, peak=10.0)
    with pytest.raises(error, match=match):
        nlmeans.denoise(image, **kwargs)


def test_gaussian_model_is_the_default_path():
    rng = np.random.default_rng(4)
    noisy = _smooth(48) + rng.normal(0, 0.1, (48, 48))
    np.testing.assert_array_equal(nlmeans.denoise(noisy, 0.1, noise="gaussian"), nlmeans.denoise(noisy, 0.1))


# ---------------------------------------------------------------------------------------------- estimation


@pytest.mark.parametrize(("gain", "sigma"), [(1.0, 0.0), (0.5, 0.0), (2.0, 3.0), (0.01, 0.1)])
def test_estimate_noise_fits_the_noise_level_function(gain, sigma):
    rng = np.random.default_rng(5)
    clean = np.tile(np.linspace(2, 40, 256), (256, 1)) * gain
    noisy = gain * rng.poisson(clean / gain) + rng.normal(0, sigma, clean.shape)
    model = "poisson-gaussian" if sigma else "poisson"
    est = nlmeans.estimate_noise(noisy, noise=model)
    assert est.noise == model
    assert est.gain == pytest.approx(gain, rel=0.1)
    if sigma:
        assert est.sigma == pytest.approx(sigma, rel=0.15)
    else:
        assert est.sigma == 0.0


def test_estimate_noise_on_integer_counts_uses_their_units():
    rng = np.random.default_rng(6)
    clean = np.tile(np.linspace(5, 60, 256), (256, 1))
    counts = rng.poisson(clean).astype(np.uint16)
    assert nlmeans.estimate_noise(counts, noise="poisson").gain == pytest.approx(1.0, rel=0.1)


def test_estimate_noise_rician_from_the_background():
    rng = np.random.default_rng(7)
    clean = _smooth(128, peak=1.0)
    clean[:, :40] = 0.0
    sigma = 0.05
    noisy = np.abs(clean + rng.normal(0, sigma, clean.shape) + 1j * rng.normal(0, sigma, clean.shape))
    est = nlmeans.estimate_noise(noisy, noise="rician")
    assert est.gain is None
    assert est.sigma == pytest.approx(sigma, rel=0.05)


def test_estimate_noise_gaussian_is_estimate_sigma():
    rng = np.random.default_rng(8)
    noisy = _smooth(96) + rng.normal(0, 0.05, (96, 96))
    assert nlmeans.estimate_noise(noisy).sigma == nlmeans.estimate_sigma(noisy)


def test_estimate_noise_refuses_flat_noise_as_poisson():
    rng = np.random.default_rng(9)
    noisy = _smooth(128, peak=50.0) + rng.normal(0, 1.0, (128, 128))
    # constant variance: the fitted gain is ~0; either a tiny gain or a clear error, never a large one
    try:
        gain = nlmeans.estimate_noise(noisy, noise="poisson").gain
    except ValueError as exc:
        assert "does not look Poissonian" in str(exc)
    else:
        assert gain < 0.1


# ------------------------------------------------------------------------------ per-channel σ and σ maps


def _color(size=64):
    base = _smooth(size)
    return np.stack([base, base[::-1], base.T], axis=-1)


def test_per_channel_sigma_beats_the_scalar_call():
    rng = np.random.default_rng(10)
    clean = _color(96)
    sigmas = np.array([5, 20, 35]) / 255
    noisy = clean + rng.normal(size=clean.shape) * sigmas
    per = nlmeans.denoise(noisy, list(sigmas), channel_axis=-1)
    scalar = nlmeans.denoise(noisy, float(np.sqrt(np.mean(sigmas**2))), channel_axis=-1)
    # the clean channel is no longer over-smoothed
    assert nlmeans.psnr(clean[..., 0], per[..., 0]) > nlmeans.psnr(clean[..., 0], scalar[..., 0]) + 1
    assert nlmeans.psnr(clean, per) > nlmeans.psnr(clean, scalar)


@pytest.mark.parametrize("method", ["nlbayes", "pixelwise"])
def test_constant_per_channel_sigma_and_map_are_the_scalar_call(method):
    rng = np.random.default_rng(11)
    noisy = np.clip(_color(48) + rng.normal(0, 0.08, (48, 48, 3)), 0, 1)
    scalar = nlmeans.denoise(noisy, 0.08, channel_axis=-1, method=method)
    np.testing.assert_array_equal(nlmeans.denoise(noisy, [0.08] * 3, channel_axis=-1, method=method), scalar)
    np.testing.assert_array_equal(nlmeans.denoise(noisy, np.full((48, 48), 0.08), channel_axis=-1,
                                                  method=method), scalar)
    as_uint8 = (noisy * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(nlmeans.denoise(as_uint8, np.full((48, 48), 0.08), channel_axis=-1),
                                  nlmeans.denoise(as_uint8, 0.08, channel_axis=-1))


def test_sigma_map_uses_each_region_s_sigma():
    rng = np.random.default_rng(12)
    clean = _smooth(96)
    smap = np.full(clean.shape, 10 / 255)
    smap[:, 48:] = 40 / 255
    noisy = clean + rng.normal(size=clean.shape) * smap
    # the per-level route (NL-Bayes takes the map in its kernel by default: tests/test_nlbayes_map.py)
    out = denoise_sigma_array(nlmeans.denoise, noisy, None, smap, {}, in_kernel=False)
    # away from the seam each half is the run with its own σ
    left = nlmeans.denoise(noisy, 10 / 255)
    right = nlmeans.denoise(noisy, 40 / 255)
    np.testing.assert_allclose(out[:, :40], left[:, :40], atol=1e-12)
    np.testing.assert_allclose(out[:, 56:], right[:, 56:], atol=1e-12)
    scalar = nlmeans.denoise(noisy, float(np.sqrt(np.mean(smap**2))))
    assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, scalar)


def test_sigma_map_with_many_values_interpolates_between_levels():
    rng = np.random.default_rng(13)
    clean = _smooth(64)
    smap = np.tile(np.linspace(0.02, 0.12, 64), (64, 1))
    noisy = clean + rng.normal(size=clean.shape) * smap
    out = denoise_sigma_array(nlmeans.denoise, noisy, None, smap, {}, in_kernel=False)  # the per-level route
    lo, hi = nlmeans.denoise(noisy, 0.02), nlmeans.denoise(noisy, 0.12)
    # the first and last columns sit exactly on the extreme levels
    np.testing.assert_allclose(out[:, 0], lo[:, 0], atol=1e-12)
    np.testing.assert_allclose(out[:, -1], hi[:, -1], atol=1e-12)
    assert np.sqrt(np.mean((out - clean) ** 2)) < 0.5 * np.sqrt(np.mean((noisy - clean) ** 2))


@pytest.mark.parametrize(
    ("sigma", "kwargs", "match"),
    [
        (np.full((40, 48), 0.1), {}, r"sigma has shape \(40, 48\); allowed: a number, a map"),
        ([0.1, 0.2], {}, "a gray image has one channel"),
        ([0.1, 0.2], {"channel_axis": -1}, r"one value per channel \(3,\)"),
        (np.full((48, 48), -0.1), {}, "finite and >= 0"),
        ([0.1, np.nan, 0.1], {"channel_axis": -1}, "finite and >= 0"),
        ([0.1, 0.1, 0.1], {"channel_axis": -1, "noise": "rician"}, "one number with noise='rician'"),
    ],
)
def test_bad_sigma_arrays_are_refused(sigma, kwargs, match):
    image = _color(48) if "channel_axis" in kwargs else _smooth(48)
    with pytest.raises(ValueError, match=match):
        nlmeans.denoise(image, sigma, **kwargs)


def test_estimate_sigma_per_channel():
    rng = np.random.default_rng(14)
    sigmas = np.array([5, 20, 35]) / 255
    noisy = _color(128) + rng.normal(size=(128, 128, 3)) * sigmas
    est = nlmeans.estimate_sigma(noisy, channel_axis=-1, per_channel=True)
    assert est.shape == (3,)
    np.testing.assert_allclose(est, sigmas, rtol=0.1)
    assert est[1] == nlmeans.estimate_sigma(noisy[..., 1])


# ------------------------------------------------------------------------------------------- add_noise


def test_add_noise_gaussian_call_is_unchanged():
    clean = _smooth(32)
    expected = clean + np.random.default_rng(5).normal(0.0, 0.1, size=clean.shape)
    np.testing.assert_array_equal(nlmeans.add_noise(clean, 0.1, seed=5), expected)
    np.testing.assert_array_equal(nlmeans.add_noise(clean, 0.1, seed=5, noise="gaussian"), expected)


def test_add_noise_poisson_models_have_their_moments():
    x = np.full((300, 300), 3.0)
    gain, sigma = 0.5, 0.4
    p = nlmeans.add_noise(x, noise="poisson", gain=gain, seed=0)
    # values are gain × integers, mean x, variance gain · x
    np.testing.assert_allclose(p / gain, np.round(p / gain))
    assert p.mean() == pytest.approx(3.0, rel=0.01)
    assert p.var() == pytest.approx(gain * 3.0, rel=0.03)
    pg = nlmeans.add_noise(x, sigma, noise="poisson-gaussian", gain=gain, seed=0)
    assert pg.var() == pytest.approx(gain * 3.0 + sigma**2, rel=0.03)
    # integer images are counts in their own units (not scaled to [0, 1])
    counts = nlmeans.add_noise(np.full((300, 300), 50, np.uint16), noise="poisson", seed=1)
    assert counts.mean() == pytest.approx(50, rel=0.01)


def test_add_noise_rician_is_the_magnitude():
    rng_x = np.full((400, 400), 0.3)
    y = nlmeans.add_noise(rng_x, 0.1, noise="rician", seed=2)
    assert (y >= 0).all()
    # E[y²] = x² + 2σ²
    assert np.mean(y**2) == pytest.approx(0.09 + 0.02, rel=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"noise": "rician"}, "needs sigma"),
        ({"noise": "poisson", "gain": -2.0}, "gain must be > 0"),
        ({"noise": "poisson", "clip": True}, "needs data_range"),
        ({"noise": "gaussian", "gain": 1.0}, "gain is a parameter of"),
    ],
)
def test_add_noise_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nlmeans.add_noise(_smooth(16), **kwargs)
    with pytest.raises(ValueError, match="clean image >= 0"):
        nlmeans.add_noise(-_smooth(16), noise="poisson")


# ---------------------------------------------------------------------------------- clipped σ estimation


@pytest.mark.parametrize("sigma_255", [10, 30, 50])
@pytest.mark.parametrize("kind", ["dark-color", "dim", "saturated"])
def test_estimate_sigma_on_clipped_uint8_with_saturated_regions(kind, sigma_255):
    # clipped like a saved 8-bit file; before the clipping model, "dark-color" was 39 % low at σ = 50
    # (too few unclipped joint patches) and "dim" 8 % low (truncated noise near black)
    yy, xx = np.mgrid[0:192, 0:192] / 192
    axis = None
    if kind == "dark-color":  # mostly black sky and one bright blob, 3 channels
        base = 0.02 + 0.9 * np.exp(-((xx - 0.7) ** 2 + (yy - 0.5) ** 2) / 0.02)
        clean, axis = np.stack([base, base * 0.8, base * 0.6], -1), -1
    elif kind == "dim":  # a ramp close to black
        clean = 0.1 + 0.3 * yy
    else:  # a third black, a third white, a ramp between
        clean = np.where(xx < 1 / 3, 0.02, np.where(xx > 2 / 3, 0.98, 0.2 + 0.6 * yy))
    noisy = nlmeans.add_noise(clean, sigma_255 / 255, seed=sigma_255)
    clipped = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
    assert nlmeans.estimate_sigma(clipped, channel_axis=axis) * 255 == pytest.approx(sigma_255, rel=0.1)


def test_count_level_is_the_photon_weighted_mean_count():
    from nlmeans.noise_models import count_level

    rng = np.random.default_rng(11)

    def level(x, gain=1.0, sigma=0.0):
        x = np.asarray(x, dtype=np.float64)
        return count_level(float(x.sum()), float((x * x).sum()), x.size, gain, sigma)

    # a uniform image: its mean count, though E[c²] / E[c] of the noisy counts is one more
    flat = rng.poisson(3.0, (200, 200))
    assert level(flat) == pytest.approx(3.0, rel=0.02)
    assert np.mean(flat**2) / np.mean(flat) == pytest.approx(4.0, rel=0.02)
    # mostly dark: 5 % of the pixels at 20 counts; the mean is 1, the level the foreground's 20
    clean = np.zeros((200, 200))
    clean[:10] = 20.0
    counts = rng.poisson(clean)
    assert counts.mean() == pytest.approx(1.0, rel=0.05)
    assert level(counts) == pytest.approx(20.0, rel=0.05)
    # gain (y = gain · counts) and read noise (Poisson–Gaussian) removed from the level
    y = 0.5 * rng.poisson(clean / 0.5) + rng.normal(0, 2.0, clean.shape)
    assert level(y, gain=0.5, sigma=2.0) == pytest.approx(20.0 / 0.5, rel=0.05)
    assert level(np.zeros(10)) == 0.0


def test_mostly_dark_counts_are_not_binned_like_a_dim_image(monkeypatch):
    # the schedule goes by the count level: 30-count objects on a dark background get the schedule of 30 counts
    # (one pass), where the mean count (~1.5) would bin 3×3 first
    from nlmeans import presets

    clean = np.zeros((96, 96))
    clean[20:40, 20:40] = clean[60:80, 50:90] = 30.0
    counts = nlmeans.add_noise(clean, noise="poisson", seed=3)
    assert len(presets.poisson_schedule(float(counts.mean()))) == 3
    seen = []
    schedule = presets.poisson_schedule
    monkeypatch.setattr(presets, "poisson_schedule", lambda level: seen.append(level) or schedule(level))
    nlmeans.denoise(counts, noise="poisson", gain=1.0)
    assert seen == [pytest.approx(30.0, rel=0.05)] and len(schedule(seen[0])) == 1
