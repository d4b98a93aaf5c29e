"""σ maps inside the pixelwise NL-means kernel (issue #18): the kernel against a direct reference, constant maps
against the scalar kernel, and ``denoise(image, sigma=map, method="pixelwise")``."""

import numpy as np
import pytest
from numba import njit

import nlmeans
from nlmeans import presets
from nlmeans.nlm import nlmeans_chw, nlmeans_map_chw, patch_mean

# ------------------------------------------------------------------------------------ the direct reference


@njit(cache=False)
def _map_loops(v, s2, hmap, H, W, f, r):
    pad = r + f  # v and s2 (σ²) padded by pad
    C = v.shape[0]
    P = 2 * f + 1
    n = C * P * P
    # σ̄²: the plain patch mean of σ² at every pixel within r of the image
    sbar = np.zeros((H + 2 * r, W + 2 * r))
    for y in range(H + 2 * r):
        for x in range(W + 2 * r):
            t = 0.0
            for jy in range(P):
                for jx in range(P):
                    t += s2[y + jy, x + jx]
            sbar[y, x] = t / (P * P)
    out = np.zeros((C, H, W))
    for y in range(H):
        for x in range(W):
            num = np.zeros(C)
            den = 0.0
            h2 = hmap[y, x] ** 2
            for qy in range(y - r, y + r + 1):
                for qx in range(x - r, x + r + 1):
                    d2 = 0.0
                    for c in range(C):
                        for jy in range(-f, f + 1):
                            for jx in range(-f, f + 1):
                                e = v[c, y + jy + pad, x + jx + pad] - v[c, qy + jy + pad, qx + jx + pad]
                                d2 += e * e
                    d2 /= n
                    w = np.exp(-max(d2 - (sbar[y + r, x + r] + sbar[qy + r, qx + r]), 0.0) / h2)
                    for c in range(C):
                        num[c] += w * v[c, qy + pad, qx + pad]
                    den += w
            for c in range(C):
                out[c, y, x] = num[c] / den
    return out


def reference(value, sigma_map, h_map, patch_size, search_size):
    """NL-means with a σ map by the definition, (C, H, W) float64: w(p, q) = exp(-max(d² - (σ̄_p² + σ̄_q²), 0)
    / h_p²), σ̄² the patch mean of σ² on the reflect-extended map, q over the window (centre included)."""
    f, r = patch_size // 2, search_size // 2
    v = np.pad(np.asarray(value, np.float64), ((0, 0), (r + f, r + f), (r + f, r + f)), mode="reflect")
    s2 = np.pad(np.asarray(sigma_map, np.float64) ** 2, r + f, mode="reflect")
    return _map_loops(v, s2, np.asarray(h_map, np.float64), value.shape[1], value.shape[2], f, r)


def _maps(kind, shape, rng):
    """(σ map, h map) of one kind: halves, a smooth gradient, random with zeros (σ = 0 next to noise)."""
    H, W = shape
    if kind == "halves":
        smap = np.full(shape, 0.04)
        smap[:, W // 2:] = 0.15
    elif kind == "gradient":
        smap = np.tile(np.linspace(0.02, 0.16, W), (H, 1))
    else:
        smap = rng.uniform(0, 0.2, shape) * (rng.random(shape) > 0.2)
    hmap = 0.1 + 0.6 * smap if kind != "halves" else np.full(shape, 0.12)  # per-pixel h and a constant one
    return smap, hmap


# (C, H, W), patch, search: gray and color, non-square, one band and several (band 64 rows), r > band / 2
# no, widths at and around whole vectors, a one-pixel-wide image, patch 1 and search 1
CASES = [
    ((1, 20, 27), 3, 7),
    ((3, 33, 17), 5, 9),
    ((1, 70, 45), 3, 21),
    ((2, 14, 32), 3, 11),
    ((1, 12, 1), 3, 5),
    ((1, 9, 30), 1, 3),
    ((1, 25, 25), 3, 1),
    ((3, 70, 38), 7, 11),
    ((1, 5, 5), 3, 5),
]


@pytest.mark.parametrize("kind", ["halves", "gradient", "random"])
@pytest.mark.parametrize("shape,patch,search", CASES)
def test_map_kernel_matches_reference(rng, shape, patch, search, kind):
    value = rng.random(shape)
    smap, hmap = _maps(kind, shape[1:], rng)
    ref = reference(value, smap, hmap, patch, search)
    out64 = nlmeans_map_chw(value, smap, hmap, patch, search)
    np.testing.assert_allclose(out64, ref, rtol=1e-9, atol=0)
    out32 = nlmeans_map_chw(value.astype(np.float32), smap, hmap, patch, search)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ref, rtol=0, atol=1e-4)


