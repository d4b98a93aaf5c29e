"""The pixelwise kernels' bands on Python threads (nlmeans.nlm._bands): the result does not depend on the
number of threads, a band's error reaches the caller, and a call compiles only its channel count's pieces (gray:
the segment layout's band kernel, not the row layout's)."""

import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from nlmeans.nlm import nlmeans_chw, nlmeans_map_chw


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_thread_and_two_threads_are_bit_identical(rng, channels, dtype):
    # 150 rows with r = 10: three bands of 64 rows and the top band, so both threads take several bands
    image = rng.random((channels, 150, 77)).astype(dtype)
    sigma_map = 0.05 + 0.1 * rng.random((150, 77))
    previous = numba.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            results.append((nlmeans_chw(image, image, 0.1, 0.12, 5, 21),
                            nlmeans_map_chw(image, sigma_map, 1.2 * sigma_map, 5, 21)))
    finally:
        numba.set_num_threads(previous)
    for one, two in zip(*results, strict=True):
        assert np.isfinite(one).all()
        np.testing.assert_array_equal(one, two)


def test_error_in_a_band_reaches_the_caller(rng):
    from nlmeans.kernels.pixelwise import _nlm_pixelwise_map_band
    from nlmeans.nlm import _run_banded

    image = rng.random((1, 150, 20)).astype(np.float32)
    pad = 3
    padded = np.pad(image, ((0, 0), (pad, pad + 2), (pad, pad)), mode="reflect")
    amap = np.ones(padded.shape[1:], np.float32)
    short = np.ones((padded.shape[1], padded.shape[2] - 1), np.float32)
    with pytest.raises(ValueError, match="spare rows"):  # a map one column short
        _run_banded(_nlm_pixelwise_map_band, padded, padded, 1, 2, short, amap, 64, np.empty_like(image))


@pytest.mark.parametrize("channels", [1, 3])
def test_a_call_compiles_only_its_channel_counts_pieces(tmp_path, channels):
    # an empty numba cache: pieces loaded with a cached caller would not show up as compiled
    code = (
        "import json, numpy as np; from nlmeans.nlm import nlmeans_chw; "
        "from nlmeans.kernels import pixelwise as k; "
        f"x = np.random.default_rng(0).random(({channels}, 20, 24)).astype(np.float32); "
        "nlmeans_chw(x, x, 0.1, 0.1, 7, 21); "
        "print(json.dumps([len(k._colsum_slide_rgb.signatures), len(k._accumulate4_rgb.signatures), "
        "len(k._accumulate3_rgb.signatures), len(k._nlm_pixelwise_band.signatures), "
        "len(k._nlm_segments_band.signatures)]))"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    *rgb, rows, segments = json.loads(res.stdout.strip().splitlines()[-1])
    if channels == 1:
        assert rgb == [0, 0, 0] and rows == 0 and segments == 1
    else:
        assert all(n > 0 for n in rgb) and rows == 1 and segments == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_after_an_error_no_further_band_starts(workers):
    import time

    from nlmeans.nlm import _on_threads

    started = []

    def task(k):
        started.append(k)
        if k == 0:
            raise RuntimeError("band 0 failed")
        time.sleep(0.002)

    with pytest.raises(RuntimeError, match="band 0 failed"):
        _on_threads(task, 200, workers)
    assert len(started) < 10  # the failing band stops the hand-out; the helper ends the band it runs
