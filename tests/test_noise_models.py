"""The variance-stabilising transforms against their formulas and against the laws they stabilise."""

import math

import numpy as np
import pytest
from scipy.stats import poisson, rice

from nlmeans import presets
from nlmeans._validate import check_noise_model
from nlmeans.noise_models import (
    bin_counts,
    debin,
    gat,
    gat_inverse,
    rice_moments,
    rician_vst,
    rician_vst_inverse,
)


def test_gat_of_known_values():
    # Anscombe: 2 sqrt(y + 3/8); GAT with gain 2 and σ 3 at y = 5: (2/2) sqrt(2·5 + 3/8·4 + 9) = sqrt(20.5)
    assert gat(0.0) == pytest.approx(2 * math.sqrt(3 / 8), rel=1e-15)
    assert gat(10.0) == pytest.approx(2 * math.sqrt(10.375), rel=1e-15)
    assert gat(5.0, gain=2.0, sigma=3.0) == pytest.approx(math.sqrt(20.5), rel=1e-15)
    # below the root's zero the transform is 0, not NaN
    assert gat(-100.0, gain=1.0, sigma=1.0) == 0.0


def _expected_gat_poisson(lam, gain=1.0):
    k = np.arange(0, int(lam + 30 * math.sqrt(lam) + 60))
    return float((poisson.pmf(k, lam) * gat(gain * k, gain)).sum())


@pytest.mark.parametrize("lam", [0.5, 1.0, 2.0, 4.0, 10.0, 30.0, 100.0])
def test_closed_form_inverse_is_unbiased_for_poisson(lam):
    # E[GAT(Poisson(λ))] summed over the pmf, then inverted: λ back within 0.5 % (Mäkitalo & Foi's
    # closed form approximates the exact unbiased inverse to that accuracy over this range)
    assert gat_inverse(_expected_gat_poisson(lam)) == pytest.approx(lam, rel=5e-3)


def test_closed_form_inverse_with_gain_is_in_image_units():
    # y = gain · Poisson(x / gain): the inverse returns x in the image's units
    gain, x = 0.25, 1.5
    assert gat_inverse(_expected_gat_poisson(x / gain, gain), gain) == pytest.approx(x, rel=5e-3)


def test_asymptotic_and_algebraic_inverses_are_biased_at_low_counts():
    d = _expected_gat_poisson(1.0)
    assert gat_inverse(d, kind="asymptotic") > 1.05  # 7 % high at λ = 1
    assert gat_inverse(d, kind="algebraic") < 0.9
    d = _expected_gat_poisson(100.0)  # and fine at high counts
    assert gat_inverse(d, kind="asymptotic") == pytest.approx(100.0, rel=1e-4)


def test_inverse_of_a_zero_count_and_below_is_zero():
    assert np.all(gat_inverse(np.array([0.0, 0.3, 1.0, 2 * math.sqrt(3 / 8)])) == 0.0)
    with pytest.raises(ValueError, match="kind"):
        gat_inverse(1.0, kind="naive")


@pytest.mark.parametrize("sigma", [0.5, 2.0])
@pytest.mark.parametrize("lam", [2.0, 10.0, 50.0])
def test_poisson_gaussian_is_stabilised_and_inverted(sigma, lam):
    rng = np.random.default_rng(1)
    gain = 0.5
    y = gain * rng.poisson(lam, 400_000) + rng.normal(0, sigma, 400_000)
    d = gat(y, gain, sigma)
    assert d.var() == pytest.approx(1.0, abs=0.12)
    # the closed form of Mäkitalo & Foi 2013 (σ > 0): within 1.5 % of x at λ ≥ 2
    assert gat_inverse(d.mean(), gain, sigma) == pytest.approx(gain * lam, rel=0.015)


def test_rice_moments_match_scipy():
    nu = np.array([0.0, 0.5, 2.0, 10.0, 35.0])
    mean, std = rice_moments(nu)
    np.testing.assert_allclose(mean, rice.mean(nu), rtol=1e-9)
    np.testing.assert_allclose(std, rice.std(nu), rtol=1e-6)


