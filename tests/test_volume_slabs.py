"""Volumes and video in slabs along Z (T): the same bits as the whole stack in memory, from arrays, zarr and
multi-page TIFFs, and no half-written output when a run is interrupted."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from nlmeans import volume
from nlmeans.cli import main
from nlmeans.io import TEMP_PREFIX, open_stack, read_stack
from nlmeans.volume import denoise_video, denoise_volume, slab_halo

ROOT = Path(__file__).resolve().parent.parent


def _stack(rng, shape, dtype=np.float32):
    """A piecewise-constant stack with an edge in every direction, plus noise of σ = 0.1 (integers: scaled)."""
    z, y, x = np.indices(shape[:3])
    clean = 0.3 + 0.4 * ((z // 11 + y // 5 + x // 4) % 2)
    if len(shape) == 4:
        clean = clean[..., None] * np.linspace(0.6, 1.0, shape[3])
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    if np.dtype(dtype).kind == "u":
        return np.rint(noisy * np.iinfo(dtype).max).astype(dtype)
    return noisy.astype(dtype)


def _run(kind, data, **kw):
    if kind == "video":
        return denoise_video(data, temporal_radius=2, **kw)
    return denoise_volume(data, **kw)


@pytest.mark.parametrize("kind", ["volume", "video"])
@pytest.mark.parametrize("method", ["nlbayes", "pixelwise"])
@pytest.mark.parametrize("shape,dtype", [((66, 12, 11), np.float32), ((58, 10, 12, 2), np.uint16)])
def test_slabs_equal_the_whole_stack(rng, kind, method, shape, dtype):
    """Several slab sizes (1: the unit; one not a multiple of it; larger than the stack), σ estimated (the
    rule of 8 slices read one by one is the same in both paths), gray and 2 channels."""
    data = _stack(rng, shape, dtype)
    axis = None if len(shape) == 3 else -1
    whole, used = _run(kind, data, sigma=None, method=method, channel_axis=axis, return_settings=True)
    assert used.sigma_estimated and used.method == method
    halo = slab_halo(used, 2 if kind == "video" else None)
    for slab in (1, 13, 2 * halo.unit, 500):
        part, used_part = _run(kind, data, sigma=None, method=method, channel_axis=axis, slab_slices=slab,
                               return_settings=True)
        assert part.dtype == whole.dtype and used_part == used
        assert np.array_equal(part, whole), (slab, np.abs(part.astype(float) - whole).max())


@pytest.mark.parametrize("method", ["nlbayes", "pixelwise"])
@pytest.mark.parametrize("kind", ["volume", "video"])
def test_a_shorter_halo_changes_the_result(rng, monkeypatch, method, kind):
    """The halo is needed: one unit (one slice for pixelwise) less above the kept slices changes some bits,
    so the identity above is not an accident of smooth data."""
    data = _stack(rng, (66, 12, 11))
    whole = _run(kind, data, sigma=0.1, method=method)
    real = volume.slab_halo

    def short(settings, temporal_radius=None):
        halo = real(settings, temporal_radius)
        return volume.Halo(halo.unit, halo.top - halo.unit, halo.bottom)

    monkeypatch.setattr(volume, "slab_halo", short)
    part = _run(kind, data, sigma=0.1, method=method, slab_slices=1)
    assert not np.array_equal(part, whole)


def test_halo_of_the_presets():
    """The NL-Bayes walk on the volume presets (bands of 10 slices, reach 5, step 2 in both stages): the unit
    is 10 and the halo reaches back two bands of each stage."""
    _, used = denoise_volume(np.zeros((12, 12, 12), np.float32), 0.1, return_settings=True)
    assert slab_halo(used) == volume.Halo(10, 30, 25)
    _, used = denoise_volume(np.zeros((12, 12, 12), np.float32), 0.1, method="pixelwise", return_settings=True)
    assert slab_halo(used) == volume.Halo(1, used.search_size // 2 + used.patch_size // 2,
                                          used.search_size // 2 + used.patch_size // 2)


def test_array_likes_in_and_out(rng, tmp_path):
    """A zarr array in, a memmap out (and the other way round): read and written slab by slab."""
    zarr = pytest.importorskip("zarr")
    data = _stack(rng, (50, 10, 10), np.uint16)
    whole = denoise_volume(data, 0.1)
    src = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=data.shape, dtype=data.dtype,
                          chunks=(7, 10, 10))
    src[:] = data
    dst = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=data.dtype, shape=data.shape)
    assert denoise_volume(src, 0.1, slab_slices=10, out=dst) is dst
    assert np.array_equal(np.load(tmp_path / "out.npy"), whole)
    np.save(tmp_path / "in.npy", data)
    dst2 = zarr.open_array(str(tmp_path / "out.zarr"), mode="w", shape=data.shape, dtype=data.dtype,
                           chunks=(16, 10, 10))
    denoise_volume(np.load(tmp_path / "in.npy", mmap_mode="r"), 0.1, out=dst2)  # default slabs
    assert np.array_equal(dst2[:], whole)


def test_bad_slab_arguments(rng):
    data = _stack(rng, (20, 10, 10))
    with pytest.raises(ValueError, match="slab_slices must be a positive integer"):
        denoise_volume(data, 0.1, slab_slices=0)
    with pytest.raises(TypeError, match="slab_slices"):
        denoise_volume(data, 0.1, slab_slices=2.5)
    with pytest.raises(ValueError, match="out has shape"):
        denoise_volume(data, 0.1, out=np.empty((20, 10, 9), np.float32))
    with pytest.raises(ValueError, match="out shares memory"):
        denoise_volume(data, 0.1, out=data)
    bad = data.copy()
    bad[17, 3, 3] = np.nan  # in the last slab, after the σ slices: refused when that slab is read
    with pytest.raises(ValueError, match="NaN"):
        denoise_volume(bad, 0.1, slab_slices=1)


# --- files: multi-page TIFFs written by tifffile, zarr, the command line ---


def _tiff_cases(rng):
    gray = _stack(rng, (62, 12, 12), np.uint16)
    two = _stack(rng, (50, 10, 12, 2), np.uint8)
    rgb = _stack(rng, (44, 10, 10, 3), np.uint8)
    return {
        "gray_uint16": (gray, dict(photometric="minisblack"), gray),
        "gray_zlib": (gray, dict(photometric="minisblack", compression="zlib"), gray),
        "rgb_uint8": (rgb, dict(photometric="rgb"), rgb),
        "rgb_planar": (np.moveaxis(rgb, -1, 1), dict(photometric="rgb", planarconfig="separate"), rgb),
        # 2 channels as ImageJ's Z, C axes (one page per slice and channel)
        "imagej_zc": (np.moveaxis(two, -1, 1), dict(imagej=True, metadata={"axes": "ZCYX"}), two),
    }


def test_open_stack_reads_what_read_stack_reads(rng, tmp_path):
    for name, (stored, options, expected) in _tiff_cases(rng).items():
        path = tmp_path / f"{name}.tif"
        tifffile.imwrite(path, stored, **options)
        stack = open_stack(path)
        assert stack.shape == expected.shape and stack.dtype == expected.dtype, name
        assert np.array_equal(read_stack(path), expected), name
        assert np.array_equal(stack[:], expected), name
        assert np.array_equal(stack[5:9], expected[5:9]), name
        with pytest.raises(TypeError, match="whole slices"):
            stack[3]


@pytest.mark.parametrize("name", ["gray_uint16", "gray_zlib", "imagej_zc", "rgb_uint8"])
@pytest.mark.parametrize("flag", ["--volume", "--video"])
def test_cli_slabs_equal_in_memory(rng, tmp_path, name, flag):
    """`--slab-slices` on a real multi-page TIFF gives the file the in-memory route writes, and the
    Python call's result (read back with tifffile, not our reader)."""
    stored, options, expected = _tiff_cases(rng)[name]
    if "imagej" in options and flag == "--video":
        options = dict(options, metadata={"axes": "TCYX"})
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, stored, **options)
    runner = CliRunner()
    res = runner.invoke(main, ["denoise", str(src), str(tmp_path / "mem.tif"), flag])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["denoise", str(src), str(tmp_path / "slab.tif"), flag, "--slab-slices", "8"])
    assert res.exit_code == 0, res.output
    assert "slabs of " in res.output and "nlbayes" in res.output
    mem, slab = tifffile.imread(tmp_path / "mem.tif"), tifffile.imread(tmp_path / "slab.tif")
    assert slab.dtype == expected.dtype and np.array_equal(slab, mem)
    axis = None if expected.ndim == 3 else -1
    run = denoise_video if flag == "--video" else denoise_volume
    if "imagej" in options:  # an ImageJ C axis is written back as planes (Z, C, Y, X), as it was read
        slab = np.moveaxis(slab, 1, -1)
    assert np.array_equal(slab.reshape(expected.shape), run(expected, channel_axis=axis))


