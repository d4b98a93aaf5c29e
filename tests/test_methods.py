"""The registry of denoisers: names, conventions, quality at σ = 20, and the anisotropic kernel vs numpy."""

import numpy as np
import pytest
from conftest import DATA
from naive import perona_malik

import nlmeans
from nlmeans.eval.experiment import center_crop
from nlmeans.eval.registry import REGISTRY, _anisotropic, _build_registry, available_methods, get_method
from nlmeans.io import read_image
from nlmeans.presets import METHODS

FIXED = ["gaussian", "anisotropic", "bilateral", "tv", "wiener", "wavelet", "nlmeans", "bm3d",
         "skimage_nlm", "opencv_nlm", "nlmeans_twostage"]
BASELINES = [name for name in REGISTRY if name != "bm3d"]  # bm3d is slow: its own test below


def _need(name):
    m = REGISTRY[name]
    if m.requires is not None:
        pytest.importorskip(m.requires)
    return m


@pytest.fixture(scope="module")
def crops():
    """96×96 central crops of every data/ image (gray and color)."""
    return {p.stem: center_crop(read_image(p).data, 96) for p in sorted(DATA.glob("*.png"))}


def test_registry_has_the_fixed_names_and_documents_every_rule():
    for name in FIXED:
        assert name in REGISTRY
    for name, m in REGISTRY.items():
        assert m.name == name and m.rule_doc and m.summary
        base = m.params_for(20 / 255)
        assert set(m.grid) <= set(base), name  # the grid only varies parameters the rule sets
        grid = m.grid_for(20 / 255)
        assert base in grid and len(grid) <= 20


def test_extra_denoise_methods_are_registered_automatically():
    for m in METHODS[1:]:  # the default estimator is the "nlmeans" row itself (listed once, alias kept)
        assert f"nlmeans_{m}" in REGISTRY or get_method(f"nlmeans_{m}") is REGISTRY["nlmeans"]
    reg = _build_registry(("pixelwise", "patchwise", "nlbayes"))
    assert "nlmeans_patchwise" in reg and "nlmeans_nlbayes" in reg and "nlmeans_pixelwise" not in reg
    assert reg["nlmeans_patchwise"].jit and reg["nlmeans_patchwise"].core.__doc__.endswith("'patchwise')")


def test_available_methods_and_unknown_names():
    assert set(available_methods()) <= set(REGISTRY)
    with pytest.raises(ValueError, match="'magic' is not known; allowed: gaussian"):
        get_method("magic")
    with pytest.raises(ValueError, match="has no parameter 'hh'; allowed"):
        REGISTRY["nlmeans"](np.zeros((16, 16)), 0.1, hh=3)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        REGISTRY["tv"](np.zeros((16, 16)), -0.1)


def test_grid_integers_are_values_and_floats_are_factors():
    grid = REGISTRY["wiener"].grid_for(30 / 255)
    assert sorted({g["size"] for g in grid}) == [3, 5, 7]
    base = REGISTRY["wiener"].params_for(30 / 255)["noise_scale"]
    assert sorted({round(g["noise_scale"] / base, 6) for g in grid}) == [0.75, 1.0, 1.3]


@pytest.mark.parametrize("name", BASELINES)
def test_conventions_dtype_shape_and_channel_axis(name, rng):
    m = _need(name)
    gray = rng.random((40, 36))
    for arr in (gray, gray.astype(np.float32), (gray * 255).astype(np.uint8), (gray * 65535).astype(np.uint16)):
        out = m(arr, 0.08)
        assert out.dtype == arr.dtype and out.shape == arr.shape
    color = rng.random((40, 36, 3)).astype(np.float32)
    last = m(color, 0.08, channel_axis=-1)
    first = m(np.ascontiguousarray(np.moveaxis(color, -1, 0)), 0.08, channel_axis=0)
    assert last.shape == color.shape and last.dtype == np.float32
    np.testing.assert_allclose(np.moveaxis(first, 0, -1), last, atol=1e-5)
    with pytest.raises(ValueError, match="channel_axis"):
        m(color, 0.08)


@pytest.mark.parametrize("name", BASELINES)
def test_every_method_beats_the_noisy_input_at_sigma_20_on_every_data_image(name, crops):
    m = _need(name)
    for image, clean in crops.items():
        axis = None if clean.ndim == 2 else -1
        noisy = nlmeans.add_noise(clean, 20 / 255, seed=0).astype(np.float32)
        out = m(noisy, 20 / 255, channel_axis=axis)
        gain = nlmeans.psnr(clean, out) - nlmeans.psnr(clean, noisy)
        assert gain > 1.0, (name, image, gain)


@pytest.mark.slow
def test_bm3d_beats_the_noisy_input_and_keeps_conventions(crops):
    m = _need("bm3d")
    for image in ("camera", "astronaut"):
        clean = center_crop(crops[image], 64)
        axis = None if clean.ndim == 2 else -1
        noisy = nlmeans.add_noise(clean, 20 / 255, seed=0).astype(np.float32)
        out = m(noisy, 20 / 255, channel_axis=axis)
        assert out.dtype == np.float32 and out.shape == clean.shape
        assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, noisy) + 3


# ---- the Perona-Malik kernel against its numpy twin -----------------------------------------------------------

PM_CASES = [((20, 27), 5, 0.1, 0.25), ((33, 17, 3), 12, 0.05, 0.2), ((1, 9), 3, 0.2, 0.25),
            ((64, 50), 30, 0.08, 0.25), ((16, 16, 2), 0, 0.1, 0.25), ((7, 40), 8, 1.0, 0.1)]


def _pm(image, n_iter, kappa, dt, dtype):
    return _anisotropic(image.astype(dtype), 0.0, 1.0, kappa=kappa, n_iter=n_iter, dt=dt)