@pytest.mark.parametrize("nu", [0.0, 0.5, 1.0, 2.0, 5.0, 20.0])
def test_rician_vst_stabilises_and_its_inverse_is_unbiased(nu):
    rng = np.random.default_rng(2)
    sigma = 3.0
    n = 400_000
    y = np.abs(sigma * nu + sigma * (rng.normal(size=n) + 1j * rng.normal(size=n)))
    d = rician_vst(y, sigma)
    # stabilised: std 1 within 8 % for ν/σ ≥ 0.5, 0.89 on the Rayleigh background
    assert d.std() == pytest.approx(1.0 if nu > 0 else 0.886, abs=0.08 if nu > 0 else 0.01)
    # unbiased: E[f(y)] maps back to ν σ (Monte-Carlo error ~ 0.005 σ)
    assert rician_vst_inverse(d.mean(), sigma) == pytest.approx(sigma * nu, abs=0.02 * sigma)


def test_rician_presentation_scale():
    from nlmeans.presets import RICIAN_NLBAYES_SIGMA_255, rician_presentation_scale

    # NL-Bayes: scaled up to the preset σ, never down; other methods and σ = 0 unscaled
    assert rician_presentation_scale(0.01, "nlbayes") == pytest.approx(RICIAN_NLBAYES_SIGMA_255 / 255 / 0.01)
    assert rician_presentation_scale(0.5, "nlbayes") == 1.0
    assert rician_presentation_scale(0.01, "pixelwise") == 1.0
    assert rician_presentation_scale(0.0, "nlbayes") == 1.0


def test_unknown_model_is_refused():
    assert check_noise_model("poisson") == "poisson"
    with pytest.raises(ValueError, match="allowed: 'gaussian'"):
        check_noise_model("speckle")


# --------------------------------------------------------------------------------------------------------
# binning and debinning (the low-count route of the Poisson models)


