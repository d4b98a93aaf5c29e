"""The before/after picture (``--compare``, issue 19 item 6): panels that are the images' own pixels, zooms of
the most textured region, a caption, and the output rules of every writer."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

from nlmeans.cli import main
from nlmeans.compare import CROP, GAP, ZOOM, compare_image, textured_region
from nlmeans.io import read_image

RNG = np.random.default_rng(6)
FAST = ["--sigma", "10", "--patch", "3", "--search", "5"]
BACKGROUND = 32


def _panels(picture, h, w):
    """The full-size noisy and denoised panels at their documented places."""
    return picture[:h, :w], picture[:h, w + GAP:2 * w + GAP]


@pytest.mark.parametrize("shape,axis", [((70, 90), None), ((70, 90, 3), -1)])
def test_panels_are_the_images_pixels(shape, axis):
    noisy = RNG.integers(0, 256, shape, dtype=np.uint8)
    denoised = RNG.integers(0, 256, shape, dtype=np.uint8)
    picture = compare_image(noisy, denoised, "caption", channel_axis=axis)
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    left, right = _panels(picture, *shape[:2])
    as_rgb = (lambda a: np.repeat(a[..., None], 3, -1)) if axis is None else (lambda a: a)
    np.testing.assert_array_equal(left, as_rgb(noisy))
    np.testing.assert_array_equal(right, as_rgb(denoised))


def test_zooms_are_nearest_neighbour_crops_of_the_textured_region():
    h, w = 150, 170
    noisy = np.full((h, w), 100, np.uint8)
    denoised = np.full((h, w), 100, np.uint8)
    denoised[80:144, 96:160] = RNG.integers(0, 256, (64, 64), dtype=np.uint8)  # the only texture
    noisy[:] = RNG.integers(90, 110, (h, w), dtype=np.uint8)
    y, x = textured_region(denoised)
    assert 80 - CROP // 2 <= y <= 80 + CROP // 2 and 96 - CROP // 2 <= x <= 96 + CROP // 2
    picture = compare_image(noisy, denoised, "c")
    top, side = h + GAP, CROP * ZOOM
    for panel, source in ((picture[top:top + side, :side], noisy),
                          (picture[top:top + side, side + GAP:2 * side + GAP], denoised)):
        crop = source[y:y + CROP, x:x + CROP]
        np.testing.assert_array_equal(panel[..., 0], np.kron(crop, np.ones((ZOOM, ZOOM), np.uint8)))


def test_small_images_zoom_what_there_is():
    noisy = RNG.integers(0, 256, (20, 12), dtype=np.uint8)
    picture = compare_image(noisy, noisy, "a long caption " * 10)
    zoomed = picture[20 + GAP:20 + GAP + 20 * ZOOM, :12 * ZOOM, 0]
    np.testing.assert_array_equal(zoomed, np.kron(noisy, np.ones((ZOOM, ZOOM), np.uint8)))
    caption = picture[20 + GAP + 20 * ZOOM + GAP:]
    assert (caption != BACKGROUND).any(axis=(1, 2)).sum() > 20  # several lines of text drawn, wrapped


def test_sixteen_bit_and_float_panels_share_one_mapping():
    noisy = RNG.integers(0, 65536, (40, 40), dtype=np.uint16)
    picture = compare_image(noisy, noisy // 2, "c")
    left, right = _panels(picture, 40, 40)
    np.testing.assert_array_equal(left[..., 0], np.rint(noisy / 257.0).astype(np.uint8))
    np.testing.assert_array_equal(right[..., 0], np.rint((noisy // 2) / 257.0).astype(np.uint8))
    flt = RNG.normal(1000.0, 50.0, (40, 40))
    left, right = _panels(compare_image(flt, flt, "c"), 40, 40)
    np.testing.assert_array_equal(left, right)  # the same mapping for both halves
    assert left.min() == 0 and left.max() == 255  # stretched over the noisy image's percentiles


def test_bad_arguments():
    with pytest.raises(ValueError, match="same shape"):
        compare_image(np.zeros((4, 4)), np.zeros((4, 5)), "c")
    with pytest.raises(ValueError, match="channel_axis"):
        compare_image(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), "c")


def test_missing_pillow_says_how_to_install(monkeypatch):
    import importlib

    import nlmeans._optional as optional

    real = importlib.import_module

    def no_pil(name, *args):
        if name.startswith("PIL"):
            raise ImportError("No module named 'PIL'")
        return real(name, *args)

    monkeypatch.setattr(optional.importlib, "import_module", no_pil)
    with pytest.raises(ImportError, match="pip install pillow"):
        compare_image(np.zeros((4, 4)), np.zeros((4, 4)), "c")


def _png(path, shape):
    PILImage.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("shape", [(48, 56), (48, 56, 3)])
def test_cli_compare_halves_are_input_and_output(tmp_path, shape):
    src = _png(tmp_path / "in.png", shape)
    res = CliRunner().invoke(main, ["denoise", str(src), str(tmp_path / "out.png"), "--compare",
                                    str(tmp_path / "cmp.png"), *FAST])
    assert res.exit_code == 0, res.output
    with PILImage.open(tmp_path / "cmp.png") as im:
        picture = np.asarray(im.convert("RGB"))
    h, w = shape[:2]
    assert picture.shape[1] == max(2 * w + GAP, 2 * min(CROP, w) * ZOOM + GAP)
    assert picture.shape[0] > h + GAP + min(CROP, h) * ZOOM
    left, right = _panels(picture, h, w)
    gray = len(shape) == 2
    np.testing.assert_array_equal(left[..., 0] if gray else left, read_image(src).data)
    np.testing.assert_array_equal(right[..., 0] if gray else right, read_image(tmp_path / "out.png").data)


def test_cli_compare_obeys_the_output_rules(tmp_path):
    src = _png(tmp_path / "in.png", (32, 32))
    (tmp_path / "cmp.png").write_bytes(b"keep")

    def run(*extra):
        return CliRunner().invoke(main, ["denoise", str(src), str(tmp_path / "out.png"), *extra, *FAST])

    res = run("--compare", str(tmp_path / "cmp.png"))
    assert res.exit_code == 1 and "--overwrite" in res.output
    assert (tmp_path / "cmp.png").read_bytes() == b"keep" and not (tmp_path / "out.png").exists()  # no work done
    res = run("--compare", str(src))
    assert res.exit_code == 1 and "input" in res.output and not (tmp_path / "out.png").exists()
    res = run("--compare", str(tmp_path / "out.png"))
    assert res.exit_code == 2 and "same output" in res.output
    res = run("--compare", str(tmp_path / "cmp.gif"))
    assert res.exit_code == 1 and "allowed" in res.output
    res = run("--compare", str(tmp_path / "cmp.png"), "--overwrite")
    assert res.exit_code == 0 and (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"
    res = CliRunner().invoke(main, ["denoise", str(src), str(tmp_path / "v.tif"), "--volume", "--compare",
                                    str(tmp_path / "c2.png")])
    assert res.exit_code == 2 and "--compare" in res.output


def test_demo_compare(tmp_path):
    src = _png(tmp_path / "small.png", (40, 44))
    res = CliRunner().invoke(main, ["demo", str(src), "--out-dir", str(tmp_path / "d"), "--compare",
                                    str(tmp_path / "d" / "cmp.png")])
    assert res.exit_code == 0, res.output
    with PILImage.open(tmp_path / "d" / "cmp.png") as im:
        picture = np.asarray(im.convert("RGB"))
    left, right = _panels(picture, 40, 44)
    np.testing.assert_array_equal(left[..., 0], read_image(tmp_path / "d" / "noisy.png").data)
    np.testing.assert_array_equal(right[..., 0], read_image(tmp_path / "d" / "denoised.png").data)
    res = CliRunner().invoke(main, ["demo", str(src), "--compare", str(src)])
    assert res.exit_code == 1 and "input" in res.output
