"""Volumes (Z, Y, X) and video (T, Y, X): validate, convert, pick parameters, run NL-Bayes 3-D
(:func:`nlmeans.nlbayes.nlbayes_3d_chw`, the default) or pixelwise NL-means
(:func:`nlmeans.kernels.offsets._nlm_3d`), convert back. σ and h on the float image's scale, as in
:func:`nlmeans.denoise`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from ._typing import Array, ArrayLike, NoiseModel, Real, SigmaLike, VolumeMethod
from ._validate import (
    check_array,
    check_channel_axis,
    check_dtype_shape,
    check_int,
    check_integer_scale,
    check_magnitude,
    check_noise_model,
    check_real,
    default_data_range,
    from_float,
    is_sigma_array,
    sigma_to_255,
    to_chw,
    work_dtype,
)
from .kernels import weight_constants
from .kernels.offsets import _nlm_3d
from .nlbayes import _pair, nlbayes_3d_chw, nlbayes_checked
from .noise_level import estimate_sigma
from .presets import (
    NLBAYES_BAND_SLICES,
    TEMPORAL_RADIUS,
    Settings,
    check_method_options,
    fit_size,
    nlbayes_video_params,
    nlbayes_volume_params,
    resolve_parameters,
    volume_sizes,
)
from .tiles import Halo, _shape_proxy, band_halo, combined_halo, strip_rows, strips

log = logging.getLogger(__name__)

#: slices σ is estimated on (evenly spaced; the estimate is their mean)
SIGMA_SLICES = 8
#: default number of values (slices × rows × columns × channels) a slab reads, halo included: ~48 M values,
#: 1.66 GiB peak RSS for a 512³ uint16 volume with NL-Bayes (bench/results/memory_volume.md)
SLAB_VALUES = 3 << 24


def _slice_index(ndim, z_axis, start, stop):
    index = [slice(None)] * ndim
    index[z_axis] = slice(start, stop)
    return tuple(index)


def _sample_slices(stack, axis, z_axis, depth):
    """Up to :data:`SIGMA_SLICES` evenly spaced slices of ``stack``, each read on its own (so an array-like
    read slab by slab gives the same planes as the whole array in memory), as contiguous (Y, X) or
    (Y, X, C) arrays."""
    picks = np.unique(np.linspace(0, depth - 1, min(SIGMA_SLICES, depth)).round().astype(int))
    planes = []
    for i in picks:
        plane = check_array(stack[_slice_index(len(stack.shape), z_axis, i, i + 1)])
        plane = np.moveaxis(plane, z_axis, 0)[0]
        if axis is not None:  # channels last in the slice
            plane = np.moveaxis(plane, axis - (axis > z_axis), -1)
        planes.append(np.ascontiguousarray(plane))
    return planes


def _estimate_sigma_slices(stack, axis, z_axis, depth):
    """Mean of :func:`nlmeans.estimate_sigma` over the slices of :func:`_sample_slices`."""
    return _sigma_of_planes(_sample_slices(stack, axis, z_axis, depth), colour=axis is not None)


def _sigma_of_planes(planes, colour):
    """The stack's σ from its sampled planes (:func:`_sample_slices`; channels last when ``colour``): the mean
    of :func:`nlmeans.estimate_sigma` over them."""
    estimates = [estimate_sigma(plane, channel_axis=-1 if colour else None) for plane in planes]
    sigma = float(np.mean(estimates))
    log.info("sigma estimated on %d slices: %.4g (float scale)", len(planes), sigma)
    return sigma


def _estimate_model_slices(stack, axis, z_axis, depth, noise):
    """:func:`nlmeans.estimate_noise` of ``noise`` on the slices of :func:`_sample_slices` taken together
    (each slice's channels as channels of one image): one fit of the model for the whole stack, the same in
    memory and in slabs."""
    return _model_of_planes(_sample_slices(stack, axis, z_axis, depth), axis is not None, noise)


def _model_of_planes(planes, colour, noise):
    """:func:`nlmeans.estimate_noise` of ``noise`` on the sampled planes taken together (as in
    :func:`_sigma_of_planes`)."""
    from .noise_level import estimate_noise

    chw = np.concatenate([np.moveaxis(p, -1, 0) if colour else p[None] for p in planes])
    return estimate_noise(chw, noise=noise, channel_axis=0)


def nlmeans_3d_chw(value: NDArray[Any], sigma: float, h: float, patch_size: int, search_size: int,
                   temporal_radius: int | None = None) -> NDArray[Any]:
    """NL-means on a channel-first float stack ``(C, Z, H, W)`` (no validation).

    ``temporal_radius=None``: a volume, cubic patches and windows, reflect padding on all axes. An int: video,
    2-D patches, spatial window ``search_size`` squared over frames ``t ± temporal_radius`` that exist.
    """
    dtype = value.dtype.type
    f, r = patch_size // 2, search_size // 2
    if temporal_radius is None:
        fz, rz, z_reflect = f, r, True
    else:
        fz, rz, z_reflect = 0, int(temporal_radius), False
    zpad = rz + fz if z_reflect else 0
    padded = np.pad(value, ((0, 0), (zpad, zpad), (r + f, r + f), (r + f, r + f)), mode="reflect")
    n_terms = value.shape[0] * (2 * fz + 1) * patch_size * patch_size
    # the 2-D constants, clamped (a tiny h gives weights 0 or 1, not a division by zero); t = max(S a - b, 0)
    # takes b = a bb, formed in float64 before the rounding to the kernel's dtype
    a, bb = weight_constants(n_terms, sigma, h, float)
    a, b = dtype(a), dtype(a * bb)
    out = np.empty(value.shape, dtype=dtype)
    _nlm_3d(padded, padded, fz, f, rz, r, zpad, z_reflect, a, b, dtype is np.float32, out)
    return out


#: the methods of :func:`denoise_volume` and :func:`denoise_video`
METHODS = ("nlbayes", "pixelwise")


def _method(method, h):
    """The method to run, by :func:`nlmeans.denoise`'s rule (``None``: NL-Bayes, or NL-means when ``h`` is
    given; ``h`` refused with NL-Bayes), among this module's :data:`METHODS`."""
    if method is not None and (not isinstance(method, str) or method not in METHODS):
        raise ValueError(f"method={method!r} is not known; allowed: {', '.join(METHODS)}")
    return check_method_options(method, h=h)[0]


