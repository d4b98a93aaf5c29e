"""Does letting SURE also choose the patch size pay? choose_h with the preset patch vs over patch ± 2.

    python -m bench.sure_patch [--size 256] [--sigmas 20 50]

For every image (crops, bench/_common.py) and σ (0–255 scale), noise seed 0: true PSNR of NL-means with h chosen by
SURE at the preset patch size, and with (patch, h) chosen by SURE among preset patch − 2, preset, + 2.
Writes bench/results/sure_patch.json.
"""

from __future__ import annotations

import json

import numpy as np

import nlmeans
from nlmeans.presets import preset_for
from nlmeans.sure import choose_h

from . import _common as common


def main():
    parser = common.arg_parser(__doc__, sigmas=(20, 50))
    args = parser.parse_args()
    rows = []
    for s255 in args.sigmas:
        sigma = s255 / 255
        for name in common.names():
            clean = common.load(name, args.size).astype(np.float32)
            axis = -1 if common.is_color(name) else None
            noisy = common.add_noise(clean, s255, seed=0)
            p0 = preset_for(s255, 3 if axis is not None else 1).patch_size
            h1, _, _ = choose_h(noisy, sigma, patch_size=p0, channel_axis=axis)
            fixed = nlmeans.psnr(clean, nlmeans.denoise(noisy, sigma, h=h1, patch_size=p0, channel_axis=axis))
            sizes = [p for p in (p0 - 2, p0, p0 + 2) if p >= 1]
            h2, p2, _ = choose_h(noisy, sigma, patch_sizes=sizes, channel_axis=axis)
            both = nlmeans.psnr(clean, nlmeans.denoise(noisy, sigma, h=h2, patch_size=p2, channel_axis=axis))
            rows.append({"image": name, "sigma": s255, "preset_patch": p0, "fixed": fixed, "chosen_patch": p2,
                         "both": both})
            print(f"σ={s255} {name:22s} patch {p0}: {fixed:.2f} dB; SURE patch {p2}: {both:.2f} dB "
                  f"({both - fixed:+.3f})", flush=True)
    gain = np.array([r["both"] - r["fixed"] for r in rows])
    print(f"patch by SURE − preset patch: mean {gain.mean():+.3f} dB, min {gain.min():+.3f}, "
          f"max {gain.max():+.3f}")
    common.RESULTS.mkdir(exist_ok=True)
    (common.RESULTS / "sure_patch.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
