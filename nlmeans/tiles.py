"""Denoising in horizontal strips (tiles with a halo), bit-identical to the untiled call.

The one place that computes strip geometry; :mod:`nlmeans.dask` and the command line use it.

Why strips of full width give the same bits
-------------------------------------------
The 2-D kernel (:mod:`nlmeans.kernels.pixelwise`) cuts the image into bands of ``B`` rows aligned to row
0 (``B = max(BAND_ROWS, r, 1)``), restarts its running patch sums at each band start, and adds at most two band
sums into any pixel (its own band's and the band above's, as ``r <= B``), an order-free sum. A pixel's result
therefore depends only on the bands that reach it and on the rows those bands read. A strip gives the same
bits for the rows it keeps when

- its first row (image coordinates, halo included) is a multiple of ``B``, so its bands are the image's bands;
- its top halo is a multiple of ``B`` and at least ``B + f``: the band above the first kept row starts at or
  below the strip's second band, which reads only real rows (``f`` rows above its start);
- its bottom halo is at least ``r + f``: the lowest pair of a kept pixel reads ``r + f`` rows below it;
- it has the full image width (the column loops then run over the same ranges).

At the image's top and bottom the strip simply includes the border, so the kernel's reflect padding there is
the untiled one. ``tests/test_tiles.py`` checks ``np.array_equal`` against the untiled call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from . import _config
from ._typing import ArrayLike, ArrayStore, Method, PatchWeights, Real
from ._validate import (
    check_array,
    check_channel_axis,
    check_dtype_shape,
    check_int,
    check_integer_scale,
    check_magnitude,
    from_float,
    is_sigma_array,
    to_chw,
    work_dtype,
)
from .nlbayes import nlbayes_checked
from .nlm import run_nlmeans_chw
from .noise_level import estimate_sigma
from .presets import Settings, check_method_options, nlbayes_settings, nlmeans_settings, resolve_parameters

log = logging.getLogger(__name__)

#: σ is estimated on the whole image up to this many pixels, else on a central crop of this many pixels
SIGMA_SAMPLE_PIXELS = 2048 * 2048
#: default number of values (rows × width × channels) a strip keeps: ~64 MB of float32
STRIP_VALUES = 1 << 24


def band_rows(search_size: int) -> int:
    """Rows per band of the 2-D pixelwise kernel for this search size (the kernel's ``max(band_rows, r, 1)``)."""
    return _config.band_rows(search_size // 2)


@dataclass(frozen=True)
class Halo:
    """How strips are cut for one method and its parameters: a strip starts (image coordinates, halo
    included) at a multiple of ``unit`` rows, keeps a multiple of ``unit`` rows (the last strip excepted) and
    reads ``top`` rows (a multiple of ``unit``) above and ``bottom`` rows below the ones it keeps."""

    unit: int
    top: int
    bottom: int


def pixelwise_halo(patch_size: int, search_size: int) -> Halo:
    """The pixelwise kernel's strips (the module docstring): bands of ``B`` rows; top halo a multiple of
    ``B`` and ``>= B + f``, bottom ``r + f``."""
    f, r = patch_size // 2, search_size // 2
    band = band_rows(search_size)
    return Halo(band, -(-(band + f) // band) * band, r + f)


def nlbayes_halo(params: dict[str, Any]) -> Halo:
    """NL-Bayes's strips (the module docstring): walk back from the kept rows through the stages.

    A stage's band ``j`` (``B`` rows, its own "already processed" mask) reads and writes the rows
    ``[jB - pad, (j + 1)B + pad)``. The bands that write the kept rows must see exactly the rows the
    untiled run gives them; those rows are the previous stage's output, needed over the union of the bands'
    reach, and so on back to the noisy rows. The bands a strip gets wrong (its first, which reads reflected
    rows, and its last, which may be short and takes its last row as a reference) then lie outside.
    Strips start on a multiple of every band height and grid step, so bands and reference grids are the
    untiled ones.
    """
    from .nlbayes import stage_bands

    return band_halo(stage_bands(params))


def band_halo(stages: Sequence[tuple[int, int, int]]) -> Halo:
    """The :class:`Halo` of a kernel run in ``stages`` ``[(B, pad, step), ...]`` of bands of ``B`` rows (or
    slices, :func:`nlmeans.volume.slab_halo`) aligned to row 0, each band reading ``pad`` rows beyond its own,
    reference grid ``step``: the walk of :func:`nlbayes_halo`."""
    unit = math.lcm(*(b for b, _, _ in stages), *(step for _, _, step in stages))
    lo, hi = 0, unit  # kept rows of a strip (translation by a multiple of ``unit`` changes nothing)
    for band, pad, _ in reversed(stages):
        first, last = (lo - pad) // band, (hi + pad - 1) // band
        lo, hi = first * band - pad, (last + 1) * band + pad
    return Halo(unit, -(lo // unit) * unit, hi - unit)


def offsets_halo(patch_size: int, search_size: int, patchwise: bool) -> Halo:
    """The offset-loop kernel's strips (patchwise aggregation, Gaussian patch weights): each band of ``B``
    rows computes its own output rows from the rows within ``pad = r + f`` (patchwise ``r + 2f``), with its
    own running sums from the band start; so strips start on a band and read ``pad`` rows around."""
    f, r = patch_size // 2, search_size // 2
    pad = r + 2 * f if patchwise else r + f
    band = max(_config.BAND_ROWS, 1)
    return Halo(band, -(-pad // band) * band, pad)


def halo_for(settings: Settings) -> Halo:
    """The :class:`Halo` of a call's :class:`~nlmeans.presets.Settings` (any method)."""
    if settings.method == "nlbayes":
        return nlbayes_halo(settings.nlbayes)
    if settings.method == "pixelwise" and settings.patch_weights == "flat":
        return pixelwise_halo(settings.patch_size, settings.search_size)
    return offsets_halo(settings.patch_size, settings.search_size, settings.method == "patchwise")


@dataclass(frozen=True)
class Strip:
    """Rows ``[read0, read1)`` are denoised; rows ``[keep0, keep1)`` (image coordinates) are kept."""

    read0: int
    read1: int
    keep0: int
    keep1: int


def strip_rows(tile_rows: int, halo: Halo) -> int:
    """``tile_rows`` rounded up to a multiple of the halo's unit (at least one unit)."""
    return max(1, -(-int(tile_rows) // halo.unit)) * halo.unit


def strips(height: int, halo: Halo, tile_rows: int) -> list[Strip]:
    """The strips covering ``height`` rows, kept rows ``tile_rows`` at a time (rounded up to the unit)."""
    rows = strip_rows(tile_rows, halo)
    out = []
    for keep0 in range(0, height, rows):
        keep1 = min(keep0 + rows, height)
        out.append(Strip(max(0, keep0 - halo.top), min(height, keep1 + halo.bottom), keep0, keep1))
    return out


def default_tile_rows(width: int, n_channels: int, halo: Halo) -> int:
    """Kept rows per strip so that a strip holds about :data:`STRIP_VALUES` values."""
    return strip_rows(max(1, STRIP_VALUES // max(1, width * n_channels)), halo)


def resolve_tile_rows(tile_rows: int | None, width: int, n_channels: int, halo: Halo) -> int:
    """``tile_rows`` checked (a positive int), or the default of :func:`default_tile_rows` when None."""
    if tile_rows is None:
        return default_tile_rows(width, n_channels, halo)
    if check_int(tile_rows, "tile_rows") < 1:
        raise ValueError(f"tile_rows must be a positive integer, got {tile_rows!r}")
    return tile_rows


def _shape_proxy(shape, dtype):
    """A zero-stride array of ``shape``: lets the validation helpers check axes without reading data."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype=dtype), shape=shape, strides=(0,) * len(shape))


def _layout(image, channel_axis):
    """``(axis, row_axis, height, width, n_channels)`` of an array-like image, validated."""
    dtype = np.dtype(image.dtype)
    shape = tuple(int(s) for s in image.shape)
    check_dtype_shape(dtype, shape)
    axis = check_channel_axis(_shape_proxy(shape, dtype), channel_axis)
    spatial = [i for i in range(len(shape)) if i != axis]
    n_channels = 1 if axis is None else shape[axis]
    return axis, spatial[0], shape[spatial[0]], shape[spatial[1]], n_channels


def _rows(ndim, row_axis, start, stop):
    index = [slice(None)] * ndim
    index[row_axis] = slice(start, stop)
    return tuple(index)


def sigma_sample(image: ArrayStore, channel_axis: int | None = None) -> NDArray[Any]:
    """The part of ``image`` that σ is estimated on when not given: the whole image up to
    :data:`SIGMA_SAMPLE_PIXELS` pixels, else a central square crop of that many pixels (read as an array)."""
    axis, row_axis, height, width, _ = _layout(image, channel_axis)
    if height * width <= SIGMA_SAMPLE_PIXELS:
        return np.asarray(image[...])
    side = int(SIGMA_SAMPLE_PIXELS**0.5)
    y0, x0 = max(0, (height - side) // 2), max(0, (width - side) // 2)
    index = [slice(None)] * len(image.shape)
    index[row_axis] = slice(y0, y0 + side)
    index[[i for i in range(len(image.shape)) if i not in (axis, row_axis)][0]] = slice(x0, x0 + side)
    return np.asarray(image[tuple(index)])


def resolve_settings(image: ArrayStore, sigma: Real | None = None, *, method: Method | None = None,
                     h: Real | None = None, patch_size: int | None = None, search_size: int | None = None,
                     channel_axis: int | None = None, data_range: Real | None = None,
                     patch_weights: PatchWeights = "flat", patch_sigma: Real | None = None) -> Settings:
    """The :class:`~nlmeans.presets.Settings` that ``denoise`` would use, without reading the whole image.

    The rules of :func:`nlmeans.denoise` (the method by :func:`nlmeans.presets.resolve_method`, presets by
    σ, h = k·σ for the NL-means methods, sizes shrunk to fit) on the image's shape; σ, when ``None``, is
    estimated on :func:`sigma_sample`. σ and h on the float image's scale; ``h="auto"`` is not supported here.
    """
    axis, _, height, width, n_channels = _layout(image, channel_axis)
    check_integer_scale(image.dtype, sigma=sigma, h=h)
    method, patch_sigma = check_method_options(method, h=h, patch_weights=patch_weights, patch_sigma=patch_sigma)
    if isinstance(h, str):
        raise ValueError(f"h={h!r} is not supported strip by strip; give h as a positive number or leave it out")
    settings = resolve_parameters(
        (height, width), sigma, h=h, patch_size=patch_size, search_size=search_size, n_channels=n_channels,
        data_range=data_range, estimate=lambda: estimate_sigma(sigma_sample(image, axis), channel_axis=axis),
    )
    if method == "nlbayes":
        return nlbayes_settings(settings, (height, width), n_channels, patch_size, search_size)
    return nlmeans_settings(settings, method, patch_weights, patch_sigma)


def denoise_strip(block: ArrayLike, settings: Settings, axis: int | None, keep0: int, keep1: int) -> NDArray[Any]:
    """Denoise one strip (an ndarray with the image's layout) and return its rows ``[keep0, keep1)``
    (strip coordinates), in the input's dtype."""
    arr = check_array(block)
    out = _run_kernel(arr, to_chw(arr, axis, work_dtype(arr.dtype)), settings)
    out = out[:, keep0:keep1]
    out = out[0] if axis is None else np.moveaxis(out, 0, axis)
    return from_float(out, arr.dtype)


def denoise_strip_sigma(block: ArrayLike, sigma_rows: NDArray[Any] | None, route: SigmaRoute, axis: int | None,
                        keep0: int, keep1: int, *, at_top: bool) -> NDArray[Any]:
    """:func:`denoise_strip` for a per-channel σ or a σ map: ``route`` from :func:`sigma_route`,
    ``sigma_rows`` the strip's rows of the map (None per channel), ``at_top`` whether the strip starts at the
    image's first row."""
    arr = check_array(block)
    out = route.run(arr, axis, sigma_rows, at_top)[:, keep0:keep1]
    out = out[0] if axis is None else np.moveaxis(out, 0, axis)
    return from_float(out, arr.dtype)


def _run_kernel(arr, value, settings):
    """The method of ``settings`` on ``value`` (C, H, W), the working float form of ``arr`` (the caller's
    array, for the magnitude check); returns (C, H, W) in ``value``'s dtype."""
    if settings.method == "nlbayes":
        return nlbayes_checked(value, settings.sigma, settings.nlbayes)
    check_magnitude(arr, "image", value.shape[0] * settings.patch_size**2, value.dtype)
    return run_nlmeans_chw(value, value, settings, settings.sigma)


def combined_halo(halos: Sequence[Halo]) -> Halo:
    """One :class:`Halo` that serves every halo of ``halos`` (runs of several settings on the same strips):
    the lcm of their units, the largest top (rounded up to that unit) and bottom."""
    unit = math.lcm(*(h.unit for h in halos))
    top = max(h.top for h in halos)
    return Halo(unit, -(-top // unit) * unit, max(h.bottom for h in halos))


@dataclass(frozen=True)
class SigmaRoute:
    """How a per-channel σ or a σ map runs strip by strip, resolved once for the whole image
    (:func:`sigma_route`) as :func:`nlmeans.sigma_arrays.denoise_sigma_array` resolves it.

    ``kind``: ``"kernel"`` (a map inside NL-Bayes or pixelwise NL-means, :attr:`kernel`), ``"levels"`` (a map
    through one scalar run per σ level, :attr:`runs`) or ``"channels"`` (one σ per channel, :attr:`values`,
    scalar runs :attr:`runs`). :attr:`runs` maps (σ, joint) to the :class:`~nlmeans.presets.Settings` of a
    scalar run (``joint``: every channel; else one channel alone). :attr:`summary` holds the whole map's
    numbers (:class:`nlmeans.sigma_arrays.MapSummary`) of :attr:`sigma_map` (an (H, W) array-like);
    :attr:`halo` serves every run.
    """

    kind: str
    halo: Halo
    values: NDArray[Any] | None = None
    sigma_map: Any = None
    summary: Any = None
    kernel: Any = None
    runs: dict | None = None

    def map_rows(self, y0: int, y1: int) -> NDArray[Any] | None:
        """Rows ``[y0, y1)`` of the σ map as float64 (None per channel)."""
        return None if self.sigma_map is None else np.asarray(self.sigma_map[y0:y1], dtype=np.float64)

    def top_reads(self) -> int:
        """The rows the first strip must read at least: NL-Bayes with a map needs a σ > 0 in it
        (:func:`nlmeans.nlbayes.nlbayes_chw` returns an all-zero map's input unchanged, where the whole image's
        kernel runs), so down to the map's first row with a σ > 0; 0 otherwise."""
        if self.kind != "kernel" or self.kernel.nlbayes is None:
            return 0
        return int(np.argmax(self.summary.row_max > 0)) + 1

    def read_rows(self, strip: Strip) -> tuple[int, int]:
        """The rows a strip reads: its own, the first strip at least :meth:`top_reads`."""
        if strip.read0 > 0:
            return strip.read0, strip.read1
        return strip.read0, max(strip.read1, self.top_reads())

    def run(self, arr: NDArray[Any], axis: int | None, sigma_rows: NDArray[Any] | None,
            at_top: bool) -> NDArray[Any]:
        """Denoise one strip ``arr`` (the caller's layout) with its rows of the map ``sigma_rows`` (float64,
        None per channel); returns (C, rows, W) float in the working dtype (``"kernel"``) or float64."""
        from .sigma_arrays import combine_channels, combine_levels

        if self.kind == "kernel":
            if self.kernel.nlbayes is not None and not at_top:
                # the strip's first row of σ reaches only its first band in each stage, which the halo drops:
                # the whole map's largest σ there makes the strip's largest σ the whole call's, so
                # nlbayes_checked scales the strip by the same power of two (and an all-zero strip still runs)
                sigma_rows = sigma_rows.copy()
                sigma_rows[0] = self.summary.top
            return self.kernel.run(arr, to_chw(arr, axis, work_dtype(arr.dtype)), sigma_rows)
        dtype = work_dtype(arr.dtype)

        def run(v, s, joint):
            x = v.astype(dtype)  # as the whole call hands each run the image converted
            return _run_kernel(x, x, self.runs[s, joint]).astype(np.float64)

        value = to_chw(arr, axis, np.float64)
        if self.kind == "channels":
            return combine_channels(run, value, self.values)
        return combine_levels(run, value, sigma_rows, self.summary.levels)


def sigma_route(image: ArrayStore, sigma: Any, axis: int | None, options: dict[str, Any]) -> SigmaRoute | float:
    """The :class:`SigmaRoute` of a per-channel σ or a σ map (an (H, W) array-like, read strip by strip), or
    the one σ (a float) when every value is the same (the scalar call's result then, as in
    :func:`nlmeans.denoise`). ``options``: the call's ``method``, ``h``, ``patch_size``, ``search_size``,
    ``data_range``, ``patch_weights``, ``patch_sigma``. Errors as :func:`nlmeans.denoise` gives them. A map
    with a ``summary`` attribute holding its :class:`~nlmeans.sigma_arrays.MapSummary` (the CLI's checked
    ``--sigma-map``) is not read again for it."""
    from .sigma_arrays import (
        channel_runs,
        check_sigma_array,
        check_sigma_shape,
        known_summary,
        map_kernel,
        map_method,
    )

    axis, _, height, width, n_channels = _layout(image, axis)
    check_integer_scale(image.dtype, h=options.get("h"))
    shape = getattr(sigma, "shape", None)
    if shape is not None and len(shape) == 2 and type(sigma) is not np.ndarray:
        check_sigma_shape(shape, n_channels, height, width)  # an out-of-core map: checked strip by strip
        values = None
    else:
        values = check_sigma_array(sigma, n_channels, height, width)
    dtype = work_dtype(image.dtype)
    if values is not None and values.ndim == 1:
        check_integer_scale(image.dtype, sigma=values)
        if np.all(values == values[0]):
            return float(values[0])
        runs = _scalar_runs(channel_runs(values), image.shape, axis, height, width, dtype, options)
        return SigmaRoute("channels", combined_halo([halo_for(st) for st in runs.values()]), values=values,
                          runs=runs)
    sigma_map = sigma if values is None else values
    summary = known_summary(sigma_map, lambda y0, y1: np.asarray(sigma_map[y0:y1], dtype=np.float64), height,
                            max(1, STRIP_VALUES // max(1, width)))
    check_integer_scale(image.dtype, sigma=summary.top)
    if summary.low == summary.top:
        return summary.top
    method = map_method(dict(options))
    if method is not None:
        kernel = map_kernel(method, (height, width), n_channels, summary.ref, options)
        halo = (nlbayes_halo(kernel.nlbayes) if method == "nlbayes"
                else pixelwise_halo(kernel.patch_size, kernel.search_size))
        return SigmaRoute("kernel", halo, sigma_map=sigma_map, summary=summary, kernel=kernel)
    runs = _scalar_runs([(float(s), True) for s in summary.levels], image.shape, axis, height, width, dtype,
                        options)
    return SigmaRoute("levels", combined_halo([halo_for(st) for st in runs.values()]), sigma_map=sigma_map,
                      summary=summary, runs=runs)


def _scalar_runs(sigmas, shape, axis, height, width, dtype, options):
    """{(σ, joint): Settings} of the scalar runs a per-channel σ or a map's levels make, resolved as the
    whole call's runs on the image converted to ``dtype`` (joint: in its layout; else one channel, gray)."""
    runs = {}
    for s, joint in sigmas:
        proxy = _shape_proxy(tuple(shape) if joint else (height, width), dtype)
        runs[s, joint] = resolve_settings(proxy, s, channel_axis=axis if joint else None, **options)
    return runs


@overload
def denoise_tiled(
    image: ArrayStore,
    sigma: Real | ArrayStore | None = None,
    *,
    h: Real | None = None,
    method: Method | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    patch_weights: PatchWeights = "flat",
    patch_sigma: Real | None = None,
    tile_rows: int | None = None,
    out: ArrayStore = None,
    progress: bool = False,
    return_settings: Literal[False] = False,
) -> ArrayStore: ...


@overload
def denoise_tiled(
    image: ArrayStore,
    sigma: Real | ArrayStore | None = None,
    *,
    h: Real | None = None,
    method: Method | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    patch_weights: PatchWeights = "flat",
    patch_sigma: Real | None = None,
    tile_rows: int | None = None,
    out: ArrayStore = None,
    progress: bool = False,
    return_settings: Literal[True],
) -> tuple[ArrayStore, Settings]: ...


def denoise_tiled(
    image: ArrayStore,
    sigma: Real | ArrayStore | None = None,
    *,
    h: Real | None = None,
    method: Method | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    patch_weights: PatchWeights = "flat",
    patch_sigma: Real | None = None,
    tile_rows: int | None = None,
    out: ArrayStore = None,
    progress: bool = False,
    return_settings: bool = False,
) -> ArrayStore | tuple[ArrayStore, Settings]:
    """Denoise strip by strip: the same result as :func:`nlmeans.denoise`, bit for bit, in bounded memory.

    Parameters
    ----------
    image : array-like, shape (H, W), or with ``channel_axis`` (H, W, C) / (C, H, W) / ...
        Anything that has ``shape`` and ``dtype`` and returns an ndarray when sliced: an ndarray, a
        ``numpy.memmap`` (e.g. ``tifffile.memmap``), a zarr or h5py array. Only one strip is read at a time.
        uint8, uint16, float32 or float64.
    sigma, h : float or None
        Noise standard deviation and filtering parameter **on the float image's scale** (integer images are
        scaled to [0, 1]: σ = 20 on the 0–255 scale of an 8-bit image is ``20/255``). ``sigma=None``: estimated
        once, on the whole image up to 2048² pixels, on a central 2048×2048 crop for larger images (so for
        those the estimate, and then the result, can differ from ``nlmeans.denoise``'s; pass σ to be sure).
        ``sigma`` may also be one value per channel, or an (H, W) σ map on the same scale: an ndarray, or an
        array-like read strip by strip like the image (a memmap, a zarr array), so it is never loaded whole.
        The result is :func:`nlmeans.denoise`'s with the same σ, bit for bit (its routes, the preset at the
        map's RMS σ computed over the whole map; see the Notes). Not with ``return_settings``.
    method : {None, "nlbayes", "pixelwise", "patchwise"}
        As in :func:`nlmeans.denoise`: ``None`` runs NL-Bayes, or pixelwise NL-means when ``h``,
        ``patch_weights`` or ``patch_sigma`` is given. Guides and ``h="auto"`` need the whole image.
    patch_size, search_size, channel_axis, data_range, patch_weights, patch_sigma
        As in :func:`nlmeans.denoise`.
    tile_rows : int or None
        Rows kept per strip, rounded up to a multiple of the method's strip unit (:class:`Halo`). ``None``:
        about 16 M values (64 MB of float32) per strip.
    out : array-like or None
        Where to write the result (same shape and dtype as ``image``, e.g. a writable memmap or zarr array);
        ``None``: a new ndarray.
    progress : bool
        Show a progress bar (tqdm) over the strips, on a terminal only.
    return_settings : bool
        Also return the :class:`~nlmeans.presets.Settings` used.

    Returns
    -------
    out : array-like
        ``out`` (or the new array) holding the denoised image; with ``return_settings`` a pair
        ``(out, settings)``.

    Notes
    -----
    Each strip is the kept rows plus a halo: above, a multiple of the kernel's band height ``B`` that is at
    least ``B + f``; below, ``r + f`` rows (``f``, ``r`` the patch and search radii); strips start on a band
    boundary and span the full width. The module docstring explains why this reproduces the untiled bits.

    A σ map is read twice before the strips (:func:`nlmeans.sigma_arrays.summarize_sigma_map`: its check, range,
    levels and RMS σ, the RMS summed row by row and the rows added exactly, so every split gives the whole
    call's float; not at all when the map carries that summary, as the CLI's checked ``--sigma-map`` does) and
    then strip by strip with the image, halo included: the kernels' patch means of σ² are
    taken window by window (:func:`nlmeans.nlm.patch_mean`), so a strip sees the whole call's values. Per
    channel and per σ level the strips run every scalar run the whole call makes (their halo the largest).
    NL-Bayes with a map: a strip's first row of σ, which only the strip's first band reads (dropped by the
    halo), is set to the map's largest σ, so that :func:`nlmeans.nlbayes.nlbayes_checked` rescales the strip
    by the whole call's power of two and an all-zero strip still runs the kernel; the first strip reads down
    to the map's first row with a σ > 0.

    Memory: about six float copies of one strip, plus the input and output arrays if they are in memory.

    References
    ----------
    .. [1] A. Buades, B. Coll and J.-M. Morel, "Non-Local Means Denoising", Image Processing On Line 1, 2011.
    .. [2] J. Darbon, A. Cunha, T. F. Chan, S. Osher and G. J. Jensen, "Fast nonlocal filtering applied to
       electron cryomicroscopy", ISBI 2008.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> noisy = nlmeans.add_noise(np.full((300, 40), 0.5, np.float32), 0.1, seed=0)
    >>> whole = nlmeans.denoise(noisy, 0.1)
    >>> np.array_equal(nlmeans.denoise_tiled(noisy, 0.1, tile_rows=64), whole)
    True
    """
    from tqdm.auto import tqdm

    if isinstance(image, (list, tuple)):  # array-likes are read strip by strip; lists follow check_array's rule
        image = check_array(image)
    axis, row_axis, height, width, n_channels = _layout(image, channel_axis)
    options = dict(method=method, h=h, patch_size=patch_size, search_size=search_size, data_range=data_range,
                   patch_weights=patch_weights, patch_sigma=patch_sigma)
    route = sigma_route(image, sigma, axis, options) if is_sigma_array(sigma) else None
    if isinstance(route, float):  # every value the same: the scalar call
        sigma, route = route, None
    if route is not None and return_settings:
        raise ValueError("return_settings is not supported with per-channel σ or a σ map (Settings hold one σ)")
    settings = None
    if route is None:
        settings = resolve_settings(image, sigma, channel_axis=axis, **options)
    halo = halo_for(settings) if route is None else route.halo
    tile_rows = resolve_tile_rows(tile_rows, width, n_channels, halo)
    if out is None:
        out = np.empty(image.shape, dtype=image.dtype)
    elif tuple(out.shape) != tuple(image.shape) or np.dtype(out.dtype) != np.dtype(image.dtype):
        raise ValueError(
            f"out has shape {tuple(out.shape)} and dtype {out.dtype}; it must match the image's "
            f"{tuple(image.shape)} {image.dtype}"
        )
    elif isinstance(out, np.ndarray) and isinstance(image, np.ndarray) and np.shares_memory(out, image):
        # strips read rows of the image above and below the ones they write: in place would read results
        raise ValueError("out shares memory with image; strips read the input around the rows they write, "
                         "so pass a separate output array (or out=None)")
    ndim = len(image.shape)
    plan = strips(height, halo, tile_rows)
    log.debug("%d strip(s) of up to %d rows, halo %d rows above and %d below", len(plan), plan[0].keep1, halo.top,
              halo.bottom)
    for s in tqdm(plan, desc="strips", unit="strip", disable=None if progress else True, leave=False):
        read0, read1 = (s.read0, s.read1) if route is None else route.read_rows(s)
        block = np.asarray(image[_rows(ndim, row_axis, read0, read1)])
        keep = s.keep0 - read0, s.keep1 - read0
        if route is None:
            result = denoise_strip(block, settings, axis, *keep)
        else:
            result = denoise_strip_sigma(block, route.map_rows(read0, read1), route, axis, *keep,
                                         at_top=read0 == 0)
        out[_rows(ndim, row_axis, s.keep0, s.keep1)] = result
    return (out, settings) if return_settings else out