def _blocks_by_loop(x, k):
    """Direct reference: the image extended at its bottom and right by mirror symmetry (edge pixel
    repeated) to multiples of k, then each k×k block summed by a loop."""
    height, width = x.shape[-2:]
    rows = [min(i, 2 * height - 1 - i) for i in range(-(-height // k) * k)]
    cols = [min(j, 2 * width - 1 - j) for j in range(-(-width // k) * k)]
    ext = x[..., rows, :][..., cols]
    out = np.zeros(x.shape[:-2] + (len(rows) // k, len(cols) // k))
    for i in range(out.shape[-2]):
        for j in range(out.shape[-1]):
            out[..., i, j] = ext[..., i * k : (i + 1) * k, j * k : (j + 1) * k].sum(axis=(-2, -1))
    return out


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("shape", [(12, 12), (13, 17), (2, 20, 9), (3, 7, 31)])
def test_bin_counts_sums_blocks(shape, k):
    counts = np.random.default_rng(k).poisson(2.0, shape).astype(np.float64)
    out = bin_counts(counts, k)
    np.testing.assert_array_equal(out, _blocks_by_loop(counts, k))
    # where the shape divides, the sums hold every count exactly once
    if shape[-2] % k == 0 and shape[-1] % k == 0:
        assert out.sum() == counts.sum()
    assert bin_counts(counts, 1) is not None and np.array_equal(bin_counts(counts, 1), counts)


@pytest.mark.parametrize("k", [2, 3])
def test_binned_poisson_counts_are_poisson_of_the_summed_mean(k):
    # a sum of k² independent Poisson(λ) counts is Poisson(k² λ): mean and variance both k² λ
    lam = 0.3
    counts = np.random.default_rng(5).poisson(lam, (600, 600)).astype(np.float64)
    binned = bin_counts(counts, k)
    assert binned.mean() == pytest.approx(k * k * lam, rel=0.01)
    assert binned.var() == pytest.approx(k * k * lam, rel=0.03)


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("shape", [(30, 30), (31, 44), (2, 26, 19)])
def test_debin_of_a_constant_is_the_constant(shape, k):
    image = np.full(shape, 0.7)
    np.testing.assert_allclose(debin(bin_counts(image, k), shape, k), image, rtol=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("shape", [(40, 40), (41, 53), (2, 37, 30)])
def test_debin_first_step_is_the_spline_of_the_block_means(shape, k):
    # one step: the block means (sums / k²) interpolated from the block centres (i·k + (k − 1)/2) to the
    # pixels by a cubic spline: scipy's 2-D zoom in grid mode as the reference, clipped at 0
    from scipy import ndimage

    rng = np.random.default_rng(k)
    means = rng.random(shape[:-2] + tuple(-(-n // k) for n in shape[-2:])) - 0.1
    zoom = (1,) * (means.ndim - 2) + (k, k)
    ref = ndimage.zoom(means, zoom, order=3, mode="nearest", grid_mode=True)[..., : shape[-2], : shape[-1]]
    out = debin(means * k * k, shape, k, iterations=1)
    np.testing.assert_allclose(out, np.maximum(ref, 0.0), atol=1e-9)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_debin_keeps_the_block_sums_and_a_linear_ramp(k):
    yy, xx = np.mgrid[0:72, 0:77]
    ramp = 1.0 + 0.05 * yy + 0.03 * xx
    sums = bin_counts(ramp, k)
    out = debin(sums, ramp.shape, k)
    # a linear image is its own cubic spline away from the edges (the edge value continues outside)
    inner = (slice(4 * k, -4 * k), slice(4 * k, -4 * k))
    np.testing.assert_allclose(out[inner], ramp[inner], atol=2e-3)
    # the refinement steps make the image's block sums those it was given (a smooth image: within 0.5 %)
    smooth = 2.0 + np.sin(yy / 9.0) * np.cos(xx / 7.0)  # positive: the clip at 0 plays no part
    sums = bin_counts(smooth, k)
    out = debin(sums, smooth.shape, k)
    np.testing.assert_allclose(bin_counts(out, k), sums, rtol=5e-3)
    one = debin(sums, smooth.shape, k, iterations=1)
    assert np.abs(bin_counts(one, k) - sums).max() > 10 * np.abs(bin_counts(out, k) - sums).max()


def test_debin_is_non_negative_and_k1_is_the_identity():
    rng = np.random.default_rng(3)
    sums = rng.poisson(0.5, (2, 15, 15)).astype(np.float64)  # many empty blocks beside full ones
    out = debin(sums, (2, 45, 45), 3)
    assert out.min() >= 0.0 and out.shape == (2, 45, 45)
    assert np.array_equal(debin(sums, sums.shape, 1), sums)


# --------------------------------------------------------------------------------------------------------
# the schedule of passes


def test_poisson_schedule_rows_by_mean_count():
    table = presets.POISSON_ITERATION_SCHEDULES
    limits = [limit for limit, _ in table]
    assert limits == sorted(limits)
    for i, (limit, passes) in enumerate(table):
        # a row applies up to and including its limit, the next one just above it
        assert presets.poisson_schedule(limit) == passes
        assert presets.poisson_schedule(limit * 0.999) == passes
        above = table[i + 1][1] if i + 1 < len(table) else ((1.0, 1),)
        assert presets.poisson_schedule(limit * 1.001) == above
        # the scheme of Azzari & Foi: λ from 1 down, bins shrinking (at most 2×2 in the last pass)
        lams = [lam for lam, _ in passes]
        bins = [k for _, k in passes]
        assert lams[0] == 1.0 and lams == sorted(lams, reverse=True) and all(0 < lam <= 1 for lam in lams)
        assert bins == sorted(bins, reverse=True) and bins[-1] <= 2 and all(isinstance(k, int) for k in bins)
    assert presets.poisson_schedule(1e6) == ((1.0, 1),)
    assert presets.poisson_schedule(0.0) == table[0][1]


def test_poisson_bin_factor_keeps_binned_images_large_enough():
    side = presets.POISSON_BIN_MIN_SIDE
    assert presets.poisson_bin_factor(5, (5 * side, 5 * side)) == 5
    assert presets.poisson_bin_factor(5, (5 * side - 5, 600)) == 4  # ⌈(5 side − 5)/5⌉ = side − 1 < side
    assert presets.poisson_bin_factor(3, (side - 1, 600)) == 1
    assert presets.poisson_bin_factor(1, (8, 8)) == 1
