"""The dock widget: denoise an image layer into a new layer "<name> denoised", in a napari thread worker.

Units: σ and h are typed on the **0–255 scale for integer layers** (σ = 25 on an 8-bit or 16-bit image is
``sigma=25/255`` in the API) and **in the data's own units for float layers**, as the field labels say.
What runs is exactly the public API: :func:`nlmeans.denoise` (2-D gray or RGB in memory),
:func:`nlmeans.dask.denoise` (dask/zarr layers, and in-memory images large enough to take several strips:
computed one chunk at a time so Cancel stops between chunks), :func:`nlmeans.denoise_volume` and
:func:`nlmeans.denoise_video`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, LineEdit, ProgressBar, PushButton, SpinBox
from napari.qt.threading import create_worker

import nlmeans

try:  # the method names may move; fall back to what the library had when this was written
    from nlmeans.presets import DEFAULT_METHOD, METHODS
except ImportError:  # pragma: no cover - depends on the library version
    DEFAULT_METHOD, METHODS = "nlbayes", ("pixelwise", "patchwise", "nlbayes")

GRAY, RGB, VOLUME, VIDEO = "2-D image", "RGB image", "3-D volume (Z, Y, X)", "time series (T, Y, X)"
#: axis labels that make a 3-D layer a time series by default
TIME_LABELS = {"t", "time", "frame", "frames"}
METHOD_NAMES = {"nlbayes": "NL-Bayes", "pixelwise": "NL-means, pixelwise", "patchwise": "NL-means, patchwise"}
#: the 3-D functions' keywords decide what the widget may pass (``method=`` may arrive in a later version)
STACK_FUNCTIONS = {VOLUME: nlmeans.denoise_volume, VIDEO: nlmeans.denoise_video}


def _methods():
    """The method names, the default first."""
    return (DEFAULT_METHOD, *(m for m in METHODS if m != DEFAULT_METHOD))


def _stack_takes_method(kind):
    return "method" in inspect.signature(STACK_FUNCTIONS[kind]).parameters


def data_kinds(layer):
    """The kinds of data ``layer`` can be denoised as, the default first; raises ``ValueError`` with the reason
    when it cannot be denoised (not an image layer, multiscale, wrong number of dimensions)."""
    if not isinstance(layer, napari.layers.Image):
        kind = type(layer).__name__
        raise ValueError(f"“{layer.name}” is a {kind} layer; choose an Image layer to denoise")
    if layer.multiscale:
        raise ValueError(f"“{layer.name}” is multiscale; denoise one level (open it as a single-scale layer)")
    spatial = layer.ndim  # napari's ndim leaves out the RGB channel axis
    if spatial == 2:
        return [RGB if layer.rgb else GRAY]
    if spatial == 3:
        labels = [str(a).lower() for a in getattr(layer, "axis_labels", ())]
        timeish = bool(labels) and labels[0] in TIME_LABELS
        return [VIDEO, VOLUME] if timeish else [VOLUME, VIDEO]
    raise ValueError(
        f"“{layer.name}” has {spatial} dimensions{' (+ RGB)' if layer.rgb else ''}; the widget denoises 2-D "
        "images, RGB images, 3-D volumes and time series"
    )


def _parse_number(text, name, *, allow_auto=False):
    """A field's value: None when blank, "auto" when allowed, else a float > 0 (σ may be 0)."""
    text = text.strip()
    if not text:
        return None
    if allow_auto and text.lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        allowed = "a number, blank or “auto”" if allow_auto else "a number or blank"
        raise ValueError(f"{name} is “{text}”; allowed: {allowed}") from None
    if not np.isfinite(value) or value < 0 or (value == 0 and name != "σ"):
        raise ValueError(f"{name} is {text}; it must be {'>= 0' if name == 'σ' else '> 0'}")
    return value


def _parse_size(text, name):
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or int(text) % 2 == 0:
        raise ValueError(f"{name} is “{text}”; it must be an odd whole number (or blank for the preset)")
    return int(text)


def _is_integer(layer):
    return np.issubdtype(np.dtype(layer.data.dtype), np.integer)


