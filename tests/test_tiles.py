"""Strip-by-strip denoising gives the untiled bits (np.array_equal), in every layout and dtype, for the
default method (NL-Bayes) and pixelwise NL-means."""

import numpy as np
import pytest

import nlmeans
from nlmeans import tiles
from nlmeans.tiles import denoise_tiled, pixelwise_halo, strips


def _pixelwise(*args, **kw):
    """The in-memory pixelwise reference."""
    return nlmeans.denoise(*args, method="pixelwise", **kw)


# (shape, channel_axis, dtype, patch, search): gray and color, channel first/last, r > 2f, r near the band
CASES = [
    ((300, 77), None, np.float32, 5, 21),
    ((300, 77), None, np.float64, 7, 35),
    ((250, 60, 3), -1, np.float32, 3, 21),
    ((3, 230, 60), 0, np.float64, 5, 9),
    ((200, 50), None, np.uint8, 3, 11),
    ((170, 40, 2), 2, np.uint16, 9, 13),
]


def _image(rng, shape, dtype):
    """A smooth ramp plus uniform noise in [0, 1]: with h = 0.3 the weights are far from 0 and 1."""
    ramp = np.linspace(0, 1, shape[-1] if len(shape) == 2 else max(shape))
    img = 0.5 * rng.random(shape) + 0.5 * np.broadcast_to(ramp[: shape[-1]], shape)
    if np.dtype(dtype).kind == "u":
        return (img * np.iinfo(dtype).max).astype(dtype)
    return img.astype(dtype)


@pytest.mark.parametrize("shape,axis,dtype,patch,search", CASES)
@pytest.mark.parametrize("tile_rows", [1, 40, 100, 10_000])
def test_tiled_equals_untiled_bit_for_bit(rng, shape, axis, dtype, patch, search, tile_rows):
    img = _image(rng, shape, dtype)
    kw = dict(h=0.3, patch_size=patch, search_size=search, channel_axis=axis)
    ref = _pixelwise(img, 0.1, **kw)
    out = denoise_tiled(img, 0.1, tile_rows=tile_rows, **kw)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    assert np.array_equal(out, ref)


# (shape, channel_axis, dtype, keyword arguments): NL-Bayes with its presets (gray: step 3, so strips start on
# multiples of lcm(64, 3) rows; above σ = 25: patch 7, 47×47 windows, step 3), color through Y, U, V, sizes
# given, a small image whose presets shrink
NLBAYES_CASES = [
    ((700, 60), None, np.float32, dict(sigma=20 / 255)),
    ((640, 50), None, np.float64, dict(sigma=40 / 255)),
    ((520, 48, 3), -1, np.float32, dict(sigma=15 / 255)),
    ((3, 450, 40), 0, np.uint8, dict(sigma=30 / 255)),
    ((600, 45), None, np.uint16, dict(sigma=10 / 255, patch_size=3, search_size=15)),
    ((450, 30), None, np.float32, dict(sigma=60 / 255)),
]


@pytest.mark.parametrize("shape,axis,dtype,kw", NLBAYES_CASES)
@pytest.mark.parametrize("tile_rows", [1, 200, 10_000])
def test_nlbayes_strips_equal_the_in_memory_default(rng, shape, axis, dtype, kw, tile_rows):
    img = _image(rng, shape, dtype)
    ref, used = nlmeans.denoise(img, channel_axis=axis, return_settings=True, **kw)
    out, tiled_used = denoise_tiled(img, channel_axis=axis, tile_rows=tile_rows, return_settings=True, **kw)
    assert used.method == tiled_used.method == "nlbayes" and tiled_used == used
    assert np.array_equal(out, ref)
    assert len(strips(shape[0] if axis != 0 else shape[1], tiles.halo_for(used), tile_rows)) > (tile_rows < 300)


# the offset-loop kernel: patchwise aggregation and Gaussian patch weights
OFFSETS_CASES = [
    ((300, 50), None, np.float32, dict(method="patchwise", patch_size=5, search_size=11)),
    ((260, 40, 3), -1, np.float64, dict(method="patchwise", patch_size=3, search_size=21)),
    ((280, 45), None, np.uint8, dict(patch_weights="gaussian", patch_size=7, search_size=9)),
    ((3, 200, 40), 0, np.float32, dict(method="patchwise", patch_weights="gaussian", patch_sigma=1.0)),
]


@pytest.mark.parametrize("shape,axis,dtype,kw", OFFSETS_CASES)
@pytest.mark.parametrize("tile_rows", [1, 100])
def test_patchwise_and_gaussian_strips_equal_in_memory(rng, shape, axis, dtype, kw, tile_rows):
    img = _image(rng, shape, dtype)
    ref, used = nlmeans.denoise(img, 0.1, h=0.3, channel_axis=axis, return_settings=True, **kw)
    out, tiled_used = denoise_tiled(img, 0.1, h=0.3, channel_axis=axis, tile_rows=tile_rows,
                                    return_settings=True, **kw)
    assert tiled_used == used
    assert np.array_equal(out, ref)


