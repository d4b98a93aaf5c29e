"""Gaussian noise whose σ differs per channel or over the image: σ per channel and σ maps.

A per-channel σ (shape (C,)) or a σ map (shape (H, W); for stacks (Z, Y, X) or (Y, X) for every slice, in
:mod:`nlmeans.volume`) on the float image's scale: checked and summarised here (block by block, so strips and
slabs see the whole map's numbers), then run either inside a kernel that takes a map (NL-Bayes, flat pixelwise
NL-means) or through scalar-σ runs combined channel by channel or pixel by pixel. The routes and what they
measure: docs/real-noise.md, "σ per channel and σ maps".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: at most this many σ levels are denoised for a σ map (its distinct values if fewer)
SIGMA_MAP_LEVELS = 4
#: a channel whose σ is below this fraction of the channels' RMS σ is denoised on its own
SEPARATE_CHANNEL_RATIO = 0.5


def check_sigma_shape(shape, n_channels, height, width, name="sigma"):
    """Refuse a per-channel σ or σ map whose ``shape`` is neither (C,) nor (H, W), naming the shapes allowed."""
    shape = tuple(int(n) for n in shape)
    if shape not in ((n_channels,), (height, width)) or (len(shape) == 1 and n_channels == 1):
        allowed = f"one value per channel ({n_channels},) or a map of the image's height×width ({height}, {width})"
        if n_channels == 1:
            allowed = f"a map of the image's height×width ({height}, {width}) (a gray image has one channel)"
        raise ValueError(f"{name} has shape {shape}; allowed: a number, {allowed}")


def _bad_sigma(values):
    """(count, first) of the values of ``values`` (float64) that are not finite and >= 0."""
    bad = ~np.isfinite(values) | (values < 0)
    count = int(bad.sum())
    return count, (float(values[bad].flat[0]) if count else None)


def _bad_sigma_error(count, size, example, name="sigma"):
    return ValueError(f"{name} must be finite and >= 0 everywhere; {count} of its {size} values are not "
                      f"(e.g. {example!r})")


def sigma_values(sigma):
    """A per-channel σ or a σ map as a float64 array, or a TypeError saying what σ may be (a ragged list or
    strings would otherwise reach numpy's own message)."""
    try:
        values = np.asarray(sigma, dtype=np.float64) if not isinstance(sigma, (str, bytes)) else None
    except (TypeError, ValueError):
        values = None
    if values is None or values.dtype.kind != "f":
        raise TypeError(f"sigma must be a number, a sequence of numbers or an array, got {sigma!r}")
    return values


def check_sigma_array(sigma, n_channels, height, width):
    """A per-channel σ (shape (C,)) or a σ map (shape (H, W)) as float64, or a ValueError naming the shapes
    allowed."""
    values = sigma_values(sigma)
    check_sigma_shape(values.shape, n_channels, height, width)
    count, example = _bad_sigma(values)
    if count:
        raise _bad_sigma_error(count, values.size, example)
    return values


@dataclass(frozen=True)
class MapSummary:
    """The whole-map numbers a σ-map run needs, gathered block by block (:func:`summarize_sigma_map`), so that
    strips of an out-of-core map get the floats the whole call computes.

    Attributes
    ----------
    low, top : float
        The smallest and the largest σ.
    ref : float
        The map's RMS σ (the σ a scalar call would be given: it picks the preset row); 0 for an all-zero map.
    levels : ndarray of float64
        The σ levels of the per-level route (:func:`sigma_levels`).
    row_max : ndarray of float64
        The largest σ of each row.
    """

    low: float
    top: float
    ref: float
    levels: np.ndarray
    row_max: np.ndarray


def sigma_levels(distinct, low, top):
    """The per-level route's σ levels: the map's ``distinct`` values (sorted) if at most
    :data:`SIGMA_MAP_LEVELS`, else that many spread geometrically (linearly from 0) from ``low`` to ``top``."""
    if distinct is not None and len(distinct) <= SIGMA_MAP_LEVELS:
        return np.array(sorted(distinct), dtype=np.float64)
    levels = (np.geomspace(low, top, SIGMA_MAP_LEVELS) if low > 0 else np.linspace(low, top, SIGMA_MAP_LEVELS))
    levels[0], levels[-1] = low, top
    return levels


def summarize_sigma_map(read, height, block_rows, name="sigma"):
    """:class:`MapSummary` of an (H, W) σ map read ``block_rows`` rows at a time by ``read(y0, y1)`` (float64
    rows), checking that every value is finite and >= 0 (a ValueError naming the count and an example).

    The RMS is ``top · sqrt(Σ_rows Σ (σ/top)² / size)`` (no overflow), each row summed by numpy and the row sums
    added exactly (``math.fsum``): the same float however the rows are split into blocks.
    """
    blocks = [(y0, min(y0 + block_rows, height)) for y0 in range(0, height, max(1, block_rows))]
    low, top, count, example, size = math.inf, 0.0, 0, None, 0
    row_max = np.zeros(height)
    distinct = set()
    for y0, y1 in blocks:
        values = read(y0, y1)
        bad, first = _bad_sigma(values)
        count, example, size = count + bad, example if example is not None else first, size + values.size
        if bad:
            continue
        low, top = min(low, float(values.min())), max(top, float(values.max()))
        row_max[y0:y1] = values.max(axis=1)
        if distinct is not None:
            distinct.update(np.unique(values).tolist())
            distinct = distinct if len(distinct) <= SIGMA_MAP_LEVELS else None
    if count:
        raise _bad_sigma_error(count, size, example, name)
    sums = [] if top > 0 else [0.0]
    for y0, y1 in blocks if top > 0 else ():
        sums.extend(np.sum((read(y0, y1) / top) ** 2, axis=1).tolist())
    ref = top * math.sqrt(math.fsum(sums) / size) if top > 0 else 0.0
    return MapSummary(low, top, ref, sigma_levels(distinct, low, top), row_max)


def known_summary(sigma_map, read, height, block_rows):
    """The :class:`MapSummary` a checked map carries as its ``summary`` (the CLI's ``--sigma-map``, already
    read once to check it), else :func:`summarize_sigma_map` of ``read`` (same arguments)."""
    summary = getattr(sigma_map, "summary", None)
    return summary if isinstance(summary, MapSummary) else summarize_sigma_map(read, height, block_rows)


def channel_runs(values):
    """The scalar runs of per-channel σ ``values`` (C,): ``[(σ, joint), ...]``, the joint run at the RMS σ
    first, then ``(σ_c, False)`` for each channel whose σ_c is below :data:`SEPARATE_CHANNEL_RATIO` of it
    (denoised alone; see :func:`denoise_sigma_array`)."""
    ref = float(np.sqrt(np.mean(np.square(values))))
    return [(ref, True)] + [(float(v), False) for v in values[values < SEPARATE_CHANNEL_RATIO * ref]]


def combine_channels(run, value, values):
    """Per-channel σ ``values`` (C,) through a scalar-σ ``run(v, σ, joint)`` on channel-first float64 ``v``
    (``joint``: all the channels in their layout; else one channel as a gray image) returning float64: the
    runs of :func:`channel_runs`, each lone channel's replacing its channel of the joint run."""
    ref = channel_runs(values)[0][0]
    out = run(value, ref, True)
    for c in np.flatnonzero(values < SEPARATE_CHANNEL_RATIO * ref):
        out[c] = run(value[c:c + 1], float(values[c]), False)[0]
    return out


def combine_levels(run, value, sigma_map, levels):
    """A σ map through a scalar-σ ``run(v, σ, True)`` (as in :func:`combine_channels`): one run per σ level
    and each pixel interpolated linearly in σ between the two runs that bracket its own σ."""
    runs = [run(value, float(s), True) for s in levels]
    k = np.clip(np.searchsorted(levels, sigma_map, side="right") - 1, 0, levels.size - 2)
    t = (sigma_map - levels[k]) / (levels[k + 1] - levels[k])
    stack = np.stack(runs)  # (L, C, H, W)
    index = np.broadcast_to(k, stack.shape[1:])[None]
    lower = np.take_along_axis(stack, index, axis=0)[0]
    upper = np.take_along_axis(stack, index + 1, axis=0)[0]
    return (1 - t) * lower + t * upper


def map_method(kwargs):
    """The method whose kernel takes a σ map: ``"nlbayes"``, or ``"pixelwise"`` with the flat patch distance
    and h None or a number; None for the others (``h="auto"``, patchwise, Gaussian patch weights), which take
    the per-level route. The options are checked as the scalar call checks them."""
    from .presets import check_method_options

    weights = kwargs.get("patch_weights", "flat")
    method, _ = check_method_options(kwargs.get("method"), h=kwargs.get("h"), patch_weights=weights,
                                     patch_sigma=kwargs.get("patch_sigma"))
    flat_pixelwise = method == "pixelwise" and weights == "flat" and not isinstance(kwargs.get("h"), str)
    return method if method == "nlbayes" or flat_pixelwise else None


@dataclass(frozen=True)
class MapKernel:
    """A kernel that takes a σ map, with its parameters resolved once for the whole image (:func:`map_kernel`):
    NL-Bayes (``nlbayes`` its keyword arguments) or pixelwise NL-means (h per pixel ``max(h_over_sigma · σ_p,
    h_floor)``, or ``h`` everywhere when given). :mod:`nlmeans.tiles` runs it strip by strip."""

    method: str
    patch_size: int
    search_size: int
    nlbayes: dict | None = None
    h: float | None = None
    h_over_sigma: float = 0.0
    h_floor: float = 0.0

    def run(self, arr, value, sigma_map):
        """The kernel on ``value`` (C, H, W), the working float form of ``arr`` (the caller's array, for the
        magnitude check), with ``sigma_map`` (H, W) float64; returns (C, H, W) in ``value``'s dtype."""
        from ._validate import check_magnitude
        from .nlbayes import nlbayes_checked
        from .nlm import nlmeans_map_chw

        if self.nlbayes is not None:
            return nlbayes_checked(value, sigma_map, self.nlbayes)
        check_magnitude(arr, "image", value.shape[0] * self.patch_size**2, value.dtype)
        if self.h is None:  # default_h pixel by pixel: k σ_p, at least the floor (default_h at σ = 0)
            h_map = np.maximum(self.h_over_sigma * sigma_map, self.h_floor)
        else:
            h_map = np.full(sigma_map.shape, self.h)
        return nlmeans_map_chw(value, sigma_map, h_map, self.patch_size, self.search_size)


def map_kernel(method, shape, n_channels, ref, kwargs):
    """The :class:`MapKernel` of a σ-map call on an image of ``shape`` (H, W) whose map has RMS σ ``ref``:
    sizes (and NL-Bayes's groups and grid, NL-means's h/σ factor) from the preset at ``ref``, as the scalar call
    with that σ would take them."""
    from . import presets
    from ._validate import default_data_range, sigma_to_255

    data_range = default_data_range(kwargs.get("data_range"))
    if method == "nlbayes":
        params = presets.resolve_nlbayes(shape, sigma_to_255(ref, data_range), n_channels,
                                         kwargs.get("patch_size"), kwargs.get("search_size"))
        return MapKernel(method, int(np.max(params["patch_size"])), params["search_size"][0], nlbayes=params)
    settings = presets.resolve_parameters(shape, ref, h=kwargs.get("h"), patch_size=kwargs.get("patch_size"),
                                          search_size=kwargs.get("search_size"), n_channels=n_channels,
                                          data_range=data_range)
    preset = presets.preset_for(sigma_to_255(ref, data_range), n_channels)
    return MapKernel(method, settings.patch_size, settings.search_size,
                     h=None if kwargs.get("h") is None else settings.h, h_over_sigma=preset.h_over_sigma,
                     h_floor=presets.default_h(0.0, preset, data_range))


def denoise_sigma_map_kernel(arr, axis, sigma_map, kwargs, method):
    """A σ map inside the kernel of ``method`` (:func:`map_kernel`), the preset at the map's RMS σ.

    ``"nlbayes"`` (:func:`nlmeans.nlbayes.nlbayes_chw` with a map): stage 1's distances lose the candidates'
    patch-mean σ², each group's model uses its patches' mean σ̄². ``"pixelwise"``
    (:func:`nlmeans.nlm.nlmeans_map_chw`): the weight of q for p is exp(−max(d² − (σ̄_p² + σ̄_q²), 0) / h_p²),
    σ̄² the patch mean of σ² (the per-pixel bias correction) and h_p = k · σ_p (at least the preset's floor),
    k the preset's h/σ factor; a given ``h`` is used everywhere. ``sigma_map`` is on the float image's scale,
    one map for every channel, checked by :func:`check_sigma_array`.
    """
    from ._validate import from_float, to_chw, work_dtype

    value = to_chw(arr, axis, work_dtype(arr.dtype))
    summary = summarize_sigma_map(lambda y0, y1: sigma_map[y0:y1], sigma_map.shape[0], sigma_map.shape[0])
    kernel = map_kernel(method, value.shape[1:], value.shape[0], summary.ref, kwargs)
    out = kernel.run(arr, value, sigma_map)
    out = out[0] if axis is None else np.moveaxis(out, 0, axis)
    return from_float(out, arr.dtype)


def denoise_sigma_array(denoise, arr, axis, sigma, kwargs, *, in_kernel=True):
    """Gaussian noise with σ per channel or per pixel, through the scalar-σ ``denoise`` (or, for a σ map with
    NL-Bayes or flat pixelwise NL-means, inside its kernel: :func:`denoise_sigma_map_kernel`; ``in_kernel=False``
    takes the per-level route below instead, for comparison).

    Per channel: one joint run of all channels with σ_rms, the RMS of the σ_c: the NL-means distance
    correction 2σ² is then exact on average over the channels (mean of 2σ_c²), and NL-Bayes' orthonormal
    (Y, U, V) channels carry noise variances close to σ_rms². That run over-smooths a channel much
    cleaner than the rest, so a channel with σ_c < σ_rms / 2 is denoised alone with its own σ_c.
    (Whitening, each channel scaled by σ_rms / σ_c, was measured worse: NL-Bayes models each Y, U, V
    channel separately, so it is not equivariant under a per-channel scaling, and the scaling undoes the
    colour decorrelation; 29.9 vs 32.9 dB on astronaut at σ = 5, 20, 35.)

    A σ map: the scalar-σ method runs once per σ level (the map's distinct
    values, or 4 levels spread geometrically over its range) and each pixel interpolates linearly in σ
    between the two runs whose σ bracket its own (an approximation: a patch group mixing regions sees one σ).
    Constant σ gives the scalar call itself (bit-identical).
    """
    from ._validate import from_float, to_chw, work_dtype

    if kwargs.get("guide") is not None:
        raise ValueError("per-channel σ and σ maps are not supported with guide; give one σ")
    n_channels = 1 if axis is None else arr.shape[axis]
    height, width = (arr.shape if axis is None else np.delete(np.array(arr.shape), axis))
    values = check_sigma_array(sigma, n_channels, int(height), int(width))
    if np.all(values == values.flat[0]):
        return denoise(arr, float(values.flat[0]), channel_axis=axis, **kwargs)
    if kwargs.get("return_settings"):
        raise ValueError("return_settings is not supported with per-channel σ or a σ map (Settings hold one σ)")
    kernel = map_method(kwargs) if values.ndim == 2 and in_kernel else None
    if kernel is not None:
        return denoise_sigma_map_kernel(arr, axis, values, kwargs, kernel)
    dtype = work_dtype(arr.dtype)

    def run(v, s, joint):
        ax = axis if joint else None
        x = v[0] if ax is None else np.moveaxis(v, 0, ax)
        return to_chw(denoise(x.astype(dtype), s, channel_axis=ax, **kwargs), ax, np.float64)

    value = to_chw(arr, axis, np.float64)
    if values.ndim == 1:
        out = combine_channels(run, value, values)
    else:
        summary = summarize_sigma_map(lambda y0, y1: values[y0:y1], values.shape[0], values.shape[0])
        out = combine_levels(run, value, values, summary.levels)
    out = out[0] if axis is None else np.moveaxis(out, 0, axis)
    return from_float(out, arr.dtype)
