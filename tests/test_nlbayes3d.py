"""NL-Bayes on volumes and video: each stage of the 3-D kernel against the direct reference in tests/naive.py,
and the behaviour of ``denoise_volume`` / ``denoise_video`` with their default method.

Test stacks are quantised to multiples of 1/16, so patch distances are exact sums in float32 and float64 and
ties (reflect padding makes mirrored patches tie exactly) are broken the same way by kernel and reference.
"""

import numpy as np
import pytest
from naive import nlbayes3_stage

import nlmeans
from nlmeans import _config
from nlmeans.kernels.nlbayes import _nlbayes3_pass
from nlmeans.nlbayes import _nlbayes_pass, nlbayes_3d_chw

# (shape (C, Z, H, W), patch, patch_z, search, search_z, n_similar, step, step_z, video, gamma, band_slices)
# Groups hold at least twice the patch's voxel count D, as the presets do: with fewer, or with a window
# spanning most of a small image, some groups near a reflected boundary (mirrored patches) have an
# ill-conditioned covariance (condition number up to 3e16 measured), where the kernel's fallback rule and
# the reference's plain solve part ways.
CASES = [
    ((1, 8, 10, 9), 3, 3, 5, 3, 60, 2, 2, False, 0.0, 8),
    ((2, 9, 8, 11), 3, 1, 5, 5, 20, 2, 1, True, 1.05, 8),   # video, 2-D patches, 2 channels
    ((1, 20, 7, 8), 3, 3, 5, 3, 60, 2, 2, False, 0.5, 4),   # five bands of 4 slices
    ((3, 10, 9, 9), 3, 3, 5, 5, 60, 3, 2, True, 1.05, 4),   # video, 3-D patches, bands of 4 frames
    ((1, 12, 9, 10), 5, 3, 7, 5, 150, 3, 3, False, 0.0, 6),  # 5×5×3 patches (75 voxels)
    ((1, 7, 20, 21), 3, 3, 17, 3, 90, 3, 3, True, 1.05, 8),  # 17 candidates a row: rounded up to 32 lanes
]


def _quantised(rng, shape):
    return rng.integers(0, 16, shape) / 16.0


def _kernel_stage(image, basic, stage, sigma, case, beta, gamma, dtype):
    _, patch, patch_z, search, search_z, n_sim, step, step_z, video, _, band_slices = case
    f, fz, r, rz = patch // 2, patch_z // 2, search // 2, search_z // 2
    zpad = fz if video else rz + fz
    widths = ((0, 0), (zpad, zpad), (r + f, r + f), (r + f, r + f))
    vp = np.pad(image.astype(dtype), widths, mode="reflect")
    bp = vp if basic is None else np.pad(basic.astype(dtype), widths, mode="reflect")
    out = np.empty(image.shape, dtype=dtype)
    t = dtype
    _nlbayes3_pass(vp, bp, stage, zpad, fz, f, rz, r, video, n_sim, step, step_z, t(sigma * sigma), t(beta),
                   t(gamma), band_slices, out)
    return out


def _reference_stage(image, basic, stage, sigma, case, beta, gamma):
    _, patch, patch_z, search, search_z, n_sim, step, step_z, video, _, band_slices = case
    return nlbayes3_stage(image, basic, stage, sigma, patch, patch_z, search, search_z, n_sim, beta, gamma, step,
                          step_z, video, band_slices)


@pytest.mark.parametrize("stage", [1, 2])
@pytest.mark.parametrize("case", CASES)
def test_stage_matches_reference(rng, stage, case):
    shape, gamma = case[0], case[9]
    image = _quantised(rng, shape)
    basic = _quantised(rng, shape) if stage == 2 else None
    g = gamma if stage == 1 else gamma / 20  # stage 2 tests the basic group's variance, near 0 if flat
    ref = _reference_stage(image, basic, stage, 0.1, case, 1.0, g)
    out64 = _kernel_stage(image, basic, stage, 0.1, case, 1.0, g, np.float64)
    np.testing.assert_allclose(out64, ref, rtol=1e-10, atol=1e-12)
    out32 = _kernel_stage(image, basic, stage, 0.1, case, 1.0, g, np.float32)
    # float32: the group models' solves lose a few digits; 1e-4 of the range is far below any visible change
    assert np.abs(out32 - ref).max() <= 1e-4 * (image.max() - image.min())


