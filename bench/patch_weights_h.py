"""Flat vs Gaussian-weighted patch distance (pixelwise NL-means), each at several multiples of the preset h.

The standard set as bench/nl_family.py uses it (crops of at most 128², float32, noise seed 0); mean PSNR over
the set at σ = 20 and 50.

    python -m bench.patch_weights_h > bench/results/patch_weights_h.txt
"""

from __future__ import annotations

import argparse

import numpy as np

import nlmeans

from . import _common as common
from .nl_family import standard_set

VARIANTS = [  # (name, patch_weights, multiple of the preset h)
    ("flat h", "flat", 1.0), ("flat 1.25h", "flat", 1.25), ("flat 1.5h", "flat", 1.5),
    ("gaussian h", "gaussian", 1.0), ("gaussian 1.25h", "gaussian", 1.25), ("gaussian 1.5h", "gaussian", 1.5),
    ("gaussian 1.75h", "gaussian", 1.75), ("gaussian 2h", "gaussian", 2.0),
]


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    images = standard_set(128)
    print("mean PSNR (dB) over", len(images), "images, crops of at most 128×128; gaussian: patch_sigma = P/2 "
          "(default)")
    for s255 in (20, 50):
        s = s255 / 255
        res = {}
        for clean in images.values():
            axis = None if clean.ndim == 2 else -1
            noisy = common.add_noise(clean, s255, seed=0)
            # the preset h (independent of the size)
            h0 = nlmeans.denoise(noisy[:8, :8], s, method="pixelwise", channel_axis=axis,
                                 patch_size=1, search_size=1, return_settings=True)[1].h
            for name, weights, mult in VARIANTS:
                out = nlmeans.denoise(noisy, s, method="pixelwise", channel_axis=axis, h=mult * h0,
                                      patch_weights=weights)
                res.setdefault(name, []).append(nlmeans.psnr(clean, out))
        print(f"σ = {s255}: " + ", ".join(f"{n} {np.mean(v):.2f}" for n, v in res.items()), flush=True)


if __name__ == "__main__":
    main()
