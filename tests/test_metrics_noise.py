import numpy as np
import pytest

import nlmeans


def test_add_noise_is_seeded_float_and_unclipped(camera):
    a = nlmeans.add_noise(camera, 0.1, seed=7)
    b = nlmeans.add_noise(camera, 0.1, seed=7)
    assert a.dtype == np.float64 and np.array_equal(a, b)
    assert a.min() < 0 and a.max() > 1  # not clipped
    assert abs((a - camera / 255.0).std() - 0.1) < 0.002
    c = nlmeans.add_noise(camera, 0.1, seed=7, clip=True)
    assert c.min() >= 0 and c.max() <= 1


def test_add_noise_keeps_float32():
    assert nlmeans.add_noise(np.zeros((4, 4), np.float32), 0.1, seed=0).dtype == np.float32


def test_psnr_units_agree_across_dtypes(camera):
    noisy = nlmeans.add_noise(camera, 20 / 255, seed=0)
    as_u8 = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
    p_int = nlmeans.psnr(camera, as_u8)
    mse = np.mean((camera.astype(float) - as_u8.astype(float)) ** 2)
    assert p_int == pytest.approx(10 * np.log10(255**2 / mse))
    assert nlmeans.psnr(camera, as_u8 / 255.0) == pytest.approx(p_int)
    assert nlmeans.psnr(camera, camera) == float("inf")


def test_psnr_default_range_is_not_guessed_from_data():
    clean = np.full((8, 8), 0.5)
    test = clean + 0.01
    assert nlmeans.psnr(clean, test) == pytest.approx(40.0)
    assert nlmeans.psnr(clean, test, data_range=2.0) == pytest.approx(40.0 + 20 * np.log10(2))


def test_ssim_and_errors(astronaut):
    assert nlmeans.ssim(astronaut, astronaut, channel_axis=-1) == pytest.approx(1.0)
    noisy = nlmeans.add_noise(astronaut, 0.1, seed=0)
    assert nlmeans.ssim(astronaut, noisy, channel_axis=-1) < 0.8
    with pytest.raises(ValueError, match="shape"):
        nlmeans.psnr(np.zeros((4, 4)), np.zeros((4, 5)))


def test_estimate_sigma_gray_and_color(camera, astronaut):
    for img, axis in ((camera, None), (astronaut, -1)):
        noisy = nlmeans.add_noise(img, 15 / 255, seed=2)
        assert abs(nlmeans.estimate_sigma(noisy, channel_axis=axis) * 255 - 15) < 2.5
