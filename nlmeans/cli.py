"""The ``nlmeans`` command line: options, file I/O calls and printing; no image maths here.

Exit codes: 0 success, 1 runtime error (unreadable input, unwritable output, ...), 2 usage error (bad option).
σ and h are on the 0–255 scale on the command line, whatever the file's bit depth.
"""

from __future__ import annotations

import gc
import sys
import time
import traceback
from pathlib import Path

import click

from . import __version__
from .io import Image, check_writable, one_line, read_image, write_image

SCALE_NOTE = "on the 0–255 scale whatever the file's bit depth (float files: 255 ↔ 1.0)"


class _Group(click.Group):
    """A click group that turns runtime errors into one line on stderr and exit code 1."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        finally:
            # numba leaves a large graph of objects behind; the interpreter's last garbage collections walk it
            # on exit (0.15-0.2 s of a 1.4 s denoise). Frozen objects are skipped; the process ends anyway.
            gc.freeze()

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:  # noqa: BLE001 - every runtime error ends as one line, exit 1
            if ctx.obj and ctx.obj.get("verbose"):
                traceback.print_exc()
            message = one_line(exc)
            if not isinstance(exc, (ValueError, TypeError, OSError)):
                message = f"internal error ({type(exc).__name__}): {message}"
            raise click.ClickException(message) from None


def _odd_size(ctx, param, value):
    if value is not None and (value < 1 or value % 2 == 0):
        raise click.BadParameter(f"must be an odd positive integer (1, 3, 5, ...), got {value}")
    return value


def _scale_255(value):
    return None if value is None else value / 255.0


def _sure_psnr(risk, data_range):
    """The PSNR (dB) that a SURE risk estimate stands for."""
    import math

    return math.inf if risk <= 0 else 10.0 * math.log10(data_range**2 / risk)


def _h_value(ctx, param, value):
    """``--h``: a positive number (0–255 scale) or ``auto``; returned as float, "auto" or None."""
    if value is None:
        return None
    if value.strip().lower() == "auto":
        return "auto"
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (number > 0 and number < float("inf")):
        raise click.BadParameter(f"must be a positive number (0–255 scale) or 'auto', got {value!r}")
    return number


sigma_option = click.option(
    "--sigma", type=click.FloatRange(min=0), default=None,
    help=f"Noise standard deviation, {SCALE_NOTE}. Default: estimated from the image.",
)
overwrite_option = click.option(
    "--overwrite", is_flag=True, help="Replace OUTPUT if it exists (the input is never overwritten)."
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nlmeans")
@click.option("--verbose", "-v", is_flag=True, help="Show the full traceback when something fails.")
@click.pass_context
def main(ctx, verbose):
    """Non-Local Means image denoising.

    σ and h are given on the 0–255 scale whatever the file's bit depth. Exit codes: 0 success, 1 error,
    2 bad usage.
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


