"""Monte-Carlo SURE vs the true MSE for NL-means, and h="auto" vs the oracle h, on the standard set.

    python -m bench.sure_accuracy [--size 256] [--sigmas 10 20 30 50]

For every image (crops, bench/_common.py) and σ (0–255 scale), noise seed 0, with the preset patch and search
sizes: the true MSE and the SURE estimate at h/σ in GRID; the oracle h (best true PSNR on the grid); the h chosen
by nlmeans.sure.choose_h (golden-section on SURE, no clean image) and its true PSNR; the preset default's PSNR.
Writes bench/results/sure_accuracy.json; prints a summary.
"""

from __future__ import annotations

import json
import time
from functools import partial

import numpy as np

import nlmeans
from nlmeans.sure import choose_h, mc_sure

from . import _common as common

GRID = (0.25, 0.35, 0.45, 0.6, 0.8, 1.0)


def main():
    parser = common.arg_parser(__doc__)
    parser.add_argument("--images", nargs="+", default=None)
    args = parser.parse_args()

    rows = []
    start = time.perf_counter()
    for name in args.images or common.names():
        clean = common.load(name, args.size).astype(np.float32)
        axis = -1 if common.is_color(name) else None
        for s255 in args.sigmas:
            sigma = s255 / 255
            noisy = common.add_noise(clean, s255, seed=0)
            # pixelwise: the study tunes NL-means h at its own preset sizes
            _, default = nlmeans.denoise(noisy, sigma, method="pixelwise", channel_axis=axis, return_settings=True)
            p, s = default.patch_size, default.search_size
            grid = []
            for k in GRID:
                f = partial(nlmeans.denoise, sigma=sigma, h=k * sigma, patch_size=p, search_size=s,
                            channel_axis=axis)
                out = f(noisy)
                true = float(np.mean((out.astype(np.float64) - clean) ** 2))
                est = mc_sure(f, noisy, sigma, denoised=out)
                grid.append({"h_over_sigma": k, "mse": true, "sure": est})
            h_auto, _, risk = choose_h(noisy, sigma, patch_size=p, search_size=s, channel_axis=axis)
            out_auto = nlmeans.denoise(noisy, sigma, h=h_auto, patch_size=p, search_size=s, channel_axis=axis)
            out_default = nlmeans.denoise(noisy, sigma, channel_axis=axis)
            best = min(grid, key=lambda g: g["mse"])
            row = {
                "image": name, "sigma": s255, "patch": p, "search": s, "grid": grid,
                "oracle_h_over_sigma": best["h_over_sigma"], "oracle_psnr": float(-10 * np.log10(best["mse"])),
                "auto_h_over_sigma": h_auto / sigma, "auto_sure": risk,
                "auto_psnr": nlmeans.psnr(clean, out_auto), "default_psnr": nlmeans.psnr(clean, out_default),
                "default_h_over_sigma": default.h / sigma,
            }
            rows.append(row)
            common.RESULTS.mkdir(exist_ok=True)
            payload = {"args": vars(args), "rows": rows}
            (common.RESULTS / "sure_accuracy.json").write_text(json.dumps(payload, indent=1))
            ratio = [g["sure"] / g["mse"] for g in grid]
            print(f"{name:22s} σ={s255:2d} p{p} s{s}: SURE/MSE {min(ratio):.3f}–{max(ratio):.3f}; "
                  f"oracle h/σ {row['oracle_h_over_sigma']:.2f} {row['oracle_psnr']:.2f} dB; "
                  f"auto h/σ {row['auto_h_over_sigma']:.2f} {row['auto_psnr']:.2f} dB; "
                  f"default {row['default_psnr']:.2f} dB; {time.perf_counter() - start:.0f} s", flush=True)
    ratios = np.array([g["sure"] / g["mse"] for r in rows for g in r["grid"]])
    gaps = np.array([r["oracle_psnr"] - r["auto_psnr"] for r in rows])
    print(f"\nSURE/true MSE over {ratios.size} (image, σ, h): min {ratios.min():.3f}, max {ratios.max():.3f}, "
          f"median |1 − ratio| {np.median(np.abs(1 - ratios)):.4f}")
    print(f"oracle-grid PSNR − auto PSNR: mean {gaps.mean():+.3f} dB, max {gaps.max():+.3f} dB")
    print(f"mean PSNR: auto {np.mean([r['auto_psnr'] for r in rows]):.3f}, "
          f"default {np.mean([r['default_psnr'] for r in rows]):.3f}, "
          f"oracle grid {np.mean([r['oracle_psnr'] for r in rows]):.3f}")
    print(f"wrote {common.RESULTS / 'sure_accuracy.json'}")


if __name__ == "__main__":
    main()