@pytest.mark.parametrize("shape,n_iter,kappa,dt", PM_CASES)
def test_perona_malik_float64_matches_numpy_to_1e9_relative(rng, shape, n_iter, kappa, dt):
    image = rng.random(shape)
    out = _pm(image, n_iter, kappa, dt, np.float64)
    assert out.dtype == np.float64 and out.shape == shape
    np.testing.assert_allclose(out, perona_malik(image, n_iter, kappa, dt), rtol=1e-9, atol=0)


@pytest.mark.parametrize("shape,n_iter,kappa,dt", PM_CASES)
def test_perona_malik_float32_matches_numpy_to_1e4_of_range(rng, shape, n_iter, kappa, dt):
    image = rng.random(shape)
    out = _pm(image, n_iter, kappa, dt, np.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, perona_malik(image, n_iter, kappa, dt), rtol=0, atol=1e-4)


def test_perona_malik_properties(rng):
    """Zero flux conserves the mean; a constant image is a fixed point; a step edge survives small κ."""
    image = rng.random((30, 25))
    out = _pm(image, 20, 0.1, 0.25, np.float64)
    assert abs(out.mean() - image.mean()) < 1e-12 and out.std() < image.std()
    flat = np.full((12, 12, 3), 0.4)
    np.testing.assert_array_equal(_pm(flat, 10, 0.1, 0.25, np.float64), flat)
    step = np.zeros((20, 20))
    step[:, 10:] = 1.0
    np.testing.assert_allclose(_pm(step, 50, 0.05, 0.25, np.float64), step, atol=1e-12)
    # the reference itself smooths noise (guards the oracle)
    assert perona_malik(0.5 + 0.1 * rng.standard_normal((20, 20)), 10, 0.5, 0.25).std() < 0.05


def test_anisotropic_rejects_unstable_steps():
    with pytest.raises(ValueError, match="dt=0.3"):
        REGISTRY["anisotropic"](np.zeros((8, 8)), 0.1, dt=0.3)


# ---- other methods' own properties ------------------------------------------------------------------------------


def test_bilateral_kernel_is_symmetric_and_keeps_a_ramp():
    impulse = np.zeros((21, 21))
    impulse[10, 10] = 1.0
    out = REGISTRY["bilateral"](impulse, 0.1, sigma_color=100.0, sigma_spatial=1.0)
    np.testing.assert_allclose(out, out[::-1], atol=1e-15)
    np.testing.assert_allclose(out, out.T, atol=1e-15)
    assert out.argmax() == 10 * 21 + 10
    ramp = np.tile(np.linspace(0, 1, 40), (30, 1))
    out = REGISTRY["bilateral"](ramp, 0.1, sigma_color=100.0, sigma_spatial=1.0)
    np.testing.assert_allclose(out[:, 5:-5], ramp[:, 5:-5], atol=1e-12)


def test_wiener_is_the_identity_without_noise_and_flattens_pure_noise(rng):
    image = rng.random((30, 30))
    np.testing.assert_allclose(REGISTRY["wiener"](image, 0.0), image, atol=1e-12)
    noise = 0.5 + 0.1 * rng.standard_normal((64, 64))
    assert REGISTRY["wiener"](noise, 0.1).std() < 0.5 * noise.std()


def test_twostage_is_nlmeans_guided_by_its_first_pass(rng):
    noisy = rng.random((40, 40)).astype(np.float32)
    m = REGISTRY["nlmeans_twostage"]
    p = m.params_for(0.1)
    first = nlmeans.denoise(noisy, 0.1, h=p["h"], patch_size=p["patch_size"], search_size=p["search_size"])
    expect = nlmeans.denoise(noisy, 0.1, h=p["h2"], patch_size=p["patch_size"], search_size=p["search_size"],
                             guide=first, guide_sigma=0.0)
    np.testing.assert_array_equal(m(noisy, 0.1), expect)


def test_nlmeans_entry_is_denoise_with_its_defaults(rng):
    noisy = rng.random((40, 40, 3)).astype(np.float32)
    np.testing.assert_array_equal(REGISTRY["nlmeans"](noisy, 0.1, channel_axis=-1),
                                  nlmeans.denoise(noisy, 0.1, channel_axis=-1))


def test_opencv_entry_quantises_to_uint8(rng):
    cv2 = pytest.importorskip("cv2")
    noisy = rng.random((48, 48))
    u8 = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
    expect = cv2.fastNlMeansDenoising(u8, None, 20.0, 7, 21) / 255.0
    np.testing.assert_allclose(REGISTRY["opencv_nlm"](noisy, 20 / 255), expect, atol=1e-12)


def test_nlmeans_auto_ignores_sigma_and_is_denoise_without_sigma(rng):
    m = REGISTRY["nlmeans_auto"]
    assert m.params_for(20 / 255) == {} and "ignored" in m.summary
    gray = (0.5 + 0.08 * rng.standard_normal((40, 36))).astype(np.float32)
    np.testing.assert_array_equal(m(gray, 0.01), m(gray, 0.3))
    np.testing.assert_array_equal(m(gray, 0.1), nlmeans.denoise(gray))
    color = rng.random((40, 36, 3)).astype(np.float32)
    np.testing.assert_array_equal(m(color, 0.05, channel_axis=-1), m(color, 0.2, channel_axis=-1))
    np.testing.assert_array_equal(m(color, 0.05, channel_axis=-1), nlmeans.denoise(color, channel_axis=-1))
    u8 = (gray.clip(0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(m(u8, 20 / 255), nlmeans.denoise(u8))
    # and it differs from the true-σ entry when the σ given is far from the estimate
    assert not np.array_equal(m(gray, 0.3), REGISTRY["nlmeans"](gray, 0.3))
