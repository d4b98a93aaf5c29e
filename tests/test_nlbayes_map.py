"""σ maps inside the NL-Bayes kernel (issue #18): each stage against a direct reference of the model, both stages
and colour through :func:`nlmeans.nlbayes.nlbayes_chw`, a constant map against the scalar kernel, and the
routing of ``denoise(image, sigma=map)`` (the default method)."""

import naive
import numpy as np
import pytest

import nlmeans
from nlmeans import _config, presets
from nlmeans.nlbayes import _YUV, _nlbayes_pass, nlbayes_checked, nlbayes_chw
from nlmeans.nlm import patch_mean
from nlmeans.sigma_arrays import denoise_sigma_array

# ------------------------------------------------------------------------------------ the direct reference


def padded_patch_mean_s2(sigma_map, f, r):
    """σ̄²: the mean of σ² over the P×P patch centred at every padded pixel of the reflect-padded map (pad r + f;
    centres within f of the padded edge, never used, are 0)."""
    pad, P = r + f, 2 * f + 1
    s2 = np.pad(np.asarray(sigma_map, np.float64) ** 2, pad, mode="reflect")
    out = np.zeros_like(s2)
    for y in range(f, s2.shape[0] - f):
        for x in range(f, s2.shape[1] - f):
            out[y, x] = s2[y - f:y + f + 1, x - f:x + f + 1].sum() / (P * P)
    return out


def reference_stage(image, basic, stage, sbar, patch, search, n_sim, beta, gamma, step, dist_dtype=np.float64):
    """One NL-Bayes stage with a σ map, by the model: ``naive.nlbayes_stage`` (bands, grid, "already processed"
    mask, ties to the earlier offset) given the map ``sbar`` (σ̄² at every padded centre), the distances
    stored in ``dist_dtype`` as the kernel's buffer."""
    return naive.nlbayes_stage(image, basic, stage, None, patch, search, n_sim, beta, gamma, step,
                               _config.BAND_ROWS, sbar=sbar, dist_dtype=dist_dtype)


