"""Writing: the one output-safety rule every writer follows, and atomic, no-replace writes."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io
import os
import re
import shutil
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import (
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

#: JPEG quality when none is given: high enough that the encoder's own 8×8 artefacts stay well below the
#: noise just removed (Pillow's default, 75, adds visible blocking to smooth denoised areas)
DEFAULT_JPEG_QUALITY = 95
#: zlib level of PNG files (lossless at every level): 2 encodes in 0.3-0.8 of the time of zlib's
#: default 6, files -2 % to +9 % in size (docs/benchmarks.md, "Start-up, second round")
PNG_ZLIB_LEVEL = 2

# --- output safety: the one rule every writer follows (check_output before computing, a no-replace commit) ---


class _Inputs:
    """A run's inputs as identities: resolved paths, (device, inode) pairs and the directory entries given.

    Built once per run so that a batch checks each output against all inputs without re-reading them.
    """

    def __init__(self, paths):
        self.real, self.ids, self.entries = set(), set(), set()
        for p in paths:
            p = os.fspath(p)
            self.real.add(os.path.realpath(p))
            # the entry itself (a symlink input lives where it is given, whatever it points to)
            self.entries.add(os.path.join(os.path.realpath(os.path.dirname(p) or "."), os.path.basename(p)))
            with contextlib.suppress(OSError):
                st = os.stat(p)
                self.ids.add((st.st_dev, st.st_ino))

    def is_input(self, path):
        """True when ``path`` names an input: same resolved path (any spelling, a symlink) or a hard link."""
        if os.path.realpath(path) in self.real:
            return True
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in self.ids

    def inside(self, folder):
        """An input stored inside ``folder`` (resolved), or None."""
        root = os.path.realpath(folder) + os.sep
        return next((p for p in sorted(self.real | self.entries) if p.startswith(root)), None)


def input_set(paths):
    """The identities of ``paths`` for :func:`check_output` (build it once when checking many outputs)."""
    return paths if isinstance(paths, _Inputs) else _Inputs(paths)


def _is_zarr_folder(path):
    return any(os.path.exists(os.path.join(path, m)) for m in (".zarray", ".zgroup", "zarr.json"))


def check_output(path, *, inputs=(), overwrite=False, folder=False):
    """Raise ImageIOError unless ``path`` may be written by a run that reads ``inputs``.

    The rule (every writer of the command line follows it, before any work is done):

    - an output is never an input: not the same path in any spelling (``./a.png``, ``d/../a.png``), not a
      symlink to an input, not a hard link to one;
    - an output is never a folder that holds an input (a ``.zarr`` output replaces the whole folder);
    - an existing output is replaced only when ``overwrite``; a file only by a file and a folder only by a
      folder, and only a folder that is a Zarr store (or empty): ``--overwrite`` never deletes other folders;
    - the output's folder exists and is writable.

    The existing-output part is checked again when the output is committed (:func:`atomic_output` renames
    without replacing), so an output that appears while the run computes is not replaced either.
    """
    path = Path(path)
    inputs = input_set(inputs)
    if inputs.is_input(path):
        raise ImageIOError(f"{path}: the output is an input file; refusing to overwrite an input")
    if folder or path.is_dir():
        held = inputs.inside(path)
        if held is not None:
            raise ImageIOError(f"{path}: the output folder holds an input ({held}); refusing to replace it")
    parent = path.parent
    if not parent.is_dir():
        raise ImageIOError(f"{path}: output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ImageIOError(f"{path}: output folder {parent} is not writable")
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise ImageIOError(f"{path}: already exists; pass --overwrite to replace it")
    is_dir = path.is_dir() and not path.is_symlink()
    if folder and not is_dir:
        raise ImageIOError(f"{path}: exists and is not a folder; refusing to replace it with a folder")
    if not folder and is_dir:
        raise ImageIOError(f"{path}: is a folder; refusing to replace it with a file")
    if folder and any(os.scandir(path)) and not _is_zarr_folder(path):
        raise ImageIOError(f"{path}: is a folder that is not a Zarr store; refusing to replace it")


def check_writable(path, *, overwrite=False, inputs=()):
    """Raise ImageIOError unless ``path`` can be written as an image: a known format and :func:`check_output`."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise ImageIOError(
            f"{path}: unsupported output format {path.suffix or '(none)'!r}; "
            f"allowed: {', '.join(WRITE_SUFFIXES)}"
        )
    check_output(path, inputs=inputs, overwrite=overwrite)


