"""Noise-level estimation error on the standard set: nlmeans.estimate_sigma vs scikit-image's estimate_sigma.

    python -m bench.sigma_estimation [--seeds 3] [--size 256] [--clip]

For every image (crops, see bench/_common.py), σ in SIGMAS (0–255 scale) and seed: add Gaussian noise
(unclipped float, or with --clip rounded and clipped to uint8 like a saved file), estimate σ with both, and
report the relative error (estimate − σ)/σ. Prints a table of the worst error per image and σ, writes JSON to
bench/results/sigma_estimation[_clip].json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from skimage.restoration import estimate_sigma as sk_estimate_sigma

import nlmeans

from . import _common as common

SIGMAS = (5, 10, 20, 30, 50)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--clip", action="store_true", help="round and clip the noisy image to uint8")
    args = parser.parse_args()

    rows = []
    start = time.perf_counter()
    for name in common.names():
        clean = common.load(name, args.size)
        axis = -1 if common.is_color(name) else None
        for sigma in SIGMAS:
            for seed in common.seeds(args.seeds):
                noisy = common.add_noise(clean, sigma, seed=seed)
                if args.clip:
                    noisy = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
                ours = 255 * nlmeans.estimate_sigma(noisy, channel_axis=axis)
                theirs = 255 * sk_estimate_sigma(
                    noisy.astype(np.float64) / (255 if args.clip else 1), channel_axis=axis,
                    average_sigmas=True,
                )
                rows.append({"image": name, "sigma": sigma, "seed": seed, "nlmeans": ours, "skimage": theirs})
        print(f"{name:22s} done, {time.perf_counter() - start:6.1f} s", file=sys.stderr, flush=True)

    def rel(row, key):
        return (row[key] - row["sigma"]) / row["sigma"]

    def worst(sel, key):
        errs = [rel(r, key) for r in sel]
        return max(errs, key=abs)

    print(f"\nWorst relative error of the σ estimate over {args.seeds} seeds "
          f"({'uint8, clipped' if args.clip else 'float, unclipped'}), nlmeans / skimage\n")
    print("| image | " + " | ".join(f"σ={s}" for s in SIGMAS) + " |")
    print("|---|" + "---|" * len(SIGMAS))
    for name in common.names():
        cells = []
        for sigma in SIGMAS:
            sel = [r for r in rows if r["image"] == name and r["sigma"] == sigma]
            cells.append(f"{100 * worst(sel, 'nlmeans'):+.1f}% / {100 * worst(sel, 'skimage'):+.1f}%")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for key in ("nlmeans", "skimage"):
        errs = np.array([abs(rel(r, key)) for r in rows])
        print(f"{key}: max |error| {100 * errs.max():.1f}%, mean |error| {100 * errs.mean():.1f}%")
    common.RESULTS.mkdir(exist_ok=True)
    out = common.RESULTS / f"sigma_estimation{'_clip' if args.clip else ''}.json"
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
