"""Per-channel σ and pixelwise σ maps of volumes and video in slabs (issue #18): the same bits as the whole
stack in memory, read one slab (with its halo) at a time, from arrays, memmaps and the command line."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from nlmeans import volume
from nlmeans.cli import main
from nlmeans.volume import denoise_video, denoise_volume

ROOT = Path(__file__).resolve().parent.parent
#: one σ much below the channels' RMS (channel 0 runs alone), and three close ones (one joint run only)
LONE = (0.02, 0.1, 0.2)
JOINT = (0.08, 0.1, 0.12)


def _stack(rng, shape, sigma, dtype=np.float32):
    """A piecewise-constant stack with edges along every axis plus noise of ``sigma`` (a number, one per
    channel, or a map broadcast over the channels), clipped to [0, 1]; integers scaled to their range."""
    z, y, x = np.indices(shape[:3])
    clean = 0.3 + 0.4 * ((z // 7 + y // 5 + x // 4) % 2)
    sigma = np.asarray(sigma, dtype=np.float64)
    if len(shape) == 4:
        clean = clean[..., None] * np.linspace(0.6, 1.0, shape[3])
        if sigma.ndim == 3:
            sigma = sigma[..., None]
    noisy = np.clip(clean + rng.standard_normal(clean.shape) * sigma, 0, 1)
    if np.dtype(dtype).kind == "u":
        return np.rint(noisy * np.iinfo(dtype).max).astype(dtype)
    return noisy.astype(dtype)


def _maps(shape):
    """(Z, Y, X) σ maps: two halves (10 and 40 /255; on a colour stack their levels take different patch sizes,
    so different halos) and a gradient along x and z (4 levels spread over its range)."""
    halves = np.full(shape, 10 / 255)
    halves[..., shape[2] // 2:] = 40 / 255
    z = np.linspace(0.5, 1.0, shape[0])[:, None, None]
    gradient = np.broadcast_to(0.01 + 0.15 * z * np.linspace(0, 1, shape[2]), shape).copy()
    return {"halves": halves, "gradient": gradient}


def _run(kind, data, sigma, **kw):
    return (denoise_video if kind == "video" else denoise_volume)(data, sigma, **kw)


#: slabs of one unit (NL-Bayes: 10 slices for volumes, 8 frames for video; pixelwise: 1), a size not a multiple
#: of the unit, and one slab bigger than the stack
SLABS = (1, 13, 100)


@pytest.mark.parametrize("kind", ["volume", "video"])
@pytest.mark.parametrize("method", ["pixelwise", "nlbayes"])
@pytest.mark.parametrize("sigma", [LONE, JOINT], ids=["lone-channel", "joint-only"])
def test_per_channel_slabs_are_the_whole_stack(rng, kind, method, sigma):
    shape = (24, 12, 13, 3)
    data = _stack(rng, shape, sigma)
    whole = _run(kind, data, list(sigma), channel_axis=-1, method=method)
    for slab in SLABS:
        part = _run(kind, data, list(sigma), channel_axis=-1, method=method, slab_slices=slab)
        assert part.dtype == whole.dtype and np.array_equal(part, whole), slab


@pytest.mark.parametrize("axis", [0, 1])
def test_channels_before_the_slices(rng, axis):
    """Channels first (C, Z, Y, X: slabs along axis 1) or between (Z, C, Y, X): the lone channel's run is a gray
    stack of its own layout, the slabs cut along the stack's slice axis."""
    data = np.moveaxis(_stack(rng, (16, 10, 11, 3), LONE), -1, axis)
    for sigma, kw in ((list(LONE), {}), (_maps((16, 10, 11))["halves"], dict(method="pixelwise"))):
        whole = denoise_volume(data, sigma, channel_axis=axis, **kw)
        assert np.array_equal(denoise_volume(data, sigma, channel_axis=axis, slab_slices=3, **kw), whole)


@pytest.mark.parametrize("kind", ["volume", "video"])
def test_per_channel_runs_are_the_ones_in_memory_makes(rng, kind):
    """The slab result is the route's, not just equal to a possibly wrong whole call: with ``LONE`` channel 0
    is the gray run at its own σ, channels 1-2 the joint run at the RMS σ; with ``JOINT`` all the joint run."""
    data = _stack(rng, (20, 12, 12, 3), LONE)
    part = _run(kind, data, list(LONE), channel_axis=-1, method="pixelwise", slab_slices=1)
    rms = float(np.sqrt(np.mean(np.square(LONE))))
    joint = _run(kind, data, rms, channel_axis=-1, method="pixelwise")
    alone = _run(kind, np.ascontiguousarray(data[..., 0]), LONE[0], method="pixelwise")
    assert np.array_equal(part[..., 1:], joint[..., 1:]) and np.array_equal(part[..., 0], alone)
    part = _run(kind, data, list(JOINT), channel_axis=-1, method="pixelwise", slab_slices=1)
    rms = float(np.sqrt(np.mean(np.square(JOINT))))
    assert np.array_equal(part, _run(kind, data, rms, channel_axis=-1, method="pixelwise"))


