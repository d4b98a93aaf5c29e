"""Is IPOL's "centre weight = largest weight among the other candidates" tweak worth a kernel change?

    python -m bench.centre_weight [--size 128]

A vectorised numpy NL-means (one offset at a time, box-filtered squared differences, reflect padding) with
the centre pixel's weight either 1 (our kernel; checked equal to nlmeans.denoise to 1e-10) or the maximum
of the other weights (IPOL 2011). For each image crop (six of the standard set, bench/_common.py) and σ,
noise seed 0, the PSNR at the best h/σ of K_GRID for each variant; prints the mean over the images.
Writes bench/results/centre_weight.json.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import nlmeans

from . import _common as common

IMAGES = ("camera", "brick", "moon", "astronaut", "immunohistochemistry", "hubble_deep_field")
K_GRID = (0.4, 0.55, 0.7, 0.85, 1.0)


def _box_mean(a, p):
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
    np.cumsum(np.cumsum(a, axis=0), axis=1, out=c[1:, 1:])
    return (c[p:, p:] - c[:-p, p:] - c[p:, :-p] + c[:-p, :-p]) / (p * p)


def nlm_numpy(v, sigma, h, patch, search, centre="one"):
    """Pixelwise NL-means on (C, H, W) float64 ``v``; ``centre`` is "one" or "max"."""
    f, r = patch // 2, search // 2
    C, H, W = v.shape
    pad = r + f
    vp = np.pad(v, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    ref = vp[:, r : r + H + 2 * f, r : r + W + 2 * f]
    acc = np.zeros((C, H, W))
    wsum = np.zeros((H, W))
    wmax = np.zeros((H, W))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy == 0 and dx == 0:
                continue
            other = vp[:, r + dy : r + dy + H + 2 * f, r + dx : r + dx + W + 2 * f]
            d2 = _box_mean(((ref - other) ** 2).sum(axis=0), patch) / C
            w = np.exp(-np.maximum(d2 - 2 * sigma**2, 0) / h**2)
            acc += w * other[:, f : f + H, f : f + W]
            wsum += w
            np.maximum(wmax, w, out=wmax)
    wc = np.ones((H, W)) if centre == "one" else wmax
    return (acc + wc * v) / (wsum + wc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--sigmas", type=int, nargs="+", default=[10, 20, 30, 50])
    args = parser.parse_args()

    # the numpy twin with centre weight 1 is our estimator
    clean = common.load("camera", 48)
    noisy = nlmeans.add_noise(clean, 0.1, seed=0)
    ref = nlmeans.denoise(noisy, 0.1, h=0.07, patch_size=5, search_size=11)
    err = np.abs(nlm_numpy(noisy[None], 0.1, 0.07, 5, 11)[0] - ref).max()
    assert err < 1e-10, err

    rows = []
    start = time.perf_counter()
    for s255 in args.sigmas:
        sigma = s255 / 255
        patch, search = (3, 21) if s255 <= 15 else (5, 21) if s255 <= 30 else (7, 21)
        for name in IMAGES:
            clean = common.load(name, args.size)
            x = clean[None] if clean.ndim == 2 else np.moveaxis(clean, -1, 0)
            noisy = common.add_noise(x, s255, seed=0)
            best = {}
            for centre in ("one", "max"):
                best[centre] = max(
                    nlmeans.psnr(x, nlm_numpy(noisy, sigma, k * sigma, patch, search, centre)) for k in K_GRID
                )
            rows.append({"image": name, "sigma": s255, "patch": patch, "search": search, **best})
            print(f"σ={s255} {name:22s} centre 1: {best['one']:.2f} dB, centre max: {best['max']:.2f} dB "
                  f"({best['max'] - best['one']:+.2f}); {time.perf_counter() - start:.0f} s", flush=True)
    for s255 in args.sigmas:
        sel = [r for r in rows if r["sigma"] == s255]
        one, mx = np.mean([r["one"] for r in sel]), np.mean([r["max"] for r in sel])
        print(f"σ={s255}: mean best-h PSNR, centre 1 {one:.3f} dB, centre max {mx:.3f} dB ({mx - one:+.3f})")
    common.RESULTS.mkdir(exist_ok=True)
    (common.RESULTS / "centre_weight.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
