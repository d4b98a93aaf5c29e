"""``nlmeans demo``: noise an image, denoise it with the defaults, print PSNR before and after."""

from __future__ import annotations

from pathlib import Path

import click

from .._validate import sigma_to_255
from ..io import read_image, write_image
from .options import (
    SCALE_NOTE,
    claim_outputs,
    compare_option,
    h_text,
    method_title,
    sample_image,
    sigma_option,
    verbose_option,
    write_compare,
)
from .progress import say, ticker, warm_up


@click.command()
@click.argument("image_path", metavar="[IMAGE]", required=False, default=None,
                type=click.Path(dir_okay=False, path_type=Path))
@sigma_option(f"Noise standard deviation to add, {SCALE_NOTE}.", default=20.0, show_default=True,
              positive=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the noise.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write noisy.png and denoised.png here (created if needed; never over IMAGE, existing "
                   "files only with --overwrite).")
@compare_option
@click.option("--overwrite", is_flag=True,
              help="Replace noisy.png and denoised.png in --out-dir, and --compare's file, if they exist.")
@verbose_option
def demo(image_path, sigma, seed, out_dir, compare, overwrite):
    """Noise IMAGE (default: the cameraman, camera.png of scikit-image's samples) at --sigma, denoise it with
    the defaults, print PSNR before and after.

    \b
    Examples:
      nlmeans demo
      nlmeans demo photo.png --sigma 30 --out-dir demo/
      nlmeans demo --compare before_after.png
    """
    import numpy as np

    from .._denoise import denoise
    from .._validate import from_float
    from ..metrics import psnr
    from ..noise import add_noise

    if image_path is None:
        image_path = sample_image("camera.png")
    image = read_image(image_path)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [out_dir / "noisy.png", out_dir / "denoised.png"]
        claim_outputs(written, inputs=[image_path], overwrite=overwrite)
    if compare is not None:
        claim_outputs([compare], inputs=[image_path], overwrite=overwrite, image=True)
    noisy = add_noise(image.data, sigma, seed=seed).astype(np.float32)
    import time

    def run(data):
        return denoise(data, sigma, channel_axis=image.channel_axis, return_settings=True)

    warm_up(run, noisy)  # numba's first-run compilation: announced on a terminal, not counted below
    start = time.perf_counter()
    with ticker(f"denoising {image_path.name}"):
        out, used = run(noisy)
    seconds = time.perf_counter() - start
    before, after = psnr(image.data, noisy), psnr(image.data, out)
    say(f"{image_path.name} ({image.describe()}), Gaussian noise σ = {sigma_to_255(sigma):g}/255, "
               f"seed {seed}")
    say(f"{method_title(used.method)}: patch {used.patch_size}, search {used.search_size}, {h_text(used)}"
        f"{seconds:.2f} s")
    say(f"PSNR noisy    {before:6.2f} dB")
    say(f"PSNR denoised {after:6.2f} dB  (+{after - before:.2f} dB)")
    kind = image.data.dtype if image.data.dtype.kind == "u" else np.uint8
    if out_dir is not None:
        for path, data in zip(written, (noisy, out), strict=True):
            write_image(path, from_float(data, kind), overwrite=overwrite)
        say(f"wrote {written[0]} and {written[1]}")
    if compare is not None:
        caption = (f"left: {image_path.name} + Gaussian noise, sigma {sigma_to_255(sigma):g}/255 (0-255 scale), "
                   f"seed {seed}, PSNR {before:.2f} dB | right: denoised, {method_title(used.method)}, "
                   f"{h_text(used)}patch {used.patch_size}, search {used.search_size}, {seconds:.2f} s, "
                   f"PSNR {after:.2f} dB")
        write_compare(compare, from_float(noisy, kind), from_float(out, kind), caption,
                      channel_axis=image.channel_axis, overwrite=overwrite)
        say(f"wrote {compare}")
