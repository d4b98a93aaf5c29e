"""Noise models on volumes and video (denoise_volume / denoise_video ``noise=``, ``gain=``): against the 2-D
building blocks composed by hand, integer stacks, parameters estimated, slabs == whole, errors, the CLI."""

import subprocess
import sys

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

import nlmeans
from nlmeans import presets
from nlmeans._validate import from_float, to_float
from nlmeans.cli import main
from nlmeans.noise_models import gat, gat_inverse, rician_dark_slices, rician_vst, rician_vst_inverse

SHAPE = (10, 36, 36)


def _clean(shape=SHAPE, seed=1):
    """A smooth-plus-edges volume on [0, 1] with a dark background (MRI-like)."""
    z, y, x = (np.linspace(-1, 1, n) for n in shape)
    z, y, x = np.meshgrid(z, y, x, indexing="ij")
    ball = (x**2 + y**2 + (0.8 * z) ** 2 < 0.6).astype(float)
    rng = np.random.default_rng(seed)
    return np.clip(ball * (0.5 + 0.3 * np.sin(3 * x + 2 * y)) + 0.02 * ball * rng.random(shape), 0, 1)


def _rician(clean, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.abs(clean + sigma * rng.standard_normal(clean.shape) + 1j * sigma * rng.standard_normal(clean.shape))


def _compose(x, forward, inverse, run, scale_for=lambda s: 1.0, work=np.float64):
    t = forward(x)
    lo, span = float(t.min()), float(t.max() - t.min())
    sigma = 1.0 / span
    scale = scale_for(sigma)
    out = run(((t - lo) / span * scale).astype(work), sigma * scale)
    return inverse(np.asarray(out, dtype=np.float64) / scale * span + lo)


def _rician_scale(sigma):
    return max(1.0, presets.RICIAN_NLBAYES_SIGMA_255 / 255.0 / sigma)


def _rician_volume_inside(v, s, **kw):
    """What a Rician volume runs on its stabilised form: NL-Bayes's video preset along Z."""
    return nlmeans.denoise_video(v, s, temporal_radius=presets.RICIAN_VOLUME_SLICE_RADIUS, **kw)


STACKS = {
    "volume": lambda x, s, **kw: nlmeans.denoise_volume(x, s, **kw),
    "video": lambda x, s, **kw: nlmeans.denoise_video(x, s, temporal_radius=1, **kw),
}


@pytest.mark.parametrize("kind", list(STACKS))
def test_rician_is_the_vst_the_stack_denoiser_the_inverse_and_the_dark_step(kind):
    run = STACKS[kind]
    clean = _clean()
    sigma = 0.08
    noisy = _rician(clean, sigma)
    inside = _rician_volume_inside if kind == "volume" else run
    expected = _compose(noisy, lambda v: rician_vst(v, sigma), lambda d: rician_vst_inverse(d, sigma), inside,
                        _rician_scale)
    # then the dark step of 2-D images, slice by slice
    expected = rician_dark_slices(nlmeans.denoise, noisy, expected, sigma, 0, None)
    got = run(noisy, sigma, noise="rician")
    assert got.dtype == noisy.dtype and got.shape == noisy.shape
    assert np.array_equal(got, expected)
    assert nlmeans.psnr(clean, got) > nlmeans.psnr(clean, noisy) + 6


def test_rician_volume_pixelwise_runs_the_volume_method_unscaled():
    clean = _clean()
    sigma = 0.08
    noisy = _rician(clean, sigma)
    expected = _compose(noisy, lambda v: rician_vst(v, sigma), lambda d: rician_vst_inverse(d, sigma),
                        lambda v, s: nlmeans.denoise_volume(v, s, method="pixelwise"))
    expected = rician_dark_slices(nlmeans.denoise, noisy, expected, sigma, 0, None)
    assert np.array_equal(nlmeans.denoise_volume(noisy, sigma, noise="rician", method="pixelwise"), expected)


@pytest.mark.parametrize("kind", list(STACKS))
@pytest.mark.parametrize("noise, read", [("poisson", None), ("poisson-gaussian", 2.0)])
def test_poisson_models_are_the_gat_the_stack_denoiser_and_the_inverse(kind, noise, read):
    run = STACKS[kind]
    gain = 2.0
    clean = 40.0 + 60.0 * _clean()  # a mean count above 16: one pass
    rng = np.random.default_rng(3)
    noisy = gain * rng.poisson(clean / gain) + (0 if read is None else read * rng.standard_normal(clean.shape))
    expected = _compose(noisy, lambda v: gat(v, gain, read or 0.0), lambda d: gat_inverse(d, gain, read or 0.0),
                        lambda v, s: run(v, s))
    got = run(noisy, read, noise=noise, gain=gain)
    assert np.array_equal(got, expected)
    assert np.mean((got - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)


def test_low_counts_iterate_and_beat_one_pass():
    clean = 0.5 + 3.0 * _clean((8, 64, 64))  # mean count ~1: binned passes
    counts = np.random.default_rng(4).poisson(clean).astype(np.uint16)
    got = nlmeans.denoise_volume(counts.astype(np.float64), noise="poisson", gain=1.0)
    one_pass = _compose(counts.astype(np.float64), gat, gat_inverse, lambda v, s: nlmeans.denoise_volume(v, s))
    assert np.mean((got - clean) ** 2) < np.mean((one_pass - clean) ** 2)


def test_integer_stacks_follow_the_2d_rules():
    clean = _clean()
    sigma_255 = 20.0
    noisy8 = np.clip(np.rint(_rician(clean, sigma_255 / 255) * 255), 0, 255).astype(np.uint8)
    # Rician: integers scaled to [0, 1], σ on that scale
    got = nlmeans.denoise_volume(noisy8, sigma_255 / 255, noise="rician")
    s = sigma_255 / 255
    expected = _compose(to_float(noisy8, np.float64), lambda v: rician_vst(v, s),
                        lambda d: rician_vst_inverse(d, s), _rician_volume_inside, _rician_scale,
                        work=np.float32)
    expected = rician_dark_slices(nlmeans.denoise, to_float(noisy8, np.float64), expected, s, 0, None)
    assert got.dtype == np.uint8 and np.array_equal(got, from_float(expected, np.uint8))
    # Poisson: counts in their own units, rounded and clipped
    counts = np.random.default_rng(5).poisson(30 + 50 * clean).astype(np.uint16)
    got = nlmeans.denoise_volume(counts, noise="poisson", gain=1.0)
    expected = _compose(counts.astype(np.float64), gat, gat_inverse, lambda v, t: nlmeans.denoise_volume(v, t),
                        work=np.float32)
    assert got.dtype == np.uint16 and np.array_equal(got, np.rint(expected).astype(np.uint16))


def _sampled_slices(stack):
    """The slices the stack estimators read: up to 8, evenly spaced (nlmeans.volume.SIGMA_SLICES)."""
    picks = np.unique(np.linspace(0, stack.shape[0] - 1, min(8, stack.shape[0])).round().astype(int))
    return stack[picks]


def test_parameters_left_out_are_fitted_on_slices():
    clean = _clean((12, 64, 64))
    sigma = 0.06
    noisy = _rician(clean, sigma)
    est = nlmeans.estimate_noise(_sampled_slices(noisy), noise="rician", channel_axis=0)
    assert abs(est.sigma - sigma) < 0.1 * sigma
    assert np.array_equal(nlmeans.denoise_volume(noisy, noise="rician"),
                          nlmeans.denoise_volume(noisy, est.sigma, noise="rician"))
    ramp = np.broadcast_to(np.linspace(0, 1, 64), (12, 64, 64))  # no texture: the noise-level fit is exact
    counts = np.random.default_rng(6).poisson(20 + 60 * ramp).astype(np.float64)
    est = nlmeans.estimate_noise(_sampled_slices(counts), noise="poisson", channel_axis=0)
    assert abs(est.gain - 1) < 0.1
    assert np.array_equal(nlmeans.denoise_video(counts, noise="poisson"),
                          nlmeans.denoise_video(counts, noise="poisson", gain=est.gain))


def test_channels_are_estimated_and_denoised_together():
    clean = np.stack([_clean(), 0.7 * _clean(seed=2)], axis=-1)
    sigma = 0.07
    noisy = _rician(clean, sigma)
    got = nlmeans.denoise_volume(noisy, sigma, noise="rician", channel_axis=-1)
    expected = _compose(noisy, lambda v: rician_vst(v, sigma), lambda d: rician_vst_inverse(d, sigma),
                        lambda v, s: _rician_volume_inside(v, s, channel_axis=-1), _rician_scale)
    expected = rician_dark_slices(nlmeans.denoise, noisy, expected, sigma, 0, -1)  # slices (Y, X, C)
    assert np.array_equal(got, expected)
    chw = np.concatenate([np.moveaxis(p, -1, 0) for p in _sampled_slices(noisy)])
    est = nlmeans.estimate_noise(chw, noise="rician", channel_axis=0)
    assert np.array_equal(nlmeans.denoise_volume(noisy, noise="rician", channel_axis=-1),
                          nlmeans.denoise_volume(noisy, est.sigma, noise="rician", channel_axis=-1))


class _Store:
    """An array-like that only slices (as a zarr array): the slab path may not use it as an ndarray."""

    def __init__(self, array):
        self.array = array
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, index):
        return self.array[index].copy()

    def __setitem__(self, index, value):
        self.array[index] = value


@pytest.mark.parametrize("kind", list(STACKS))
@pytest.mark.parametrize("noise", ["rician", "poisson", "poisson-gaussian"])
def test_slabs_give_the_same_bits(kind, noise):
    run = STACKS[kind]
    clean = _clean((14, 32, 32))
    if noise == "rician":
        noisy = np.clip(np.rint(_rician(clean, 0.08) * 65535), 0, 65535).astype(np.uint16)
        sigma, gain = None, None  # estimated: the same slices read in slabs
    else:
        noisy = np.random.default_rng(7).poisson(30 + 60 * clean).astype(np.uint16)
        sigma, gain = (None, 1.0) if noise == "poisson" else (1.5, None)
    whole = run(noisy, sigma, noise=noise, gain=gain)
    in_slabs = run(noisy, sigma, noise=noise, gain=gain, slab_slices=3)
    assert np.array_equal(whole, in_slabs)
    out = _Store(np.zeros_like(noisy))
    returned = run(_Store(noisy), sigma, noise=noise, gain=gain, out=out, slab_slices=5)
    assert returned is out and np.array_equal(out.array, whole)


def test_slabs_with_channels_and_settings():
    clean = np.stack([_clean((12, 24, 24)), _clean((12, 24, 24), seed=3)], axis=1)  # (Z, C, Y, X)
    noisy = _rician(clean, 0.05).astype(np.float32)
    whole, used = nlmeans.denoise_volume(noisy, 0.05, noise="rician", channel_axis=1, return_settings=True)
    slabs, used_slabs = nlmeans.denoise_volume(noisy, 0.05, noise="rician", channel_axis=1, slab_slices=2,
                                               return_settings=True)
    assert whole.dtype == np.float32 and np.array_equal(whole, slabs) and used == used_slabs


def test_low_count_poisson_is_refused_in_slabs():
    counts = np.random.default_rng(8).poisson(2.0, (8, 40, 40)).astype(np.uint16)
    with pytest.raises(ValueError, match="several passes.*in memory only"):
        nlmeans.denoise_volume(counts, noise="poisson", gain=1.0, slab_slices=4)


@pytest.mark.parametrize("call, message", [
    (dict(noise="poisson", gain=-1.0), "gain"),
    (dict(noise="poisson", gain=0.0), "gain"),
    (dict(noise="speckle"), "allowed: 'gaussian', 'poisson', 'poisson-gaussian', 'rician'"),
    (dict(noise="rician", sigma=np.full(SHAPE, 0.1)), "sigma must be one number with noise='rician'"),
    (dict(noise="rician", sigma=[0.1, 0.2]), "sigma must be one number"),
    (dict(noise="rician", sigma=-0.1), "sigma"),
    (dict(noise="poisson", sigma=0.1), "noise='poisson' has no sigma"),
    (dict(noise="rician", gain=2.0), "gain is a parameter of noise='poisson' and 'poisson-gaussian'"),
    (dict(gain=2.0), "gain is a parameter"),
    (dict(noise="rician", sigma=0.1, method="patchwise"), "method='patchwise' is not known"),
])
@pytest.mark.parametrize("kind", list(STACKS))
def test_bad_parameters_are_named(kind, call, message):
    call = dict(call)
    sigma = call.pop("sigma", None)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        STACKS[kind](_clean(), sigma, **call)


def test_integer_stack_with_a_large_rician_sigma_is_named():
    with pytest.raises(ValueError, match="sigma"):
        nlmeans.denoise_volume(np.zeros(SHAPE, np.uint8), 20, noise="rician")


def _tiff(tmp_path, array, name):
    path = tmp_path / name
    tifffile.imwrite(path, array)
    return path


def test_cli_rician_volume_matches_the_api(tmp_path):
    noisy = np.clip(np.rint(_rician(_clean(), 20 / 255) * 255), 0, 255).astype(np.uint8)
    src = _tiff(tmp_path, noisy, "mri.tif")
    out = tmp_path / "out.tif"
    res = CliRunner().invoke(main, ["denoise", str(src), str(out), "--volume", "--noise", "rician",
                                    "--sigma", "20"])
    assert res.exit_code == 0, res.output
    assert "noise rician, σ = 20.00/255 (given)" in res.output
    np.testing.assert_array_equal(tifffile.imread(out), nlmeans.denoise_volume(noisy, 20 / 255, noise="rician"))
    slabs = tmp_path / "slabs.tif"
    res = CliRunner().invoke(main, ["denoise", str(src), str(slabs), "--volume", "--noise", "rician",
                                    "--sigma", "20", "--slab-slices", "4"])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(tifffile.imread(slabs), tifffile.imread(out))


def test_cli_poisson_video_with_gain_and_estimated(tmp_path):
    counts = np.random.default_rng(9).poisson(30 + 60 * _clean()).astype(np.uint16)
    src = _tiff(tmp_path, counts, "counts.tif")
    out = tmp_path / "out.tif"
    res = CliRunner().invoke(main, ["denoise", str(src), str(out), "--video", "--noise", "poisson", "--gain", "1"])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(tifffile.imread(out), nlmeans.denoise_video(counts, noise="poisson", gain=1.0))
    est = tmp_path / "est.tif"
    res = CliRunner().invoke(main, ["denoise", str(src), str(est), "--volume", "--noise", "poisson-gaussian"])
    assert res.exit_code == 0, res.output
    assert "(estimated)" in res.output
    np.testing.assert_array_equal(tifffile.imread(est), nlmeans.denoise_volume(counts, noise="poisson-gaussian"))


def test_cli_refusals_are_one_error_line(tmp_path):
    counts = np.random.default_rng(10).poisson(30, SHAPE).astype(np.uint16)
    src = _tiff(tmp_path, counts, "c.tif")
    out = tmp_path / "o.tif"
    runner = CliRunner()
    res = runner.invoke(main, ["denoise", str(src), str(out), "--volume", "--noise", "poisson", "--sigma", "3"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert [line for line in res.output.splitlines() if line.startswith("Error:")] == [
        "Error: noise='poisson' has no sigma (use noise='poisson-gaussian' for read noise)"]
    res = runner.invoke(main, ["denoise", str(src), str(out), "--volume", "--noise", "rician", "--guide",
                               str(src)])
    assert res.exit_code == 2 and "Error: --noise rician (or --gain) is not supported with --guide" in res.output
    assert not out.exists()


def test_cli_subprocess_rician_volume(tmp_path):
    noisy = np.clip(np.rint(_rician(_clean(), 0.08) * 65535), 0, 65535).astype(np.uint16)
    src = _tiff(tmp_path, noisy, "mri.tif")
    out = tmp_path / "out.tif"
    proc = subprocess.run([sys.executable, "-m", "nlmeans", "denoise", str(src), str(out), "--volume", "--noise",
                           "rician"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "noise rician" in proc.stdout + proc.stderr and "(estimated)" in proc.stdout + proc.stderr
    np.testing.assert_array_equal(tifffile.imread(out), nlmeans.denoise_volume(noisy, noise="rician"))
