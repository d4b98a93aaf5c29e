"""nlmeans denoise --noise/--gain and nlmeans noise-level: the CLI against the Python API."""

import numpy as np
import tifffile
from click.testing import CliRunner

import nlmeans
from nlmeans.cli import main


def _counts(tmp_path):
    yy, xx = np.mgrid[0:64, 0:64] / 64
    clean = 10 + 20 * xx * yy
    counts = np.random.default_rng(0).poisson(clean).astype(np.uint16)
    path = tmp_path / "counts.tif"
    tifffile.imwrite(path, counts)
    return path, counts


def test_denoise_poisson_matches_the_api(tmp_path):
    path, counts = _counts(tmp_path)
    out = tmp_path / "out.tif"
    res = CliRunner().invoke(main, ["denoise", str(path), str(out), "--noise", "poisson", "--gain", "1"])
    assert res.exit_code == 0, res.output
    assert "noise poisson, gain = 1" in res.output
    np.testing.assert_array_equal(tifffile.imread(out), nlmeans.denoise(counts, noise="poisson", gain=1.0))


def test_denoise_poisson_gaussian_sigma_is_in_file_units(tmp_path):
    path, counts = _counts(tmp_path)
    out = tmp_path / "out.tif"
    res = CliRunner().invoke(main, ["denoise", str(path), str(out), "--noise", "poisson-gaussian", "--gain", "1",
                                    "--sigma", "2"])
    assert res.exit_code == 0, res.output
    expected = nlmeans.denoise(counts, 2.0, noise="poisson-gaussian", gain=1.0)
    np.testing.assert_array_equal(tifffile.imread(out), expected)


def test_model_errors_are_one_line(tmp_path):
    path, _ = _counts(tmp_path)
    runner = CliRunner()
    out = str(tmp_path / "o.tif")
    res = runner.invoke(main, ["denoise", str(path), out, "--noise", "poisson", "--gain", "-1"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(main, ["denoise", str(path), str(tmp_path / "o.tif"), "--noise", "poisson",
                               "--tile-rows", "16"])
    assert res.exit_code == 2 and "not supported with --tile-rows" in res.output
    res = runner.invoke(main, ["denoise", str(path), str(tmp_path / "o.tif"), "--noise", "speckle"])
    assert res.exit_code == 2
    assert not (tmp_path / "o.tif").exists()


def test_noise_level_prints_the_models(tmp_path):
    path, counts = _counts(tmp_path)
    res = CliRunner().invoke(main, ["noise-level", str(path), "--noise", "poisson"])
    assert res.exit_code == 0, res.output
    gain = nlmeans.estimate_noise(counts, noise="poisson").gain
    assert f"poisson: gain = {gain:.4g}" in res.output
    res = CliRunner().invoke(main, ["noise-level", str(path)])
    assert "gaussian: σ = " in res.output and "poisson-gaussian: gain = " in res.output


def test_noise_level_default_report_survives_a_model_that_does_not_fit(tmp_path):
    """A flat image with Gaussian noise has no Poisson–Gaussian fit (its gain comes out <= 0): the default
    report says so on that model's line and exits 0; asking for that model alone is the one-line error."""
    rng = np.random.default_rng(3)
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, (0.5 + rng.normal(0, 0.05, (64, 64))).astype(np.float32))
    res = CliRunner().invoke(main, ["noise-level", str(path)])
    assert res.exit_code == 0, res.output
    assert "gaussian: σ = 12." in res.output and "poisson-gaussian: no fit (the noise" in res.output
    res = CliRunner().invoke(main, ["noise-level", str(path), "--noise", "poisson-gaussian"])
    assert res.exit_code == 1 and "does not look Poissonian" in res.output and "Traceback" not in res.output


def test_h_auto_never_reports_an_infinite_psnr(tmp_path, monkeypatch):
    """SURE's risk estimate can come out <= 0 (σ overestimated on clipped 8-bit data): the summary then says
    there is no PSNR estimate instead of "estimated PSNR inf dB"."""
    import nlmeans.sure as module  # denoise() imports choose_h from it when h is "auto"

    real = module.choose_h

    def negative_risk(*args, **kwargs):
        h, p, _ = real(*args, **kwargs)
        return h, p, -2.2e-4

    monkeypatch.setattr(module, "choose_h", negative_risk)
    rng = np.random.default_rng(0)
    src, out = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, np.clip(0.5 + rng.normal(0, 0.08, (48, 48)), 0, 1).astype(np.float32))
    res = CliRunner().invoke(main, ["denoise", str(src), str(out), "--h", "auto"])
    assert res.exit_code == 0, res.output
    assert "inf dB" not in res.output and "no PSNR estimate" in res.output
