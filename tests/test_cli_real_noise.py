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


def _stack_file(tmp_path, rng, shape, sigmas, dtype=np.uint8):
    """A smooth stack (slices of a ramp) with Gaussian noise of ``sigmas`` (one per channel, 0–255 scale),
    clipped and saved as a multi-page TIFF; returns its path and the array."""
    ramp = np.linspace(0.2, 0.8, shape[2])[None, None, :] * np.ones(shape[:3])
    clean = ramp if len(shape) == 3 else ramp[..., None] * np.ones(shape[3])
    noisy = clean + rng.normal(size=clean.shape) * (np.asarray(sigmas) / 255)
    data = np.rint(np.clip(noisy, 0, 1) * 255).astype(dtype)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, photometric="rgb" if len(shape) == 4 else None)
    return path, data


def test_noise_level_of_a_stack_is_what_denoise_uses(tmp_path):
    """``noise-level --volume``: the σ that ``denoise --volume`` estimates and prints (the mean over up to 8
    slices), the per-channel σ near the truth, and the Poisson–Gaussian fit that ``--noise`` runs would use."""
    rng = np.random.default_rng(5)
    path, data = _stack_file(tmp_path, rng, (12, 48, 64, 3), (5, 20, 35))
    res = CliRunner().invoke(main, ["noise-level", str(path), "--volume"])
    assert res.exit_code == 0, res.output
    assert "volume 12×48×64×3, uint8; 8 slices sampled" in res.output
    used = nlmeans.denoise_volume(data, channel_axis=-1, return_settings=True)[1]
    assert f"gaussian: σ = {used.sigma * 255:.2f}/255" in res.output
    per = [float(v) for v in res.output.split("per channel: ")[1].split(")")[0].split(", ")]
    np.testing.assert_allclose(per, [5, 20, 35], rtol=0.1)
    out = CliRunner().invoke(main, ["denoise", str(path), str(tmp_path / "o.tif"), "--volume"])
    assert f"σ = {used.sigma * 255:.2f}/255 (estimated)" in out.output, out.output


def test_noise_level_of_a_count_stack(tmp_path):
    """Poisson counts in a video: the gain fitted on the sampled frames, close to the truth (1)."""
    rng = np.random.default_rng(6)
    counts = rng.poisson(np.linspace(5, 60, 64)[None, None, :] * np.ones((10, 48, 64))).astype(np.uint16)
    path = tmp_path / "counts.tif"
    tifffile.imwrite(path, counts)
    res = CliRunner().invoke(main, ["noise-level", str(path), "--video", "--noise", "poisson"])
    assert res.exit_code == 0, res.output
    gain = float(res.output.split("gain = ")[1].split(" ")[0])
    assert abs(gain - 1) < 0.1 and "video 10×48×64, uint16; 8 frames sampled" in res.output


def test_noise_level_stack_errors_are_one_line(tmp_path):
    rng = np.random.default_rng(7)
    path, _ = _stack_file(tmp_path, rng, (6, 32, 32), (10,))
    res = CliRunner().invoke(main, ["noise-level", str(path)])  # a stack without saying what it is
    assert res.exit_code != 0 and "--volume" in res.output and "--video" in res.output
    res = CliRunner().invoke(main, ["noise-level", str(path), "--volume", "--video"])
    assert res.exit_code == 2 and "exclude each other" in res.output
    single = tmp_path / "single.tif"
    tifffile.imwrite(single, np.zeros((32, 32), np.uint8))
    res = CliRunner().invoke(main, ["noise-level", str(single), "--volume"])
    assert res.exit_code != 0 and "not a stack" in res.output and "Traceback" not in res.output
