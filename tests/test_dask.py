"""nlmeans.dask.denoise equals the in-memory nlmeans.denoise bit for bit, locally and on a LocalCluster."""

import numpy as np
import pytest

import nlmeans


def _pixelwise(*args, **kw):
    """The in-memory pixelwise reference."""
    return nlmeans.denoise(*args, method="pixelwise", **kw)


da = pytest.importorskip("dask.array")  # the `test` extra installs dask; this only guards odd installs
distributed = pytest.importorskip("dask.distributed")

import nlmeans.dask as nd  # noqa: E402

CASES = [
    ((300, 77), None, np.float32, 5, 21, (50, 20)),
    ((250, 60, 3), -1, np.float64, 3, 21, (100, 30, 1)),
    ((3, 230, 60), 0, np.float32, 5, 9, (1, 70, 60)),
    ((200, 50), None, np.uint8, 3, 11, (200, 50)),
]


def _image(rng, shape, dtype):
    img = 0.5 * rng.random(shape) + 0.25
    return (img * 255).astype(np.uint8) if dtype is np.uint8 else img.astype(dtype)


@pytest.mark.parametrize("shape,axis,dtype,patch,search,chunks", CASES)
@pytest.mark.parametrize("tile_rows", [1, 40, 100, 1000])
def test_dask_equals_in_memory(rng, shape, axis, dtype, patch, search, chunks, tile_rows):
    img = _image(rng, shape, dtype)
    kw = dict(h=0.3, patch_size=patch, search_size=search, channel_axis=axis)
    ref = _pixelwise(img, 0.1, **kw)
    lazy = nd.denoise(da.from_array(img, chunks=chunks), 0.1, tile_rows=tile_rows, **kw)
    assert lazy.shape == img.shape and lazy.dtype == img.dtype
    assert np.array_equal(lazy.compute(scheduler="threads"), ref)
    assert np.array_equal(nd.compute_into(lazy, np.empty_like(img)), ref)


@pytest.mark.parametrize("halo", ["pixelwise", "nlbayes"])
def test_row_chunks_are_aligned_and_never_shorter_than_a_halo(halo):
    from nlmeans.presets import resolve_nlbayes
    from nlmeans.tiles import nlbayes_halo, pixelwise_halo

    halo = pixelwise_halo(5, 21) if halo == "pixelwise" else nlbayes_halo(resolve_nlbayes((999, 999), 20))
    for height in (64, 65, 100, 300, 1000):
        for tile_rows in (1, 40, 100):
            sizes = nd.row_chunks(height, halo, tile_rows)
            assert sum(sizes) == height
            assert all(s % halo.unit == 0 for s in sizes[:-1])
            assert len(sizes) == 1 or min(sizes) >= max(halo.top, halo.bottom)


def test_sigma_estimated_like_in_memory(rng):
    img = _image(rng, (150, 80), np.float32)
    out = nd.denoise(da.from_array(img, chunks=(40, 80)), tile_rows=32).compute()
    assert np.array_equal(out, nlmeans.denoise(img))


# the default method (NL-Bayes) with the same keyword arguments as nlmeans.denoise: gray (grid step 3: chunks
# of multiples of 192 rows), high σ (patch 7, 47×47 windows, step 3), color, channel first, a given size
NLBAYES_CASES = [
    ((700, 60), None, np.float32, dict(sigma=20 / 255), (100, 60)),
    ((640, 50), None, np.float64, dict(sigma=40 / 255), (640, 25)),
    ((520, 48, 3), -1, np.float32, dict(sigma=15 / 255), (130, 48, 3)),
    ((3, 450, 40), 0, np.uint8, dict(sigma=30 / 255, search_size=21), (1, 450, 40)),
]