@dataclass
class Job:
    """One denoising request, all values on the float image's scale (what the API takes)."""

    data: object
    kind: str
    sigma: float | None
    method: str
    h: float | str | None = None
    patch_size: int | None = None
    search_size: int | None = None
    temporal_radius: int = 2
    data_range: float | None = None
    #: rows per strip of the strip-wise path (:func:`nlmeans.dask.denoise`'s ``tile_rows``); None: its default
    tile_rows: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def channel_axis(self):
        return -1 if self.kind == RGB or (self.kind in STACK_FUNCTIONS and self.data.ndim == 4) else None

    def api_kwargs(self):
        """Keywords for the API call (only those set, so the API's defaults apply to the rest)."""
        kwargs = dict(h=self.h, patch_size=self.patch_size, search_size=self.search_size,
                      channel_axis=self.channel_axis, data_range=self.data_range)
        if self.kind in STACK_FUNCTIONS:
            if _stack_takes_method(self.kind):
                kwargs["method"] = self.method
            if self.kind == VIDEO:
                kwargs["temporal_radius"] = self.temporal_radius
        else:
            kwargs["method"] = self.method
        return {k: v for k, v in kwargs.items() if v is not None}


def _sigma_sample(data, axis):
    """What σ is estimated on for an out-of-memory 2-D layer: the library's rule for strips if it has one."""
    try:
        from nlmeans.tiles import sigma_sample
    except ImportError:  # pragma: no cover - the library moved it: estimate on everything
        return np.asarray(data)
    return sigma_sample(data, axis)


class Failure(str):
    """What a worker returns instead of raising for bad input: the message for the user (an exception would
    reach napari's notifications with a traceback)."""


def _reporting_failures(gen_func):
    def run(*args):
        try:
            return (yield from gen_func(*args))
        except (ValueError, TypeError) as exc:
            return Failure(str(exc))
        except MemoryError as exc:
            return Failure(f"not enough memory for this layer ({exc or 'MemoryError'})")

    run.__name__ = gen_func.__name__
    return run


@_reporting_failures
def run_job(job):
    """Generator run in the worker: yields ``(done, total, message)`` (``total == 0``: no measurable progress)
    between steps, so a Cancel stops the work there; returns ``(denoised array, info dict)``."""
    info = dict(job.info)
    if job.kind in STACK_FUNCTIONS:
        data = job.data
        if not isinstance(data, np.ndarray):
            yield 0, 0, "reading the data…"
            data = np.asarray(data)
        yield 0, 0, f"denoising the {job.kind.split(' (')[0]}…"
        out = STACK_FUNCTIONS[job.kind](data, job.sigma, **job.api_kwargs())
        info["sigma"] = job.sigma if job.sigma is not None else "estimated"
        info["method"] = job.api_kwargs().get("method", "pixelwise")  # the 3-D kernels were NL-means only
        yield 1, 1, "done"
        return out, info

    kwargs = job.api_kwargs()
    in_memory = isinstance(job.data, np.ndarray)
    if in_memory and job.h == "auto":  # SURE needs the whole image: one call
        yield 0, 0, "denoising (choosing h by SURE)…"
        out, settings = nlmeans.denoise(job.data, job.sigma, return_settings=True, **kwargs)
        yield 1, 1, "done"
        return out, {**settings.as_dict(), **info}
    if job.h == "auto":
        raise ValueError("h = auto needs the whole image in memory; give h as a number for a dask layer")

    sigma = job.sigma
    if sigma is None:
        yield 0, 0, "estimating σ…"
        # nlmeans.denoise estimates on the whole image; doing it here lets the strips use the same σ
        sigma = nlmeans.estimate_sigma(job.data if in_memory else _sigma_sample(job.data, job.channel_axis),
                                       channel_axis=job.channel_axis)
        info["sigma_estimated"] = True
    import dask.array as da

    from nlmeans.dask import denoise as dask_denoise

    # name=False: no hashing of the whole array for a dask name (seconds on a large image)
    source = job.data if isinstance(job.data, da.Array) else da.from_array(job.data, name=False)
    lazy = dask_denoise(source, sigma, tile_rows=job.tile_rows, **kwargs)
    n_blocks = int(np.prod(lazy.numblocks))
    if in_memory and n_blocks == 1:  # one strip: the plain call (no dask overhead), and its settings
        yield 0, 0, "denoising…"
        out, settings = nlmeans.denoise(job.data, sigma, return_settings=True, **kwargs)
        yield 1, 1, "done"
        return out, {**settings.as_dict(), **info}

    out = np.empty(lazy.shape, dtype=lazy.dtype)
    row_axis = next(i for i, n in enumerate(lazy.numblocks) if n > 1) if n_blocks > 1 else 0
    starts = np.cumsum((0, *lazy.chunks[row_axis]))
    for i in range(n_blocks):
        yield i, n_blocks, f"denoising strip {i + 1} of {n_blocks}…"
        index = [0] * lazy.ndim
        index[row_axis] = i
        rows = [slice(None)] * lazy.ndim
        rows[row_axis] = slice(starts[i], starts[i + 1])
        # the synchronous scheduler: numba already uses every core inside a strip
        out[tuple(rows)] = lazy.blocks[tuple(index)].compute(scheduler="synchronous")
    yield n_blocks, n_blocks, "done"
    return out, {**kwargs, **info, "sigma": sigma}


