"""Property tests over the public API: every call returns a finite array of the right shape and dtype, or
raises ValueError/TypeError with a message. Never a crash, NaN, or a silently wrong shape/dtype.

The same contract for every other entry point: ``denoise_tiled`` and ``nlmeans.dask.denoise`` equal
``denoise`` bit for bit (or raise the same error class), ``denoise_volume`` and ``denoise_video``, the file
readers, ``evaluate`` and the command line on generated PNG/TIFF/JPEG files (bit depths, photometric tags,
planar layouts, extra samples, page counts, EXIF orientation; truncated, garbled, or with a lying size in the
header): a result of the right shape and dtype, or a clear error (the CLI: exit 1 or 2 with one error line,
no traceback, no output or temporary file left, inputs untouched). Bugs found and not yet fixed are strict
xfails named ``test_known_bug_*``; the fuzz steps around them.

The default run draws few examples; the `fuzz` CI step runs the `fuzz`-marked tests with the "fuzz"
hypothesis profile: 2,500 examples for each of the seven in-memory tests, a fraction of that (``scaled``)
for the slower ones: 17,500 + 1,000 strips + 6 bad ``tile_rows`` (all there are) + 150 Dask + 500 volumes +
500 video + 1,000 readers + 1,000 CLI denoise + 250 CLI noise + 100 evaluate on files = 22,006 in all
(``--hypothesis-show-statistics`` prints each test's count).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nlmeans
from nlmeans.presets import METHODS

pytestmark = pytest.mark.fuzz

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
FLOAT_EDGES = [0.0, 1.0, -1.0, 1e-300, 1e-30, 1e30, 1e300, np.nan, np.inf, -np.inf, 5e-324]


@st.composite
def images(draw, max_side=24):
    """Images of every layout: 2-D, channels first/last/middle, 1×1, 1×N, constant, extreme values."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    layout = draw(st.sampled_from(["gray", "last", "first", "3d-no-axis", "1d"]))
    c = draw(st.integers(1, 5))
    shape = {"gray": (h, w), "last": (h, w, c), "first": (c, h, w), "3d-no-axis": (h, w, c), "1d": (w,)}[layout]
    axis = {"gray": None, "last": -1, "first": 0, "3d-no-axis": None, "1d": None}[layout]
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(["random", "constant", "extreme", "edges"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if np.dtype(dtype).kind == "u":
        top = np.iinfo(dtype).max
        data = {"random": rng.integers(0, top, shape, endpoint=True), "constant": np.full(shape, top // 3),
                "extreme": rng.choice([0, top], shape), "edges": rng.choice([0, 1, top - 1, top], shape)}[kind]
    else:
        scale = draw(st.sampled_from([1.0, 1e-20, 255.0, 1e10, 1e20, 1e200]))
        data = {"random": rng.random(shape) * scale, "constant": np.full(shape, scale),
                "extreme": rng.choice([-scale, scale], shape),
                "edges": rng.choice(FLOAT_EDGES, shape)}[kind]
    with np.errstate(all="ignore"):
        return np.asarray(data).astype(dtype), axis


maybe_size = st.one_of(st.none(), st.integers(-3, 30), st.sampled_from([2.5, "5", True]))
maybe_scale = st.one_of(
    st.none(), st.sampled_from([0.0, 1e-300, 1e-12, 0.05, 1.0, 1e12, 1e300, -0.1, np.nan, np.inf, "0.1"])
)


def _ok_or_clear_error(call, expect_shape, expect_dtype):
    try:
        out = call()
    except (ValueError, TypeError) as exc:
        assert str(exc).strip(), "error without a message"
        return None
    out = np.asarray(out)
    assert out.shape == expect_shape and out.dtype == expect_dtype
    assert np.isfinite(out).all()
    return out


@given(images(), maybe_scale, maybe_scale, maybe_size, maybe_size, st.sampled_from(METHODS + ("nope",)))
def test_denoise_never_crashes_or_returns_garbage(img, sigma, h, patch, search, method):
    image, axis = img
    if sigma == 1e-300 and method in (None, "nlbayes") and h is None:
        return  # a RuntimeWarning, then a misleading error (test_known_bug_nlbayes_tiny_sigma)
    _ok_or_clear_error(
        lambda: nlmeans.denoise(image, sigma, h=h, patch_size=patch, search_size=search, method=method,
                                channel_axis=axis),
        image.shape, image.dtype,
    )


@given(images(), st.one_of(images(), st.none()), maybe_scale)
def test_guided_denoise(img, guide, guide_sigma):
    image, axis = img
    g = None if guide is None else guide[0]
    gaxis = None if guide is None else guide[1]
    _ok_or_clear_error(
        lambda: nlmeans.denoise(image, 0.1, channel_axis=axis, guide=g, guide_sigma=guide_sigma,
                                guide_channel_axis=gaxis),
        image.shape, image.dtype,
    )


@given(images(), maybe_scale, st.one_of(st.none(), st.integers(0, 2**31)), st.booleans())
def test_add_noise(img, sigma, seed, clip):
    image, _ = img
    dtype = np.float32 if image.dtype == np.float32 else np.float64
    out = _ok_or_clear_error(lambda: nlmeans.add_noise(image, sigma, seed=seed, clip=clip), image.shape, dtype)
    if out is not None and clip:
        assert out.min() >= 0 and out.max() <= 1


@given(images())
def test_estimate_sigma(img):
    image, axis = img
    try:
        s = nlmeans.estimate_sigma(image, channel_axis=axis)
    except (ValueError, TypeError) as exc:
        assert str(exc).strip()
        return
    assert np.isfinite(s) and s >= 0


@given(images(max_side=12), st.integers(0, 3), st.one_of(st.none(), st.sampled_from([1.0, 255.0, 0.0, -1.0])))
def test_metrics(img, seed, data_range):
    image, axis = img
    other = np.random.default_rng(seed).permutation(image.ravel()).reshape(image.shape)
    for fn in (nlmeans.psnr, lambda a, b, data_range: nlmeans.ssim(a, b, data_range, channel_axis=axis)):
        try:
            v = fn(image, other, data_range=data_range)
        except (ValueError, TypeError) as exc:
            assert str(exc).strip()
            continue
        assert isinstance(v, float) and (np.isfinite(v) or v == float("inf"))


# The baselines registry: fast, always-available methods (bm3d is minutes per example; opencv/skimage NLM
# are peers, fuzzed through the same wrapper).
from nlmeans.eval.registry import REGISTRY  # noqa: E402

FUZZ_METHODS = sorted(name for name, m in REGISTRY.items() if m.available and name != "bm3d")


@given(images(max_side=16), st.sampled_from(FUZZ_METHODS), maybe_scale)
def test_baselines(img, name, sigma):
    image, axis = img
    _ok_or_clear_error(lambda: REGISTRY[name](image, sigma, channel_axis=axis), image.shape, image.dtype)


@given(images(max_side=16), st.lists(st.sampled_from([0.0, 1.0, 20.0, 300.0, -5.0]), min_size=1, max_size=2),
       st.sampled_from(["gaussian", "tv", "nlmeans", "wavelet,anisotropic", "nope"]), st.booleans())
def test_evaluate(img, sigmas, methods, tune):
    image, axis = img
    if axis == 0:
        image = np.moveaxis(image, 0, -1)  # evaluate takes channels last
    try:
        records = nlmeans.evaluate(image, sigmas, methods=methods, seeds=1, tune=tune)
    except (ValueError, TypeError) as exc:
        assert str(exc).strip()
        return
    assert records
    for rec in records:
        assert {"image", "sigma", "seed", "method", "psnr", "ssim", "seconds", "params"} <= set(rec)
        assert isinstance(rec["psnr"], float) and not np.isnan(rec["psnr"])


# ---------------------------------------------------------------------------------------------------------------
# Every other public entry point (issue 21, item 6): strips, Dask, volumes, video, evaluate on files, the file
# readers and the command line on generated files. Slow calls draw a fraction of the profile's examples
# (`scaled`); the module docstring of the fuzz step counts them.

import io  # noqa: E402
import struct  # noqa: E402
import tempfile  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

from hypothesis import reject, settings  # noqa: E402

from nlmeans.io import ImageIOError, open_array, read_image, read_stack  # noqa: E402
from nlmeans.io.common import SUPPORTED_DTYPES  # noqa: E402

#: errors a bad argument or file may raise (each with a message)
CLEAR_ERRORS = (ValueError, TypeError, ImageIOError)


def scaled(fraction):
    """``max_examples`` for a slower test: ``fraction`` of the loaded profile's (at least 5)."""
    return max(5, round(settings.default.max_examples * fraction))


def _same_outcome(call, reference):
    """Run ``reference`` then ``call``: both succeed with equal arrays (bit for bit), or both raise a clear
    error of the same class."""
    try:
        want = reference()
    except CLEAR_ERRORS as exc:
        assert str(exc).strip(), "error without a message"
        with pytest.raises(type(exc)):
            call()
        return None
    got = np.asarray(call())
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want), "differs from nlmeans.denoise"
    return got


def _plain_images(max_side=24):
    """Images of :func:`images` in the layouts the strip and Dask paths take: 2-D and channels last or first."""
    return images(max_side=max_side).filter(lambda img: img[0].ndim in (2, 3) and (img[0].ndim == 2) == (
        img[1] is None))


sizes = st.one_of(st.none(), st.sampled_from([1, 3, 5, 7, 9, 21]), st.integers(-1, 12))
patch_options = st.sampled_from([("flat", None), ("gaussian", None), ("gaussian", 0.5), ("gaussian", 1e-300),
                                 ("gaussian", 40.0), ("nope", None), ("flat", 1.0)])
float_sigmas = st.one_of(st.none(), st.sampled_from([0.0, 1e-12, 0.02, 0.1, 0.5, 3.0, 1e30, -0.1, np.nan]))


@settings(max_examples=scaled(0.4))
@given(_plain_images(), float_sigmas, maybe_scale, sizes, sizes, st.sampled_from((None,) + METHODS),
       patch_options, st.one_of(st.none(), st.integers(1, 40)), st.sampled_from([None, "new", "self"]))
def test_denoise_tiled_is_denoise(img, sigma, h, patch, search, method, weights, tile_rows, out_kind):
    image, axis = img
    kw = dict(h=h, patch_size=patch, search_size=search, method=method, channel_axis=axis,
              patch_weights=weights[0], patch_sigma=weights[1])
    source = image.copy()
    out = {None: None, "new": np.empty_like(image), "self": source}[out_kind]
    try:
        want = nlmeans.denoise(image, sigma, **kw)
    except CLEAR_ERRORS as exc:
        assert str(exc).strip()
        with pytest.raises(type(exc)):
            nlmeans.denoise_tiled(source, sigma, tile_rows=tile_rows, out=out, **kw)
        return
    try:
        got = nlmeans.denoise_tiled(source, sigma, tile_rows=tile_rows, out=out, **kw)
    except ValueError as exc:  # out=image may be refused (issue 21: "correct or refused")
        assert out_kind == "self" and str(exc).strip(), exc
        return
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want), "denoise_tiled differs from denoise"
    if out is not None:
        assert got is out or np.shares_memory(got, out)


@settings(max_examples=scaled(0.01))
@given(st.one_of(st.integers(-2, 0), st.sampled_from([2.5, "8", True])))
def test_denoise_tiled_refuses_bad_tile_rows(tile_rows):
    with pytest.raises((ValueError, TypeError), match="tile_rows"):
        nlmeans.denoise_tiled(np.zeros((8, 8)), 0.1, tile_rows=tile_rows)


@settings(max_examples=scaled(0.06))
@given(_plain_images(max_side=20), float_sigmas, sizes, st.sampled_from((None,) + METHODS), patch_options,
       st.one_of(st.none(), st.integers(1, 24)), st.integers(1, 24))
def test_dask_denoise_is_denoise(img, sigma, search, method, weights, tile_rows, chunk_rows):
    da = pytest.importorskip("dask.array")
    import nlmeans.dask as nd

    image, axis = img
    kw = dict(method=method, search_size=search, channel_axis=axis, patch_weights=weights[0],
              patch_sigma=weights[1])
    chunks = tuple(chunk_rows if i == (1 if axis == 0 else 0) else -1 for i in range(image.ndim))
    _same_outcome(
        lambda: nd.denoise(da.from_array(image, chunks=chunks), sigma, tile_rows=tile_rows, **kw).compute(
            scheduler="threads"),
        lambda: nlmeans.denoise(image, sigma, **kw),
    )


@st.composite
def stacks(draw):
    """Stacks (Z, Y, X), channels last or first, up to 4 × 24 × 24, of every dtype and value kind."""
    z, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 24)), draw(st.integers(1, 24))
    layout = draw(st.sampled_from(["gray", "last", "first", "no-axis-4d"]))
    c = draw(st.integers(1, 4))
    shape = {"gray": (z, h, w), "last": (z, h, w, c), "first": (c, z, h, w), "no-axis-4d": (z, h, w, c)}[layout]
    axis = {"gray": None, "last": -1, "first": 0, "no-axis-4d": None}[layout]
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if np.dtype(dtype).kind == "u":
        data = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True)
    else:
        kind = draw(st.sampled_from(["random", "edges", "huge"]))
        data = {"random": rng.random(shape), "edges": rng.choice(FLOAT_EDGES, shape),
                "huge": rng.random(shape) * draw(st.sampled_from([1e-20, 1e20, 1e200]))}[kind]
    with np.errstate(all="ignore"):
        return np.asarray(data).astype(dtype), axis