@pytest.mark.parametrize("shape,axis,dtype,kw,chunks", NLBAYES_CASES)
@pytest.mark.parametrize("tile_rows", [1, 300])
def test_dask_equals_in_memory_for_the_default_method(rng, shape, axis, dtype, kw, chunks, tile_rows):
    img = _image(rng, shape, dtype)
    ref = nlmeans.denoise(img, channel_axis=axis, **kw)
    lazy = nd.denoise(da.from_array(img, chunks=chunks), channel_axis=axis, tile_rows=tile_rows, **kw)
    assert lazy.numblocks[1 if axis == 0 else 0] > (tile_rows < 300)
    assert np.array_equal(lazy.compute(scheduler="threads"), ref)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster:
        yield cluster


def test_on_a_local_cluster_with_two_workers(cluster, rng):
    img = _image(rng, (400, 90, 3), np.uint8)
    kw = dict(h=0.2, patch_size=5, search_size=11, channel_axis=-1)
    ref = _pixelwise(img, 0.08, **kw)
    lazy = nd.denoise(da.from_array(img, chunks=(100, 90, 3)), 0.08, tile_rows=64, **kw)
    with distributed.Client(cluster.scheduler_address) as client:
        assert np.array_equal(client.compute(lazy).result(), ref)
        assert np.array_equal(nd.compute_into(lazy, np.empty_like(img), client=client), ref)
        assert len(client.scheduler_info()["workers"]) == 2


def test_default_method_on_a_local_cluster_with_two_workers(cluster, rng):
    img = _image(rng, (800, 64), np.float32)
    ref = nlmeans.denoise(img, 25 / 255)
    lazy = nd.denoise(da.from_array(img, chunks=(200, 64)), 25 / 255, tile_rows=192)
    assert lazy.numblocks[0] > 1
    with distributed.Client(cluster.scheduler_address) as client:
        assert np.array_equal(client.compute(lazy).result(), ref)
        assert np.array_equal(nd.compute_into(lazy, np.empty_like(img), client=client), ref)


def test_sigma_map_on_a_local_cluster_with_two_workers(cluster, rng):
    """A σ map as a dask array: its chunks travel to the workers with the image's (the whole call's bits)."""
    img = _image(rng, (800, 64), np.float32)
    sigma_map = np.where(np.arange(800)[:, None] < 400, 10 / 255, 40 / 255) * np.ones((1, 64))
    ref = nlmeans.denoise(img, sigma_map)
    lazy = nd.denoise(da.from_array(img, chunks=(200, 64)), da.from_array(sigma_map, chunks=(300, 32)),
                      tile_rows=192)
    assert lazy.numblocks[0] > 1
    with distributed.Client(cluster.scheduler_address) as client:
        assert np.array_equal(client.compute(lazy).result(), ref)


@pytest.mark.parametrize("where", ["local", "cluster"])
def test_cli_scheduler_gives_the_in_memory_file(cluster, rng, tmp_path, where):
    import tifffile
    from click.testing import CliRunner

    from nlmeans.cli import main

    img = _image(rng, (260, 64), np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", img)
    scheduler = "local" if where == "local" else cluster.scheduler_address
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "in.tif"), str(tmp_path / "out.tif"),
                                    "--sigma", "15", "--patch", "3", "--search", "9", "--tile-rows", "64",
                                    "--scheduler", scheduler])
    assert res.exit_code == 0, res.output
    assert f"Dask {scheduler}" in res.output and "nlbayes" in res.output
    ref = nlmeans.denoise(img, 15 / 255, patch_size=3, search_size=9)
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), ref)


def test_cli_reports_an_unreachable_scheduler(rng, tmp_path):
    import tifffile
    from click.testing import CliRunner

    from nlmeans.cli import main

    tifffile.imwrite(tmp_path / "in.tif", _image(rng, (100, 40), np.uint8))
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "in.tif"), str(tmp_path / "out.tif"),
                                    "--sigma", "15",
                                    "--scheduler", "tcp://127.0.0.1:9"])
    assert res.exit_code == 1 and "cannot connect" in res.output
    assert not (tmp_path / "out.tif").exists()
