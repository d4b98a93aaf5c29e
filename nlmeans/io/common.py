"""What every part of :mod:`nlmeans.io` shares: the suffixes, the error type, the image and metadata records."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validate import _SUPPORTED_NAMES, SUPPORTED_DTYPES

PNG_SUFFIXES = (".png",)
TIFF_SUFFIXES = (".tif", ".tiff")
EIGHT_BIT_SUFFIXES = (".jpg", ".jpeg", ".bmp")
WRITE_SUFFIXES = PNG_SUFFIXES + TIFF_SUFFIXES + EIGHT_BIT_SUFFIXES
TEMP_PREFIX = ".nlmeans-partial-"


class ImageIOError(OSError):
    """A file could not be read or written; the message is one line meant for users."""


def one_line(exc):
    """The first line of an exception's message (its type's name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_pixel_type(path, dtype):
    if np.dtype(dtype).type not in SUPPORTED_DTYPES:
        raise ImageIOError(f"{path}: pixel type {dtype} is not supported ({_SUPPORTED_NAMES})")


#: ``--format`` names and aliases -> the suffix that picks the encoder (stdin/stdout have no file name)
FORMATS = {"png": ".png", "tiff": ".tif", "tif": ".tif", "jpeg": ".jpg", "jpg": ".jpg", "bmp": ".bmp"}


@dataclass(frozen=True)
class Metadata:
    """What a file says about its pixels beyond the pixels, kept from input to output.

    ``resolution`` is TIFF-style: ((x numerator, x denominator), (y numerator, y denominator)) pixels per
    ``resolution_unit`` (1 no unit, 2 inch, 3 centimetre); PNG pHYs and JPEG dpi are converted to and from it.
    ``description``: a TIFF ImageDescription (not ImageJ's, OME's or tifffile's own shape record).
    ``imagej``: tifffile's ImageJ metadata (spacing, unit, Info, Labels, display range, ...) and ``ome``:
    tifffile's OME keywords (physical sizes and units, time increment, channel names), both rewritten for the
    output's layout; ``axes``: the file's axes (where an ImageJ/OME channel axis C stood). ``icc``: the ICC
    colour profile (TIFF, PNG iCCP, JPEG). ``png_chunks``: PNG text chunks (tEXt, zTXt, iTXt) as stored.
    ``exif``: JPEG EXIF with its orientation reset to 1 (the pixels were rotated on read).
    """

    resolution: tuple | None = None
    resolution_unit: int | None = None
    description: str | None = None
    imagej: dict | None = None
    ome: dict | None = None
    axes: str | None = None
    icc: bytes | None = None
    png_chunks: tuple = ()
    exif: bytes | None = None

    def __bool__(self):
        return any(v not in (None, ()) for v in self.__dict__.values())


@dataclass
class Image:
    """An image read from a file: ``data`` is (H, W) or (H, W, C), ``alpha`` (H, W) or None, ``meta`` what
    the file said besides (:class:`Metadata`, written back by :func:`nlmeans.io.write_image`)."""

    data: np.ndarray
    alpha: np.ndarray | None = None
    meta: Metadata = field(default_factory=Metadata)

    @property
    def channel_axis(self):
        return None if self.data.ndim == 2 else -1

    def describe(self):
        kind = "gray" if self.data.ndim == 2 else f"{self.data.shape[2]}-channel"
        alpha = " + alpha" if self.alpha is not None else ""
        return f"{self.data.shape[1]}×{self.data.shape[0]} {kind}{alpha} {self.data.dtype}"


def _split_alpha(arr, has_alpha):
    if has_alpha:
        data, alpha = arr[..., :-1], arr[..., -1]
        if data.shape[-1] == 1:
            data = data[..., 0]
        return Image(np.ascontiguousarray(data), np.ascontiguousarray(alpha))
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return Image(np.ascontiguousarray(arr))