@settings(max_examples=scaled(0.2))
@given(stacks(), float_sigmas, maybe_scale, sizes, sizes,
       st.one_of(st.none(), st.sampled_from([-1.0, 1e-9, 255.0, np.nan])))
def test_denoise_volume(stack, sigma, h, patch, search, data_range):
    volume, axis = stack
    _ok_or_clear_error(
        lambda: nlmeans.denoise_volume(volume, sigma, h=h, patch_size=patch, search_size=search,
                                       channel_axis=axis, data_range=data_range),
        volume.shape, volume.dtype,
    )


@settings(max_examples=scaled(0.2))
@given(stacks(), float_sigmas, maybe_scale, sizes, sizes,
       st.one_of(st.integers(-1, 5), st.sampled_from([None, 1.5, "2", True])))
def test_denoise_video(stack, sigma, h, patch, search, radius):
    frames, axis = stack
    _ok_or_clear_error(
        lambda: nlmeans.denoise_video(frames, sigma, temporal_radius=radius, h=h, patch_size=patch,
                                      search_size=search, channel_axis=axis),
        frames.shape, frames.dtype,
    )


# --- generated files: PNG (pypng), TIFF (tifffile), JPEG (Pillow), then truncated or with a lying header ---


def _png_chunks(data):
    import png

    return list(png.Reader(bytes=data).chunks())