# Temporary names carry the writer's host and PID: ".nlmeans-partial-<host>-<pid>-<random><suffix>". A later run
# removes a temporary only when it is certainly abandoned (see remove_stale_partials), never the temporary of a
# run still writing next to it.
_HOST = hashlib.blake2s(socket.gethostname().encode(), digest_size=3).hexdigest()
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"([0-9a-f]{6})-(\d+)-")
#: a temporary of another host (or of an older version) is removed once untouched for this long
FOREIGN_PARTIAL_SECONDS = 600


def _temp_prefix():
    return f"{TEMP_PREFIX}{_HOST}-{os.getpid()}-"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _newest_mtime(path):
    newest = os.lstat(path).st_mtime
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def _abandoned(path):
    """A temporary whose writer is gone: made on this host by a process that no longer exists; or made
    elsewhere (a shared file system) or by an older version and untouched for FOREIGN_PARTIAL_SECONDS."""
    match = _TEMP_NAME.match(path.name)
    if match and match.group(1) == _HOST:
        return int(match.group(2)) != os.getpid() and not _pid_alive(int(match.group(2)))
    return time.time() - _newest_mtime(path) > FOREIGN_PARTIAL_SECONDS


def remove_stale_partials(folder):
    """Delete the ``.nlmeans-partial-*`` temporaries that killed runs (SIGKILL, power cut) left in ``folder``;
    returns the paths removed. Temporaries of runs still writing are kept (see :func:`_abandoned`)."""
    removed = []
    for p in Path(folder).glob(TEMP_PREFIX + "*"):
        try:
            if not _abandoned(p):
                continue
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        except FileNotFoundError:
            continue  # its writer finished or removed it meanwhile
        except OSError:
            continue  # not ours to remove (permissions): leave it
        removed.append(p)
    return removed


_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


@functools.lru_cache(maxsize=1)
def _libc_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


def _renameat2(src, dst, flags):
    """Linux renameat2(2) with ``flags``; False when the C library or the file system does not offer it."""
    import ctypes

    fn = _libc_renameat2()
    if fn is None:
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(dst))


def _commit(tmp, path, *, overwrite, folder):
    """Move the finished temporary to ``path``: replacing it when ``overwrite``, else never (FileExistsError
    when ``path`` appeared meanwhile, e.g. written by a second run)."""
    if overwrite:
        if folder and path.is_dir() and not path.is_symlink():
            if _renameat2(tmp, path, _RENAME_EXCHANGE):  # atomic swap; the old folder is now at tmp
                shutil.rmtree(tmp, ignore_errors=True)
                return
            shutil.rmtree(path)  # os.replace needs an empty target folder
        os.replace(tmp, path)
        return
    if _renameat2(tmp, path, _RENAME_NOREPLACE):
        return
    if not folder:
        try:
            os.link(tmp, path)  # fails with EEXIST instead of replacing
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system: the check below is the best left
            pass
        else:
            os.unlink(tmp)
            return
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path))
    # Reached without renameat2 only: a folder rename replaces an *empty* folder that appeared in this
    # instant (a non-empty one makes it fail), so nothing can be lost.
    os.rename(tmp, path)


def tiff_layout(samples, has_alpha=False):
    """tifffile's keywords for pages of ``samples`` samples per pixel (None: gray, no sample axis), the last
    one alpha when ``has_alpha``: the tags say which sample is what (RGB for 3 data channels, alpha as
    unassociated alpha, any other channel an unspecified extra sample), so every reader, ours included, gets
    the layout back without guessing from the shape."""
    if samples is None:
        return dict(photometric="minisblack")
    channels = samples - (1 if has_alpha else 0)
    extra = ["unspecified"] * (channels - (3 if channels == 3 else 1)) + (["unassalpha"] if has_alpha else [])
    layout = dict(photometric="rgb" if channels == 3 else "minisblack", planarconfig="contig")
    return dict(layout, extrasamples=extra) if extra else layout


#: dtypes ImageJ files hold (RGB pages: uint8 only)
_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)


