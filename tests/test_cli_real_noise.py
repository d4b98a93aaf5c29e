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
