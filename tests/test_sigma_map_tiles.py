"""Per-channel σ and σ maps on every route: strips (in memory and out of core), Dask, volumes and the command
line give the whole call's result (np.array_equal), and bad maps are refused with a clear error."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

import nlmeans
from nlmeans.cli import main
from nlmeans.nlm import patch_mean
from nlmeans.tiles import denoise_tiled

ROOT = Path(__file__).resolve().parent.parent
#: NL-Bayes's strips are a multiple of lcm(64 band rows, grid step 3) = 192 rows: 1 and 100 round up to it,
#: 250 to 384; pixelwise strips are multiples of its band (64 rows), so 100 and 250 are not band multiples
TILE_ROWS = [1, 100, 250]


def _maps(height, width):
    """A smooth map (σ from 5 to 45 /255, varying along both axes) and a two-halves map (10 and 40 /255)."""
    yy, xx = np.mgrid[0:height, 0:width]
    smooth = (5 + 40 * yy / height + 5 * np.sin(xx / 7.0)) / 255
    halves = np.where(yy < height // 2, 10 / 255, 40 / 255)
    return {"smooth": smooth, "halves": halves}


def _noisy(rng, shape, dtype, sigma_map):
    """A ramp with Gaussian noise of the map's σ (every channel), in ``dtype`` (integers over their range)."""
    height, width = sigma_map.shape
    clean = 0.25 + 0.5 * np.linspace(0, 1, width)[None, :] * np.ones((height, 1))
    noise = rng.standard_normal(shape)
    layout = sigma_map if len(shape) == 2 else (sigma_map[..., None] if shape[-1] <= 3 else sigma_map[None])
    clean = clean if len(shape) == 2 else (clean[..., None] if shape[-1] <= 3 else clean[None])
    img = np.clip(clean + noise * layout, 0, 1)
    if np.dtype(dtype).kind == "u":
        return np.round(img * np.iinfo(dtype).max).astype(dtype)
    return img.astype(dtype)


# (shape, channel_axis, dtype): gray and colour (channels last and first), float32 and uint8
LAYOUTS = [
    ((600, 48), None, np.float32),
    ((520, 40, 3), -1, np.uint8),
    ((3, 450, 36), 0, np.float32),
    ((480, 44), None, np.uint8),
]


@pytest.mark.parametrize("shape,axis,dtype", LAYOUTS)
@pytest.mark.parametrize("kind", ["smooth", "halves"])
@pytest.mark.parametrize("method", [None, "pixelwise"])
def test_strips_with_a_map_equal_the_whole_call(rng, shape, axis, dtype, kind, method):
    height, width = (shape[1], shape[2]) if axis == 0 else shape[:2]
    sigma_map = _maps(height, width)[kind]
    img = _noisy(rng, shape, dtype, sigma_map)
    ref = nlmeans.denoise(img, sigma_map, channel_axis=axis, method=method)
    assert not np.array_equal(ref, img)
    for tile_rows in TILE_ROWS:
        out = denoise_tiled(img, sigma_map, channel_axis=axis, method=method, tile_rows=tile_rows)
        assert out.dtype == ref.dtype and np.array_equal(out, ref), tile_rows


@pytest.mark.parametrize("kw", [dict(method="patchwise", patch_size=3, search_size=7),
                                dict(patch_weights="gaussian", patch_size=5, search_size=9)])
def test_strips_per_level_route_equal_the_whole_call(rng, kw):
    """The methods without a map in their kernel: one run per σ level of the whole map, in every strip."""
    sigma_map = _maps(400, 40)["smooth"]
    img = _noisy(rng, (400, 40), np.float32, sigma_map)
    ref = nlmeans.denoise(img, sigma_map, **kw)
    for tile_rows in (1, 100):
        assert np.array_equal(denoise_tiled(img, sigma_map, tile_rows=tile_rows, **kw), ref)


