"""The variance-stabilising transforms against their formulas and against the laws they stabilise."""

import math

import numpy as np
import pytest
from scipy.stats import poisson, rice

from nlmeans._validate import check_noise_model
from nlmeans.noise_models import (
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


def test_unknown_model_is_refused():
    assert check_noise_model("poisson") == "poisson"
    with pytest.raises(ValueError, match="allowed: 'gaussian'"):
        check_noise_model("speckle")