def test_reference_is_not_trivial(rng):
    """The map matters: the reference with a map differs from the scalar reference at either level."""
    value = rng.random((1, 24, 24))
    smap, hmap = _maps("halves", (24, 24), rng)
    ref = reference(value, smap, hmap, 5, 9)
    for s in (0.04, 0.15):
        assert np.abs(ref - reference(value, np.full((24, 24), s), hmap, 5, 9)).max() > 1e-3
    assert np.abs(ref - value).max() > 1e-2


def test_patch_mean_is_the_reflected_box_mean_and_exact_on_constant_patches(rng):
    values = rng.random((13, 9)) * (rng.random((13, 9)) > 0.5)
    padded = np.pad(values, 2, mode="reflect")
    direct = np.array([[padded[y:y + 5, x:x + 5].mean() for x in range(9)] for y in range(13)])
    np.testing.assert_allclose(patch_mean(values, 5), direct, rtol=1e-12, atol=1e-15)
    const = np.full((10, 10), 0.1 ** 2)
    assert np.array_equal(patch_mean(const, 7), const)


# ------------------------------------------------------------------------- constant maps: the scalar kernel


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,patch,search", [((1, 40, 37), 3, 7), ((3, 70, 45), 5, 21), ((1, 12, 1), 3, 5),
                                                ((2, 17, 33), 7, 11), ((1, 130, 20), 9, 21)])
@pytest.mark.parametrize("sigma,h", [(0.1, 0.07), (0.0, 1e-3), (0.3, 0.05)])
def test_constant_map_is_the_scalar_kernel_bit_for_bit(rng, dtype, shape, patch, search, sigma, h):
    """The constants are made pixel by pixel as weight_constants makes them, and the arithmetic per pair is
    the scalar kernel's: no tolerance needed, float32 included."""
    value = rng.random(shape).astype(dtype)
    scalar = nlmeans_chw(value, value, sigma, h, patch, search)
    mapped = nlmeans_map_chw(value, np.full(shape[1:], sigma), np.full(shape[1:], h), patch, search)
    assert mapped.dtype == dtype
    np.testing.assert_array_equal(mapped, scalar)


def test_constant_region_of_a_map_is_the_scalar_kernel_away_from_the_change(rng):
    """Pixels whose whole window (and their partners' patches) lie in one σ region get the scalar result."""
    value = rng.random((1, 40, 60))
    smap = np.full((40, 60), 0.05)
    smap[:, 40:] = 0.2
    out = nlmeans_map_chw(value, smap, np.full((40, 60), 0.08), 3, 7)
    scalar = nlmeans_chw(value, value, 0.05, 0.08, 3, 7)
    np.testing.assert_array_equal(out[:, :, :34], scalar[:, :, :34])
    assert not np.array_equal(out[:, :, 36:40], scalar[:, :, 36:40])


def test_extreme_maps_give_finite_results(rng):
    """σ from 0 to 1e200 in one map: the constants are clamped, so no inf · 0 or inf - inf reaches a weight."""
    value = rng.random((1, 20, 20))
    smap = np.zeros((20, 20))
    smap[:, 10:] = 1e200
    for dtype in (np.float32, np.float64):
        out = nlmeans_map_chw(value.astype(dtype), smap, np.maximum(0.7 * smap, 1e-3), 3, 7)
        assert np.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1


# -------------------------------------------------------------------------------------- denoise(sigma=map)


def _smooth(n):
    y, x = np.mgrid[0:n, 0:n] / n
    return 0.5 + 0.3 * np.sin(6 * x) * np.cos(4 * y)


@pytest.mark.parametrize("channel_axis", [None, -1])
def test_denoise_with_a_map_runs_the_map_kernel_with_per_pixel_h(rng, channel_axis):
    """denoise(method="pixelwise") with a map is the reference with h_p = k σ_p, k the preset's h/σ at the
    map's RMS σ (the preset's floor below)."""
    shape = (24, 30) if channel_axis is None else (24, 30, 3)
    image = rng.random(shape)
    smap = np.full((24, 30), 10 / 255)
    smap[:, 15:] = 40 / 255
    smap[:4, :4] = 0.0  # σ = 0: h at the floor
    out = nlmeans.denoise(image, smap, method="pixelwise", patch_size=3, search_size=7,
                          channel_axis=channel_axis)
    rms = np.sqrt(np.mean(smap**2))
    channels = 1 if channel_axis is None else 3
    k = presets.preset_for(255 * rms, channels).h_over_sigma
    hmap = np.maximum(k * smap, presets.H_FLOOR)
    chw = image[None] if channel_axis is None else np.moveaxis(image, -1, 0)
    ref = reference(chw, smap, hmap, 3, 7)
    ref = ref[0] if channel_axis is None else np.moveaxis(ref, 0, -1)
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=0)