def _png_bytes(chunks):
    import png

    buf = io.BytesIO()
    png.write_chunks(buf, chunks)
    return buf.getvalue()


@st.composite
def png_files(draw):
    """PNGs of every bit depth and colour type, palettes (indices possibly past the palette), sBIT chunks
    (pypng's own for odd depths, or arbitrary bytes)."""
    import png

    h, w = draw(st.integers(1, 32)), draw(st.integers(1, 32))
    kind = draw(st.sampled_from(["gray", "gray+alpha", "rgb", "rgba", "palette"]))
    depths = {"gray": [1, 2, 4, 8, 16, 3, 5, 12], "palette": [1, 2, 4, 8]}.get(kind, [8, 16, 5, 12])
    depth = draw(st.sampled_from(depths))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    planes = {"gray": 1, "gray+alpha": 2, "rgb": 3, "rgba": 4, "palette": 1}[kind]
    kw = dict(greyscale=kind.startswith("gray"), alpha=kind in ("gray+alpha", "rgba"), bitdepth=depth)
    top = (1 << depth) - 1
    if kind == "palette":
        n = draw(st.integers(1, top + 1))
        alpha = draw(st.booleans())
        kw["palette"] = [tuple(rng.integers(0, 256, 4 if alpha else 3).tolist()) for _ in range(n)]
        top = min(top, n - 1 + draw(st.sampled_from([0, 0, 0, 1])))  # sometimes an index past the palette
        kw.pop("greyscale"), kw.pop("alpha")
    rows = rng.integers(0, top, (h, w * planes), endpoint=True)
    buf = io.BytesIO()
    png.Writer(w, h, **kw).write(buf, rows.tolist())
    data = buf.getvalue()
    if draw(st.integers(0, 5)) == 0:  # an arbitrary sBIT chunk after IHDR (replacing pypng's)
        chunks = [c for c in _png_chunks(data) if c[0] != b"sBIT"]
        sbit = bytes(draw(st.lists(st.integers(0, 20), min_size=1, max_size=4)))
        data = _png_bytes(chunks[:1] + [(b"sBIT", sbit)] + chunks[1:])
    return ".png", data


