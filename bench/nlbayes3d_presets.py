"""Presets of NL-Bayes 3-D (volumes) and video: mean PSNR and time of candidate parameter sets on the whole
test set of bench/volume_video.py (4 volumes 64³, 3 videos of 12 frames 128²), σ = 10, 20, 30.

    python -m bench.nlbayes3d_presets [--only volumes|videos]

Every candidate runs :func:`nlmeans.nlbayes.nlbayes_3d_chw` directly (float32, as the API computes 8-bit
data) with β = (1, 1.2) and γ = (1.05, 0.02), the 2-D preset's values. Columns: σ, candidate, mean PSNR over
the set, total seconds. The preset per σ band is the candidate with the best mean PSNR unless a faster one is
within 0.05 dB (results in bench/results/nlbayes3d_presets.md).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench._common import add_noise
from bench.volume_video import SIGMAS_255, psnr, quantise, videos, volumes
from nlmeans.nlbayes import nlbayes_3d_chw

# name -> (patch, patch_z, search, search_z, n_similar, step, step_z)
VOLUME_CANDIDATES = {
    "p3_s9_n60_st2": (3, 3, 9, 9, (60, 30), 2, 2),
    "p3_s9_n60_st3": (3, 3, 9, 9, (60, 30), 3, 3),
    "p3_s9_n90_st2": (3, 3, 9, 9, (90, 45), 2, 2),
    "p3_s11_n90_st2": (3, 3, 11, 11, (90, 60), 2, 2),
    "p3_s7_n60_st2": (3, 3, 7, 7, (60, 30), 2, 2),
    "p3_s9-7_n60_st2": (3, 3, (9, 7), (9, 7), (60, 30), 2, 2),
    "p5z3_s9_n200_st3": (5, 3, 9, 9, (200, 120), 3, 3),
}
VIDEO_CANDIDATES = {
    "p3z3_s15_n60_st2": (3, 3, 15, 5, (60, 30), 2, 1),
    "p3z3_s15_n90_st2z2": (3, 3, 15, 5, (90, 60), 2, 2),
    "p3z3_s21_n90_st2": (3, 3, 21, 5, (90, 60), 2, 1),
    "p5z1_s15_n60_st3": (5, 1, 15, 5, (60, 30), 3, 1),
    "p5z3_s15_n150_st3": (5, 3, 15, 5, (150, 100), 3, 1),
    "p5z3_s15_n120-60_st3": (5, 3, 15, 5, (120, 60), 3, 1),
    "p5z3_s11_n120_st3z2": (5, 3, 11, 5, (120, 80), 3, 2),
}


def _run(value, sigma_255, cand, video):
    patch, patch_z, search, search_z, n_sim, step, step_z = cand
    return nlbayes_3d_chw(value, sigma_255 / 255, patch_size=patch, patch_z=patch_z, search_size=search,
                          search_z=search_z, n_similar=n_sim, beta=(1.0, 1.2), gamma=(1.05, 0.02), step=step,
                          step_z=step_z, video=video)


def sweep(items, candidates, video):
    for s in SIGMAS_255:
        for name, cand in candidates.items():
            scores, seconds = [], 0.0
            for k, clean in enumerate(items.values()):
                # seeds 1000 k + σ: other draws than bench/volume_video.py's (seed 0), so the presets are
                # not tuned on the noise of the table they are compared in
                noisy = add_noise(clean, s, seed=1000 * k + s)
                if video:
                    noisy = quantise(noisy).astype(np.float32) / 255
                chw = np.ascontiguousarray(np.moveaxis(noisy, -1, 0) if noisy.ndim == 4 else noisy[None],
                                           dtype=np.float32)
                start = time.perf_counter()
                out = _run(chw, s, cand, video)
                seconds += time.perf_counter() - start
                out = np.moveaxis(out, 0, -1) if clean.ndim == 4 else out[0]
                scores.append(psnr(clean, out))
            print(f"{'video' if video else 'volume'} σ={s:>3} {name:<22} {np.mean(scores):7.2f} dB "
                  f"{seconds:7.1f} s   " + " ".join(f"{x:.2f}" for x in scores), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("volumes", "videos"))
    args = parser.parse_args(argv)
    small = np.random.default_rng(0).random((1, 10, 10, 10)).astype(np.float32)
    _run(small, 20, (3, 3, 5, 5, (20, 10), 2, 2), False)  # compile before timing
    if args.only != "videos":
        sweep(volumes(), VOLUME_CANDIDATES, False)
    if args.only != "volumes":
        sweep(videos(), VIDEO_CANDIDATES, True)


if __name__ == "__main__":
    main()
