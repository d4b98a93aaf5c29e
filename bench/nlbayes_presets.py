"""NL-Bayes presets measured on the whole standard set: mean PSNR per σ (all / gray / color) and total time.

Every candidate is a change of ``nlmeans.nlbayes.nlbayes_params`` (patch size, group sizes, search windows,
reference step, β, γ) applied at every σ; the baseline is the current preset. The tables in
bench/results/nlbayes_presets.md up to 2026-11-26 09:57 were run against the preset before (``previous``),
so their ``current`` row is today's ``previous``. A candidate that gives non-finite output on some image
(a near-singular stage-1 group covariance in float32) is reported and counted as NaN. Same noisy images for every
candidate (``nlmeans.add_noise(clean, σ/255, seed)``, float32, not clipped), true σ given.

    python -m bench.nlbayes_presets [--size 256] [--sigmas 10 20 30 50] [--only NAME ...]

Appends a table to ``bench/results/nlbayes_presets.md`` and the numbers to ``nlbayes_presets.json``.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

import nlmeans
from nlmeans.nlbayes import nlbayes_chw
from nlmeans.presets import fit_size, nlbayes_params

from . import _common as common


def _with(**changes):
    """A candidate: the current preset with ``changes``; a value may be a function of σ₂₅₅."""
    def preset(sigma_255, n_channels):
        p = nlbayes_params(sigma_255, n_channels)
        for k, v in changes.items():
            p[k] = v(sigma_255) if callable(v) else v
        return p
    preset.changes = changes
    return preset


CANDIDATES = {
    "current": _with(),
    # the preset before this sweep (31×31 windows above σ = 25, β₂ = 1); the sweep below was run against it
    "previous": _with(search_size=lambda s: (31, 31) if s > 25 else (31, 21), beta=(1.0, 1.0),
                      step=lambda s: 4 if s > 25 else 3),
    "step2": _with(step=2),
    "beta2_0.8": _with(beta=(1.0, 0.8)),
    "beta2_1.2": _with(beta=(1.0, 1.2)),
    "beta1_1.2": _with(beta=(1.2, 1.0)),
    "gamma1_1.0": _with(gamma=(1.0, 0.02)),
    "gamma1_1.1": _with(gamma=(1.1, 0.02)),
    "gamma2_0": _with(gamma=(1.05, 0.0)),
    "nsim_x1.5": _with(n_similar=lambda s: tuple(int(1.5 * n) for n in nlbayes_params(s)["n_similar"])),
    "nsim2_x0.7": _with(n_similar=lambda s: (nlbayes_params(s)["n_similar"][0],
                                             int(0.7 * nlbayes_params(s)["n_similar"][1]))),
    "beta2_1.4": _with(beta=(1.0, 1.4)),
    "search1_41": _with(search_size=lambda s: (41, nlbayes_params(s)["search_size"][1])),
    "search_41_above25": _with(search_size=lambda s: (41, 41) if s > 25 else nlbayes_params(s)["search_size"]),
    "search_37": _with(search_size=lambda s: (37, 37) if s > 25 else (37, 27)),
    "search_41_above25_beta2_1.2": _with(
        search_size=lambda s: (41, 41) if s > 25 else nlbayes_params(s)["search_size"], beta=(1.0, 1.2)),
    "search2_41_above25_beta2_1.2": _with(
        search_size=lambda s: (31, 41) if s > 25 else nlbayes_params(s)["search_size"], beta=(1.0, 1.2)),
    "s41_b1.2_step5_4": _with(
        search_size=lambda s: (41, 41) if s > 25 else nlbayes_params(s)["search_size"], beta=(1.0, 1.2),
        step=lambda s: (5, 4) if s > 25 else 3),
    "s41_b1.2_n70": _with(
        search_size=lambda s: (41, 41) if s > 25 else nlbayes_params(s)["search_size"], beta=(1.0, 1.2),
        n_similar=lambda s: (70, 60) if s > 25 else (60, 30)),
    "step3_above25": _with(step=3),
    "beta2_1.2_step3": _with(beta=(1.0, 1.2), step=3),
    "p7_5_above25": _with(patch_size=lambda s: (7, 5) if s > 25 else 5,
                          step=lambda s: (4, 3) if s > 25 else 3),
    "p7_5_above25_n40": _with(patch_size=lambda s: (7, 5) if s > 25 else 5,
                              step=lambda s: (4, 3) if s > 25 else 3,
                              n_similar=lambda s: (90, 40) if s > 25 else (60, 30)),
    "search_41": _with(search_size=(41, 41)),
    "search2_31": _with(search_size=(31, 31)),
    "patch7_from20": _with(patch_size=lambda s: 7 if s >= 20 else 5, step=lambda s: 4 if s >= 20 else 3,
                           n_similar=lambda s: (90, 60) if s >= 20 else (60, 30),
                           search_size=lambda s: (31, 31) if s >= 20 else (31, 21)),
    "patch5_upto30": _with(patch_size=lambda s: 5 if s <= 30 else 7, step=lambda s: 3 if s <= 30 else 4,
                           n_similar=lambda s: (60, 30) if s <= 30 else (90, 60),
                           search_size=lambda s: (31, 21) if s <= 30 else (31, 31)),
}


def run(preset, images, sigmas, seed=0):
    """{sigma: {image: psnr}}, total seconds."""
    out, seconds = {}, 0.0
    for s in sigmas:
        out[s] = {}
        for name, clean in images.items():
            noisy = common.add_noise(clean, s, seed=seed).astype(np.float32)
            chw = noisy[None] if noisy.ndim == 2 else np.ascontiguousarray(np.moveaxis(noisy, -1, 0))
            p = preset(float(s), chw.shape[0])
            limit = min(chw.shape[1:])
            p["patch_size"] = (fit_size(p["patch_size"], limit) if np.ndim(p["patch_size"]) == 0
                               else tuple(fit_size(v, limit) for v in p["patch_size"]))
            p["search_size"] = tuple(fit_size(v, limit) for v in p["search_size"])
            t0 = time.perf_counter()
            den = nlbayes_chw(chw, s / 255, **p)
            seconds += time.perf_counter() - t0
            den = den[0] if noisy.ndim == 2 else np.moveaxis(den, 0, -1)
            if not np.isfinite(den).all():  # a singular group covariance (reported, counted as NaN)
                print(f"  non-finite output: {name} σ={s}", flush=True)
                out[s][name] = float("nan")
                continue
            out[s][name] = nlmeans.psnr(clean, den)
    return out, seconds


def main():
    parser = common.arg_parser(__doc__)
    parser.add_argument("--only", nargs="+", default=None, help="candidate names (default all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    images = {n: common.load(n, args.size) for n in common.names()}
    gray = set(common.names("gray"))
    names = args.only or list(CANDIDATES)
    # warm up numba (both stages, both patch sizes) on a tiny image
    tiny = np.random.default_rng(0).random((1, 40, 40)).astype(np.float32)
    for s in (10.0, 50.0):
        nlbayes_chw(tiny, s / 255, **{**nlbayes_params(s), "search_size": (21, 21)})
    results = {}
    base = None
    for name in ["current", *[n for n in names if n != "current"]]:
        psnrs, secs = run(CANDIDATES[name], images, args.sigmas, args.seed)
        row = {"seconds": secs}
        for s in args.sigmas:
            v = psnrs[s]
            row[s] = {"all": float(np.mean(list(v.values()))),
                      "gray": float(np.mean([p for n, p in v.items() if n in gray])),
                      "color": float(np.mean([p for n, p in v.items() if n not in gray])),
                      "per_image": v}
        row["mean_all"] = float(np.mean([row[s]["all"] for s in args.sigmas]))
        results[name] = row
        if base is None:
            base = row
        d = {s: {k: row[s][k] - base[s][k] for k in ("all", "gray", "color")} for s in args.sigmas}
        delta = " ".join(f"σ{s}: {d[s]['all']:+.3f} (g {d[s]['gray']:+.3f}, c {d[s]['color']:+.3f})"
                         for s in args.sigmas)
        print(f"{name:16s} mean {row['mean_all']:.3f} ({row['mean_all'] - base['mean_all']:+.3f})  {delta}  "
              f"{secs:.1f} s", flush=True)
    cmd = "python -m bench.nlbayes_presets " + " ".join(sys.argv[1:])
    lines = [
        "", f"## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} — `{cmd}`", "",
        f"Standard set ({len(images)} images, crops ≤ {args.size}²), seed {args.seed}; mean PSNR (dB) over all "
        "images, the difference to `current` in brackets (gray / color); total NL-Bayes seconds over the set.", "",
        "| candidate | change | " + " | ".join(f"σ = {s}" for s in args.sigmas) + " | mean | seconds |",
        "|---|---|" + "---:|" * (len(args.sigmas) + 2),
    ]
    for name, row in results.items():
        ch = ", ".join(f"{k}={'f(σ)' if callable(v) else v}" for k, v in CANDIDATES[name].changes.items()) or "—"
        d = {s: {k: row[s][k] - base[s][k] for k in ("all", "gray", "color")} for s in args.sigmas}
        cells = [f"{row[s]['all']:.2f} ({d[s]['all']:+.2f}: {d[s]['gray']:+.2f} / {d[s]['color']:+.2f})"
                 for s in args.sigmas]
        mean = f"{row['mean_all']:.3f} ({row['mean_all'] - base['mean_all']:+.3f})"
        lines.append(f"| {name} | {ch} | " + " | ".join(cells) + f" | {mean} | {row['seconds']:.1f} |")
    res = common.RESULTS
    with open(res / "nlbayes_presets.md", "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    path = res / "nlbayes_presets.json"
    old = json.loads(path.read_text()) if path.exists() else []
    old.append({"command": cmd, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "results": {k: {str(kk): vv for kk, vv in v.items()} for k, v in results.items()}})
    path.write_text(json.dumps(old, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
