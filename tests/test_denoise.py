"""The public API: dtypes, shapes, parameters, errors, and that it denoises."""

import numpy as np
import pytest

import nlmeans
from nlmeans.presets import DEFAULT_COLOR, DEFAULT_GRAY, IPOL_COLOR, IPOL_GRAY, preset_for


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_dtype_and_shape_round_trip(rng, dtype):
    clean = rng.random((24, 31))
    if np.dtype(dtype).kind == "u":
        image = (clean * np.iinfo(dtype).max).astype(dtype)
    else:
        image = clean.astype(dtype)
    out = nlmeans.denoise(image, 0.05, patch_size=3, search_size=7)
    assert out.dtype == image.dtype and out.shape == image.shape


def test_integer_input_is_scaled_computed_and_rounded_back(rng):
    clean = rng.random((20, 20))
    u8 = np.round(clean * 255).astype(np.uint8)
    as_float = nlmeans.denoise(u8.astype(np.float32) / 255, 0.05, h=0.04, patch_size=3, search_size=5)
    out = nlmeans.denoise(u8, 0.05, h=0.04, patch_size=3, search_size=5)
    expect = np.clip(np.rint(as_float * 255), 0, 255).astype(np.uint8)
    assert np.array_equal(out, expect)


def test_float_range_is_untouched(rng):
    image = 1000.0 + 500.0 * rng.random((20, 20))
    out = nlmeans.denoise(image, 5.0, h=20.0, patch_size=3, search_size=5, data_range=500)
    assert 1000.0 <= out.min() and out.max() <= 1500.0


@pytest.mark.parametrize("axis", [-1, 0, 2])
def test_channel_axis_positions_agree(rng, axis):
    hwc = rng.random((16, 18, 3)).astype(np.float32)
    ref = nlmeans.denoise(hwc, 0.1, h=0.1, patch_size=3, search_size=5, channel_axis=-1)
    moved = np.moveaxis(hwc, -1, axis)
    out = nlmeans.denoise(moved, 0.1, h=0.1, patch_size=3, search_size=5, channel_axis=axis)
    np.testing.assert_array_equal(np.moveaxis(out, axis, -1), ref)


def test_many_channels(rng):
    image = rng.random((12, 14, 7))
    out = nlmeans.denoise(image, 0.1, h=0.1, patch_size=3, search_size=5, channel_axis=-1)
    assert out.shape == image.shape


def test_channels_share_one_weight(rng):
    """A color image whose channels are equal gives the gray result in every channel."""
    gray = rng.random((20, 22))
    color = np.stack([gray] * 3, axis=-1)
    g = nlmeans.denoise(gray, 0.1, h=0.1, patch_size=3, search_size=7)
    c = nlmeans.denoise(color, 0.1, h=0.1, patch_size=3, search_size=7, channel_axis=-1)
    for k in range(3):
        np.testing.assert_allclose(c[..., k], g, rtol=1e-12)


def test_constant_image_stays_constant():
    image = np.full((30, 30), 0.25)
    np.testing.assert_allclose(nlmeans.denoise(image, 0.1), image, rtol=1e-12)


def test_sigma_zero_keeps_a_clean_image(camera):
    crop = camera[:64, :64]
    out = nlmeans.denoise(crop, 0.0)
    assert np.abs(out.astype(int) - crop.astype(int)).max() <= 1


def test_denoising_camera_at_sigma_20_gains_psnr(camera):
    """Measured: 22.1 dB noisy -> 30.0 dB with the defaults (σ given); assert a 6 dB gain."""
    noisy = nlmeans.add_noise(camera, 20 / 255, seed=0)
    out = nlmeans.denoise(noisy.astype(np.float32), 20 / 255)
    before, after = nlmeans.psnr(camera, noisy), nlmeans.psnr(camera, out)
    assert after > before + 6.0


def test_estimated_sigma_is_used_when_none(camera):
    noisy = nlmeans.add_noise(camera[:128, :128], 25 / 255, seed=3).astype(np.float32)
    _, used = nlmeans.denoise(noisy, return_settings=True)
    assert used.sigma_estimated and abs(used.sigma_255 - 25) < 3


