"""NL-Bayes: each stage of the kernel against the direct reference in tests/naive.py, and its behaviour.

Test images are quantised to multiples of 1/16, so patch distances are exact sums in both float32 and float64
and ties (reflect padding makes mirrored patches tie exactly) are broken the same way by the kernel and by
the reference.
"""

import numpy as np
import pytest
from naive import nlbayes_stage

import nlmeans
from nlmeans import _config
from nlmeans.nlbayes import _nlbayes_pass, nlbayes_chw

# (shape (C, H, W), patch, search, n_similar, step, gamma)
CASES = [
    ((1, 24, 20), 3, 7, 24, 2, 0.0),
    ((2, 30, 17), 3, 5, 20, 3, 1.05),
    ((1, 40, 33), 3, 9, 30, 3, 0.5),
    ((1, 70, 26), 3, 7, 25, 3, 1.05),  # more than one row band: bands of max(32, 2 (r + f)) rows
    ((1, 21, 23), 5, 9, 60, 4, 0.0),
    ((1, 30, 28), 7, 9, 60, 4, 0.0),   # patch 7 (groups larger than the 49 pixels: a regular covariance)
    ((1, 36, 40), 5, 17, 40, 3, 1.05),  # 17 candidates a row: rounded up to 32 lanes where the padding allows
]


def _kernel_stage(image, basic, stage, sigma, patch, search, n_sim, beta, gamma, step, dtype):
    f, r = patch // 2, search // 2
    widths = ((0, 0), (r + f, r + f), (r + f, r + f))
    vp = np.pad(image.astype(dtype), widths, mode="reflect")
    bp = vp if basic is None else np.pad(basic.astype(dtype), widths, mode="reflect")
    out = np.empty(image.shape, dtype=dtype)
    t = dtype
    _nlbayes_pass(vp, bp, stage, f, r, n_sim, step, t(sigma * sigma), t(beta), t(gamma), _config.BAND_ROWS, out)
    return out


def _quantised(rng, shape):
    return rng.integers(0, 16, shape) / 16.0


@pytest.mark.parametrize("stage", [1, 2])
@pytest.mark.parametrize("shape,patch,search,n_sim,step,gamma", CASES)
def test_stage_matches_reference(rng, stage, shape, patch, search, n_sim, step, gamma):
    image = _quantised(rng, shape)
    basic = _quantised(rng, shape) if stage == 2 else None
    g = gamma if stage == 1 else gamma / 20  # stage 2 tests the basic group's variance, near 0 if flat
    ref = nlbayes_stage(image, basic, stage, 0.1, patch, search, n_sim, 1.0, g, step, _config.BAND_ROWS)
    out64 = _kernel_stage(image, basic, stage, 0.1, patch, search, n_sim, 1.0, g, step, np.float64)
    np.testing.assert_allclose(out64, ref, rtol=1e-9, atol=1e-12)
    out32 = _kernel_stage(image, basic, stage, 0.1, patch, search, n_sim, 1.0, g, step, np.float32)
    assert np.abs(out32 - ref).max() <= 1e-4 * (image.max() - image.min())


def test_homogeneous_groups_take_the_mean(rng):
    """With gamma large every group is 'flat': each estimate is a mean of noisy pixels, within their range."""
    image = _quantised(rng, (1, 20, 20))
    out = _kernel_stage(image, None, 1, 0.2, 3, 5, 10, 1.0, 1e6, 2, np.float64)
    ref = nlbayes_stage(image, None, 1, 0.2, 3, 5, 10, 1.0, 1e6, 2, _config.BAND_ROWS)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    assert out.std() < 0.5 * image.std()


def test_constant_image_stays_constant():
    image = np.full((3, 30, 30), 0.4)
    out = nlbayes_chw(image, 0.05, patch_size=5, search_size=9, n_similar=(30, 30), beta=(1.0, 1.0),
                      gamma=(1.05, 0.02), step=3)
    np.testing.assert_allclose(out, image, atol=1e-12)


