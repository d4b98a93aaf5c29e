"""``nlmeans noise``: add Gaussian noise to an image file."""

from __future__ import annotations

from pathlib import Path

import click

from .._validate import sigma_to_255
from ..io import Image
from .options import (
    SCALE_NOTE,
    STDIO,
    claim_files,
    format_option,
    jpeg_quality_option,
    output_format,
    overwrite_option,
    read_input,
    sigma_option,
    verbose_option,
    write_output,
)
from .progress import say


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False, path_type=Path))
@sigma_option(f"Noise standard deviation, {SCALE_NOTE}.", required=True)
@click.option("--seed", type=int, default=None, help="Seed for reproducible noise.")
@click.option("--float", "as_float", is_flag=True,
              help="Write float32 (TIFF only), unclipped. Default: the input's dtype, clipped and rounded.")
@overwrite_option
@jpeg_quality_option
@format_option
@verbose_option
def noise(input_path, output_path, sigma, seed, as_float, overwrite, jpeg_quality, fmt):
    """Add Gaussian noise to INPUT and write OUTPUT (the input's metadata kept, as ``denoise`` does).

    Integer outputs are clipped to the dtype's range and rounded (that is what the file can hold); use
    --float with a .tif OUTPUT to keep the exact Gaussian noise. INPUT or OUTPUT '-' is standard input or
    output.

    \b
    Examples:
      nlmeans noise clean.png noisy.png --sigma 20 --seed 1
      nlmeans noise clean.png noisy.tif --sigma 20 --float
      nlmeans noise clean.png - --sigma 20 | nlmeans denoise - clean2.png
    """
    import numpy as np

    from .._validate import from_float
    from ..noise import add_noise

    image, piped = read_input(input_path, fmt=fmt)
    claim_files(input_path, [output_path], overwrite=overwrite, fmt=fmt)
    out_fmt = output_format(input_path, fmt, piped)
    tiff_out = (out_fmt in ("tif", "tiff")) if output_path == STDIO else output_path.suffix.lower() in (
        ".tif", ".tiff")
    if as_float and not tiff_out:
        raise click.BadParameter("--float needs a .tif or .tiff OUTPUT", param_hint="--float")
    noisy = add_noise(image.data, sigma, seed=seed)
    out = noisy.astype(np.float32) if as_float else from_float(noisy, image.data.dtype)
    write_output(output_path, Image(out, image.alpha, image.meta), fmt=out_fmt, overwrite=overwrite,
                 jpeg_quality=jpeg_quality)
    say(f"{input_path.name} ({image.describe()}): added σ = {sigma_to_255(sigma):.2f}/255 noise "
        f"-> {output_path}", err=output_path == STDIO)
