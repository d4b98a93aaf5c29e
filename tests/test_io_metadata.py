"""Metadata kept from input to output (issue 19, item 5), checked with independent readers: tifffile's tags and
ImageJ/OME parsers, Pillow's ``info`` (ICC profile, PNG text, dpi) and EXIF."""

import io
from fractions import Fraction

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage
from PIL import ImageOps, PngImagePlugin

from nlmeans.cli import main
from nlmeans.io import (
    DEFAULT_JPEG_QUALITY,
    Image,
    Metadata,
    encode_image,
    read_image,
    read_metadata,
    read_stack,
    write_image,
)

RNG = np.random.default_rng(19)
ICC = b"not a real profile, but bytes to carry" * 3
FAST = ["--sigma", "10", "--patch", "3", "--search", "5"]


def _u8(*shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _tags(path):
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        return {"x": page.tags.valueof(282), "y": page.tags.valueof(283), "unit": page.tags.valueof(296),
                "description": page.description, "icc": page.iccprofile}


# --- TIFF ---


@pytest.mark.parametrize("data", [_u8(20, 24), RNG.random((20, 24, 3)).astype(np.float32),
                                  RNG.integers(0, 65536, (20, 24), dtype=np.uint16)])
def test_tiff_resolution_description_icc_round_trip(tmp_path, data):
    kw = dict(photometric="rgb" if data.ndim == 3 else "minisblack")
    tifffile.imwrite(tmp_path / "in.tif", data, description="sample 7, stained",
                     resolution=((3000, 10), (1500, 7)), resolutionunit="CENTIMETER", iccprofile=ICC, **kw)
    write_image(tmp_path / "out.tif", read_image(tmp_path / "in.tif"))
    got = _tags(tmp_path / "out.tif")
    assert Fraction(*got.pop("x")) == 300 and Fraction(*got.pop("y")) == Fraction(1500, 7)  # exact rationals
    assert got == {"unit": 3, "description": "sample 7, stained", "icc": ICC}
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), data)


def test_tifffile_shape_record_is_not_taken_for_a_description(tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", _u8(8, 9))  # tifffile's own {"shape": ...} record, no resolution
    meta = read_image(tmp_path / "in.tif").meta
    assert meta.description is None and meta.resolution is None and not meta


def test_imagej_metadata_kept_for_a_channel_image(tmp_path):
    cyx = RNG.integers(0, 4000, (2, 16, 20), dtype=np.uint16)
    lut = np.zeros((3, 256), np.uint8)
    lut[1] = np.arange(256)  # a green lookup table
    tifffile.imwrite(tmp_path / "in.tif", cyx, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"axes": "CYX", "unit": "um", "Info": "objective 60x", "Labels": ["dapi", "gfp"],
                               "mode": "composite", "Ranges": (0, 4000, 10, 3000), "LUTs": [lut, lut]})
    image = read_image(tmp_path / "in.tif")
    assert image.data.shape == (16, 20, 2)
    write_image(tmp_path / "out.tif", image)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.is_imagej and tif.series[0].axes == "CYX"
        ij = tif.imagej_metadata
        np.testing.assert_array_equal(tif.asarray(), cyx)  # channels stored as planes again
        assert tif.pages.first.tags.valueof(282) == (4, 1)
    assert ij["unit"] == "um" and ij["Info"] == "objective 60x" and ij["Labels"] == ["dapi", "gfp"]
    assert ij["mode"] == "composite" and ij["channels"] == 2 and tuple(ij["Ranges"]) == (0, 4000, 10, 3000)
    np.testing.assert_array_equal(ij["LUTs"][1], lut)


def test_ome_metadata_kept(tmp_path):
    yx = _u8(16, 20)
    tifffile.imwrite(tmp_path / "in.ome.tif", yx, ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeXUnit": "µm",
                               "PhysicalSizeY": 0.25, "Name": "well A1"})
    write_image(tmp_path / "out.ome.tif", read_image(tmp_path / "in.ome.tif"))
    with tifffile.TiffFile(tmp_path / "out.ome.tif") as tif:
        assert tif.is_ome
        image = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]
        np.testing.assert_array_equal(tif.asarray(), yx)
    pixels = image["Pixels"]
    assert (pixels["PhysicalSizeX"], pixels["PhysicalSizeXUnit"], pixels["PhysicalSizeY"]) == (0.5, "µm", 0.25)
    assert image["Name"] == "well A1"


