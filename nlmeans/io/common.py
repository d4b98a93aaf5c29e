"""What every part of :mod:`nlmeans.io` shares: the suffixes, the error type, the image record."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class Image:
    """An image read from a file: ``data`` is (H, W) or (H, W, C) and ``alpha`` (H, W) or None."""

    data: np.ndarray
    alpha: np.ndarray | None = None

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