TIFF_LAYOUTS = {"minisblack": 1, "miniswhite": 1, "rgb": 3, "palette": 1, "separated": 4}


@st.composite
def tiff_files(draw):
    """TIFFs of every photometric interpretation, planar configuration, extra samples, dtype, 1–4 pages,
    uncompressed or zlib; sometimes a last page of another size."""
    import tifffile

    photometric = draw(st.sampled_from(sorted(TIFF_LAYOUTS)))
    if photometric == "palette":
        dtype = draw(st.sampled_from([np.uint8, np.uint16]))
        extras = []
    else:
        dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int16, np.bool_, np.uint32]))
        extras = draw(st.lists(st.sampled_from(["unspecified", "assocalpha", "unassalpha"]), max_size=2))
    spp = TIFF_LAYOUTS[photometric] + len(extras)
    planar = draw(st.sampled_from(["contig", "separate"])) if spp > 1 else None
    pages, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 24)), draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (pages, h, w, spp) if planar != "separate" else (pages, spp, h, w)
    if np.dtype(dtype).kind == "f":
        data = rng.random(shape).astype(dtype)
    elif dtype is np.bool_:
        data = rng.random(shape) < 0.5
    else:
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, shape, endpoint=True, dtype=dtype)
    if spp == 1:
        data = data[..., 0]
    if pages == 1 and draw(st.booleans()):
        data = data[0]
    kw = dict(photometric=photometric, compression=draw(st.sampled_from([None, "zlib"])))
    if planar:
        kw["planarconfig"] = planar
    if extras:
        kw["extrasamples"] = extras
    if photometric == "palette":
        kw["colormap"] = rng.integers(0, 65535, (3, 1 << (8 * np.dtype(dtype).itemsize)), endpoint=True,
                                      dtype=np.uint16)
        if draw(st.booleans()):
            kw["colormap"] = kw["colormap"] // 257 * 257  # 8-bit colours, stored the usual way
    buf = io.BytesIO()
    try:
        tifffile.imwrite(buf, data, **kw)
        if draw(st.integers(0, 7)) == 0:  # another page of another size, appended
            tifffile.imwrite(buf, data.reshape(-1)[: 4 * 5].reshape(4, 5) if data.size >= 20 else data[..., :1],
                             append=True)
    except (ValueError, TypeError, NotImplementedError):  # a combination tifffile does not write
        reject()
    return draw(st.sampled_from([".tif", ".tiff"])), buf.getvalue()