def test_a_map_zero_over_a_clean_region_gives_the_whole_call(rng):
    """σ = 0 over a clean ramp (singular patch models) above noise: NL-Bayes's whole call changes the ramp
    (group means), and so do strips lying wholly in the zero region (the kernel runs there, not skipped)."""
    height, width = 1400, 40
    yy, xx = np.mgrid[0:height, 0:width]
    img = (0.2 + 0.6 * xx / width + 0.1 * yy / height).astype(np.float32)
    img[1100:] += (0.1 * rng.standard_normal((300, width))).astype(np.float32)
    for sigma_map in (np.where(yy < 1100, 0.0, 0.1), np.where(yy < 1100, 1e-9, 0.1)):
        ref = nlmeans.denoise(img, sigma_map)
        assert not np.array_equal(ref[:1100], img[:1100])
        assert np.array_equal(denoise_tiled(img, sigma_map, tile_rows=1), ref)


def test_out_of_core_map_and_output_on_memmaps(rng, tmp_path):
    """Image, map and output as memmaps (the map never loaded whole): the whole call's bits."""
    sigma_map = _maps(600, 48)["smooth"]
    img = _noisy(rng, (600, 48, 3), np.uint8, sigma_map)
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "map.npy", sigma_map.astype(np.float32))
    image = np.load(tmp_path / "img.npy", mmap_mode="r")
    lazy_map = np.load(tmp_path / "map.npy", mmap_mode="r")
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=img.dtype, shape=img.shape)
    ref = nlmeans.denoise(img, np.asarray(lazy_map), channel_axis=-1)
    assert denoise_tiled(image, lazy_map, channel_axis=-1, tile_rows=100, out=out) is out
    out.flush()
    assert np.array_equal(np.load(tmp_path / "out.npy"), ref)


def test_map_rms_is_the_same_float_however_the_rows_are_split(rng):
    """The preset row comes from the map's RMS σ: block by block it is the whole map's float."""
    from nlmeans.sigma_arrays import summarize_sigma_map

    sigma_map = rng.random((997, 61)) ** 3 * 0.3
    whole = summarize_sigma_map(lambda a, b: sigma_map[a:b], 997, 997)
    assert whole.ref == pytest.approx(float(np.sqrt(np.mean(sigma_map**2))), rel=1e-13)
    for rows in (1, 7, 100, 500):
        part = summarize_sigma_map(lambda a, b: sigma_map[a:b], 997, rows)
        assert (part.ref, part.low, part.top) == (whole.ref, whole.low, whole.top)
        assert np.array_equal(part.levels, whole.levels) and np.array_equal(part.row_max, whole.row_max)


def test_patch_mean_of_a_strip_is_the_whole_maps_away_from_its_edges(rng):
    """Each window summed on its own: the rows a strip shares with the whole map get the same floats."""
    values = rng.random((300, 50)) ** 2
    whole = patch_mean(values, 7)
    for y0, y1 in ((0, 120), (57, 211), (180, 300)):
        part = patch_mean(values[y0:y1], 7)
        inner = slice(3 if y0 else 0, (y1 - y0) - (3 if y1 < 300 else 0))
        assert np.array_equal(part[inner], whole[y0:y1][inner])


