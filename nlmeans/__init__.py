"""nlmeans: exact, fast Non-Local Means image denoising.

Public API: :func:`denoise`, :func:`add_noise`, :func:`estimate_sigma`, :func:`estimate_noise`, :func:`psnr`,
:func:`ssim`, :func:`evaluate` (the noise-and-evaluate experiment; denoisers in :mod:`nlmeans.methods`).
σ and h are on the float image's scale (integer images are scaled to [0, 1]); the command line uses 0–255.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nlmeans")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from .denoise import denoise  # noqa: E402
from .evaluate import evaluate  # noqa: E402
from .metrics import psnr, ssim  # noqa: E402
from .noise import add_noise  # noqa: E402
from .noise_level import estimate_noise, estimate_sigma  # noqa: E402
from .tiles import denoise_tiled  # noqa: E402
from .volume import denoise_video, denoise_volume  # noqa: E402

__all__ = ["__version__", "add_noise", "denoise", "estimate_noise", "estimate_sigma", "evaluate", "psnr", "ssim"]
__all__ += ["denoise_tiled", "denoise_video", "denoise_volume"]


def __getattr__(name):
    # `nlmeans.dask` (the optional `scale` extra) is imported on first use, not with the package
    if name == "dask":
        import importlib

        return importlib.import_module(".dask", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