@st.composite
def jpeg_files(draw):
    """JPEGs from Pillow: gray, RGB and CMYK, any EXIF orientation, several qualities."""
    from PIL import Image as PILImage

    mode = draw(st.sampled_from(["L", "RGB", "CMYK"]))
    h, w = draw(st.integers(1, 32)), draw(st.integers(1, 32))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    bands = {"L": 1, "RGB": 3, "CMYK": 4}[mode]
    arr = rng.integers(0, 255, (h, w, bands), endpoint=True, dtype=np.uint8)
    im = PILImage.frombytes(mode, (w, h), arr.tobytes())
    exif = PILImage.Exif()
    orientation = draw(st.integers(0, 9))
    if orientation:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=draw(st.sampled_from([1, 50, 95])), exif=exif.tobytes())
    return ".jpg", buf.getvalue()


def _lie_png(data, width, height):
    """IHDR's width and height replaced, its CRC recomputed (so the lie is well-formed)."""
    out = bytearray(data)
    out[16:24] = struct.pack(">II", width, height)
    out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    return bytes(out)


def _lie_jpeg(data, width, height):
    """The first SOF0/SOF2 frame header's size replaced."""
    out = bytearray(data)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = out.find(marker)
        if at >= 0:
            out[at + 5:at + 9] = struct.pack(">HH", min(height, 65535), min(width, 65535))
    return bytes(out)


def _lie_tiff(data, width, height):
    """ImageWidth/ImageLength of the first IFD replaced (classic little-endian TIFF, as tifffile writes)."""
    out = bytearray(data)
    if out[:4] != b"II*\x00":
        return bytes(out)
    ifd = struct.unpack_from("<I", out, 4)[0]
    for i in range(struct.unpack_from("<H", out, ifd)[0]):
        at = ifd + 2 + 12 * i
        tag, typ = struct.unpack_from("<HH", out, at)
        if tag in (256, 257):
            value = width if tag == 256 else height
            if typ == 3:
                struct.pack_into("<H", out, at + 8, min(value, 65535))
            else:
                struct.pack_into("<I", out, at + 8, value)
    return bytes(out)


LIARS = {".png": _lie_png, ".jpg": _lie_jpeg, ".tif": _lie_tiff, ".tiff": _lie_tiff}
HUGE = st.sampled_from([0, 1, 2, 65535, 30000, 2**31 - 1, 2**32 - 1])


@st.composite
def image_files(draw):
    """(suffix, bytes, how it was damaged): a generated PNG/TIFF/JPEG, whole (most often), cut at a random
    byte, with a lying size in its header, or with random bytes overwritten."""
    suffix, data = draw(st.one_of(png_files(), tiff_files(), jpeg_files()))
    damage = draw(st.sampled_from(["none"] * 5 + ["truncated", "lying", "garbled"]))
    if damage == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "lying":
        data = LIARS[suffix](data, draw(HUGE), draw(HUGE))
    elif damage == "garbled":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
        data = bytes(out)
    return suffix, data, damage


def _written(folder, suffix, data, name="in"):
    path = Path(folder) / f"{name}{suffix}"
    path.write_bytes(data)
    return path


#: damage that leaves the header's size true: stacks and strips have no pixel limit, so a lying (or garbled)
#: size is decoded as claimed (test_known_bug_stack_bomb); the fuzz gives them only these
_SIZE_KEPT = ("none", "truncated")


def _read_or_clear_error(read, path):
    """``read(path)``, or None after an ImageIOError of one line naming the file."""
    try:
        return read(path)
    except ImageIOError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message.strip(), message
        assert str(path.name) in message, message
        return None


