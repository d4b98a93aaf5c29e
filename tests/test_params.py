"""The noise-level estimator and the parameter rules (presets, default h)."""

import numpy as np
import pytest

import nlmeans
from nlmeans.noise_level import (
    _gamma_cdf,
    _gamma_quantile,
    _noise_variance_from_eigenvalues,
    _texture_gamma,
)
from nlmeans.presets import default_h, preset_for

#: documented tolerance of estimate_sigma on synthetic Gaussian noise, σ ≥ 5/255 (bench/sigma_estimation.py)
TOLERANCE = 0.05


@pytest.fixture(scope="session")
def brick():
    from conftest import DATA

    from nlmeans.io import read_image

    return read_image(DATA / "brick.png").data


@pytest.mark.parametrize("sigma_255", [5, 20, 50])
@pytest.mark.parametrize("which", ["camera", "brick"])
def test_gray_estimate_within_tolerance(request, which, sigma_255):
    clean = request.getfixturevalue(which)[:256, :256]
    for seed in (0, 1):
        noisy = nlmeans.add_noise(clean, sigma_255 / 255, seed=seed)
        est = nlmeans.estimate_sigma(noisy) * 255
        assert abs(est - sigma_255) <= TOLERANCE * sigma_255, (which, seed, est)


@pytest.mark.parametrize("sigma_255", [5, 30])
def test_color_estimate_within_tolerance(astronaut, sigma_255):
    noisy = nlmeans.add_noise(astronaut[:256, 128:384], sigma_255 / 255, seed=0)
    est = nlmeans.estimate_sigma(noisy, channel_axis=-1) * 255
    assert abs(est - sigma_255) <= TOLERANCE * sigma_255, est


def test_better_than_the_wavelet_estimator_on_texture(brick):
    """scikit-image's median-of-wavelet estimate is biased upwards on texture; ours is not."""
    from skimage.restoration import estimate_sigma as sk_estimate_sigma

    noisy = nlmeans.add_noise(brick[:256, :256], 5 / 255, seed=3)
    ours = abs(nlmeans.estimate_sigma(noisy) * 255 - 5)
    theirs = abs(sk_estimate_sigma(noisy) * 255 - 5)
    assert ours < theirs


def test_integer_input_is_on_the_unit_scale(camera):
    noisy = np.clip(np.rint(nlmeans.add_noise(camera[:200, :200], 15 / 255, seed=2) * 255), 0, 255)
    est = nlmeans.estimate_sigma(noisy.astype(np.uint8))
    assert abs(est * 255 - 15) < 0.05 * 15 + 0.5
    as_u16 = (noisy * 257).astype(np.uint16)  # same image, 16-bit: same σ on the float scale
    assert nlmeans.estimate_sigma(as_u16) == pytest.approx(est, rel=1e-6)


def test_float_units_are_the_image_units(camera):
    noisy = nlmeans.add_noise(camera[:128, :128], 10 / 255, seed=4)
    assert nlmeans.estimate_sigma(noisy * 1000) == pytest.approx(1000 * nlmeans.estimate_sigma(noisy), rel=1e-9)


@pytest.mark.parametrize("axis", [0, 2, -1])
def test_channel_axis_positions_agree(astronaut, axis):
    noisy = nlmeans.add_noise(astronaut[:96, :96], 20 / 255, seed=0)
    ref = nlmeans.estimate_sigma(noisy, channel_axis=-1)
    assert nlmeans.estimate_sigma(np.moveaxis(noisy, -1, axis), channel_axis=axis) == pytest.approx(ref)


def test_many_channels_are_estimated_one_by_one(rng):
    clean = np.repeat(np.linspace(0, 1, 64)[None, :, None], 64, axis=0) * np.ones((1, 1, 6))
    noisy = clean + rng.normal(0, 0.05, clean.shape)
    assert abs(nlmeans.estimate_sigma(noisy, channel_axis=-1) - 0.05) < 0.05 * 0.05


def test_clipped_saturated_regions_do_not_bias_it(camera):
    """Half the image saturated at white: clipped pixels carry no noise and are left out."""
    clean = camera[:256, :256].astype(np.float64) / 255
    clean[:, :128] = 1.0
    noisy = np.clip(nlmeans.add_noise(clean, 10 / 255, seed=0), 0, 1)
    assert abs(nlmeans.estimate_sigma(noisy) * 255 - 10) < 0.05 * 10


def test_clean_and_tiny_images():
    assert nlmeans.estimate_sigma(np.full((64, 64), 0.5)) == 0.0
    tiny = np.random.default_rng(0).normal(0.5, 0.1, (5, 6))
    assert 0.0 < nlmeans.estimate_sigma(tiny) < 0.3  # falls back to the wavelet estimator
    with pytest.raises(ValueError, match="too small"):
        nlmeans.estimate_sigma(np.zeros((1, 5)))


def test_texture_law_matches_pure_noise(rng):
    """The gamma approximation of a pure-noise patch's texture strength: mean exact, 99.9 % quantile close."""
    p = 7
    shape, scale = _texture_gamma(p, 1)
    noise = rng.normal(0, 1, (20000, p, p))
    xi = (np.diff(noise, axis=1) ** 2).sum(axis=(1, 2)) + (np.diff(noise, axis=2) ** 2).sum(axis=(1, 2))
    assert xi.mean() == pytest.approx(shape * scale, rel=0.01)  # tr M = 2 × (number of pairs)
    assert shape * scale == pytest.approx(4 * p * (p - 1))
    assert xi.var() == pytest.approx(shape * scale * scale, rel=0.05)
    below = np.mean(xi < scale * _gamma_quantile(shape, 0.999))
    assert 0.997 < below <= 1.0


@pytest.mark.parametrize("shape", [0.5, 1.0, 2.5, 10.0, 18.47, 55.4, 73.9, 300.0])
def test_gamma_law_matches_scipy(shape):
    """The scipy-free gamma CDF and quantile (the estimator's threshold) against scipy.special."""
    from scipy.special import gammainc, gammaincinv

    for x in (0.01 * shape, 0.5 * shape, shape, shape + 1, 2 * shape, 5 * shape):
        assert _gamma_cdf(shape, x) == pytest.approx(gammainc(shape, x), rel=1e-11, abs=1e-14)
    for q in (1e-4, 0.01, 0.5, 0.9, 0.99, 0.999):
        assert _gamma_quantile(shape, q) == pytest.approx(gammaincinv(shape, q), rel=1e-12)
    assert _gamma_cdf(shape, 0.0) == 0.0


def test_eigenvalue_rule_on_pure_noise_and_with_signal(rng):
    noise = np.sort(rng.uniform(0.8, 1.2, 40))
    assert _noise_variance_from_eigenvalues(noise) == pytest.approx(noise.mean(), rel=0.05)
    with_signal = np.concatenate([noise, [50.0, 20.0, 8.0, 3.0]])
    assert _noise_variance_from_eigenvalues(with_signal) == pytest.approx(noise.mean(), rel=0.05)


def test_default_h_scales_with_sigma_and_has_a_floor():
    preset = preset_for(20)
    assert default_h(20 / 255, preset) == pytest.approx(preset.h_over_sigma * 20 / 255)
    assert default_h(0.0, preset) == pytest.approx(1e-3)
    assert default_h(0.0, preset, data_range=255) == pytest.approx(0.255)
