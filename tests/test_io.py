import numpy as np
import pytest

from nlmeans.io import Image, ImageIOError, check_writable, read_image, write_image

CASES = [
    ("g8.png", (20, 30), np.uint8, False),
    ("g16.png", (20, 30), np.uint16, False),
    ("c8.png", (20, 30, 3), np.uint8, False),
    ("c16.png", (20, 30, 3), np.uint16, False),
    ("ga8.png", (20, 30), np.uint8, True),
    ("ca16.png", (20, 30, 3), np.uint16, True),
    ("g16.tif", (20, 30), np.uint16, False),
    ("c8.tif", (20, 30, 3), np.uint8, False),
    ("f32.tif", (20, 30), np.float32, False),
    ("f64c.tif", (20, 30, 3), np.float64, False),
    ("ca8.tif", (20, 30, 3), np.uint8, True),
]


@pytest.mark.parametrize("name,shape,dtype,alpha", CASES)
def test_round_trip_keeps_bit_depth_gray_and_alpha(tmp_path, rng, name, shape, dtype, alpha):
    if np.dtype(dtype).kind == "u":
        data = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    else:
        data = rng.random(shape).astype(dtype)
    a = rng.integers(0, 255, shape[:2]).astype(dtype) if alpha else None
    write_image(tmp_path / name, Image(data, a))
    back = read_image(tmp_path / name)
    assert back.data.dtype == data.dtype and back.data.shape == data.shape
    np.testing.assert_array_equal(back.data, data)
    if alpha:
        np.testing.assert_array_equal(back.alpha, a)
    else:
        assert back.alpha is None


def test_jpeg_is_8_bit_only(tmp_path):
    write_image(tmp_path / "a.jpg", np.full((8, 8), 100, np.uint8))
    assert read_image(tmp_path / "a.jpg").data.dtype == np.uint8
    with pytest.raises(ImageIOError, match="8-bit"):
        write_image(tmp_path / "b.jpg", np.zeros((8, 8), np.uint16))


def test_unreadable_files_give_one_line_errors(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    for path, match in [
        (tmp_path / "missing.png", "no such file"),
        (tmp_path / "text.png", "cannot read"),
        (tmp_path, "folder"),
    ]:
        with pytest.raises(ImageIOError, match=match) as info:
            read_image(path)
        assert "\n" not in str(info.value)


def test_check_writable(tmp_path):
    src = tmp_path / "in.png"
    write_image(src, np.zeros((4, 4), np.uint8))
    with pytest.raises(ImageIOError, match="input"):
        check_writable(src, overwrite=True, inputs=[src])
    with pytest.raises(ImageIOError, match="exists"):
        check_writable(src)
    with pytest.raises(ImageIOError, match="does not exist"):
        check_writable(tmp_path / "nope" / "out.png")
    with pytest.raises(ImageIOError, match="format"):
        check_writable(tmp_path / "out.xyz")
    check_writable(tmp_path / "new.png")


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ImageIOError):
        write_image(tmp_path / "out.png", np.zeros((4, 4), np.float32))  # PNG holds no floats
    assert list(tmp_path.iterdir()) == []


# --- one atomic writer (atomic_output) behind write_image, create_array and write_stack ---


@pytest.mark.parametrize("name", ["o.tif", "o.zarr"])
@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_an_error_inside_create_array_leaves_nothing(tmp_path, name, error):
    from nlmeans.io import create_array

    with pytest.raises(ImageIOError if isinstance(error, Exception) else KeyboardInterrupt) as info:
        with create_array(tmp_path / name, (16, 12), np.uint16) as out:
            out[:8] = 7
            assert len(list(tmp_path.iterdir())) == 1  # the hidden temporary only
            raise error
    if isinstance(error, Exception):
        assert "cannot write (boom); no output was left behind" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["o.tif", "o.zarr"])
def test_create_array_appears_complete_and_replaces(tmp_path, name):
    import os

    from nlmeans.io import create_array, open_array

    data = np.arange(16 * 12, dtype=np.uint16).reshape(16, 12)
    for i, fill in enumerate((data, data[::-1])):  # the second write replaces the first (a Zarr folder too)
        with create_array(tmp_path / name, data.shape, data.dtype) as out:
            out[...] = fill
            assert (tmp_path / name).exists() == (i == 1)  # the output appears when the block ends
        np.testing.assert_array_equal(np.asarray(open_array(tmp_path / name)[:]), fill)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    if name.endswith(".tif"):
        mask = os.umask(0)
        os.umask(mask)
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_output_in_a_missing_folder_is_one_line(tmp_path):
    from nlmeans.io import atomic_output, create_array

    for open_it in (lambda p: atomic_output(p), lambda p: create_array(p, (4, 4), np.uint8)):
        with pytest.raises(ImageIOError, match="cannot create a file in") as info:
            with open_it(tmp_path / "missing" / "o.tif"):
                pass
        assert "\n" not in str(info.value)


def test_write_image_has_the_usual_permissions(tmp_path):
    import os

    mask = os.umask(0)
    os.umask(mask)
    write_image(tmp_path / "o.png", np.zeros((4, 4), np.uint8))
    assert (tmp_path / "o.png").stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_stack_read_error_is_one_line(tmp_path, monkeypatch):
    import tifffile

    from nlmeans.io import read_stack

    def broken(*args, **kwargs):
        raise ValueError("bad IFD\nat offset 8\n(more detail)")

    monkeypatch.setattr(tifffile, "TiffFile", broken)  # read_stack opens the file with TiffFile
    (tmp_path / "s.tif").write_bytes(b"II*\x00")
    with pytest.raises(ImageIOError, match=r"cannot read it as a TIFF stack \(bad IFD\)$") as info:
        read_stack(tmp_path / "s.tif")
    assert "\n" not in str(info.value)



def _png_chunks(raw):
    """(type, data) of every chunk of the PNG bytes ``raw``."""
    import struct

    pos, chunks = 8, []
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos:pos + 4])
        chunks.append((raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


@pytest.mark.parametrize("shape, dtype", [((40, 50), np.uint8), ((40, 50, 3), np.uint8), ((40, 50), np.uint16),
                                          ((40, 50, 4), np.uint16)])
def test_png_pixels_are_exact_in_independent_decoders_and_zlib_runs_at_a_fast_level(tmp_path, rng, shape, dtype):
    import zlib

    from PIL import Image as PILImage

    data = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    write_image(tmp_path / "x.png", data)
    if dtype == np.uint8 or len(shape) == 2:  # (Pillow reads 16-bit colour as 8 bits)
        with PILImage.open(tmp_path / "x.png") as im:
            np.testing.assert_array_equal(np.asarray(im), data)
    idat = b"".join(d for kind, d in _png_chunks((tmp_path / "x.png").read_bytes()) if kind == b"IDAT")
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(shape[0], -1)
    assert not rows[:, 0].any()  # filter type 0 on every row: the rest of the row is its pixels, big-endian
    np.testing.assert_array_equal(rows[:, 1:].copy().view(np.dtype(dtype).newbyteorder(">")).reshape(shape), data)
    # FLEVEL of the zlib header: 1 for levels 2-5 (nlmeans.io.write.PNG_ZLIB_LEVEL), 2 for zlib's slower default 6
    assert idat[1] >> 6 == 1
