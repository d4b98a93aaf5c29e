"""Every pixel format read right (checked against Pillow and tifffile) or refused; the pixel limit."""

import io
import zlib

import numpy as np
import png
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage
from PIL import ImageOps

import nlmeans.io as nio
import nlmeans.io.read as nio_read
from nlmeans.cli import main
from nlmeans.io import ImageIOError, open_array, read_image, read_stack

RNG = np.random.default_rng(21)


def pillow(path, mode=None):
    """What Pillow, an independent reader, makes of ``path`` (converted to ``mode`` when given)."""
    with PILImage.open(path) as im:
        return np.asarray(im.convert(mode) if mode else im)


def with_alpha(image):
    return np.dstack([image.data, image.alpha]) if image.alpha is not None else image.data


# --- PNG ---


@pytest.mark.parametrize("bitdepth", [1, 2, 4])
def test_low_bit_gray_png_fills_the_8_bit_range(tmp_path, bitdepth):
    levels = RNG.integers(0, 2**bitdepth, (9, 13))
    levels[0, :2] = 0, 2**bitdepth - 1
    png.Writer(13, 9, greyscale=True, bitdepth=bitdepth).write(open(tmp_path / "a.png", "wb"), levels.tolist())
    image = read_image(tmp_path / "a.png")
    assert image.data.dtype == np.uint8 and image.alpha is None
    np.testing.assert_array_equal(image.data, pillow(tmp_path / "a.png", "L"))
    assert image.data[0, 1] == 255


def test_low_bit_gray_png_with_transparency_gets_full_range_alpha(tmp_path):
    levels = RNG.integers(0, 4, (6, 7))
    levels[0, 0] = 3
    writer = png.Writer(7, 6, greyscale=True, bitdepth=2, transparent=3)
    writer.write(open(tmp_path / "a.png", "wb"), levels.tolist())
    image = read_image(tmp_path / "a.png")
    # Pillow keeps the 2-bit tRNS key (3) but compares it with its scaled levels, so alpha from the levels
    np.testing.assert_array_equal(image.data, pillow(tmp_path / "a.png", "L"))
    np.testing.assert_array_equal(image.alpha, np.where(levels == 3, 0, 255))


@pytest.mark.parametrize("sbit, bitdepth", [(12, 16), (10, 16), (5, 8)])
def test_sbit_png_significant_bits_fill_the_container(tmp_path, sbit, bitdepth):
    # pypng writes a `bitdepth` PNG with an sBIT chunk and the values scaled up; Pillow reads them raw
    values = RNG.integers(0, 2**sbit, (8, 11))
    values[0, :2] = 0, 2**sbit - 1
    png.Writer(11, 8, greyscale=True, bitdepth=sbit).write(open(tmp_path / "a.png", "wb"), values.tolist())
    raw = pillow(tmp_path / "a.png").astype(np.int64)
    assert raw.max() >= 2 ** (bitdepth - 1)  # the file holds container-range values (sanity)
    top = 2**bitdepth - 1
    significant = raw >> (bitdepth - sbit)
    expect = np.floor(significant * top / (2**sbit - 1) + 0.5)
    image = read_image(tmp_path / "a.png")
    assert image.data.dtype == (np.uint16 if bitdepth == 16 else np.uint8)
    np.testing.assert_array_equal(image.data, expect)
    assert image.data[0, 0] == 0 and image.data[0, 1] == top


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_png_is_expanded_to_rgb(tmp_path, transparent):
    palette = [tuple(int(v) for v in RNG.integers(0, 256, 3)) + ((int(RNG.integers(0, 256)),) if transparent
               else ()) for _ in range(4)]
    indices = RNG.integers(0, 4, (10, 12))
    png.Writer(12, 10, palette=palette, bitdepth=2).write(open(tmp_path / "p.png", "wb"), indices.tolist())
    image = read_image(tmp_path / "p.png")
    mode = "RGBA" if transparent else "RGB"
    np.testing.assert_array_equal(with_alpha(image), pillow(tmp_path / "p.png", mode))


@pytest.mark.parametrize("bitdepth", [2, 4])
def test_noise_sigma_0_keeps_a_low_bit_png(tmp_path, bitdepth):
    levels = RNG.integers(0, 2**bitdepth, (16, 16))
    png.Writer(16, 16, greyscale=True, bitdepth=bitdepth).write(open(tmp_path / "a.png", "wb"), levels.tolist())
    res = CliRunner().invoke(main, ["noise", str(tmp_path / "a.png"), str(tmp_path / "n.png"), "--sigma", "0"])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(pillow(tmp_path / "n.png", "L"), pillow(tmp_path / "a.png", "L"))