@pytest.mark.parametrize("kind", ["volume", "video"])
@pytest.mark.parametrize("name", ["halves", "gradient"])
@pytest.mark.parametrize("planar", [False, True], ids=["zyx", "yx"])
def test_pixelwise_map_slabs_are_the_whole_stack(rng, kind, name, planar):
    shape = (22, 14, 16)
    smap = _maps(shape)[name]
    sigma = smap[0] if planar else smap
    data = _stack(rng, shape, smap)
    whole = _run(kind, data, sigma, method="pixelwise")
    for slab in SLABS:
        part = _run(kind, data, sigma, method="pixelwise", slab_slices=slab)
        assert np.array_equal(part, whole), slab


def test_pixelwise_map_each_voxel_between_its_levels(rng):
    """In slabs as in memory: a voxel of the halves map is the run at its own level."""
    shape = (16, 12, 14)
    smap = _maps(shape)["halves"]
    data = _stack(rng, shape, smap)
    part = denoise_volume(data, smap, method="pixelwise", slab_slices=3)
    low, high = (denoise_volume(data, s, method="pixelwise") for s in (10 / 255, 40 / 255))
    assert np.array_equal(part, np.where(smap == 10 / 255, low, high))


def test_the_halo_serves_every_run(rng, monkeypatch):
    """On a colour stack the halves' levels take patches of 3 and 5 (halos of 4 and 5 slices): with the smaller
    halo for every run the slabs lose bits, so the larger one is what keeps them."""
    shape = (20, 14, 16, 3)
    smap = _maps(shape[:3])["halves"]
    data = _stack(rng, shape, smap)
    whole = denoise_volume(data, smap, method="pixelwise", channel_axis=-1)
    halos = []

    def smallest(found):
        halos.extend(found)
        return min(found, key=lambda h: h.top)

    monkeypatch.setattr(volume, "combined_halo", smallest)
    part = denoise_volume(data, smap, method="pixelwise", channel_axis=-1, slab_slices=1)
    assert sorted({h.top for h in halos}) == [4, 5] and not np.array_equal(part, whole)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("method", ["pixelwise", "nlbayes"])
def test_integer_stacks(rng, dtype, method):
    """Rounded to the integer once, at the end, as in memory (per channel, and a (Y, X) map with pixelwise)."""
    shape = (24, 12, 12, 3)
    data = _stack(rng, shape, LONE, dtype)
    whole = denoise_volume(data, list(LONE), channel_axis=-1, method=method)
    assert whole.dtype == dtype
    assert np.array_equal(denoise_volume(data, list(LONE), channel_axis=-1, method=method, slab_slices=1), whole)
    if method == "pixelwise":
        smap = _maps(shape[:3])["gradient"][0]
        whole = denoise_video(data, smap, channel_axis=-1, method=method)
        assert np.array_equal(denoise_video(data, smap, channel_axis=-1, method=method, slab_slices=2), whole)


