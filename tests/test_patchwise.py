"""Patchwise NL-means and the Gaussian-weighted patch distance against tests/naive.py, and through the API."""

import numpy as np
import pytest
from naive import nlm_general, nlm_pixelwise

import nlmeans
from nlmeans._validate import to_chw as _to_chw
from nlmeans.nlm import nlmeans_offsets_chw

# (shape, patch, search, sigma, h, patch_sigma): non-square, color, tiny, patch 1, search 1, several bands
CASES = [
    ((20, 27), 3, 7, 0.1, 0.12, None),
    ((17, 23, 3), 5, 9, 0.05, 0.1, None),
    ((17, 23, 3), 5, 9, 0.05, 0.1, 1.2),
    ((40, 33), 3, 5, 0.05, 0.1, 0.8),
    ((70, 12), 5, 3, 0.05, 0.1, None),   # more rows than one band
    ((9, 11, 2), 1, 5, 0.1, 0.1, None),
    ((12, 14), 3, 1, 0.1, 0.1, 2.0),
    ((6, 7), 5, 5, 0.0, 0.2, None),
]


def _fast(image, sigma, h, patch, search, dtype, patchwise, patch_sigma, guide=None):
    axis = None if image.ndim == 2 else -1
    v = _to_chw(image, axis, dtype)
    g = v if guide is None else _to_chw(guide, None if guide.ndim == 2 else -1, dtype)
    out = nlmeans_offsets_chw(v, g, sigma, h, patch, search, patchwise=patchwise, patch_sigma=patch_sigma)
    return out[0] if axis is None else np.moveaxis(out, 0, -1)


@pytest.mark.parametrize("patchwise", [False, True])
@pytest.mark.parametrize("shape,patch,search,sigma,h,patch_sigma", CASES)
def test_matches_reference(rng, patchwise, shape, patch, search, sigma, h, patch_sigma):
    image = rng.random(shape)
    ref = nlm_general(image, sigma, h, patch, search, patchwise=patchwise, patch_sigma=patch_sigma)
    out64 = _fast(image, sigma, h, patch, search, np.float64, patchwise, patch_sigma)
    np.testing.assert_allclose(out64, ref, rtol=1e-9, atol=0)
    out32 = _fast(image, sigma, h, patch, search, np.float32, patchwise, patch_sigma)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ref, rtol=0, atol=1e-4)


def test_guided_patchwise_matches_reference(rng):
    image, guide = rng.random((22, 19, 2)), rng.random((22, 19, 3))
    ref = nlm_general(image, 0.05, 0.15, 3, 7, guide=guide, patchwise=True, patch_sigma=1.0)
    out = _fast(image, 0.05, 0.15, 3, 7, np.float64, True, 1.0, guide=guide)
    np.testing.assert_allclose(out, ref, rtol=1e-9)


def test_references_agree_on_flat_pixelwise(rng):
    """The general reference reduces to the original pixelwise one (guards the oracle)."""
    image = rng.random((15, 16))
    np.testing.assert_allclose(nlm_general(image, 0.1, 0.1, 3, 5), nlm_pixelwise(image, 0.1, 0.1, 3, 5),
                               rtol=1e-12)


def test_pixelwise_flat_route_is_unchanged(rng):
    """method='pixelwise' with the flat distance still runs the symmetric kernel, bit for bit."""
    from nlmeans.nlm import nlmeans_chw

    image = rng.random((30, 31)).astype(np.float32)
    out = nlmeans.denoise(image, 0.1, h=0.08, patch_size=3, search_size=7, method="pixelwise")
    v = image[None].copy()
    np.testing.assert_array_equal(out, nlmeans_chw(v, v, 0.1, 0.08, 3, 7)[0])


def test_patchwise_denoises_better_than_pixelwise(camera):
    """Measured on this 128² crop at σ = 20: pixelwise ~29.0 dB, patchwise ~29.5 dB."""
    crop = camera[100:228, 200:328]
    noisy = nlmeans.add_noise(crop, 20 / 255, seed=0).astype(np.float32)
    pix = nlmeans.psnr(crop, nlmeans.denoise(noisy, 20 / 255, method="pixelwise"))
    pw = nlmeans.psnr(crop, nlmeans.denoise(noisy, 20 / 255, method="patchwise"))
    assert pw > pix


def test_settings_record_the_options(rng):
    image = rng.random((20, 20))
    _, used = nlmeans.denoise(image, 0.1, method="patchwise", patch_weights="gaussian", patch_size=5,
                              return_settings=True)
    assert (used.method, used.patch_weights, used.patch_sigma) == ("patchwise", "gaussian", 2.5)
    _, used = nlmeans.denoise(image, 0.1, patch_weights="gaussian", patch_sigma=1.5, return_settings=True)
    assert used.patch_sigma == 1.5


@pytest.mark.parametrize("kwargs,word", [
    (dict(patch_weights="box"), "patch_weights"),
    (dict(patch_weights="gaussian", patch_sigma=0), "patch_sigma"),
    (dict(patch_sigma=1.0), "patch_sigma"),
    (dict(method="bm3d"), "method"),
])
def test_bad_options(kwargs, word):
    with pytest.raises(ValueError, match=word):
        nlmeans.denoise(np.zeros((20, 20)), 0.1, **kwargs)