def test_gray_and_color_api(camera, astronaut):
    noisy = nlmeans.add_noise(camera[200:296, 200:296], 20 / 255, seed=0).astype(np.float32)
    out = nlmeans.denoise(noisy, 20 / 255, method="nlbayes")
    assert out.dtype == np.float32 and out.shape == noisy.shape
    crop = astronaut[100:180, 150:230]
    noisy_c = nlmeans.add_noise(crop, 20 / 255, seed=0).astype(np.float32)
    out_c = nlmeans.denoise(noisy_c, 20 / 255, method="nlbayes", channel_axis=-1)
    assert out_c.shape == crop.shape
    # measured: gray 96² crop 22.1 -> ~30 dB, color ~31 dB; assert a 6 dB gain and beating pixelwise NL-means
    for clean, n, o, ax in ((camera[200:296, 200:296], noisy, out, None), (crop, noisy_c, out_c, -1)):
        assert nlmeans.psnr(clean, o) > nlmeans.psnr(clean, n) + 6
        pixelwise = nlmeans.denoise(n, 20 / 255, channel_axis=ax, method="pixelwise")
        assert nlmeans.psnr(clean, o) > nlmeans.psnr(clean, pixelwise)


def test_uint8_round_trip_and_settings(camera):

    noisy = nlmeans.add_noise(camera[:64, :64], 10 / 255, seed=1)
    u8 = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
    out, used = nlmeans.denoise(u8, 10 / 255, method="nlbayes", return_settings=True)
    assert out.dtype == np.uint8 and used.method == "nlbayes" and used.patch_size == 5


@pytest.mark.parametrize("kwargs,word", [
    (dict(h=0.1), "h"), (dict(guide=np.zeros((30, 30))), "guide"),
    (dict(patch_weights="gaussian"), "patch_weights"),
])
def test_unused_options_are_refused(kwargs, word):
    with pytest.raises(ValueError, match=word):
        nlmeans.denoise(np.zeros((30, 30)), 0.1, method="nlbayes", **kwargs)


def test_default_method_is_nlbayes_unless_an_nlmeans_option_is_given(rng):
    from nlmeans.presets import DEFAULT_METHOD

    image = rng.random((40, 40)).astype(np.float32)
    assert DEFAULT_METHOD == "nlbayes"
    assert _method_used(image) == "nlbayes"
    assert _method_used(image, h=0.05) == "pixelwise"
    assert _method_used(image, guide=image) == "pixelwise"
    assert _method_used(image, patch_weights="gaussian") == "pixelwise"


def _method_used(image, **kwargs):
    return nlmeans.denoise(image, 0.1, **kwargs, return_settings=True)[1].method


@pytest.mark.parametrize("shape,axis", [((1, 12), None), ((3, 3), None), ((2, 7, 3), -1), ((9, 5), None)])
def test_tiny_images_are_covered(rng, shape, axis):
    """Presets shrink to fit; the reference grid is never wider than a patch, so every pixel is estimated."""
    noisy = 0.5 + rng.normal(0, 0.1, shape)
    out = nlmeans.denoise(noisy, 0.1, method="nlbayes", channel_axis=axis)
    assert out.shape == noisy.shape and np.isfinite(out).all()


def test_sigma_zero_is_the_identity(rng):
    image = rng.random((3, 20, 20))
    out = nlbayes_chw(image, 0.0, patch_size=5, search_size=9, n_similar=(30, 30), beta=(1.0, 1.0),
                      gamma=(1.05, 0.02), step=3)
    np.testing.assert_array_equal(out, image)