def test_driver_is_stage_one_then_stage_two(rng):
    """``nlbayes_3d_chw`` with per-stage pairs: stage 1 with the first values, stage 2 on its result."""
    image = _quantised(rng, (1, 9, 10, 10))
    out = nlbayes_3d_chw(image, 0.1, patch_size=3, patch_z=(3, 1), search_size=5, search_z=(3, 5),
                         n_similar=(20, 15), beta=(1.0, 1.2), gamma=(1.05, 0.02), step=2, step_z=(2, 1),
                         video=True, band_slices=4)
    c1 = ((1, 9, 10, 10), 3, 3, 5, 3, 20, 2, 2, True, 1.05, 4)
    c2 = ((1, 9, 10, 10), 3, 1, 5, 5, 15, 2, 1, True, 0.02, 4)
    basic = _kernel_stage(image, None, 1, 0.1, c1, 1.0, 1.05, np.float64)
    final = _kernel_stage(image, basic, 2, 0.1, c2, 1.2, 0.02, np.float64)
    np.testing.assert_allclose(out, final, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("stage", [1, 2])
def test_one_slice_patches_and_windows_are_the_2d_kernel_per_slice(rng, stage):
    """With patch_z = search_z = 1 every group lies in one slice: the 3-D kernel is the 2-D one on each slice
    (an independent check of the shared model code: the 2-D kernel has its own tests)."""
    image = _quantised(rng, (2, 5, 14, 13))
    basic = _quantised(rng, image.shape) if stage == 2 else None
    case = (image.shape, 3, 1, 7, 1, 20, 2, 1, False, 0.5, 8)
    out3 = _kernel_stage(image, basic, stage, 0.1, case, 1.0, 0.5, np.float64)
    for z in range(image.shape[1]):
        vp = np.pad(image[:, z], ((0, 0), (4, 4), (4, 4)), mode="reflect")
        bp = vp if basic is None else np.pad(basic[:, z], ((0, 0), (4, 4), (4, 4)), mode="reflect")
        out2 = np.empty(image[:, z].shape)
        _nlbayes_pass(vp, bp, stage, 1, 3, 20, 2, 0.01, 1.0, 0.5, _config.BAND_ROWS, out2)
        np.testing.assert_allclose(out3[:, z], out2, rtol=1e-13, atol=1e-15)


def test_constant_stack_stays_constant():
    stack = np.full((3, 8, 12, 12), 0.4)
    for video in (False, True):
        out = nlbayes_3d_chw(stack, 0.05, patch_size=3, patch_z=3, search_size=5, search_z=5, n_similar=(30, 20),
                             beta=(1.0, 1.2), gamma=(1.05, 0.02), step=2, step_z=2, video=video)
        np.testing.assert_allclose(out, stack, atol=1e-12)


def _phantom(n=24):
    """A small volume: two boxes and a ball of different intensities, a sinusoidal ripple on the background."""
    z, y, x = np.mgrid[0:n, 0:n, 0:n].astype(float)
    vol = 0.3 + 0.05 * np.sin(x / 2.0) * np.cos(z / 3.0)
    vol[4:12, 5:19, 3:10] = 0.75
    vol[14:21, 2:9, 12:22] = 0.1
    vol[(z - 15) ** 2 + (y - 15) ** 2 + (x - 15) ** 2 < 30] = 0.9
    return vol


def _moving_video(image, frames=8, side=40):
    """A crop of ``image`` (around the camera man / the astronaut's face) through a window moving by (1, 2)
    pixels a frame."""
    return np.stack([image[150 + t: 150 + t + side, 180 + 2 * t: 180 + 2 * t + side] for t in range(frames)])


def test_volume_default_is_nlbayes_and_beats_pixelwise():
    clean = _phantom()
    noisy = nlmeans.add_noise(clean, 20 / 255, seed=3)
    out = nlmeans.denoise_volume(noisy, 20 / 255)
    pixelwise = nlmeans.denoise_volume(noisy, 20 / 255, method="pixelwise")
    # measured: noisy 22.1 dB, pixelwise ~31.5, NL-Bayes ~33.5
    assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, noisy) + 8
    assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, pixelwise) + 0.5
    np.testing.assert_array_equal(out, nlmeans.denoise_volume(noisy, 20 / 255, method="nlbayes"))


