"""Poisson: which count statistic picks the low-count passes (issue #18).

``nlmeans.denoise(counts, noise="poisson")`` chooses its passes (``presets.POISSON_ITERATION_SCHEDULES``) by a
count statistic of the image. This script runs the same call with the passes chosen by (a) the mean count
(the rule before 2026-12-05), (b) the count level of ``nlmeans.noise_models.count_level`` (the photon-weighted
mean count, the rule now) and (c) no iteration (one pass inside the transform), on the gray standard set
(bench/_common.py, ``--size``) and on mostly dark images: the middle slices of bench/real_noise.py's
fluorescence-like volumes (cells, filaments, the textured phantom) and hubble_deep_field in gray. Peaks 1, 4,
10, 30, seed 0; PSNR per image and the means per group.

    python -m bench.poisson_level [--size 256]
"""

from __future__ import annotations

import argparse

import numpy as np

import nlmeans
from bench import _common as common
from bench.real_noise import PEAKS, _microscopy_volumes, _psnr
from nlmeans import presets


def _images(size):
    out = {name: common.load(name, size) for name in common.names("gray")}
    for name, volume in _microscopy_volumes().items():
        out["slice " + name] = volume[volume.shape[0] // 2]
    hubble = common.load("hubble_deep_field", size).mean(axis=-1)
    out["hubble gray"] = hubble / hubble.max()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="crop side of the standard set (default 256)")
    args = parser.parse_args()
    schedule = presets.poisson_schedule
    rules = {"mean count": lambda c: float(c.mean()), "count level": None, "one pass": lambda c: float("inf")}
    scores = {}
    try:
        for name, clean in _images(args.size).items():
            for peak in PEAKS:
                counts = nlmeans.add_noise(clean * peak, noise="poisson", seed=0)
                row = []
                for rule in rules.values():
                    if rule is None:
                        presets.poisson_schedule = schedule
                    else:  # the rule's statistic replaces the level denoise passes to the schedule
                        stat = rule(counts)
                        presets.poisson_schedule = lambda _level, s=stat: schedule(s)
                    row.append(_psnr(clean, nlmeans.denoise(counts, noise="poisson", gain=1.0) / peak))
                presets.poisson_schedule = schedule
                scores[name, peak] = row
                cells = "  ".join(f"{k} {v:.2f}" for k, v in zip(rules, row, strict=True))
                print(f"{name:28s} peak {peak:3d}  {cells}", flush=True)
    finally:
        presets.poisson_schedule = schedule
    standard = common.names("gray")
    groups = {"gray standard set": standard, "mostly dark": [n for n, _ in scores if n not in standard]}
    print("\nmean PSNR (dB):")
    for group, names in groups.items():
        for peak in PEAKS:
            mean = np.mean([scores[n, peak] for n in dict.fromkeys(names)], axis=0)
            cells = "  ".join(f"{k} {v:.2f}" for k, v in zip(rules, mean, strict=True))
            print(f"{group:18s} peak {peak:3d}  {cells}")


if __name__ == "__main__":
    main()
