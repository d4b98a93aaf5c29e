"""``nlmeans denoise``: one image, a large image strip by strip (or on Dask), a stack, or a batch of files.

Every route gets one :class:`Request` (σ and h already on the float image's scale) and runs the method asked
for; every summary line names the method, σ and h or the method's sizes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from ..io import Image, StackError, read_image, read_metadata
from .options import (
    SCALE_NOTE,
    STDIO,
    claim_files,
    claim_outputs,
    compare_option,
    format_option,
    guide_sigma_option,
    h_option,
    h_text,
    jpeg_quality_option,
    method_option,
    method_title,
    noise_option,
    output_format,
    overwrite_option,
    patch_option,
    read_input,
    search_option,
    sigma_map_option,
    sigma_option,
    sure_psnr,
    verbose_option,
    write_compare,
    write_output,
)
from .progress import resume_gc, say, show_progress, ticker, warm_up

#: TIFF inputs with more pixels than this are denoised strip by strip without being asked
AUTO_STRIP_PIXELS = 1 << 26
#: --volume/--video TIFF inputs with more values (slices × rows × columns × samples) than this are denoised
#: slab by slab without being asked (in memory NL-Bayes needs ~40 bytes per value)
AUTO_SLAB_VALUES = 1 << 26


@dataclass(frozen=True)
class Request:
    """What ``nlmeans denoise`` was asked: σ, h and the guide's σ on the float image's scale."""

    paths: tuple
    sigma: float | tuple | None = None
    sigma_map: Path | None = None
    h: float | str | None = None
    patch: int | None = None
    search: int | None = None
    method: str | None = None
    guide: Path | None = None
    guide_sigma: float | None = None
    overwrite: bool = False
    max_pixels: int | None = None
    out_dir: Path | None = None
    jobs: int = 1
    scheduler: str | None = None
    volume: bool = False
    video: bool = False
    temporal_radius: int = 2
    tile_rows: int | None = None
    slab_slices: int | None = None
    noise: str = "gaussian"
    gain: float | None = None
    jpeg_quality: int | None = None
    fmt: str | None = None
    compare: Path | None = None

    @property
    def sizes(self):
        """The keyword arguments every route passes on: h, the sizes and the method."""
        return dict(h=self.h, patch_size=self.patch, search_size=self.search, method=self.method)

    def refuse(self, what, *, guide=True, auto_h=True):
        """A usage error for options the route ``what`` does not take."""
        if guide and self.guide is not None:
            raise click.UsageError(f"--guide is not supported with {what}")
        if auto_h and self.h == "auto":
            raise click.UsageError(f"--h auto is not supported with {what}; give --h as a number or leave it out")


def _scale_options(fn):
    """Options for large images, stacks and batches."""
    options = [
        click.option("--max-pixels", type=click.IntRange(min=0), default=None,
                     help="Refuse in-memory images with more pixels than this, read from the file's header "
                          "before decoding. Default (or 0): from the memory available."),
        click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Batch mode: denoise every INPUT (files, folders, globs) into DIR, same file names; "
                          "outputs already there are skipped (resume), failures are listed at the end."),
        click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Batch mode: files denoised at once on this machine (processes; capped by the cores "
                          "and the memory)."),
        click.option("--scheduler", default=None, metavar="local|ADDRESS",
                     help="Run on Dask: 'local' (threads here) or a dask.distributed scheduler address such as "
                          "tcp://host:8786 (files must be on a file system the workers share). Needs the "
                          "'scale' extra."),
        click.option("--volume", is_flag=True,
                     help="INPUT is a 3-D volume (multi-page TIFF, Z×Y×X): cubic patches and search window."),
        click.option("--video", is_flag=True,
                     help="INPUT is a stack of frames (multi-page TIFF, T×Y×X): search across frames."),
        click.option("--temporal-radius", type=click.IntRange(min=0), default=2, show_default=True,
                     help="--video: frames searched on each side of a frame."),
        click.option("--slab-slices", type=click.IntRange(min=1), default=None,
                     help="--volume/--video: denoise slab by slab, about this many slices (frames) at a time "
                          "(same result, bounded memory). Automatic for stacks over 64 M values and for .zarr "
                          "inputs or outputs."),
        click.option("--tile-rows", type=click.IntRange(min=1), default=None,
                     help="Denoise strip by strip, about this many rows at a time (same result, bounded memory). "
                          "Automatic for TIFF inputs over 64 M pixels and for .zarr inputs or outputs."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command()
@click.argument("paths", metavar="INPUT OUTPUT | INPUTS... --out-dir DIR", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@sigma_option(f"Noise standard deviation, {SCALE_NOTE}; or one per channel separated by commas (5,20,35). "
              "Default: estimated from the image.", per_channel=True)
@sigma_map_option
@h_option
@patch_option
@search_option
@method_option
@click.option("--guide", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Guide image: weights come from it, values from INPUT (same height and width).")
@guide_sigma_option
@noise_option
@click.option("--gain", type=click.FloatRange(min=0, min_open=True), default=None,
              help="--noise poisson / poisson-gaussian: gray levels per count, in the file's own units "
                   "(1: the values are photon counts). Default: estimated from the image.")
@overwrite_option
@jpeg_quality_option
@format_option
@compare_option
@_scale_options
@verbose_option
def denoise(**options):
    """Denoise INPUT and write OUTPUT (same bit depth; alpha passed through), or many files with --out-dir.

    Formats: PNG (1–16-bit), TIFF (8/16-bit, float), JPEG/BMP (8-bit); large TIFF and .zarr arrays strip by
    strip; multi-page TIFF stacks with --volume or --video. Every route runs the method asked for (default
    NL-Bayes) and gives the same result as the in-memory call.

    \b
    Examples:
      nlmeans denoise noisy.png clean.png                  # σ estimated, NL-Bayes
      nlmeans denoise noisy.png clean.png --sigma 20       # σ on the 0–255 scale
      nlmeans denoise photo.png clean.png --sigma 5,20,35  # one σ per channel (R, G, B)
      nlmeans denoise in.tif out.tif --sigma-map=sigma.npy # σ per pixel (0–255 scale)
      nlmeans denoise in.tif out.tif --h 8 --patch 7       # pixelwise NL-means
      nlmeans denoise huge.tif out.tif --tile-rows 2048    # strip by strip
      nlmeans denoise stack.tif out.tif --volume
      nlmeans denoise photos/ --out-dir clean/ --jobs 2
      nlmeans denoise counts.tif out.tif --noise poisson --gain 1
      nlmeans denoise mri.png out.png --noise rician --sigma 12
      nlmeans denoise stack.tif out.tif --volume --noise rician --sigma 12
      cat noisy.png | nlmeans denoise - - > clean.png      # '-': stdin/stdout
      nlmeans denoise noisy.jpg clean.jpg --compare cmp.png --jpeg-quality 90

    With --noise poisson or poisson-gaussian, --sigma (the read noise) and --gain are in the file's own units
    (gray levels, not the 0–255 scale): the values are counts times the gain. --noise rician keeps the 0–255
    scale. These models run on one image in memory or on a stack (--volume/--video, also in slabs; the
    Poisson models below a count level of 16 in memory only), not in strips or batches.

    The input's metadata is kept: TIFF resolution, description, ICC profile and ImageJ/OME metadata; PNG text
    chunks, ICC profile and resolution; JPEG ICC profile and EXIF (its orientation reset: the pixels are
    already turned upright on read). INPUT or OUTPUT '-' is standard input or output (one image in memory).
    """
    request = Request(**options)
    if request.volume and request.video:
        raise click.UsageError("--volume and --video exclude each other")
    _check_sigma_array(request)
    _check_single_only(request)
    if request.slab_slices is not None and (not (request.volume or request.video) or request.out_dir):
        raise click.UsageError("--slab-slices needs --volume or --video and one INPUT OUTPUT (not --out-dir)")
    if request.noise != "gaussian" or request.gain is not None:
        _check_model_route(request)
        return _stack(request) if request.volume or request.video else _single_model(request)
    if request.out_dir is not None:
        return _batch(request)
    if len(request.paths) != 2:
        raise click.UsageError(
            f"give INPUT and OUTPUT (got {len(request.paths)} paths), or many INPUTS with --out-dir")
    if request.volume or request.video:
        return _stack(request)
    if _wants_strips(request):
        return _strips(request)
    return _single(request)


def _varying(request):
    """Whether σ varies: one per channel (``--sigma`` with commas) or per pixel (``--sigma-map``)."""
    return request.sigma_map is not None or isinstance(request.sigma, tuple)


def _check_sigma_array(request):
    """Refuse the options a per-channel σ or a σ map does not go with (before any work)."""
    if not _varying(request):
        return
    what = "--sigma-map" if request.sigma_map is not None else "--sigma with one value per channel"
    if request.sigma_map is not None and request.sigma is not None:
        raise click.UsageError("--sigma and --sigma-map exclude each other; give one")
    for flag, used in (("--out-dir", request.out_dir is not None), ("--guide", request.guide is not None),
                       (f"--noise {request.noise}", request.noise != "gaussian"),
                       ("--gain", request.gain is not None)):
        if used:
            raise click.UsageError(f"{what} is not supported with {flag} (Gaussian noise, one INPUT OUTPUT)")


def _sigma_for(request, shape, channels, *, lazy=False):
    """σ as the library takes it: ``request.sigma`` (None, a float or one per channel, checked against
    ``channels``) or the ``--sigma-map`` file for an INPUT of ``shape`` (H, W) or (Z, H, W) (a
    :class:`~nlmeans.cli.options.SigmaMap`, read strip by strip when ``lazy``, else in memory); and a text
    for the summary (σ on the 0–255 scale)."""
    from .._validate import sigma_to_255
    from .options import open_sigma_map

    if request.sigma_map is not None:
        sigma_map = open_sigma_map(request.sigma_map, shape, lazy=lazy)
        if not lazy and not isinstance(sigma_map, np.ndarray):
            sigma_map = sigma_map.load()
        return sigma_map, f"σ map {request.sigma_map.name} (given)"
    if isinstance(request.sigma, tuple):
        if len(request.sigma) != channels or channels == 1:
            raise click.BadParameter(f"gives {len(request.sigma)} values but INPUT has {channels} channel(s); "
                                     "give one σ, or one per channel", param_hint="--sigma")
        values = ", ".join(f"{sigma_to_255(v):.2f}" for v in request.sigma)
        return request.sigma, f"σ = {values}/255 per channel (given)"
    return request.sigma, None


def _check_single_only(request):
    """'-' (stdin/stdout) and --compare are for one image in memory: refuse them on the other routes."""
    piped = STDIO in request.paths
    if not (piped or request.compare is not None):
        return
    what = "'-' (standard input/output)" if piped else "--compare"
    if request.out_dir is not None or request.volume or request.video:
        raise click.UsageError(f"{what} is for one image denoised in memory, not with --out-dir, --volume or "
                               "--video")
    if request.tile_rows is not None or request.scheduler is not None:
        raise click.UsageError(f"{what} is for one image denoised in memory, not with --tile-rows or --scheduler")


def _load(request):
    """INPUT read (a file or standard input) and every output claimed before any work; returns (image, the
    format of OUTPUT '-')."""
    input_path, output_path = request.paths
    try:
        image, piped = read_input(input_path, fmt=request.fmt, max_pixels=request.max_pixels)
    except StackError as exc:  # the file is fine, the command lacks --volume/--video: exit 2
        raise click.UsageError(str(exc)) from None
    claim_files(input_path, [output_path, request.compare], overwrite=request.overwrite,
                inputs=[request.guide] if request.guide else [], fmt=request.fmt)
    return image, output_format(input_path, request.fmt, piped)


def _save(request, image, out, fmt, caption):
    """OUTPUT (with the input's alpha and metadata) and the --compare picture; the summary's stream: stderr
    when the image went to stdout."""
    output_path = request.paths[1]
    write_output(output_path, Image(out, image.alpha, image.meta), fmt=fmt, overwrite=request.overwrite,
                 jpeg_quality=request.jpeg_quality)
    if request.compare is not None:
        write_compare(request.compare, image.data, out, caption, channel_axis=image.channel_axis,
                      overwrite=request.overwrite)
    return output_path == STDIO


def _single(request):
    from .._denoise import denoise as denoise_image

    input_path, output_path = request.paths
    image, fmt = _load(request)
    if _varying(request):
        return _single_varying(request, image, fmt)
    guide = read_image(request.guide, max_pixels=request.max_pixels) if request.guide else None
    guide_axis = None if guide is None else guide.channel_axis

    def run(data, guide_data):
        return denoise_image(data, request.sigma, channel_axis=image.channel_axis, guide=guide_data,
                             guide_channel_axis=guide_axis, guide_sigma=request.guide_sigma,
                             return_settings=True, **request.sizes)

    guide = None if guide is None else guide.data
    warm_up(run, image.data, guide)  # a first run's compilation: announced, not in the time reported
    start = time.perf_counter()
    with ticker(f"denoising {input_path.name}" + (", h by SURE" if request.h == "auto" else "")):
        out, used = run(image.data, guide)
    seconds = time.perf_counter() - start
    how = "estimated" if used.sigma_estimated else "given"
    caption = (f"left: {input_path.name} (noisy) | right: denoised, {method_title(used.method)}, sigma "
               f"{used.sigma_255:.2f}/255 ({how}; 0-255 scale), {h_text(used)}patch {used.patch_size}, "
               f"search {used.search_size}, {seconds:.2f} s")
    to_stdout = _save(request, image, out, fmt, caption)
    if used.sure_risk is not None:
        psnr = sure_psnr(used.sure_risk, used.data_range)
        # a risk estimate <= 0 (σ overestimated: its -σ² term dominates) stands for no PSNR, not "inf dB"
        how += (f"; h by SURE, estimated PSNR {psnr:.2f} dB" if math.isfinite(psnr) else
                "; h by SURE (its risk estimate is <= 0, so no PSNR estimate; σ may be overestimated)")
    guided = f", guide {request.guide.name} (σ {255 * used.guide_sigma:.2f})" if request.guide else ""
    say(
        f"{input_path.name} ({image.describe()}): σ = {used.sigma_255:.2f}/255 ({how}), "
        f"{h_text(used)}patch {used.patch_size}, search {used.search_size}, "
        f"{used.method}{guided}; {seconds:.2f} s -> {output_path}", err=to_stdout
    )


def _method_of(request):
    """The method the library runs for ``request`` (its rule: NL-Bayes unless ``--h`` is given)."""
    return request.method or ("pixelwise" if request.h is not None else "nlbayes")


def _single_varying(request, image, fmt):
    """One image in memory with σ per channel or a σ map; the summary names them and the method."""
    from .._denoise import denoise as denoise_image

    input_path, output_path = request.paths
    channels = 1 if image.data.ndim == 2 else image.data.shape[2]
    sigma, text = _sigma_for(request, image.data.shape[:2], channels)
    maps = (sigma,) if request.sigma_map is not None else ()

    def run(data, *sigma_map):
        return denoise_image(data, sigma_map[0] if sigma_map else sigma, channel_axis=image.channel_axis,
                             **request.sizes)

    warm_up(run, image.data, *maps)  # a first run's compilation: announced, not in the time reported
    start = time.perf_counter()
    with ticker(f"denoising {input_path.name}"):
        out = run(image.data, *maps)
    seconds = time.perf_counter() - start
    method = _method_of(request)
    caption = (f"left: {input_path.name} (noisy) | right: denoised, {method_title(method)}, "
               f"{text.replace('σ', 'sigma')}, {seconds:.2f} s")
    to_stdout = _save(request, image, out, fmt, caption)
    say(f"{input_path.name} ({image.describe()}): {text}, {method}; {seconds:.2f} s -> {output_path}",
        err=to_stdout)


def _check_model_route(request):
    """--noise other than gaussian (or --gain) runs on one image or one stack (--volume/--video): refuse the
    other routes."""
    for flag, used in (("--out-dir", request.out_dir is not None), ("--tile-rows", request.tile_rows is not None),
                       ("--scheduler", request.scheduler is not None), ("--guide", request.guide is not None)):
        if used:
            raise click.UsageError(f"--noise {request.noise} (or --gain) is not supported with {flag}")
    if len(request.paths) != 2:
        raise click.UsageError(f"give INPUT and OUTPUT (got {len(request.paths)} paths)")


def _single_model(request):
    """One image under a Poisson, Poisson–Gaussian or Rician model; the summary names the model's parameters."""
    from .._denoise import denoise as denoise_image
    from ..noise_level import estimate_noise

    input_path, output_path = request.paths
    image, fmt = _load(request)
    start = time.perf_counter()
    sigma, gain, how = _model_parameters(
        request, lambda: estimate_noise(image.data, noise=request.noise, channel_axis=image.channel_axis))
    seconds = time.perf_counter() - start

    def run(data):
        return denoise_image(data, sigma, noise=request.noise, gain=gain, channel_axis=image.channel_axis,
                             **request.sizes)

    warm_up(run, image.data)  # a first run's compilation: announced, not in the time reported
    start = time.perf_counter()
    out = run(image.data)
    seconds += time.perf_counter() - start
    params = _model_text(request.noise, sigma, gain)
    method = request.method or ("pixelwise" if request.h is not None else "nlbayes")
    caption = (f"left: {input_path.name} (noisy) | right: denoised, {method_title(method)} for {request.noise} "
               f"noise, {params.replace('σ', 'sigma')} ({how}), {seconds:.2f} s")
    to_stdout = _save(request, image, out, fmt, caption)
    say(f"{input_path.name} ({image.describe()}): noise {request.noise}, {params} ({how}), {method} "
        f"inside the variance-stabilising transform; {seconds:.2f} s -> {output_path}", err=to_stdout)


def _model_parameters(request, estimate):
    """(σ, gain, "given"/"estimated") of a --noise run: the options in the model's units (the Poisson models'
    σ in the file's own units, handed over by the option on the float scale), the missing ones from
    ``estimate()`` (a :class:`nlmeans.noise_level.NoiseEstimate`)."""
    from .._validate import POISSON_MODELS, sigma_to_255

    poisson = request.noise in POISSON_MODELS
    sigma = request.sigma if request.sigma is None or not poisson else sigma_to_255(request.sigma)
    gain = request.gain
    if not ((poisson and gain is None) or (request.noise != "poisson" and sigma is None)):
        return sigma, gain, "given"
    est = estimate()
    gain = est.gain if gain is None else gain
    sigma = est.sigma if sigma is None and request.noise != "poisson" else sigma
    return sigma, gain, "estimated"


def _model_text(noise, sigma, gain):
    """The model's parameters for a summary line (Rician σ on the 0–255 scale, the Poisson models' in file
    units)."""
    from .._validate import sigma_to_255

    if noise == "rician":
        return f"σ = {sigma_to_255(sigma):.2f}/255"
    return f"gain = {gain:.4g}" + ("" if noise == "poisson" else f", σ = {sigma:.4g}") + " (file units)"


def _batch(request):
    from .. import batch
    from ..dask import client_for

    request.refuse("--out-dir", auto_h=request.volume or request.video)
    resume_gc()  # a long run over many files: the collector is on for it
    out_dir = request.out_dir
    files, missing = batch.expand_inputs(request.paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    removed = batch.remove_partials(out_dir)
    if removed:
        say(f"removed {len(removed)} partial file(s) left by an interrupted run in {out_dir}")
    pairs = batch.plan(files, out_dir)
    options = batch.Options(request.sigma, request.h, request.patch, request.search, request.method,
                            request.volume, request.video, request.temporal_radius, request.jpeg_quality)
    client = client_for(request.scheduler) if request.scheduler not in (None, "local") else None
    jobs = request.jobs
    if client is None and jobs > 1:
        jobs, note = batch.cap_jobs(jobs, [src for src, _ in pairs])
        if note:
            say(note, err=True)
    try:
        report = batch.run(pairs, options, overwrite=request.overwrite, jobs=jobs, client=client,
                           progress=show_progress())
    finally:
        if client is not None:
            client.close()
    report.failed[:0] = [(item, "no such file, folder or matching file") for item in missing]
    say(f"{report.summary()} -> {out_dir}")
    for src, message in report.failed:
        click.echo(f"failed: {src}: {message}", err=True)
    if report.failed:
        raise click.exceptions.Exit(1)


def _stack(request):
    from ..io import read_stack, write_stack

    request.refuse("--volume/--video")
    if request.method == "patchwise":
        raise click.UsageError("--method patchwise is not available for --volume/--video (nlbayes, pixelwise)")
    if _wants_slabs(request):
        return _slabs(request)
    input_path, output_path = request.paths
    try:
        stack = read_stack(input_path, kind="video" if request.video else "volume", max_pixels=request.max_pixels)
    except StackError as exc:  # a single image, or axes that say the other flag: exit 2
        raise click.UsageError(str(exc)) from None
    claim_outputs([output_path], inputs=[input_path], overwrite=request.overwrite, image=True)
    axis = -1 if stack.ndim == 4 else None
    run, sigma, text, model_text = _stack_call(request, stack, axis, lazy=False)
    what = _stack_what(request, stack.shape)
    _warm_up_stack(request, run, stack, sigma, text)
    start = time.perf_counter()
    with ticker(f"denoising {input_path.name} ({what})"):
        out, used = run(stack) if text is None else (run(stack), None)
    seconds = time.perf_counter() - start
    write_stack(output_path, out, overwrite=request.overwrite, metadata=read_metadata(input_path))
    if model_text is not None:
        return _model_summary(input_path, output_path, f"{what}, {stack.dtype}", model_text, request, seconds)
    if used is None:
        _stack_varying_summary(request, input_path, output_path, what, stack.dtype, text, seconds)
        return
    _stack_summary(input_path, output_path, what, stack.dtype, used, seconds)


def _stack_call(request, stack, axis, *, lazy):
    """``(run, sigma, text, model_text)`` of a stack run: ``run(data, sigma=sigma, **more)`` calls
    :func:`nlmeans.denoise_volume` or :func:`nlmeans.denoise_video` with the request's options; ``sigma`` the
    noise model's σ, or the option's (one σ, one per channel, or the ``--sigma-map``, read slab by slab when
    ``lazy``); ``text`` the varying σ's summary text (None: the call returns its Settings too) and
    ``model_text`` the noise model's (None: Gaussian noise)."""
    from ..volume import denoise_video, denoise_volume

    model, model_text = _stack_model(request, stack, axis)
    if model:
        sigma, text = model.pop("sigma"), None
    else:
        sigma, text = _sigma_for(request, tuple(stack.shape[:3]), 1 if axis is None else stack.shape[-1],
                                 lazy=lazy)
    kw = dict(request.sizes, channel_axis=axis, return_settings=text is None, **model)
    if request.video:
        kw["temporal_radius"] = request.temporal_radius
    denoise_stack = denoise_video if request.video else denoise_volume

    def run(data, sigma=sigma, **more):
        return denoise_stack(data, sigma, **kw, **more)
    return run, sigma, text, model_text


def _warm_up_stack(request, run, stack, sigma, text):
    """:func:`warm_up` of a stack call on a crop: with a σ map (NL-Bayes), the crop of the map, so that the
    map's kernel is compiled; per channel or per level (pixelwise), one σ (the kernels those runs take)."""
    depth = min(9, stack.shape[0])  # the first slices (an array-like is read only there), then a crop
    crop = lambda a: a[:, :32, :32].copy()  # noqa: E731
    if text is None:
        warm_up(run, stack[:depth], crop=crop)
    elif _map_kernel(request):
        smap = sigma[:depth] if len(sigma.shape) == 3 else np.broadcast_to(sigma, (depth, *sigma.shape))
        warm_up(lambda data, m: run(data, m), stack[:depth], np.asarray(smap), crop=crop)
    else:  # a map read slab by slab brings its largest σ in its summary
        top = sigma.summary.top if getattr(sigma, "summary", None) is not None else float(np.max(sigma))
        warm_up(lambda data: run(data, top), stack[:depth], crop=crop)


def _map_kernel(request):
    """Whether a stack's ``--sigma-map`` runs inside the kernel (NL-Bayes), in memory or in slabs."""
    return request.sigma_map is not None and _method_of(request) == "nlbayes"


def _stack_varying_summary(request, input_path, output_path, what, dtype, text, seconds):
    how = "with the map in its kernel" if _map_kernel(request) else "once per σ level or channel group"
    say(f"{input_path.name} ({what}, {dtype}): {text}, {_method_of(request)} {how}; {seconds:.2f} s -> "
        f"{output_path}")


def _stack_model(request, stack, axis):
    """The noise model of a stack run: ``({}, None)`` for Gaussian noise, else the keyword arguments
    (``noise``, ``gain``, ``sigma`` in the model's units) and the summary's text; the parameters left out
    fitted on a few slices as :func:`nlmeans.denoise_volume` fits them (so the summary shows what ran)."""
    if request.noise == "gaussian" and request.gain is None:
        return {}, None
    from ..volume import _estimate_model_slices

    ndim = len(stack.shape)
    sigma, gain, how = _model_parameters(request, lambda: _estimate_model_slices(
        stack, None if axis is None else ndim - 1, 0, stack.shape[0], request.noise))
    return (dict(noise=request.noise, gain=gain, sigma=sigma),
            f"noise {request.noise}, {_model_text(request.noise, sigma, gain)} ({how})")


def _model_summary(input_path, output_path, what, model_text, request, seconds):
    say(f"{input_path.name} ({what}): {model_text}, {_method_of(request)} inside the variance-stabilising "
        f"transform; {seconds:.2f} s -> {output_path}")


def _stack_what(request, shape):
    if request.video:
        return f"video, {shape[0]} frames, temporal radius {request.temporal_radius}"
    return f"volume {'×'.join(map(str, shape[:3]))}"


def _stack_summary(input_path, output_path, what, dtype, used, seconds):
    how = "estimated" if used.sigma_estimated else "given"
    say(f"{input_path.name} ({what}, {dtype}): σ = {used.sigma_255:.2f}/255 ({how}), "
        f"{h_text(used)}patch {used.patch_size}, search {used.search_size}, {used.method}; "
        f"{seconds:.2f} s -> {output_path}")


def _wants_slabs(request):
    """Slabs for --slab-slices, a .zarr input or output, or a TIFF stack over :data:`AUTO_SLAB_VALUES`."""
    from ..io import ZARR_SUFFIXES

    input_path, output_path = request.paths
    if request.slab_slices is not None:
        return True
    if ZARR_SUFFIXES[0] in (input_path.suffix.lower(), output_path.suffix.lower()):
        return True
    shape = _tiff_shape(input_path)
    return shape is not None and math.prod(shape) > AUTO_SLAB_VALUES


def _slabs(request):
    """A stack slab by slab: read a slab and its halo, denoise, write its slices into the preallocated
    output (TIFF pages or zarr), committed atomically at the end; the same bits as in memory."""
    from ..io import ZARR_SUFFIXES, create_array, open_stack
    from ..volume import slab_slices_for

    input_path, output_path = request.paths
    try:
        stack = open_stack(input_path, kind="video" if request.video else "volume")
    except StackError as exc:
        raise click.UsageError(str(exc)) from None
    folder = output_path.suffix.lower() in ZARR_SUFFIXES
    claim_outputs([output_path], inputs=[input_path], overwrite=request.overwrite, folder=folder,
                  image=not folder)
    axis = -1 if len(stack.shape) == 4 else None
    radius = request.temporal_radius if request.video else None
    run, sigma, text, model_text = _stack_call(request, stack, axis, lazy=True)  # a σ map read slab by slab
    what = _stack_what(request, stack.shape)
    _warm_up_stack(request, run, stack, sigma, text)
    start = time.perf_counter()
    with create_array(output_path, stack.shape, stack.dtype, overwrite=request.overwrite, stack=True,
                      metadata=read_metadata(input_path)) as out:
        done = run(stack, slab_slices=request.slab_slices, out=out, progress=show_progress())
    seconds = time.perf_counter() - start
    if text is not None:
        _stack_varying_summary(request, input_path, output_path, f"{what}, in slabs", stack.dtype, text, seconds)
        return
    used = done[1]
    plane = math.prod(stack.shape[1:])
    kept = min(slab_slices_for(used, plane, request.slab_slices, radius), stack.shape[0])
    if model_text is not None:
        return _model_summary(input_path, output_path, f"{what}, {stack.dtype}, slabs of {kept} slices",
                              model_text, request, seconds)
    _stack_summary(input_path, output_path, f"{what}, slabs of {kept} slices", stack.dtype, used, seconds)


def _wants_strips(request):
    from ..io import ZARR_SUFFIXES

    input_path, output_path = request.paths
    if request.tile_rows is not None or request.scheduler is not None:
        return True
    if ZARR_SUFFIXES[0] in (input_path.suffix.lower(), output_path.suffix.lower()):
        return True
    shape = _tiff_shape(input_path)
    return shape is not None and len(shape) >= 2 and shape[0] * shape[1] > AUTO_STRIP_PIXELS


def _tiff_shape(path):
    """The shape of a TIFF's first series from its header, or None (not a TIFF file, or unreadable: such
    files fail later with the usual message)."""
    from ..io import TIFF_SUFFIXES

    if path.suffix.lower() not in TIFF_SUFFIXES or not path.is_file():
        return None
    import tifffile

    try:
        with tifffile.TiffFile(str(path)) as tif:
            return tuple(tif.series[0].shape)
    except Exception:  # noqa: BLE001
        return None


def _strips(request):
    from ..io import ZARR_SUFFIXES, create_array, open_array
    from ..tiles import STRIP_VALUES, denoise_tiled, halo_for, resolve_settings, resolve_tile_rows, strip_rows

    request.refuse("strip-by-strip denoising")
    input_path, output_path = request.paths
    image = open_array(input_path)
    folder = output_path.suffix.lower() in ZARR_SUFFIXES
    claim_outputs([output_path], inputs=[input_path], overwrite=request.overwrite, folder=folder,
                  image=not folder)
    axis = None if len(image.shape) == 2 else -1
    height, width = image.shape[:2]
    channels = 1 if axis is None else image.shape[-1]
    start = time.perf_counter()
    sigma, text = _sigma_for(request, (height, width), channels, lazy=True)
    maps = (sigma,) if request.sigma_map is not None else ()
    if text is None:
        used = resolve_settings(image, request.sigma, channel_axis=axis, **request.sizes)
        halo = halo_for(used)
        rows = strip_rows(resolve_tile_rows(request.tile_rows, width, channels, halo), halo)
        # σ resolved once (estimated on a sample when not given): every strip or chunk uses exactly it
        sigma, explicit = used.sigma, dict(request.sizes, method=used.method, channel_axis=axis)
    else:  # σ per channel or a map: the strips resolve their runs themselves, the default strip height
        used, explicit = None, dict(request.sizes, channel_axis=axis)
        rows = request.tile_rows or max(1, STRIP_VALUES // (width * channels))

    def run(data, *sigma_map, **more):
        return denoise_tiled(data, sigma_map[0] if sigma_map else sigma, tile_rows=rows, **explicit, **more)

    warmed = time.perf_counter()
    warm_up(run, image, *maps)  # reads a corner
    start += time.perf_counter() - warmed  # a first run's compilation: announced, not in the time reported
    with create_array(output_path, image.shape, image.dtype, overwrite=request.overwrite,
                      metadata=read_metadata(input_path)) as out:
        if request.scheduler is None:
            run(image, out=out, progress=show_progress())
            # (σ varying: the strips' height is rounded up to the unit of the runs the library resolves)
            where = f"strips of {'' if used else 'about '}{min(rows, height)} rows"
        else:
            from .. import dask as nd

            client = nd.client_for(request.scheduler)
            try:
                lazy = nd.denoise(nd.from_file(input_path, rows), sigma, tile_rows=rows, **explicit)
                nd.compute_into(lazy, out, client=client, progress=show_progress())
            finally:
                if client is not None:
                    client.close()
            where = f"Dask {request.scheduler}, chunks of about {min(rows, height)} rows"
    seconds = time.perf_counter() - start
    kind = "gray" if axis is None else f"{channels}-channel"
    if used is None:
        described = f"{text}, {_method_of(request)}"
    else:
        how = "estimated" if used.sigma_estimated else "given"
        described = (f"σ = {used.sigma_255:.2f}/255 ({how}), {h_text(used)}patch {used.patch_size}, "
                     f"search {used.search_size}, {used.method}")
    say(f"{input_path.name} ({width}×{height} {kind} {image.dtype}, {where}): {described}; {seconds:.2f} s -> "
        f"{output_path}")
