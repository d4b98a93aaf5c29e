"""Pieces of the σ estimator (nlmeans.noise_level) against direct references."""

import math
import sys

import numpy as np
import pytest

from nlmeans.noise_level import _box_sum, _erfc, _ndtr, _one_blas_thread, _openblas_local_setters


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