def test_per_stage_patch_size_and_step_are_the_two_stages_in_turn(rng):
    """``patch_size``/``step`` pairs: stage 1 with the first value, stage 2 (on its result) with the second."""
    image = _quantised(rng, (1, 30, 28))
    kw = dict(search_size=9, n_similar=(30, 20), beta=(1.0, 1.2), gamma=(1.05, 0.02))
    out = nlbayes_chw(image, 0.1, patch_size=(5, 3), step=(3, 2), **kw)
    basic = _kernel_stage(image, None, 1, 0.1, 5, 9, 30, 1.0, 1.05, 3, np.float64)
    final = _kernel_stage(image, basic, 2, 0.1, 3, 9, 20, 1.2, 0.02, 2, np.float64)
    np.testing.assert_allclose(out, final, rtol=1e-12, atol=1e-14)
    same = nlbayes_chw(image, 0.1, patch_size=(5, 5), step=(3, 3), **kw)
    np.testing.assert_array_equal(same, nlbayes_chw(image, 0.1, patch_size=5, step=3, **kw))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_singular_group_model_stays_finite_and_close(dtype):
    """A noise-free periodic image: groups of a few repeated patches have a singular stage-1 covariance. The
    kernel must not amplify rounding errors (it gave NaN in float32 before the pivot check); it falls back to
    the regular Wiener form, which keeps a clean image nearly unchanged."""
    tile = np.random.default_rng(0).random((1, 8, 8))
    image = np.tile(tile, (1, 6, 6)).astype(dtype)
    out = nlbayes_chw(image, 0.02, patch_size=5, search_size=(21, 21), n_similar=(60, 30), beta=(1.0, 1.0),
                      gamma=(1.05, 0.02), step=3)
    assert np.isfinite(out).all()
    assert np.abs(out - image).max() < 0.02


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nth_smallest_nonneg_is_numpy_partition(rng, dtype):
    """The group threshold's selection against np.partition: values with many ties, zeros, tiny and huge
    values, every k of short arrays and several k of long ones (float32: the bracketed bit search)."""
    from numba import njit

    from nlmeans.kernels.nlbayes import _nth_smallest_nonneg

    @njit
    def nth(a, n, k, work):
        return _nth_smallest_nonneg(a, n, k, work)

    for n in (1, 2, 3, 8, 63, 64, 65, 200, 960):
        for kind in ("uniform", "ties", "spread"):
            if kind == "uniform":
                a = rng.random(n)
            elif kind == "ties":
                a = rng.integers(0, 4, n) / 4.0
            else:
                a = 10.0 ** rng.uniform(-30, 30, n) * (rng.random(n) < 0.9)
            a = a.astype(dtype)
            ks = range(n) if n <= 65 else sorted({0, 1, n // 16, n // 2, n - 2, n - 1})
            for k in ks:
                kept = a.copy()
                assert nth(a, n, k, np.empty(n, dtype)) == np.partition(a, k)[k]
                np.testing.assert_array_equal(a, kept)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,c,r0,P,rows", [((1, 12, 9), 0, 0, 3, 10), ((2, 20, 17), 1, 4, 5, 16),
                                               ((3, 15, 30), 2, 3, 7, 9), ((1, 9, 9), 0, 0, 5, 5)])
def test_patch_sums_are_direct_sums(rng, dtype, shape, c, r0, P, rows):
    """The band's patch sums (homogeneity test, pixel counts) against direct float64 sums of every patch,
    rows starting at ``r0``; entries whose patch would leave the image keep their value."""
    from nlmeans.kernels.nlbayes import _nlb_patch_sums

    image = (rng.random(shape) * 2 - 1).astype(dtype)
    s1 = np.full((rows, shape[2]), 7.0)
    s2 = np.full((rows, shape[2]), 7.0)
    _nlb_patch_sums(image, c, r0, P, s1, s2)
    x = image[c].astype(np.float64)
    for t in range(rows):
        for u in range(shape[2]):
            if r0 + t + P <= shape[1] and u + P <= shape[2]:
                patch = x[r0 + t:r0 + t + P, u:u + P]
                assert s1[t, u] == pytest.approx(patch.sum(), rel=1e-12, abs=1e-12)
                assert s2[t, u] == pytest.approx((patch * patch).sum(), rel=1e-12, abs=1e-12)
            else:
                assert s1[t, u] == 7.0 and s2[t, u] == 7.0


def test_overflow_is_the_clear_error_not_a_warning_from_a_band_thread(rng):
    """Sums past float32's range: the bands' accumulation (on worker threads, whose numpy error state is not
    the caller's) stays silent, and ``denoise`` refuses the result with its ValueError."""
    import warnings

    x = (rng.random((130, 40)) * 3e38).astype(np.float32)  # several row bands
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="overflowed"):
            nlmeans.denoise(x, 1.0, method="nlbayes")


