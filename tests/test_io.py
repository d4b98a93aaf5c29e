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
