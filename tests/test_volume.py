"""3-D volumes and video: the fast kernel against the direct loops in tests/naive.py."""

import numpy as np
import pytest
from naive import nlm_video, nlm_volume

import nlmeans
from nlmeans.volume import denoise_video, denoise_volume

# (shape, patch, search, sigma, h): non-cubic, tiny, color, patch 1, search 1, sigma 0
VOLUME_CASES = [
    ((9, 12, 14), 3, 5, 0.1, 0.3),
    ((6, 10, 7, 2), 3, 3, 0.05, 0.2),
    ((7, 8, 9), 1, 5, 0.0, 0.25),
    ((5, 9, 11), 5, 1, 0.1, 0.3),
    ((10, 8, 8), 3, 7, 0.1, 0.1),
]
# (shape, patch, search, temporal_radius, sigma, h): T smaller than the temporal window, color, R = 0
VIDEO_CASES = [
    ((4, 15, 13, 3), 3, 7, 2, 0.1, 0.3),
    ((6, 12, 16), 5, 5, 1, 0.05, 0.2),
    ((2, 10, 9), 3, 5, 3, 0.0, 0.25),
    ((5, 11, 10), 1, 3, 0, 0.1, 0.3),
]


def _axis(shape):
    return None if len(shape) == 3 else -1


@pytest.mark.parametrize("shape,patch,search,sigma,h", VOLUME_CASES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_volume_matches_reference(rng, shape, patch, search, sigma, h, dtype, tol):
    vol = rng.random(shape)
    ref = nlm_volume(vol, sigma, h, patch, search)
    out = denoise_volume(vol.astype(dtype), sigma, h=h, patch_size=patch, search_size=search,
                         channel_axis=_axis(shape))
    assert out.dtype == dtype and out.shape == vol.shape
    if dtype is np.float64:
        np.testing.assert_allclose(out, ref, rtol=tol, atol=0)
    else:
        np.testing.assert_allclose(out, ref, rtol=0, atol=tol)


@pytest.mark.parametrize("shape,patch,search,radius,sigma,h", VIDEO_CASES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_video_matches_reference(rng, shape, patch, search, radius, sigma, h, dtype, tol):
    frames = rng.random(shape)
    ref = nlm_video(frames, sigma, h, patch, search, radius)
    out = denoise_video(frames.astype(dtype), sigma, temporal_radius=radius, h=h, patch_size=patch,
                        search_size=search, channel_axis=_axis(shape))
    assert out.dtype == dtype and out.shape == frames.shape
    if dtype is np.float64:
        np.testing.assert_allclose(out, ref, rtol=tol, atol=0)
    else:
        np.testing.assert_allclose(out, ref, rtol=0, atol=tol)


def test_video_with_radius_0_is_2d_nlmeans_per_frame(rng):
    frames = rng.random((3, 20, 18, 2))
    kw = dict(h=0.3, patch_size=3, search_size=7, channel_axis=-1)
    out = denoise_video(frames, 0.1, temporal_radius=0, **kw)
    for t in range(3):
        np.testing.assert_allclose(out[t], nlmeans.denoise(frames[t], 0.1, **kw), rtol=1e-12)


def test_references_are_not_trivial(rng):
    flat = np.full((5, 6, 7), 0.3)
    np.testing.assert_allclose(nlm_volume(flat, 0.1, 0.1, 3, 3), flat, rtol=1e-12)
    noisy = 0.5 + rng.normal(0, 0.1, (6, 8, 8))
    assert nlm_volume(noisy, 0.1, 0.2, 3, 5).std() < 0.5 * noisy.std()
    assert nlm_video(noisy, 0.1, 0.2, 3, 5, 2).std() < 0.5 * noisy.std()


@pytest.mark.parametrize("method", ["pixelwise", "nlbayes"])
def test_more_frames_denoise_more(rng, method):
    """A static scene: searching neighbouring frames averages more samples and lowers the error."""
    clean = np.tile(np.linspace(0.2, 0.8, 24), (24, 1))
    frames = clean + rng.normal(0, 0.1, (7, 24, 24))
    kw = dict(patch_size=3, search_size=7, method=method)
    err = [np.abs(denoise_video(frames, 0.1, temporal_radius=R, **kw) - clean).mean() for R in (0, 2)]
    assert err[1] < 0.8 * err[0]


@pytest.mark.parametrize("method", ["pixelwise", "nlbayes"])
def test_uint8_volume_keeps_dtype_and_estimates_sigma(rng, method):
    clean = np.tile(np.linspace(0, 1, 16), (10, 16, 1))
    noisy = nlmeans.add_noise(clean, 0.08, seed=1)
    vol = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
    out = denoise_volume(vol, method=method)
    assert out.dtype == np.uint8 and out.shape == vol.shape
    assert np.abs(out / 255 - clean).mean() < 0.8 * np.abs(vol / 255 - clean).mean()


@pytest.mark.parametrize("call,match", [
    (lambda v: denoise_volume(v[0], 0.1), "3"),
    (lambda v: denoise_volume(v, 0.1, patch_size=4), "patch_size"),
    (lambda v: denoise_volume(v, 0.1, search_size=9), "search_size"),
    (lambda v: denoise_video(v, 0.1, temporal_radius=-1), "temporal_radius"),
    (lambda v: denoise_video(v, -0.1), "sigma"),
])
def test_bad_arguments_are_named(rng, call, match):
    with pytest.raises(ValueError, match=match):
        call(rng.random((6, 8, 8)))


def test_2d_denoise_still_refuses_a_stack_without_channel_axis(rng):
    with pytest.raises(ValueError, match="channel_axis"):
        nlmeans.denoise(rng.random((4, 20, 20)), 0.1)


@pytest.mark.parametrize("flag,extra", [("--volume", []), ("--video", ["--temporal-radius", "1"])])
def test_cli_reads_and_writes_multipage_tiff(rng, tmp_path, flag, extra):
    import tifffile
    from click.testing import CliRunner

    from nlmeans.cli import main

    stack = (rng.random((5, 24, 30)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", stack)
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "in.tif"), str(tmp_path / "out.tif"), flag,
                                    "--sigma", "20", "--h", "10", "--patch", "3", "--search", "5", *extra])
    assert res.exit_code == 0, res.output
    kw = dict(h=10 / 255, patch_size=3, search_size=5)
    ref = (denoise_video(stack, 20 / 255, temporal_radius=1, **kw) if flag == "--video"
           else denoise_volume(stack, 20 / 255, **kw))
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), ref)