@pytest.mark.parametrize("color", [False, True])
def test_video_default_is_nlbayes_and_beats_pixelwise(camera, astronaut, color):
    clean = _moving_video(astronaut if color else camera)
    axis = -1 if color else None
    noisy = nlmeans.add_noise(clean, 25 / 255, seed=4)
    out = nlmeans.denoise_video(noisy, 25 / 255, channel_axis=axis)
    pixelwise = nlmeans.denoise_video(noisy, 25 / 255, channel_axis=axis, method="pixelwise")
    assert out.shape == clean.shape
    assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, noisy) + 6
    assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, pixelwise) + 0.5


def test_temporal_radius_zero_keeps_groups_in_their_frame(rng):
    """temporal_radius=0: groups come from the reference's own frame, but 3-frame patches reach one frame on
    each side: a change in the last frame (7) reaches frames 6 and 5 in stage 1 and two frames further in
    stage 2 (which starts from stage 1's result), not frames 0-2."""
    frames = _quantised(rng, (8, 16, 16))
    out = nlmeans.denoise_video(frames, 0.1, temporal_radius=0)
    changed = frames.copy()
    changed[7] = _quantised(rng, (16, 16))
    out2 = nlmeans.denoise_video(changed, 0.1, temporal_radius=0)
    np.testing.assert_array_equal(out[:3], out2[:3])
    assert not np.array_equal(out[6], out2[6])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("video", [False, True])
def test_dtype_and_shape_round_trip(rng, dtype, video):
    fn = nlmeans.denoise_video if video else nlmeans.denoise_volume
    for shape, axis in (((6, 10, 12), None), ((6, 10, 12, 3), -1), ((3, 6, 10, 12), 0)):
        if np.issubdtype(dtype, np.integer):
            data = rng.integers(0, np.iinfo(dtype).max, shape).astype(dtype)
        else:
            data = rng.random(shape).astype(dtype)
        out = fn(data, 0.1, channel_axis=axis)
        assert out.dtype == data.dtype and out.shape == data.shape
        assert np.isfinite(out.astype(np.float64)).all()


def test_channel_axis_is_honoured(rng):
    """The same stack with channels last or first gives the same result."""
    data = rng.random((6, 10, 12, 3))
    last = nlmeans.denoise_volume(data, 0.1, channel_axis=-1)
    first = nlmeans.denoise_volume(np.moveaxis(data, -1, 0), 0.1, channel_axis=0)
    np.testing.assert_allclose(np.moveaxis(first, 0, -1), last, rtol=1e-12, atol=1e-12)


def test_tiny_stacks_are_covered(rng):
    for shape in ((1, 5, 5), (2, 3, 9), (3, 3, 3), (7, 1, 4)):
        for fn in (nlmeans.denoise_volume, nlmeans.denoise_video):
            out = fn(0.5 + rng.normal(0, 0.1, shape), 0.1)
            assert out.shape == shape and np.isfinite(out).all()


@pytest.mark.parametrize("fn", [nlmeans.denoise_volume, nlmeans.denoise_video])
def test_method_keyword(fn, rng):
    data = rng.random((6, 10, 10))
    with pytest.raises(ValueError, match="h is not used by method='nlbayes'"):
        fn(data, 0.1, method="nlbayes", h=0.1)
    with pytest.raises(ValueError, match="method='bm4d' is not known; allowed: nlbayes, pixelwise"):
        fn(data, 0.1, method="bm4d")
    # h alone means NL-means (it is an NL-means parameter), as in nlmeans.denoise
    np.testing.assert_array_equal(fn(data, 0.1, h=0.08), fn(data, 0.1, h=0.08, method="pixelwise"))
    assert not np.array_equal(fn(data, 0.1), fn(data, 0.1, method="pixelwise"))


def test_sizes_are_checked(rng):
    data = rng.random((6, 10, 10))
    with pytest.raises(ValueError, match="patch_size"):
        nlmeans.denoise_volume(data, 0.1, patch_size=4)
    with pytest.raises(ValueError, match="search_size"):
        nlmeans.denoise_volume(data, 0.1, search_size=9)  # larger than the smallest side (6)
    out = nlmeans.denoise_volume(data, 0.1, patch_size=5, search_size=5)
    assert out.shape == data.shape


def test_result_does_not_depend_on_the_thread_count(rng):
    """Bands of one phase run in parallel; each adds only to slices no other band of its phase touches."""
    import numba

    data = _quantised(rng, (44, 12, 12))  # bands of 10 slices (reach 5): 5 bands, 2-3 per phase
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = nlmeans.denoise_volume(data, 0.1)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(one, nlmeans.denoise_volume(data, 0.1))
