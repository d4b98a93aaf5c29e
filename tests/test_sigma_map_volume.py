"""σ maps inside the 3-D NL-Bayes kernel (issue #18): each stage against a direct reference of the map's
formulas, both stages through :func:`nlmeans.nlbayes.nlbayes_3d_chw`, a constant map against the scalar kernel,
``denoise_volume`` / ``denoise_video`` with a map in memory and in slabs (bit for bit), and bad maps (per-channel σ
and pixelwise maps in slabs: tests/test_slabs_sigma.py).

Test stacks are quantised to multiples of 1/16 (as in tests/test_nlbayes3d.py), so the noisy distances are
exact in both dtypes and ties break the same way in the kernel and the reference.
"""

import naive
import numpy as np
import pytest

import nlmeans
from nlmeans.kernels.nlbayes import _nlbayes3_pass
from nlmeans.nlbayes import _YUV, nlbayes_3d_chw
from nlmeans.nlm import patch_mean

# ------------------------------------------------------------------------------------ the direct reference


def padded_box_mean_s2(sigma_map, fz, f, zpad, pad):
    """σ̄²: the mean of σ² over the (2fz + 1) × (2f + 1)² patch centred at every voxel of the reflect-padded
    map (``zpad`` slices, ``pad`` rows and columns); centres whose patch leaves the padded map, never used,
    are 0."""
    s2 = np.pad(np.asarray(sigma_map, np.float64) ** 2, ((zpad, zpad), (pad, pad), (pad, pad)), mode="reflect")
    out = np.zeros_like(s2)
    n = (2 * fz + 1) * (2 * f + 1) ** 2
    for z in range(fz, s2.shape[0] - fz):
        for y in range(f, s2.shape[1] - f):
            for x in range(f, s2.shape[2] - f):
                out[z, y, x] = s2[z - fz:z + fz + 1, y - f:y + f + 1, x - f:x + f + 1].sum() / n
    return out


