"""NL-means family vs BM3D on the standard set: mean PSNR per σ per method, and times.

The standard set (bench/_common.py: ten images, gray and color), each cut to its window of at most
CROP×CROP (the machine is shared: crops keep the run short), float32, noised at σ = 10, 20, 30, 50 (/255) with
the bench's seed policy (seed 0; Gaussian, not clipped), and denoised with σ given. Times are wall-clock seconds
summed over the set.

    python -m bench.nl_family [--crop 128] [--out bench/results/nl_family.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import nlmeans

from . import _common as common

SIGMAS = common.SIGMAS_255


def standard_set(crop):
    """The standard set's images (crops of at most ``crop``²), float32 on [0, 1], by name."""
    return {name: common.load(name, crop).astype(np.float32) for name in common.names()}


def methods():
    import bm3d

    def ours(**kw):
        return lambda noisy, s, axis: nlmeans.denoise(noisy, s, channel_axis=axis, **kw)

    def run_bm3d(noisy, s, axis):
        return bm3d.bm3d(noisy, sigma_psd=s) if axis is None else bm3d.bm3d_rgb(noisy, sigma_psd=s)

    return {
        "pixelwise": ours(method="pixelwise"),
        "pixelwise-gaussian": ours(method="pixelwise", patch_weights="gaussian"),
        "patchwise": ours(method="patchwise"),
        "nlbayes": ours(method="nlbayes"),
        "bm3d": run_bm3d,
    }


def markdown(result):
    """The summary of a result JSON as a markdown table (mean PSNR, total seconds, gap and speed-up vs BM3D)."""
    summary = result["summary"]
    bm3d = summary.get("bm3d")
    lines = [
        f"Mean PSNR (dB) over {len(result['images'])} images ({', '.join(result['images'])}), "
        f"crops of at most {result['crop']}×{result['crop']}; in brackets the total seconds over the set "
        "(shared 2-core machine, so times are indicative; methods run one after another per image).",
        "",
        "| method | " + " | ".join(f"σ = {s}" for s in SIGMAS) + " |",
        "|---|" + "---|" * len(SIGMAS),
    ]
    for name, row in summary.items():
        cells = []
        for s in SIGMAS:
            cell = f"{row[str(s)]['psnr']:.2f} ({row[str(s)]['seconds']:.1f} s)"
            if bm3d is not None and name != "bm3d":
                gap = row[str(s)]["psnr"] - bm3d[str(s)]["psnr"]
                speed = bm3d[str(s)]["seconds"] / row[str(s)]["seconds"]
                cell += f" {gap:+.2f} dB, {speed:.0f}×"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--out", default=str(common.RESULTS / "nl_family.json"))
    ap.add_argument("--report-only", action="store_true", help="only rewrite the .md from the .json")
    args = ap.parse_args()
    if args.report_only:
        Path(args.out).with_suffix(".md").write_text(markdown(json.loads(Path(args.out).read_text())))
        return
    images = standard_set(args.crop)
    table = methods()
    small = np.zeros((32, 32), np.float32)
    for fn in table.values():  # compile / warm up
        fn(small + 0.5, 0.1, None)
    records = []
    for s255 in SIGMAS:
        s = s255 / 255
        for name, clean in images.items():
            axis = None if clean.ndim == 2 else -1
            noisy = common.add_noise(clean, s255, seed=0)
            for mname, fn in table.items():
                t = time.perf_counter()
                out = fn(noisy, s, axis)
                dt = time.perf_counter() - t
                rec = dict(sigma_255=s255, image=name, method=mname, psnr=float(nlmeans.psnr(clean, out)),
                           seconds=dt)
                records.append(rec)
                print(json.dumps(rec), flush=True)
    summary = {}
    for s255 in SIGMAS:
        for mname in table:
            rs = [r for r in records if r["sigma_255"] == s255 and r["method"] == mname]
            summary.setdefault(mname, {})[str(s255)] = dict(
                psnr=float(np.mean([r["psnr"] for r in rs])), seconds=float(np.sum([r["seconds"] for r in rs])))
    result = dict(crop=args.crop, images=list(images), summary=summary, records=records)
    Path(args.out).write_text(json.dumps(result, indent=1))
    Path(args.out).with_suffix(".md").write_text(markdown(result))
    print(f"\nmean PSNR (dB) / total seconds over {len(images)} images, crops of at most {args.crop}x{args.crop}")
    print("method".ljust(20) + "".join(f"σ={s}".rjust(16) for s in SIGMAS))
    for mname, row in summary.items():
        print(mname.ljust(20) + "".join(f"{row[str(s)]['psnr']:8.2f} {row[str(s)]['seconds']:6.1f}s"
                                        for s in SIGMAS))


if __name__ == "__main__":
    main()
