"""``nlmeans noise-level``: the noise model's parameters estimated from one image file."""

from __future__ import annotations

from pathlib import Path

import click

from .._validate import NOISE_MODELS
from ..io import read_image
from .options import verbose_option


@click.command("noise-level")
@click.argument("input_path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--noise", type=click.Choice(NOISE_MODELS, case_sensitive=False), default=None,
              help="Estimate this model only. Default: the Gaussian σ (per channel too for a color image) and "
                   "the Poisson–Gaussian noise-level function.")
@verbose_option
def noise_level(input_path, noise):
    """Print the noise model estimated from FILE.

    Gaussian and Rician σ on the 0–255 scale (float files: 255 ↔ 1.0); the Poisson models' gain (gray levels
    per count) and read-noise σ in the file's own units, as ``nlmeans denoise --noise ... --gain`` takes them.

    \b
    Examples:
      nlmeans noise-level noisy.png
      nlmeans noise-level counts.tif --noise poisson
    """
    from .._validate import sigma_to_255
    from ..noise_level import estimate_noise, estimate_sigma

    image = read_image(input_path)
    axis = image.channel_axis
    models = [noise] if noise else ["gaussian", "poisson-gaussian"]
    click.echo(f"{input_path.name} ({image.describe()}):")
    for model in models:
        try:
            est = estimate_noise(image.data, noise=model, channel_axis=axis)
        except ValueError as exc:
            if noise:  # the model asked for: its failure is the command's error
                raise
            # the default report tries every model: one that does not fit this image is a finding, not an error
            click.echo(f"  {model}: no fit ({exc})")
            continue
        if model in ("gaussian", "rician"):
            line = f"σ = {sigma_to_255(est.sigma):.2f}/255"
            if model == "gaussian" and axis is not None:
                per = estimate_sigma(image.data, channel_axis=axis, per_channel=True)
                line += " (per channel: " + ", ".join(f"{sigma_to_255(s):.2f}" for s in per) + ")"
        else:
            line = f"gain = {est.gain:.4g}" + (f", σ = {est.sigma:.4g}" if model == "poisson-gaussian" else "")
            line += " (file units: variance = gain · value + σ²)"
        click.echo(f"  {model}: {line}")
