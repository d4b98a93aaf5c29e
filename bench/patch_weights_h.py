"""Flat vs Gaussian-weighted patch distance (pixelwise NL-means), each at several multiples of the preset h.

Same standard set, crops, seeds and noise as bench/nl_family.py; mean PSNR over the set at σ = 20 and 50.

    PYTHONPATH=.:bench python bench/patch_weights_h.py > bench/results/patch_weights_h.txt
"""

from __future__ import annotations

import numpy as np
from nl_family import standard_set

import nlmeans

VARIANTS = [  # (name, patch_weights, multiple of the preset h)
    ("flat h", "flat", 1.0), ("flat 1.25h", "flat", 1.25), ("flat 1.5h", "flat", 1.5),
    ("gaussian h", "gaussian", 1.0), ("gaussian 1.25h", "gaussian", 1.25), ("gaussian 1.5h", "gaussian", 1.5),
    ("gaussian 1.75h", "gaussian", 1.75), ("gaussian 2h", "gaussian", 2.0),
]


def main():
    images = standard_set(128)
    print("mean PSNR (dB) over", len(images), "images, 128×128 crops; gaussian: patch_sigma = P/2 (default)")
    for s255 in (20, 50):
        s = s255 / 255
        res = {}
        for k, clean in enumerate(images.values()):
            axis = None if clean.ndim == 2 else -1
            noisy = nlmeans.add_noise(clean, s, seed=1000 + k).astype(np.float32)
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
