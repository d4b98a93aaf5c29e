"""Monte-Carlo SURE, choose_h, h="auto" in denoise and --h auto on the command line."""

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.ndimage import uniform_filter

import nlmeans
from nlmeans.cli import main
from nlmeans.io import read_image, write_image
from nlmeans.presets import preset_for
from nlmeans.sure import choose_h, default_epsilon, mc_sure, minimize_sure


def _box(y, size=3):
    return uniform_filter(y, size=size, mode="wrap")


def test_linear_denoiser_matches_the_exact_divergence(camera):
    """For a 3×3 box filter with wrap-around, div f = N/9 exactly: MC-SURE must agree with exact SURE."""
    sigma = 20 / 255
    noisy = nlmeans.add_noise(camera[:256, :256], sigma, seed=0)
    n = noisy.size
    exact = np.sum((noisy - _box(noisy)) ** 2) / n - sigma**2 + 2 * sigma**2 / 9
    # the probe's spread: var(bᵀAb) = 2‖A‖²_F = 2N/9, so SURE's sd is 2σ² sqrt(2 / (9N)); allow 4 sd
    tol = 4 * 2 * sigma**2 * np.sqrt(2 / (9 * n))
    estimates = [mc_sure(_box, noisy, sigma, seed=s) for s in range(3)]
    for est in estimates:
        assert abs(est - exact) < tol
    assert len(set(estimates)) == 3  # the seed picks the probe


def test_sure_is_unbiased_for_a_linear_denoiser(camera):
    """Averaged over noise draws, SURE equals the true MSE."""
    sigma = 30 / 255
    clean = camera[:128, :128].astype(np.float64) / 255
    sure, true = [], []
    for seed in range(8):
        noisy = nlmeans.add_noise(clean, sigma, seed=seed)
        sure.append(mc_sure(_box, noisy, sigma, seed=seed))
        true.append(np.mean((_box(noisy) - clean) ** 2))
    assert np.mean(sure) == pytest.approx(np.mean(true), rel=0.02)


def test_trivial_denoisers(rng):
    y = rng.normal(0.5, 0.1, (64, 64))
    # f(y) = 0: SURE = mean(y²) − σ², no divergence
    assert mc_sure(np.zeros_like, y, 0.1) == pytest.approx(np.mean(y**2) - 0.01, rel=1e-9)
    # f(y) = y: SURE = −σ² + 2σ² bᵀb / N ≈ σ², spread 2σ² sqrt(2/N) = 0.044 σ² here: allow 3.4 spreads
    assert mc_sure(lambda v: v, y, 0.1) == pytest.approx(0.01, rel=0.15)


def test_epsilon_rule_and_errors(rng):
    y = rng.random((16, 16))
    assert default_epsilon(y) == pytest.approx(np.abs(y).max() / 1000)
    assert default_epsilon(np.zeros((4, 4))) == 1e-3
    with pytest.raises(ValueError, match="shape"):
        mc_sure(lambda v: v[:-1], y, 0.1)
    with pytest.raises(ValueError, match="epsilon"):
        mc_sure(lambda v: v, y, 0.1, epsilon=0)
    with pytest.raises(ValueError, match="probes"):
        mc_sure(lambda v: v, y, 0.1, probes=0)
    with pytest.raises(ValueError, match="values is empty"):
        minimize_sure(lambda k: _box, [], y, 0.1)


@pytest.mark.parametrize("sigma_255", [20, 50])
def test_sure_tracks_the_true_mse_of_nlmeans(camera, astronaut, sigma_255):
    """SURE close to the true MSE, and its h-to-h differences follow the true ones.

    SURE − MSE contains ‖n‖²/N − σ², whose spread is σ² sqrt(2/N) whatever the denoiser: 0.0055 σ² on a
    256² gray crop, 0.0064 σ² on a 128² color crop. That is 5–20 % of NL-means' MSE at these σ, the same for
    every h (so the choice of h is unaffected). Allowed: 0.015 σ² (about 2.5 of those spreads).
    """
    sigma = sigma_255 / 255
    for clean, axis in ((camera[:256, :256], None), (astronaut[:128, 128:256], -1)):
        clean = clean.astype(np.float32) / 255
        noisy = nlmeans.add_noise(clean, sigma, seed=1)
        sure, true = [], []
        for k in (0.3, 0.6, 1.0):
            def f(y, k=k, axis=axis):
                return nlmeans.denoise(y, sigma, h=k * sigma, channel_axis=axis)
            out = f(noisy)
            true.append(float(np.mean((out.astype(np.float64) - clean) ** 2)))
            sure.append(mc_sure(f, noisy, sigma, denoised=out))
        np.testing.assert_allclose(sure, true, rtol=0, atol=0.015 * sigma**2)
        # the noise realisation shifts every SURE value alike; the h-to-h differences, which decide the
        # choice of h, agree better (measured within 0.006 σ² with two probe streams)
        np.testing.assert_allclose(np.diff(sure), np.diff(true), rtol=0, atol=0.01 * sigma**2)