def tiff_metadata(meta, shape, dtype, *, has_alpha=False, stack=False, channels_first_ok=True):
    """tifffile's keywords writing ``meta`` (:class:`Metadata`) with an array of ``shape``: (Y, X[, C]), or
    (Z, Y, X[, C]) when ``stack``; the last channel is alpha when ``has_alpha``.

    Resolution and ICC profile always; ImageJ or OME metadata rewritten for the array's axes when the array
    fits the file's axes (an ImageJ/OME channel axis C is stored as planes before Y, X again), else the plain
    description. Returns (keywords, channels_first): ``channels_first``: write the array with its last axis
    moved before Y (and without the usual sample layout). ``channels_first_ok=False`` (arrays written row by
    row): such metadata is left out rather than the layout changed.
    """
    if not meta:
        return {}, False
    kw = {}
    if meta.resolution:
        kw.update(resolution=meta.resolution, resolutionunit=meta.resolution_unit or 1)
    if meta.icc:
        kw["iccprofile"] = meta.icc
    channels = shape[-1] if len(shape) == (4 if stack else 3) else None
    if meta.axes and not has_alpha and (meta.imagej is not None or meta.ome is not None):
        lead = "".join(a for a in meta.axes if a not in "CYXS")
        c_axis = "C" in meta.axes and channels is not None
        axes = lead + ("C" if c_axis else "") + "YX" + ("S" if channels is not None and not c_axis else "")
        fits = len(lead) == (1 if stack else 0) and (c_axis or channels in (None, 3)) and (
            channels_first_ok or not c_axis)
        if fits and meta.imagej is not None:
            fits = np.dtype(dtype).type in _IMAGEJ_DTYPES and ("S" not in axes or np.dtype(dtype) == np.uint8)
        if fits:
            kind = "imagej" if meta.imagej is not None else "ome"
            values = _imagej_ascii(meta.imagej) if meta.imagej is not None else meta.ome
            kw.update({kind: True, "metadata": {**values, "axes": axes}})
            return kw, c_axis
        return kw, False
    if meta.description:
        kw["description"] = meta.description.encode("utf-8")  # tifffile takes only ASCII str, any bytes
    return kw, False


#: ImageJ entries stored in the IJMetadata tag (UTF-16); the others go into the ASCII description
_IJ_TAG_KEYS = ("Info", "Labels", "Ranges", "LUTs", "Plot", "ROI", "Overlays", "Properties")


def _imagej_ascii(values):
    """ImageJ description entries with non-ASCII characters escaped as ImageJ writes them (µ as \\u00B5)."""
    def ascii_(v):
        return "".join(c if ord(c) < 128 else f"\\u{ord(c):04X}" for c in v) if isinstance(v, str) else v

    return {k: v if k in _IJ_TAG_KEYS else ascii_(v) for k, v in values.items()}


def _png_chunk_bytes(meta):
    """The chunks ``meta`` adds to a PNG: iCCP, pHYs (pixels per metre, or the aspect without a unit) and the
    text chunks as they were stored."""
    import zlib

    chunks = []
    if meta.icc:
        chunks.append((b"iCCP", b"ICC profile\0\0" + zlib.compress(meta.icc)))
    if meta.resolution:
        (xn, xd), (yn, yd) = meta.resolution
        per_metre = {3: 100.0, 2: 1 / 0.0254}.get(meta.resolution_unit)
        scale = per_metre or 1.0
        x, y = round(xn / xd * scale), round(yn / yd * scale)
        if 0 < x < 2**31 and 0 < y < 2**31:
            chunks.append((b"pHYs", struct.pack(">IIB", x, y, 1 if per_metre else 0)))
    return chunks + list(meta.png_chunks)


def _encode_png(fh, arr, meta):
    import png

    if arr.dtype not in (np.uint8, np.uint16):  # pypng would wrap negative or 32-bit values silently
        raise ImageIOError(f"PNG files hold 8/16-bit unsigned integers; write {arr.dtype} data to a .tif file")
    planes = 1 if arr.ndim == 2 else arr.shape[-1]
    writer = png.Writer(
        width=arr.shape[1], height=arr.shape[0], greyscale=planes in (1, 2),
        alpha=planes in (2, 4), bitdepth=16 if arr.dtype == np.uint16 else 8, compression=PNG_ZLIB_LEVEL,
    )
    extra = _png_chunk_bytes(meta) if meta else []
    if not extra:
        writer.write(fh, arr.reshape(arr.shape[0], -1))
        return
    plain = io.BytesIO()
    writer.write(plain, arr.reshape(arr.shape[0], -1))
    chunks = list(png.Reader(bytes=plain.getvalue()).chunks())
    png.write_chunks(fh, chunks[:1] + extra + chunks[1:])  # after IHDR: before PLTE and IDAT, as iCCP must be