@settings(max_examples=scaled(0.4))
@given(image_files(), st.sampled_from([None, 0, 1, 100, 10**6]))
def test_readers_on_generated_files(file, max_pixels):
    suffix, data, damage = file
    with tempfile.TemporaryDirectory() as folder:
        path = _written(folder, suffix, data)
        image = _read_or_clear_error(lambda p: read_image(p, max_pixels=max_pixels), path)
        if image is not None:
            assert image.data.dtype.type in SUPPORTED_DTYPES
            assert image.data.ndim in (2, 3) and min(image.data.shape[:2]) >= 1
            assert image.alpha is None or image.alpha.shape == image.data.shape[:2]
            if max_pixels:
                assert image.data.shape[0] * image.data.shape[1] <= max_pixels
        if suffix in (".tif", ".tiff") and damage in _SIZE_KEPT:
            for read in (read_stack, open_array):
                arr = _read_or_clear_error(read, path)
                if arr is not None:
                    assert np.dtype(arr.dtype).type in SUPPORTED_DTYPES


def _cli_check(result, folder, out_path, inputs):
    """The CLI's contract: exit 0 and an output, or exit 1/2 with one line on stderr, no traceback, no output
    and no temporary file left; inputs untouched."""
    assert "Traceback" not in result.output + result.stderr, result.stderr
    for path, data in inputs.items():
        assert path.read_bytes() == data, "an input was changed"
    if result.exit_code == 0:
        return True
    assert result.exit_code in (1, 2), (result.exit_code, result.stderr, result.exception)
    # one error line (a usage error, exit 2, comes after click's two lines of usage hint)
    # (and decoders' "warning:" lines, e.g. Pillow's corrupt EXIF)
    lines = [ln for ln in result.stderr.splitlines()
             if ln.strip() and not ln.startswith(("Usage:", "Try ", "warning: "))]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "internal error" not in lines[0], lines[0]
    assert not out_path.exists(), "a failed run left its output"
    assert sorted(p.name for p in Path(folder).iterdir()) == sorted(p.name for p in inputs), "leftovers"
    return False


def _alpha_lookalike(image):
    """Data of 2 or 4 channels without alpha (written with their last channel as alpha:
    test_known_bug_data_channel_written_as_alpha) or of more than 4 samples (written transposed:
    test_known_bug_many_channels_written_transposed): their output is not checked here."""
    return image.data.ndim == 3 and (image.alpha is None and image.data.shape[-1] in (2, 4)
                                     or image.data.shape[-1] + (image.alpha is not None) > 4)


CLI_SIGMAS = st.sampled_from([None, "0", "5", "20", "60", "255.5", "1e30", "-3", "nan", "x"])
CLI_METHODS = st.sampled_from([None, "nlbayes", "pixelwise", "patchwise", "NLBayes", "nope"])


@settings(max_examples=scaled(0.4))
@given(image_files(), CLI_SIGMAS, CLI_METHODS, st.sampled_from([None, "1", "7", "64", "0"]),
       st.sampled_from([None, "--volume", "--video"]), st.sampled_from([None, "0", "50", "100000"]),
       st.sampled_from([None, ".png", ".tif", ".jpg"]))
def test_cli_denoise_on_generated_files(file, sigma, method, tile_rows, stack, max_pixels, out_suffix):
    from click.testing import CliRunner

    from nlmeans.cli import main

    suffix, data, damage = file
    if damage not in _SIZE_KEPT:
        stack = tile_rows = None
    with tempfile.TemporaryDirectory() as folder:
        path = _written(folder, suffix, data)
        out = Path(folder) / f"out{out_suffix or suffix}"
        args = ["denoise", str(path), str(out)]
        for name, value in (("--sigma", sigma), ("--method", method), ("--tile-rows", tile_rows),
                            ("--max-pixels", max_pixels)):
            if value is not None:
                args += [name, value]
        args += [stack] if stack else []
        result = CliRunner().invoke(main, args)
        if not _cli_check(result, folder, out, {path: data}):
            return
        # the output holds the input's samples: same shape and dtype, read back by our reader and tifffile
        if stack:
            if read_stack(path).ndim == 4 or read_stack(path).shape[-1] == 3:
                return  # written wrong: test_known_bug_colour_stack_written_as_gray_pages, ..._gray_stack_as_rgb
            assert read_stack(out).shape == read_stack(path).shape
            assert read_stack(out).dtype == read_stack(path).dtype
            return
        if tile_rows is not None:
            want = open_array(path)
            got = read_image(out).data
            assert got.shape == tuple(want.shape) and got.dtype == want.dtype
            return
        want, got = read_image(path), read_image(out)
        if _alpha_lookalike(want):
            return
        assert got.data.shape == want.data.shape and got.data.dtype == want.data.dtype
        assert (got.alpha is None) == (want.alpha is None)
        if want.alpha is not None and out.suffix != ".jpg":
            assert np.array_equal(got.alpha, want.alpha), "alpha not passed through"