# --- PNG ---


def _png_with_text(path, data):
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "lab 3")
    info.add_text("Comment", "long " * 200, zip=True)  # zTXt
    info.add_itxt("Title", "grüße", lang="de", tkey="Titel")  # iTXt
    PILImage.fromarray(data).save(path, pnginfo=info, icc_profile=ICC, dpi=(300, 300))


@pytest.mark.parametrize("shape", [(12, 14), (12, 14, 3)])
def test_png_text_chunks_icc_and_resolution_kept(tmp_path, shape):
    data = _u8(*shape)
    _png_with_text(tmp_path / "in.png", data)
    write_image(tmp_path / "out.png", read_image(tmp_path / "in.png"))
    with PILImage.open(tmp_path / "in.png") as before, PILImage.open(tmp_path / "out.png") as after:
        after.load()
        assert after.info["icc_profile"] == ICC
        assert after.text == before.text and after.text["Title"] == "grüße"
        assert after.info["dpi"] == pytest.approx(before.info["dpi"], abs=0.01)
        np.testing.assert_array_equal(np.asarray(after), data)


def test_icc_and_resolution_cross_formats(tmp_path):
    _png_with_text(tmp_path / "in.png", _u8(12, 14, 3))
    write_image(tmp_path / "out.tif", read_image(tmp_path / "in.png"))  # PNG pHYs (per metre) -> TIFF per cm
    tags = _tags(tmp_path / "out.tif")
    assert tags["icc"] == ICC and tags["unit"] == 3
    assert tags["x"][0] / tags["x"][1] == pytest.approx(300 / 2.54, abs=0.01)
    write_image(tmp_path / "back.png", read_image(tmp_path / "out.tif"))
    with PILImage.open(tmp_path / "back.png") as im:
        assert im.info["icc_profile"] == ICC and im.info["dpi"] == pytest.approx((300, 300), abs=0.02)


# --- JPEG ---


def _jpeg(path, orientation):
    im = PILImage.fromarray(_u8(16, 24, 3))
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Camera Co"  # Make
    im.save(path, quality=95, exif=exif.tobytes(), icc_profile=ICC, dpi=(240, 240))


@pytest.mark.parametrize("orientation", [1, 6, 3])
def test_jpeg_icc_and_exif_kept_orientation_reset(tmp_path, orientation):
    _jpeg(tmp_path / "in.jpg", orientation)
    image = read_image(tmp_path / "in.jpg")
    write_image(tmp_path / "out.jpg", image)
    with PILImage.open(tmp_path / "out.jpg") as out:
        exif = out.getexif()
        assert out.info["icc_profile"] == ICC and out.info["dpi"] == pytest.approx((240, 240))
        assert exif[0x010F] == "Camera Co" and exif.get(0x0112, 1) == 1
        # a viewer that applies the EXIF shows the pixels as we read them: not turned a second time
        assert ImageOps.exif_transpose(out).size == (image.data.shape[1], image.data.shape[0])


def test_jpeg_quality_default_and_option(tmp_path):
    data = _u8(32, 40, 3)

    def pillow_jpeg(quality):
        buf = io.BytesIO()
        PILImage.fromarray(data).save(buf, "JPEG", quality=quality)
        return buf.getvalue()

    assert encode_image(data, "jpeg") == pillow_jpeg(DEFAULT_JPEG_QUALITY)
    write_image(tmp_path / "q.jpg", data, jpeg_quality=20)
    assert (tmp_path / "q.jpg").read_bytes() == pillow_jpeg(20)
    for bad in (0, 101, 50.5, True, "high"):
        with pytest.raises(ValueError, match="1 to 100"):
            write_image(tmp_path / "bad.jpg", data, jpeg_quality=bad)
    assert not (tmp_path / "bad.jpg").exists()


