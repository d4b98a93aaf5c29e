"""σ maps on volumes and video (issue #18): NL-Bayes 3-D with the map in its kernel, through the per-level
route (one scalar run per σ level, each voxel interpolated between the two runs that bracket its σ: the only
route before the kernel took maps) and the scalar call at the map's RMS σ, side by side.

    python -m bench.sigma_map_volume [--side 64] [--frames 12] [--video-side 128] [--no-video]

Data: bench/volume_video.py's four volumes (``VOLUME_SIDE``³) and its two gray videos (camera, brick; 12
frames), float64 on [0, 1]. Maps (0–1 scale), the same for every slice (frame): halves (left σ = 10, right
40 /255, as bench/real_noise.py's map table) and a left-to-right gradient 5 → 40 /255. Noise: white
Gaussian scaled by the map, ``np.random.default_rng(0)`` (one draw per item), not clipped. PSNR against the
clean data on [0, 1]; seconds wall-clock, each route warmed up first (numba's compilation not counted).
Results: bench/results/sigma_map_volume.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import nlmeans
from bench import _common as common
from bench.volume_video import VIDEO_FRAMES, VIDEO_SIDE, VOLUME_SIDE, psnr, videos, volumes
from nlmeans.sigma_arrays import combine_levels, summarize_sigma_map

MAP_SIGMAS = (10, 40)
GRADIENT_SIGMAS = (5, 40)


def maps(shape):
    """The maps of a (Z, Y, X) stack: halves 10/40 and a gradient 5 → 40 /255 along X."""
    halves = np.full(shape, MAP_SIGMAS[0] / 255)
    halves[..., shape[-1] // 2:] = MAP_SIGMAS[1] / 255
    gradient = np.broadcast_to(np.linspace(*GRADIENT_SIGMAS, shape[-1]) / 255, shape).copy()
    return {"halves 10/40": halves, "gradient 5→40": gradient}


def per_level(fn, noisy, smap):
    """The per-level route of a map: ``fn(noisy, σ)`` at each σ level of the map, each voxel interpolated."""
    levels = summarize_sigma_map(lambda y0, y1: smap.reshape(-1, smap.shape[-1])[y0:y1],
                                 smap.size // smap.shape[-1], smap.size // smap.shape[-1]).levels
    return combine_levels(lambda v, s, joint: fn(v[0], s)[None], noisy[None], smap, levels)[0]


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def table(items, fn):
    rows, sums = [], {}
    for name, clean in items.items():
        for kind, smap in maps(clean.shape).items():
            rms = float(np.sqrt(np.mean(smap**2)))
            noisy = clean + np.random.default_rng(0).standard_normal(clean.shape) * smap
            runs = {"kernel": _timed(lambda n=noisy, m=smap: fn(n, m)),
                    "levels": _timed(lambda n=noisy, m=smap: per_level(fn, n, m)),
                    "scalar": _timed(lambda n=noisy, r=rms: fn(n, r))}
            p = {k: psnr(clean, out) for k, (out, _) in runs.items()}
            t = {k: sec for k, (_, sec) in runs.items()}
            vals = [p["kernel"], p["levels"], p["scalar"], p["kernel"] - p["levels"], p["kernel"] - p["scalar"],
                    t["kernel"], t["levels"], t["scalar"]]
            for k, v in enumerate(vals):
                sums.setdefault((kind, k), []).append(v)
            rows.append([name, kind, *_cells(vals)])
            print(" | ".join(rows[-1]), flush=True)
    for kind in maps((1, 1, 2)):
        rows.append(["**mean**", kind, *_cells([float(np.mean(sums[(kind, k)])) for k in range(8)])])
    header = ["item", "map", "kernel", "per-level", "scalar σ=RMS", "kernel − per-level", "kernel − scalar",
              "t kernel", "t per-level", "t scalar"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _cells(vals):
    return ([f"{v:.2f}" for v in vals[:3]] + [f"{v:+.2f}" for v in vals[3:5]] + [f"{v:.2f}" for v in vals[5:]])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=VOLUME_SIDE, help="volume side (default 64)")
    parser.add_argument("--frames", type=int, default=VIDEO_FRAMES)
    parser.add_argument("--video-side", type=int, default=VIDEO_SIDE)
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--out", type=Path, default=common.RESULTS / "sigma_map_volume.md")
    args = parser.parse_args()
    warm = np.random.default_rng(1).random((12, 24, 24))
    for fn in (nlmeans.denoise_volume, nlmeans.denoise_video):  # compile the scalar and the map kernels
        fn(warm, 0.1)
        fn(warm, maps(warm.shape)["halves 10/40"])
    parts = [f"# σ maps on volumes and video (python -m bench.sigma_map_volume --side {args.side}"
             f"{' --no-video' if args.no_video else ''})\n",
             "NL-Bayes 3-D (the default method), PSNR dB on [0, 1], seconds. What it shows: "
             "[docs/real-noise.md](../../docs/real-noise.md).\n"]
    sections = [("Volumes", volumes(args.side), nlmeans.denoise_volume)]
    if not args.no_video:
        gray = {k: v for k, v in videos(args.frames, args.video_side).items() if v.ndim == 3}
        sections.append(("Videos (gray)", gray, nlmeans.denoise_video))
    for title, items, fn in sections:
        print(f"\n## {title}", flush=True)
        parts.append(f"## {title}\n\n{table(items, fn)}\n")
    args.out.write_text("\n".join(parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