@pytest.mark.parametrize("threads", [1, 2])
def test_bands_done_are_reported_per_stage_and_do_not_change_the_result(rng, monkeypatch, threads):
    """A listener (the command line's ticker) hears every row band of both stages, in order of completion,
    from the calling thread; listening changes no bit of the output."""
    import threading

    import nlmeans.nlbayes as module
    from nlmeans._progress import listening

    monkeypatch.setattr(module, "_n_threads", lambda: threads)
    x = rng.random((150, 70)).astype(np.float32)
    plain = nlmeans.denoise(x, 0.1)
    heard, callers = [], set()

    def listen(done, total, what):
        heard.append((what, done, total))
        callers.add(threading.get_ident())

    with listening(listen):
        out = nlmeans.denoise(x, 0.1)
    assert np.array_equal(out, plain)
    assert callers == {threading.get_ident()}
    for stage in ("NL-Bayes stage 1/2", "NL-Bayes stage 2/2"):
        parts = [(d, t) for w, d, t in heard if w == stage]
        total = parts[0][1]
        assert total >= 2  # 150 rows make several bands at the default band height
        assert parts == [(d, total) for d in range(1, total + 1)]
    count = len(heard)
    nlmeans.denoise(x, 0.1)
    assert len(heard) == count  # nothing heard outside the block


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("P,r,shape", [(5, 3, (1, 17, 26)), (5, 10, (2, 30, 45)), (5, 15, (1, 40, 64)),
                                       (5, 1, (1, 9, 9)), (7, 4, (1, 21, 30)), (7, 23, (1, 60, 90)),
                                       (3, 4, (1, 15, 22)), (9, 5, (2, 30, 33))])
