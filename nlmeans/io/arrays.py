"""Large images, Zarr arrays and stacks: read strip by strip, written atomically."""

from __future__ import annotations

import contextlib
import errno
import math
import os
from pathlib import Path

import numpy as np

from .common import TIFF_SUFFIXES, ImageIOError, _check_pixel_type, one_line
from .read import (
    _PHOTOMETRIC_NAMES,
    StackError,
    _metadata_name,
    _series_axes,
    _series_samples,
    _tiff_file,
    _tiff_kind,
    _tiff_series,
    stack_axis,
)
from .write import atomic_output, tiff_layout, tiff_metadata

# --- large images, Zarr arrays and stacks (read strip by strip, written atomically) ---

ZARR_SUFFIXES = (".zarr",)


def read_values(path, *, lazy=False):
    """The numbers in a data file, e.g. a σ map: ``.npy`` (memory-mapped when ``lazy``), TIFF (every page:
    (H, W) or (Z, H, W); when ``lazy`` its first image read on demand, :func:`open_array`) or another image
    format (:func:`nlmeans.io.read_image`, in memory; an alpha channel refused). The values as stored, no
    scaling. Unreadable files raise :class:`ImageIOError` (one line)."""
    from .read import read_image

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix != ".npy" and suffix not in TIFF_SUFFIXES:
        image = read_image(path)
        if image.alpha is not None:
            raise ImageIOError(f"{path}: has an alpha channel; a file of values has none")
        return image.data
    if suffix in TIFF_SUFFIXES and lazy:
        return open_array(path)
    try:
        if suffix == ".npy":
            return np.load(str(path), mmap_mode="r" if lazy else None, allow_pickle=False)
        import tifffile

        return tifffile.imread(str(path))
    except Exception as exc:  # noqa: BLE001 - decoder errors become one line
        raise ImageIOError(f"{path}: cannot read it as an array ({one_line(exc)})") from exc


def _tiff_array(path):
    """A TIFF's first image as an array-like read on demand: a read-only memmap when the data are stored
    plainly, else a zarr view that decodes only the strips or tiles a slice touches. Both give the stored
    samples as they are, so only min-is-black gray and interleaved RGB with 8/16/32/64-bit samples pass."""
    import tifffile

    with _tiff_file(path) as tif:
        page = tif.series[0].keyframe
        photometric, n_colour, _ = _tiff_kind(path, page)
        if photometric not in (1, 2) or n_colour != int(page.samplesperpixel):
            name = _PHOTOMETRIC_NAMES.get(photometric, photometric)
            what = f"photometric {name}" if photometric not in (1, 2) else "extra samples (alpha)"
            raise ImageIOError(f"{path}: strip-by-strip reading takes gray (MINISBLACK) or RGB TIFFs, not "
                               f"{what}; use the in-memory path (without --tile-rows)")
        if int(page.samplesperpixel) > 1 and int(page.planarconfig) != 1:
            raise ImageIOError(f"{path}: strip-by-strip reading needs interleaved samples (PlanarConfiguration "
                               "1), not planar; use the in-memory path (without --tile-rows)")
        if int(page.bitspersample) != 8 * np.dtype(page.dtype).itemsize:
            raise ImageIOError(f"{path}: strip-by-strip reading needs 8/16/32/64-bit samples, not "
                               f"{page.bitspersample}-bit; use the in-memory path (without --tile-rows)")
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


