"""The fast kernel against the direct reference in tests/naive.py, on random inputs."""

import numpy as np
import pytest
from naive import nlm_pixelwise

from nlmeans._validate import to_chw as _to_chw
from nlmeans.nlm import nlmeans_chw

# (shape, patch, search, sigma, h): non-square, tiny, odd, color, patch 1, search 1, sigma 0
CASES = [
    ((20, 27), 3, 7, 0.1, 0.12),
    ((33, 17, 3), 5, 9, 0.05, 0.1),
    ((40, 41), 7, 11, 0.0, 0.2),
    ((9, 30), 1, 3, 0.1, 0.1),
    ((25, 25), 3, 1, 0.1, 0.1),
    ((5, 5), 3, 5, 0.2, 0.3),
    ((1, 12), 1, 1, 0.0, 0.1),
    ((70, 45, 2), 3, 21, 0.08, 0.06),  # more rows than one band, r > band/2
    ((48, 50), 9, 15, 0.15, 0.05),     # small h: weights far below 1
    ((70, 38, 3), 7, 21, 0.06, 0.08),  # color with passes of 4 and 3 offsets (the 3-channel loops), two bands
    # widths at and around whole vectors (16 float32, 8 float64) and a one-pixel-wide image: the vector loops
    # run over spare columns and read past row ends
    ((17, 16, 3), 3, 7, 0.1, 0.15),
    ((12, 33), 5, 9, 0.1, 0.15),
    ((14, 32, 2), 3, 11, 0.1, 0.15),
    ((12, 1), 3, 5, 0.1, 0.15),
    # gray images run in the segment layout: segments narrower than the search radius (a partner falls up to
    # two segments away), and segments longer than one restart of the running box sum (64 columns)
    ((30, 20), 3, 21, 0.1, 0.15),
    ((6, 560), 5, 9, 0.1, 0.15),
]


def _fast(image, sigma, h, patch, search, dtype, guide=None):
    axis = None if image.ndim == 2 else -1
    value = _to_chw(image, axis, dtype)
    g = value if guide is None else _to_chw(guide, None if guide.ndim == 2 else -1, dtype)
    out = nlmeans_chw(value, g, sigma, h, patch, search)
    return out[0] if axis is None else np.moveaxis(out, 0, -1)


@pytest.mark.parametrize("shape,patch,search,sigma,h", CASES)
def test_float64_matches_reference_to_1e9_relative(rng, shape, patch, search, sigma, h):
    image = rng.random(shape)
    ref = nlm_pixelwise(image, sigma, h, patch, search)
    out = _fast(image, sigma, h, patch, search, np.float64)
    assert out.dtype == np.float64
    # every pixel, border included: both pad by reflection
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=0)


@pytest.mark.parametrize("shape,patch,search,sigma,h", CASES)
def test_float32_matches_reference_to_1e4_of_range(rng, shape, patch, search, sigma, h):
    image = rng.random(shape)
    ref = nlm_pixelwise(image, sigma, h, patch, search)
    out = _fast(image, sigma, h, patch, search, np.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4 * 1.0)


def test_float32_on_a_real_image_with_large_offsets(camera):
    crop = camera[100:164, 200:290].astype(np.float64) / 255
    noisy = crop + np.random.default_rng(1).normal(0, 0.08, crop.shape)
    ref = nlm_pixelwise(noisy, 0.08, 0.04, 7, 21)
    out = _fast(noisy, 0.08, 0.04, 7, 21, np.float32)
    rng_data = noisy.max() - noisy.min()
    assert np.abs(out - ref).max() <= 1e-4 * rng_data


@pytest.mark.parametrize("shape,gshape", [((30, 26, 2), (30, 26)), ((30, 26, 2), (30, 26, 3)),
                                          ((30, 26, 2), (30, 26, 5)), ((30, 26), (30, 26))])
def test_guided_matches_reference(rng, shape, gshape):
    image = rng.random(shape)
    guide = rng.random(gshape)
    ref = nlm_pixelwise(image, 0.05, 0.15, 3, 9, guide=guide)
    np.testing.assert_allclose(_fast(image, 0.05, 0.15, 3, 9, np.float64, guide), ref, rtol=1e-9)
    np.testing.assert_allclose(_fast(image, 0.05, 0.15, 3, 9, np.float32, guide), ref, atol=1e-4)