def _map(kind, shape, rng):
    """σ maps (float scale) of a (Z, H, W) stack: halves, a smooth gradient along x and z, random (zeros
    included)."""
    Z, H, W = shape
    if kind == "halves":
        smap = np.full(shape, 0.05)
        smap[:, :, W // 2:] = 0.2
    elif kind == "gradient":
        smap = 0.02 + 0.2 * np.linspace(0, 1, W)[None, None, :] * np.linspace(0.5, 1, Z)[:, None, None]
        smap = np.broadcast_to(smap, shape).copy()
    else:
        smap = rng.uniform(0.0, 0.25, shape) * (rng.random(shape) > 0.1)
    return smap


def _quantised(rng, shape):
    return rng.integers(0, 16, shape) / 16.0


# (shape (C, Z, H, W), patch, patch_z, search, search_z, n_similar, step, step_z, video, gamma, band_slices), as
# tests/test_nlbayes3d.py: groups of at least twice the patch's voxel count
CASES = [
    ((1, 8, 10, 9), 3, 3, 5, 3, 60, 2, 2, False, 1.05, 8),
    ((2, 9, 8, 11), 3, 1, 5, 5, 20, 2, 1, True, 1.05, 8),   # video, 2-D patches, 2 channels
    ((1, 14, 7, 8), 3, 3, 5, 3, 60, 2, 2, False, 0.5, 4),   # bands of 4 slices
    ((1, 10, 9, 9), 3, 3, 5, 5, 60, 3, 2, True, 0.0, 4),    # video, 3-D patches
]


def _zpad(case):
    _, patch, patch_z, search, search_z, *_, video, _, _ = case
    return patch_z // 2 if video else search_z // 2 + patch_z // 2


def _kernel_stage(image, basic, stage, sbar, case, beta, gamma, dtype):
    _, patch, patch_z, search, search_z, n_sim, step, step_z, video, _, band_slices = case
    f, fz, r, rz = patch // 2, patch_z // 2, search // 2, search_z // 2
    zpad = _zpad(case)
    widths = ((0, 0), (zpad, zpad), (r + f, r + f), (r + f, r + f))
    vp = np.pad(image.astype(dtype), widths, mode="reflect")
    bp = vp if basic is None else np.pad(basic.astype(dtype), widths, mode="reflect")
    out = np.empty(image.shape, dtype=dtype)
    _nlbayes3_pass(vp, bp, stage, zpad, fz, f, rz, r, video, n_sim, step, step_z, sbar.astype(dtype), dtype(beta),
                   dtype(gamma), band_slices, out)
    return out


def _reference_stage(image, basic, stage, sbar, case, beta, gamma, dist_dtype=np.float64):
    _, patch, patch_z, search, search_z, n_sim, step, step_z, video, _, band_slices = case
    return naive.nlbayes3_stage(image, basic, stage, None, patch, patch_z, search, search_z, n_sim, beta, gamma,
                                step, step_z, video, band_slices, sbar=sbar, dist_dtype=dist_dtype)


def _sbar(smap, case, grid=None):
    """σ̄² of ``smap`` for ``case``; ``grid``: rounded to multiples of 1 / grid, so that the unbiased distances
    (data on 1/16) are exact in both dtypes: float rounding would break the near-ties of mirrored candidates
    (whose σ̄² differ in the last bit) differently in the kernel and the reference."""
    _, patch, patch_z, search, *_ = case
    sbar = padded_box_mean_s2(smap, patch_z // 2, patch // 2, _zpad(case), search // 2 + patch // 2)
    return sbar if grid is None else np.round(sbar * grid) / grid


@pytest.mark.parametrize("kind", ["halves", "gradient", "random"])
@pytest.mark.parametrize("stage", [1, 2])
@pytest.mark.parametrize("case", CASES)
def test_stage_with_a_map_matches_reference(rng, stage, case, kind):
    shape, gamma = case[0], case[9]
    image = _quantised(rng, shape)
    basic = _quantised(rng, shape) if stage == 2 else None
    g = gamma if stage == 1 else gamma / 20  # stage 2 tests the basic group's variance, near 0 if flat
    sbar = _sbar(_map(kind, shape[1:], rng), case, grid=256)
    ref = _reference_stage(image, basic, stage, sbar, case, 1.0, g)
    out64 = _kernel_stage(image, basic, stage, sbar, case, 1.0, g, np.float64)
    np.testing.assert_allclose(out64, ref, rtol=1e-9, atol=1e-12)
    # float32: the map and the distances rounded as the kernel stores them; the solves lose a few digits
    sbar32 = sbar.astype(np.float32)
    ref32 = _reference_stage(image, basic, stage, sbar32.astype(np.float64), case, 1.0, g, np.float32)
    out32 = _kernel_stage(image, basic, stage, sbar32, case, 1.0, g, np.float32)
    assert np.abs(out32 - ref32).max() <= 1e-4


def test_the_map_changes_groups_and_models(rng):
    """The reference with a two-level map is neither scalar stage at its levels: the map matters."""
    case = CASES[0]
    image = _quantised(rng, case[0])
    ref = _reference_stage(image, None, 1, _sbar(_map("halves", case[0][1:], rng), case), case, 1.0, 1.05)
    for s in (0.05, 0.2):
        flat = _reference_stage(image, None, 1, _sbar(np.full(case[0][1:], s), case), case, 1.0, 1.05)
        assert np.abs(ref - flat).max() > 1e-3


NLB = dict(n_similar=(40, 20), beta=(1.0, 1.2), gamma=(1.05, 0.02), step=2, step_z=2, band_slices=4)


@pytest.mark.parametrize("video", [False, True])
@pytest.mark.parametrize("shape,patch,patch_z,search,search_z", [
    ((1, 9, 11, 10), 3, 3, (5, 3), (3, 5)),
    ((3, 8, 9, 12), 3, (3, 1), 5, 3),
])
def test_nlbayes_3d_chw_runs_the_stages_with_the_box_mean_of_the_map(rng, shape, patch, patch_z, search,
                                                                     search_z, video):
    """nlbayes_3d_chw with a map is the two checked stages, each given σ̄² of its own patch and padding (the
    direct box mean, to float rounding), colour in (Y, U, V) with the one map."""
    image = _quantised(rng, shape)
    smap = _map("gradient", shape[1:], rng)
    out = nlbayes_3d_chw(image, smap, patch_size=patch, patch_z=patch_z, search_size=search, search_z=search_z,
                         video=video, **NLB)
    v = np.einsum("ij,j...->i...", _YUV, image) if shape[0] == 3 else image
    pairs = [(x, x) if np.ndim(x) == 0 else x for x in (patch_z, search, search_z)]
    basic = None
    for k in range(2):
        pz, s, sz = (p[k] for p in pairs)
        # the driver's grids are no wider than a patch
        case = (shape, patch, pz, s, sz, NLB["n_similar"][k], min(NLB["step"], patch), min(NLB["step_z"], pz),
                video, 0.0, NLB["band_slices"])
        f, fz, zpad, pad = patch // 2, pz // 2, _zpad(case), s // 2 + patch // 2
        direct = _sbar(smap, case)
        widths = ((zpad, zpad), (pad, pad), (pad, pad))
        sbar = patch_mean(np.pad(smap**2, widths, mode="reflect"), (pz, patch, patch))
        inner = (slice(fz, -fz or None), slice(f, -f), slice(f, -f))
        np.testing.assert_allclose(sbar[inner], direct[inner], rtol=1e-13, atol=1e-17)
        basic = _kernel_stage(v, basic, k + 1, sbar, case, NLB["beta"][k], NLB["gamma"][k], np.float64)
    ref = np.einsum("ji,j...->i...", _YUV, basic) if shape[0] == 3 else basic
    np.testing.assert_array_equal(out, ref)


def test_box_mean_is_exact_on_constant_boxes(rng):
    values = rng.random((7, 9, 8))
    values[2:7, 3:9, 0:6] = 0.1  # a constant box: exactly 0.1 where the 3×3×3 patch lies inside it
    out = patch_mean(values, (3, 3, 3))
    assert np.all(out[3:6, 4:8, 1:5] == 0.1)
    const = np.full((5, 6, 7), 0.3)
    assert np.array_equal(patch_mean(const, (3, 5, 3)), const)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("video,channels", [(False, 1), (True, 3)])
def test_constant_map_is_the_scalar_kernel_bit_for_bit(rng, dtype, video, channels):
    image = rng.random((channels, 9, 12, 11)).astype(dtype)
    kw = dict(patch_size=3, patch_z=3, search_size=5, search_z=3, video=video, **NLB)
    scalar = nlbayes_3d_chw(image, 0.1, **kw)
    assert np.array_equal(nlbayes_3d_chw(image, np.full((9, 12, 11), 0.1), **kw), scalar)


# ------------------------------------------------------------------------------------ denoise_volume / video


def _phantom(shape=(20, 24, 26)):
    z, y, x = np.mgrid[:shape[0], :shape[1], :shape[2]].astype(float)
    vol = 0.3 + 0.05 * np.sin(x / 2.0) * np.cos(z / 3.0)
    vol[3:14, 4:18, 3:12] = 0.75
    vol[(z - 12) ** 2 + (y - 14) ** 2 + (x - 17) ** 2 < 30] = 0.9
    return vol


def _two_halves(shape):
    smap = np.full(shape, 10 / 255)
    smap[..., shape[-1] // 2:] = 40 / 255
    return smap


def test_volume_map_runs_the_kernel_and_beats_the_scalar_call():
    clean = _phantom()
    smap = _two_halves(clean.shape)
    noisy = clean + np.random.default_rng(5).standard_normal(clean.shape) * smap
    out = nlmeans.denoise_volume(noisy, smap)
    # the kernel route: nlbayes_3d_chw with the map and the presets at the map's RMS σ
    rms = float(np.sqrt(np.mean(smap**2)))
    _, used = nlmeans.denoise_volume(noisy, rms, return_settings=True)
    kernel = nlbayes_3d_chw(noisy[None], smap, video=False, band_slices=nlmeans.presets.NLBAYES_BAND_SLICES,
                            **used.nlbayes)[0]
    assert np.array_equal(out, kernel)
    assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, nlmeans.denoise_volume(noisy, rms)) + 0.5
    # a (Y, X) map serves every slice: the same as that map stacked
    assert np.array_equal(nlmeans.denoise_volume(noisy, smap[0]), out)


def test_pixelwise_map_keeps_the_per_level_route(rng):
    clean = _phantom((8, 20, 22))
    smap = _two_halves(clean.shape)
    noisy = clean + rng.standard_normal(clean.shape) * smap
    out = nlmeans.denoise_volume(noisy, smap, method="pixelwise")
    low = nlmeans.denoise_volume(noisy, 10 / 255, method="pixelwise")
    high = nlmeans.denoise_volume(noisy, 40 / 255, method="pixelwise")
    assert np.allclose(out, np.where(smap == 10 / 255, low, high))


def _slab_maps(shape):
    """Maps that exercise the slabs: halves, a gradient along z, and a map that is 0 in the first slices (a
    slab whose map is all zero still runs the kernel, as the whole stack does there)."""
    z = np.arange(shape[0])[:, None, None]
    gradient = np.broadcast_to(0.02 + 0.15 * z / shape[0] + 0.05 * np.linspace(0, 1, shape[2]), shape).copy()
    zero_top = _two_halves(shape)
    zero_top[:10] = 0.0
    return {"halves": _two_halves(shape), "gradient": gradient, "zero-top": zero_top}


@pytest.mark.parametrize("kind", ["halves", "gradient", "zero-top"])
def test_volume_slabs_with_a_map_are_the_whole_stack(rng, kind, tmp_path):
    clean = _phantom((40, 16, 18))
    smap = _slab_maps(clean.shape)[kind]
    noisy = (clean + rng.standard_normal(clean.shape) * smap).astype(np.float32)
    whole = nlmeans.denoise_volume(noisy, smap)
    for slab in (1, 9, 17):
        assert np.array_equal(nlmeans.denoise_volume(noisy, smap, slab_slices=slab), whole), slab
    # out= and a map that is itself a memmap (read slab by slab), the stack a memmap too
    mm = np.lib.format.open_memmap(tmp_path / "map.npy", mode="w+", dtype=np.float64, shape=smap.shape)
    mm[:] = smap
    stack = np.lib.format.open_memmap(tmp_path / "in.npy", mode="w+", dtype=np.float32, shape=noisy.shape)
    stack[:] = noisy
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=noisy.shape)
    assert nlmeans.denoise_volume(stack, mm, out=out, slab_slices=9) is out
    assert np.array_equal(np.asarray(out), whole)


def test_volume_slabs_with_a_map_uint8_colour(rng):
    clean = np.stack([_phantom((24, 14, 16))] * 3, -1)
    smap = _two_halves(clean.shape[:3])
    noisy = np.clip(np.round((clean + rng.standard_normal(clean.shape) * smap[..., None]) * 255), 0, 255)
    noisy = noisy.astype(np.uint8)
    whole = nlmeans.denoise_volume(noisy, smap, channel_axis=-1)
    assert whole.dtype == np.uint8
    assert np.array_equal(nlmeans.denoise_volume(noisy, smap, channel_axis=-1, slab_slices=1), whole)


def test_video_map_in_memory_and_in_slabs(rng):
    clean = _phantom((20, 22, 24))
    smap = _slab_maps(clean.shape)["gradient"]
    noisy = clean + rng.standard_normal(clean.shape) * smap
    whole = nlmeans.denoise_video(noisy, smap)
    rms = float(np.sqrt(np.mean(smap**2)))
    assert not np.array_equal(whole, nlmeans.denoise_video(noisy, rms))
    for slab in (1, 6):
        assert np.array_equal(nlmeans.denoise_video(noisy, smap, slab_slices=slab), whole), slab
    assert np.array_equal(nlmeans.denoise_video(noisy, np.full(clean.shape, 0.1), slab_slices=4),
                          nlmeans.denoise_video(noisy, 0.1))


@pytest.mark.parametrize("kw,error,match", [
    (dict(sigma=np.full((5, 32, 30), 0.1)),
     ValueError, r"sigma has shape \(5, 32, 30\); allowed: a number, a map of the stack's shape \(10, 32, 30\) "
                 r"or a \(32, 30\) map for every slice"),
    (dict(sigma=np.full((30, 32), 0.1), slab_slices=4), ValueError, r"shape \(30, 32\); allowed"),
    (dict(sigma=np.full((10, 32, 30), -1.0), slab_slices=4), ValueError,
     r"sigma must be finite and >= 0 everywhere; 9600 of its 9600 values are not \(e.g. -1.0\)"),
    (dict(sigma=np.where(np.arange(30) == 3, np.nan, 0.1) * np.ones((10, 32, 1))), ValueError,
     r"finite and >= 0 everywhere; 320 of its 9600 values are not \(e.g. nan\)"),
    (dict(sigma=np.full((32, 30), np.inf)), ValueError, "finite and >= 0 everywhere"),
    (dict(sigma=_two_halves((32, 30)), return_settings=True), ValueError, "return_settings is not supported"),
])
def test_volume_refuses_bad_maps(rng, kw, error, match):
    with pytest.raises(error, match=match):
        nlmeans.denoise_volume(rng.random((10, 32, 30)), **kw)


# ------------------------------------------------------------------------------------------- command line


def _cli(args):
    from click.testing import CliRunner

    from nlmeans.cli import main

    return CliRunner().invoke(main, ["denoise", *map(str, args)])


def _cli_files(rng, tmp_path):
    """in.tif (a uint8 phantom volume with noise of two halves, 10 and 40 /255) and map.npy (its σ map on the
    0–255 scale); returns both arrays."""
    import tifffile

    clean = _phantom((30, 20, 22))
    map_255 = np.round(_two_halves(clean.shape) * 255)
    stack = np.clip(np.round((clean + rng.standard_normal(clean.shape) * map_255 / 255) * 255), 0, 255)
    stack = stack.astype(np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", stack)
    np.save(tmp_path / "map.npy", map_255)
    return stack, map_255


@pytest.mark.parametrize("video", [False, True])
def test_cli_map_in_slabs_is_the_whole_call(rng, tmp_path, video):
    """--sigma-map with --volume/--video in slabs (the map read slab by slab from a .npy) and in memory: the
    library's in-memory call, bit for bit; a (Y, X) map serves every slice."""
    tifffile = pytest.importorskip("tifffile")
    stack, map_255 = _cli_files(rng, tmp_path)
    np.save(tmp_path / "map2d.npy", map_255[0].astype(np.float32))
    fn = nlmeans.denoise_video if video else nlmeans.denoise_volume
    expected = fn(stack, map_255 / 255)
    flag = "--video" if video else "--volume"
    for i, extra in enumerate((["--slab-slices", "7"], [])):
        for name in ("map.npy", "map2d.npy"):
            out = tmp_path / f"out{i}{name}.tif"
            res = _cli([tmp_path / "in.tif", out, flag, "--sigma-map", tmp_path / name, *extra])
            assert res.exit_code == 0, res.output
            assert "with the map in its kernel" in res.output and ("in slabs" in res.output) == bool(extra)
            assert np.array_equal(tifffile.imread(out), expected), (extra, name)


def test_cli_slabs_summarise_the_map_file_once(rng, tmp_path, monkeypatch):
    """The CLI checks a stack's map slice by slice; the slabs take that summary instead of reading the whole
    file again for it (the warm-up's few slices aside; the result is still the whole call's)."""
    tifffile = pytest.importorskip("tifffile")
    import nlmeans.sigma_arrays as sigma_arrays

    stack, map_255 = _cli_files(rng, tmp_path)
    expected = nlmeans.denoise_volume(stack, map_255 / 255)
    calls = []
    summarize = sigma_arrays.summarize_sigma_map
    monkeypatch.setattr(sigma_arrays, "summarize_sigma_map",
                        lambda *a, **k: calls.append(a[1]) or summarize(*a, **k))  # a[1]: the slices summarised
    res = _cli([tmp_path / "in.tif", tmp_path / "out.tif", "--volume", "--sigma-map", tmp_path / "map.npy",
                "--slab-slices", "7"])
    assert res.exit_code == 0, res.output
    assert calls.count(stack.shape[0]) == 1 and max(calls) == stack.shape[0]
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), expected)