@pytest.mark.parametrize("method", [None, "pixelwise"])
def test_a_constant_map_in_strips_is_the_scalar_call(rng, method):
    img = _noisy(rng, (400, 40), np.float32, np.full((400, 40), 0.1))
    ref = nlmeans.denoise(img, 0.1, method=method)
    assert np.array_equal(denoise_tiled(img, np.full((400, 40), 0.1), tile_rows=100, method=method), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
@pytest.mark.parametrize("sigmas", [(5 / 255, 20 / 255, 35 / 255), (20 / 255, 20 / 255, 30 / 255)])
def test_per_channel_sigma_in_strips_equals_the_whole_call(rng, dtype, sigmas):
    """(5, 20, 35): the joint run at the RMS and the red channel alone; (20, 20, 30): the joint run only."""
    img = _noisy(rng, (500, 40, 3), dtype, np.full((500, 40), 0.1))
    ref = nlmeans.denoise(img, sigmas, channel_axis=-1)
    for tile_rows in (1, 250):
        assert np.array_equal(denoise_tiled(img, list(sigmas), channel_axis=-1, tile_rows=tile_rows), ref)
    assert np.array_equal(denoise_tiled(img, [0.1] * 3, channel_axis=-1, tile_rows=100),
                          nlmeans.denoise(img, 0.1, channel_axis=-1))


@pytest.mark.parametrize("sigma,match", [
    (np.full((10, 40), 0.1), r"shape \(10, 40\); allowed: a number, a map of the image's height×width \(300, 40"),
    (np.full((300, 40), -0.1), "finite and >= 0 everywhere; 12000 of its 12000 values"),
    (np.where(np.eye(300, 40) > 0, np.nan, 0.1), "finite and >= 0 everywhere; 40 of its 12000 values"),
    ([0.1, 0.2], r"allowed: a number, a map of the image's height×width \(300, 40\) \(a gray image has one"),
])
def test_bad_maps_are_refused_in_strips_as_in_the_whole_call(rng, sigma, match):
    img = rng.random((300, 40)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        denoise_tiled(img, sigma)
    with pytest.raises(ValueError, match=match):
        nlmeans.denoise(img, sigma)


def test_a_bad_out_of_core_map_is_refused_before_any_strip(rng, tmp_path):
    bad = np.full((300, 40), 0.1)
    bad[250, 3] = np.nan
    np.save(tmp_path / "map.npy", bad)
    out = np.zeros((300, 40), np.float32)
    with pytest.raises(ValueError, match="1 of its 12000 values are not"):
        denoise_tiled(rng.random((300, 40)).astype(np.float32), np.load(tmp_path / "map.npy", mmap_mode="r"),
                      out=out, tile_rows=64)
    assert not out.any()


def test_a_map_with_a_guide_or_settings_is_refused(rng):
    img = rng.random((64, 64)).astype(np.float32)
    with pytest.raises(ValueError, match="not supported with guide; give one σ"):
        nlmeans.denoise(img, np.full((64, 64), 0.1), guide=img)
    with pytest.raises(ValueError, match="return_settings is not supported"):
        denoise_tiled(img, np.linspace(0.05, 0.1, 64 * 64).reshape(64, 64), return_settings=True)


# --- Dask ---


@pytest.mark.parametrize("shape,axis,dtype", LAYOUTS[:3])
@pytest.mark.parametrize("method", [None, "pixelwise"])
def test_dask_with_a_map_equals_the_whole_call(rng, shape, axis, dtype, method):
    da = pytest.importorskip("dask.array")
    import nlmeans.dask as nd

    height, width = (shape[1], shape[2]) if axis == 0 else shape[:2]
    for kind, sigma_map in _maps(height, width).items():
        img = _noisy(rng, shape, dtype, sigma_map)
        ref = nlmeans.denoise(img, sigma_map, channel_axis=axis, method=method)
        row_axis = 1 if axis == 0 else 0
        for rows, map_chunks in ((50, (70, width)), (200, (height, 20))):
            chunks = list(img.shape)
            chunks[row_axis] = rows
            for sigma in (sigma_map, da.from_array(sigma_map, chunks=map_chunks)):
                lazy = nd.denoise(da.from_array(img, chunks=tuple(chunks)), sigma, channel_axis=axis,
                                  method=method, tile_rows=100)
                assert np.array_equal(lazy.compute(scheduler="threads"), ref), (kind, rows)


def test_dask_per_channel_and_zero_region(rng):
    da = pytest.importorskip("dask.array")
    import nlmeans.dask as nd

    img = _noisy(rng, (500, 40, 3), np.float32, np.full((500, 40), 0.1))
    ref = nlmeans.denoise(img, [0.02, 0.1, 0.15], channel_axis=-1)
    lazy = nd.denoise(da.from_array(img, chunks=(100, 40, 3)), [0.02, 0.1, 0.15], channel_axis=-1, tile_rows=1)
    assert np.array_equal(lazy.compute(scheduler="threads"), ref)
    # a map zero down to row 1100: the first chunk is merged down to where σ > 0 (NL-Bayes runs there)
    height = 1400
    yy, xx = np.mgrid[0:height, 0:40]
    gray = (0.2 + 0.6 * xx / 40).astype(np.float32)
    gray[1100:] += (0.1 * rng.standard_normal((300, 40))).astype(np.float32)
    sigma_map = np.where(yy < 1100, 0.0, 0.1)
    lazy = nd.denoise(da.from_array(gray, chunks=(100, 40)), sigma_map, tile_rows=1)
    assert np.array_equal(lazy.compute(scheduler="threads"), nlmeans.denoise(gray, sigma_map))


# --- volumes and video ---


def test_volume_per_channel_and_maps(rng):
    """Pixelwise NL-means on a stack takes one σ: a map runs per σ level, and a (Y, X) map serves every slice
    (NL-Bayes takes the map in its kernel: tests/test_sigma_map_volume.py)."""
    clean = np.zeros((10, 32, 32))
    clean[2:8, 8:24, 8:24] = 0.8
    rows = np.where(np.arange(32)[:, None] < 16, 0.05, 0.2) * np.ones((1, 32))
    noisy = clean + rng.standard_normal(clean.shape) * rows
    volume_map = np.broadcast_to(rows, clean.shape).copy()
    out = nlmeans.denoise_volume(noisy, volume_map, method="pixelwise")
    assert np.array_equal(nlmeans.denoise_volume(noisy, rows, method="pixelwise"), out)
    scalar = nlmeans.denoise_volume(noisy, float(np.sqrt(np.mean(rows**2))), method="pixelwise")
    assert nlmeans.psnr(clean, out) > nlmeans.psnr(clean, scalar) + 1
    # each voxel between the runs at the two levels that bracket its σ (here exactly one of them)
    low, high = (nlmeans.denoise_volume(noisy, s, method="pixelwise") for s in (0.05, 0.2))
    assert np.allclose(out, np.where(volume_map == 0.05, low, high))
    assert np.array_equal(nlmeans.denoise_volume(noisy, np.full((32, 32), 0.1)),
                          nlmeans.denoise_volume(noisy, 0.1))
    colour = np.stack([clean] * 3, -1) + rng.standard_normal(clean.shape + (3,)) * [0.02, 0.1, 0.2]
    joint = nlmeans.denoise_video(colour, float(np.sqrt(np.mean(np.square([0.02, 0.1, 0.2])))), channel_axis=-1)
    alone = nlmeans.denoise_video(np.ascontiguousarray(colour[..., 0]), 0.02)
    out = nlmeans.denoise_video(colour, [0.02, 0.1, 0.2], channel_axis=-1)
    assert np.allclose(out[..., 1:], joint[..., 1:]) and np.allclose(out[..., 0], alone)


@pytest.mark.parametrize("kw,match", [
    (dict(sigma=[0.1, 0.2]), r"allowed: a number, a map of the stack's shape \(10, 32, 32\) or a \(32, 32\) map"),
    (dict(sigma=np.full((5, 32, 32), 0.1)), r"shape \(5, 32, 32\); allowed"),
    (dict(sigma=np.full((32, 32), -1.0)), "finite and >= 0 everywhere"),
])
def test_volume_refuses_bad_maps(rng, kw, match):
    with pytest.raises(ValueError, match=match):
        nlmeans.denoise_volume(rng.random((10, 32, 32)), **kw)


# --- command line ---


def _cli(args):
    return CliRunner().invoke(main, ["denoise", *map(str, args)])


@pytest.fixture
def files(rng, tmp_path):
    """A gray and an RGB uint8 TIFF with noise of two halves (10 and 40 /255), the map as .npy, 8-bit PNG and
    float TIFF (σ on the 0–255 scale)."""
    from PIL import Image

    sigma_map = _maps(520, 40)["halves"]
    tifffile.imwrite(tmp_path / "gray.tif", _noisy(rng, (520, 40), np.uint8, sigma_map))
    tifffile.imwrite(tmp_path / "rgb.tif", _noisy(rng, (520, 40, 3), np.uint8, sigma_map), photometric="rgb")
    map_255 = np.round(sigma_map * 255)
    np.save(tmp_path / "map.npy", map_255)
    Image.fromarray(map_255.astype(np.uint8)).save(tmp_path / "map.png")
    tifffile.imwrite(tmp_path / "map.tif", map_255.astype(np.float32))
    return tmp_path


@pytest.mark.parametrize("name", ["gray.tif", "rgb.tif"])
@pytest.mark.parametrize("map_file", ["map.npy", "map.png", "map.tif"])
def test_cli_sigma_map_in_memory_and_in_strips_give_the_whole_call(files, name, map_file):
    img = tifffile.imread(files / name)
    axis = None if img.ndim == 2 else -1
    ref = nlmeans.denoise(img, np.load(files / "map.npy") / 255, channel_axis=axis)
    res = _cli([files / name, files / "mem.tif", "--sigma-map", files / map_file])
    assert res.exit_code == 0, res.output
    assert f"σ map {map_file}" in res.output and "nlbayes" in res.output
    assert np.array_equal(tifffile.imread(files / "mem.tif"), ref)
    res = _cli([files / name, files / "strips.tif", "--sigma-map", files / map_file, "--tile-rows", "100"])
    assert res.exit_code == 0, res.output
    assert "strips of" in res.output
    assert np.array_equal(tifffile.imread(files / "strips.tif"), ref)


def test_cli_per_channel_sigma_in_memory_strips_and_dask(files):
    pytest.importorskip("dask.array")
    img = tifffile.imread(files / "rgb.tif")
    ref = nlmeans.denoise(img, [5 / 255, 20 / 255, 35 / 255], channel_axis=-1)
    for i, extra in enumerate(([], ["--tile-rows", "64"], ["--scheduler", "local", "--tile-rows", "64"])):
        res = _cli([files / "rgb.tif", files / f"o{i}.tif", "--sigma", "5,20,35", *extra])
        assert res.exit_code == 0, res.output
        assert "σ = 5.00, 20.00, 35.00/255 per channel" in res.output
        assert np.array_equal(tifffile.imread(files / f"o{i}.tif"), ref), extra


def test_cli_sigma_map_on_dask(files):
    pytest.importorskip("dask.array")
    img = tifffile.imread(files / "gray.tif")
    ref = nlmeans.denoise(img, np.load(files / "map.npy") / 255, method="pixelwise")
    res = _cli([files / "gray.tif", files / "o.tif", "--sigma-map", files / "map.npy", "--method", "pixelwise",
                "--scheduler", "local", "--tile-rows", "100"])
    assert res.exit_code == 0, res.output
    assert np.array_equal(tifffile.imread(files / "o.tif"), ref)


def test_cli_volume_with_a_map(rng, tmp_path):
    stack = np.round(rng.random((10, 32, 32)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "vol.tif", stack)
    map_255 = np.where(np.arange(32)[:, None] < 16, 10.0, 30.0) * np.ones((10, 1, 32))
    np.save(tmp_path / "map.npy", map_255)
    res = _cli([tmp_path / "vol.tif", tmp_path / "o.tif", "--volume", "--sigma-map", tmp_path / "map.npy"])
    assert res.exit_code == 0, res.output
    assert np.array_equal(tifffile.imread(tmp_path / "o.tif"), nlmeans.denoise_volume(stack, map_255 / 255))


@pytest.mark.parametrize("args,message", [
    (["--sigma-map", "small.npy"], "small.npy: has shape 10×40; it must be 520×40 (INPUT's height×width"),
    (["--sigma-map", "nan.npy"], "nan.npy: its σ must be finite and >= 0 everywhere; 1 of its 20800 values"),
    (["--sigma-map", "neg.npy"], "neg.npy: its σ must be finite and >= 0 everywhere; 20800 of its 20800"),
    (["--sigma-map", "rgb.tif"], "rgb.tif: has shape 520×40×3; it must be 520×40"),
    (["--sigma-map", "map.npy", "--sigma", "10"], "--sigma and --sigma-map exclude each other"),
    (["--sigma", "5,20"], "gives 2 values but INPUT has 1 channel(s)"),
    (["--sigma", "5,x"], "must be a number >= 0, or one per channel separated by commas"),
    (["--sigma", "-5"], "must be a number >= 0, or one per channel"),
    (["--sigma-map", "map.npy", "--noise", "poisson"], "--sigma-map is not supported with --noise poisson"),
    (["--sigma-map", "map.npy", "--guide", "gray.tif"], "--sigma-map is not supported with --guide"),
    (["--sigma-map", "missing.npy"], "'missing.npy' does not exist"),
])
def test_cli_refuses_bad_maps_in_one_line(files, monkeypatch, args, message):
    np.save(files / "small.npy", np.ones((10, 40)))
    nan = np.full((520, 40), 10.0)
    nan[7, 7] = np.nan
    np.save(files / "nan.npy", nan)
    np.save(files / "neg.npy", np.full((520, 40), -1.0))
    monkeypatch.chdir(files)
    res = _cli(["gray.tif", "o.tif", *args])
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and message in errors[0], res.output
    assert "Traceback" not in res.output and not (files / "o.tif").exists()


def test_cli_bad_map_through_a_real_pipe(files):
    """A real process, the image piped in: one error line on stderr, exit 2, nothing on stdout."""
    np.save(files / "small.npy", np.ones((10, 40)))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    png = files / "gray.png"
    from PIL import Image

    Image.fromarray(tifffile.imread(files / "gray.tif")).save(png)
    res = subprocess.run([sys.executable, "-m", "nlmeans", "denoise", "-", "-", "--sigma-map",
                          str(files / "small.npy")], input=png.read_bytes(), capture_output=True, env=env,
                         timeout=600)
    assert res.returncode == 2 and res.stdout == b""
    errors = [line for line in res.stderr.decode().splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "must be 520×40" in errors[0] and "Traceback" not in res.stderr.decode()
    res = subprocess.run([sys.executable, "-m", "nlmeans", "denoise", "-", "-", "--sigma-map",
                          str(files / "map.npy")], input=png.read_bytes(), capture_output=True, env=env,
                         timeout=600)
    assert res.returncode == 0, res.stderr.decode()
    from nlmeans.io import read_image_bytes

    out = read_image_bytes(res.stdout)[0].data
    ref = nlmeans.denoise(tifffile.imread(files / "gray.tif"), np.load(files / "map.npy") / 255)
    assert np.array_equal(out, ref)


def test_cli_help_says_the_scale():
    res = CliRunner().invoke(main, ["denoise", "--help"])
    text = " ".join(res.output.split())
    assert "--sigma-map FILE" in text and "one per channel separated by commas (5,20,35)" in text
    assert "values are σ on the 0–255 scale" in text


@pytest.mark.parametrize("extra", [["--tile-rows", "100"], ["--scheduler", "local", "--tile-rows", "100"]])
def test_cli_summarises_a_strip_map_once(files, monkeypatch, extra):
    """The CLI checks the map file and summarises it; strips and Dask take that summary instead of reading the
    whole file again for it (the warm-up's corner aside; the result is still the whole call's)."""
    if "--scheduler" in extra:
        pytest.importorskip("dask.array")
    import nlmeans.sigma_arrays as sigma_arrays

    calls = []
    summarize = sigma_arrays.summarize_sigma_map
    monkeypatch.setattr(sigma_arrays, "summarize_sigma_map",
                        lambda *a, **k: calls.append(a[1]) or summarize(*a, **k))  # a[1]: the rows summarised
    img = tifffile.imread(files / "gray.tif")
    ref = nlmeans.denoise(img, np.load(files / "map.npy") / 255)
    calls.clear()
    res = _cli([files / "gray.tif", files / "o.tif", "--sigma-map", files / "map.npy", *extra])
    assert res.exit_code == 0, res.output
    assert calls.count(img.shape[0]) == 1 and max(calls) == img.shape[0]
    assert np.array_equal(tifffile.imread(files / "o.tif"), ref)
