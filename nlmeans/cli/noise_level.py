"""``nlmeans noise-level``: the noise model's parameters estimated from one image file or one stack."""

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
@click.option("--volume", is_flag=True,
              help="FILE is a 3-D volume (multi-page TIFF Z×Y×X, or .zarr): estimated on up to 8 evenly spaced "
                   "slices, read one at a time, as `nlmeans denoise --volume` estimates it.")
@click.option("--video", is_flag=True, help="FILE is a stack of frames (T×Y×X): as --volume, on frames.")
@verbose_option
def noise_level(input_path, noise, volume, video):
    """Print the noise model estimated from FILE.

    Gaussian and Rician σ on the 0–255 scale (float files: 255 ↔ 1.0); the Poisson models' gain (gray levels
    per count) and read-noise σ in the file's own units, as ``nlmeans denoise --noise ... --gain`` takes them.
    A stack (--volume/--video) gets the numbers ``nlmeans denoise`` would use for it.

    \b
    Examples:
      nlmeans noise-level noisy.png
      nlmeans noise-level counts.tif --noise poisson
      nlmeans noise-level stack.tif --volume
    """
    from .._validate import sigma_to_255

    if volume and video:
        raise click.UsageError("--volume and --video exclude each other")
    source = _stack_source(input_path, "volume" if volume else "video") if volume or video else _image_source(
        input_path)
    models = [noise] if noise else ["gaussian", "poisson-gaussian"]
    click.echo(f"{input_path.name} ({source.what}):")
    for model in models:
        try:
            est = source.estimate(model)
        except ValueError as exc:
            if noise:  # the model asked for: its failure is the command's error
                raise
            # the default report tries every model: one that does not fit this image is a finding, not an error
            click.echo(f"  {model}: no fit ({exc})")
            continue
        if model in ("gaussian", "rician"):
            line = f"σ = {sigma_to_255(est.sigma):.2f}/255"
            if model == "gaussian" and source.colour:
                line += " (per channel: " + ", ".join(f"{sigma_to_255(s):.2f}" for s in source.per_channel()) + ")"
        else:
            line = f"gain = {est.gain:.4g}" + (f", σ = {est.sigma:.4g}" if model == "poisson-gaussian" else "")
            line += " (file units: variance = gain · value + σ²)"
        click.echo(f"  {model}: {line}")


class _Source:
    """What the report needs of a file: its description, ``estimate(model)`` (a
    :class:`nlmeans.noise_level.NoiseEstimate`), whether it has colour channels, ``per_channel()`` (σ each)."""

    def __init__(self, what, estimate, colour, per_channel):
        self.what, self.estimate, self.colour, self.per_channel = what, estimate, colour, per_channel


def _image_source(input_path):
    from ..noise_level import estimate_noise, estimate_sigma

    image = read_image(input_path)
    axis = image.channel_axis
    return _Source(image.describe(), lambda model: estimate_noise(image.data, noise=model, channel_axis=axis),
                   axis is not None, lambda: estimate_sigma(image.data, channel_axis=axis, per_channel=True))


def _stack_source(input_path, kind):
    """A stack read slice by slice, its sampled slices (:func:`nlmeans.volume._sample_slices`) read once: the
    Gaussian σ as :func:`nlmeans.denoise_volume` estimates it when left out (the mean over those slices), the
    other models fitted on them together as it fits them."""
    import numpy as np

    from ..io import open_stack
    from ..noise_level import NoiseEstimate, estimate_sigma
    from ..volume import _model_of_planes, _sample_slices, _sigma_of_planes

    stack = open_stack(input_path, kind=kind)
    shape = tuple(int(n) for n in stack.shape)
    colour = len(shape) == 4
    planes = _sample_slices(stack, 3 if colour else None, 0, shape[0])
    noun = "slices" if kind == "volume" else "frames"
    what = (f"{kind} {'×'.join(map(str, shape))}, {np.dtype(stack.dtype).name}; {len(planes)} {noun} sampled")

    def estimate(model):
        if model == "gaussian":
            return NoiseEstimate("gaussian", _sigma_of_planes(planes, colour))
        return _model_of_planes(planes, colour, model)

    def per_channel():
        return np.mean([estimate_sigma(p, channel_axis=-1, per_channel=True) for p in planes], axis=0)

    return _Source(what, estimate, colour, per_channel)