@settings(max_examples=scaled(0.1))
@given(image_files(), CLI_SIGMAS, st.sampled_from([None, ".png", ".tif", ".tiff", ".jpg", ".bmp"]),
       st.booleans())
def test_cli_noise_on_generated_files(file, sigma, out_suffix, as_float):
    from click.testing import CliRunner

    from nlmeans.cli import main

    suffix, data, damage = file
    with tempfile.TemporaryDirectory() as folder:
        path = _written(folder, suffix, data)
        out = Path(folder) / f"out{out_suffix or suffix}"
        args = ["noise", str(path), str(out), "--seed", "1"]
        args += ["--sigma", sigma] if sigma is not None else []
        args += ["--float"] if as_float else []
        result = CliRunner().invoke(main, args)
        if _cli_check(result, folder, out, {path: data}) and not _alpha_lookalike(read_image(path)):
            want, got = read_image(path), read_image(out)
            assert got.data.shape == want.data.shape
            assert got.data.dtype == (np.float32 if as_float else want.data.dtype)


@settings(max_examples=scaled(0.04))
@given(st.lists(image_files(), min_size=1, max_size=3), st.sampled_from([[0], [20], [5, 300], [-1]]),
       st.sampled_from(["gaussian", "nlmeans", "gaussian,tv"]), st.sampled_from([None, 1, 8, 0]),
       st.sampled_from([1, [3], 0]))
def test_evaluate_on_generated_files(files, sigmas, methods, crop, seeds):
    with tempfile.TemporaryDirectory() as folder:
        paths = [_written(folder, suffix, data, name=f"in{i}") for i, (suffix, data, _) in enumerate(files)]
        try:
            records = nlmeans.evaluate(paths, sigmas, methods=methods, seeds=seeds, crop=crop)
        except CLEAR_ERRORS as exc:
            assert str(exc).strip() and "\n" not in str(exc).strip(), exc
            return
        assert {rec["image"] for rec in records} <= {p.stem for p in paths}
        for rec in records:
            assert isinstance(rec["psnr"], float) and not np.isnan(rec["psnr"])
            assert isinstance(rec["ssim"], float) and not np.isnan(rec["ssim"])


@pytest.mark.parametrize("shape,kw,want", [
    ((1, 1, 1), dict(photometric="minisblack"), (1, 1)),
    ((1, 3, 2, 1), dict(photometric="rgb", planarconfig="separate"), (2, 1, 3)),
    ((1, 5, 1), dict(photometric="minisblack"), (1, 5)),  # tifffile writes it as one 1×5 page (its tags)
])
def test_fuzz_found_one_pixel_wide_tiff(tmp_path, shape, kw, want):
    """Found by the fuzz, fixed: a one-page TIFF one pixel wide written from an array with a leading page axis
    gets tifffile series axes with a repeated or misplaced letter ('XYX', 'XSYX', 'YXQ'); the reader now
    takes the page's own axes then, as its tags say (Pillow agrees on the gray ones)."""
    import tifffile
    from PIL import Image as PILImage

    data = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    tifffile.imwrite(tmp_path / "one.tif", data, **kw)
    got = read_image(tmp_path / "one.tif").data
    assert got.shape == want
    assert sorted(got.ravel().tolist()) == sorted(data.ravel().tolist())  # every sample, none invented
    if kw["photometric"] == "rgb":
        np.testing.assert_array_equal(got, np.moveaxis(data[0], 0, -1))  # planar samples moved last
    else:
        with PILImage.open(tmp_path / "one.tif") as im:
            np.testing.assert_array_equal(np.asarray(im), got)


def test_tiny_patch_sigma_is_finite():
    # found by this fuzz: a patch_sigma whose square underflows made the patch kernel 0/0 (NaN output)
    out = nlmeans.denoise(np.full((8, 8), 0.5), 0.1, patch_weights="gaussian", patch_sigma=1e-300)
    assert np.isfinite(out).all()


def test_fuzz_found_data_channel_written_as_alpha(tmp_path):
    """Found by the fuzz, fixed: write_image writes an (H, W, 2) or (H, W, 4) array without alpha as gray+alpha
    / RGBA, so the CLI turns a TIFF's unspecified extra sample (a data channel) into alpha: `nlmeans denoise
    two.tif out.tif` reads back (H, W) + alpha, not (H, W, 2)"""
    import tifffile
    from click.testing import CliRunner

    from nlmeans.cli import main

    data = np.random.default_rng(0).integers(0, 255, (6, 6, 2), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "two.tif", data, photometric="minisblack", planarconfig="contig",
                     extrasamples=["unspecified"])
    assert read_image(tmp_path / "two.tif").data.shape == (6, 6, 2)
    result = CliRunner().invoke(main, ["denoise", str(tmp_path / "two.tif"), str(tmp_path / "out.tif"),
                                       "--sigma", "0"])
    assert result.exit_code == 0
    got = read_image(tmp_path / "out.tif")
    assert got.data.shape == (6, 6, 2) and got.alpha is None