@dataclass(frozen=True)
class _Call:
    """A stack call's layout and resolved settings: what every slab (or the whole stack) is denoised with."""

    axis: int | None  # channel axis of the caller's array
    z_axis: int  # the slice (volume) or frame (video) axis of the caller's array
    shape: tuple  # (Z, Y, X)
    n_channels: int
    temporal_radius: int | None  # None: a volume
    settings: object  # presets.Settings

    @property
    def video(self):
        return self.temporal_radius is not None


def _resolve(stack, sigma, h, patch_size, search_size, channel_axis, data_range, temporal_radius, method):
    """Validate a call on ``stack`` (an ndarray or an array-like, read only for σ) and resolve its settings."""
    dtype = np.dtype(stack.dtype)
    shape = tuple(int(n) for n in stack.shape)
    check_dtype_shape(dtype, shape)
    check_integer_scale(dtype, sigma=sigma, h=h)
    axis = check_channel_axis(_shape_proxy(shape, dtype), channel_axis, spatial_ndim=3)
    spatial = [i for i in range(len(shape)) if i != axis]
    z_axis = spatial[0]
    depth, height, width = (shape[i] for i in spatial)
    n_channels = 1 if axis is None else shape[axis]
    method = _method(method, h)
    video = temporal_radius is not None
    if video:
        temporal_radius = check_int(temporal_radius, "temporal_radius")
        if temporal_radius < 0:
            raise ValueError(f"temporal_radius must be >= 0, got {temporal_radius}")
        sizes = dict(shape=(height, width), side_name="the smaller side of a frame")
    else:
        sizes = dict(shape=(depth, height, width), side_name="the volume's smallest side",
                     preset_sizes=volume_sizes)
    sigma_estimated = sigma is None
    if sigma_estimated:
        sigma = _estimate_sigma_slices(stack, axis, z_axis, depth)
    sigma = check_real(sigma, "sigma", minimum=0)
    if method == "nlbayes":
        sigma_255 = sigma_to_255(sigma, default_data_range(data_range))
        nlb = nlbayes_video_params(sigma_255, temporal_radius) if video else nlbayes_volume_params(sigma_255)
        sizes["preset_sizes"] = lambda preset: (nlb["patch_size"], nlb["search_size"])
    # σ is known here; resolve_parameters checks the sizes and fits the presets (and picks NL-means's h)
    used = resolve_parameters(sigma=sigma, h=h, patch_size=patch_size, search_size=search_size,
                              n_channels=n_channels, data_range=data_range, **sizes)
    if method == "pixelwise":
        used = replace(used, sigma_estimated=sigma_estimated)
    else:
        nlb.update(patch_size=used.patch_size, search_size=used.search_size)
        if video:  # the whole video's depth, so that every slab runs the same patches
            nlb["patch_z"] = fit_size(nlb["patch_z"], depth)
        else:
            nlb.update(patch_z=used.patch_size, search_z=used.search_size)
        used = replace(used, method="nlbayes", h=None, sigma_estimated=sigma_estimated, nlbayes=nlb)
    return _Call(axis, z_axis, (depth, height, width), n_channels, temporal_radius, used)


def _denoise_block(block, call, keep0, keep1, sigma_map=None, level=None):
    """Denoise a block of whole slices (the caller's layout) and return its slices ``[keep0, keep1)`` (block
    coordinates) in the input's dtype. The whole stack in memory is one block. NL-Bayes with a σ map:
    ``sigma_map`` the block's slices of it (float64, (Z, Y, X)), ``level`` the whole map's largest σ (the
    scale of :func:`nlmeans.nlbayes.nlbayes_checked`, the same for every slab)."""
    arr = check_array(block)
    value = to_chw(arr, call.axis, work_dtype(arr.dtype))
    used = call.settings
    if used.method == "pixelwise":
        patch_depth = 1 if call.video else used.patch_size
        check_magnitude(arr, "frames" if call.video else "volume",
                        call.n_channels * patch_depth * used.patch_size**2, value.dtype)
        out = nlmeans_3d_chw(value, used.sigma, used.h, used.patch_size, used.search_size, call.temporal_radius)
    else:  # NL-Bayes: any scale, by a power of two (nlbayes_checked)
        sigma = used.sigma if sigma_map is None else sigma_map
        out = nlbayes_checked(value, sigma, dict(used.nlbayes, video=call.video, band_slices=NLBAYES_BAND_SLICES),
                              run=nlbayes_3d_chw, level=level)
    out = out[:, keep0:keep1]
    out = out[0] if call.axis is None else np.moveaxis(out, 0, call.axis)
    return from_float(out, arr.dtype)


