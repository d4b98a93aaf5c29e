"""Reading and writing image files: bit depth kept, alpha passed through, writes atomic.

PNG (8/16-bit, gray or color, with or without alpha), TIFF (uint8, uint16, float32, float64) and the
8-bit formats imageio reads (JPEG, BMP, ...). Errors are :class:`ImageIOError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._validate import SUPPORTED_DTYPES

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
        raise ImageIOError(f"{path}: pixel type {dtype} is not supported (uint8, uint16, float32 or float64)")


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


def _read_png(path):
    import png

    reader = png.Reader(filename=str(path))
    width, height, rows, info = reader.asDirect()
    planes = info["planes"]
    dtype = np.uint16 if info["bitdepth"] > 8 else np.uint8
    arr = np.vstack([np.asarray(row, dtype=dtype) for row in rows]).reshape(height, width, planes)
    return _split_alpha(arr, info["alpha"])


def _read_tiff(path):
    import logging

    import tifffile

    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)  # tifffile logs every bad tag of a corrupt file; we raise one line instead
    try:
        arr = tifffile.imread(str(path))
    finally:
        log.setLevel(level)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar (C, H, W) TIFF
    if arr.ndim not in (2, 3):
        raise ImageIOError(
            f"{path}: TIFF with shape {arr.shape} is not a single 2-D image (gray or color)"
        )
    has_alpha = arr.ndim == 3 and arr.shape[-1] in (2, 4)
    return _split_alpha(arr, has_alpha)


def read_image(path):
    """Read an image file into an :class:`Image` (uint8, uint16, float32 or float64)."""
    path = Path(path)
    if not path.exists():
        raise ImageIOError(f"{path}: no such file")
    if path.is_dir():
        raise ImageIOError(f"{path}: is a folder, not an image file")
    suffix = path.suffix.lower()
    try:
        if suffix in PNG_SUFFIXES:
            image = _read_png(path)
        elif suffix in TIFF_SUFFIXES:
            image = _read_tiff(path)
        else:
            import imageio.v3 as iio

            arr = np.asarray(iio.imread(path))
            image = _split_alpha(arr, arr.ndim == 3 and arr.shape[-1] in (2, 4))
    except ImageIOError:
        raise
    except Exception as exc:  # noqa: BLE001 - every decoder error becomes one line for the user
        raise ImageIOError(f"{path}: cannot read it as an image ({one_line(exc)})") from exc
    if image.data.dtype == np.bool_:
        image.data = image.data.astype(np.uint8) * 255
    _check_pixel_type(path, image.data.dtype)
    if image.data.size == 0:
        raise ImageIOError(f"{path}: cannot read it as an image (no pixel data)")
    return image


def check_writable(path, *, overwrite=False, inputs=()):
    """Raise ImageIOError unless ``path`` can be written: known format, folder exists, not an input."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise ImageIOError(
            f"{path}: unsupported output format {path.suffix or '(none)'!r}; "
            f"allowed: {', '.join(WRITE_SUFFIXES)}"
        )
    for src in inputs:
        if path.exists() and Path(src).exists() and os.path.samefile(path, src):
            raise ImageIOError(f"{path}: the output is an input file; refusing to overwrite an input")
        if path.resolve() == Path(src).resolve():
            raise ImageIOError(f"{path}: the output is an input file; refusing to overwrite an input")
    if not path.parent.exists():
        raise ImageIOError(f"{path}: output folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise ImageIOError(f"{path}: output folder {path.parent} is not writable")
    if path.exists() and not overwrite:
        raise ImageIOError(f"{path}: already exists; pass --overwrite to replace it")


def _encode(tmp, suffix, arr):
    if suffix in TIFF_SUFFIXES:
        import tifffile

        photometric = "minisblack" if arr.ndim == 2 or arr.shape[-1] in (1, 2) else "rgb"
        extra = {"extrasamples": ["unassalpha"]} if arr.ndim == 3 and arr.shape[-1] in (2, 4) else {}
        tifffile.imwrite(tmp, arr, photometric=photometric, **extra)
        return
    if arr.dtype.kind == "f":
        raise ImageIOError(f"{suffix} files hold integers only; write float data to a .tif file")
    if suffix in PNG_SUFFIXES:
        import png

        planes = 1 if arr.ndim == 2 else arr.shape[-1]
        writer = png.Writer(
            width=arr.shape[1], height=arr.shape[0], greyscale=planes in (1, 2),
            alpha=planes in (2, 4), bitdepth=16 if arr.dtype == np.uint16 else 8,
        )
        with open(tmp, "wb") as fh:
            writer.write(fh, arr.reshape(arr.shape[0], -1))
        return
    if arr.dtype != np.uint8:
        raise ImageIOError(f"{suffix} files are 8-bit only; write {arr.dtype} data to .png or .tif")
    import imageio.v3 as iio

    iio.imwrite(tmp, arr, extension=suffix)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path, *, folder=False):
    """Yield a temporary path next to ``path`` and rename it over ``path`` when the block ends without error.

    The temporary is a hidden ``.nlmeans-partial-*`` file (a folder when ``folder``, e.g. a Zarr array) in
    ``path``'s folder, so the rename is atomic and ``path`` never holds a partial result. A file is given the
    usual permissions (``0666`` minus the umask) and flushed to disk (fsync) before the rename; a folder
    replaces an existing folder at ``path``. On any error or interruption (KeyboardInterrupt included) the
    temporary is removed; errors other than :class:`ImageIOError` become one-line ImageIOErrors. Only a
    SIGKILL (or a power cut) can leave the temporary behind: :func:`nlmeans.batch.remove_partials` clears
    those.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if folder:
            tmp = tempfile.mkdtemp(prefix=TEMP_PREFIX, suffix=suffix, dir=path.parent)
        else:
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=path.parent)
            os.close(fd)
    except OSError as exc:
        raise ImageIOError(f"{path}: cannot create a file in {path.parent} ({exc.strerror or exc})") from exc
    try:
        yield tmp
        if folder:
            if path.is_dir():
                shutil.rmtree(path)  # os.replace needs an empty target folder
        else:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if folder:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(exc, ImageIOError) or not isinstance(exc, Exception):
            raise
        reason = getattr(exc, "strerror", None) or one_line(exc)
        raise ImageIOError(f"{path}: cannot write ({reason}); no output was left behind") from exc


def write_image(path, image):
    """Write ``image`` (an :class:`Image` or an array) atomically (:func:`atomic_output`): a temporary file in
    the same folder, flushed to disk, then renamed over ``path``. An interrupted write leaves no partial
    ``path``."""
    path = Path(path)
    if not isinstance(image, Image):
        image = Image(np.asarray(image))
    arr = image.data
    if image.alpha is not None:
        base = arr[..., None] if arr.ndim == 2 else arr
        arr = np.concatenate([base, image.alpha[..., None].astype(base.dtype)], axis=-1)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise ImageIOError(f"{path}: unsupported output format; allowed: {', '.join(WRITE_SUFFIXES)}")
    with atomic_output(path) as tmp:
        _encode(tmp, suffix, np.ascontiguousarray(arr))


# --- large images, Zarr arrays and stacks (read strip by strip, written atomically) ---

ZARR_SUFFIXES = (".zarr",)


def _tiff_array(path):
    """A TIFF's first image as an array-like read on demand: a read-only memmap when the data are stored
    plainly, else a zarr view that decodes only the strips or tiles a slice touches."""
    import tifffile

    try:
        return tifffile.memmap(str(path), mode="r")
    except ValueError:  # compressed or tiled: not memory-mappable
        import zarr

        return zarr.open(tifffile.imread(str(path), aszarr=True), mode="r")


def open_array(path):
    """Open a large TIFF or a ``.zarr`` array for reading strip by strip.

    Returns an array-like with ``shape``/``dtype`` (slicing reads only what is asked) of shape (H, W) or
    (H, W, C). TIFFs with an alpha channel are refused here (the in-memory path passes alpha through).
    """
    path = Path(path)
    if not path.exists():
        raise ImageIOError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in ZARR_SUFFIXES:
            import zarr

            arr = zarr.open_array(str(path), mode="r")
        elif suffix in TIFF_SUFFIXES:
            arr = _tiff_array(path)
        else:
            raise ImageIOError(f"{path}: strip-by-strip reading needs a .tif/.tiff file or a .zarr array")
    except ImageIOError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoder errors become one line
        raise ImageIOError(f"{path}: cannot open it as an array ({one_line(exc)})") from exc
    _check_pixel_type(path, arr.dtype)
    if len(arr.shape) not in (2, 3) or (len(arr.shape) == 3 and arr.shape[-1] not in (1, 3)):
        raise ImageIOError(
            f"{path}: shape {tuple(arr.shape)} is not a gray or RGB image (H, W) / (H, W, 3); "
            "use --volume/--video for stacks, or the in-memory path for alpha"
        )
    return arr


@contextlib.contextmanager
def _array_output(path, shape, dtype):
    """:func:`create_array`'s context manager: the array lives at :func:`atomic_output`'s temporary path."""
    suffix = path.suffix.lower()
    with atomic_output(path, folder=suffix in ZARR_SUFFIXES) as tmp:
        if suffix in ZARR_SUFFIXES:
            import zarr

            chunks = (max(1, min(shape[0], (1 << 22) // max(1, int(np.prod(shape[1:]))))),)
            yield zarr.open_array(tmp, mode="w", shape=shape, dtype=dtype, chunks=chunks + shape[1:])
        else:
            import tifffile

            photometric = "rgb" if len(shape) == 3 and shape[-1] == 3 else "minisblack"
            array = tifffile.memmap(tmp, shape=shape, dtype=dtype, photometric=photometric,
                                    bigtiff=int(np.prod(shape)) * dtype.itemsize > 2**31)
            yield array
            array.flush()  # the data reach the file before atomic_output's fsync and rename
            del array


def create_array(path, shape, dtype):
    """A context manager giving a writable array for ``path`` (TIFF: a memmap; ``.zarr``: a zarr array) that
    appears at ``path`` only when the block ends without an error (:func:`atomic_output`: temporary name,
    then rename)."""
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES + ZARR_SUFFIXES:
        raise ImageIOError(f"{path}: strip-by-strip writing needs a .tif/.tiff or .zarr output")
    return _array_output(path, tuple(shape), np.dtype(dtype))


def read_stack(path):
    """A multi-page TIFF as one array: (Z, Y, X) gray or (Z, Y, X, C) color (volumes and video)."""
    import tifffile

    path = Path(path)
    if not path.exists():
        raise ImageIOError(f"{path}: no such file")
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise ImageIOError(f"{path}: volumes and videos are read from multi-page .tif/.tiff files")
    try:
        arr = tifffile.imread(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ImageIOError(f"{path}: cannot read it as a TIFF stack ({one_line(exc)})") from exc
    _check_pixel_type(path, arr.dtype)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (3, 4):
        raise ImageIOError(f"{path}: shape {arr.shape} is not a stack (Z, Y, X) or (Z, Y, X, C)")
    return arr


def write_stack(path, arr):
    """Write a (Z, Y, X) or (Z, Y, X, C) stack as a multi-page TIFF, atomically."""
    with create_array(path, arr.shape, arr.dtype) as out:
        out[...] = arr