# --- TIFF ---


def test_miniswhite_tiff_is_read_min_is_black(tmp_path):
    stored = RNG.integers(0, 256, (9, 10), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "w.tif", stored, photometric="miniswhite")
    image = read_image(tmp_path / "w.tif")
    np.testing.assert_array_equal(image.data, pillow(tmp_path / "w.tif", "L"))
    np.testing.assert_array_equal(image.data, 255 - stored)


def test_miniswhite_16_bit_and_bilevel_tiff(tmp_path):
    stored = RNG.integers(0, 65536, (5, 6), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "w16.tif", stored, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "w16.tif").data, 65535 - stored)
    ink = RNG.integers(0, 2, (7, 9)).astype(bool)
    tifffile.imwrite(tmp_path / "fax.tif", ink, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "fax.tif").data, pillow(tmp_path / "fax.tif", "L"))


@pytest.mark.parametrize("eight_bit", [True, False])
def test_palette_tiff_is_expanded_through_its_colormap(tmp_path, eight_bit):
    indices = RNG.integers(0, 256, (8, 9), dtype=np.uint8)
    colours = RNG.integers(0, 256, (3, 256))
    colormap = (colours * 257 if eight_bit else colours * 256 + 3).astype(np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", indices, photometric="palette", colormap=colormap)
    image = read_image(tmp_path / "p.tif")
    assert image.data.shape == (8, 9, 3)
    if eight_bit:  # Pillow takes a colormap's high bytes
        assert image.data.dtype == np.uint8
        np.testing.assert_array_equal(image.data, pillow(tmp_path / "p.tif", "RGB"))
    else:
        with tifffile.TiffFile(tmp_path / "p.tif") as tif:
            expect = np.moveaxis(tif.pages[0].colormap[:, tif.pages[0].asarray()], 0, -1)
        np.testing.assert_array_equal(image.data, expect)


@pytest.mark.parametrize("width", [3, 4, 5])  # 5: the old shape guess got it right (a guard)
def test_planar_tiff_samples_moved_last_by_the_tag(tmp_path, width):
    rgb = RNG.integers(0, 256, (3, width, 3), dtype=np.uint8)  # 3 rows, `width` columns, RGB
    tifffile.imwrite(tmp_path / "p.tif", np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    image = read_image(tmp_path / "p.tif")
    np.testing.assert_array_equal(image.data, pillow(tmp_path / "p.tif", "RGB"))
    np.testing.assert_array_equal(image.data, rgb)
    assert image.alpha is None


def test_interleaved_tiff_with_3_rows_is_not_transposed(tmp_path):
    gray_alpha = RNG.integers(0, 256, (3, 7, 2), dtype=np.uint8)  # 3 rows, 7 columns, gray + alpha
    tifffile.imwrite(tmp_path / "c.tif", gray_alpha, photometric="minisblack", planarconfig="contig",
                     extrasamples=["unassalpha"])
    np.testing.assert_array_equal(with_alpha(read_image(tmp_path / "c.tif")), pillow(tmp_path / "c.tif", "LA"))


def test_tiff_alpha_comes_from_extrasamples(tmp_path):
    rgba = RNG.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "a.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    image = read_image(tmp_path / "a.tif")
    np.testing.assert_array_equal(with_alpha(image), pillow(tmp_path / "a.tif", "RGBA"))
    assert image.alpha is not None
    # an unspecified extra sample is data, not alpha; a 2-channel gray image has no alpha either
    tifffile.imwrite(tmp_path / "u.tif", rgba, photometric="rgb", extrasamples=["unspecified"])
    image = read_image(tmp_path / "u.tif")
    assert image.alpha is None
    np.testing.assert_array_equal(image.data, rgba)
    tifffile.imwrite(tmp_path / "g.tif", rgba[..., :2], photometric="minisblack", extrasamples=["unspecified"])
    assert read_image(tmp_path / "g.tif").alpha is None


def test_cmyk_tiff_is_converted_to_rgb(tmp_path):
    cmyk = RNG.integers(0, 256, (7, 8, 4), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", cmyk, photometric="separated")
    image = read_image(tmp_path / "c.tif")
    assert image.alpha is None
    np.testing.assert_array_equal(image.data, pillow(tmp_path / "c.tif", "RGB"))


def test_ycbcr_tiff_is_converted_to_rgb(tmp_path):
    ycc = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "y.tif", ycc, photometric="ycbcr", subsampling=(1, 1))
    got = read_image(tmp_path / "y.tif").data.astype(int)
    assert np.abs(got - pillow(tmp_path / "y.tif", "RGB")).max() <= 1  # Pillow rounds in fixed point


def test_unsupported_photometric_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "lab.tif", RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8), photometric="cielab")
    with pytest.raises(ImageIOError, match=r"photometric CIELAB is not supported \(allowed: .*") as info:
        read_image(tmp_path / "lab.tif")
    assert "\n" not in str(info.value)