def slab_halo(settings: Settings, temporal_radius: int | None = None) -> Halo:
    """How a stack is cut into slabs along Z (or T) for the same bits as the whole stack in memory: a
    :class:`nlmeans.tiles.Halo` in slices (``temporal_radius``: video, as in :func:`denoise_video`).

    Pixelwise: every output slice is computed on its own from the slices within ``rz + fz`` (the search
    and patch reach along Z; video: the temporal radius), so the unit is one slice and the halo that reach on
    both sides. NL-Bayes: the kernel's bands of reference slices (``max(band_slices, 2 (rz + fz))``, aligned
    to slice 0, each with its own "already processed" mask) play the part of the 2-D row bands, and the halo
    is found as for strips (:func:`nlmeans.tiles.band_halo`): the unit is the lcm of the band heights and
    the reference grid steps along Z, the halo every band that a kept slice depends on, through both stages.
    """
    if settings.method == "pixelwise":
        if temporal_radius is None:
            reach = settings.search_size // 2 + settings.patch_size // 2
        else:
            reach = int(temporal_radius)
        return Halo(1, reach, reach)
    nlb = settings.nlbayes
    stages = []
    for patch_z, search_z, step_z in zip(_pair(nlb["patch_z"]), _pair(nlb["search_z"]), _pair(nlb["step_z"]),
                                         strict=True):
        fz, rz = int(patch_z) // 2, int(search_z) // 2
        stages.append((max(NLBAYES_BAND_SLICES, 2 * (rz + fz), 1), rz + fz, min(int(step_z), 2 * fz + 1)))
    return band_halo(stages)


def slab_slices_for(settings: Settings, plane_values: int, slab_slices: int | None = None,
                    temporal_radius: int | None = None) -> int:
    """Slices kept per slab: ``slab_slices`` (a positive int), or by default as many as make a slab, halo
    included, read about :data:`SLAB_VALUES` values (``plane_values`` = rows × columns × channels); rounded
    up to a multiple of the :func:`slab_halo` unit."""
    return _kept_slices(slab_halo(settings, temporal_radius), plane_values, slab_slices)