def _map(kind, shape, rng):
    """σ maps (float scale): halves, a smooth gradient, random (continuous, zeros included)."""
    H, W = shape
    if kind == "halves":
        smap = np.full(shape, 0.05)
        smap[:, W // 2:] = 0.2
    elif kind == "gradient":
        smap = np.tile(np.linspace(0.02, 0.25, W), (H, 1))
    else:
        smap = rng.uniform(0.0, 0.25, shape) * (rng.random(shape) > 0.1)
    return smap


def _quantised(rng, shape):
    """Values on a 1/16 grid: squared distances exact in float32 and float64, so groups can be compared."""
    return rng.integers(0, 16, shape) / 16.0


def _kernel_stage(image, basic, stage, sbar, patch, search, n_sim, beta, gamma, step, dtype):
    f, r = patch // 2, search // 2
    widths = ((0, 0), (r + f, r + f), (r + f, r + f))
    vp = np.pad(image.astype(dtype), widths, mode="reflect")
    bp = vp if basic is None else np.pad(basic.astype(dtype), widths, mode="reflect")
    out = np.empty(image.shape, dtype=dtype)
    _nlbayes_pass(vp, bp, stage, f, r, n_sim, step, sbar.astype(dtype), dtype(beta), dtype(gamma),
                  _config.BAND_ROWS, out)
    return out


NLB = dict(n_similar=(20, 12), beta=(1.0, 1.2), gamma=(1.05, 0.02), step=3)

# (shape (C, H, W), patch, search, n_similar, step, gamma): gray and two channels, several row bands, the
# 5×5 patch's unrolled paths, a window wider than a vector
CASES = [
    ((1, 22, 19), 3, 7, 20, 2, 1.05),
    ((2, 26, 17), 3, 5, 16, 3, 0.0),
    ((1, 70, 24), 3, 7, 25, 3, 1.05),
    ((1, 21, 23), 5, 9, 40, 3, 0.5),
    ((1, 30, 34), 5, 17, 40, 3, 1.05),
]


@pytest.mark.parametrize("kind", ["halves", "gradient", "random"])
@pytest.mark.parametrize("stage", [1, 2])
@pytest.mark.parametrize("shape,patch,search,n_sim,step,gamma", CASES)
def test_stage_with_a_map_matches_reference(rng, stage, shape, patch, search, n_sim, step, gamma, kind):
    image = _quantised(rng, shape)
    basic = _quantised(rng, shape) if stage == 2 else None
    g = gamma if stage == 1 else gamma / 20  # stage 2 tests the basic group's variance, near 0 if flat
    smap = _map(kind, shape[1:], rng)
    sbar = padded_patch_mean_s2(smap, patch // 2, search // 2)
    ref = reference_stage(image, basic, stage, sbar, patch, search, n_sim, 1.0, g, step)
    out64 = _kernel_stage(image, basic, stage, sbar, patch, search, n_sim, 1.0, g, step, np.float64)
    np.testing.assert_allclose(out64, ref, rtol=1e-9, atol=1e-12)
    sbar32 = sbar.astype(np.float32)
    ref32 = reference_stage(image, basic, stage, sbar32.astype(np.float64), patch, search, n_sim, 1.0, g, step,
                            np.float32)
    out32 = _kernel_stage(image, basic, stage, sbar32, patch, search, n_sim, 1.0, g, step, np.float32)
    assert np.abs(out32 - ref32).max() <= 1e-4


def test_the_map_changes_groups_and_models(rng):
    """The reference is not the scalar stage at either level of the map: the map matters."""
    image = _quantised(rng, (1, 24, 24))
    smap = _map("halves", (24, 24), rng)
    ref = reference_stage(image, None, 1, padded_patch_mean_s2(smap, 1, 3), 3, 7, 20, 1.0, 1.05, 2)
    for s in (0.05, 0.2):
        flat = reference_stage(image, None, 1, padded_patch_mean_s2(np.full((24, 24), s), 1, 3), 3, 7, 20, 1.0,
                               1.05, 2)
        assert np.abs(ref - flat).max() > 1e-3



@pytest.mark.parametrize("kind", ["halves", "gradient", "random"])
@pytest.mark.parametrize("shape,patch,search", [((1, 20, 23), 3, (7, 5)), ((3, 18, 21), 5, (9, 7)),
                                                ((1, 40, 16), 3, (5, 7))])
def test_nlbayes_chw_runs_the_stages_with_the_patch_mean_of_the_map(rng, shape, patch, search, kind):
    """nlbayes_chw with a map is the two checked stages above, each given σ̄² of its own patch and window
    (the direct patch mean, to float rounding), colour in the orthonormal (Y, U, V) with the one map. (The
    stages are compared with the reference on quantised data only: reflected patches tie exactly, and on
    continuous data float rounding breaks such ties differently; the scalar kernel's tests do the same.)"""
    image = _quantised(rng, shape)
    smap = _map(kind, shape[1:], rng)
    out = nlbayes_chw(image, smap, patch_size=patch, search_size=search, **NLB)
    v = np.einsum("ij,jhw->ihw", _YUV, image) if shape[0] == 3 else image
    basic = None
    for k in range(2):
        f, r = patch // 2, search[k] // 2
        sbar = padded_patch_mean_s2(smap, f, r)
        kernel_sbar = patch_mean(np.pad(smap**2, r + f, mode="reflect"), patch)
        np.testing.assert_allclose(kernel_sbar[f:-f, f:-f], sbar[f:-f, f:-f], rtol=1e-13, atol=1e-17)
        basic = _kernel_stage(v, basic, k + 1, kernel_sbar, patch, search[k], NLB["n_similar"][k], NLB["beta"][k],
                              NLB["gamma"][k], NLB["step"], np.float64)
    ref = np.einsum("ji,jhw->ihw", _YUV, basic) if shape[0] == 3 else basic
    np.testing.assert_array_equal(out, ref)


# ------------------------------------------------------------------------- constant maps: the scalar kernel


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,patch,search", [((1, 40, 37), 5, (9, 7)), ((3, 33, 30), 5, (11, 7)),
                                                ((1, 70, 21), 3, (7, 7)), ((3, 24, 26), 7, (9, 9))])
@pytest.mark.parametrize("sigma", [0.1, 0.03])
def test_constant_map_is_the_scalar_result_bit_for_bit(rng, dtype, shape, patch, search, sigma):
    value = rng.random(shape).astype(dtype)
    scalar = nlbayes_chw(value, sigma, patch_size=patch, search_size=search, **NLB)
    mapped = nlbayes_chw(value, np.full(shape[1:], sigma), patch_size=patch, search_size=search, **NLB)
    assert mapped.dtype == dtype
    np.testing.assert_array_equal(mapped, scalar)


def test_zero_map_returns_the_image_and_extreme_maps_stay_finite(rng):
    value = rng.random((1, 20, 20))
    out = nlbayes_chw(value, np.zeros((20, 20)), patch_size=3, search_size=5, **NLB)
    np.testing.assert_array_equal(out, value)
    smap = np.full((20, 20), 0.1)
    smap[:, 10:] = 0.0  # no noise on one side
    for dtype in (np.float32, np.float64):
        out = nlbayes_chw(value.astype(dtype), smap, patch_size=3, search_size=5, **NLB)
        assert np.isfinite(out).all()


