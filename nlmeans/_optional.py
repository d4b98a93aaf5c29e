"""Optional dependencies, in one place: whether one is installed, and importing it or saying how to get it."""

from __future__ import annotations

import importlib
import importlib.util

#: top-level package -> the extra of ``pip install "nlmeans[EXTRA]"`` that installs it
EXTRAS = {"dask": "scale", "distributed": "scale", "zarr": "scale", "matplotlib": "plot", "cv2": "bench",
          "bm3d": "bench"}


#: top-level package -> the distribution that installs it, for packages no extra is about (Pillow comes with
#: imageio; only a broken install lacks it)
PACKAGES = {"PIL": "pillow"}


def install_hint(module):
    """``pip install "nlmeans[extra]"`` for ``module`` (its top-level package's extra), or ``pip install
    PACKAGE`` for the packages of :data:`PACKAGES`."""
    top = module.split(".")[0]
    if top in PACKAGES:
        return f"pip install {PACKAGES[top]}"
    return f'pip install "nlmeans[{EXTRAS.get(top, "bench")}]"'


def available(module):
    """Whether ``module`` can be imported here (a broken or half-imported package counts as missing)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module, what):
    """Import ``module`` for ``what`` (a feature's name), or raise ImportError saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs {module.split('.')[0]}: {install_hint(module)}") from exc