def test_default_sizes_follow_the_preset_table_and_shrink_to_fit(rng):
    def run(*args, **kwargs):
        return nlmeans.denoise(*args, method="pixelwise", **kwargs, return_settings=True)
    _, used = run(rng.random((64, 64)), 20 / 255)
    assert (used.patch_size, used.search_size) == (5, 21)
    assert used.h == pytest.approx(preset_for(20).h_over_sigma * 20 / 255)
    _, used = run(rng.random((64, 64, 3)), 40 / 255, channel_axis=-1)
    assert (used.patch_size, used.search_size) == (preset_for(40, 3).patch_size, preset_for(40, 3).search_size)
    _, used = run(rng.random((8, 40)), 20 / 255)
    assert (used.patch_size, used.search_size) == (5, 7)


def test_preset_tables_cover_all_sigmas():
    for table in (DEFAULT_GRAY, DEFAULT_COLOR, IPOL_GRAY, IPOL_COLOR):
        assert table[-1].sigma_255_max == np.inf
    assert preset_for(0) == DEFAULT_GRAY[0] and preset_for(1000) == DEFAULT_GRAY[-1]
    assert preset_for(60, 3) == DEFAULT_COLOR[-1]
    assert [p.patch_size for p in IPOL_GRAY] == [3, 5, 7, 9, 11]
    assert [p.search_size for p in IPOL_COLOR] == [21, 35, 35]


BAD = [
    (dict(image=np.zeros((5, 5, 5))), ValueError, "channel_axis"),
    (dict(image=np.zeros(10)), ValueError, "dimensions"),
    (dict(image=np.zeros((0, 5))), ValueError, "empty"),
    (dict(image=np.array([[np.nan, 0], [0, 0]])), ValueError, "NaN"),
    (dict(image=np.array([[np.inf, 0], [0, 0]])), ValueError, "NaN or infinite"),
    (dict(image=np.zeros((8, 8), np.int64)), TypeError, "64-bit integers"),
    (dict(image=np.zeros((8, 8), bool)), TypeError, "bool mask"),
    (dict(image="cat.png"), TypeError, "numpy array"),
    (dict(patch_size=4), ValueError, "odd"),
    (dict(patch_size=0), ValueError, "odd"),
    (dict(patch_size=-3), ValueError, "odd"),
    (dict(patch_size=2.5), TypeError, "integer"),
    (dict(search_size=31), ValueError, "larger than"),
    (dict(patch_size=21), ValueError, "larger than"),
    (dict(sigma=-0.1), ValueError, "sigma"),
    (dict(sigma=float("nan")), ValueError, "finite"),
    (dict(h=0), ValueError, "h must be > 0"),
    (dict(h=-1.0), ValueError, "h must be > 0"),
    (dict(method="fastest"), ValueError, "method"),
    (dict(channel_axis=3, image=np.zeros((8, 8, 3))), ValueError, "out of range"),
    (dict(channel_axis=-1), ValueError, "dimensions"),
    (dict(guide=np.zeros((9, 9))), ValueError, "same"),
]


@pytest.mark.parametrize("kwargs,exc,match", BAD)
def test_bad_input_raises_a_clear_error(kwargs, exc, match):
    args = dict(image=np.zeros((20, 20)), sigma=0.1)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        nlmeans.denoise(args.pop("image"), args.pop("sigma"), **args)


def test_guide_equal_to_image_reproduces_plain_bit_for_bit(rng):
    image = rng.random((30, 33, 3)).astype(np.float32)
    plain = nlmeans.denoise(image, 0.1, channel_axis=-1, method="pixelwise")
    guided = nlmeans.denoise(image, 0.1, channel_axis=-1, guide=image.copy(), guide_sigma=0.1)
    np.testing.assert_array_equal(guided, plain)


def test_clean_guide_beats_plain_at_high_noise(camera):
    clean = camera[128:320, 128:320]
    noisy = nlmeans.add_noise(clean, 50 / 255, seed=1).astype(np.float32)
    plain = nlmeans.denoise(noisy, 50 / 255, method="pixelwise")
    guided = nlmeans.denoise(noisy, 50 / 255, guide=clean, guide_sigma=0)
    assert nlmeans.psnr(clean, guided) > nlmeans.psnr(clean, plain) + 1.0