def test_strip_path_refuses_what_it_would_misread(tmp_path):
    tifffile.imwrite(tmp_path / "w.tif", np.zeros((4, 5), np.uint8), photometric="miniswhite")
    with pytest.raises(ImageIOError, match="MINISWHITE"):
        open_array(tmp_path / "w.tif")
    tifffile.imwrite(tmp_path / "p.tif", np.zeros((3, 4, 5), np.uint8), photometric="rgb", planarconfig="separate")
    with pytest.raises(ImageIOError, match="planar"):
        open_array(tmp_path / "p.tif")
    tifffile.imwrite(tmp_path / "pal.tif", np.zeros((4, 5), np.uint8), photometric="palette",
                     colormap=np.zeros((3, 256), np.uint16))
    with pytest.raises(ImageIOError, match="PALETTE"):
        open_array(tmp_path / "pal.tif")


def test_stack_is_read_by_its_tags(tmp_path):
    pages = RNG.integers(0, 256, (3, 5, 6), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "w.tif", pages, photometric="miniswhite")
    np.testing.assert_array_equal(read_stack(tmp_path / "w.tif"), 255 - pages)
    rgb = RNG.integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", np.moveaxis(rgb, -1, 1), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_stack(tmp_path / "p.tif"), rgb)


# --- JPEG ---


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    cmyk = RNG.integers(0, 256, (16, 24, 4), dtype=np.uint8)
    PILImage.fromarray(cmyk, "CMYK").save(tmp_path / "c.jpg", quality=95)
    image = read_image(tmp_path / "c.jpg")
    assert image.alpha is None and image.data.shape == (16, 24, 3)
    np.testing.assert_array_equal(image.data, pillow(tmp_path / "c.jpg", "RGB"))


