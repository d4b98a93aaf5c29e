"""Preset rules for NL-means (patch, search, h/σ by σ) measured on the whole standard set.

    python -m bench.presets [--size 256] [--sigmas 10 20 30 50]   # measure (slow)
    python -m bench.presets --report                             # tables from the JSON

Measure: for every σ (0–255 scale), image (crops, bench/_common.py), candidate (patch, search) and h/σ in
K_GRID, the PSNR of nlmeans.denoise (float32, noise seed 0). Written to bench/results/presets.json after each
case. Report: for gray and color separately and each σ, the mean PSNR over the images of every rule
(patch, search, h/σ) — one rule for the whole set, never per image — the best rule, and the IPOL 2011 table's
rule for comparison.
"""

from __future__ import annotations

import json
import time

import numpy as np

import nlmeans
from nlmeans.presets import IPOL_COLOR, IPOL_GRAY

from . import _common as common

K_GRID = (0.35, 0.4, 0.55, 0.7, 0.85, 1.0)
#: candidate (patch, search) per σ (0–255)
CANDIDATES = {
    10: [(3, 21), (5, 21), (7, 21), (5, 35)],
    20: [(3, 21), (5, 21), (7, 21), (5, 35)],
    30: [(5, 21), (7, 21), (9, 21), (7, 35)],
    50: [(5, 21), (7, 21), (9, 21), (7, 35)],
}
OUT = common.RESULTS / "presets.json"


def _ipol(sigma_255, color):
    for p in IPOL_COLOR if color else IPOL_GRAY:
        if sigma_255 <= p.sigma_255_max:
            return p.patch_size, p.search_size, p.h_over_sigma
    raise AssertionError


def measure(args):
    rows = json.loads(OUT.read_text())["rows"] if OUT.exists() and args.resume else []
    done = {(r["image"], r["sigma"], r["patch"], r["search"], r["k"]) for r in rows}
    start = time.perf_counter()
    for s255 in args.sigmas:
        sigma = s255 / 255
        for name in common.names():
            color = common.is_color(name)
            clean = common.load(name, args.size).astype(np.float32)
            noisy = common.add_noise(clean, s255, seed=0)
            axis = -1 if color else None
            configs = list(CANDIDATES[s255])
            ip, isz, _ = _ipol(s255, color)
            if (ip, isz) not in configs:
                configs.append((ip, isz))
            for patch, search in configs:
                for k in K_GRID:
                    if (name, s255, patch, search, k) in done:
                        continue
                    out = nlmeans.denoise(noisy, sigma, h=k * sigma, patch_size=min(patch, clean.shape[0]),
                                          search_size=min(search, clean.shape[0] - 1 + clean.shape[0] % 2),
                                          channel_axis=axis)
                    rows.append({"image": name, "sigma": s255, "patch": patch, "search": search, "k": k,
                                 "psnr": nlmeans.psnr(clean, out)})
            common.RESULTS.mkdir(exist_ok=True)
            OUT.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=0))
            print(f"σ={s255} {name} done, {time.perf_counter() - start:.0f} s", flush=True)


def report():
    rows = json.loads(OUT.read_text())["rows"]
    for kind in ("gray", "color"):
        names = common.names(kind)
        print(f"\n### {kind}: mean PSNR (dB) over {', '.join(names)}\n")
        print("| σ | best rule (patch, search, h/σ) | mean PSNR | IPOL rule | IPOL mean PSNR | gain |")
        print("|---|---|---|---|---|---|")
        for s255 in sorted({r["sigma"] for r in rows}):
            sel = [r for r in rows if r["sigma"] == s255 and r["image"] in names]
            imgs = {r["image"] for r in sel}
            rules = {}
            for r in sel:
                rules.setdefault((r["patch"], r["search"], r["k"]), {})[r["image"]] = r["psnr"]
            complete = {rule: np.mean(list(v.values())) for rule, v in rules.items() if set(v) == imgs}
            if set(imgs) != set(names) or not complete:
                continue  # σ not measured on every image yet
            best = max(complete, key=complete.get)
            ipol = _ipol(s255, kind == "color")
            ip = complete.get(ipol, float("nan"))
            print(f"| {s255} | {best} | {complete[best]:.2f} | {ipol} | {ip:.2f} | {complete[best] - ip:+.2f} |")
            ranked = sorted(complete.items(), key=lambda kv: -kv[1])[:6]
            print("|  | runners-up: " + "; ".join(f"{k} {v:.2f}" for k, v in ranked[1:]) + " | | | | |")


def main():
    parser = common.arg_parser(__doc__)
    parser.add_argument("--resume", action="store_true", help="keep the rows already in the JSON")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.report:
        report()
    else:
        measure(args)
        report()


if __name__ == "__main__":
    main()
