"""Options shared by the commands: defined once, values converted once by their callbacks.

σ and h are given on the 0–255 scale on the command line whatever the file's bit depth (a float file: 255 ↔
1.0); the callbacks return them on the float image's scale of the Python API (``value / 255``), so the
commands pass them on unchanged.
"""

from __future__ import annotations

import math
from pathlib import Path

import click
import numpy as np

from .._validate import NOISE_MODELS, sigma_from_255
from ..io import (
    DEFAULT_JPEG_QUALITY,
    FORMATS,
    ImageIOError,
    check_output,
    check_writable,
    encode_image,
    input_set,
    read_image,
    read_image_bytes,
    remove_stale_partials,
    write_image,
)
from ..presets import METHODS
from .progress import say

SCALE_NOTE = "on the 0–255 scale whatever the file's bit depth (float files: 255 ↔ 1.0)"


def _to_float_scale(ctx, param, value):
    return sigma_from_255(value)


def _h_value(ctx, param, value):
    """``--h``: a positive number (0–255 scale) or ``auto``; returned on the float scale, "auto" or None."""
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
    return sigma_from_255(number)


def _odd_size(ctx, param, value):
    if value is not None and (value < 1 or value % 2 == 0):
        raise click.BadParameter(f"must be an odd positive integer (1, 3, 5, ...), got {value}")
    return value


def sigma_option(help_text=f"Noise standard deviation, {SCALE_NOTE}. Default: estimated from the image.",
                 **kwargs):
    """``--sigma`` on the 0–255 scale, handed to the command on the float scale. ``per_channel=True``: also
    one value per channel, separated by commas (a tuple on the float scale)."""
    kwargs.setdefault("default", None)
    if kwargs.pop("per_channel", False):
        return click.option("--sigma", type=str, callback=_sigma_values, metavar="SIGMA|S1,S2,...",
                            help=help_text, **kwargs)
    return click.option("--sigma", type=click.FloatRange(min=0, min_open=kwargs.pop("positive", False)),
                        callback=_to_float_scale, help=help_text, **kwargs)


def _sigma_values(ctx, param, value):
    """``--sigma`` of ``denoise``: a number >= 0, or one per channel separated by commas, on the 0–255 scale;
    returned on the float scale (a float, or a tuple for several values)."""
    if value is None:
        return None
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        numbers = [math.nan]
    if not all(0 <= n < math.inf for n in numbers):
        raise click.BadParameter(f"must be a number >= 0, or one per channel separated by commas (e.g. "
                                 f"5,20,35), on the 0–255 scale; got {value!r}")
    values = tuple(sigma_from_255(n) for n in numbers)
    return values[0] if len(values) == 1 else values


sigma_map_option = click.option(
    "--sigma-map", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, metavar="FILE",
    help="σ per pixel, instead of --sigma: a gray image, or a .npy or TIFF file of numbers, of INPUT's "
    "height×width (--volume/--video: slices×height×width, or height×width for every slice); its values are σ "
    f"{SCALE_NOTE}, as stored (an 8-bit map's 20 is σ 20/255). One map for every channel; NL-Bayes and "
    "pixelwise NL-means take it inside the kernel (--volume/--video: NL-Bayes; pixelwise runs once per σ "
    "level, in memory or in slabs). Strips, Dask and slabs read it strip (slab) by strip (.npy, TIFF).",
)


class SigmaMap:
    """A σ map file on the float image's scale, (H, W) (a stack's: (Z, H, W), ``ndim=3``): an array-like read
    rows (slices) at a time (``lazy``) or in memory (:meth:`load`), the values converted from the 0–255 scale
    (:func:`nlmeans._validate.sigma_from_255`) block by block the same way."""

    def __init__(self, values, ndim=2):
        self._values = values
        #: its :class:`~nlmeans.sigma_arrays.MapSummary` once :func:`open_sigma_map` has checked it
        self.summary = None
        self.shape = tuple(int(n) for n in values.shape[:ndim])
        self.dtype = np.dtype(np.float64)
        self.ndim = ndim

    def __getitem__(self, index):
        block = np.asarray(self._values[index], dtype=np.float64)
        return sigma_from_255(block[..., 0] if self.ndim == 2 and block.ndim == 3 else block)

    def load(self):
        """The whole map on the float scale, in memory."""
        return self[:]


