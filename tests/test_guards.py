"""The same guards on every path (issue #21): scale, magnitude, degenerate parameters, in-place strips."""

import numpy as np
import pytest

import nlmeans


@pytest.fixture(scope="module")
def noisy():
    rng = np.random.default_rng(0)
    clean = np.clip(np.cumsum(rng.normal(0, 0.02, (96, 96)), axis=1) + 0.5, 0, 1)
    return clean, (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)


@pytest.mark.parametrize("exponent", [40, -60])
def test_nlbayes_is_exactly_scale_equivariant_by_powers_of_two(noisy, exponent):
    """Far from 1 the data are brought back by a power of two (exact), so the result is the same bits
    (``data_range`` says where σ sits for the presets)."""
    _, image = noisy
    scale = np.float32(2.0**exponent)
    out = nlmeans.denoise(image * scale, 0.1 * float(scale), data_range=float(scale))
    assert np.array_equal(out, nlmeans.denoise(image, 0.1) * scale)


@pytest.mark.parametrize("scale", [1e-30, 1e19])
def test_nlbayes_denoises_tiny_and_huge_float32_data(noisy, scale):
    """Before: at 1e-30 σ² underflowed to 0 in float32 and nothing was denoised (0.48 of the range off)."""
    clean, image = noisy
    ref = nlmeans.psnr(clean, nlmeans.denoise(image, 0.1))
    out = nlmeans.denoise((image * scale).astype(np.float32), 0.1 * scale, data_range=scale)
    assert np.isfinite(out).all()
    assert nlmeans.psnr(clean, out / scale) > ref - 0.3


def test_nlbayes_strips_follow_the_same_scaling(noisy):
    _, image = noisy
    big = np.concatenate([image] * 4) * np.float32(2.0**-70)
    sigma = 0.1 * 2.0**-70
    assert np.array_equal(nlmeans.denoise_tiled(big, sigma, tile_rows=1), nlmeans.denoise(big, sigma))


def test_a_tiny_gaussian_patch_sigma_is_the_centre_pixel_not_nan(noisy):
    _, image = noisy
    out = nlmeans.denoise(image, 0.1, patch_weights="gaussian", patch_sigma=1e-300)
    assert np.isfinite(out).all()
    assert np.array_equal(out, nlmeans.denoise(image, 0.1, patch_weights="gaussian", patch_sigma=1e-30))


def test_strips_in_place_are_refused(noisy):
    _, image = noisy
    x = np.concatenate([image] * 3)
    with pytest.raises(ValueError, match="shares memory"):
        nlmeans.denoise_tiled(x, 0.1, out=x, tile_rows=64)
    with pytest.raises(ValueError, match="shares memory"):
        nlmeans.denoise_tiled(x, 0.1, out=x[::-1], tile_rows=64)


@pytest.mark.parametrize("call", [nlmeans.denoise_volume, nlmeans.denoise_video])
def test_stacks_refuse_values_whose_squares_overflow(call):
    stack = np.random.default_rng(1).random((4, 12, 12)).astype(np.float32) * np.float32(1e30)
    with pytest.raises(ValueError, match="overflow"):
        call(stack, 1e29, method="pixelwise")
    # NL-Bayes (the default) brings the scale into range by a power of two, as in 2-D: the same bits
    # (``data_range`` puts σ at the same place of the presets)
    small = call(stack / np.float32(2.0**100), 1e29 / 2.0**100)
    assert np.array_equal(call(stack, 1e29, data_range=2.0**100), small * np.float32(2.0**100))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("kw", [dict(sigma=20), dict(sigma=0.05, h=8)])
def test_the_0_255_habit_on_integer_images_is_an_error_naming_the_float_scale(dtype, kw):
    """nlmeans.denoise(uint8, 20) ran and returned 20.9 dB from a 22.5 dB input: σ was 20 full ranges."""
    image = np.zeros((40, 40), dtype)
    name = "h" if "h" in kw else "sigma"
    for call in (nlmeans.denoise, nlmeans.denoise_tiled):
        with pytest.raises(ValueError, match=rf"{name} is on the float image's scale.*did you mean {name}="):
            call(image, **kw)
    with pytest.raises(ValueError, match="did you mean"):
        nlmeans.denoise_volume(np.zeros((4, 12, 12), dtype), **kw)
    nlmeans.denoise(image.astype(np.float32), **kw)  # float images: their own units, any σ


@pytest.mark.parametrize("method", ["nlbayes", "pixelwise"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_the_0_255_habit_with_per_channel_sigma_or_a_map_is_the_same_error(dtype, method):
    """denoise(uint8, [5, 20, 35], channel_axis=-1) ran with σ of 5 to 35 full ranges (one σ was refused)."""
    image = np.zeros((40, 40, 3), dtype)
    per_level = dict(patch_weights="gaussian") if method == "pixelwise" else {}  # pixelwise: the per-level route
    calls = [lambda: nlmeans.denoise(image, [5, 20, 35], channel_axis=-1, method=method),
             lambda: nlmeans.denoise_tiled(image, [5, 20, 35], channel_axis=-1, method=method),
             lambda: nlmeans.denoise(image, np.full((40, 40), 20.0), channel_axis=-1, method=method),
             lambda: nlmeans.denoise(image[..., 0], np.full((40, 40), 20.0), method=method, **per_level)]
    for call in calls:
        with pytest.raises(ValueError, match=r"sigma=\d+ on a uint\d+ image.*did you mean sigma=\d+/255"):
            call()
    scaled = nlmeans.denoise(image, [5 / 255, 20 / 255, 35 / 255], channel_axis=-1, method=method)
    assert scaled.dtype == image.dtype and scaled.shape == image.shape


@pytest.mark.parametrize("bad", [[[0.1, 0.2], [0.3]], ["a", "b", "c"], ("0.1", None, 0.2)],
                         ids=["ragged", "strings", "mixed"])
def test_a_sigma_that_is_not_numbers_is_a_clear_error(bad):
    """A ragged list reached numpy's "inhomogeneous shape" message, strings "could not convert string": the
    error says what sigma may be, on every route."""
    image = np.zeros((20, 20, 3), np.float32)
    for call in (lambda: nlmeans.denoise(image, bad, channel_axis=-1),
                 lambda: nlmeans.denoise_tiled(image, bad, channel_axis=-1),
                 lambda: nlmeans.denoise_volume(np.zeros((4, 12, 12, 3), np.float32), bad, channel_axis=-1)):
        with pytest.raises((TypeError, ValueError), match="sigma must be|sigma has shape"):
            call()


def test_cli_guide_with_its_own_channels(tmp_path):
    """The README's example: a gray image with an RGB guide (the CLI passed no guide channel axis)."""
    from click.testing import CliRunner

    from nlmeans.cli import main
    from nlmeans.io import read_image, write_image

    rng = np.random.default_rng(3)
    gray = (rng.random((48, 48)) * 255).astype(np.uint8)
    photo = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
    write_image(tmp_path / "gray.png", gray)
    write_image(tmp_path / "photo.png", photo)
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "gray.png"), str(tmp_path / "out.png"),
                                    "--guide", str(tmp_path / "photo.png"), "--guide-sigma", "0", "--sigma", "10"])
    assert res.exit_code == 0, res.output
    expected = nlmeans.denoise(gray, 10 / 255, guide=photo, guide_channel_axis=-1, guide_sigma=0)
    assert np.array_equal(read_image(tmp_path / "out.png").data, expected)
