"""Reading image files: every pixel format read right or refused, and a pixel limit before decoding.

Reading rules (every pixel format read right, or refused):

- Integer samples of fewer bits than their 8/16-bit container (PNG 1/2/4-bit, TIFF 1/2/4/12-bit) and
  PNG ``sBIT`` significant bits are scaled to the container's full range, x · (2^D − 1) / (2^b − 1)
  rounded (1-bit 0/1 → 0/255, 2-bit by 85, 4-bit by 17, 12 sBIT bits of a 16-bit PNG by 65535/4095):
  σ on the 0–255 scale is then the same fraction of the image's real range for every file.
- Palettes (PNG, TIFF, GIF/BMP) are expanded to RGB (RGBA with transparency), never smoothed as indices;
  8-bit TIFF colormaps stored as v·257 give uint8, others uint16.
- TIFF tags decide, not the array's shape: PlanarConfiguration (planar samples moved last), ExtraSamples
  (associated or unassociated alpha is alpha; unspecified extra samples are data channels), Photometric:
  MINISWHITE is inverted on read (the output is written min-is-black), SEPARATED (CMYK ink set) and
  YCbCr (JPEG-compressed, or without chroma subsampling) are converted to RGB; others are refused.
- JPEG: EXIF orientation applied (the image as displayed); CMYK (Adobe inverted, as Pillow decodes it)
  converted to RGB. CMYK is converted without a colour profile, R = (1 − C)(1 − K) as Pillow does: close
  to, not equal to, a colour-managed conversion.
- Pixel limit: the size is read from the header (PNG IHDR, TIFF tags, JPEG SOF, BMP header) and images
  above ``max_pixels`` (default :func:`default_max_pixels`, from the available memory) are refused before
  decoding, as are JPEGs smaller than the size their header claims.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .._validate import check_int
from .common import (
    FORMATS,
    PNG_SUFFIXES,
    TIFF_SUFFIXES,
    Image,
    ImageIOError,
    Metadata,
    _check_pixel_type,
    _split_alpha,
    one_line,
)

# --- pixel limit: refuse, from the header, images whose in-memory denoising would not fit ---

#: Peak working memory of in-memory denoising per pixel and channel, in bytes. Measured (peak RSS of
#: ``nlmeans.denoise``, uint8 input, σ = 20/255, 1024² and 2048²): default NL-Bayes 29–30 B/px gray and
#: 93–96 B/px RGB (≈ 32 per channel), pixelwise NL-means 22–23 gray and 59 RGB; 40 adds the decoded file,
#: the output and the alpha passed through.
BYTES_PER_SAMPLE = 40
_FALLBACK_MEMORY = 8 << 30  # when the machine's memory cannot be read


def available_memory():
    """Bytes of memory available for new work: ``MemAvailable`` of /proc/meminfo (Linux), else half the
    physical memory (``os.sysconf``), else 8 GiB."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_MEMORY


