"""Pieces of the σ estimator (nlmeans.noise_level) against direct references."""

import math
import sys

import numpy as np
import pytest

import nlmeans.noise_level as noise_level
from nlmeans.noise_level import (
    _box_sum,
    _erfc,
    _ndtr,
    _one_blas_thread,
    _openblas_local_setters,
    _unpushed_distance,
    estimate_sigma,
)


@pytest.mark.parametrize("shape, ph, pw", [((9, 11), 3, 4), ((7, 7), 7, 7), ((20, 5), 6, 1), ((4, 30), 1, 7)])
def test_box_sum_matches_window_loop(shape, ph, pw):
    rng = np.random.default_rng(0)
    a = rng.random(shape)
    ref = np.array([[a[y : y + ph, x : x + pw].sum() for x in range(shape[1] - pw + 1)]
                    for y in range(shape[0] - ph + 1)])
    np.testing.assert_allclose(_box_sum(a, ph, pw), ref, rtol=1e-13)
    mask = rng.random(shape) < 0.05
    any_ref = np.array([[mask[y : y + ph, x : x + pw].any() for x in range(shape[1] - pw + 1)]
                        for y in range(shape[0] - ph + 1)])
    assert np.array_equal(_box_sum(mask, ph, pw, add=np.logical_or), any_ref)
    assert not np.shares_memory(_box_sum(a, 1, 1), a)  # a copy even for 1 × 1 windows: callers add into it


def _version(text):
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def test_one_blas_thread_same_products_and_restores():
    rng = np.random.default_rng(1)
    p = rng.random((5000, 49))
    setters = _openblas_local_setters()
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if sys.platform == "linux" and "openblas" in blas["name"] and _version(blas["version"]) >= (0, 3, 27):
        assert setters, "numpy's OpenBLAS was not found"

    def settings():  # set and restore: OpenBLAS's setter returns the previous value
        values = [setter(7) for setter in setters]
        for setter, value in zip(setters, values, strict=True):
            setter(value)
        return values

    before = settings()
    with _one_blas_thread():
        inside = settings()
        gram = p.T @ p
    assert inside == [1] * len(setters) and settings() == before
    np.testing.assert_allclose(gram, p.T @ p, rtol=1e-12)


def test_erfc_matches_math_erfc():
    xs = np.concatenate([np.linspace(-6, 26, 20001), np.geomspace(1e-300, 1, 300), -np.geomspace(1e-300, 1, 300),
                         [0.0, 0.46875, 4.0, -4.0, np.nextafter(4.0, 5)]])
    ref = np.array([math.erfc(v) for v in xs])
    normal = ref > 1e-300  # below, erfc is a subnormal float with fewer significant bits
    np.testing.assert_allclose(_erfc(xs)[normal], ref[normal], rtol=2e-15, atol=0)
    assert np.all(_erfc(np.array([27.5, 40.0])) < 1e-300)


def test_ndtr_matches_scipy():
    from scipy.special import ndtr

    xs = np.linspace(-6, 41, 5001)  # the range the truncation correction uses
    np.testing.assert_allclose(_ndtr(xs), ndtr(xs), rtol=2e-14, atol=0)


def _unpushed_by_bisection(observed):
    """The slow reference of ``_unpushed_distance``: 40 bisection steps of t + φ(t)/Φ(t) on [-6, observed + 1]
    (the estimator's former code), each value on its own interval."""
    observed = np.asarray(observed, dtype=np.float64)
    lo = np.full(observed.shape, -6.0)
    hi = np.maximum(observed, 0.0) + 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        pushed = mid + np.exp(-0.5 * mid * mid) / (math.sqrt(2 * math.pi) * _ndtr(mid))
        lo, hi = np.where(pushed < observed, mid, lo), np.where(pushed < observed, hi, mid)
    return 0.5 * (lo + hi)


def test_unpushed_distance_matches_bisection():
    rng = np.random.default_rng(2)
    g_min = -6.0 + math.exp(-18.0) / (math.sqrt(2 * math.pi) * 0.5 * math.erfc(6.0 / math.sqrt(2.0)))
    observed = np.concatenate([np.linspace(0, 40, 40001), np.geomspace(1e-9, 40, 20000), rng.uniform(0, 12, 20000),
                               [0.0, g_min, np.nextafter(g_min, 0), np.nextafter(g_min, 1), 10.0, 40.0]])
    got = _unpushed_distance(observed)
    np.testing.assert_allclose(got, _unpushed_by_bisection(observed), rtol=0, atol=1e-9)
    assert got.shape == observed.shape and np.all(np.diff(_unpushed_distance(np.sort(observed))) >= 0)


@pytest.mark.parametrize("dtype", ["uint8", "float64"])
@pytest.mark.parametrize("shape, sigma_255",
                         [((96, 80), 30), ((128, 128, 3), 12), ((64, 200), 60), ((200, 64, 2), 5)])
def test_sigma_of_clipped_images_as_with_bisection(monkeypatch, shape, sigma_255, dtype):
    """The table moves a clipped image's σ estimate by < 1e-6 relative (on 300 standard-set inputs: 8e-11)."""
    rng = np.random.default_rng(sum(shape))
    ramp = np.linspace(-0.2, 1.2, shape[1])[None, :] + 0.1 * np.sin(np.arange(shape[0]) / 5)[:, None]
    clean = np.broadcast_to(ramp[..., None] if len(shape) == 3 else ramp, shape)
    noisy = np.clip(clean + rng.normal(0, sigma_255 / 255, shape), 0, 1)  # clipped at both ends
    noisy = np.round(noisy * 255).astype(np.uint8) if dtype == "uint8" else noisy
    axis = -1 if len(shape) == 3 else None
    got = estimate_sigma(noisy, channel_axis=axis)
    calls = []

    def reference(observed):
        calls.append(observed.size)
        return _unpushed_by_bisection(observed)

    monkeypatch.setattr(noise_level, "_unpushed_distance", reference)
    ref = estimate_sigma(noisy, channel_axis=axis)
    assert calls  # the clipping correction ran
    assert got == pytest.approx(ref, rel=1e-6)
