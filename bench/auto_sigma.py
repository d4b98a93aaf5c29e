"""Fully automatic denoising (σ estimated, default h) vs the same defaults given the true σ.

    python -m bench.auto_sigma [--size 256] [--sigmas 10 20 30 50]

For every image of the standard set (crops, bench/_common.py) and σ (0–255 scale): PSNR of
nlmeans.denoise(noisy, σ) and of nlmeans.denoise(noisy) (σ estimated), float32 noisy input, noise seed 0 (the
bench's seed policy). Issue #6 target: the mean gap within 0.2 dB. Writes bench/results/auto_sigma.json.
"""

from __future__ import annotations

import json

import numpy as np

import nlmeans

from . import _common as common


def main():
    parser = common.arg_parser(__doc__)
    args = parser.parse_args()
    rows = []
    for s255 in args.sigmas:
        for name in common.names():
            clean = common.load(name, args.size).astype(np.float32)
            axis = -1 if common.is_color(name) else None
            noisy = common.add_noise(clean, s255, seed=0)
            given = nlmeans.psnr(clean, nlmeans.denoise(noisy, s255 / 255, channel_axis=axis))
            out, used = nlmeans.denoise(noisy, channel_axis=axis, return_settings=True)
            auto = nlmeans.psnr(clean, out)
            rows.append({"image": name, "sigma": s255, "sigma_est": used.sigma_255, "given": given, "auto": auto})
            print(f"σ={s255} {name:22s} σ̂={used.sigma_255:6.2f}  given {given:.2f} dB  auto {auto:.2f} dB "
                  f"({auto - given:+.3f})", flush=True)
    gaps = np.array([r["auto"] - r["given"] for r in rows])
    print(f"auto − given: mean {gaps.mean():+.3f} dB, worst {gaps.min():+.3f} dB over {gaps.size} cases")
    common.RESULTS.mkdir(exist_ok=True)
    (common.RESULTS / "auto_sigma.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
