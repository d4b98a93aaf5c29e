"""``nlmeans noise``: add Gaussian noise to an image file."""

from __future__ import annotations

from pathlib import Path

import click

from .._validate import sigma_to_255
from ..io import Image, read_image, write_image
from .options import SCALE_NOTE, claim_outputs, overwrite_option, sigma_option, verbose_option
from .progress import say


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False, path_type=Path))
@sigma_option(f"Noise standard deviation, {SCALE_NOTE}.", required=True)
@click.option("--seed", type=int, default=None, help="Seed for reproducible noise.")
@click.option("--float", "as_float", is_flag=True,
              help="Write float32 (TIFF only), unclipped. Default: the input's dtype, clipped and rounded.")
@overwrite_option
@verbose_option
def noise(input_path, output_path, sigma, seed, as_float, overwrite):
    """Add Gaussian noise to INPUT and write OUTPUT.

    Integer outputs are clipped to the dtype's range and rounded (that is what the file can hold); use
    --float with a .tif OUTPUT to keep the exact Gaussian noise.

    \b
    Examples:
      nlmeans noise clean.png noisy.png --sigma 20 --seed 1
      nlmeans noise clean.png noisy.tif --sigma 20 --float
    """
    import numpy as np

    from .._validate import from_float
    from ..noise import add_noise

    image = read_image(input_path)
    claim_outputs([output_path], inputs=[input_path], overwrite=overwrite, image=True)
    if as_float and output_path.suffix.lower() not in (".tif", ".tiff"):
        raise click.BadParameter("--float needs a .tif or .tiff OUTPUT", param_hint="--float")
    noisy = add_noise(image.data, sigma, seed=seed)
    out = noisy.astype(np.float32) if as_float else from_float(noisy, image.data.dtype)
    write_image(output_path, Image(out, image.alpha), overwrite=overwrite)
    say(f"{input_path.name} ({image.describe()}): added σ = {sigma_to_255(sigma):.2f}/255 noise "
               f"-> {output_path}")