def _encode_pillow(fh, fmt, arr, meta, jpeg_quality):
    from PIL import Image as PILImage

    options = {}
    if fmt == "JPEG":
        options["quality"] = DEFAULT_JPEG_QUALITY if jpeg_quality is None else jpeg_quality
        if meta.exif:
            options["exif"] = meta.exif
        if meta.resolution and meta.resolution_unit in (2, 3):  # JFIF density in dots per inch
            per_inch = 2.54 if meta.resolution_unit == 3 else 1.0
            options["dpi"] = tuple(n / d * per_inch for n, d in meta.resolution)
    if meta.icc and fmt == "JPEG":
        options["icc_profile"] = meta.icc
    PILImage.fromarray(arr).save(fh, format=fmt, **options)


def check_jpeg_quality(quality):
    """``quality`` checked: None (the default, :data:`DEFAULT_JPEG_QUALITY`) or an int from 1 to 100."""
    if quality is None:
        return None
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f"jpeg_quality must be an integer from 1 to 100 (default {DEFAULT_JPEG_QUALITY}), "
                         f"got {quality!r}")
    return int(quality)


def _encode(tmp, suffix, arr, has_alpha=None, meta=None, jpeg_quality=None):
    """Encode ``arr`` into the file ``tmp`` (:func:`_encode_to`); the file is closed, its bytes handed to the
    system, when the encoder returns."""
    with open(tmp, "wb") as fh:
        _encode_to(fh, suffix, arr, has_alpha, meta, jpeg_quality)


