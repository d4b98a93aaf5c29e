"""The dtype rule (nlmeans/_validate.py): integers mapped from their dtype's range to [0, 1] and returned in
their dtype, 32-bit integers computed in float64, float16 in float32, lists through np.asarray, bool refused."""

import numpy as np
import pytest

import nlmeans
from nlmeans._validate import from_float, to_float

RNG = np.random.default_rng(19)
INTS = [np.int8, np.int16, np.int32, np.uint32, np.uint8, np.uint16]


@pytest.mark.parametrize("dtype", INTS)
def test_integer_round_trip_is_exact_at_the_ends_and_zero(dtype):
    info = np.iinfo(dtype)
    values = np.array([info.min, info.min + 1, 0, 1, info.max - 1, info.max], dtype=dtype)
    f = to_float(values)
    assert f.min() == 0.0 and f.max() == 1.0  # the dtype's range maps onto [0, 1]
    back = from_float(f, dtype)
    assert back.dtype == dtype and np.array_equal(back, values)


def test_32_bit_integers_are_computed_in_float64():
    big = np.array([2**31 - 2, 2**31 - 1], dtype=np.int32)  # float32 cannot tell these apart
    assert to_float(big).dtype == np.float64
    assert np.array_equal(from_float(to_float(big), np.int32), big)


def _ct_phantom():
    """A CT-like int16 slice in Hounsfield units: air (-1000), water (0), bone (1000)."""
    clean = np.full((96, 96), -1000, np.int16)
    clean[16:80, 16:80] = 0
    clean[36:60, 36:60] = 1000
    return clean


@pytest.mark.parametrize("method", [None, "pixelwise"])
def test_int16_ct_is_denoised_in_hounsfield_units(method):
    clean = _ct_phantom()
    sigma_hu = 60.0
    noisy = np.clip(np.rint(clean + RNG.normal(0, sigma_hu, clean.shape)), -32768, 32767).astype(np.int16)
    out = nlmeans.denoise(noisy, sigma_hu / 65535, method=method)  # σ on the float scale: HU / int16 span
    assert out.dtype == np.int16
    before, after = nlmeans.psnr(clean, noisy), nlmeans.psnr(clean, out)
    assert after > before + 6, (before, after)
    # tissue values stay where they were (mapping undone exactly), not shifted by the offset
    assert abs(float(np.median(out[40:56, 40:56])) - 1000) < 10
    assert abs(float(np.median(out[2:14, 2:14])) + 1000) < 10


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int8])
def test_other_integers_keep_their_dtype_and_improve(dtype):
    info = np.iinfo(dtype)
    span = float(info.max) - float(info.min)
    clean01 = np.where(np.arange(64)[:, None] < 32, 0.3, 0.7) * np.ones((64, 64))
    noisy01 = clean01 + RNG.normal(0, 0.05, clean01.shape)
    as_int = lambda x: np.clip(np.rint(x * span + info.min), info.min, info.max).astype(dtype)  # noqa: E731
    clean, noisy = as_int(clean01), as_int(noisy01)
    out = nlmeans.denoise(noisy, 0.05)
    assert out.dtype == dtype
    assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, noisy) + 6


def test_float16_is_computed_in_float32_and_returned_as_float16():
    clean = np.full((48, 48), 0.5, np.float32)
    noisy = (clean + RNG.normal(0, 0.1, clean.shape)).astype(np.float16)
    out = nlmeans.denoise(noisy, 0.1)
    assert out.dtype == np.float16
    ref = nlmeans.denoise(noisy.astype(np.float32), 0.1)
    assert np.array_equal(out, ref.astype(np.float16))
    assert nlmeans.denoise_tiled(noisy, 0.1, tile_rows=16).dtype == np.float16


def test_lists_are_taken_as_float64_values():
    noisy = (0.5 + RNG.normal(0, 0.1, (32, 32))).tolist()
    out = nlmeans.denoise(noisy, 0.1)
    assert out.dtype == np.float64 and out.shape == (32, 32)
    assert np.array_equal(out, nlmeans.denoise(np.asarray(noisy), 0.1))
    ints = [[10, 200] * 8] * 16  # no dtype to define a range: the values as they are
    assert nlmeans.denoise(ints, 5.0).dtype == np.float64
    assert nlmeans.denoise_tiled(noisy, 0.1).dtype == np.float64
    assert nlmeans.psnr(noisy, noisy, data_range=1.0) == float("inf")


@pytest.mark.parametrize("func", [
    lambda a: nlmeans.denoise(a, 0.1),
    lambda a: nlmeans.denoise_tiled(a, 0.1),
    lambda a: nlmeans.estimate_sigma(a),
    lambda a: nlmeans.add_noise(a, 0.1),
    lambda a: nlmeans.psnr(a, a),
])
def test_bool_and_64_bit_integers_are_refused_with_a_hint(func):
    with pytest.raises(TypeError, match="bool mask.*astype"):
        func(np.zeros((16, 16), bool))
    with pytest.raises(TypeError, match="64-bit integers"):
        func(np.zeros((16, 16), np.int64))


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint32, np.float16])
def test_every_public_function_takes_the_new_dtypes(dtype):
    base = 0.5 + 0.05 * RNG.standard_normal((40, 40))
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        arr = np.rint(base * (float(info.max) - float(info.min)) + info.min).astype(dtype)
    else:
        arr = base.astype(dtype)
    sigma = nlmeans.estimate_sigma(arr)
    assert 0.03 < sigma < 0.08  # the same σ on the float scale whatever the dtype
    assert nlmeans.add_noise(arr, 0.01, seed=0).dtype.kind == "f"
    assert nlmeans.psnr(arr, arr) == float("inf") and nlmeans.ssim(arr, arr) == pytest.approx(1.0)
    assert nlmeans.denoise_tiled(arr, sigma, tile_rows=16).dtype == dtype
    vol = np.stack([arr] * 5)
    assert nlmeans.denoise_volume(vol, sigma, patch_size=3, search_size=5).dtype == dtype
    assert nlmeans.denoise_video(vol, sigma, patch_size=3, search_size=5).dtype == dtype


def test_cli_denoises_an_int16_tiff_into_int16(tmp_path):
    import tifffile
    from click.testing import CliRunner

    from nlmeans.cli import main

    clean = _ct_phantom()
    noisy = np.clip(np.rint(clean + RNG.normal(0, 60, clean.shape)), -32768, 32767).astype(np.int16)
    tifffile.imwrite(tmp_path / "ct.tif", noisy)
    sigma_255 = 60 / 65535 * 255  # the CLI's 0–255 scale is the same fraction of the int16 range
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "ct.tif"), str(tmp_path / "out.tif"),
                                    "--sigma", f"{sigma_255:.6f}"])
    assert res.exit_code == 0, res.output
    out = tifffile.imread(tmp_path / "out.tif")  # an independent reader
    assert out.dtype == np.int16
    assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, noisy) + 6
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "ct.tif"), str(tmp_path / "out.png"),
                                    "--sigma", "1"])
    assert res.exit_code == 1 and "PNG files hold 8/16-bit unsigned" in res.output
    assert not (tmp_path / "out.png").exists()