class _Reads:
    """An array-like that records the slices (along axis 0) each read returns."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.reads = data, data.shape, data.dtype, []

    def __getitem__(self, index):
        block = np.asarray(self.data[index])
        self.reads.append(block.shape[0] if block.ndim == len(self.shape) else 1)
        return block


@pytest.mark.parametrize("route", ["channels", "map"])
def test_memmaps_read_slab_by_slab(rng, tmp_path, route):
    """``out=`` a memmap, the stack and the map memmaps, the default slab size (shrunk here): the stack is read
    a slab and its halo at a time, never whole, the map in blocks for its summary then a slab at a time."""
    shape = (30, 12, 14) if route == "map" else (30, 12, 14, 3)
    smap = _maps(shape[:3])["gradient"]
    sigma = smap if route == "map" else list(LONE)
    data = _stack(rng, shape, smap if route == "map" else LONE)
    kw = dict(method="pixelwise", channel_axis=None if route == "map" else -1)
    whole = denoise_volume(data, sigma, **kw)
    np.save(tmp_path / "in.npy", data)
    np.save(tmp_path / "map.npy", smap)
    stack = _Reads(np.load(tmp_path / "in.npy", mmap_mode="r"))
    mm = _Reads(np.load(tmp_path / "map.npy", mmap_mode="r"))
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=data.dtype, shape=data.shape)
    plane = int(np.prod(shape[1:]))
    # room for 4 slices a slab: shared among the runs (4 levels or 2 channel runs), at least one slice each
    volume_slab = 4 * plane + 2 * 5 * plane
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(volume, "SLAB_VALUES", volume_slab)
        assert denoise_volume(stack, mm if route == "map" else sigma, out=out, **kw) is out
    assert np.array_equal(np.load(tmp_path / "out.npy"), whole)
    assert len(stack.reads) == shape[0] and max(stack.reads) <= 1 + 2 * 5  # one slice kept, halo <= 5 a side
    if route == "map":
        assert max(mm.reads) < shape[0] and sum(mm.reads) >= 2 * shape[0]  # the summary's blocks, then slabs


def test_what_stays_refused(rng):
    data = _stack(rng, (12, 10, 10, 3), LONE)
    with pytest.raises(ValueError, match="return_settings is not supported"):
        denoise_volume(data, list(LONE), channel_axis=-1, slab_slices=4, return_settings=True)
    with pytest.raises(ValueError, match="return_settings is not supported"):
        gray = np.ascontiguousarray(data[..., 0])
        denoise_volume(gray, _maps(gray.shape)["halves"], method="pixelwise", out=np.empty_like(gray),
                       return_settings=True)
    with pytest.raises(ValueError, match="out has shape"):
        denoise_volume(data, list(LONE), channel_axis=-1, out=np.empty(data.shape, np.float64))
    u8 = (data * 255).astype(np.uint8)
    with pytest.raises(ValueError, match=r"sigma=35 on a uint8 image.*did you mean sigma=35/255"):
        denoise_volume(u8, [5, 20, 35], channel_axis=-1, slab_slices=4)


# ------------------------------------------------------------------------------------------- command line


def _files(rng, tmp_path):
    """rgb.tif (uint8, noise 5, 20, 35 /255 per channel), gray.tif (uint8, noise of the halves map) and map.npy
    (the map on the 0–255 scale); returns the two stacks and the map on the float scale."""
    shape = (26, 14, 16)
    rgb = _stack(rng, (*shape, 3), (5 / 255, 20 / 255, 35 / 255), np.uint8)
    smap = _maps(shape)["halves"]
    gray = _stack(rng, shape, smap, np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    tifffile.imwrite(tmp_path / "gray.tif", gray)
    np.save(tmp_path / "map.npy", smap * 255)
    return rgb, gray, smap


def _cli(*args):
    return CliRunner().invoke(main, ["denoise", *map(str, args)])


@pytest.mark.parametrize("flag", ["--volume", "--video"])
def test_cli_per_channel_and_map_in_slabs(rng, tmp_path, flag):
    """``--sigma 5,20,35`` (0–255 scale) and ``--sigma-map`` with ``--method pixelwise``, in slabs: the
    library's in-memory call, read back with tifffile."""
    rgb, gray, smap = _files(rng, tmp_path)
    fn = denoise_video if flag == "--video" else denoise_volume
    cases = [("rgb.tif", ["--sigma", "5,20,35"], fn(rgb, [5 / 255, 20 / 255, 35 / 255], channel_axis=-1)),
             ("gray.tif", ["--sigma-map", tmp_path / "map.npy", "--method", "pixelwise"],
              fn(gray, smap, method="pixelwise"))]
    for name, extra, expected in cases:
        out = tmp_path / f"out-{name}"
        res = _cli(tmp_path / name, out, flag, *extra, "--slab-slices", "3")
        assert res.exit_code == 0, res.output
        assert "in slabs" in res.output and "once per σ level or channel group" in res.output
        assert np.array_equal(tifffile.imread(out), expected), name


def test_cli_goes_by_slabs_above_the_threshold(rng, tmp_path, monkeypatch):
    """The CLI's slab rule (a TIFF over AUTO_SLAB_VALUES values) takes per-channel σ and pixelwise maps too."""
    import nlmeans.cli.denoise as cli_denoise

    rgb, gray, smap = _files(rng, tmp_path)
    monkeypatch.setattr(cli_denoise, "AUTO_SLAB_VALUES", gray.size - 1)
    res = _cli(tmp_path / "rgb.tif", tmp_path / "a.tif", "--volume", "--sigma", "5,20,35")
    assert res.exit_code == 0 and "in slabs" in res.output, res.output
    assert np.array_equal(tifffile.imread(tmp_path / "a.tif"),
                          denoise_volume(rgb, [5 / 255, 20 / 255, 35 / 255], channel_axis=-1))
    res = _cli(tmp_path / "gray.tif", tmp_path / "b.tif", "--volume", "--sigma-map", tmp_path / "map.npy",
               "--method", "pixelwise")
    assert res.exit_code == 0 and "in slabs" in res.output, res.output
    assert np.array_equal(tifffile.imread(tmp_path / "b.tif"), denoise_volume(gray, smap, method="pixelwise"))


def test_cli_errors_stay_one_line(rng, tmp_path):
    _files(rng, tmp_path)
    res = _cli(tmp_path / "rgb.tif", tmp_path / "o.tif", "--volume", "--sigma", "5,20", "--slab-slices", "3")
    assert res.exit_code == 2 and "gives 2 values but INPUT has 3 channel(s)" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "o.tif").exists()


def test_cli_subprocess_in_slabs_is_in_memory(rng, tmp_path):
    """A real ``python -m nlmeans`` run in slabs and one in memory write the same file."""
    _files(rng, tmp_path)
    outs = []
    for i, extra in enumerate((["--slab-slices", "2"], [])):
        out = tmp_path / f"sub{i}.tif"
        res = subprocess.run([sys.executable, "-m", "nlmeans", "denoise", str(tmp_path / "rgb.tif"), str(out),
                              "--volume", "--sigma", "5,20,35", "--method", "pixelwise", *extra],
                             capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert res.returncode == 0, res.stderr
        outs.append(tifffile.imread(out))
    assert np.array_equal(*outs)