@pytest.mark.parametrize("sigma_255", [20, 50])
def test_auto_h_is_close_to_the_oracle(camera, sigma_255):
    sigma = sigma_255 / 255
    clean = camera[64:256, 64:256]
    noisy = nlmeans.add_noise(clean, sigma, seed=2).astype(np.float32)
    oracle = max(nlmeans.psnr(clean, nlmeans.denoise(noisy, sigma, h=k * sigma))
                 for k in np.arange(0.2, 1.45, 0.15))
    preset_patch = preset_for(sigma_255).patch_size
    out, used = nlmeans.denoise(noisy, sigma, h="auto", patch_size=preset_patch, return_settings=True)
    assert used.sure_risk is not None and used.h > 0 and used.patch_size == preset_patch
    assert nlmeans.psnr(clean, out) > oracle - 0.1
    # without a patch size, SURE picks it too, among the preset and its odd neighbours
    out2, used2 = nlmeans.denoise(noisy, sigma, h="auto", return_settings=True)
    assert used2.patch_size in (preset_patch - 2, preset_patch, preset_patch + 2)
    assert used2.sure_risk <= used.sure_risk
    assert nlmeans.psnr(clean, out2) > oracle - 0.1
    # the risk it reports is an estimate of the MSE it got
    true_mse = float(np.mean((out - clean.astype(np.float64) / 255) ** 2))
    assert used.sure_risk == pytest.approx(true_mse, rel=0.15)


def test_choose_h_over_patch_sizes(camera):
    sigma = 30 / 255
    noisy = nlmeans.add_noise(camera[:96, :96], sigma, seed=0)
    h, p, risk = choose_h(noisy, sigma, patch_sizes=(3, 5), search_size=11, n_evals=5)
    assert p in (3, 5) and h > 0 and risk > 0
    h3, _, r3 = choose_h(noisy, sigma, patch_size=3, search_size=11, n_evals=5)
    h5, _, r5 = choose_h(noisy, sigma, patch_size=5, search_size=11, n_evals=5)
    assert risk == min(r3, r5) and h == (h3 if r3 <= r5 else h5)


def test_minimize_sure_tunes_any_denoiser(camera):
    """Tuning a baseline (box filter size) without the clean image picks the oracle's choice."""
    sigma = 25 / 255
    clean = camera[:192, :192].astype(np.float64) / 255
    noisy = nlmeans.add_noise(clean, sigma, seed=0)
    sizes = [1, 3, 5, 9]
    best, risks = minimize_sure(lambda s: (lambda y: _box(y, s)), sizes, noisy, sigma)
    true = [np.mean((_box(noisy, s) - clean) ** 2) for s in sizes]
    assert best == sizes[int(np.argmin(true))] and len(risks) == 4


def test_auto_h_errors_and_edge_cases(rng):
    image = rng.random((20, 20))
    with pytest.raises(ValueError, match="'auto'"):
        nlmeans.denoise(image, 0.1, h="automatic")
    with pytest.raises(ValueError, match="guide"):
        nlmeans.denoise(image, 0.1, h="auto", guide=image)
    # σ = 0: nothing to tune
    out, used = nlmeans.denoise(image, 0.0, h="auto", patch_size=3, search_size=5, return_settings=True)
    assert used.sure_risk is None and used.h == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="bracket"):
        choose_h(image, 0.1, bracket=(1.0, 0.5))


def test_cli_h_auto(tmp_path, camera):
    noisy = nlmeans.add_noise(camera[:64, :64], 20 / 255, seed=0)
    write_image(tmp_path / "in.png", np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8))
    runner = CliRunner()
    res = runner.invoke(main, ["denoise", str(tmp_path / "in.png"), str(tmp_path / "out.png"),
                               "--sigma", "20", "--h", "auto"])
    assert res.exit_code == 0, res.output
    assert "h by SURE" in res.output
    assert read_image(tmp_path / "out.png").data.shape == (64, 64)
    for bad in ("zero", "-3", "0", "nan", "inf"):
        res = runner.invoke(main, ["denoise", str(tmp_path / "in.png"), str(tmp_path / "o2.png"), "--h", bad])
        assert res.exit_code == 2 and "positive number" in res.output and "auto" in res.output, bad


def test_more_probes_lower_the_spread(camera):
    """Averaging K probes divides the divergence estimate's variance by K (checked on a box filter)."""
    sigma = 20 / 255
    noisy = nlmeans.add_noise(camera[:64, :64], sigma, seed=0)
    exact = np.sum((noisy - _box(noisy)) ** 2) / noisy.size - sigma**2 + 2 * sigma**2 / 9
    one = np.std([mc_sure(_box, noisy, sigma, seed=s) - exact for s in range(24)])
    eight = np.std([mc_sure(_box, noisy, sigma, seed=s, probes=8) - exact for s in range(24)])
    assert eight < 0.6 * one


def test_probe_never_repeats_the_noise_of_the_same_seed(camera):
    """add_noise(seed=0) and mc_sure(seed=0) must not draw the same vector: a probe equal to the noise
    biases the divergence of a nonlinear denoiser completely (SURE was 16× the MSE before this was fixed)."""
    sigma = 20 / 255
    clean = camera[:128, :128].astype(np.float64) / 255
    noisy = nlmeans.add_noise(clean, sigma, seed=0).astype(np.float32)

    def f(y):
        return nlmeans.denoise(y, sigma, h=0.5 * sigma, patch_size=5, search_size=11)

    out = f(noisy)
    true = float(np.mean((out - clean) ** 2))
    assert mc_sure(f, noisy, sigma, seed=0, denoised=out) == pytest.approx(true, abs=0.015 * sigma**2)