def open_sigma_map(path, shape, *, lazy=False):
    """The ``--sigma-map`` file ``path`` for an INPUT of ``shape`` (H, W) or a stack's (Z, H, W): checked
    (one channel, numbers, the shape, every value finite and >= 0, a ``click.BadParameter`` otherwise) and
    returned as a :class:`SigmaMap` (a stack's (Z, H, W) map read slice by slice), or an ndarray on the float
    scale (a stack's (H, W) map for every slice)."""
    from ..io import read_values
    from ..sigma_arrays import summarize_sigma_map

    def bad(message):
        return click.BadParameter(f"{path}: {message}", param_hint="--sigma-map")

    values = read_values(path, lazy=lazy)
    dims = tuple(int(n) for n in values.shape)
    if len(dims) == 3 and dims[-1] == 1 and len(shape) == 2:
        dims = dims[:2]
    if np.dtype(values.dtype).kind not in "uif":
        raise bad(f"holds {values.dtype} values; a σ map holds numbers")
    allowed = [tuple(shape)] + ([tuple(shape[1:])] if len(shape) == 3 else [])
    if dims not in allowed:
        what = " or ".join("×".join(map(str, a)) for a in allowed)
        raise bad(f"has shape {'×'.join(map(str, dims))}; it must be {what} (INPUT's "
                  f"{'slices×' if len(shape) == 3 else ''}height×width, one channel)")
    sigma_map = SigmaMap(values, len(dims))
    plane = math.prod(dims[1:])  # a stack's map is checked slice by slice, each slice one row

    def read(y0, y1):
        return sigma_map[y0:y1].reshape(y1 - y0, plane)

    try:
        summary = summarize_sigma_map(read, dims[0], max(1, (1 << 24) // plane), name="its σ")
    except ValueError as exc:
        raise bad(str(exc)) from None
    if len(shape) == 3 and len(dims) == 2:
        return sigma_map.load()
    sigma_map.summary = summary  # strips, Dask and slabs take it instead of reading the file again for it
    return sigma_map


h_option = click.option(
    "--h", "h", type=str, default=None, callback=_h_value, metavar="H|auto",
    help=f"Filtering parameter of the NL-means methods, {SCALE_NOTE}, or 'auto': chosen by minimising "
    "Stein's unbiased risk estimate (Monte-Carlo SURE; without --patch the patch size too). Default: from the "
    "preset table by σ. Giving --h selects pixelwise NL-means unless --method says otherwise.",
)
guide_sigma_option = click.option(
    "--guide-sigma", type=click.FloatRange(min=0), default=None, callback=_to_float_scale,
    help=f"Noise level of the guide, {SCALE_NOTE}. Default: estimated; 0 for a clean guide.",
)
patch_option = click.option("--patch", type=int, default=None, callback=_odd_size,
                            help="Patch side, odd. Default: by σ (NL-means 3 to 9; NL-Bayes 5 or 7).")
search_option = click.option("--search", type=int, default=None, callback=_odd_size,
                             help="Search window side, odd. Default: by σ (NL-means 21; NL-Bayes 21 to 41).")
method_option = click.option(
    "--method", type=click.Choice(METHODS, case_sensitive=False), default=None,
    help="Estimator. Default: nlbayes (the best measured), or pixelwise when --h or --guide is given.",
)
noise_option = click.option(
    "--noise", type=click.Choice(NOISE_MODELS, case_sensitive=False),
    default="gaussian", show_default=True,
    help="Noise model: poisson (photon counts), poisson-gaussian (counts plus read noise), rician (MRI "
    "magnitude); these run the method inside a variance-stabilising transform with its exact unbiased inverse.",
)
overwrite_option = click.option(
    "--overwrite", is_flag=True, help="Replace OUTPUT if it exists (an input is never overwritten)."
)
VERBOSE_HELP = ("Show what the library decides (σ estimated, the method's fallback, h chosen by SURE) on stderr, "
                "and the full traceback when something fails.")
_verbose = click.option(
    "--verbose", "-v", is_flag=True, expose_value=False, is_eager=True,
    callback=lambda ctx, param, value: _set_flag(ctx, "verbose", value),
    help=VERBOSE_HELP,
)
_quiet = click.option(
    "--quiet", "-q", is_flag=True, expose_value=False, is_eager=True,
    callback=lambda ctx, param, value: _set_flag(ctx, "quiet", value),
    help="Print nothing on success: no summary, notes or progress (errors still print).",
)


def verbose_option(fn):
    """``--verbose/-v`` and ``--quiet/-q`` on a command (also accepted before the subcommand)."""
    return _verbose(_quiet(fn))


jpeg_quality_option = click.option(
    "--jpeg-quality", type=click.IntRange(1, 100), default=None, metavar="1-100",
    help=f"Quality of JPEG outputs, 1 (smallest) to 100 (best). Default: {DEFAULT_JPEG_QUALITY}.",
)
format_option = click.option(
    "--format", "fmt", type=click.Choice(list(FORMATS), case_sensitive=False), default=None,
    help="Format written to standard output (OUTPUT '-'; default: the input's) and of piped input whose "
    "first bytes do not tell (PNG, TIFF, JPEG and BMP are recognised).",
)
compare_option = click.option(
    "--compare", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="CMP.png",
    help="Also write a before/after picture: noisy | denoised, a 4x zoom of the most textured region of each, "
    "σ, the method and the time (never over an input; an existing file only with --overwrite).",
)

#: INPUT or OUTPUT '-': standard input or output
STDIO = Path("-")


def read_input(path, *, fmt=None, max_pixels=None):
    """The image at ``path``, or piped on standard input for '-' (format from its first bytes, else ``fmt``);
    returns (image, format name or None for files)."""
    if path == STDIO:
        import sys

        return read_image_bytes(sys.stdin.buffer.read(), fmt=fmt, max_pixels=max_pixels)
    return read_image(path, max_pixels=max_pixels), None


def check_stdout():
    """Refuse to write image data to a terminal (before any work)."""
    import sys

    if sys.stdout.isatty():
        raise click.UsageError("OUTPUT '-' writes the image to standard output, which is a terminal here; "
                               "redirect it (> out.png) or pipe it (| ...)")


def write_output(path, image, *, fmt=None, overwrite=False, jpeg_quality=None):
    """Write ``image`` to ``path``, or to standard output for '-' in ``fmt`` (encoded whole in memory first:
    an encoding error leaves no half image in the pipe)."""
    if path != STDIO:
        write_image(path, image, overwrite=overwrite, jpeg_quality=jpeg_quality)
        return
    import sys

    data = encode_image(image, fmt or "png", jpeg_quality=jpeg_quality)
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        import os

        # the reader is gone: what is still buffered goes nowhere, not into an error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise ImageIOError("standard output was closed before the whole image was written (broken pipe)") from None


def claim_files(input_path, outputs, *, overwrite, inputs=(), fmt=None):
    """:func:`claim_outputs` for commands that may read standard input and write standard output ('-'):
    the outputs other than '-' are claimed against the inputs other than '-'; a '-' output needs a
    non-terminal standard output."""
    files = [p for p in outputs if p is not None and p != STDIO]
    if any(p == STDIO for p in outputs):
        check_stdout()
    elif fmt is not None and input_path != STDIO:
        raise click.UsageError("--format is for standard input or output ('-'); a file's format comes from its "
                               "name")
    claim_outputs(files, inputs=[p for p in (input_path, *inputs) if p is not None and p != STDIO],
                  overwrite=overwrite, image=True)


def _set_flag(ctx, name, value):
    if value:
        ctx.ensure_object(dict)[name] = True
        root = ctx.find_root()
        root.ensure_object(dict)[name] = True


def claim_outputs(outputs, *, inputs, overwrite, folder=False, image=False):
    """Check every output of a command before any work (:func:`nlmeans.io.check_output`: never an input,
    never replaced without --overwrite, no two the same; ``image``: also a known image format) and remove the
    temporaries killed runs left next to them."""
    inputs = input_set(inputs)
    seen = {}
    for path in outputs:
        key = str(Path(path).resolve())
        if key in seen:
            raise click.UsageError(f"{seen[key]} and {path} are the same output file")
        seen[key] = path
        if image:
            check_writable(path, inputs=inputs, overwrite=overwrite)
        else:
            check_output(path, inputs=inputs, overwrite=overwrite, folder=folder)
    for folder_ in sorted({Path(p).parent for p in outputs}):
        removed = remove_stale_partials(folder_)
        if removed:
            say(f"removed {len(removed)} partial file(s) left by an interrupted run in {folder_}", err=True)


#: the sample images ``demo`` and ``eval`` use when given none: scikit-image ships them (the same files as the
#: repository's data/), so the commands work from any folder after ``pip install``
SAMPLE_IMAGES = ("camera.png", "astronaut.png", "brick.png")


def sample_image(name):
    """The path of one of scikit-image's bundled sample images (no download)."""
    from importlib.resources import files

    return Path(str(files("skimage.data").joinpath(name)))


def output_format(input_path, fmt, piped_format):
    """The format of OUTPUT '-': ``--format``, else the piped input's, else the input file's (by its name)."""
    if fmt or piped_format:
        return fmt or piped_format
    suffix = Path(input_path).suffix.lower()
    suffix = {".tiff": ".tif", ".jpeg": ".jpg"}.get(suffix, suffix)
    return next((name for name, s in FORMATS.items() if s == suffix), "png")  # other formats: PNG


def method_title(method):
    """A method's name for people: "NL-Bayes", "NL-means pixelwise", ..."""
    return "NL-Bayes" if method == "nlbayes" else f"NL-means {method}"


def write_compare(path, noisy, denoised, caption, *, channel_axis, overwrite):
    """Write the before/after picture of :func:`nlmeans.compare.compare_image` to ``path`` (claimed before the
    work like every output)."""
    from ..compare import compare_image

    write_image(path, compare_image(noisy, denoised, caption, channel_axis=channel_axis), overwrite=overwrite)


def h_text(used):
    """``"h = 8.00/255, "`` for the NL-means methods; empty for NL-Bayes, which has no h."""
    return "" if used.h is None else f"h = {used.h_255:.2f}/255, "


def sure_psnr(risk, data_range):
    """The PSNR (dB) that a SURE risk estimate stands for."""
    return math.inf if risk <= 0 else 10.0 * math.log10(data_range**2 / risk)
