"""The standard image set of issue #6 (crops), shared by the quality measurement scripts in bench/.

Gray: data/camera, data/brick and scikit-image's moon, page, cell, microaneurysms.
Color: data/astronaut, immunohistochemistry, hubble_deep_field, retina.
Every image is cropped to at most ``size`` × ``size`` (a fixed, documented window) and scaled to [0, 1] float64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"

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
    return name in _COLOR


RESULTS = Path(__file__).resolve().parent / "results"


def arg_parser(doc, sigmas=SIGMAS_255):
    """The command-line parser shared by the bench scripts: ``--size`` (crop side) and ``--sigmas`` (0–255)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="crop side (default 256)")
    parser.add_argument("--sigmas", type=int, nargs="+", default=list(sigmas), help="σ on the 0–255 scale")
    return parser