def default_max_pixels(channels=3):
    """The default pixel limit of :func:`read_image`: available memory / working memory per pixel.

    Parameters
    ----------
    channels : int
        Samples per pixel of the image (working memory grows with them; alpha counts too).

    Returns
    -------
    int
        ``available_memory() // (BYTES_PER_SAMPLE * channels)``, at least 1. With 20 GiB available and an
        RGB image this is about 179 million pixels (an 8k × 8k photo has 67 million).
    """
    return max(1, available_memory() // (BYTES_PER_SAMPLE * max(1, int(channels))))


def _max_pixels_arg(max_pixels):
    """``max_pixels`` checked: a non-negative int, or None (0 and None: the default limit)."""
    if max_pixels is None:
        return None
    limit = check_int(max_pixels, "max_pixels")
    if limit < 0:
        raise ValueError(f"max_pixels must be >= 0 (0 or None: the default from memory), got {max_pixels!r}")
    return limit or None


def _check_pixels(path, height, width, channels, max_pixels):
    """Refuse an image of ``height`` × ``width`` pixels (read from its header) above the pixel limit
    (``max_pixels`` as checked by :func:`_max_pixels_arg`)."""
    if max_pixels is None:
        limit = default_max_pixels(channels)
        origin = f"the default for this machine's {available_memory() / 2**30:.1f} GiB of available memory"
    else:
        limit, origin = max_pixels, "max_pixels"
    pixels = int(height) * int(width)
    if pixels > limit:
        raise ImageIOError(
            f"{path}: {width}×{height} = {pixels:,} pixels is more than the limit of {limit:,} ({origin}); "
            "raise it with max_pixels= (CLI: --max-pixels) if the memory is there, denoise a large TIFF or "
            ".zarr strip by strip (--tile-rows), a stack with --volume/--video"
        )


# --- sample scaling: every integer image fills its container's range ---


def _stretch(values, bits, dtype):
    """``bits``-bit values (0 … 2^bits − 1) scaled to the full range of ``dtype`` (uint8/uint16), rounded.

    x · (2^D − 1) / (2^bits − 1): exact factors for 1/2/4 bits in 8 (255, 85, 17), 16.0037 for 12 in 16, so
    σ on the 0–255 scale stays the same fraction of the image's real range.
    """
    top = int(np.iinfo(dtype).max)
    m = (1 << int(bits)) - 1
    if m == top:
        return values.astype(dtype, copy=False)
    wide = values.astype(np.uint64)
    return ((wide * (2 * top) + m) // (2 * m)).astype(dtype)  # round(x * top / m), half up, in integers


def _read_png(path, max_pixels):
    import png

    reader = png.Reader(filename=str(path))
    reader.preamble()  # IHDR and the chunks before the first IDAT only: the size is known, nothing decoded
    channels = (3 if reader.colormap else reader.planes) + bool(reader.trns)
    _check_pixels(path, reader.height, reader.width, channels, max_pixels)
    sbit = struct.unpack(f"{len(reader.sbit)}B", reader.sbit) if reader.sbit else None
    reader.sbit = None  # pypng would shift the values down to the sBIT depth (12-bit data 16× darker)
    width, height, rows, info = reader.asDirect()  # palette expanded to RGB(A), tRNS to alpha
    depth, planes = info["bitdepth"], info["planes"]
    dtype = np.uint16 if depth > 8 else np.uint8
    arr = np.empty((height, width * planes), dtype=dtype)
    for i, row in enumerate(rows):
        arr[i] = row
    arr = arr.reshape(height, width, planes)
    # 1/2/4-bit samples and sBIT's significant bits are scaled to the full 8/16-bit range (module docstring)
    bits = list(sbit or ())[:planes] + [depth] * (planes - len(sbit or ()))
    if any(not 0 < b <= depth for b in bits):
        raise ImageIOError(f"{path}: sBIT chunk {sbit} is not 1 to {depth} significant bits per channel")
    for c, b in enumerate(bits):
        if b != 8 * arr.itemsize:  # ordinary 8/16-bit channels are left as they are (no copy)
            arr[..., c] = _stretch(arr[..., c] >> (depth - b), b, dtype)
    return dataclasses.replace(_split_alpha(arr, info["alpha"]), meta=_png_metadata(path))


@contextlib.contextmanager
def _tiff_file(path):
    """A :class:`tifffile.TiffFile`, with tifffile's logging of every bad tag of a corrupt file silenced
    (we raise one line instead)."""
    import logging

    import tifffile

    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with tifffile.TiffFile(str(path)) as tif:
            yield tif
    finally:
        log.setLevel(level)


_PHOTOMETRIC_NAMES = {0: "MINISWHITE", 1: "MINISBLACK", 2: "RGB", 3: "PALETTE", 4: "MASK", 5: "SEPARATED",
                      6: "YCBCR", 8: "CIELAB", 9: "ICCLAB", 10: "ITULAB", 32803: "CFA", 32844: "LOGL",
                      32845: "LOGLUV", 34892: "LINEAR_RAW"}
_JPEG_COMPRESSION = (6, 7)  # old- and new-style JPEG: the decoder returns RGB for YCbCr


def _tiff_kind(path, page):
    """Check a TIFF page's tags before decoding; returns (photometric, number of colour samples, alpha
    index among the extra samples or None). Refuses layouts we would otherwise misread."""
    photometric = int(page.photometric)
    spp = int(page.samplesperpixel)
    extras = [int(e) for e in (page.extrasamples or ())]
    n_colour = spp - len(extras)
    name = _PHOTOMETRIC_NAMES.get(photometric, str(photometric))
    need = {0: 1, 1: None, 2: 3, 3: 1, 5: 4, 6: 3}
    if photometric not in need:
        raise ImageIOError(
            f"{path}: TIFF photometric {name} is not supported "
            "(allowed: MINISBLACK, MINISWHITE, RGB, PALETTE, SEPARATED (CMYK), YCBCR)"
        )
    if need[photometric] is not None and n_colour != need[photometric]:
        raise ImageIOError(f"{path}: TIFF photometric {name} with {n_colour} colour samples per pixel "
                           f"(expected {need[photometric]})")
    if photometric == 5 and page.tags.valueof(332, 1) != 1:  # InkSet: 1 = CMYK, 2 = other inks
        raise ImageIOError(f"{path}: TIFF SEPARATED with inks other than CMYK (InkSet) is not supported")
    if photometric == 6 and int(page.compression) not in _JPEG_COMPRESSION and (
            tuple(page.subsampling or (1, 1)) != (1, 1)):
        raise ImageIOError(f"{path}: YCbCr TIFF with chroma subsampling {page.subsampling} is supported only "
                           "JPEG-compressed; convert it to RGB first")
    if photometric in (0, 5, 6) and page.dtype is not None and np.dtype(page.dtype).kind == "f":
        raise ImageIOError(f"{path}: floating-point TIFF with photometric {name} is not supported")
    alphas = [i for i, e in enumerate(extras) if e in (1, 2)]  # ExtraSamples: 1 associated, 2 unassociated
    if len(alphas) > 1:
        raise ImageIOError(f"{path}: TIFF with {len(alphas)} alpha channels (ExtraSamples); one at most")
    return photometric, n_colour, (alphas[0] if alphas else None)


def _rationals(value, n):
    """A RATIONAL tag's ``n`` numbers (tifffile gives numerator/denominator pairs or numbers)."""
    value = [float(v) for v in np.ravel(value)]
    if len(value) == 2 * n:
        return [value[i] / value[i + 1] for i in range(0, 2 * n, 2)]
    return value[:n]


def _ycbcr_to_rgb(page, ycc):
    """TIFF 6.0 section 21: ReferenceBlackWhite, then YCbCrCoefficients (defaults: full range, BT.601)."""
    top = float(np.iinfo(ycc.dtype).max)
    mid = (top + 1) / 2
    rbw = _rationals(page.tags.valueof(532, (0, top, mid, top, mid, top)), 6)
    luma_r, luma_g, luma_b = _rationals(page.tags.valueof(529, (0.299, 0.587, 0.114)), 3)
    f = ycc.astype(np.float64)
    y = (f[..., 0] - rbw[0]) * top / (rbw[1] - rbw[0])
    cb = (f[..., 1] - rbw[2]) * (mid - 1) / (rbw[3] - rbw[2])
    cr = (f[..., 2] - rbw[4]) * (mid - 1) / (rbw[5] - rbw[4])
    r = cr * (2 - 2 * luma_r) + y
    b = cb * (2 - 2 * luma_b) + y
    g = (y - luma_b * b - luma_r * r) / luma_g
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, top).astype(ycc.dtype)


def _tiff_samples(path, page, arr, kind):
    """Channels-last samples of a TIFF page (any leading axes) as min-is-black gray or RGB data and alpha,
    following the photometric interpretation and ExtraSamples tags."""
    photometric, n_colour, alpha_at = kind
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)  # bilevel: 0/1, stretched to 0/255 below
    if int(page.samplesperpixel) == 1:
        arr = arr[..., None]
    colour, extra = arr[..., :n_colour], arr[..., n_colour:]
    bits = int(page.bitspersample)
    if arr.dtype.kind == "u" and bits < 8 * arr.dtype.itemsize:
        # 1/2/4/12-bit samples: scaled to the full range of their 8/16-bit container, as in PNG
        extra = _stretch(extra, bits, arr.dtype)
        if photometric != 3:  # palette indices are not levels
            colour = _stretch(colour, bits, arr.dtype)
    if photometric == 0:
        colour = np.iinfo(colour.dtype).max - colour  # MINISWHITE: read (and written back) min-is-black
    elif photometric == 3:
        cmap = np.asarray(page.colormap)  # (3, 2^bits) uint16
        if cmap.ndim != 2 or cmap.shape[0] != 3 or int(colour.max()) >= cmap.shape[1]:
            raise ImageIOError(f"{path}: TIFF palette indices beyond its colormap, or no colormap")
        if not (cmap % 257).any():  # 8-bit colours stored as v * 257 (the usual way): keep them 8-bit
            cmap = (cmap // 257).astype(np.uint8)
        colour = np.moveaxis(cmap[:, colour[..., 0]], 0, -1)
        extra = extra.astype(colour.dtype) if extra.dtype != colour.dtype else extra
    elif photometric == 5:
        # CMYK without a colour profile, as Pillow converts it: R = (1 − C)(1 − K), G, B likewise
        top = int(np.iinfo(colour.dtype).max)
        wide = top - colour.astype(np.uint64)
        colour = ((wide[..., :3] * wide[..., 3:] * 2 + top) // (2 * top)).astype(colour.dtype)
    elif photometric == 6 and int(page.compression) not in _JPEG_COMPRESSION:
        colour = _ycbcr_to_rgb(page, colour)
    keep = [extra[..., i:i + 1] for i in range(extra.shape[-1]) if i != alpha_at]  # unspecified: data
    data = np.concatenate([colour, *keep], axis=-1) if keep else colour
    if alpha_at is None:
        return data, None
    return data, extra[..., alpha_at]


def _series_axes(series):
    """The series' axes and shape; the pages' own (a leading I axis when there are several) when tifffile's
    are inconsistent: its shape record of a one-page file one pixel wide gives repeated or misplaced letters
    ('XYX' for (1, 1, 1), 'YXQ' for a (2, 5, 1) array it wrote as one 2×5 page)."""
    axes, shape = series.axes, tuple(series.shape)
    page = series.keyframe
    if len(set(axes)) == len(axes) and axes.endswith(page.axes):
        return axes, shape
    pages = math.prod(shape) // max(1, math.prod(page.shape))
    lead = ("I", (pages,)) if pages > 1 else ("", ())
    return lead[0] + page.axes, lead[1] + tuple(page.shape)


def _tiff_series(path, tif, max_pixels=None, stack=False):
    """The first series of an open TIFF: its tags checked and pixel limit applied before decoding, then
    decoded, samples moved last because PlanarConfiguration says where they are, and interpreted; an
    ImageJ/OME channel axis (C) becomes the channels (last). ``stack``: the limit counts every page's pixels.
    Returns (data, alpha, leading axes, leading shape): the axes are tifffile's letters (Z, T, I, Q, ...)."""
    series = tif.series[0]
    kind = _series_kind(path, series, max_pixels, stack)
    axes, shape = _series_axes(series)
    return _series_samples(path, series.keyframe, series.asarray().reshape(shape), axes, kind)


def _series_kind(path, series, max_pixels=None, stack=False):
    """A series' tags checked (:func:`_tiff_kind`) and the pixel limit applied, from the header only."""
    page = series.keyframe
    axes, shape = _series_axes(series)
    kind = _tiff_kind(path, page)
    channels = 3 if kind[0] == 3 else page.samplesperpixel  # a palette becomes RGB
    channels *= shape[axes.index("C")] if "C" in axes else 1
    pages = math.prod(n for a, n in zip(axes, shape, strict=True) if a not in "YXSC") if stack else 1
    _check_pixels(path, pages * shape[axes.index("Y")], shape[axes.index("X")], channels, max_pixels)
    return kind


def _series_samples(path, page, arr, axes, kind):
    """Decoded series data ``arr`` (the series' ``axes``, or any part of its leading axes) interpreted as
    :func:`_tiff_series` returns it; element by element, so a part of the pages gives that part of the
    whole."""
    stored = axes
    if "S" in axes:  # planar (separate) configuration: (..., S, Y, X) → (..., Y, X, S)
        arr = np.moveaxis(arr, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    data, alpha = _tiff_samples(path, page, arr, kind)
    lead_axes = "".join(a for a in axes if a not in "YXS")
    if "C" in lead_axes:  # channels only when the file says so: ImageJ/OME "C"
        if data.shape[-1] != 1 or alpha is not None:
            raise ImageIOError(f"{path}: TIFF with both a channel axis (C, axes {stored}) and several "
                               "samples per pixel is not supported")
        data = np.moveaxis(data[..., 0], lead_axes.index("C"), -1)
        lead_axes = lead_axes.replace("C", "")
    return data, alpha, lead_axes, data.shape[:len(lead_axes)]


class StackError(ImageIOError):
    """A stack (several Z slices or T frames) given where one 2-D image was expected, or the other way
    round: a usage error (the command line says which flag to give) rather than a broken file."""


def _metadata_name(tif):
    """A TIFF's axes and where they come from, for messages."""
    if tif.is_imagej or tif.is_ome:
        return f"axes {tif.series[0].axes} in its {'ImageJ' if tif.is_imagej else 'OME'} metadata"
    return "no axis metadata"


def stack_axis(path, lead_axes, lead, source):
    """The one axis of a stack with more than one entry, as (letter, length); raises StackError for 4-D and
    larger data (several axes with more than one entry, e.g. T and Z)."""
    big = [(a, n) for a, n in zip(lead_axes, lead, strict=True) if n > 1]
    if len(big) > 1:
        raise StackError(f"{path}: a {len(big) + 2}-D stack (shape {tuple(lead)} before Y, X; {source}) "
                         "is not supported; save one Z stack or one time series per file")
    return big[0] if big else (None, 1)


def _refuse_stack(path, lead_axes, lead, source):
    """The error for a stack read as one image: names the flag the file's axes call for (required even then,
    so the command line always says what is run), or both flags when the file does not say."""
    axis, n = stack_axis(path, lead_axes, lead, source)
    if axis == "Z":
        what, flag = f"a volume of {n} Z slices ({source})", "give --volume"
    elif axis == "T":
        what, flag = f"a video of {n} T frames ({source})", "give --video"
    else:
        what = f"a stack of {n} images ({source})"
        flag = "say what it is: --volume (Z slices of a 3-D volume) or --video (frames in time)"
    raise StackError(f"{path}: {what}, not a single 2-D image; {flag}")


def _read_tiff(path, max_pixels):
    with _tiff_file(path) as tif:
        data, alpha, lead_axes, lead = _tiff_series(path, tif, max_pixels)
        source = _metadata_name(tif)
        meta = _tiff_metadata(tif, *_series_axes(tif.series[0]))
    if any(n > 1 for n in lead):
        _refuse_stack(path, lead_axes, lead, source)
    data = data.reshape(data.shape[len(lead):])
    if alpha is not None:
        alpha = alpha.reshape(alpha.shape[len(lead):])
    if data.shape[-1] == 1:
        data = data[..., 0]
    return Image(np.ascontiguousarray(data), None if alpha is None else np.ascontiguousarray(alpha), meta)


def _jpeg_frame_marker(path):
    """The SOFn marker of a JPEG (0xC0…0xCF), read by walking the header segments; None if not found."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    i = 2
    while i + 4 <= len(head) and head[i] == 0xFF:
        marker = head[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # DHT, JPG and DAC are not frames
            return marker
        i += 2 + int.from_bytes(head[i + 2:i + 4], "big")
    return None


def _check_jpeg_size(path, width, height):
    """Refuse, before decoding, a JPEG too small for the size its header claims: Huffman-coded data take at
    least one bit per 8×8 block (arithmetic coding, SOF9–SOF15, can take less and is not checked)."""
    if _jpeg_frame_marker(path) not in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7):
        return
    blocks = -(-width // 8) * -(-height // 8)
    size = path.stat().st_size
    if size * 8 < blocks:
        raise ImageIOError(f"{path}: the header claims {width}×{height} pixels, but {size} bytes cannot hold "
                           "them (at least one bit per 8×8 block); the file is truncated or its header lies")


_PILLOW_RGB_MODES = {"1": "L", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "La": "LA",
                     "RGBa": "RGBA", "RGBX": "RGB"}


def _read_pillow(path, max_pixels):
    """JPEG, BMP and the other formats Pillow opens: size from the header first (Pillow's open does not
    decode), EXIF orientation applied, CMYK (Adobe inverted, as Pillow decodes it) and palettes to RGB(A)."""
    from PIL import BmpImagePlugin, ImageOps, JpegImagePlugin
    from PIL import Image as PILImage

    # JPEG and BMP (known by their first bytes) through their plugins directly: Image.open's fixed
    # decompression-bomb limit (179 million pixels) would override ours, which max_pixels can raise.
    with open(path, "rb") as fh:
        magic = fh.read(3)
    if magic.startswith(b"\xff\xd8\xff"):
        plugin = JpegImagePlugin.JpegImageFile
    elif magic.startswith(b"BM"):
        plugin = BmpImagePlugin.BmpImageFile
    else:
        plugin = PILImage.open
    with plugin(str(path)) as im:
        _check_pixels(path, im.height, im.width, len(im.getbands()), max_pixels)
        if im.format == "JPEG":
            _check_jpeg_size(path, im.width, im.height)
        meta = _pillow_metadata(im)
        im = ImageOps.exif_transpose(im)  # decodes; rotated/flipped into display orientation
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
    elif im.mode in _PILLOW_RGB_MODES:
        im = im.convert(_PILLOW_RGB_MODES[im.mode])
    arr = np.asarray(im)
    if not arr.dtype.isnative:  # Pillow's big-endian 16-bit modes (e.g. 16-bit PGM)
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return dataclasses.replace(_split_alpha(arr, im.mode in ("LA", "RGBA")), meta=meta)


# --- metadata: what the file says besides the pixels (kept from input to output, see Metadata) ---

#: PNG chunks kept as stored: text (tEXt, zTXt, iTXt); iCCP and pHYs are read into ``icc``/``resolution``
PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def _png_metadata(path):
    """Walk a PNG's chunks (skipping the pixel data) for its text chunks, ICC profile and pHYs."""
    chunks, icc, resolution, unit = [], None, None, None
    with open(path, "rb") as fh:
        fh.seek(8)
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IEND":
                break
            if kind not in PNG_TEXT_CHUNKS + (b"iCCP", b"pHYs"):
                fh.seek(length + 4, os.SEEK_CUR)
                continue
            data = fh.read(length)
            fh.seek(4, os.SEEK_CUR)  # CRC (pypng checked the ones that matter while decoding)
            if kind == b"iCCP":
                with contextlib.suppress(ValueError, zlib.error):
                    icc = zlib.decompress(data[data.index(b"\0") + 2:])
            elif kind == b"pHYs" and length == 9:
                x, y, metre = struct.unpack(">IIB", data)
                if x and y:  # pixels per metre, or (unit 0) the pixel aspect only
                    resolution = ((x, 100), (y, 100)) if metre == 1 else ((x, 1), (y, 1))
                    unit = 3 if metre == 1 else 1
            else:
                chunks.append((kind, data))
    return Metadata(resolution=resolution, resolution_unit=unit, icc=icc, png_chunks=tuple(chunks))


def _is_shape_record(description):
    """tifffile's own JSON shape record ({"shape": [...]}): rewritten by the writer, not a description."""
    if not description.lstrip().startswith("{"):
        return False
    try:
        return "shape" in json.loads(description)
    except (ValueError, TypeError):
        return False


#: ImageJ entries tifffile computes from the array written (the rest is kept: spacing, unit, Info, ...)
_IMAGEJ_COMPUTED = ("ImageJ", "images", "channels", "slices", "frames", "hyperstack", "axes")


def _ome_keywords(xml):
    """tifffile's OME keywords from an OME-XML description: physical sizes and units, time increment, the
    image's and channels' names (the rest of the XML describes the layout, which the writer redoes)."""
    import tifffile

    try:
        image = tifffile.xml2dict(xml)["OME"]["Image"]
    except (KeyError, TypeError, ValueError):
        return {}
    image = image[0] if isinstance(image, list) else image
    pixels = image.get("Pixels", {})
    keep = {k: v for k, v in pixels.items()
            if k.startswith(("PhysicalSize", "TimeIncrement")) and v not in (None, "")}
    channels = pixels.get("Channel")
    channels = channels if isinstance(channels, list) else [channels] if channels else []
    names = [c.get("Name") for c in channels if isinstance(c, dict)]
    if names and all(isinstance(n, str) for n in names):
        keep["Channel"] = {"Name": names}
    if isinstance(image.get("Name"), str):
        keep["Name"] = image["Name"]
    return keep


def _tiff_metadata(tif, axes, shape):
    """A TIFF's resolution, description, ICC profile and ImageJ/OME metadata; ``axes``/``shape`` the
    series' (size-1 axes other than Y and X are dropped from the axes kept)."""
    page = tif.pages.first
    tags = page.tags
    resolution = unit = None
    if 282 in tags and 283 in tags:
        x, y = (tuple(int(v) for v in tags.valueof(t)) for t in (282, 283))
        unit = int(tags.valueof(296, 2))  # the TIFF default is inch
        if (x, y, unit) != ((1, 1), (1, 1), 1) and x[1] and y[1]:  # (1, 1) without unit: tifffile's default
            resolution = (x, y)
        else:
            unit = None
    description = imagej = ome = None
    if tif.is_imagej:
        imagej = {k: v for k, v in (tif.imagej_metadata or {}).items() if k not in _IMAGEJ_COMPUTED}
    elif tif.is_ome:
        ome = _ome_keywords(tif.ome_metadata)
    elif page.description and not _is_shape_record(page.description):
        description = page.description
    kept = "".join(a for a, n in zip(axes, shape, strict=True) if n > 1 or a in "YX")
    return Metadata(resolution=resolution, resolution_unit=unit, description=description, imagej=imagej,
                    ome=ome, axes=kept if (imagej is not None or ome is not None) else None,
                    icc=page.iccprofile)


def _pillow_metadata(im):
    """A Pillow image's ICC profile, EXIF (orientation reset to 1: the pixels are rotated on read) and
    resolution (JFIF density; PNG's pHYs when Pillow read the file)."""
    icc = im.info.get("icc_profile") or None
    exif = None
    if "exif" in im.info:
        from PIL import Image as PILImage

        tags = PILImage.Exif()  # a copy: the image's own (getexif) still has to turn the pixels
        tags.load(im.info["exif"])
        if tags.get(0x0112, 1) != 1:
            tags[0x0112] = 1  # the written EXIF must not rotate the already rotated pixels again
        exif = tags.tobytes()
    resolution = unit = None
    unit_code, density = im.info.get("jfif_unit"), im.info.get("jfif_density")
    if unit_code in (1, 2) and density and all(density):
        resolution, unit = tuple((int(d), 1) for d in density), 1 + unit_code  # inch 2, centimetre 3
    return Metadata(resolution=resolution, resolution_unit=unit, icc=icc, exif=exif)


def read_metadata(path):
    """What the file at ``path`` says besides its pixels (:class:`Metadata`), read from its header only.

    For the routes that read pixels another way (large TIFFs strip by strip, stacks): their outputs get the
    same metadata as :func:`read_image`'s (resolution, description, ICC profile, ImageJ/OME metadata).
    Unreadable metadata is an empty :class:`Metadata`, never an error: the pixels decide whether a file is
    readable.
    """
    path = Path(path)
    try:
        suffix = path.suffix.lower()
        if suffix in TIFF_SUFFIXES:
            with _tiff_file(path) as tif:
                return _tiff_metadata(tif, *_series_axes(tif.series[0]))
        if suffix in PNG_SUFFIXES:
            return _png_metadata(path)
    except Exception:  # noqa: BLE001 - metadata is best effort; the pixel reader reports broken files
        pass
    return Metadata()


# --- stdin: the format from the first bytes ---

_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"), (b"II+\x00", "tiff"),
          (b"MM\x00+", "tiff"), (b"\xff\xd8\xff", "jpeg"), (b"BM", "bmp"))


def sniff_format(head):
    """The format of image data from its first bytes (PNG, TIFF, BigTIFF, JPEG, BMP), or None."""
    return next((name for magic, name in _MAGIC if bytes(head).startswith(magic)), None)


def read_image_bytes(data, *, fmt=None, max_pixels=None, name="<stdin>"):
    """Read an image from bytes (e.g. standard input) as :func:`read_image` reads a file.

    Parameters
    ----------
    data : bytes
        The encoded image.
    fmt : str or None
        Its format (``png``, ``tiff``, ``jpeg``, ``bmp``) when its first bytes do not tell (they are
        sniffed first: a known signature wins over ``fmt``).
    max_pixels : int or None
        As in :func:`read_image`.
    name : str
        What messages call the data.

    Returns
    -------
    tuple of (Image, str)
        The image and its format's name (for writing the output in the same format).

    Raises
    ------
    ImageIOError
        Empty data, an unknown format, or anything :func:`read_image` refuses.
    """
    import tempfile

    if not data:
        raise ImageIOError(f"{name}: no data (nothing was piped in)")
    fmt = sniff_format(data[:16]) or (fmt and fmt.lower())
    if fmt not in FORMATS:
        raise ImageIOError(f"{name}: not a PNG, TIFF, JPEG or BMP image (its first bytes are "
                           f"{bytes(data[:8])!r}); give the format (--format) if it is one")
    # the readers take files (header first, then the pixels): spooled to a private temporary file
    with tempfile.TemporaryDirectory(prefix="nlmeans-stdin-") as folder:
        tmp = Path(folder) / f"stdin{FORMATS[fmt]}"
        tmp.write_bytes(data)
        try:
            image = read_image(tmp, max_pixels=max_pixels)
        except ImageIOError as exc:
            raise ImageIOError(str(exc).replace(str(tmp), name)) from exc
    return image, fmt


def read_image(path, *, max_pixels=None):
    """Read an image file into an :class:`Image` (uint8, uint16, float32 or float64).

    Parameters
    ----------
    path : str or Path
        A PNG, TIFF, JPEG, BMP or another format Pillow reads.
    max_pixels : int or None
        Refuse images with more pixels (height × width, read from the header before decoding).
        ``None`` or 0: :func:`default_max_pixels`, from the machine's available memory.

    Returns
    -------
    Image
        The pixels, the alpha channel apart, and the file's metadata (``meta``: resolution, description,
        ICC profile, ImageJ/OME metadata, PNG text chunks, JPEG EXIF), which :func:`write_image` writes back.

    Raises
    ------
    ImageIOError
        The file is missing, unreadable, of an unsupported pixel format, or above the pixel limit.
    """
    path = Path(path)
    if not path.exists():
        raise ImageIOError(f"{path}: no such file")
    if path.is_dir():
        raise ImageIOError(f"{path}: is a folder, not an image file")
    suffix = path.suffix.lower()
    max_pixels = _max_pixels_arg(max_pixels)
    try:
        if suffix in PNG_SUFFIXES:
            image = _read_png(path, max_pixels)
        elif suffix in TIFF_SUFFIXES:
            image = _read_tiff(path, max_pixels)
        else:
            image = _read_pillow(path, max_pixels)
    except ImageIOError:
        raise
    except Exception as exc:  # noqa: BLE001 - every decoder error becomes one line for the user
        raise ImageIOError(f"{path}: cannot read it as an image ({one_line(exc)})") from exc
    _check_pixel_type(path, image.data.dtype)
    if image.data.size == 0:
        raise ImageIOError(f"{path}: cannot read it as an image (no pixel data)")
    return image
