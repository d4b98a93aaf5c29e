"""Denoising Dask arrays: the same bits as :func:`nlmeans.denoise`, computed strip by strip on any scheduler.

Needs the ``scale`` extra (``pip install "nlmeans[scale]"``: dask[array], distributed, zarr).

The chunking rule
-----------------
:func:`denoise` rechunks the array into **row chunks of the full width** (all columns and channels in each
chunk) whose height is a multiple of the method's strip unit (:class:`nlmeans.tiles.Halo`: the kernel's band
height, for NL-Bayes also its reference grid step, so every chunk starts on a band boundary) and at least the
top halo, and merges a last chunk shorter than a halo into the one before (dask takes a halo from the
neighbouring chunk only). It then calls ``map_overlap`` (``allow_rechunk=False``) with the asymmetric depth of
:func:`nlmeans.tiles.halo_for` along the rows and ``boundary="none"``: chunks at the image's top and bottom
get no halo there, so the kernel's own padding (numpy's ``reflect``, which is dask's ``"symmetric"``, not
dask's ``"reflect"``) sees the real border exactly as the in-memory call does. Each overlapped chunk is then
exactly a strip of :mod:`nlmeans.tiles`, which is why the result is bit-identical. Each block cuts its own
halo off (``trim=False``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

from . import tiles
from ._optional import require
from ._typing import ArrayStore, Method, PatchWeights, Real, StrPath

log = logging.getLogger(__name__)

#: dask's types, named without importing dask (the ``scale`` extra is optional): a ``dask.array.Array`` and a
#: ``dask.distributed.Client``
DaskArray = Any
DaskClient = Any


def _require_dask():
    return require("dask.array", "nlmeans.dask")


def row_chunks(height: int, halo: tiles.Halo, tile_rows: int) -> tuple[int, ...]:
    """Row chunk sizes for :func:`denoise`: multiples of the halo's unit (:class:`nlmeans.tiles.Halo`), none
    shorter than a halo (dask takes a halo from the neighbouring chunk only); a short last chunk is merged
    into the one before."""
    rows = max(tiles.strip_rows(tile_rows, halo), halo.top)  # top is a multiple of the unit
    sizes = [min(rows, height - start) for start in range(0, height, rows)]
    if len(sizes) > 1 and sizes[-1] < max(halo.top, halo.bottom):
        last = sizes.pop()
        sizes[-1] += last
    return tuple(sizes)


def _denoise_block(block, settings, axis, row_axis, top, bottom, block_info=None):
    """Denoise an overlapped chunk and cut its halo off (``top`` rows unless it is the first chunk, ``bottom``
    rows unless it is the last: ``boundary="none"`` adds none at the image's edges)."""
    return tiles.denoise_strip(block, settings, axis, *_kept(block, block_info, row_axis, top, bottom))


def _kept(block, block_info, row_axis, top, bottom):
    """``(keep0, keep1)``: the rows of an overlapped chunk that are its own (see :func:`_denoise_block`)."""
    i = block_info[0]["chunk-location"][row_axis]
    n = block_info[0]["num-chunks"][row_axis]
    return (top if i > 0 else 0), block.shape[row_axis] - (bottom if i < n - 1 else 0)


def _denoise_block_sigma(block, *maps, route, axis, row_axis, top, bottom, block_info=None):
    """:func:`_denoise_block` for a per-channel σ or a σ map (``maps``: the map's overlapped block, with a
    channel axis of length 1 where the image has its channels)."""
    rows = None
    if maps:
        rows = maps[0] if axis is None else np.take(maps[0], 0, axis=axis)
        rows = np.asarray(rows, dtype=np.float64)
    at_top = block_info[0]["chunk-location"][row_axis] == 0
    return tiles.denoise_strip_sigma(block, rows, route, axis, *_kept(block, block_info, row_axis, top, bottom),
                                     at_top=at_top)


def _first_chunk_reaching(sizes, bottom, rows):
    """``sizes`` with the first chunks merged until the first one (with its ``bottom`` halo) reads ``rows``
    rows: :meth:`nlmeans.tiles.SigmaRoute.read_rows` for chunks."""
    sizes = list(sizes)
    while len(sizes) > 1 and sizes[0] + bottom < rows:
        sizes[0] += sizes.pop(1)
    return tuple(sizes)


def denoise(array: DaskArray | ArrayStore, sigma: Real | DaskArray | ArrayStore | None = None, *,
            h: Real | None = None,
            method: Method | None = None, patch_size: int | None = None, search_size: int | None = None,
            channel_axis: int | None = None, data_range: Real | None = None, patch_weights: PatchWeights = "flat",
            patch_sigma: Real | None = None, tile_rows: int | None = None) -> DaskArray:
    """Lazy denoising of a Dask array, equal bit for bit to :func:`nlmeans.denoise` with the same arguments.

    Parameters
    ----------
    array : dask.array.Array or array-like
        (H, W), or with ``channel_axis`` any number of channels; uint8, uint16, float32 or float64. Other
        array-likes are wrapped with ``dask.array.from_array``.
    sigma, h : float or None
        On the float image's scale (integers scaled to [0, 1]: σ = 20 on the 0–255 scale is ``20/255``).
        ``sigma=None``: estimated now (the sample is computed) as in :func:`nlmeans.tiles.denoise_tiled`.
        ``sigma`` may also be one value per channel, or an (H, W) σ map (a numpy or dask array, or another
        array-like): its range and RMS σ are computed now, row block by row block, and the map is rechunked
        to the image's row chunks and overlapped with it, each chunk denoised as a strip of
        :func:`nlmeans.tiles.denoise_tiled` (the same bits as :func:`nlmeans.denoise` with that map).
    method : {None, "nlbayes", "pixelwise", "patchwise"}
        As in :func:`nlmeans.denoise`: ``None`` runs NL-Bayes, or pixelwise NL-means when ``h``,
        ``patch_weights`` or ``patch_sigma`` is given. Guides and ``h="auto"`` need the whole image.
    patch_size, search_size, channel_axis, data_range, patch_weights, patch_sigma
        As in :func:`nlmeans.denoise`; the parameters are resolved once, on the whole array.
    tile_rows : int or None
        Rows per chunk, rounded up to a multiple of the method's strip unit (:class:`nlmeans.tiles.Halo`).
        ``None``: about 16 M values per chunk.

    Returns
    -------
    denoised : dask.array.Array
        Same shape and dtype, chunked in full-width row chunks. Compute it with any scheduler (threads,
        processes, a ``dask.distributed`` cluster).

    Notes
    -----
    See the module docstring for the chunking rule that makes the chunks' results equal to the in-memory
    ones.

    References
    ----------
    .. [1] A. Buades, B. Coll and J.-M. Morel, "Non-Local Means Denoising", Image Processing On Line 1, 2011.
    .. [2] Dask Development Team, "Dask: Library for dynamic task scheduling", 2016, https://dask.org.

    Examples
    --------
    >>> import numpy as np, dask.array as da, nlmeans, nlmeans.dask
    >>> noisy = nlmeans.add_noise(np.full((300, 40), 0.5, np.float32), 0.1, seed=0)
    >>> lazy = nlmeans.dask.denoise(da.from_array(noisy, chunks=(100, 40)), 0.1, tile_rows=64)
    >>> np.array_equal(lazy.compute(), nlmeans.denoise(noisy, 0.1))
    True
    """
    da = _require_dask()
    if not isinstance(array, da.Array):
        array = da.from_array(array)
    axis, row_axis, height, width, n_channels = tiles._layout(array, channel_axis)
    options = dict(method=method, h=h, patch_size=patch_size, search_size=search_size, data_range=data_range,
                   patch_weights=patch_weights, patch_sigma=patch_sigma)
    route = tiles.sigma_route(array, sigma, axis, options) if tiles.is_sigma_array(sigma) else None
    if isinstance(route, float):  # every value the same: the scalar call
        sigma, route = route, None
    if route is None:
        settings = tiles.resolve_settings(array, sigma, channel_axis=axis, **options)
        halo = tiles.halo_for(settings)
    else:
        halo = route.halo
    tile_rows = tiles.resolve_tile_rows(tile_rows, width, n_channels, halo)
    chunks = [-1] * array.ndim
    chunks[row_axis] = row_chunks(height, halo, tile_rows)
    if route is not None:
        chunks[row_axis] = _first_chunk_reaching(chunks[row_axis], halo.bottom, route.top_reads())
    log.debug("%d row chunk(s) of %s rows, halo %d rows above and %d below", len(chunks[row_axis]),
              sorted(set(chunks[row_axis])), halo.top, halo.bottom)
    array = array.rechunk(tuple(chunks))
    top, bottom = halo.top, halo.bottom
    depth = {i: 0 for i in range(array.ndim)}
    depth[row_axis] = (top, bottom) if array.numblocks[row_axis] > 1 else 0
    # trim=False: the blocks cut their own halo (dask's trimming of asymmetric depths at the edges does not
    # give back the input's chunks)
    common = dict(boundary="none", trim=False, allow_rechunk=False, chunks=array.chunks, dtype=array.dtype,
                  meta=np.empty((0,) * array.ndim, dtype=array.dtype), axis=axis, row_axis=row_axis, top=top,
                  bottom=bottom)
    if route is None:
        return array.map_overlap(_denoise_block, depth=depth, settings=settings, **common)
    arrays = [array]
    if route.sigma_map is not None:
        # the map in the image's row chunks, with a channel axis of length 1 where the image has its channels
        # (the blocks are matched by position)
        sigma_map = route.sigma_map
        sigma_map = sigma_map if isinstance(sigma_map, da.Array) else da.from_array(sigma_map)
        sigma_map = sigma_map.rechunk((array.chunks[row_axis], (width,)))
        arrays.append(sigma_map if axis is None else da.expand_dims(sigma_map, axis))
    return da.map_overlap(_denoise_block_sigma, *arrays, depth=[depth] * len(arrays),
                          route=replace(route, sigma_map=None), **common)


def client_for(scheduler: str | None) -> DaskClient | None:
    """``None`` for ``"local"`` (dask's threads on this machine), else a ``dask.distributed.Client`` connected
    to the scheduler at ``scheduler`` (e.g. ``tcp://127.0.0.1:8786``)."""
    if scheduler in (None, "local"):
        return None
    Client = require("dask.distributed", "--scheduler ADDRESS").Client
    try:
        return Client(scheduler, timeout="10s")
    except OSError as exc:
        raise OSError(f"cannot connect to the Dask scheduler at {scheduler} ({exc})") from exc


def compute_into(result: DaskArray, out: ArrayStore, *, client: DaskClient | None = None,
                 progress: bool = False) -> ArrayStore:
    """Compute ``result`` (a row-chunked dask array from :func:`denoise`) chunk by chunk into ``out`` (an
    ndarray, memmap or zarr array of the same shape), in this process: only finished chunks travel back, so a
    cluster needs no access to ``out``. Shows a progress bar over the chunks when ``progress``."""
    from tqdm.auto import tqdm

    row_axis = next(i for i, c in enumerate(result.chunks) if len(c) > 1) if result.npartitions > 1 else 0
    starts = np.concatenate([[0], np.cumsum(result.chunks[row_axis])])
    blocks = []
    for i in range(result.numblocks[row_axis]):
        index = [0] * result.ndim
        index[row_axis] = i
        blocks.append(result.blocks[tuple(index)])
    index = [slice(None)] * result.ndim

    def put(i, data):
        index[row_axis] = slice(int(starts[i]), int(starts[i + 1]))
        out[tuple(index)] = data

    bar = tqdm(total=len(blocks), desc="chunks", unit="chunk", disable=None if progress else True,  # a tty only
               leave=False)
    if client is None:
        for i, block in enumerate(blocks):
            put(i, block.compute(scheduler="threads"))
            bar.update()
    else:
        from dask.distributed import as_completed

        futures = client.compute(blocks)
        which = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):
            put(which[future.key], future.result())
            bar.update()
            future.release()
    bar.close()
    return out


def _read_rows(path, start, stop):
    from .io import open_array

    return np.asarray(open_array(path)[start:stop])


def from_file(path: StrPath, rows: int = 1024) -> DaskArray:
    """A dask array over a large TIFF or ``.zarr`` file (:func:`nlmeans.io.open_array`), ``rows`` rows per
    chunk, each chunk read by the worker that needs it (the path must be readable there)."""
    import dask

    from .io import open_array

    da = _require_dask()
    probe = open_array(path)
    shape, dtype = tuple(probe.shape), np.dtype(probe.dtype)
    del probe
    parts = []
    for start in range(0, shape[0], rows):
        stop = min(start + rows, shape[0])
        part = dask.delayed(_read_rows, pure=True)(str(path), start, stop)
        parts.append(da.from_delayed(part, (stop - start,) + shape[1:], dtype=dtype))
    return da.concatenate(parts, axis=0)