def test_cli_zarr_in_and_out(rng, tmp_path):
    zarr = pytest.importorskip("zarr")
    data = _stack(rng, (48, 10, 11), np.uint16)
    src = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=data.shape, dtype=data.dtype,
                          chunks=(5, 10, 11))
    src[:] = data
    expected = denoise_volume(data, 20 / 255, method="pixelwise")
    runner = CliRunner()
    res = runner.invoke(main, ["denoise", str(tmp_path / "in.zarr"), str(tmp_path / "out.tif"), "--volume",
                               "--sigma", "20", "--method", "pixelwise"])
    assert res.exit_code == 0, res.output
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), expected)
    tifffile.imwrite(tmp_path / "in.tif", data)
    res = runner.invoke(main, ["denoise", str(tmp_path / "in.tif"), str(tmp_path / "out.zarr"), "--volume",
                               "--sigma", "20", "--method", "pixelwise", "--slab-slices", "7"])
    assert res.exit_code == 0, res.output
    assert np.array_equal(zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[:], expected)


def test_cli_goes_by_slabs_above_the_threshold(rng, tmp_path, monkeypatch):
    import nlmeans.cli.denoise as cli_denoise

    data = _stack(rng, (40, 10, 10), np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", data)
    args = ["denoise", str(tmp_path / "in.tif"), str(tmp_path / "out.tif"), "--volume", "--sigma", "20"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0 and "slabs of" not in res.output
    monkeypatch.setattr(cli_denoise, "AUTO_SLAB_VALUES", data.size - 1)
    res = CliRunner().invoke(main, [*args, "--overwrite"])
    assert res.exit_code == 0 and "slabs of 40 slices" in res.output, res.output  # one slab: 40 slices
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), denoise_volume(data, 20 / 255))