def test_nlbayes_strip_halo_is_needed(rng, monkeypatch):
    """Guard the test above: one unit less of top halo changes the result near strip tops."""
    img = _image(rng, (700, 60), np.float32)
    ref = nlmeans.denoise(img, 20 / 255)
    real = tiles.nlbayes_halo
    monkeypatch.setattr(tiles, "nlbayes_halo", lambda p: tiles.Halo(real(p).unit, real(p).top - real(p).unit,
                                                                    real(p).bottom))
    assert not np.array_equal(denoise_tiled(img, 20 / 255, tile_rows=1), ref)


def test_estimated_sigma_and_presets_match_the_untiled_call(rng):
    img = _image(rng, (140, 90), np.float32)
    out, used = denoise_tiled(img, tile_rows=32, return_settings=True)
    assert used.sigma_estimated and used.sigma == pytest.approx(nlmeans.estimate_sigma(img))
    assert used.method == "nlbayes"
    assert np.array_equal(out, nlmeans.denoise(img))


SETTINGS_CASES = [
    ((90, 70), None, np.uint8, {}),  # σ estimated, h and sizes from the preset
    ((90, 70), None, np.float32, dict(sigma=0.1)),  # σ given, h default
    ((60, 80, 3), -1, np.float64, {}),  # color: the color preset table
    ((3, 60, 50), 0, np.uint16, dict(sigma=0.05, h=0.04)),  # σ and h given
    ((60, 50, 3), -1, np.float32, dict(h=0.2, patch_size=3, search_size=9)),  # σ estimated, h given
    ((12, 9), None, np.float64, dict(sigma=0.3)),  # preset sizes shrunk to fit a small image
    ((40, 40), None, np.float64, dict(sigma=0.0)),  # σ = 0: the h floor
    ((40, 40), None, np.float64, dict(sigma=0.2, data_range=4.0)),
]


@pytest.mark.parametrize("shape,axis,dtype,kw", SETTINGS_CASES)
def test_strips_and_denoise_resolve_the_same_settings(rng, shape, axis, dtype, kw):

    img = _image(rng, shape, dtype)
    for method in ("pixelwise", None):
        if method is None and "h" in kw:
            continue  # h selects pixelwise: covered above
        _, expected = nlmeans.denoise(img, channel_axis=axis, method=method, **kw, return_settings=True)
        assert tiles.resolve_settings(img, channel_axis=axis, method=method, **kw) == expected
        assert denoise_tiled(img, channel_axis=axis, method=method, tile_rows=16, return_settings=True,
                             **kw)[1] == expected


@pytest.mark.parametrize("kw,exc,match", [
    (dict(sigma=-0.1), ValueError, "sigma must be >= 0"),
    (dict(patch_size=4), ValueError, "patch_size must be an odd"),
    (dict(search_size=41), ValueError, "search_size=41 is larger than the image's smaller side"),
    (dict(h=0), ValueError, "h must be > 0"),
    (dict(h="auto"), ValueError, "not supported strip by strip"),  # SURE needs the whole image
    (dict(method="nlbayes", h=0.1), ValueError, "h is not used by method='nlbayes'"),
])
def test_strips_refuse_what_denoise_refuses(rng, kw, exc, match):
    img = _image(rng, (40, 40), np.float32)
    with pytest.raises(exc, match=match):
        tiles.resolve_settings(img, **kw)
    if kw.get("h") != "auto" and "method" not in kw:
        with pytest.raises(exc, match=match):
            nlmeans.denoise(img, method="pixelwise", **kw)


def test_writes_into_a_given_out_array(rng, tmp_path):
    img = _image(rng, (130, 40), np.uint8)
    target = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.uint8, shape=img.shape)
    res = denoise_tiled(img, 0.05, patch_size=3, search_size=7, tile_rows=32, out=target)
    assert res is target
    assert np.array_equal(np.load(tmp_path / "out.npy"), nlmeans.denoise(img, 0.05, patch_size=3, search_size=7))


def test_the_halo_is_needed(rng, monkeypatch):
    """Guard the test itself: a top halo one band too small changes the result near strip tops."""
    img = _image(rng, (200, 50), np.float64)
    ref = _pixelwise(img, 0.1, h=0.3, patch_size=5, search_size=21)
    band = tiles.band_rows(21)
    monkeypatch.setattr(tiles, "pixelwise_halo", lambda p, s: tiles.Halo(band, band, 12))  # band < band + f
    out = denoise_tiled(img, 0.1, h=0.3, patch_size=5, search_size=21, tile_rows=64)
    assert not np.array_equal(out, ref)