@pytest.mark.parametrize("channels", [1, 3])
def test_spare_rows_are_checked_and_never_used(rng, channels):
    """The vector loads read up to one vector past a row's end: the kernel refuses padded arrays without one
    vector of spare rows below them, and what the spare rows hold (here NaN) never reaches a result."""
    from nlmeans._config import band_rows
    from nlmeans.kernels import weight_constants
    from nlmeans.kernels.pixelwise import _nlm_pixelwise_band
    from nlmeans.nlm import _run_banded

    f, r, H, W = 1, 2, 6, 5
    pad = f + r
    image = rng.random((channels, H, W)).astype(np.float32)
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    a, bb = weight_constants(channels * 9, 0.1, 0.15, np.float32)
    out = np.empty_like(image)
    for spare in (0, 1):  # one spare row is 11 float32, less than one vector (16)
        short = np.concatenate([padded, np.full((channels, spare, W + 2 * pad), np.nan, np.float32)], axis=1)
        with pytest.raises(ValueError, match="spare rows"):
            _run_banded(_nlm_pixelwise_band, short, short, f, r, a, bb, band_rows(r), out)
    nan_below = np.concatenate([padded, np.full((channels, 2, W + 2 * pad), np.nan, np.float32)], axis=1)
    _run_banded(_nlm_pixelwise_band, nan_below, nan_below, f, r, a, bb, band_rows(r), out)
    zeros_below = np.concatenate([padded, np.zeros((channels, 2, W + 2 * pad), np.float32)], axis=1)
    expected = np.empty_like(image)
    _run_banded(_nlm_pixelwise_band, zeros_below, zeros_below, f, r, a, bb, band_rows(r), expected)
    assert np.isfinite(expected).all()
    np.testing.assert_array_equal(out, expected)


def test_reference_is_not_trivial(rng):
    """Guard the oracle itself: it must actually smooth noise and keep a constant image constant."""
    flat = np.full((15, 15), 0.3)
    np.testing.assert_allclose(nlm_pixelwise(flat, 0.1, 0.1, 3, 5), flat, rtol=1e-12)
    noisy = 0.5 + rng.normal(0, 0.1, (20, 20))
    assert nlm_pixelwise(noisy, 0.1, 0.2, 3, 7).std() < 0.5 * noisy.std()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("patch,search", [(3, 7), (5, 11), (7, 21)])
