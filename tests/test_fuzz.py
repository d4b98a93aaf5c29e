"""Property tests over the public API: every call returns a finite array of the right shape and dtype, or
raises ValueError/TypeError with a message. Never a crash, NaN, or a silently wrong shape/dtype.

The default run draws few examples; the `fuzz` CI step runs the `fuzz`-marked tests with the "fuzz"
hypothesis profile (2,500 examples each, >= 10,000 in all).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nlmeans
from nlmeans.presets import METHODS

pytestmark = pytest.mark.fuzz

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
FLOAT_EDGES = [0.0, 1.0, -1.0, 1e-300, 1e-30, 1e30, 1e300, np.nan, np.inf, -np.inf, 5e-324]


@st.composite
def images(draw, max_side=24):
    """Images of every layout: 2-D, channels first/last/middle, 1×1, 1×N, constant, extreme values."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    layout = draw(st.sampled_from(["gray", "last", "first", "3d-no-axis", "1d"]))
    c = draw(st.integers(1, 5))
    shape = {"gray": (h, w), "last": (h, w, c), "first": (c, h, w), "3d-no-axis": (h, w, c), "1d": (w,)}[layout]
    axis = {"gray": None, "last": -1, "first": 0, "3d-no-axis": None, "1d": None}[layout]
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(["random", "constant", "extreme", "edges"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if np.dtype(dtype).kind == "u":
        top = np.iinfo(dtype).max
        data = {"random": rng.integers(0, top, shape, endpoint=True), "constant": np.full(shape, top // 3),
                "extreme": rng.choice([0, top], shape), "edges": rng.choice([0, 1, top - 1, top], shape)}[kind]
    else:
        scale = draw(st.sampled_from([1.0, 1e-20, 255.0, 1e10, 1e20, 1e200]))
        data = {"random": rng.random(shape) * scale, "constant": np.full(shape, scale),
                "extreme": rng.choice([-scale, scale], shape),
                "edges": rng.choice(FLOAT_EDGES, shape)}[kind]
    with np.errstate(all="ignore"):
        return np.asarray(data).astype(dtype), axis


maybe_size = st.one_of(st.none(), st.integers(-3, 30), st.sampled_from([2.5, "5", True]))
maybe_scale = st.one_of(
    st.none(), st.sampled_from([0.0, 1e-300, 1e-12, 0.05, 1.0, 1e12, 1e300, -0.1, np.nan, np.inf, "0.1"])
)


def _ok_or_clear_error(call, expect_shape, expect_dtype):
    try:
        out = call()
    except (ValueError, TypeError) as exc:
        assert str(exc).strip(), "error without a message"
        return None
    out = np.asarray(out)
    assert out.shape == expect_shape and out.dtype == expect_dtype
    assert np.isfinite(out).all()
    return out


@given(images(), maybe_scale, maybe_scale, maybe_size, maybe_size, st.sampled_from(METHODS + ("nope",)))
def test_denoise_never_crashes_or_returns_garbage(img, sigma, h, patch, search, method):
    image, axis = img
    _ok_or_clear_error(
        lambda: nlmeans.denoise(image, sigma, h=h, patch_size=patch, search_size=search, method=method,
                                channel_axis=axis),
        image.shape, image.dtype,
    )


@given(images(), st.one_of(images(), st.none()), maybe_scale)
def test_guided_denoise(img, guide, guide_sigma):
    image, axis = img
    g = None if guide is None else guide[0]
    gaxis = None if guide is None else guide[1]
    _ok_or_clear_error(
        lambda: nlmeans.denoise(image, 0.1, channel_axis=axis, guide=g, guide_sigma=guide_sigma,
                                guide_channel_axis=gaxis),
        image.shape, image.dtype,
    )


@given(images(), maybe_scale, st.one_of(st.none(), st.integers(0, 2**31)), st.booleans())
def test_add_noise(img, sigma, seed, clip):
    image, _ = img
    dtype = np.float32 if image.dtype == np.float32 else np.float64
    out = _ok_or_clear_error(lambda: nlmeans.add_noise(image, sigma, seed=seed, clip=clip), image.shape, dtype)
    if out is not None and clip:
        assert out.min() >= 0 and out.max() <= 1


@given(images())
def test_estimate_sigma(img):
    image, axis = img
    try:
        s = nlmeans.estimate_sigma(image, channel_axis=axis)
    except (ValueError, TypeError) as exc:
        assert str(exc).strip()
        return
    assert np.isfinite(s) and s >= 0


@given(images(max_side=12), st.integers(0, 3), st.one_of(st.none(), st.sampled_from([1.0, 255.0, 0.0, -1.0])))
def test_metrics(img, seed, data_range):
    image, axis = img
    other = np.random.default_rng(seed).permutation(image.ravel()).reshape(image.shape)
    for fn in (nlmeans.psnr, lambda a, b, data_range: nlmeans.ssim(a, b, data_range, channel_axis=axis)):
        try:
            v = fn(image, other, data_range=data_range)
        except (ValueError, TypeError) as exc:
            assert str(exc).strip()
            continue
        assert isinstance(v, float) and (np.isfinite(v) or v == float("inf"))


# The baselines registry: fast, always-available methods (bm3d is minutes per example; opencv/skimage NLM
# are peers, fuzzed through the same wrapper).
from nlmeans.eval.registry import REGISTRY  # noqa: E402

FUZZ_METHODS = sorted(name for name, m in REGISTRY.items() if m.available and name != "bm3d")


@given(images(max_side=16), st.sampled_from(FUZZ_METHODS), maybe_scale)
def test_baselines(img, name, sigma):
    image, axis = img
    _ok_or_clear_error(lambda: REGISTRY[name](image, sigma, channel_axis=axis), image.shape, image.dtype)


@given(images(max_side=16), st.lists(st.sampled_from([0.0, 1.0, 20.0, 300.0, -5.0]), min_size=1, max_size=2),
       st.sampled_from(["gaussian", "tv", "nlmeans", "wavelet,anisotropic", "nope"]), st.booleans())
def test_evaluate(img, sigmas, methods, tune):
    image, axis = img
    if axis == 0:
        image = np.moveaxis(image, 0, -1)  # evaluate takes channels last
    try:
        records = nlmeans.evaluate(image, sigmas, methods=methods, seeds=1, tune=tune)
    except (ValueError, TypeError) as exc:
        assert str(exc).strip()
        return
    assert records
    for rec in records:
        assert {"image", "sigma", "seed", "method", "psnr", "ssim", "seconds", "params"} <= set(rec)
        assert isinstance(rec["psnr"], float) and not np.isnan(rec["psnr"])