@pytest.mark.parametrize("orientation", [3, 6, 8, 2])
def test_jpeg_exif_orientation_is_applied(tmp_path, orientation):
    PILImage.fromarray(RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(tmp_path / "o.jpg", quality=95)
    with PILImage.open(tmp_path / "o.jpg") as im:
        exif = im.getexif()
        exif[0x0112] = orientation
        im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    with PILImage.open(tmp_path / "r.jpg") as im:
        expect = np.asarray(ImageOps.exif_transpose(im))
    image = read_image(tmp_path / "r.jpg")
    np.testing.assert_array_equal(image.data, expect)
    assert image.data.shape[:2] == ((24, 16) if orientation in (6, 8) else (16, 24))


# --- pixel limit ---


def png_bomb(path, side):
    """A ``side``² 8-bit gray PNG of zeros, compressed IDAT written by hand (about side² / 1000 bytes)."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))

    comp = zlib.compressobj(9)
    row = bytes(side + 1)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def lying_jpeg(path, side):
    """A small JPEG whose frame header (SOF0) claims ``side`` × ``side`` pixels, cut to 333 bytes."""
    buf = io.BytesIO()
    PILImage.fromarray(np.zeros((8, 8), np.uint8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = side.to_bytes(2, "big") * 2
    path.write_bytes(bytes(data[:333]))


def test_png_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    png_bomb(tmp_path / "bomb.png", 30000)
    assert (tmp_path / "bomb.png").stat().st_size < 2_000_000
    monkeypatch.setattr(nio_read, "available_memory", lambda: 16 << 30)  # the default limit of a 16 GiB machine
    with pytest.raises(ImageIOError) as info:
        read_image(tmp_path / "bomb.png")
    msg = str(info.value)
    assert "30000×30000 = 900,000,000 pixels" in msg and f"{nio.default_max_pixels(1):,}" in msg
    for hint in ("max_pixels=", "--max-pixels", "--tile-rows", "--volume/--video"):
        assert hint in msg
    assert "\n" not in msg


def test_lying_jpeg_is_refused_before_decoding(tmp_path, monkeypatch):
    lying_jpeg(tmp_path / "lie.jpg", 12000)
    with pytest.warns(PILImage.DecompressionBombWarning), PILImage.open(tmp_path / "lie.jpg") as im:
        assert im.size == (12000, 12000)  # the header does claim 12000² (sanity)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(PILImage.Image, "load", no_decoding)
    monkeypatch.setattr(PILImage.Image, "copy", no_decoding)
    with pytest.raises(ImageIOError, match=r"claims 12000×12000 pixels, but 333 bytes cannot hold them"):
        read_image(tmp_path / "lie.jpg")
    with pytest.raises(ImageIOError, match="144,000,000 pixels is more than the limit of 1,000,000"):
        read_image(tmp_path / "lie.jpg", max_pixels=1_000_000)


@pytest.mark.parametrize("name", ["a.png", "a.tif", "a.jpg", "a.bmp"])
def test_max_pixels_refuses_and_allows(tmp_path, name):
    arr = RNG.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    PILImage.fromarray(arr).save(tmp_path / name)
    with pytest.raises(ImageIOError, match=r"50×40 = 2,000 pixels is more than the limit of 1,999 \(max_pixels\)"):
        read_image(tmp_path / name, max_pixels=1999)
    assert read_image(tmp_path / name, max_pixels=2000).data.shape == (40, 50, 3)
    assert read_image(tmp_path / name, max_pixels=0).data.shape == (40, 50, 3)
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(tmp_path / name, max_pixels=-1)


def test_tiff_limit_from_the_tags(tmp_path):
    tifffile.imwrite(tmp_path / "big.tif", shape=(20000, 30000), dtype=np.uint8)  # strips never written
    with pytest.raises(ImageIOError, match=r"30000×20000 = 600,000,000 pixels"):
        read_image(tmp_path / "big.tif", max_pixels=10**8)


def test_default_limit_follows_memory(monkeypatch):
    monkeypatch.setattr(nio_read, "available_memory", lambda: 24 << 30)
    assert nio.default_max_pixels(3) >= 8192 * 8192  # an 8k photo on a 24 GiB machine
    assert nio.default_max_pixels(1) >= 3 * nio.default_max_pixels(3)  # working memory grows with channels
    monkeypatch.setattr(nio_read, "available_memory", lambda: 1 << 30)
    assert nio.default_max_pixels(1) < 30000**2


def test_12_bit_tiff_fills_its_container(tmp_path):
    pytest.importorskip("imagecodecs", reason="tifffile decodes 12-bit samples with imagecodecs only")
    twelve = RNG.integers(0, 4096, (5, 8), dtype=np.uint16)
    twelve[0, :2] = 0, 4095
    # tifffile cannot pack 12-bit samples here: write the packed bytes (two samples in three bytes, most
    # significant bits first) as an 8-bit image, then make its tags say 8 columns of 12 bits
    pairs = twelve.reshape(5, 4, 2).astype(np.uint32)
    word = (pairs[..., 0] << 12) | pairs[..., 1]
    packed = np.stack([word >> 16, (word >> 8) & 255, word & 255], axis=-1).reshape(5, 12).astype(np.uint8)
    tifffile.imwrite(tmp_path / "g12.tif", packed, photometric="minisblack", metadata=None)
    with tifffile.TiffFile(tmp_path / "g12.tif", mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(8)
        tif.pages[0].tags["BitsPerSample"].overwrite(12)
    with tifffile.TiffFile(tmp_path / "g12.tif") as tif:  # tifffile reads the 12-bit samples as stored
        stored = tif.asarray().astype(np.int64)
    np.testing.assert_array_equal(stored, twelve)
    np.testing.assert_array_equal(read_image(tmp_path / "g12.tif").data, np.floor(stored * 65535 / 4095 + 0.5))


def test_4_bit_tiff_fills_its_container(tmp_path):
    pytest.importorskip("imagecodecs", reason="tifffile packs 4-bit samples with imagecodecs only")
    levels = RNG.integers(0, 16, (6, 9), dtype=np.uint8)
    levels[0, :2] = 0, 15
    tifffile.imwrite(tmp_path / "g4.tif", levels, bitspersample=4, photometric="minisblack")
    image = read_image(tmp_path / "g4.tif")
    np.testing.assert_array_equal(image.data, pillow(tmp_path / "g4.tif", "L"))
    assert image.data[0, 1] == 255


def test_jpeg_ycbcr_tiff_is_read_as_rgb(tmp_path):  # a guard: tifffile's JPEG decoder gives RGB
    pytest.importorskip("imagecodecs", reason="tifffile decodes JPEG with imagecodecs only")
    rgb = np.clip(RNG.normal(128, 20, (32, 40, 3)), 0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "j.tif", rgb, photometric="ycbcr", compression="jpeg", subsampling=(2, 2))
    np.testing.assert_array_equal(read_image(tmp_path / "j.tif").data, pillow(tmp_path / "j.tif", "RGB"))
