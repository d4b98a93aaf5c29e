"""nlmeans: Non-Local Means and NL-Bayes image denoising with a numba core.

Public API: :func:`denoise` (NL-Bayes by default; pixelwise and patchwise NL-means; Gaussian, Poisson,
Poisson–Gaussian and Rician noise), :func:`denoise_tiled`, :func:`denoise_volume`, :func:`denoise_video`,
:func:`add_noise`, :func:`estimate_sigma`, :func:`estimate_noise`, :func:`psnr`, :func:`ssim`,
:func:`evaluate` (the noise-and-evaluate experiment; denoisers in :mod:`nlmeans.eval.registry`) and
:mod:`nlmeans.dask` (the ``scale`` extra). σ and h are on the float image's scale (integer images are scaled
to [0, 1]); the command line uses the 0–255 scale.

The names are loaded on first use (PEP 562), so ``import nlmeans`` costs neither numba, scipy nor
scikit-image: the command line's ``--help`` and a script that only reads files start fast.
"""

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the real signatures; at run time __getattr__ loads them on first use
    # ("import x as x": the explicit re-export of PEP 484)
    from . import dask as dask
    from . import eval as eval
    from . import io as io
    from . import presets as presets
    from . import sure as sure
    from . import tiles as tiles
    from . import volume as volume
    from ._denoise import denoise as denoise
    from .eval.experiment import evaluate as evaluate
    from .metrics import psnr as psnr
    from .metrics import ssim as ssim
    from .noise import add_noise as add_noise
    from .noise_level import estimate_noise as estimate_noise
    from .noise_level import estimate_sigma as estimate_sigma
    from .tiles import denoise_tiled as denoise_tiled
    from .volume import denoise_video as denoise_video
    from .volume import denoise_volume as denoise_volume

# the library's messages (σ estimated, parameters chosen, ...) go to logging.getLogger("nlmeans"); silent
# unless the application configures logging (the command line's --verbose does)
logging.getLogger(__name__).addHandler(logging.NullHandler())

#: public name -> the module that defines it
_PUBLIC = {
    "add_noise": "noise",
    "denoise": "_denoise",
    "denoise_tiled": "tiles",
    "denoise_video": "volume",
    "denoise_volume": "volume",
    "estimate_noise": "noise_level",
    "estimate_sigma": "noise_level",
    "evaluate": "eval.experiment",
    "psnr": "metrics",
    "ssim": "metrics",
}
#: submodules reachable as attributes without an explicit import (``nlmeans.dask`` needs the ``scale`` extra)
_SUBMODULES = ("dask", "eval", "io", "presets", "sure", "tiles", "volume")

__all__ = ["__version__", *sorted(_PUBLIC)]


def _version() -> str:
    # importlib.metadata costs 14-27 ms: read only when asked, so that the command lines that do not load numba
    # (which imports it) skip it
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nlmeans")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = globals()["__version__"] = _version()
        return value
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC) | set(_SUBMODULES) | {"__version__"})