def test_strip_geometry():
    halo = pixelwise_halo(5, 21)
    top, bottom = halo.top, halo.bottom
    band = tiles.band_rows(21)
    assert halo.unit == band and top % band == 0 and top >= band + 2 and bottom == 12
    plan = strips(300, halo, 50)  # rounded up to 64 kept rows
    assert [s.keep0 for s in plan] == [0, 64, 128, 192, 256] and plan[-1].keep1 == 300
    assert all(s.read0 % band == 0 and s.read0 == max(0, s.keep0 - top) for s in plan)
    assert all(s.read1 == min(300, s.keep1 + bottom) for s in plan)


@pytest.mark.parametrize("kwargs,match", [
    (dict(tile_rows=0), "tile_rows"),
    (dict(out=np.zeros((3, 3))), "out has shape"),
    (dict(channel_axis=5), "channel_axis"),
])
def test_bad_arguments_are_named(rng, kwargs, match):
    with pytest.raises(ValueError, match=match):
        denoise_tiled(_image(rng, (40, 40), np.float32), 0.1, **kwargs)


@pytest.mark.parametrize("img,exc", [
    (np.zeros((20, 20), np.int64), TypeError),
    (np.zeros((0, 20), np.float32), ValueError),
])
def test_strips_refuse_dtype_and_empty_images_as_denoise_does(img, exc):
    with pytest.raises(exc) as in_memory:
        nlmeans.denoise(img, 0.1)
    with pytest.raises(exc) as strips:
        denoise_tiled(img, 0.1)
    assert str(strips.value) == str(in_memory.value)


def test_a_3d_array_without_channel_axis_is_refused(rng):
    with pytest.raises(ValueError, match="channel_axis"):
        denoise_tiled(_image(rng, (4, 40, 40), np.float32), 0.1)


# --- the command line: large TIFF and Zarr, strip by strip ---


def _cli(args):
    from click.testing import CliRunner

    from nlmeans.cli import main

    res = CliRunner().invoke(main, ["denoise", *map(str, args)])
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.parametrize("compressed", [False, True])
def test_cli_strips_from_tiff_to_tiff_and_zarr(rng, tmp_path, compressed):
    import tifffile
    import zarr

    img = _image(rng, (300, 70, 3), np.uint8)
    src = tmp_path / "in.tif"
    extra = dict(compression="zlib", rowsperstrip=40) if compressed else {}
    tifffile.imwrite(src, img, photometric="rgb", **extra)
    ref = nlmeans.denoise(img, 20 / 255, patch_size=5, search_size=11, channel_axis=-1)
    args = ["--sigma", "20", "--patch", "5", "--search", "11"]
    # NL-Bayes (the default): strips of a multiple of lcm(64 band rows, grid step 3)
    output = _cli([src, tmp_path / "o.tif", "--tile-rows", "50", *args])
    assert "strips of 192 rows" in output and "nlbayes" in output
    assert np.array_equal(tifffile.imread(tmp_path / "o.tif"), ref)
    _cli([src, tmp_path / "o.zarr", *args])
    assert np.array_equal(zarr.open_array(tmp_path / "o.zarr", mode="r")[:], ref)
    _cli([tmp_path / "o.zarr", tmp_path / "again.zarr", "--overwrite", *args])  # zarr in works too
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_switches_to_strips_for_large_tiffs(rng, tmp_path, monkeypatch):
    import tifffile

    from nlmeans.cli import denoise as cli

    img = _image(rng, (200, 60), np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", img)
    monkeypatch.setattr(cli, "AUTO_STRIP_PIXELS", 100 * 60)  # 200 rows: two strips of NL-Bayes
    out = _cli([tmp_path / "in.tif", tmp_path / "o.tif", "--sigma", "10", "--patch", "3", "--search", "9"])
    assert "strips of" in out
    assert np.array_equal(tifffile.imread(tmp_path / "o.tif"),
                          nlmeans.denoise(img, 10 / 255, patch_size=3, search_size=9))


def test_cli_strips_refuse_an_existing_output(rng, tmp_path):
    import tifffile
    from click.testing import CliRunner

    from nlmeans.cli import main

    tifffile.imwrite(tmp_path / "in.tif", _image(rng, (100, 40), np.uint8))
    (tmp_path / "o.tif").write_bytes(b"keep me")
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "in.tif"), str(tmp_path / "o.tif"), "--tile-rows",
                                    "32", "--sigma", "10"])
    assert res.exit_code == 1 and "already exists" in res.output
    assert (tmp_path / "o.tif").read_bytes() == b"keep me"