def _kept_slices(halo, plane_values, slab_slices):
    """:func:`slab_slices_for` with the :class:`~nlmeans.tiles.Halo` given (one that serves several runs)."""
    if slab_slices is None:
        slab_slices = max(1, SLAB_VALUES // max(1, plane_values) - halo.top - halo.bottom)
    elif check_int(slab_slices, "slab_slices") < 1:
        raise ValueError(f"slab_slices must be a positive integer, got {slab_slices!r}")
    return strip_rows(slab_slices, halo)


def _run(stack, sigma, h, patch_size, search_size, channel_axis, data_range, temporal_radius, method,
         return_settings, slab_slices=None, out=None, progress=False, noise="gaussian", gain=None):
    slabs = slab_slices is not None or out is not None
    if not slabs or isinstance(stack, (list, tuple)):
        # in memory, or a list: validated (finite values) before σ is estimated
        stack = check_array(stack)
    if check_noise_model(noise) != "gaussian" or gain is not None:
        args = (h, patch_size, search_size, channel_axis, data_range, temporal_radius, method)
        return _run_model(stack, noise, sigma, gain, args, return_settings, slab_slices, out, progress)
    if is_sigma_array(sigma):  # by its shape: a map may be any array-like (zarr), read slab by slab
        args = (h, patch_size, search_size, channel_axis, data_range, temporal_radius, method)
        return _run_sigma_array(stack, sigma, args, return_settings, slab_slices, out, progress)
    call = _resolve(stack, sigma, h, patch_size, search_size, channel_axis, data_range, temporal_radius,
                    method)
    if not slabs:
        result = _denoise_block(stack, call, 0, call.shape[0])
        return (result, call.settings) if return_settings else result
    out = _run_slabs(stack, call, slab_slices, out, progress)
    return (out, call.settings) if return_settings else out


def _run_slabs(stack, call, slab_slices, out, progress, denoise_slab=None, halo=None, runs=1):
    """The stack in slabs (:func:`slab_halo`) into ``out`` (None: a new array); returns ``out``.

    ``denoise_slab(block, strip)``: the kept slices of a slab read as ``strip``
    (:class:`nlmeans.tiles.Strip`) in the stack's dtype; None: :func:`_denoise_block` with ``call``. ``halo``:
    one that serves every run ``denoise_slab`` makes (None: ``call``'s); ``runs``: how many runs' outputs a
    slab holds at once (the default slab size is shared among them)."""
    from tqdm.auto import tqdm

    depth, height, width = call.shape
    halo = slab_halo(call.settings, call.temporal_radius) if halo is None else halo
    kept = _kept_slices(halo, height * width * call.n_channels * runs, slab_slices)
    if out is None:
        out = np.empty(stack.shape, dtype=stack.dtype)
    elif tuple(out.shape) != tuple(stack.shape) or np.dtype(out.dtype) != np.dtype(stack.dtype):
        raise ValueError(f"out has shape {tuple(out.shape)} and dtype {out.dtype}; it must match the stack's "
                         f"{tuple(stack.shape)} {stack.dtype}")
    elif isinstance(out, np.ndarray) and isinstance(stack, np.ndarray) and np.shares_memory(out, stack):
        # slabs read slices around the ones they write: in place would read results
        raise ValueError("out shares memory with the stack; slabs read the input around the slices they write, "
                         "so pass a separate output array (or out=None)")
    ndim = len(stack.shape)
    plan = strips(depth, halo, kept)
    for s in tqdm(plan, desc="slabs", unit="slab", disable=None if progress else True, leave=False):
        block = np.asarray(stack[_slice_index(ndim, call.z_axis, s.read0, s.read1)])
        out[_slice_index(ndim, call.z_axis, s.keep0, s.keep1)] = (
            _denoise_block(block, call, s.keep0 - s.read0, s.keep1 - s.read0) if denoise_slab is None
            else denoise_slab(block, s))
    return out


@dataclass(frozen=True)
class _SigmaMap:
    """A σ map of a stack, (Z, Y, X) or (Y, X) for every slice (an ndarray or an array-like read slab by
    slab), with its whole-map numbers (:class:`nlmeans.sigma_arrays.MapSummary`, RMS summed exactly)."""

    values: Any
    summary: Any

    def slices(self, z0, z1):
        """Slices ``[z0, z1)`` of the map, (z1 - z0, Y, X) float64."""
        if len(self.values.shape) == 2:
            return np.broadcast_to(self.values, (z1 - z0, *self.values.shape))
        return np.asarray(self.values[z0:z1], dtype=np.float64)


def _sigma_map(sigma, depth, height, width):
    """:class:`_SigmaMap` of a (Z, Y, X) or (Y, X) map, checked (finite and >= 0) and summarised slice by
    slice: a slice is one row of :func:`nlmeans.sigma_arrays.summarize_sigma_map`, so the summary is the same
    in memory and in slabs (the CLI's checked map brings that summary along: not read again for it)."""
    from .sigma_arrays import known_summary

    values = sigma if len(sigma.shape) == 3 else np.asarray(sigma, dtype=np.float64)
    m = _SigmaMap(values, None)

    def read(z0, z1):
        return m.slices(z0, z1).reshape(z1 - z0, height * width)

    summary = known_summary(sigma, read, depth, max(1, SLAB_VALUES // max(1, height * width)))
    return replace(m, summary=summary)


@dataclass(frozen=True)
class _Runs:
    """Per-channel σ or a σ map through scalar runs, each resolved once for the whole stack as the in-memory
    call resolves it (:func:`_resolve` on the stack converted to the working dtype: joint runs in its layout,
    a lone channel as a gray stack), so that a slab's runs give the whole stack's bits on its kept slices:
    ``calls`` maps (σ, joint) to the run's :class:`_Call`; ``values`` the per-channel σ (C,) or ``smap`` the
    :class:`_SigmaMap` (its levels in ``smap.summary``); ``axis`` the stack's channel axis."""

    calls: dict
    axis: int | None
    values: Any = None
    smap: Any = None

    @property
    def halo(self):
        """A :class:`~nlmeans.tiles.Halo` that serves every run (presets, so reaches and bands, differ by σ)."""
        return combined_halo([slab_halo(c.settings, c.temporal_radius) for c in self.calls.values()])

    def denoise(self, block, z0, keep0, keep1):
        """The slices ``[keep0, keep1)`` (block coordinates) of the combination on ``block``, whole slices of
        the stack from slice ``z0``, in its dtype: :func:`nlmeans.sigma_arrays.combine_channels` or
        :func:`~nlmeans.sigma_arrays.combine_levels` of the runs' kept slices (the combination is voxel by
        voxel, so the kept slices of exact runs combine to the whole stack's bits); rounded back once."""
        from .sigma_arrays import combine_channels, combine_levels

        arr = check_array(block)
        dtype = work_dtype(arr.dtype)

        def run(v, s, joint):
            ax = self.axis if joint else None
            x = v[0] if ax is None else np.moveaxis(v, 0, ax)
            return to_chw(_denoise_block(x.astype(dtype), self.calls[s, joint], keep0, keep1), ax, np.float64)

        value = to_chw(arr, self.axis, np.float64)
        if self.values is not None:
            result = combine_channels(run, value, self.values)
        else:
            result = combine_levels(run, value, self.smap.slices(z0 + keep0, z0 + keep1), self.smap.summary.levels)
        result = result[0] if self.axis is None else np.moveaxis(result, 0, self.axis)
        return from_float(result, arr.dtype)

    def denoise_slab(self, block, strip):
        """:meth:`denoise` of a slab read as ``strip``, for :func:`_run_slabs`."""
        return self.denoise(block, strip.read0, strip.keep0 - strip.read0, strip.keep1 - strip.read0)


def _scalar_calls(sigmas, shape, axis, dtype, args):
    """{(σ, joint): :class:`_Call`} of the scalar runs ``sigmas`` [(σ, joint), ...] on a stack of ``shape``
    (channel ``axis``) converted to ``dtype``: joint in its layout, else one channel as a gray stack."""
    h, patch_size, search_size, _, data_range, temporal_radius, method = args
    gray = tuple(n for i, n in enumerate(shape) if i != axis)
    return {(s, joint): _resolve(_shape_proxy(shape if joint else gray, dtype), s, h, patch_size, search_size,
                                 axis if joint else None, data_range, temporal_radius, method)
            for s, joint in sigmas}


def _run_sigma_array(stack, sigma, args, return_settings, slab_slices, out, progress):
    """A stack with σ per channel (a sequence) or per voxel (a (Z, Y, X) map, or a (Y, X) map for every
    slice), in memory or in slabs (the same bits). A map with NL-Bayes runs inside the 3-D kernel
    (:func:`nlmeans.nlbayes.nlbayes_3d_chw`), the presets at the map's RMS σ; the others take the routes of
    :func:`nlmeans.sigma_arrays.denoise_sigma_array` (:class:`_Runs`): per channel, the joint run at the RMS
    σ and each much cleaner channel alone; a map with pixelwise NL-means, one run per σ level (the whole map's,
    :func:`_sigma_map`) and each voxel interpolated between the two runs that bracket its σ."""
    from .sigma_arrays import channel_runs, check_sigma_shape, sigma_values, summarize_sigma_map

    h, patch_size, search_size, channel_axis, data_range, temporal_radius, method = args
    slabs = slab_slices is not None or out is not None
    shape = tuple(int(n) for n in stack.shape)
    axis = check_channel_axis(_shape_proxy(shape, np.dtype(stack.dtype)), channel_axis, spatial_ndim=3)
    n_channels = 1 if axis is None else shape[axis]
    depth, height, width = (n for i, n in enumerate(shape) if i != axis)
    if getattr(sigma, "shape", None) is None or isinstance(sigma, (list, tuple)):
        sigma = sigma_values(sigma)
    if tuple(sigma.shape) != (depth, height, width):
        try:
            check_sigma_shape(sigma.shape, n_channels, height, width)
        except ValueError:
            per_channel = f"one value per channel ({n_channels},), " if n_channels > 1 else ""
            raise ValueError(f"sigma has shape {tuple(sigma.shape)}; allowed: a number, {per_channel}a map of the "
                             f"stack's shape ({depth}, {height}, {width}) or a ({height}, {width}) map for every "
                             "slice") from None
    if len(sigma.shape) == 1:
        values, smap = np.asarray(sigma, dtype=np.float64), None
        summary = summarize_sigma_map(lambda y0, y1: values[None][y0:y1], 1, 1)  # checks the values
    else:
        values, smap = None, _sigma_map(sigma, depth, height, width)
        summary = smap.summary
    if summary.low == summary.top:
        return _run(stack, summary.top, *args, return_settings, slab_slices, out, progress)
    if return_settings:
        raise ValueError("return_settings is not supported with per-channel σ or a σ map (Settings hold one σ)")
    if smap is not None and _method(method, h) == "nlbayes":
        call = _resolve(stack, summary.ref, *args)

        def denoise_slab(block, s):  # the slab's slices of the map; the scale of the whole map's largest σ
            return _denoise_block(block, call, s.keep0 - s.read0, s.keep1 - s.read0, smap.slices(s.read0, s.read1),
                                  summary.top)
        if not slabs:
            return _denoise_block(stack, call, 0, depth, smap.slices(0, depth), summary.top)
        return _run_slabs(stack, call, slab_slices, out, progress, denoise_slab)
    # the runs see the stack converted to float: an integer stack's σ is checked here
    check_integer_scale(stack.dtype, sigma=summary.top)
    sigmas = channel_runs(values) if smap is None else [(float(s), True) for s in summary.levels]
    runs = _Runs(_scalar_calls(sigmas, shape, axis, work_dtype(stack.dtype), args), axis, values, smap)
    if not slabs:
        return runs.denoise(stack, 0, 0, depth)
    return _run_slabs(stack, runs.calls[sigmas[0]], slab_slices, out, progress, runs.denoise_slab, runs.halo,
                      len(runs.calls))


class _Mapped:
    """A stack read through a pointwise map: slicing it maps the slices read (``fn(block)``) — the slab loop of
    :func:`_run` then runs on the stabilised stack without holding it; as an output, the slices written
    (``fn(block, index)``)."""

    def __init__(self, source, fn, dtype):
        self.source, self.fn, self.dtype, self.shape = source, fn, np.dtype(dtype), tuple(source.shape)

    def __getitem__(self, index):
        return self.fn(np.asarray(self.source[index]))

    def __setitem__(self, index, value):  # an output: the slices written are mapped into the target
        self.source[index] = self.fn(value, index)


def _run_model(stack, noise, sigma, gain, args, return_settings, slab_slices, out, progress):
    """A stack under a Poisson, Poisson–Gaussian or Rician model: :func:`nlmeans.noise_models.denoise_in_model`
    with this module's stack denoiser inside and the model's parameters, when left out, fitted on a few
    slices (:func:`_estimate_model_slices`). In slabs (``slab_slices`` or ``out``) the transforms, pointwise,
    are applied slab by slab with the whole stack's bounds (:func:`nlmeans.noise_models.stabilise`): the same
    bits as in memory. The Poisson models' passes over binned images at low counts need the whole stack's
    previous estimate: in memory only."""
    from . import presets
    from ._denoise import denoise as image_denoise
    from ._validate import POISSON_MODELS, model_values
    from .noise_models import (
        count_level,
        denoise_in_model,
        from_model,
        model_parameters,
        model_transform,
        presentation,
        rician_dark_slices,
        stabilise,
    )

    h, patch_size, search_size, channel_axis, data_range, temporal_radius, method = args
    if is_sigma_array(sigma):
        raise ValueError(f"sigma must be one number with noise={noise!r}; per-channel σ and σ maps are for "
                         "noise='gaussian'")
    dtype, shape = np.dtype(stack.dtype), tuple(int(n) for n in stack.shape)
    check_dtype_shape(dtype, shape)
    if noise not in POISSON_MODELS:  # the Poisson models count in the stack's own units
        check_integer_scale(dtype, sigma=sigma)
    axis = check_channel_axis(_shape_proxy(shape, dtype), channel_axis, spatial_ndim=3)
    z_axis = 1 if axis == 0 else 0
    method = _method(method, h)
    if noise == "rician" and temporal_radius is None and method == "nlbayes":
        # the stabilised volume gains from the video preset's larger patches and groups (as the 2-D high-noise row)
        temporal_radius = presets.RICIAN_VOLUME_SLICE_RADIUS
    kwargs = dict(h=h, method=method, patch_size=patch_size, search_size=search_size, data_range=data_range,
                  return_settings=return_settings)

    def estimate():
        return _estimate_model_slices(stack, axis, z_axis, shape[z_axis], noise)

    def denoise(x, s, *, h=None, channel_axis=None, method=None, patch_size=None, search_size=None,
                data_range=None, return_settings=False, slab_slices=None, out=None):
        return _run(x, s, h, patch_size, search_size, channel_axis, data_range, temporal_radius, method,
                    return_settings, slab_slices, out, progress)

    if slab_slices is None and out is None:
        return denoise_in_model(denoise, stack, axis, noise, sigma, gain, kwargs, estimate=estimate,
                                image_denoise=image_denoise)
    sigma, gain = model_parameters(noise, sigma, gain, kwargs, estimate)
    if noise == "rician" and sigma == 0:  # as in memory: the Gaussian path with σ = 0
        return denoise(stack, 0.0, channel_axis=axis, method=method, patch_size=patch_size,
                       search_size=search_size, return_settings=return_settings, slab_slices=slab_slices, out=out)
    if out is None:
        out = np.empty(shape, dtype=dtype)
    elif tuple(out.shape) != shape or np.dtype(out.dtype) != dtype:
        raise ValueError(f"out has shape {tuple(out.shape)} and dtype {out.dtype}; it must match the stack's "
                         f"{shape} {dtype}")
    elif isinstance(out, np.ndarray) and isinstance(stack, np.ndarray) and np.shares_memory(out, stack):
        raise ValueError("out shares memory with the stack; slabs read the input around the slices they write, "
                         "so pass a separate output array (or out=None)")
    # one pass over the stack, slab by slab: the transform's bounds (exact whatever the cut) and the mean
    step = max(1, SLAB_VALUES // max(1, math.prod(shape) // shape[z_axis]))
    lo, hi, sums, squares = math.inf, -math.inf, [], []
    for z0 in range(0, shape[z_axis], step):
        x = model_values(check_array(np.asarray(stack[_slice_index(len(shape), z_axis, z0, z0 + step)])), noise)
        t = model_transform(x, noise, sigma, gain)
        lo, hi = min(lo, float(t.min())), max(hi, float(t.max()))
        flat = x.astype(np.float64).ravel()
        sums.append(float(np.sum(flat)))
        squares.append(float(flat @ flat))
    if noise in POISSON_MODELS:
        level = count_level(math.fsum(sums), math.fsum(squares), math.prod(shape), gain, sigma or 0.0)
        if len(presets.poisson_schedule(level)) > 1:
            raise ValueError(f"noise={noise!r} at a count level of {level:.3g} (at most "
                             f"{presets.POISSON_ITERATION_SCHEDULES[-1][0]:g}) runs several passes over the whole "
                             "stack: in memory only; leave out slab_slices and out")
    ref = stabilise(np.zeros(0), noise, sigma, gain, bounds=(lo, hi))
    scale, step_h = presentation(ref, noise, method, h)
    work = work_dtype(dtype)

    def forward(block):
        x = model_values(check_array(block), noise)
        return (stabilise(x, noise, sigma, gain, bounds=(lo, hi)).image * scale).astype(work)

    def back(value, index):
        est = ref.invert(np.asarray(value, dtype=np.float64) / scale)
        if noise == "rician":  # the dark step slice by slice, on the slices written (as in memory)
            y = model_values(check_array(np.asarray(stack[index])), noise)
            est = rician_dark_slices(image_denoise, y, est, sigma, z_axis, axis)
        return from_model(est, dtype, noise)

    result = denoise(_Mapped(stack, forward, work), ref.sigma * scale, h=step_h, channel_axis=axis,
                     method=method, patch_size=patch_size, search_size=search_size,
                     return_settings=return_settings, slab_slices=slab_slices, out=_Mapped(out, back, work))
    return (out, result[1]) if return_settings else out


@overload
def denoise_volume(
    volume: ArrayLike,
    sigma: SigmaLike | None = None,
    *,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    slab_slices: int | None = None,
    out: Any = None,
    progress: bool = False,
    noise: NoiseModel = "gaussian",
    gain: Real | None = None,
    return_settings: Literal[False] = False,
) -> Array: ...


@overload
def denoise_volume(
    volume: ArrayLike,
    sigma: SigmaLike | None = None,
    *,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    slab_slices: int | None = None,
    out: Any = None,
    progress: bool = False,
    noise: NoiseModel = "gaussian",
    gain: Real | None = None,
    return_settings: Literal[True],
) -> tuple[Array, Settings]: ...


def denoise_volume(
    volume: ArrayLike,
    sigma: SigmaLike | None = None,
    *,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    slab_slices: int | None = None,
    out: Any = None,
    progress: bool = False,
    noise: NoiseModel = "gaussian",
    gain: Real | None = None,
    return_settings: bool = False,
) -> Array | tuple[Array, Settings]:
    """Denoise a 3-D volume with NL-Bayes (default) or pixelwise Non-Local Means: cubic patches, cubic
    search window.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X), or with ``channel_axis`` (Z, Y, X, C) / ...
        any dtype of nlmeans.denoise (integers mapped to [0, 1]), finite. In slabs (``slab_slices`` or
        ``out`` given) any array-like that returns an ndarray when sliced along Z (a memmap, a zarr array,
        :func:`nlmeans.io.open_stack`), read one slab at a time.
    sigma : float, sequence of floats, ndarray or None
        Noise standard deviation **on the float image's scale** (integers are scaled to [0, 1]: σ = 20 on
        the 0–255 scale of an 8-bit volume is ``20/255``). ``None``: the mean of :func:`nlmeans.estimate_sigma`
        over up to 8 evenly spaced Z slices, each read on its own (the same σ in memory and in slabs).
        Also a map of σ per voxel, shape (Z, Y, X), or (Y, X) for every slice (an ndarray, or in slabs any
        array-like read slab by slab like the volume): NL-Bayes takes it inside its kernel (stage 1's patch
        distances lose the candidates' noise, each group uses its patches' mean σ², the presets at the map's
        RMS σ; :func:`nlmeans.nlbayes.nlbayes_3d_chw`); pixelwise NL-means runs once per σ level (the whole
        map's distinct values, or 4 levels spread over its range) and each voxel interpolates between the two
        runs that bracket its σ. One σ per channel: a joint run at their RMS, and each channel below half of
        it alone, as :func:`nlmeans.denoise` does. All of these in memory or in slabs, the same bits. A
        constant sequence or map gives the one-σ result.
    method : {None, "nlbayes", "pixelwise"}
        ``None`` (default): ``"nlbayes"``, or ``"pixelwise"`` when ``h`` is given (as in
        :func:`nlmeans.denoise`). ``"nlbayes"``: NL-Bayes with 3-D patches (:func:`nlmeans.nlbayes.nlbayes_3d_chw`,
        presets :func:`nlmeans.presets.nlbayes_volume_params`: 3×3×3 patches, groups of 60 then 30 in a 9×9×9
        window). ``"pixelwise"``: NL-means, described in the Notes.
    h : float or None
        NL-means only. Filtering parameter, same scale as σ. ``None``: ``k(σ)·σ`` from the 2-D preset table.
    patch_size : odd int or None
        Side of the cubic patch (both stages of NL-Bayes), at most the volume's smallest side. ``None``: the
        method's preset (NL-Bayes 3; NL-means the 2-D preset, at most 5).
    search_size : odd int or None
        Side of the cubic search window. ``None``: NL-Bayes 9, NL-means 7 (shrunk to fit small volumes).
    channel_axis : int or None
        Axis of the channels; ``None``: a single-channel volume.
    data_range : float or None
        Range of float data, used only to read σ on the 0–255 scale for the presets. ``None``: 1.0.
    slab_slices : int or None
        Denoise in slabs of about this many Z slices (rounded up to the method's unit, :func:`slab_halo`),
        each read with a halo of slices around it: the same result bit for bit, in memory bounded by the slab.
        ``None`` with ``out`` given: slabs of about 48 M values (:data:`SLAB_VALUES`), halo included, shared
        among the runs a per-channel σ or a pixelwise σ map combines (each slab is read once, with a halo that
        serves every run, and combined as in memory).
    out : array-like or None
        Where to write the result in slabs (same shape and dtype as ``volume``; a memmap, a zarr array,
        :func:`nlmeans.io.create_array`), assigned whole slices at a time. ``None``: a new ndarray.
    progress : bool
        Slabs only: a progress bar (tqdm) over the slabs, on a terminal.
    noise : {"gaussian", "poisson", "poisson-gaussian", "rician"}
        The noise model, as in :func:`nlmeans.denoise` (same meaning, units and rule for integer stacks: the
        Poisson models count in the stack's own units, ``sigma`` then the read noise in those units;
        ``"rician"``: ``sigma`` of each Gaussian component on the float scale). The method runs on the
        variance-stabilised stack and its output goes through the exact unbiased inverse
        (:func:`nlmeans.noise_models.denoise_in_model`). ``sigma``/``gain`` left out: fitted by
        :func:`nlmeans.estimate_noise` on up to 8 evenly spaced slices taken together (one fit for the whole
        stack, the same in slabs). One σ only. ``"rician"`` with NL-Bayes runs the video preset along Z
        (:func:`denoise_video`'s 5×5-pixel × 3-slice patches, ±``presets.RICIAN_VOLUME_SLICE_RADIUS`` slices
        searched; ``patch_size``, ``search_size`` then spatial): on MRI-like volumes it beat the volume preset
        inside the transform. Slabs give the same bits as in memory (the transforms are pointwise, mapped with
        the whole stack's bounds), except the Poisson models at low counts (count level ≤ 16: several passes
        over binned slices, each needing the previous pass whole), refused in slabs.
    gain : float or None
        ``"poisson"`` and ``"poisson-gaussian"``: the stack's units per count (> 0); ``None``: estimated.
    return_settings : bool
        Also return the :class:`~nlmeans.presets.Settings` used (method, σ and whether it was estimated, sizes;
        with a noise model, those of the run on the stabilised stack).

    Returns
    -------
    denoised : ndarray or array-like
        Same shape and dtype as ``volume`` (integers computed in float32 on [0, 1], rounded and clipped);
        ``out`` when given.
    settings : Settings
        Only with ``return_settings=True``.

    Notes
    -----
    NL-Bayes: the two stages of :func:`nlmeans.denoise`'s NL-Bayes with P×P×P patches: groups of the most
    similar patches in the S×S×S window, a Gaussian model per group, every estimate of a voxel averaged.

    Pixelwise NL-means: for patch side P = 2f+1 and search side S = 2r+1: d²(p, q) = mean over the P³ patch
    offsets and the channels of (v(p+j) − v(q+j))², w = exp(−max(d² − 2σ², 0)/h²), u(p) = Σ_q w v(q) / Σ_q w
    over the S³ window (centre included, weight 1). The kernel loops over search offsets with separable box
    filters (Darbon et al. 2008), in parallel over Z slices. Both methods extend the volume by numpy's
    ``reflect`` padding on all axes; ``tests/naive.py`` holds the direct loops the kernels are tested against.

    Slabs: a slab reads the slices ``[keep0 - top, keep1 + bottom)`` (cut at the volume's ends), starts on a
    multiple of the method's unit and keeps ``[keep0, keep1)``; :func:`slab_halo` says why that gives the
    in-memory bits. Memory: a few float copies of one slab (NL-Bayes ~8 float32 values per voxel read) plus
    ``out``. Only a σ outside [2^-24, 2^24] times the data can make a slab differ (NL-Bayes's rescaling,
    :func:`nlmeans.nlbayes.nlbayes_checked`, looks at the values then). A σ map is checked and summarised
    (its RMS summed slice by slice, the slices' sums added exactly) before the slabs, then read with each
    slab's slices, halo included: its patch means of σ² are taken box by box, so a slab sees the whole
    call's values. Per channel and per σ level (pixelwise with a map) the runs' settings are resolved once for
    the whole stack (the levels from the map's summary), each run gives the kept slices' in-memory bits,
    and the combination, voxel by voxel, then does too; the rounding to an integer dtype comes once, after it.

    References
    ----------
    .. [1] A. Buades, B. Coll and J.-M. Morel, "A non-local algorithm for image denoising", CVPR 2005.
    .. [2] P. Coupé, P. Yger, S. Prima, P. Hellier, C. Kervrann and C. Barillot, "An optimized blockwise
       nonlocal means denoising filter for 3-D magnetic resonance images", IEEE TMI 27(4), 2008.
    .. [3] J. Darbon, A. Cunha, T. F. Chan, S. Osher and G. J. Jensen, "Fast nonlocal filtering applied to
       electron cryomicroscopy", ISBI 2008.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> clean = np.zeros((16, 32, 32)); clean[4:12, 8:24, 8:24] = 1.0
    >>> noisy = nlmeans.add_noise(clean, 0.2, seed=0)
    >>> out = nlmeans.denoise_volume(noisy, 0.2)
    >>> bool(nlmeans.psnr(clean, out) > nlmeans.psnr(clean, noisy) + 5)
    True
    """
    return _run(volume, sigma, h, patch_size, search_size, channel_axis, data_range, None, method,
                return_settings, slab_slices, out, progress, noise, gain)


@overload
def denoise_video(
    frames: ArrayLike,
    sigma: SigmaLike | None = None,
    *,
    temporal_radius: int = TEMPORAL_RADIUS,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    slab_slices: int | None = None,
    out: Any = None,
    progress: bool = False,
    noise: NoiseModel = "gaussian",
    gain: Real | None = None,
    return_settings: Literal[False] = False,
) -> Array: ...


@overload
def denoise_video(
    frames: ArrayLike,
    sigma: SigmaLike | None = None,
    *,
    temporal_radius: int = TEMPORAL_RADIUS,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    slab_slices: int | None = None,
    out: Any = None,
    progress: bool = False,
    noise: NoiseModel = "gaussian",
    gain: Real | None = None,
    return_settings: Literal[True],
) -> tuple[Array, Settings]: ...


def denoise_video(
    frames: ArrayLike,
    sigma: SigmaLike | None = None,
    *,
    temporal_radius: int = TEMPORAL_RADIUS,
    method: VolumeMethod | None = None,
    h: Real | None = None,
    patch_size: int | None = None,
    search_size: int | None = None,
    channel_axis: int | None = None,
    data_range: Real | None = None,
    slab_slices: int | None = None,
    out: Any = None,
    progress: bool = False,
    noise: NoiseModel = "gaussian",
    gain: Real | None = None,
    return_settings: bool = False,
) -> Array | tuple[Array, Settings]:
    """Denoise a stack of frames (T, Y, X) with NL-Bayes on space-time patches (default) or pixelwise
    Non-Local Means, both searching neighbouring frames.

    The search window is S×S pixels in every frame t − R … t + R that exists (``R = temporal_radius``; the
    window is cut, not reflected, at the first and last frame). NL-Bayes (Arias & Morel 2018): patches of
    3 frames × P×P pixels (fewer frames if the video has fewer), groups of the most similar space-time
    patches in that window, a Gaussian model per group, two stages, every estimate of a pixel averaged
    (presets :func:`nlmeans.presets.nlbayes_video_params`). NL-means: weights compare 2-D P×P patches, as
    OpenCV's ``fastNlMeansDenoisingMulti`` does.

    Parameters
    ----------
    frames : ndarray, shape (T, Y, X), or with ``channel_axis`` (T, Y, X, C) / ...
        any dtype of nlmeans.denoise (integers mapped to [0, 1]), finite.
    sigma : float, sequence of floats, ndarray or None
        Noise standard deviation **on the float image's scale** (integers scaled to [0, 1]). ``None``: the mean
        of :func:`nlmeans.estimate_sigma` over up to 8 evenly spaced frames. One σ per channel, or a map
        (T, Y, X), or (Y, X) for every frame, as in :func:`denoise_volume` (in memory or in slabs).
    temporal_radius : int
        Frames on each side searched (default 2, i.e. 5 frames); 0 searches each frame on its own (NL-Bayes's
        3-frame patches still see the neighbouring frames).
    method : {None, "nlbayes", "pixelwise"}
        ``None`` (default): ``"nlbayes"``, or ``"pixelwise"`` when ``h`` is given.
    h, patch_size, search_size, channel_axis, data_range
        As in :func:`nlmeans.denoise` (``h`` NL-means only; sizes are spatial, at most the frame's smaller
        side; ``None``: the method's preset, NL-Bayes 5 and 15).
    slab_slices, out, progress
        As in :func:`denoise_volume`: slabs of frames (``frames`` then any array-like), the same bits, with
        one σ, per-channel σ or a σ map.
    noise, gain
        The noise model and its gain, as in :func:`denoise_volume` (``sigma``/``gain`` left out: fitted on up
        to 8 evenly spaced frames).
    return_settings : bool
        Also return the :class:`~nlmeans.presets.Settings` used (method, σ and whether it was estimated, sizes).

    Returns
    -------
    denoised : ndarray or array-like
        Same shape and dtype as ``frames``; ``out`` when given.
    settings : Settings
        Only with ``return_settings=True``.

    Notes
    -----
    NL-means: d²(p, q) = mean over the P×P patch offsets (in the frames of p and q) and the channels of
    (v(p+j) − v(q+j))²; w and u as in :func:`nlmeans.denoise`. Spatial boundary: numpy's ``reflect``.

    References
    ----------
    .. [1] A. Buades, B. Coll and J.-M. Morel, "Denoising image sequences does not require motion
       estimation", IEEE AVSS 2005.
    .. [2] A. Buades, B. Coll and J.-M. Morel, "Non-Local Means Denoising", Image Processing On Line 1, 2011.
    .. [3] P. Arias and J.-M. Morel, "Video denoising via empirical Bayesian estimation of space-time
       patches", J. Math. Imaging and Vision 60(1), 2018.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> frame = np.tile(np.linspace(0, 1, 48), (48, 1))
    >>> clean = np.stack([np.roll(frame, t, axis=1) for t in range(8)])  # a ramp moving right
    >>> noisy = nlmeans.add_noise(clean, 0.1, seed=0)
    >>> out = nlmeans.denoise_video(noisy, 0.1)
    >>> bool(nlmeans.psnr(clean, out) > nlmeans.psnr(clean, noisy) + 5)
    True
    """
    if temporal_radius is None:
        raise TypeError("temporal_radius must be an integer >= 0, got None")
    return _run(frames, sigma, h, patch_size, search_size, channel_axis, data_range, temporal_radius, method,
                return_settings, slab_slices, out, progress, noise, gain)
