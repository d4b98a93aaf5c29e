"""Stacks are never guessed (#19 item 1): multi-page TIFFs written by tifffile (plain, ImageJ hyperstacks,
OME-TIFF) are refused as single images with the flag their axes call for (exit 2), read as volumes or video
with channels only where the file says so."""

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from nlmeans.cli import main
from nlmeans.io import StackError, read_image, read_stack

RNG = np.random.default_rng(7)
BOTH = "--volume (Z slices of a 3-D volume) or --video"


def _u8(*shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def _denoise(*args):
    return CliRunner().invoke(main, ["denoise", *map(str, args), "--sigma", "10"])


@pytest.mark.parametrize("write, flag", [
    (dict(photometric="minisblack"), BOTH),  # plain pages, tifffile's shape description
    (dict(photometric="minisblack", metadata=None), BOTH),  # no description at all
    (dict(imagej=True, metadata={"axes": "ZYX"}), "give --volume"),
    (dict(imagej=True, metadata={"axes": "TYX"}), "give --video"),
    (dict(ome=True, metadata={"axes": "ZYX"}), "give --volume"),
])
@pytest.mark.parametrize("pages", [4, 16])
def test_a_stack_without_flag_is_a_usage_error_naming_the_flag(tmp_path, write, flag, pages):
    stack = _u8(pages, 128, 128)
    src = tmp_path / ("s.ome.tif" if write.get("ome") else "s.tif")
    tifffile.imwrite(src, stack, **write)
    with pytest.raises(StackError, match=flag.replace("(", r"\(").replace(")", r"\)")):
        read_image(src)
    res = _denoise(src, tmp_path / "out.tif")
    assert res.exit_code == 2, res.output  # a usage error: the file is fine, the command lacks a flag
    assert flag in res.output and f"{pages} " in res.output
    assert "Traceback" not in res.output and not (tmp_path / "out.tif").exists()
    # with the flag the same file is the stack it is: slices first, not 128 channels or transposed
    np.testing.assert_array_equal(read_stack(src), stack)


def test_the_old_misreads_are_gone(tmp_path):
    """16×128×128 was denoised as a 128×16 image with 128 channels; 4 pages came back (128, 128, 4)."""
    for pages in (4, 16):
        tifffile.imwrite(tmp_path / f"p{pages}.tif", _u8(pages, 128, 128), photometric="minisblack")
        res = _denoise(tmp_path / f"p{pages}.tif", tmp_path / f"o{pages}.tif")
        assert res.exit_code == 2 and "--volume" in res.output and "--video" in res.output


def test_volume_flag_on_an_imagej_time_series_is_refused(tmp_path):
    src = tmp_path / "t.tif"
    tifffile.imwrite(src, _u8(5, 32, 32), imagej=True, metadata={"axes": "TYX"})
    res = CliRunner().invoke(main, ["denoise", str(src), str(tmp_path / "o.tif"), "--volume", "--sigma", "10"])
    assert res.exit_code == 2 and "use --video" in res.output
    with pytest.raises(StackError, match="use --volume"):
        read_stack(_zyx(tmp_path), kind="video")


def _zyx(tmp_path):
    src = tmp_path / "z.tif"
    tifffile.imwrite(src, _u8(5, 32, 32), imagej=True, metadata={"axes": "ZYX"})
    return src


def test_imagej_hyperstack_with_channels_is_a_volume_with_channels_last(tmp_path):
    zcyx = _u8(5, 2, 32, 32)
    tifffile.imwrite(tmp_path / "h.tif", zcyx, imagej=True, metadata={"axes": "ZCYX"})
    got = read_stack(tmp_path / "h.tif", kind="volume")
    np.testing.assert_array_equal(got, np.moveaxis(zcyx, 1, -1))  # (Z, Y, X, C), not 10 slices


def test_ome_czyx_is_a_volume_with_channels_last(tmp_path):
    czyx = _u8(2, 5, 32, 32)
    src = tmp_path / "c.ome.tif"
    tifffile.imwrite(src, czyx, ome=True, metadata={"axes": "CZYX"})
    np.testing.assert_array_equal(read_stack(src), np.moveaxis(czyx, 0, -1))
    out = tmp_path / "o.tif"
    res = CliRunner().invoke(main, ["denoise", str(src), str(out), "--volume", "--sigma", "10",
                                    "--patch", "3", "--search", "5"])
    assert res.exit_code == 0, res.output
    assert read_stack(out).shape == (5, 32, 32, 2)
    with tifffile.TiffFile(out) as tif:  # the OME metadata kept: the channels stay a C axis of planes
        assert tif.is_ome and tif.series[0].axes == "ZCYX" and tif.series[0].shape == (5, 2, 32, 32)


def test_channels_only_when_the_file_says_so(tmp_path):
    cyx = _u8(2, 32, 32)  # ImageJ "C": a 2-channel image, read channels last
    tifffile.imwrite(tmp_path / "c.tif", cyx, imagej=True, metadata={"axes": "CYX"})
    np.testing.assert_array_equal(read_image(tmp_path / "c.tif").data, np.moveaxis(cyx, 0, -1))
    rgb = _u8(32, 32, 3)  # photometric RGB: channels
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.tif").data, rgb)
    # 3 minisblack pages are a stack, not an RGB image
    tifffile.imwrite(tmp_path / "three.tif", _u8(3, 32, 32), photometric="minisblack")
    with pytest.raises(StackError):
        read_image(tmp_path / "three.tif")


def test_tifffiles_default_planar_rgba_is_what_its_tags_say(tmp_path):
    """tifffile (deprecated default) stores a (4, H, W) array as one planar RGB page with an alpha extra
    sample: the file's tags say RGBA, so it is read as RGB + alpha, untransposed; the summary line says so."""
    planes = _u8(4, 32, 32)
    with pytest.warns(DeprecationWarning):
        tifffile.imwrite(tmp_path / "q.tif", planes)
    image = read_image(tmp_path / "q.tif")
    np.testing.assert_array_equal(image.data, np.moveaxis(planes[:3], 0, -1))
    np.testing.assert_array_equal(image.alpha, planes[3])
    assert "3-channel + alpha" in image.describe()


def test_4d_stacks_are_refused_not_flattened(tmp_path):
    tifffile.imwrite(tmp_path / "tz.tif", _u8(3, 4, 16, 16), imagej=True, metadata={"axes": "TZYX"})
    with pytest.raises(StackError, match="4-D stack"):
        read_stack(tmp_path / "tz.tif")
    with pytest.raises(StackError, match="4-D stack"):
        read_image(tmp_path / "tz.tif")