def test_window_distances_are_the_row_by_row_sums(rng, dtype, P, r, shape):
    """The P × P distances of a whole window (:func:`_nlb_window_distances5`, ``7``, the any-size
    :func:`_nlb_window_distances`) equal :func:`_nlb_row_distances` row by row (bit for bit: the same sums in
    the same order) and direct float64 sums, in scan order without the reference, on random inputs; ``dist``
    is written no further than its spare values allow. The 5 and 7 routines give the any-size one's values."""
    from nlmeans.kernels.nlbayes import (
        _nlb_row_distances,
        _nlb_window_distances,
        _nlb_window_distances5,
        _nlb_window_distances7,
    )

    window = {5: _nlb_window_distances5, 7: _nlb_window_distances7}.get(P, _nlb_window_distances)
    f = P // 2
    w = 2 * r + 1
    search = (rng.random(shape) * 2 - 1).astype(dtype)
    x = search[0].astype(np.float64)
    for py, px in [(r + f, r + f), (shape[1] - r - f - 1, shape[2] - r - f - 1), (f + r, r + f + 1)]:
        # whole vectors where the padding allows, as _nlb_lanes gives (at most 15 beyond 2r + 1)
        nk = min((w + 15) // 16 * 16, shape[2] - (px + f - r))
        dist = np.full(w * w - 1 + 16, np.nan, dtype)
        drow = np.full((w + 15) // 16 * 16, np.nan, dtype)
        assert window(search, py, px, f, r, dist, drow) == w * w - 1
        assert np.isnan(dist[w * w - 1 + nk - w:]).all()
        expected = []
        for dy in range(-r, r + 1):
            rows = np.zeros(nk, dtype)
            for jy in range(-f, f + 1):
                _nlb_row_distances(search[0, py + jy], search[0, py + dy + jy, px - f - r:], px - f, P, nk, rows)
            expected.extend(rows[dx + r] for dx in range(-r, r + 1) if dy or dx)
        np.testing.assert_array_equal(dist[:w * w - 1], np.array(expected, dtype))
        ref = x[py - f:py + f + 1, px - f:px + f + 1]
        direct = [((ref - x[py + dy - f:py + dy + f + 1, px + dx - f:px + dx + f + 1]) ** 2).sum()
                  for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy or dx]
        np.testing.assert_allclose(dist[:w * w - 1], direct, rtol=1e-5 if dtype == np.float32 else 1e-12)
        generic = np.full(w * w - 1 + 16, np.nan, dtype)
        assert _nlb_window_distances(search, py, px, f, r, generic, drow) == w * w - 1
        np.testing.assert_array_equal(generic[:w * w - 1], dist[:w * w - 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nearest_candidates_are_a_stable_sorts_first(rng, dtype):
    """The group's members: the m smallest distances, ties to the earlier candidate, in candidate order; the
    first m of a stable argsort, sorted. Values with many ties, zeros, tiny and huge values, short and long
    arrays, every m of the short ones."""
    from numba import njit

    from nlmeans.kernels.nlbayes import _nlb_nearest

    @njit
    def nearest(a, n, m, work, idx):
        _nlb_nearest(a, n, m, work, idx)

    for n in (1, 2, 3, 8, 63, 64, 65, 130, 440, 960):
        for kind in ("uniform", "ties", "spread", "flat"):
            if kind == "uniform":
                a = rng.random(n)
            elif kind == "ties":
                a = rng.integers(0, 4, n) / 4.0
            elif kind == "spread":
                a = 10.0 ** rng.uniform(-30, 30, n) * (rng.random(n) < 0.9)
            else:
                a = np.zeros(n)
            a = a.astype(dtype)
            ms = range(1, n + 1) if n <= 65 else sorted({1, 2, 29, 59, 89, n // 2, n - 1, n})
            for m in ms:
                kept = a.copy()
                idx = np.full(n, -1, np.int64)
                nearest(a, n, m, np.empty(n, dtype), idx)
                expected = np.sort(np.argsort(a, kind="stable")[:m])
                np.testing.assert_array_equal(idx[:m], expected)
                np.testing.assert_array_equal(a, kept)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("D,n", [(1, 3), (5, 1), (9, 7), (25, 30), (25, 64), (49, 96)])
def test_cholesky_and_solve_are_numpys(rng, dtype, D, n):
    """The group model's factor and solve against numpy on random symmetric positive definite matrices stored
    as the kernel stores them (rows of whole vectors, unused values left of the diagonal); a singular matrix is
    refused."""
    from nlmeans.kernels.nlbayes import _nlb_cholesky, _nlb_solve

    Dv = (D + 7) // 8 * 8
    G = rng.normal(size=(D, 3 * D + 2))
    A = G @ G.T / G.shape[1] + 0.1 * np.eye(D)
    store = rng.normal(size=(D, Dv)).astype(dtype)  # the lower part and the padding: not used
    store[:, :D][np.triu_indices(D)] = A[np.triu_indices(D)]
    assert _nlb_cholesky(store, D)
    U = np.triu(store[:, :D].astype(np.float64))
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(U.T @ U, A, rtol=tol, atol=tol)
    B = rng.normal(size=(D, n))
    Bm = np.zeros((D, (n + 7) // 8 * 8), dtype)
    Bm[:, :n] = B
    _nlb_solve(store, Bm, D, n)
    np.testing.assert_allclose(Bm[:, :n], np.linalg.solve(A, B), rtol=50 * tol, atol=50 * tol)
    assert not Bm[:, n:].any()  # the zero columns stay zero
    singular = np.zeros((D, Dv), dtype)
    singular[:, :D] = (G[:, :1] @ G[:, :1].T).astype(dtype) if D > 1 else 0.0
    assert not _nlb_cholesky(singular, D)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape,patch,search,dtype", [
    ((1, 150, 40), (5, 3), (9, 7), np.float64),  # several bands, the stages padded differently
    ((1, 200, 33), 5, (21, 11), np.float32),
    ((3, 140, 30), (3, 5), (7, 9), np.float32),  # colour, stage 2 reaching further than stage 1
    ((1, 40, 50), 3, 7, np.float32),  # one band per stage
])
def test_stage_two_bands_starting_early_is_stage_one_then_stage_two(rng, monkeypatch, threads, shape, patch,
                                                                   search, dtype):
    """Both stages on one set of threads, a stage-2 band starting once the basic rows it reads are final, give
    bit for bit the two stages run one after the other on the whole padded basic image, whatever order the
    bands finish in (random delays) and however many threads run them."""
    import time

    import nlmeans.nlbayes as module

    band = module._nlb_band
    delays = np.random.default_rng(int(rng.integers(1 << 30)))

    def late_band(*args):
        time.sleep(float(delays.uniform(0, 0.01)))
        return band(*args)

    image = _quantised(rng, shape).astype(dtype)
    kw = dict(n_similar=(30, 20), beta=(1.0, 1.2), gamma=(1.05, 0.02), step=3)
    p1, p2 = (patch, patch) if np.ndim(patch) == 0 else patch
    s1, s2 = (search, search) if np.ndim(search) == 0 else search
    v = np.einsum("ij,jhw->ihw", module._YUV.astype(dtype), image) if shape[0] == 3 else image
    basic = _kernel_stage(v, None, 1, 0.1, p1, s1, 30, 1.0, 1.05, 3, dtype)
    apart = _kernel_stage(v, basic, 2, 0.1, p2, s2, 20, 1.2, 0.02, 3, dtype)
    if shape[0] == 3:
        apart = np.einsum("ji,jhw->ihw", module._YUV.astype(dtype), apart)
    monkeypatch.setattr(module, "_n_threads", lambda: threads)
    monkeypatch.setattr(module, "_nlb_band", late_band)
    together = nlbayes_chw(image, 0.1, patch_size=patch, search_size=search, **kw)
    np.testing.assert_array_equal(together, apart)