class _RowWriter:
    """A write-only array over the contiguous pixel data of a freshly created TIFF: each assignment of whole
    rows (axis 0) is an ``os.pwrite`` at the data offset. Ordinary writes, not a memory map: on a full disk
    a write raises OSError (ENOSPC) where a memory-mapped store kills the process with SIGBUS."""

    def __init__(self, fd, offset, shape, dtype, channels_first=False):
        self.fd, self.offset, self.shape, self.dtype = fd, offset, shape, dtype
        self.ndim = len(shape)
        self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self._channels_first = channels_first  # the file stores (Z, C, Y, X): each slab's channels moved

    def _row_range(self, index):
        first, rest = (index[0], index[1:]) if isinstance(index, tuple) and index else (index, ())
        if first is Ellipsis and not rest:
            first = slice(None)
        whole = all(r is Ellipsis or r == slice(None) for r in rest)
        if isinstance(first, (int, np.integer)) and whole:
            start = int(first) + (self.shape[0] if first < 0 else 0)
            return start, start + 1
        if isinstance(first, slice) and whole:
            start, stop, step = first.indices(self.shape[0])
            if step == 1:
                return start, max(start, stop)
        raise TypeError(f"strip output arrays take whole rows (out[a:b] = ...), not {index!r}")

    def __setitem__(self, index, value):
        start, stop = self._row_range(index)
        block = np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=self.dtype),
                                                     (stop - start, *self.shape[1:])))
        if self._channels_first:
            block = np.ascontiguousarray(np.moveaxis(block, -1, 1))
        view, pos = memoryview(block).cast("B"), self.offset + start * self._row_bytes
        while view:  # pwrite may write less than asked (large blocks, signals)
            written = os.pwrite(self.fd, view, pos)
            view, pos = view[written:], pos + written


