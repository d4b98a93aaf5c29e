"""Rician noise: the squared-domain estimate in dark regions, a grid of its parameters (issue #18).

``nlmeans.denoise(noisy, σ, noise="rician")`` inverts its stabilised estimate x̂ and then, where x̂ is dark,
moves to sqrt(max(m₂ − 2σ², 0)), m₂ the guided NL-means mean of y² with x̂ as the guide
(``nlmeans.noise_models.rician_dark_correction``; parameters ``nlmeans.presets.RICIAN_*``). This script takes
the estimate without that step (the "pilot") once per (image, SNR) and applies the step with every point of a
grid: h / σ, the search window, and the dark band [lo σ, hi σ] over which the result moves from the squared
estimate (below lo σ) to the pilot (above hi σ). Images: bench/real_noise.py's five MRI-like images at SNR 5,
10, 20 (seed 0, σ from ``nlmeans.noise_models.rician_sigma_for_snr``). Prints PSNR per case and the grid
points ranked by the mean over the 15 cases; the pilot's mean for reference.

    python -m bench.rician_dark [--size 256] [--method nlbayes|pixelwise]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

import nlmeans
from bench.real_noise import SNRS, _mri_images, _psnr
from nlmeans import noise_models, presets

H_OVER_SIGMA = (0.5, 0.7, 0.9)
SEARCH = (31, 45, 61, 81, 101)
BANDS = ((1.0, 3.0), (1.25, 3.75))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="phantom side (default 256)")
    parser.add_argument("--method", default="nlbayes", help="the method of the pilot (default nlbayes)")
    args = parser.parse_args()
    step = noise_models.rician_dark_correction
    saved = {name: getattr(presets, name) for name in ("RICIAN_DARK", "RICIAN_SQUARED_H", "RICIAN_SQUARED_SEARCH")}
    grid = list(itertools.product(H_OVER_SIGMA, SEARCH, BANDS))
    scores = {}
    try:
        for name, clean in _mri_images(args.size).items():
            for snr in SNRS:
                sigma = noise_models.rician_sigma_for_snr(clean, snr)
                noisy = nlmeans.add_noise(clean, sigma, noise="rician", seed=0)
                noise_models.rician_dark_correction = lambda denoise, y, est, s, axis: est  # the pilot
                pilot = nlmeans.denoise(noisy, sigma, noise="rician", method=args.method)
                noise_models.rician_dark_correction = step
                row = [_psnr(clean, pilot)]
                for c, search, band in grid:
                    presets.RICIAN_SQUARED_H, presets.RICIAN_SQUARED_SEARCH, presets.RICIAN_DARK = c, search, band
                    row.append(_psnr(clean, step(nlmeans.denoise, noisy, pilot, sigma, None)))
                scores[name, snr] = row
                print(name, snr, " ".join(f"{v:.2f}" for v in row), flush=True)
    finally:
        noise_models.rician_dark_correction = step
        for key, value in saved.items():
            setattr(presets, key, value)
    means = np.mean(list(scores.values()), axis=0)
    labels = ["pilot (no dark step)"] + [f"h {c}σ, search {s}, band {b[0]}–{b[1]} σ" for c, s, b in grid]
    print(f"\nmean over {len(scores)} cases ({args.method}):")
    for label, value in sorted(zip(labels, means, strict=True), key=lambda item: -item[1]):
        print(f"{value:.3f}  {label}")


if __name__ == "__main__":
    main()