def test_cli_jpeg_quality(tmp_path):
    _jpeg(tmp_path / "in.jpg", 1)
    low = _run("denoise", tmp_path / "in.jpg", tmp_path / "low.jpg", "--jpeg-quality", "5", *FAST)
    assert "low.jpg" in low.output
    _run("denoise", tmp_path / "in.jpg", tmp_path / "high.jpg", *FAST)
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size
    for bad in ("0", "101", "x"):
        result = CliRunner().invoke(main, ["denoise", str(tmp_path / "in.jpg"), str(tmp_path / "b.jpg"),
                                           "--jpeg-quality", bad])
        assert result.exit_code == 2 and "--jpeg-quality" in result.output
    _run("noise", tmp_path / "in.jpg", tmp_path / "n.jpg", "--sigma", "20", "--jpeg-quality", "5")
    assert (tmp_path / "n.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size


# --- every route of the command line ---


def _described_tiff(path, data, **kw):
    tifffile.imwrite(path, data, description="route check", resolution=((720, 1), (720, 1)),
                     resolutionunit="INCH", iccprofile=ICC, **kw)


def _assert_kept(path):
    assert _tags(path) == {"x": (720, 1), "y": (720, 1), "unit": 2, "description": "route check", "icc": ICC}


def test_cli_single_strips_and_noise_keep_tiff_metadata(tmp_path):
    _described_tiff(tmp_path / "in.tif", _u8(40, 48), photometric="minisblack")
    _run("denoise", tmp_path / "in.tif", tmp_path / "single.tif", *FAST)
    _run("denoise", tmp_path / "in.tif", tmp_path / "strips.tif", "--tile-rows", "16", *FAST)
    _run("noise", tmp_path / "in.tif", tmp_path / "noisy.tif", "--sigma", "5")
    for name in ("single.tif", "strips.tif", "noisy.tif"):
        _assert_kept(tmp_path / name)


def test_cli_volume_keeps_imagej_metadata(tmp_path):
    zcyx = _u8(5, 2, 24, 24)
    tifffile.imwrite(tmp_path / "in.tif", zcyx, imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "ZCYX", "spacing": 3.5, "unit": "um", "Info": "stack info"})
    _run("denoise", tmp_path / "in.tif", tmp_path / "out.tif", "--volume", *FAST)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.is_imagej and tif.series[0].axes == "ZCYX" and tif.series[0].shape == zcyx.shape
        ij = tif.imagej_metadata
        assert tif.pages.first.tags.valueof(282) == (2, 1)
    assert (ij["spacing"], ij["unit"], ij["Info"], ij["slices"], ij["channels"]) == (3.5, "um", "stack info", 5, 2)
    assert read_stack(tmp_path / "out.tif").shape == (5, 24, 24, 2)


def test_cli_batch_keeps_metadata(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _described_tiff(src / "a.tif", _u8(24, 24), photometric="minisblack")
    _png_with_text(src / "b.png", _u8(24, 24))
    _jpeg(src / "c.jpg", 6)
    _run("denoise", src, "--out-dir", tmp_path / "out", *FAST)
    _assert_kept(tmp_path / "out" / "a.tif")
    with PILImage.open(tmp_path / "out" / "b.png") as im:
        assert im.info["icc_profile"] == ICC and im.text["Author"] == "lab 3"
    with PILImage.open(tmp_path / "out" / "c.jpg") as im:
        assert im.info["icc_profile"] == ICC and im.getexif().get(0x0112, 1) == 1 and im.size == (16, 24)
    _run("denoise", src / "c.jpg", "--out-dir", tmp_path / "low", "--jpeg-quality", "5", *FAST)
    assert (tmp_path / "low" / "c.jpg").stat().st_size < (tmp_path / "out" / "c.jpg").stat().st_size


def test_read_metadata_of_broken_files_is_empty(tmp_path):
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    assert read_metadata(tmp_path / "bad.tif") == Metadata()
    assert read_metadata(tmp_path / "missing.png") == Metadata()


def test_arrays_without_metadata_write_as_before(tmp_path):
    write_image(tmp_path / "a.png", Image(_u8(5, 6)))
    with PILImage.open(tmp_path / "a.png") as im:
        assert "icc_profile" not in im.info and not im.text and "dpi" not in im.info


def test_non_ascii_descriptions_are_written(tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", _u8(6, 7), description="grüße, 5 µm".encode())
    write_image(tmp_path / "out.tif", read_image(tmp_path / "in.tif"))
    assert _tags(tmp_path / "out.tif")["description"] == "grüße, 5 µm"
    meta = Metadata(imagej={"unit": "µm", "spacing": 0.5, "Info": "grüße"}, axes="YX")
    write_image(tmp_path / "ij.tif", Image(_u8(6, 7), meta=meta))
    with tifffile.TiffFile(tmp_path / "ij.tif") as tif:
        ij = tif.imagej_metadata
    assert ij["unit"] == "\\u00B5m" and ij["Info"] == "grüße"  # escaped in the description as ImageJ does