@_reporting_failures
def estimate_job(data, kind, plane, channel_axis):
    """Generator run in the worker for the Estimate button: σ on the float image's scale, on the whole 2-D
    image (the sample the strips use for out-of-memory layers) or on ``plane`` of a 3-D stack."""
    yield "estimating σ…"
    if kind in STACK_FUNCTIONS:
        image = np.asarray(data[plane])
    elif isinstance(data, np.ndarray):
        image = data
    else:
        image = _sigma_sample(data, channel_axis)
    return nlmeans.estimate_sigma(image, channel_axis=channel_axis)


class DenoiseWidget(Container):
    """Plugins › nlmeans › Denoise: NL-Bayes / NL-means on an image layer, in a background thread."""

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self._worker = None
        #: rows per strip when an image is denoised strip by strip (None: the library's default, ~16 M values)
        self.tile_rows = None
        self.layer = ComboBox(label="image layer", choices=self._layer_choices)
        # choices as callables: napari's reset_choices on layer events re-reads them
        self.kind = ComboBox(label="data", choices=self._kind_choices)
        self.method = ComboBox(label="method", choices=self._method_choices)
        self.sigma = LineEdit(label="σ")
        self.estimate = PushButton(text="Estimate σ")
        self.h = LineEdit(label="h")
        self.temporal_radius = SpinBox(label="frames each side", value=2, min=0, max=10)
        self.advanced = CheckBox(text="advanced", value=False)
        self.patch_size = LineEdit(label="patch size")
        self.search_size = LineEdit(label="search size")
        self.data_range = LineEdit(label="data range")
        self.run = PushButton(text="Denoise")
        self.cancel = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, visible=False)
        self.status = Label(value="")
        super().__init__(widgets=[
            self.layer, self.kind, self.method, self.sigma, self.estimate, self.h, self.temporal_radius,
            self.advanced, self.patch_size, self.search_size, self.data_range, self.run, self.cancel,
            self.progress, self.status,
        ])
        self.status.native.setWordWrap(True)
        for w, text in ((self.sigma, "blank: estimate"), (self.h, "blank: preset; auto: SURE"),
                        (self.patch_size, "blank: preset"), (self.search_size, "blank: preset"),
                        (self.data_range, "blank: 1 if values in [-1, 2], else max − min")):
            w.native.setPlaceholderText(text)
        self.h.tooltip = ("Filtering strength, same scale as σ. blank: k(σ)·σ from the presets; auto: chosen by "
                          "SURE (2-D pixelwise only). NL-Bayes has no h.")
        self.layer.changed.connect(self._layer_changed)
        self.kind.changed.connect(self._update_controls)
        self.method.changed.connect(self._update_controls)
        self.advanced.changed.connect(self._update_controls)
        self.estimate.changed.connect(self._start_estimate)
        self.run.changed.connect(self._start_denoise)
        self.cancel.changed.connect(self._cancel)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed, viewer.layers.events.moved):
            event.connect(self._layers_changed)
        active = viewer.layers.selection.active
        if isinstance(active, napari.layers.Image):
            self.layer.value = active
        self._layer_changed()

    # --- controls -------------------------------------------------------------------------------------------
    def _layer_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._viewer.layers]

    def _kind_choices(self, _widget=None):
        try:
            return data_kinds(self.layer.value)
        except (ValueError, AttributeError):  # no layer, or one that cannot be denoised (the status says why)
            return [GRAY]

    def _method_choices(self, _widget=None):
        kind = self.kind.value
        stack = kind in STACK_FUNCTIONS
        methods = _methods() if not stack or _stack_takes_method(kind) else ("pixelwise",)
        return [(METHOD_NAMES.get(m, m) + (" (3-D)" if stack else ""), m) for m in methods]

    def _layers_changed(self, _event=None):
        # a new chosen layer re-runs _layer_changed through the combo's `changed`; the user's choices stay
        self.reset_choices()

    def _layer_changed(self, _value=None):
        layer = self.layer.value
        message = "Open or add an image layer" if layer is None else ""
        if layer is not None:
            try:
                data_kinds(layer)
            except ValueError as exc:
                message = str(exc)
        self.kind.reset_choices()
        kinds = self._kind_choices()
        self.kind.value = kinds[0]
        self.kind.enabled = len(kinds) > 1
        integer = layer is not None and isinstance(layer, napari.layers.Image) and _is_integer(layer)
        scale = "0–255 scale" if integer else "data units"
        self.sigma.label, self.h.label = f"σ ({scale})", f"h ({scale})"
        self.status.value = message
        self._update_controls()

    def _update_controls(self, _value=None):
        kind = self.kind.value
        self.method.reset_choices()
        self.method.enabled = len(self.method.choices) > 1
        self.h.visible = self.method.value != "nlbayes"
        self.temporal_radius.visible = kind == VIDEO
        layer = self.layer.value
        is_float = isinstance(layer, napari.layers.Image) and not _is_integer(layer)
        for w in (self.patch_size, self.search_size):
            w.visible = self.advanced.value
        self.data_range.visible = self.advanced.value and is_float

    # --- requests -------------------------------------------------------------------------------------------
    def _layer_or_raise(self):
        layer = self.layer.value
        if layer is None:
            raise ValueError("No layer chosen: open or add an image layer")
        kinds = data_kinds(layer)
        if self.kind.value not in kinds:
            raise ValueError(f"“{layer.name}” cannot be denoised as {self.kind.value}")
        return layer

    def _float_scale(self, layer, value):
        """A σ or h typed in the field → the float image's scale."""
        return value / 255 if value is not None and value != "auto" and _is_integer(layer) else value

    def _data_range(self, layer):
        text = self.data_range.value if self.advanced.value else ""
        if _is_integer(layer):
            return None  # integer data are scaled to [0, 1] by the library
        value = _parse_number(text, "data range")
        if value is not None:
            return value
        lo, hi = layer.contrast_limits_range
        # float data already on a [0, 1]-like scale keep the library's default, so results match a plain call
        return None if lo >= -1 and hi <= 2 else float(hi - lo)

    def job(self):
        """The :class:`Job` the controls describe; ``ValueError`` with a message for the user otherwise."""
        layer = self._layer_or_raise()
        kind = self.kind.value
        method = self.method.value
        h = _parse_number(self.h.value, "h", allow_auto=True) if method != "nlbayes" else None
        if h == "auto" and (kind != GRAY and kind != RGB or method != "pixelwise"):
            raise ValueError("h = auto (SURE) is available for 2-D images with NL-means, pixelwise only")
        advanced = self.advanced.value
        job = Job(
            data=layer.data, kind=kind, method=method,
            sigma=self._float_scale(layer, _parse_number(self.sigma.value, "σ")),
            h=self._float_scale(layer, h),
            patch_size=_parse_size(self.patch_size.value, "patch size") if advanced else None,
            search_size=_parse_size(self.search_size.value, "search size") if advanced else None,
            temporal_radius=self.temporal_radius.value, data_range=self._data_range(layer),
            tile_rows=self.tile_rows,
            info={"source": layer.name, "kind": kind},
        )
        return job

    # --- workers --------------------------------------------------------------------------------------------
    def _busy(self, busy, message=""):
        self.run.enabled = self.estimate.enabled = not busy
        self.cancel.enabled = busy
        self.progress.visible = busy
        self.status.value = message

    def _start(self, gen, *args, on_yield, on_return):
        worker = create_worker(gen, *args, _start_thread=False)
        worker.yielded.connect(on_yield)
        worker.returned.connect(lambda result: self._failed(result) if isinstance(result, Failure)
                                else on_return(result))
        worker.errored.connect(lambda exc: self._busy(False, f"Failed: {exc}"))
        worker.aborted.connect(lambda: self._busy(False, "Cancelled: no layer added"))
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()
        return worker

    def _failed(self, message):
        self.status.value = f"Failed: {message}"

    def _finished(self):
        self._worker = None
        self.run.enabled = self.estimate.enabled = True
        self.cancel.enabled = False
        self.progress.visible = False

    def _show_progress(self, step):
        done, total, message = step
        self.progress.max = total  # 0: Qt shows a busy bar
        self.progress.value = done
        self.status.value = message

    def _start_denoise(self, _value=None):
        try:
            job = self.job()
        except ValueError as exc:
            self.status.value = str(exc)
            return None
        layer = self.layer.value
        self._busy(True, "starting…")
        return self._start(run_job, job, on_yield=self._show_progress,
                           on_return=lambda result: self._add_result(layer, *result))

    def _start_estimate(self, _value=None):
        try:
            layer = self._layer_or_raise()
        except ValueError as exc:
            self.status.value = str(exc)
            return None
        kind = self.kind.value
        plane = 0
        if kind in STACK_FUNCTIONS:  # the plane on screen
            z = round(layer.world_to_data(self._viewer.dims.point)[0])
            plane = int(np.clip(z, 0, layer.data.shape[0] - 1))
        channel_axis = -1 if layer.rgb else None
        self._busy(True, "estimating σ…")
        where = f" (on plane {plane})" if kind in STACK_FUNCTIONS else ""

        def done(sigma):
            shown = sigma * 255 if _is_integer(layer) else sigma
            self.sigma.value = f"{shown:.4g}"
            self.status.value = f"σ = {shown:.4g} {'on the 0–255 scale' if _is_integer(layer) else ''}{where}"

        return self._start(estimate_job, layer.data, kind, plane, channel_axis,
                           on_yield=lambda message: setattr(self.status, "value", message), on_return=done)

    def _cancel(self, _value=None):
        if self._worker is not None:
            self.status.value = "cancelling…"
            self._worker.quit()

    def _add_result(self, layer, out, info):
        """Add "<name> denoised" with the source's placement in the world, its metadata (plus what ran) and
        its display settings, so before and after compare one to one."""
        kwargs = dict(
            name=f"{layer.name} denoised", scale=layer.scale, translate=layer.translate, rotate=layer.rotate,
            shear=layer.shear, affine=layer.affine, rgb=layer.rgb, blending=layer.blending,
            metadata={**layer.metadata, "nlmeans": info},
        )
        for name in ("axis_labels", "units"):  # napari >= 0.6
            if hasattr(layer, name):
                kwargs[name] = getattr(layer, name)
        if not layer.rgb:
            kwargs.update(colormap=layer.colormap, contrast_limits=layer.contrast_limits, gamma=layer.gamma)
        new = self._viewer.add_image(out, **kwargs)
        sigma = info.get("sigma")
        shown = f"{sigma * 255:.4g} (0–255)" if isinstance(sigma, float) and _is_integer(layer) else sigma
        self.status.value = f"Added “{new.name}” ({METHOD_NAMES.get(info.get('method'), 'NL-means')}, σ = {shown})"
        return new
