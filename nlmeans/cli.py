"""The ``nlmeans`` command line: options, file I/O calls and printing; no image maths here.

Exit codes: 0 success, 1 runtime error (unreadable input, unwritable output, ...), 2 usage error (bad option).
σ and h are on the 0–255 scale on the command line, whatever the file's bit depth.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import click

from . import __version__
from .io import Image, check_writable, read_image, write_image

SCALE_NOTE = "on the 0–255 scale whatever the file's bit depth (float files: 255 ↔ 1.0)"


class _Group(click.Group):
    """A click group that turns runtime errors into one line on stderr and exit code 1."""

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
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
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


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False, path_type=Path))
@sigma_option
@click.option(
    "--h", "h", type=str, default=None, callback=_h_value, metavar="H|auto",
    help=f"Filtering parameter, {SCALE_NOTE}, or 'auto': chosen by minimising Stein's unbiased risk "
    "estimate (Monte-Carlo SURE; without --patch the patch size too). Default: from the preset table by σ.",
)
@click.option("--patch", type=int, default=None, callback=_odd_size,
              help="Patch side, odd. Default: by σ (3 to 9).")
@click.option("--search", type=int, default=None, callback=_odd_size,
              help="Search window side, odd. Default: 21.")
@click.option("--method", default="pixelwise", show_default=True, help="Estimator: pixelwise.")
@click.option("--guide", "guide_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Guide image: weights come from it, values from INPUT (same height and width).")
@click.option("--guide-sigma", type=click.FloatRange(min=0), default=None,
              help=f"Noise level of the guide, {SCALE_NOTE}. Default: estimated; 0 for a clean guide.")
@overwrite_option
def denoise(input_path, output_path, sigma, h, patch, search, method, guide_path, guide_sigma, overwrite):
    """Denoise INPUT and write OUTPUT (same bit depth; alpha passed through).

    Formats: PNG (8/16-bit), TIFF (8/16-bit, float), JPEG/BMP (8-bit).
    """
    from .denoise import run_denoise

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
        f"h = {used.h_255:.2f}/255, patch {used.patch_size}, search {used.search_size}, "
        f"{used.method}{guided}; {seconds:.2f} s -> {output_path}"
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
        f"NL-means {used.method}: patch {used.patch_size}, search {used.search_size}, "
        f"h = {used.h_255:.2f}/255, {seconds:.2f} s"
    )
    click.echo(f"PSNR noisy    {before:6.2f} dB")
    click.echo(f"PSNR denoised {after:6.2f} dB  (+{after - before:.2f} dB)")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        kind = image.data.dtype
        write_image(out_dir / "noisy.png", from_float(noisy, kind if kind.kind == "u" else np.uint8))
        write_image(out_dir / "denoised.png", from_float(out, kind if kind.kind == "u" else np.uint8))
        click.echo(f"wrote {out_dir / 'noisy.png'} and {out_dir / 'denoised.png'}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