def test_cli_slabs_refuse_the_other_kind(rng, tmp_path):
    """A file whose ImageJ axes say T frames is a usage error with --volume in slabs too (exit 2)."""
    two = _stack(rng, (12, 10, 10, 2), np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", np.moveaxis(two, -1, 1), imagej=True, metadata={"axes": "TCYX"})
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "in.tif"), str(tmp_path / "o.tif"), "--volume",
                                    "--slab-slices", "4"])
    assert res.exit_code == 2 and "say T (frames), not Z; use --video" in res.output
    assert not (tmp_path / "o.tif").exists()


def test_cli_slab_slices_needs_a_stack(tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", np.zeros((20, 20), np.uint8))
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "in.tif"), str(tmp_path / "o.tif"),
                                    "--slab-slices", "4"])
    assert res.exit_code == 2 and "--slab-slices needs --volume or --video" in res.output


# --- interruption: the signal lands between two slabs, after the first slab's slices are on disk ---

_CHILD = """
import os, signal, sys
import nlmeans.volume as vol

# as on a terminal: a child started from a background job inherits SIGINT ignored, and Python then keeps it so
signal.signal(signal.SIGINT, signal.default_int_handler)

real, calls = vol._denoise_block, []

def interrupted(*args):
    calls.append(1)
    if len(calls) == 3:  # the first slab is written (the warm-up run was call 1)
        os.kill(os.getpid(), int(os.environ["NLMEANS_TEST_SIGNAL"]))
        raise AssertionError("still running after the signal")
    return real(*args)

vol._denoise_block = interrupted
from nlmeans.cli import main
sys.exit(main(sys.argv[1:], prog_name="nlmeans"))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_interrupted_slab_run_leaves_no_output(rng, tmp_path, sig, suffix):
    """An existing output (``--overwrite``) stays as it was, the input too, and no new output appears: the
    slabs go to a temporary file renamed only at the end."""
    if suffix == ".zarr":
        pytest.importorskip("zarr")
    data = _stack(rng, (40, 10, 10), np.uint8)
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, data)
    before = src.read_bytes()
    out = tmp_path / f"out{suffix}"
    old = None
    if suffix == ".tif":
        tifffile.imwrite(out, np.full((3, 4, 4), 7, np.uint8))
        old = out.read_bytes()
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""),
               NLMEANS_TEST_SIGNAL=str(int(sig)))
    res = subprocess.run([sys.executable, "-c", _CHILD, "denoise", str(src), str(out), "--volume",
                          "--sigma", "20", "--method", "pixelwise", "--slab-slices", "5", "--overwrite"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert src.read_bytes() == before
    if old is None:
        assert not out.exists()
    else:
        assert out.read_bytes() == old
    partial = list(tmp_path.glob(TEMP_PREFIX + "*"))
    if sig == signal.SIGINT:
        assert res.returncode == 130, res.stderr
        assert partial == []  # cleaned up on the way out
    else:
        assert res.returncode == -signal.SIGKILL, res.stderr
        assert len(partial) == 1  # only a hidden temporary remains