@pytest.mark.parametrize("scale", [2.0**-100, 2.0**100])
def test_tiny_and_huge_data_with_a_map_scale_like_the_scalar_path(rng, scale):
    """nlbayes_checked brings σ outside [2^-24, 2^24] into it by a power of two: the map goes with it (float32:
    σ² of 2^-200 would underflow to 0, no denoising). Powers of two scale every operation exactly."""
    image = rng.random((1, 24, 24)).astype(np.float32)
    smap = _map("halves", (24, 24), rng)
    params = dict(patch_size=3, search_size=(7, 5), **NLB)
    expected = nlbayes_chw(image, smap, **params)
    out = nlbayes_checked(image * np.float32(scale), smap * scale, params)
    np.testing.assert_allclose(out / np.float32(scale), expected, rtol=1e-6, atol=0)
    assert np.abs(expected - image).max() > 0.05  # it denoised


# -------------------------------------------------------------------------------------- denoise(sigma=map)


def _smooth(n):
    y, x = np.mgrid[0:n, 0:n] / n
    return 0.5 + 0.3 * np.sin(6 * x) * np.cos(4 * y)


@pytest.mark.parametrize("method", [None, "nlbayes"])
@pytest.mark.parametrize("channel_axis", [None, -1])
def test_denoise_with_a_map_runs_nlbayes_with_the_map_and_the_rms_preset(rng, method, channel_axis):
    shape = (40, 44) if channel_axis is None else (40, 44, 3)
    image = rng.random(shape).astype(np.float32)
    smap = _map("gradient", (40, 44), rng)
    out = nlmeans.denoise(image, smap, method=method, channel_axis=channel_axis)
    rms = float(np.sqrt(np.mean(smap**2)))
    chw = image[None] if channel_axis is None else np.moveaxis(image, -1, 0)
    params = presets.resolve_nlbayes((40, 44), 255 * rms, chw.shape[0])
    ref = nlbayes_chw(chw, smap, **params)
    ref = ref[0] if channel_axis is None else np.moveaxis(ref, 0, -1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)
    levels = denoise_sigma_array(nlmeans.denoise, image, channel_axis, smap, {"method": method}, in_kernel=False)
    assert np.abs(out - levels).max() > 1e-3  # not the per-level route


def test_denoise_with_a_map_keeps_sizes_and_integer_scale(rng):
    image = (rng.random((30, 32)) * 255).astype(np.uint8)
    smap = np.full((30, 32), 5 / 255)
    smap[15:] = 30 / 255
    out = nlmeans.denoise(image, smap, patch_size=3, search_size=7)
    as_float = nlbayes_chw((image / 255.0).astype(np.float32)[None], smap,
                           **presets.resolve_nlbayes((30, 32), 255 * np.sqrt(np.mean(smap**2)), 1, 3, 7))[0]
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.clip(np.rint(as_float * 255), 0, 255)).max() <= 1


def test_nlbayes_map_beats_the_scalar_call_on_halves():
    clean = _smooth(96)
    smap = np.full(clean.shape, 10 / 255)
    smap[:, 48:] = 40 / 255
    noisy = clean + np.random.default_rng(3).normal(size=clean.shape) * smap
    mapped = nlmeans.denoise(noisy, smap)
    scalar = nlmeans.denoise(noisy, float(np.sqrt(np.mean(smap**2))))
    assert nlmeans.psnr(clean, mapped, data_range=1) > nlmeans.psnr(clean, scalar, data_range=1) + 0.5


@pytest.mark.parametrize(
    ("sigma", "kwargs", "error", "match"),
    [
        (np.full((20, 24), 0.1), {}, ValueError, r"sigma has shape \(20, 24\); allowed: a number, a map of the "
                                                 r"image's height×width \(24, 20\)"),
        (np.where(np.eye(24, 20) > 0, -0.1, 0.1), {}, ValueError, r"finite and >= 0 everywhere; 20 of its 480"),
        (np.where(np.eye(24, 20) > 0, np.nan, 0.1), {}, ValueError, r"finite and >= 0 everywhere"),
        (_map("halves", (24, 20), None), {"method": "nlbayes", "h": 0.1}, ValueError,
         r"h is not used by method='nlbayes'"),
        (_map("halves", (24, 20), None), {"return_settings": True}, ValueError,
         "return_settings is not supported"),
    ],
)
def test_bad_maps_and_options_are_refused(sigma, kwargs, error, match):
    with pytest.raises(error, match=match):
        nlmeans.denoise(_smooth(24)[:, :20], sigma, **kwargs)
