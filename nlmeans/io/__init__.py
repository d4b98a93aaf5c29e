"""Files in and out: every pixel format read right or refused, outputs that never destroy an input.

- :mod:`.read`: image files (or piped bytes) into arrays (bit depth, palettes, TIFF tags, EXIF), a pixel
  limit read from the header before decoding, the file's metadata (:class:`Metadata`) kept for the output.
- :mod:`.write`: the one output-safety rule of every writer (:func:`check_output`) and atomic, no-replace
  writes (:func:`atomic_output`, :func:`write_image`); SIGTERM unwinds like Ctrl-C.
- :mod:`.arrays`: large TIFF and Zarr arrays read and written strip by strip, multi-page stacks.

Errors are :class:`ImageIOError` with a one-line message meant for users.
"""

from .arrays import ZARR_SUFFIXES, create_array, open_array, open_stack, read_stack, read_values, write_stack
from .common import (
    EIGHT_BIT_SUFFIXES,
    FORMATS,
    PNG_SUFFIXES,
    TEMP_PREFIX,
    TIFF_SUFFIXES,
    WRITE_SUFFIXES,
    Image,
    ImageIOError,
    Metadata,
    one_line,
)
from .read import (
    StackError,
    available_memory,
    default_max_pixels,
    read_image,
    read_image_bytes,
    read_metadata,
    sniff_format,
)
from .write import (
    DEFAULT_JPEG_QUALITY,
    Terminated,
    atomic_output,
    check_jpeg_quality,
    check_output,
    check_writable,
    encode_image,
    input_set,
    raise_on_sigterm,
    remove_stale_partials,
    write_image,
)

__all__ = [
    "DEFAULT_JPEG_QUALITY", "EIGHT_BIT_SUFFIXES", "FORMATS", "PNG_SUFFIXES", "TEMP_PREFIX", "TIFF_SUFFIXES",
    "WRITE_SUFFIXES", "ZARR_SUFFIXES", "Image", "ImageIOError", "Metadata", "StackError", "Terminated",
    "atomic_output", "available_memory", "check_jpeg_quality", "check_output", "check_writable", "create_array",
    "default_max_pixels", "encode_image", "input_set", "one_line", "open_array", "open_stack",
    "raise_on_sigterm", "read_image", "read_image_bytes", "read_metadata", "read_stack", "read_values",
    "remove_stale_partials",
    "sniff_format", "write_image", "write_stack",
]