def test_strips_aligned_to_bands_are_bit_identical(rng, dtype, patch, search, channels):
    """A full-width strip starting at a multiple of band_rows, with a halo of two bands above the rows kept,
    gives those rows exactly the values of the whole-image run (what tiling relies on)."""
    from nlmeans._config import band_rows

    B = band_rows(search // 2)
    image = rng.random((channels, 4 * B + 5, 23)).astype(dtype)
    whole = nlmeans_chw(image, image, 0.1, 0.15, patch, search)
    start = B  # strip begins at a band boundary; rows kept from start + 2B
    strip = np.ascontiguousarray(image[:, start:])
    part = nlmeans_chw(strip, strip, 0.1, 0.15, patch, search)
    np.testing.assert_array_equal(part[:, 2 * B:], whole[:, start + 2 * B:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_constants_are_exact_in_range_and_clamped_outside(dtype):
    """One function gives every kernel its constants: a = 1/(n h²), bb = 2σ²n exactly for ordinary σ and h;
    at the extremes a, bb and a·bb stay <= 1e30 (finite in float32), so no kernel meets inf·0 or inf − inf."""
    from nlmeans.kernels import WEIGHT_CAP, weight_constants

    a, bb = weight_constants(27, 0.1, 0.05, dtype)
    assert type(a) is dtype and type(bb) is dtype
    np.testing.assert_allclose([a, bb], [1 / (27 * 0.05**2), 2 * 0.1**2 * 27], rtol=4 * np.finfo(dtype).eps)
    for sigma, h in [(0.1, 1e-170), (1e300, 1.0), (1e300, 1e-300), (0.0, 1e-300), (1e-300, 1e300)]:
        a, bb = weight_constants(9, sigma, h, dtype)
        assert np.isfinite([a, bb]).all() and 0 <= a <= WEIGHT_CAP and 0 <= bb <= WEIGHT_CAP
        assert float(a) * float(bb) <= WEIGHT_CAP * (1 + 1e-6)
    a, bb = weight_constants(9, 0.1, 1e-170, float)  # tiny h: the cap on a, bb itself exact
    assert a == WEIGHT_CAP and bb == 2 * 0.1**2 * 9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("patch", [3, 5, 7, 9])
def test_weight_rows_on_half_width_vectors(rng, dtype, patch):
    """The weight rows run on half-width vectors (one AVX2 register): bit for bit the full-width vectors' weights
    (the same lane arithmetic), and ``exp(-max(box sum - bb, 0) a)`` of the row's box sums (float32 weights
    clamped at 2**-64)."""
    from numba import njit

    from nlmeans.kernels.pixelwise import (
        _U,
        _box_sum,
        _lanes,
        _vstore,
        _vweight,
        _vzeros,
        _weight_consts,
        _weights_row,
        _weights_row2,
    )

    @njit
    def full_width(cs, k, P, aw, cw, n, wt):
        L = _U(_lanes(cs))
        for x in range(_U(0), _U(n), L):
            _vstore(wt, (_U(k), x), _vweight(_box_sum(cs, _U(k), x, P, _vzeros(cs)), aw, cw))

    n = 45  # not a whole number of vectors at either width
    lanes = 64 // np.dtype(dtype).itemsize
    cs = np.zeros((4, n + patch - 1 + 2 * lanes), dtype)
    cs[:, : n + patch - 1] = rng.random((4, n + patch - 1)) / patch
    cs[:, ::23] = 1.0  # box sums far above bb: float32 weights at the 2**-64 clamp
    a, bb = dtype(60.0), dtype(0.4)
    aw, cw = _weight_consts(a, bb)
    half = np.full_like(cs, np.nan)
    _weights_row2(cs, 0, patch, aw, cw, n, half)
    _weights_row(cs, 2, patch, aw, cw, n, half)
    _weights_row(cs, 3, patch, aw, cw, n, half)
    full = np.full_like(cs, np.nan)
    for k in range(4):
        full_width(cs, k, patch, aw, cw, n, full)
    np.testing.assert_array_equal(half[:, :n], full[:, :n])
    box = sum(cs[:, j: j + n].astype(np.float64) for j in range(patch))
    floor = 2.0**-64 if dtype == np.float32 else 0.0
    expected = np.maximum(np.exp(-np.maximum(box - float(bb), 0) * float(a)), floor)
    # both branches of the max(·, 0), and float32's clamp
    assert (expected == 1).any() and ((expected < 1) & (expected > 1e-3)).any()
    assert dtype == np.float64 or (expected == 2.0**-64).any()
    # float32: the argument's rounding (a few ulps of z <= 44) on top of the exponential's 3e-6
    np.testing.assert_allclose(half[:, :n], expected, rtol=1e-12 if dtype == np.float64 else 3e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_segment_weights_restart_the_running_box_sum(rng, dtype):
    """In the segment layout the horizontal box sum runs along the columns and restarts from the direct sum at
    every block the kernel gives it: the weights match ``exp(-max(S - bb, 0) a)`` of the direct sums, also in
    a block that follows a block of huge sums (whose rounding a running sum would carry over)."""
    from nlmeans.kernels.pixelwise import _SEG, _SEG_RESTART, _segment_weights, _weight_consts

    P, n = 7, 3 * _SEG_RESTART + 5
    sums = np.zeros((4, (n + P + 2) * _SEG), dtype)
    cols = rng.random((n + P - 1, _SEG)) / P
    cols[:_SEG_RESTART] *= 1e4  # the first block's columns: box sums of thousands; the rest around bb
    sums[0, : (n + P - 1) * _SEG] = cols.ravel()
    a, bb = dtype(60.0), dtype(0.4)
    aw, cw = _weight_consts(a, bb)

    def weights(block):
        wt = np.full_like(sums, np.nan)
        for j0 in range(0, n, block):
            _segment_weights(sums, 0, P, j0, min(j0 + block, n), 0, aw, cw, wt, None, None, 0, 0, 0, 0, wt)
        return wt[0, : n * _SEG].reshape(n, _SEG)

    box = sum(cols[j: j + n].astype(np.float64) for j in range(P))
    floor = 2.0**-64 if dtype == np.float32 else 0.0
    expected = np.maximum(np.exp(-np.maximum(box - float(bb), 0) * float(a)), floor)
    after = slice(_SEG_RESTART, n)
    assert box[: _SEG_RESTART - P].min() > 100
    assert ((expected[after] < 1) & (expected[after] > 1e-3)).any() and (expected[after] == 1).any()
    rtol = 1e-12 if dtype == np.float64 else 3e-5
    np.testing.assert_allclose(weights(_SEG_RESTART)[after], expected[after], rtol=rtol)
    if dtype == np.float32:  # one running sum over the whole row carries the first block's rounding on
        assert not np.allclose(weights(n)[after], expected[after], rtol=rtol, atol=0)


def test_segment_kernel_refuses_arrays_too_small(rng):
    """The segment layout's vector loads run up to one column past the segments' margins: the kernel checks
    that its arrays have them."""
    from nlmeans.kernels.pixelwise import _nlm_segments_band, _segment_columns, _segment_geometry

    f, r, H, W = 1, 3, 10, 30
    Ws = _segment_geometry(W, r)
    good = np.zeros((1, H + 2 * (r + f), _segment_columns(Ws, r + f)), np.float32)
    bsum = np.zeros((2, 1, 64 + r, _segment_columns(Ws, r)), np.float32)
    bw = np.zeros((2, 64 + r, _segment_columns(Ws, r)), np.float32)
    a, bb = np.float32(1.0), np.float32(0.1)
    _nlm_segments_band(good, good, f, r, a, bb, H, Ws, 64, 1, bsum, bw)
    for short in (good[:, :, :-1], good[:, :-1]):
        short = np.ascontiguousarray(short)
        with pytest.raises(ValueError, match="too small"):
            _nlm_segments_band(short, short, f, r, a, bb, H, Ws, 64, 1, bsum, bw)
    with pytest.raises(ValueError, match="too small"):
        _nlm_segments_band(good, good, f, r, a, bb, H, Ws, 64, 1, bsum[:, :, :, :-1].copy(), bw)