def _scale_options(fn):
    """Options of ``denoise`` for large images, stacks and batches (the ``scale`` part of the CLI)."""
    options = [
        click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Batch mode: denoise every INPUT (files, folders, globs) into DIR, same file names; "
                          "outputs already there are skipped (resume), failures are listed at the end."),
        click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Batch mode: files denoised at once on this machine (processes)."),
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
        click.option("--tile-rows", type=click.IntRange(min=1), default=None,
                     help="Denoise strip by strip, about this many rows at a time (same result, bounded memory). "
                          "Automatic for TIFF inputs over 64 M pixels and for .zarr inputs or outputs."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


#: TIFF inputs with more pixels than this are denoised strip by strip without being asked
AUTO_STRIP_PIXELS = 1 << 26


def _h_text(used):
    """``"h = 8.00/255, "`` for the NL-means methods; empty for NL-Bayes, which has no h."""
    return "" if used.method == "nlbayes" else f"h = {used.h_255:.2f}/255, "


@main.command()
@click.argument("paths", metavar="INPUT OUTPUT | INPUTS... --out-dir DIR", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@sigma_option
@click.option(
    "--h", "h", type=str, default=None, callback=_h_value, metavar="H|auto",
    help=f"Filtering parameter, {SCALE_NOTE}, or 'auto': chosen by minimising Stein's unbiased risk "
    "estimate (Monte-Carlo SURE; without --patch the patch size too). Default: from the preset table by σ.",
)
@click.option("--patch", type=int, default=None, callback=_odd_size,
              help="Patch side, odd. Default: by σ (3 to 9).")
@click.option("--search", type=int, default=None, callback=_odd_size,
              help="Search window side, odd. Default: by σ (21; NL-Bayes 21, 31 or 41).")
@click.option("--method", default=None,
              help="Estimator: nlbayes, pixelwise or patchwise. Default: nlbayes (the best measured), or "
                   "pixelwise when --h or --guide is given and in strip-by-strip/Dask mode.")
@click.option("--guide", "guide_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Guide image: weights come from it, values from INPUT (same height and width).")
@click.option("--guide-sigma", type=click.FloatRange(min=0), default=None,
              help=f"Noise level of the guide, {SCALE_NOTE}. Default: estimated; 0 for a clean guide.")
@overwrite_option
@_scale_options
def denoise(paths, sigma, h, patch, search, method, guide_path, guide_sigma, overwrite, **scale):
    """Denoise INPUT and write OUTPUT (same bit depth; alpha passed through), or many files with --out-dir.

    Formats: PNG (8/16-bit), TIFF (8/16-bit, float), JPEG/BMP (8-bit); large TIFF and .zarr arrays strip by
    strip; multi-page TIFF stacks with --volume or --video.
    """
    from .denoise import run_denoise

    if scale["volume"] and scale["video"]:
        raise click.UsageError("--volume and --video exclude each other")
    if scale["out_dir"] is not None:
        return _denoise_batch(paths, sigma, h, patch, search, method, guide_path, overwrite, scale)
    if len(paths) != 2:
        raise click.UsageError(f"give INPUT and OUTPUT (got {len(paths)} paths), or many INPUTS with --out-dir")
    input_path, output_path = paths
    if scale["volume"] or scale["video"]:
        return _denoise_stack(input_path, output_path, sigma, h, patch, search, guide_path, overwrite, scale)
    if _wants_strips(input_path, output_path, scale):
        return _denoise_strips(input_path, output_path, sigma, h, patch, search, method, guide_path,
                               overwrite, scale)

    image = read_image(input_path)
    inputs = [input_path] + ([guide_path] if guide_path else [])
    check_writable(output_path, overwrite=overwrite, inputs=inputs)
    guide = read_image(guide_path).data if guide_path else None
    start = time.perf_counter()
    out, used = run_denoise(
        image.data, _scale_255(sigma), h=h if h == "auto" else _scale_255(h), patch_size=patch,
        search_size=search, method=method, channel_axis=image.channel_axis, guide=guide,
        guide_sigma=_scale_255(guide_sigma),
    )
    seconds = time.perf_counter() - start
    write_image(output_path, Image(out, image.alpha))
    how = "estimated" if used.sigma_estimated else "given"
    if used.sure_risk is not None:
        how += f"; h by SURE, estimated PSNR {_sure_psnr(used.sure_risk, used.data_range):.2f} dB"
    guided = f", guide {guide_path.name} (σ {255 * used.guide_sigma:.2f})" if guide_path else ""
    click.echo(
        f"{input_path.name} ({image.describe()}): σ = {used.sigma_255:.2f}/255 ({how}), "
        f"{_h_text(used)}patch {used.patch_size}, search {used.search_size}, "
        f"{used.method}{guided}; {seconds:.2f} s -> {output_path}"
    )


def _no_guide_here(guide_path, what):
    if guide_path is not None:
        raise click.UsageError(f"--guide is not supported with {what}")


def _no_auto_h_here(h, what):
    if h == "auto":
        raise click.UsageError(f"--h auto is not supported with {what}; give --h as a number or leave it out")


def _denoise_batch(paths, sigma, h, patch, search, method, guide_path, overwrite, scale):
    from . import batch

    _no_guide_here(guide_path, "--out-dir")
    if scale["volume"] or scale["video"]:
        _no_auto_h_here(h, "--volume/--video")
    out_dir = scale["out_dir"]
    files, missing = batch.expand_inputs(paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    removed = batch.remove_partials(out_dir)
    if removed:
        click.echo(f"removed {len(removed)} partial file(s) left by an interrupted run in {out_dir}")
    pairs = batch.plan(files, out_dir)
    options = batch.Options(sigma, h, patch, search, method, scale["volume"], scale["video"],
                            scale["temporal_radius"])
    from .dask import client_for

    client = client_for(scale["scheduler"]) if scale["scheduler"] not in (None, "local") else None
    try:
        report = batch.run(pairs, options, overwrite=overwrite, jobs=scale["jobs"], client=client)
    finally:
        if client is not None:
            client.close()
    report.failed[:0] = [(item, "no such file, folder or matching file") for item in missing]
    click.echo(f"{report.summary()} -> {out_dir}")
    for src, message in report.failed:
        click.echo(f"failed: {src}: {message}", err=True)
    if report.failed:
        raise click.exceptions.Exit(1)


def _denoise_stack(input_path, output_path, sigma, h, patch, search, guide_path, overwrite, scale):
    from .io import read_stack, write_stack
    from .volume import denoise_video, denoise_volume

    _no_guide_here(guide_path, "--volume/--video")
    _no_auto_h_here(h, "--volume/--video")
    stack = read_stack(input_path)
    check_writable(output_path, overwrite=overwrite, inputs=[input_path])
    axis = -1 if stack.ndim == 4 else None
    kw = dict(h=_scale_255(h), patch_size=patch, search_size=search, channel_axis=axis)
    start = time.perf_counter()
    if scale["video"]:
        out = denoise_video(stack, _scale_255(sigma), temporal_radius=scale["temporal_radius"], **kw)
        what = f"video, {stack.shape[0]} frames, temporal radius {scale['temporal_radius']}"
    else:
        out = denoise_volume(stack, _scale_255(sigma), **kw)
        what = f"volume {'×'.join(map(str, stack.shape[:3]))}"
    seconds = time.perf_counter() - start
    write_stack(output_path, out)
    click.echo(f"{input_path.name} ({what}, {stack.dtype}): {seconds:.2f} s -> {output_path}")


def _wants_strips(input_path, output_path, scale):
    from .io import TIFF_SUFFIXES, ZARR_SUFFIXES

    if scale["tile_rows"] is not None or scale["scheduler"] is not None:
        return True
    if ZARR_SUFFIXES[0] in (input_path.suffix.lower(), output_path.suffix.lower()):
        return True
    if input_path.suffix.lower() in TIFF_SUFFIXES and input_path.is_file():
        import tifffile

        try:
            with tifffile.TiffFile(str(input_path)) as tif:
                shape = tif.series[0].shape
        except Exception:  # noqa: BLE001 - unreadable files fail later with the usual message
            return False
        return len(shape) >= 2 and shape[0] * shape[1] > AUTO_STRIP_PIXELS
    return False


def _denoise_strips(input_path, output_path, sigma, h, patch, search, method, guide_path, overwrite, scale):
    from .io import ZARR_SUFFIXES, create_array, open_array
    from .tiles import denoise_tiled, halo_for, resolve_settings, resolve_tile_rows, strip_rows

    _no_guide_here(guide_path, "strip-by-strip denoising")
    _no_auto_h_here(h, "strip-by-strip denoising")
    image = open_array(input_path)
    if output_path.suffix.lower() in ZARR_SUFFIXES:
        if output_path.exists() and not overwrite:
            raise OSError(f"{output_path}: already exists; pass --overwrite to replace it")
        if not output_path.parent.exists():
            raise OSError(f"{output_path}: output folder {output_path.parent} does not exist")
    else:
        check_writable(output_path, overwrite=overwrite, inputs=[input_path])
    axis = None if len(image.shape) == 2 else -1
    height, width = image.shape[:2]
    channels = 1 if axis is None else image.shape[-1]
    start = time.perf_counter()
    used = resolve_settings(image, _scale_255(sigma), method=method, h=_scale_255(h), patch_size=patch,
                            search_size=search, channel_axis=axis)
    halo = halo_for(used)
    rows = strip_rows(resolve_tile_rows(scale["tile_rows"], width, channels, halo), halo)
    # the resolved settings, passed on explicitly: every strip or chunk uses exactly these
    explicit = dict(method=used.method, h=used.h, patch_size=patch, search_size=search, channel_axis=axis)
    with create_array(output_path, image.shape, image.dtype) as out:
        if scale["scheduler"] is None:
            denoise_tiled(image, used.sigma, tile_rows=rows, out=out, progress=True, **explicit)
            where = f"strips of {min(rows, height)} rows"
        else:
            from . import dask as nd

            client = nd.client_for(scale["scheduler"])
            try:
                lazy = nd.denoise(nd.from_file(input_path, rows), used.sigma, tile_rows=rows, **explicit)
                nd.compute_into(lazy, out, client=client, progress=True)
            finally:
                if client is not None:
                    client.close()
            where = f"Dask {scale['scheduler']}, chunks of about {min(rows, height)} rows"
    seconds = time.perf_counter() - start
    how = "estimated" if used.sigma_estimated else "given"
    kind = "gray" if axis is None else f"{channels}-channel"
    click.echo(
        f"{input_path.name} ({width}×{height} {kind} {image.dtype}, {where}): σ = {used.sigma_255:.2f}/255 "
        f"({how}), {_h_text(used)}patch {used.patch_size}, search {used.search_size}, {used.method}; "
        f"{seconds:.2f} s -> {output_path}"
    )


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sigma", type=click.FloatRange(min=0), required=True,
              help=f"Noise standard deviation, {SCALE_NOTE}.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible noise.")
@click.option("--float", "as_float", is_flag=True,
              help="Write float32 (TIFF only), unclipped. Default: the input's dtype, clipped and rounded.")
@overwrite_option
def noise(input_path, output_path, sigma, seed, as_float, overwrite):
    """Add Gaussian noise to INPUT and write OUTPUT.

    Integer outputs are clipped to the dtype's range and rounded (that is what the file can hold); use
    --float with a .tif OUTPUT to keep the exact Gaussian noise.
    """
    import numpy as np

    from ._validate import from_float
    from .noise import add_noise

    image = read_image(input_path)
    check_writable(output_path, overwrite=overwrite, inputs=[input_path])
    if as_float and output_path.suffix.lower() not in (".tif", ".tiff"):
        raise click.BadParameter("--float needs a .tif or .tiff OUTPUT", param_hint="--float")
    noisy = add_noise(image.data, sigma / 255.0, seed=seed)
    out = noisy.astype(np.float32) if as_float else from_float(noisy, image.data.dtype)
    write_image(output_path, Image(out, image.alpha))
    click.echo(f"{input_path.name} ({image.describe()}): added σ = {sigma:.2f}/255 noise -> {output_path}")


@main.command()
@click.argument("image_path", metavar="[IMAGE]", required=False, default="data/camera.png",
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sigma", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
              help=f"Noise standard deviation to add, {SCALE_NOTE}.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the noise.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write noisy.png and denoised.png here.")
def demo(image_path, sigma, seed, out_dir):
    """Noise IMAGE (default data/camera.png) at --sigma, denoise it, print PSNR before and after."""
    import numpy as np

    from ._validate import from_float
    from .denoise import run_denoise
    from .metrics import psnr
    from .noise import add_noise

    image = read_image(image_path)
    noisy = add_noise(image.data, sigma / 255.0, seed=seed).astype(np.float32)
    start = time.perf_counter()
    out, used = run_denoise(noisy, sigma / 255.0, channel_axis=image.channel_axis)
    seconds = time.perf_counter() - start
    before, after = psnr(image.data, noisy), psnr(image.data, out)
    click.echo(f"{image_path} ({image.describe()}), Gaussian noise σ = {sigma:g}/255, seed {seed}")
    click.echo(
        f"{'NL-Bayes' if used.method == 'nlbayes' else 'NL-means ' + used.method}: patch {used.patch_size}, "
        f"search {used.search_size}, {_h_text(used)}{seconds:.2f} s"
    )
    click.echo(f"PSNR noisy    {before:6.2f} dB")
    click.echo(f"PSNR denoised {after:6.2f} dB  (+{after - before:.2f} dB)")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        kind = image.data.dtype
        write_image(out_dir / "noisy.png", from_float(noisy, kind if kind.kind == "u" else np.uint8))
        write_image(out_dir / "denoised.png", from_float(out, kind if kind.kind == "u" else np.uint8))
        click.echo(f"wrote {out_dir / 'noisy.png'} and {out_dir / 'denoised.png'}")


def _sigma_list(ctx, param, value):
    try:
        sigmas = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"must be comma-separated numbers, e.g. 10,20,30; got {value!r}") from None
    if not sigmas or any(not (s > 0 and s < float("inf")) for s in sigmas):
        raise click.BadParameter(f"needs one or more positive numbers (0–255 scale), got {value!r}")
    return sigmas


def _method_list(ctx, param, value):
    from .evaluate import resolve_methods

    try:
        return resolve_methods(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command("eval")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--sigma", "sigmas", default="10,20,30", show_default=True, callback=_sigma_list,
              help=f"Noise levels to add, comma-separated, {SCALE_NOTE}.")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Noise draws per image and σ (seeds 0 … N−1).")
@click.option("--methods", default="all", show_default=True, callback=_method_list,
              help="Comma-separated method names, or 'all' (every installed one). See --list.")
@click.option("--tune", is_flag=True,
              help="Oracle: pick each method's parameters from its grid by PSNR against the clean image "
                   "(marked * in the table).")
@click.option("--crop", type=click.IntRange(min=8), default=None,
              help="Use the central N×N crop of each image (faster).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the records as JSON (replaced if it exists).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the records as CSV (replaced if it exists).")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write PSNR-vs-σ, montage and method-noise PNGs into this folder (needs matplotlib).")
@click.option("--list", "list_methods", is_flag=True, help="List the methods with their σ rules and exit.")
def eval_(images, sigmas, seeds, methods, tune, crop, json_path, csv_path, plots_dir, list_methods):
    """Noise IMAGES at each --sigma, denoise with each method, and rank them by PSNR.

    IMAGES are files or folders (default: data/). For each image × σ × seed the noise is
    nlmeans.add_noise(image, σ/255, seed) (unclipped, float); every method gets the same noisy image and the
    true σ, and derives its parameters from σ by its documented rule (or, with --tune, the oracle's best of a
    small grid). PSNR and SSIM on the [0, 1] scale; time is wall time per call, numba compilation excluded.
    """
    from .evaluate import format_table, image_files, rules_table, run_experiment, write_csv, write_json

    if list_methods:
        click.echo(rules_table(markdown=False))
        return
    if not images:
        if not Path("data").is_dir():
            raise click.UsageError("no IMAGES given and there is no data/ folder here")
        images = (Path("data"),)
    files = image_files(images)
    for path in (json_path, csv_path):
        if path is not None and not path.parent.exists():
            raise OSError(f"{path}: output folder {path.parent} does not exist")
    if plots_dir is not None:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise click.BadParameter("needs matplotlib: pip install 'nlmeans[plot]'", param_hint="--plots")
    from .io import read_image

    named = {}
    for f in files:
        if f.stem in named:
            raise ValueError(f"two images are called {f.stem!r}; rename one")
        named[f.stem] = read_image(f).data
    records, gallery = run_experiment(named, sigmas, methods, seeds, tune, crop=crop, progress=True,
                                      keep_images=plots_dir is not None)
    click.echo(format_table(records))
    if json_path is not None:
        write_json(records, json_path)
        click.echo(f"wrote {len(records)} records to {json_path}")
    if csv_path is not None:
        write_csv(records, csv_path)
        click.echo(f"wrote {len(records)} records to {csv_path}")
    if plots_dir is not None:
        from .plots import write_plots

        paths = write_plots(records, gallery, plots_dir)
        click.echo(f"wrote {len(paths)} plots to {plots_dir}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