@pytest.mark.parametrize("layout", [["in.tif", "out.tif"], ["in.tif", "--out-dir", "outs"]])
def test_cli_refuses_volume_and_video_together(rng, tmp_path, layout):
    import tifffile
    from click.testing import CliRunner

    from nlmeans.cli import main

    tifffile.imwrite(tmp_path / "in.tif", (rng.random((3, 12, 12)) * 255).astype(np.uint8))
    args = [str(tmp_path / a) if a.endswith((".tif", "outs")) else a for a in layout]
    res = CliRunner().invoke(main, ["denoise", *args, "--volume", "--video", "--sigma", "20"])
    assert res.exit_code == 2
    assert "--volume and --video exclude each other" in res.output
    assert not (tmp_path / "out.tif").exists() and not (tmp_path / "outs").exists()


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("kind", ["volume", "video", "2-D"])
def test_tiny_h_is_the_hard_threshold_limit_in_every_kernel(rng, kind, dtype, tol):
    """h = 1e-170 (h² underflows to 0): every kernel takes its clamped weight constants from one function,
    so 3-D, video and 2-D all give the limit h -> 0+ of the weights (1 for patches with d² <= 2σ², 0 for
    the others: a finite, non-trivial average), not a ZeroDivisionError or NaN."""
    sigma, h, patch, search = 0.1, 1e-170, 3, 5
    # blocks of one level each with noise below the threshold: the patches inside a block pass it, edges not
    clean = np.kron(rng.random((2, 3, 3)), np.ones((4, 4, 4)))[:6, :10, :11]
    vol = clean + rng.uniform(-0.02, 0.02, clean.shape)
    if kind == "volume":
        ref = nlm_volume(vol, sigma, 0.0, patch, search)
        out = denoise_volume(vol.astype(dtype), sigma, h=h, patch_size=patch, search_size=search)
    elif kind == "video":
        ref = nlm_video(vol, sigma, 0.0, patch, search, 1)
        out = denoise_video(vol.astype(dtype), sigma, temporal_radius=1, h=h, patch_size=patch,
                            search_size=search)
    else:
        from naive import nlm_pixelwise

        vol, ref = vol[0], nlm_pixelwise(vol[0], sigma, 0.0, patch, search)
        out = nlmeans.denoise(vol.astype(dtype), sigma, h=h, patch_size=patch, search_size=search,
                              method="pixelwise")
    assert np.isfinite(out).all()
    assert np.abs(ref - vol).max() > 0.01  # the limit averages: not the identity, not black
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol)