def _encode_to(fh, suffix, arr, has_alpha=None, meta=None, jpeg_quality=None):
    """Encode ``arr`` into the open binary file ``fh``; ``has_alpha``: its last channel is alpha (None: PNG's
    rule, 2 or 4 channels); ``meta``: the :class:`Metadata` written with it."""
    meta = meta or Metadata()
    if has_alpha is None:
        has_alpha = arr.ndim == 3 and arr.shape[-1] in (2, 4)
    if suffix in TIFF_SUFFIXES:
        import tifffile

        kw, channels_first = tiff_metadata(meta, arr.shape, arr.dtype, has_alpha=has_alpha)
        if channels_first:  # an ImageJ/OME channel axis: planes before Y, X, as the input had them
            tifffile.imwrite(fh, np.moveaxis(arr, -1, 0), photometric="minisblack", **kw)
        else:
            tifffile.imwrite(fh, arr, **tiff_layout(arr.shape[-1] if arr.ndim == 3 else None, has_alpha), **kw)
        return
    if arr.dtype.kind == "f":
        raise ImageIOError(f"{suffix} files hold integers only; write float data to a .tif file")
    if suffix in PNG_SUFFIXES:
        _encode_png(fh, arr, meta)
        return
    if arr.dtype != np.uint8:
        raise ImageIOError(f"{suffix} files are 8-bit only; write {arr.dtype} data to .png or .tif")
    _encode_pillow(fh, "JPEG" if suffix in (".jpg", ".jpeg") else "BMP", arr, meta, jpeg_quality)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (see :func:`raise_on_sigterm`): an interruption like Ctrl-C, so
    :func:`atomic_output` removes its temporary on the way out instead of the process dying with it."""


def _raise_terminated(signum, frame):
    raise Terminated()


def raise_on_sigterm():
    """Make SIGTERM raise :class:`Terminated` in this process (main thread only); returns the previous
    handler (for ``signal.signal``) or None when not in the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path, *, overwrite=True, folder=False):
    """Yield a temporary path next to ``path`` and move it to ``path`` when the block ends without error.

    The temporary is a hidden ``.nlmeans-partial-<host>-<pid>-*`` file (a folder when ``folder``, e.g. a Zarr
    array) in ``path``'s folder, so the move is atomic and ``path`` never holds a partial result. A file is
    given the usual permissions (``0666`` minus the umask) and flushed to disk (fsync) before the move.
    ``overwrite``: an existing ``path`` is replaced (a folder by a folder); else it is never replaced, not even
    one that appeared while the block ran (renameat2 ``RENAME_NOREPLACE``, or a hard link then unlink):
    that is an ImageIOError. On any error or interruption (KeyboardInterrupt included) the temporary is
    removed; errors other than :class:`ImageIOError` become one-line ImageIOErrors. Only a SIGKILL (or a
    power cut) can leave the temporary behind: :func:`remove_stale_partials` clears those.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if folder:
            tmp = tempfile.mkdtemp(prefix=_temp_prefix(), suffix=suffix, dir=path.parent)
        else:
            fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(), suffix=suffix, dir=path.parent)
            os.close(fd)
    except OSError as exc:
        raise ImageIOError(f"{path}: cannot create a file in {path.parent} ({exc.strerror or exc})") from exc
    try:
        yield tmp
        if not folder:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        _commit(tmp, path, overwrite=overwrite, folder=folder)
    except BaseException as exc:
        if folder:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, ImageIOError) or not isinstance(exc, Exception):
            raise
        if isinstance(exc, FileExistsError) and not overwrite:
            raise ImageIOError(f"{path}: appeared while this run was computing it; not replaced "
                               "(pass --overwrite to replace it)") from exc
        reason = getattr(exc, "strerror", None) or one_line(exc)
        raise ImageIOError(f"{path}: cannot write ({reason}); no output was left behind") from exc


def _prepared(path, image):
    """The array to encode (alpha appended as the last channel), whether it has alpha, and the metadata."""
    # an Image says whether it has alpha; a bare array follows PNG's rule (2 or 4 channels: the last is alpha)
    explicit = isinstance(image, Image)
    if not explicit:
        image = Image(np.asarray(image))
    arr = image.data
    has_alpha = image.alpha is not None if explicit else None
    if has_alpha:
        base = arr[..., None] if arr.ndim == 2 else arr
        arr = np.concatenate([base, image.alpha[..., None].astype(base.dtype)], axis=-1)
    elif explicit and arr.ndim == 3 and arr.shape[-1] in (2, 4) and path.suffix.lower() in PNG_SUFFIXES:
        raise ImageIOError(f"{path}: PNG stores 2 or 4 channels as gray or RGB plus alpha; write these "
                           f"{arr.shape[-1]} data channels to a .tif file")
    return np.ascontiguousarray(arr), has_alpha, image.meta


def write_image(path, image, *, overwrite=True, jpeg_quality=None):
    """Write ``image`` (an :class:`Image` or an array) atomically (:func:`atomic_output`): a temporary file in
    the same folder, flushed to disk, then renamed to ``path``. An interrupted write leaves no partial
    ``path``. ``overwrite=False``: an existing ``path`` is an ImageIOError, never replaced.

    An :class:`Image`'s ``meta`` is written with it where the format holds it: TIFF resolution, description,
    ICC profile and ImageJ/OME metadata; PNG text chunks, ICC profile and pHYs; JPEG ICC profile, EXIF and
    density. ``jpeg_quality``: 1–100 for JPEG outputs (default :data:`DEFAULT_JPEG_QUALITY`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    jpeg_quality = check_jpeg_quality(jpeg_quality)
    arr, has_alpha, meta = _prepared(path, image)
    if suffix not in WRITE_SUFFIXES:
        raise ImageIOError(f"{path}: unsupported output format; allowed: {', '.join(WRITE_SUFFIXES)}")
    with atomic_output(path, overwrite=overwrite) as tmp:
        _encode(tmp, suffix, arr, has_alpha, meta, jpeg_quality)


def encode_image(image, fmt, *, jpeg_quality=None):
    """``image`` (an :class:`Image` or an array) encoded in memory, as :func:`write_image` writes it.

    Parameters
    ----------
    image : Image or numpy.ndarray
        What to encode (an :class:`Image`'s metadata included).
    fmt : str
        ``png``, ``tiff``/``tif``, ``jpeg``/``jpg`` or ``bmp``.
    jpeg_quality : int or None
        1–100 for JPEG (default :data:`DEFAULT_JPEG_QUALITY`).

    Returns
    -------
    bytes
        The whole file: for standard output, written only once it is complete (no half image on an error).
    """
    suffix = FORMATS.get(str(fmt).lower())
    if suffix is None:
        raise ImageIOError(f"unknown format {fmt!r}; allowed: {', '.join(dict.fromkeys(FORMATS))}")
    jpeg_quality = check_jpeg_quality(jpeg_quality)
    arr, has_alpha, meta = _prepared(Path(f"<stdout>{suffix}"), image)
    buf = io.BytesIO()
    try:
        _encode_to(buf, suffix, arr, has_alpha, meta, jpeg_quality)
    except ImageIOError:
        raise
    except Exception as exc:  # noqa: BLE001 - encoder errors become one line, as write_image's
        raise ImageIOError(f"cannot encode the image as {fmt} ({one_line(exc)})") from exc
    return buf.getvalue()
