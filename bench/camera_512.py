"""NL-Bayes (the default method) vs pixelwise NL-means vs BM3D on the full 512×512 camera, side by side.

    python -m bench.camera_512 > bench/results/camera_512.txt
"""

from __future__ import annotations

import argparse
import time

import bm3d
import numpy as np

import nlmeans
from nlmeans.io import read_image

from . import _common as common


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    cam = read_image(common.DATA / "camera.png").data
    print("data/camera.png 512×512 gray, noise seed 0, float32, σ given; wall-clock seconds (shared machine)")
    for s255 in (20, 50):
        s = s255 / 255
        noisy = common.add_noise(cam, s255, seed=0).astype(np.float32)
        nlmeans.denoise(noisy[:64, :64], s)  # compile
        runs = {
            "nlbayes": lambda x, s: nlmeans.denoise(x, s, method="nlbayes"),
            "pixelwise": lambda x, s: nlmeans.denoise(x, s, method="pixelwise"),
            "bm3d": lambda x, s: bm3d.bm3d(x, sigma_psd=s),
        }
        for name, fn in runs.items():
            t = time.perf_counter()
            out = fn(noisy, s)
            dt = time.perf_counter() - t
            print(f"σ = {s255}: {name:10s} {nlmeans.psnr(cam, out):6.2f} dB {dt:6.2f} s", flush=True)


if __name__ == "__main__":
    main()
