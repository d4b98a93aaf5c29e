"""What every bench script shares: the standard image set, the noise-seed policy, paths and the parser.

**Standard set** (issue #6): gray data/camera, data/brick and scikit-image's moon, page, cell, microaneurysms;
color data/astronaut, immunohistochemistry, hubble_deep_field, retina. Every image is cut to a fixed,
documented window of at most ``size`` × ``size`` (corners picked once to include texture and detail, never
tuned) and scaled to [0, 1] float64.

**Seed policy**: the k-th noise draw of an (image, σ) uses seed k, k = 0 … N − 1 (``--seeds N``), the same
seeds for every image and σ; a script that draws once uses seed 0 (the first draw of any multi-draw run).
Noise is ``nlmeans.add_noise(clean, σ/255, seed)`` (Gaussian, not clipped), so every method of one run gets
the same noisy image. This is the policy of ``python -m bench.quality --standard`` (bench/results/
quality_margins.md), the latest published quality results.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
RESULTS = Path(__file__).resolve().parent / "results"

#: name -> (loader, top-left corner of the crop); corners picked once to include texture/detail, never tuned
_GRAY = {
    "camera": ("file:camera.png", (100, 150)),
    "brick": ("file:brick.png", (0, 0)),
    "moon": ("skimage:moon", (128, 128)),
    "page": ("skimage:page", (0, 64)),
    "cell": ("skimage:cell", (200, 150)),
    "microaneurysms": ("skimage:microaneurysms", (0, 0)),
}
_COLOR = {
    "astronaut": ("file:astronaut.png", (0, 128)),
    "immunohistochemistry": ("skimage:immunohistochemistry", (128, 128)),
    "hubble_deep_field": ("skimage:hubble_deep_field", (300, 400)),
    "retina": ("skimage:retina", (500, 300)),
}
SIGMAS_255 = (10, 20, 30, 50)


def _load(spec):
    kind, name = spec.split(":", 1)
    if kind == "file":
        from nlmeans.io import read_image

        return read_image(DATA / name).data
    import skimage.data

    return getattr(skimage.data, name)()


def load(name, size=256):
    """One image of the set, cropped, float64 on [0, 1]; (H, W) gray or (H, W, 3) color."""
    spec, (y0, x0) = {**_GRAY, **_COLOR}[name]
    arr = _load(spec)
    arr = arr[y0 : y0 + size, x0 : x0 + size]
    return arr.astype(np.float64) / 255.0


def names(kind="all"):
    """Image names: ``"gray"``, ``"color"`` or ``"all"``."""
    return {"gray": list(_GRAY), "color": list(_COLOR), "all": list(_GRAY) + list(_COLOR)}[kind]


def is_color(name):
    """Whether ``name`` is one of the set's color images (channels last)."""
    return name in _COLOR


def seeds(n=1):
    """The noise seeds of ``n`` draws per (image, σ): 0, 1, …, n − 1."""
    return range(n)


def add_noise(clean, sigma_255, seed=0):
    """``clean`` plus Gaussian noise of σ = ``sigma_255``/255 (not clipped), drawn with ``seed``.

    The result has ``nlmeans.add_noise``'s dtype (float32 for float32 input, float64 otherwise).
    """
    import nlmeans

    return nlmeans.add_noise(clean, sigma_255 / 255, seed=seed)


def arg_parser(doc, sigmas=SIGMAS_255, size=256):
    """The command-line parser shared by the bench scripts: ``--size`` (crop side) and ``--sigmas`` (0–255)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--size", type=int, default=size, help=f"crop side (default {size})")
    parser.add_argument("--sigmas", type=int, nargs="+", default=list(sigmas), help="σ on the 0–255 scale")
    return parser