def _preallocate(fd, offset, size):
    """Reserve the file's blocks up front, so a full disk fails at once (OSError) rather than after the
    computing; file systems without fallocate are written block by block as usual."""
    if not hasattr(os, "posix_fallocate") or size == 0:
        return
    try:
        os.posix_fallocate(fd, offset, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise


@contextlib.contextmanager
def _array_output(path, shape, dtype, overwrite, stack, metadata=None):
    """:func:`create_array`'s context manager: the array lives at :func:`atomic_output`'s temporary path."""
    suffix = path.suffix.lower()
    with atomic_output(path, overwrite=overwrite, folder=suffix in ZARR_SUFFIXES) as tmp:
        if suffix in ZARR_SUFFIXES:
            import zarr

            chunks = (max(1, min(shape[0], (1 << 22) // max(1, int(np.prod(shape[1:]))))),)
            yield zarr.open_array(tmp, mode="w", shape=shape, dtype=dtype, chunks=chunks + shape[1:])
        else:
            import tifffile

            # pages of (Y, X) or (Y, X, C): a stack has one axis more in front
            layout = tiff_layout(shape[-1] if len(shape) == (4 if stack else 3) else None)
            # the input's resolution, description, ICC profile, ImageJ/OME metadata (a stack's C axis as planes)
            meta_kw, channels_first = tiff_metadata(metadata, shape, dtype, stack=stack, channels_first_ok=stack)
            stored = (shape[0], shape[-1], *shape[1:-1]) if channels_first else shape
            if channels_first:
                layout = dict(photometric="minisblack")
            # the header only (the pixel data stay a hole); uncompressed, contiguous: rows at offset + i * row
            offset, size = tifffile.imwrite(tmp, shape=stored, dtype=dtype, **layout, **meta_kw,
                                            bigtiff=int(np.prod(shape)) * dtype.itemsize > 2**31,
                                            returnoffset=True)
            fd = os.open(tmp, os.O_WRONLY)
            try:
                _preallocate(fd, offset, size)
                yield _RowWriter(fd, offset, shape, dtype, channels_first)
            finally:
                os.close(fd)


def create_array(path, shape, dtype, *, overwrite=True, stack=False, metadata=None):
    """A context manager giving a writable array for ``path`` that appears at ``path`` only when the block
    ends without an error (:func:`atomic_output`: temporary name, then rename; ``overwrite=False`` never
    replaces an existing ``path``).

    TIFF: a write-only array taking whole rows (``out[a:b] = rows``), written with ordinary writes into
    preallocated space (a full disk is an ImageIOError, never a crash); ``.zarr``: a zarr array. ``stack``:
    ``shape`` is (Z, Y, X) or (Z, Y, X, C), written as Z pages (else (H, W) or (H, W, C), one page).
    ``metadata``: a :class:`~nlmeans.io.Metadata` (e.g. :func:`~nlmeans.io.read_metadata` of the input)
    written with a TIFF (resolution, description, ICC profile, ImageJ/OME metadata).
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES + ZARR_SUFFIXES:
        raise ImageIOError(f"{path}: strip-by-strip writing needs a .tif/.tiff or .zarr output")
    return _array_output(path, tuple(shape), np.dtype(dtype), overwrite, stack, metadata)


_STACK_KINDS = {"volume": ("Z", "T", "--video"), "video": ("T", "Z", "--volume")}


def _stack_path(path):
    path = Path(path)
    if not path.exists():
        raise ImageIOError(f"{path}: no such file")
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise ImageIOError(f"{path}: volumes and videos are read from multi-page .tif/.tiff files")
    return path


def _stack_axis(path, lead_axes, lead, source, kind):
    """The index of the stack axis among the leading axes (:func:`stack_axis`), refusing a single image and,
    with ``kind``, a file whose axes say the other kind of stack."""
    axis, _ = stack_axis(path, lead_axes, lead, source)
    if axis is None:  # one page: before, an RGB page's (H, W, 3) was taken for a stack of H images
        raise StackError(f"{path}: a single image, not a stack; leave out --volume/--video")
    if kind is not None:
        want, other, flag = _STACK_KINDS[kind]
        if axis == other:
            raise StackError(f"{path}: its {source} say {axis} "
                             f"({'frames' if axis == 'T' else 'slices'}), not {want}; use {flag}")
    return lead_axes.index(axis)


def _as_stack(path, data, alpha, n_lead):
    """Interpreted series data (:func:`_series_samples`) as (Z, Y, X) or (Z, Y, X, C): alpha kept as the last
    channel (as stacks always had it), the size-1 leading axes dropped."""
    if alpha is not None:
        data = np.concatenate([data, alpha[..., None]], axis=-1)
    data = data.reshape((-1,) + data.shape[n_lead:])
    _check_pixel_type(path, data.dtype)
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim not in (3, 4):
        raise ImageIOError(f"{path}: shape {data.shape} is not a stack (Z, Y, X) or (Z, Y, X, C)")
    return data


def read_stack(path, *, kind=None, max_pixels=None):
    """A multi-page TIFF as one array: (Z, Y, X) gray or (Z, Y, X, C) with channels (volumes and video), its
    samples interpreted as :func:`read_image` does (photometric, planar configuration, ImageJ/OME axes: a
    CZYX file gives (Z, Y, X, C)).

    ``kind`` ("volume" or "video"): refuse (StackError) a file whose ImageJ/OME axes say the other (T frames
    given as a volume, Z slices as a video). Files without axis metadata are taken as the caller says.
    ``max_pixels``: as in :func:`nlmeans.io.read_image`, counting every voxel (Z × Y × X), read from the
    header before decoding. :func:`open_stack` reads the same file slice by slice.
    """
    path = _stack_path(path)
    try:
        with _tiff_file(path) as tif:
            # photometric/planar from the tags, channels from the axes
            arr, alpha, lead_axes, lead = _tiff_series(path, tif, max_pixels=max_pixels, stack=True)
            source = _metadata_name(tif)
    except ImageIOError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ImageIOError(f"{path}: cannot read it as a TIFF stack ({one_line(exc)})") from exc
    _stack_axis(path, lead_axes, lead, source, kind)
    return _as_stack(path, arr, alpha, len(lead))


class TiffStack:
    """A multi-page TIFF stack read slice by slice (:func:`open_stack`): ``stack[a:b]`` decodes only the
    pages of slices ``a`` to ``b`` and gives them as :func:`read_stack` gives the whole file."""

    def __init__(self, path, kind=None):
        self.path = path
        with _tiff_file(path) as tif:
            series = tif.series[0]
            self._kind = _tiff_kind(path, series.keyframe)  # no pixel limit: read a slab at a time
            source = _metadata_name(tif)
            self._axes, shape = _series_axes(series)
            page_ndim = len(series.keyframe.shape)
            self._lead = tuple(int(n) for n in shape[:len(shape) - page_ndim])
            if tuple(shape[len(self._lead):]) != tuple(series.keyframe.shape) or (
                    math.prod(self._lead) != len(series.pages)):
                raise ImageIOError(f"{path}: its pages do not map one to one onto the series {series.axes} "
                                   f"{tuple(series.shape)}; read it in memory (without --slab-slices)")
        # the leading axes without the channel axis (C): the stack axis is among them
        self._stack_at = [i for i, a in enumerate(self._axes[:len(self._lead)]) if a != "C"]
        lead_axes = "".join(self._axes[i] for i in self._stack_at)
        at = _stack_axis(path, lead_axes, tuple(self._lead[i] for i in self._stack_at), source, kind)
        self._stack_at = self._stack_at[at]
        first = self._read(0, 1)
        self.shape = (self._lead[self._stack_at],) + first.shape[1:]
        self.dtype = first.dtype
        self.ndim = len(self.shape)

    def _read(self, start, stop):
        import tifffile

        index = [slice(None)] * len(self._lead)
        index[self._stack_at] = slice(start, stop)
        pages = np.arange(math.prod(self._lead)).reshape(self._lead)[tuple(index)]
        with tifffile.TiffFile(str(self.path)) as tif:
            series = tif.series[0]
            arr = series.asarray(key=pages.ravel().tolist())  # (pages, *page shape)
            arr = arr.reshape(pages.shape + tuple(series.keyframe.shape))
            data, alpha, _, lead = _series_samples(self.path, series.keyframe, arr, self._axes, self._kind)
        return _as_stack(self.path, data, alpha, len(lead))

    def __getitem__(self, index):
        first, rest = (index[0], index[1:]) if isinstance(index, tuple) and index else (index, ())
        if first is Ellipsis and not rest:
            first = slice(None)
        if isinstance(first, slice) and all(r is Ellipsis or r == slice(None) for r in rest):
            start, stop, step = first.indices(self.shape[0])
            if step == 1 and stop > start:
                try:
                    return self._read(start, stop)
                except ImageIOError:
                    raise
                except Exception as exc:  # noqa: BLE001 - decoder errors become one line
                    raise ImageIOError(f"{self.path}: cannot read slices {start}:{stop} ({one_line(exc)})") \
                        from exc
        raise TypeError(f"a TIFF stack reads whole slices (stack[a:b], b > a), not {index!r}")


def open_stack(path, *, kind=None):
    """A multi-page TIFF stack, or a ``.zarr`` array of shape (Z, Y, X) or (Z, Y, X, C), opened for reading
    slice by slice (volumes and video larger than memory).

    TIFF: a :class:`TiffStack` (``stack[a:b]`` decodes those pages only, interpreted as :func:`read_stack`;
    ``kind`` as there); zarr: the array itself. No pixel limit: slabs keep the memory bounded.
    """
    path = Path(path)
    if path.suffix.lower() in ZARR_SUFFIXES:
        if not path.exists():
            raise ImageIOError(f"{path}: no such file")
        try:
            import zarr

            arr = zarr.open_array(str(path), mode="r")
        except Exception as exc:  # noqa: BLE001
            raise ImageIOError(f"{path}: cannot open it as a zarr array ({one_line(exc)})") from exc
        _check_pixel_type(path, arr.dtype)
        if len(arr.shape) not in (3, 4):
            raise ImageIOError(f"{path}: shape {tuple(arr.shape)} is not a stack (Z, Y, X) or (Z, Y, X, C)")
        return arr
    path = _stack_path(path)
    try:
        return TiffStack(path, kind)
    except ImageIOError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ImageIOError(f"{path}: cannot read it as a TIFF stack ({one_line(exc)})") from exc


def write_stack(path, arr, *, overwrite=True, metadata=None):
    """Write a (Z, Y, X) or (Z, Y, X, C) stack as a multi-page TIFF, atomically (``overwrite``: as
    :func:`atomic_output`; ``metadata``: as :func:`create_array`)."""
    with create_array(path, arr.shape, arr.dtype, overwrite=overwrite, stack=True, metadata=metadata) as out:
        out[...] = arr