def test_denoise_with_a_map_and_a_given_h_uses_that_h_everywhere(rng):
    image = rng.random((20, 26)).astype(np.float32)
    smap = np.tile(np.linspace(0.02, 0.2, 26), (20, 1))
    out = nlmeans.denoise(image, smap, h=0.1, patch_size=5, search_size=9)  # h given: pixelwise
    ref = reference(image[None], smap, np.full(smap.shape, 0.1), 5, 9)[0]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)


def test_denoise_with_a_map_takes_integer_images_on_the_float_scale(rng):
    image = (rng.random((20, 22)) * 255).astype(np.uint8)
    smap = np.full((20, 22), 5 / 255)
    smap[10:] = 30 / 255
    out = nlmeans.denoise(image, smap, method="pixelwise", patch_size=3, search_size=5)
    as_float = nlmeans.denoise(image / 255, smap, method="pixelwise", patch_size=3, search_size=5)
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.clip(np.rint(as_float * 255), 0, 255)).max() <= 1


def test_map_beats_the_scalar_call_on_halves():
    """Halves at 10 and 40 /255: the map denoises each half for its own level, the scalar RMS σ does not."""
    clean = _smooth(96)
    smap = np.full(clean.shape, 10 / 255)
    smap[:, 48:] = 40 / 255
    noisy = clean + np.random.default_rng(3).normal(size=clean.shape) * smap
    mapped = nlmeans.denoise(noisy, smap, method="pixelwise")
    scalar = nlmeans.denoise(noisy, float(np.sqrt(np.mean(smap**2))), method="pixelwise")
    assert nlmeans.psnr(clean, mapped, data_range=1) > nlmeans.psnr(clean, scalar, data_range=1) + 0.5


def test_patchwise_map_keeps_the_per_level_route(rng):
    """Patchwise has no map kernel: a two-level map gives each half that level's scalar run."""
    image = rng.random((24, 24))
    smap = np.full((24, 24), 0.05)
    smap[:, 12:] = 0.15
    out = nlmeans.denoise(image, smap, method="patchwise", patch_size=3, search_size=5)
    lo = nlmeans.denoise(image, 0.05, method="patchwise", patch_size=3, search_size=5)
    hi = nlmeans.denoise(image, 0.15, method="patchwise", patch_size=3, search_size=5)
    np.testing.assert_allclose(out[:, :12], lo[:, :12], atol=1e-12)
    np.testing.assert_allclose(out[:, 12:], hi[:, 12:], atol=1e-12)


@pytest.mark.parametrize(
    ("sigma", "match"),
    [
        (np.full((20, 24), 0.1), r"sigma has shape \(20, 24\); allowed: a number, a map of the image's "
                                 r"height×width \(24, 20\)"),
        (np.full((24, 20, 1), 0.1), r"sigma has shape \(24, 20, 1\)"),
        (np.where(np.eye(24, 20) > 0, -0.1, 0.1), r"finite and >= 0 everywhere; 20 of its 480 values are not "
                                                  r"\(e.g. -0.1\)"),
        (np.where(np.eye(24, 20) > 0, np.nan, 0.1), r"finite and >= 0 everywhere; 20 of its 480 values"),
        (np.where(np.eye(24, 20) > 0, np.inf, 0.1), r"finite and >= 0 everywhere; 20 of its 480 values"),
    ],
)
def test_bad_maps_are_refused_with_what_is_allowed(sigma, match):
    with pytest.raises(ValueError, match=match):
        nlmeans.denoise(_smooth(24)[:, :20], sigma, method="pixelwise")


def test_map_with_return_settings_is_refused():
    image = _smooth(24)
    smap = np.full((24, 24), 0.05)
    smap[:, 12:] = 0.1
    with pytest.raises(ValueError, match="return_settings is not supported"):
        nlmeans.denoise(image, smap, method="pixelwise", return_settings=True)