def test_fuzz_found_colour_stack_written_as_gray_pages(tmp_path):
    """Found by the fuzz, fixed: write_stack writes a colour stack (Z, Y, X, C) as Z*Y MINISBLACK pages of X ×
    C, so read_stack (and `nlmeans denoise rgb.tif out.tif --volume`) gives (Z*Y, X, C)"""
    from nlmeans.io import write_stack

    stack = np.random.default_rng(0).integers(0, 255, (2, 5, 6, 3), dtype=np.uint8)
    write_stack(tmp_path / "rgb.tif", stack)
    assert read_stack(tmp_path / "rgb.tif").shape == (2, 5, 6, 3)


_BOMB = """
import io, resource, struct, sys, numpy as np, tifffile
from nlmeans.io import ImageIOError, read_stack
buf = io.BytesIO()
tifffile.imwrite(buf, np.zeros((2, 5, 6), np.uint8), photometric="minisblack", compression="zlib")
data = bytearray(buf.getvalue())
ifd = struct.unpack_from("<I", data, 4)[0]
for i in range(struct.unpack_from("<H", data, ifd)[0]):  # ImageWidth, ImageLength: 30000 x 30000
    at = ifd + 2 + 12 * i
    if struct.unpack_from("<H", data, at)[0] in (256, 257):
        struct.pack_into("<I" if struct.unpack_from("<H", data, at + 2)[0] == 4 else "<H", data, at + 8, 30000)
open(sys.argv[1], "wb").write(data)
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a bomb fails here instead of filling the machine
try:
    read_stack(sys.argv[1])
except ImageIOError as exc:
    print(exc)
"""


def test_fuzz_found_stack_bomb(tmp_path):
    """Found by the fuzz, fixed: read_stack (--volume/--video) has no pixel limit: a 505-byte zlib TIFF whose
    header claims 2 pages of 30000 x 30000 is decoded as claimed (peak RSS 0.9 GB before 'corrupted strip';
    larger lies are OOM-killed)"""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _BOMB, str(tmp_path / "bomb.tif")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "MemoryError" not in done.stdout and "limit" in done.stdout, done.stdout


def test_fuzz_found_gray_stack_as_rgb(tmp_path):
    """Found by the fuzz, fixed: write_stack writes a gray stack whose last side is 3, (Z, Y, 3), as one RGB
    page: read_stack refuses it ('a single image'); `nlmeans denoise s.tif o.tif --volume` on a 3-page 3 × 3
    stack exits 0 with such an output"""
    from nlmeans.io import write_stack

    stack = np.random.default_rng(0).integers(0, 255, (3, 4, 3), dtype=np.uint8)
    write_stack(tmp_path / "gray.tif", stack)
    assert read_stack(tmp_path / "gray.tif").shape == (3, 4, 3)


def test_fuzz_found_many_channels_written_transposed(tmp_path):
    """Found by the fuzz, fixed: write_image of (H, W, C) data with C >= 5 to TIFF (minisblack, no planar or
    extra-sample tags) reads back transposed: (3, 1, 5) -> (1, 5, 3)"""
    from nlmeans.io import write_image

    data = np.random.default_rng(0).integers(0, 255, (3, 1, 5), dtype=np.uint8)
    write_image(tmp_path / "five.tif", data)
    assert read_image(tmp_path / "five.tif").data.shape == (3, 1, 5)


def test_fuzz_found_nlbayes_tiny_sigma():
    """Found by the fuzz, fixed: NL-Bayes with sigma=1e-300 on a 1 x 1 uint8 image warns 'divide by zero'
    (RuntimeWarning), then raises 'NL-Bayes overflowed on this image (values up to 0.851 in float32)': a
    warning, and an error that names the wrong cause"""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            nlmeans.denoise(np.array([[217]], np.uint8), 1e-300, method="nlbayes")
        except ValueError as exc:
            assert "overflow" not in str(exc), exc


def test_fuzz_found_evaluate_overflow_warning_instead_of_the_error():
    """A float64 image far beyond float32 (1e199, found by the CI fuzz step): the clear ValueError, not a
    RuntimeWarning from the cast to float32 (an error under ``-W error``)."""
    import warnings

    image = np.random.default_rng(0).random((8, 8)) * 1e200
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="too large for float32"):
            nlmeans.evaluate(image, [1.0], methods="gaussian", seeds=1)
