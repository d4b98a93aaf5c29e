"""``nlmeans eval``: the noise-and-evaluate experiment against the classical baselines."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from .._optional import available, install_hint
from .._validate import NOISE_MODELS
from ..io import read_image
from .options import SAMPLE_IMAGES, SCALE_NOTE, claim_outputs, sample_image, verbose_option
from .progress import compiling, resume_gc, say, show_progress


def _number_list(ctx, param, value):
    """Comma-separated positive numbers (None when the option is not given)."""
    if value is None:
        return None
    try:
        numbers = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"must be comma-separated numbers, e.g. 10,20,30; got {value!r}") from None
    if not numbers or any(not (s > 0 and s < float("inf")) for s in numbers):
        unit = " (0–255 scale)" if param.name == "sigmas" else ""
        raise click.BadParameter(f"needs one or more positive numbers{unit}, got {value!r}")
    return numbers


def _method_list(ctx, param, value):
    from ..eval.experiment import resolve_methods

    try:
        return resolve_methods(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("eval")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--noise", type=click.Choice(NOISE_MODELS), default="gaussian", show_default=True,
              help="Noise model to add. poisson / poisson-gaussian: counts drawn at each --peak (and read noise "
                   "σ = --sigma); rician: each --snr or --sigma. Every method then denoises the variance-"
                   "stabilised image with σ = 1 there, and the exact unbiased inverse maps it back.")
@click.option("--sigma", "sigmas", default=None, callback=_number_list,
              help=f"Noise levels, comma-separated, {SCALE_NOTE}: the Gaussian σ (default 10,20,30), the read "
                   "noise of poisson-gaussian, or the Rician σ.")
@click.option("--peak", "peaks", default=None, callback=_number_list,
              help="poisson and poisson-gaussian: peaks, comma-separated, > 0: the mean photon count at the "
                   "clean image's white (e.g. 1,4,10,30; lower is noisier).")
@click.option("--snr", "snrs", default=None, callback=_number_list,
              help="rician: signal-to-noise ratios, comma-separated, > 0 (σ = mean of the foreground, values "
                   "above 5 % of the maximum, / SNR); or give --sigma.")
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
              help="Write the records as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the records as CSV.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write PSNR-vs-σ, montage and method-noise PNGs into this folder (created if needed; the "
                   "files it would write must not be inputs nor exist, unless --overwrite). Needs matplotlib.")
@click.option("--overwrite", is_flag=True, help="Replace the --json, --csv and --plots files if they exist.")
@click.option("--list", "list_methods", is_flag=True, help="List the methods with their σ rules and exit.")
@verbose_option
def eval_(images, noise, sigmas, peaks, snrs, seeds, methods, tune, crop, json_path, csv_path, plots_dir,
          overwrite, list_methods):
    """Noise IMAGES at each --sigma, denoise with each method, and rank them by PSNR.

    IMAGES are files or folders (default: camera, astronaut and brick, scikit-image's samples). For each image
    × σ × seed the noise is nlmeans.add_noise(image, σ/255, seed) (unclipped, float); every method gets the
    same noisy image and the true σ, and derives its parameters from σ by its documented rule (or, with
    --tune, the oracle's best of a small grid). PSNR and SSIM on the [0, 1] scale; time is wall time per call,
    numba compilation excluded. With --noise poisson, poisson-gaussian or rician every method runs inside
    the same variance-stabilising transform and exact unbiased inverse, scored against the clean image.

    \b
    Examples:
      nlmeans eval --list
      nlmeans eval photo.png --sigma 10,20,30 --methods nlmeans,bm3d,tv,wiener
      nlmeans eval data/ --tune --crop 128 --json results.json --plots plots/
      nlmeans eval cells.png --noise poisson --peak 1,4,10,30 --methods nlmeans,bm3d
      nlmeans eval mri.png --noise rician --snr 5,10,20
    """
    from ..eval.experiment import (
        format_table,
        image_files,
        noise_settings,
        rules_table,
        run_experiment,
        write_csv,
        write_json,
    )

    if list_methods:
        click.echo(rules_table(markdown=False))
        return
    if noise == "gaussian" and sigmas is None:
        sigmas = [10.0, 20.0, 30.0]
    option_names = {"sigmas": "--sigma", "peaks": "--peak", "snrs": "--snr", "noise": "--noise {}"}
    try:
        with warnings.catch_warnings():  # a warning about the levels comes once, from the run itself
            warnings.simplefilter("ignore")
            noise_settings(noise, sigmas, peaks, snrs, names=option_names)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if plots_dir is not None and noise != "gaussian":
        raise click.BadParameter("the plots are drawn against the Gaussian σ; use --json/--csv with "
                                 f"--noise {noise}", param_hint="--plots")
    if not images:
        images = tuple(sample_image(name) for name in SAMPLE_IMAGES)
    files = image_files(images)
    if plots_dir is not None:

        if not available("matplotlib"):
            raise click.BadParameter(f"needs matplotlib: {install_hint('matplotlib')}", param_hint="--plots")
    stems = {}
    for f in files:
        if f.stem in stems:
            raise ValueError(f"two images are called {f.stem!r}; rename one")
        stems[f.stem] = f
    outputs = [p for p in (json_path, csv_path) if p is not None]
    if plots_dir is not None:
        from ..eval.plots import plot_paths

        plots_dir.mkdir(parents=True, exist_ok=True)
        outputs += plot_paths(stems, sigmas, plots_dir)
    claim_outputs(outputs, inputs=files, overwrite=overwrite)
    named = {stem: read_image(f).data for stem, f in stems.items()}
    resume_gc()  # a long run: the collector is on for it
    records, gallery = run_experiment(named, sigmas, methods, seeds, tune, crop=crop, progress=show_progress(),
                                      keep_images=plots_dir is not None, noise=noise, peaks=peaks, snrs=snrs,
                                      warming=compiling)
    say(format_table(records))
    if json_path is not None:
        write_json(records, json_path, overwrite=overwrite)
        say(f"wrote {len(records)} records to {json_path}")
    if csv_path is not None:
        write_csv(records, csv_path, overwrite=overwrite)
        say(f"wrote {len(records)} records to {csv_path}")
    if plots_dir is not None:
        from ..eval.plots import write_plots

        paths = write_plots(records, gallery, plots_dir, overwrite=overwrite)
        say(f"wrote {len(paths)} plots to {plots_dir}")


