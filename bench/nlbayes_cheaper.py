"""Cheaper NL-Bayes presets at no loss of quality (issue #17, "fewer reference patches where that costs no
quality"): mean PSNR on the standard set and the summed time of the calls, per preset row.

Each candidate is the row's preset at the start of this study (``BEFORE``) with some parameters changed
(reference step, search windows, group sizes, stage-1 patch size; a pair is (stage 1, stage 2); a change may
depend on σ or on gray/color); ``default`` is whatever
``nlmeans.presets.nlbayes_params`` is now. Rows: ``low`` (σ ≤ 25, measured at σ = 5, 10, 15, 20, 25) and
``high`` (σ > 25, measured at 30, 40, 50). Every candidate gets the same float32 noisy image per (image, σ,
seed) (the seed policy of bench/_common.py) and the true σ. The calls are interleaved — for each noisy image
every candidate runs once, in a rotating order — so the load of a shared machine falls on all of them alike;
the time is the sum of the ``nlbayes_chw`` calls, reported as a ratio to ``before`` (same process, same run).

Acceptance rule of the issue for a change of the shipped presets: at every σ of the row the mean over the
gray images and over the color images each within −0.02 dB of ``before``, no image worse than −0.05 dB at
any σ, ≥ 15 % less time, and at σ = 50 still ≥ BM3D (gray and color means; where ``before`` is already a
hair below BM3D — color, a tie — not below ``before``; BM3D's outputs cached as bench/high_sigma.py caches
them, ``--bm3d``).

    python -m bench.nlbayes_cheaper --row low|high [--sigmas ...] [--seeds 2] [--only NAME ...] [--bm3d]
                                    [--repeats 1] [--no-write]

Prints and appends to ``bench/results/nlbayes_cheaper.md`` a table per run; the per-image numbers go to
``bench/results/nlbayes_cheaper.json``.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

import nlmeans
from nlmeans.presets import nlbayes_params

from . import _common as common
from .high_sigma import CACHE, bm3d_cached, run_nlbayes, warm_up

#: the presets at the start of this study (commit b13582b), per row
BEFORE = {
    "low": dict(patch_size=5, search_size=(31, 21), n_similar=(60, 30), beta=(1.0, 1.2), gamma=(1.05, 0.02),
                step=3),
    "high": dict(patch_size=7, search_size=(47, 47), n_similar=(90, 60), beta=(1.0, 1.2), gamma=(1.05, 0.02),
                 step=3),
}
SIGMAS = {"low": (5, 10, 15, 20, 25), "high": (30, 40, 50)}

def below(limit, low, high):
    """A change that is ``low`` up to σ₂₅₅ = ``limit`` and ``high`` above."""
    def change(sigma_255, n_channels):
        return low if sigma_255 <= limit else high
    change.text = f"{low} to σ {limit}, {high} above"
    return change


def by_kind(gray, color):
    """A change that is ``gray`` for one channel and ``color`` for three."""
    def change(sigma_255, n_channels):
        return gray if n_channels == 1 else color
    change.text = f"{gray} gray, {color} color"
    return change


#: name -> changes to the row's ``BEFORE``
CANDIDATES = {
    "low": {
        "before": {},
        "default": None,  # nlbayes_params as it is now
        "step4": dict(step=4),
        "step4_3": dict(step=(4, 3)),
        "step3_4": dict(step=(3, 4)),
        "step5_3": dict(step=(5, 3)),
        "win25": dict(search_size=(25, 21)),
        "win27": dict(search_size=(27, 21)),
        "win29": dict(search_size=(29, 21)),
        "win2_17": dict(search_size=(31, 17)),
        "win2_19": dict(search_size=(31, 19)),
        "n50": dict(n_similar=(50, 30)),
        "n40": dict(n_similar=(40, 30)),
        "n2_25": dict(n_similar=(60, 25)),
        "n2_20": dict(n_similar=(60, 20)),
        "n50_25": dict(n_similar=(50, 25)),
        "n40_20": dict(n_similar=(40, 20)),
        "win2_15": dict(search_size=(31, 15)),
        "step4_3_win2_17": dict(step=(4, 3), search_size=(31, 17)),
        "step4_3_win2_19": dict(step=(4, 3), search_size=(31, 19)),
        "step4_3_win2_15": dict(step=(4, 3), search_size=(31, 15)),
        "step4_3_win29": dict(step=(4, 3), search_size=(29, 21)),
        "step4_3_win29_19": dict(step=(4, 3), search_size=(29, 19)),
        "step4_3_n50": dict(step=(4, 3), n_similar=(50, 30)),
        "step4_3_win2_17_to15": dict(step=(4, 3), search_size=below(15, (31, 17), (31, 21))),
        "n2_40": dict(n_similar=(60, 40)),
        "step4_3_n2_40": dict(step=(4, 3), n_similar=(60, 40)),
        "step4_3_win2_17_n2_40": dict(step=(4, 3), search_size=(31, 17), n_similar=(60, 40)),
        "step4_3_kind": dict(step=(4, 3), search_size=by_kind((31, 17), (31, 21)),
                             n_similar=by_kind((60, 30), (60, 40))),
        # 3×3 patches in stage 1 (the basic estimate): a third of the distance arithmetic per candidate
        "p3_5": dict(patch_size=(3, 5)),
        "p3_5_win2_17": dict(patch_size=(3, 5), search_size=(31, 17)),
        "p3_5_win27_17": dict(patch_size=(3, 5), search_size=(27, 17)),
        "p3_5_n40": dict(patch_size=(3, 5), n_similar=(40, 30)),
        "p3_5_n80_win2_17": dict(patch_size=(3, 5), n_similar=(80, 30), search_size=(31, 17)),
        "p3_5_win2_19": dict(patch_size=(3, 5), search_size=(31, 19)),
        "p3_5_n2_40_win2_17": dict(patch_size=(3, 5), n_similar=(60, 40), search_size=(31, 17)),
    },
    "high": {
        "before": {},
        "default": None,
        "step4": dict(step=4),
        "step4_3": dict(step=(4, 3)),
        "step3_4": dict(step=(3, 4)),
        "win41": dict(search_size=(41, 41)),
        "win39": dict(search_size=(39, 39)),
        "win41_47": dict(search_size=(41, 47)),
        "win47_41": dict(search_size=(47, 41)),
        "n70_50": dict(n_similar=(70, 50)),
        "n70_60": dict(n_similar=(70, 60)),
        "n90_50": dict(n_similar=(90, 50)),
        "step4_n70_50": dict(step=4, n_similar=(70, 50)),
        "n90_40": dict(n_similar=(90, 40)),
        "step3_4_n90_50": dict(step=(3, 4), n_similar=(90, 50)),
        "step4_3_n90_50": dict(step=(4, 3), n_similar=(90, 50)),
        "step3_4_n90_50_win47_41": dict(step=(3, 4), n_similar=(90, 50), search_size=(47, 41)),
        "step4_3_n90_50_win47_41": dict(step=(4, 3), n_similar=(90, 50), search_size=(47, 41)),
        "step4_n90_50": dict(step=4, n_similar=(90, 50)),
        "step4_3_win47_41": dict(step=(4, 3), search_size=(47, 41)),
        # 5×5 patches in stage 1: half the distance arithmetic per candidate
        "p5_7": dict(patch_size=(5, 7)),
        "p5_7_n90_50": dict(patch_size=(5, 7), n_similar=(90, 50)),
        "p5_7_n60_50": dict(patch_size=(5, 7), n_similar=(60, 50)),
        "p5_7_step3_4_n90_50": dict(patch_size=(5, 7), n_similar=(90, 50), step=(3, 4)),
        "p5_7_win47_41": dict(patch_size=(5, 7), search_size=(47, 41)),
        "p5_7_n90_40": dict(patch_size=(5, 7), n_similar=(90, 40)),
        "p5_7_n120_50": dict(patch_size=(5, 7), n_similar=(120, 50)),
        "p5_7_n120_60": dict(patch_size=(5, 7), n_similar=(120, 60)),
    },
}


def rule(row, changes):
    """The parameter rule of a candidate (``changes`` None: the shipped presets); a change may be a function
    of (σ₂₅₅, channels): :func:`below`, :func:`by_kind`."""
    if changes is None:
        return nlbayes_params

    def params(sigma_255, n_channels=1):
        return {**BEFORE[row], **{k: v(sigma_255, n_channels) if callable(v) else v for k, v in changes.items()}}
    return params


def study(row, names, sigmas, seeds, with_bm3d, size=256, repeats=1, kind="all"):
    """{name: {"psnr": {σ: {image: [per seed]}}, "seconds": {σ: {image: total}}}} and BM3D's PSNR ("psnr"
    layout). ``repeats``: every call is made that many times (the rounds interleaved); its time is the median."""
    images = {n: common.load(n, size) for n in common.names(kind)}
    rules = {n: rule(row, CANDIDATES[row][n]) for n in names}
    res = {n: {"psnr": {s: {} for s in sigmas}, "seconds": {s: {} for s in sigmas}} for n in names}
    bm3d = {s: {} for s in sigmas} if with_bm3d else None
    turn = 0
    for seed in seeds:
        for s in sigmas:
            for img, clean in images.items():
                noisy = common.add_noise(clean, s, seed=seed).astype(np.float32)
                # rotate the order so no candidate always runs first (cache, clock) or last
                order = names[turn % len(names):] + names[:turn % len(names)]
                turn += 1
                times = {n: [] for n in order}
                for k in range(repeats):
                    for n in order:
                        den, secs = run_nlbayes(rules[n], noisy, s)
                        times[n].append(secs)
                        if k == 0:
                            value = nlmeans.psnr(clean, den) if np.isfinite(den).all() else float("nan")
                            res[n]["psnr"][s].setdefault(img, []).append(value)
                for n in order:
                    res[n]["seconds"][s][img] = res[n]["seconds"][s].get(img, 0.0) + float(np.median(times[n]))
                if bm3d is not None and s == 50:
                    den = bm3d_cached(img, size, s, seed, noisy, CACHE)
                    bm3d[s].setdefault(img, []).append(nlmeans.psnr(clean, den))
            print(f"  seed {seed} σ {s} done", flush=True)
    return res, bm3d


def _of(kind, img):
    return common.is_color(img) == (kind == "color")


def summary(psnr, kind):
    """Mean over the images of ``kind`` (gray/color) of the per-image mean over seeds (NaN: none, ``--kind``)."""
    values = [np.mean(v) for img, v in psnr.items() if _of(kind, img)]
    return float(np.mean(values)) if values else float("nan")


def seconds(res, kind):
    """Summed seconds of the calls on the images of ``kind``."""
    return sum(t for per_image in res["seconds"].values() for img, t in per_image.items() if _of(kind, img))


def verdict(res, base, bm3d, sigmas, kind):
    """For the images of ``kind``: (worst mean Δ over σ, worst per-image Δ, time ratio, passes the rule)."""
    if not any(_of(kind, img) for img in base["psnr"][sigmas[0]]):
        return float("nan"), float("nan"), float("nan"), False
    dm = min(summary(res["psnr"][s], kind) - summary(base["psnr"][s], kind) for s in sigmas)
    di = min(np.mean(v) - np.mean(base["psnr"][s][img])
             for s in sigmas for img, v in res["psnr"][s].items() if _of(kind, img))
    ratio = seconds(res, kind) / seconds(base, kind)
    ok = dm >= -0.02 and di >= -0.05 and ratio <= 0.85
    if bm3d is not None and 50 in sigmas:
        # "still >= BM3D": where before is already a hair below it (color, a tie), not below before
        ok = ok and summary(res["psnr"][50], kind) >= min(summary(bm3d[50], kind), summary(base["psnr"][50], kind))
    return dm, di, ratio, ok


def table(row, results, bm3d, sigmas, seeds, cmd):
    base = results["before"]
    head = [
        "", f"## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} — `{cmd}`", "",
        f"Row `{row}`, standard set ({len(base['psnr'][sigmas[0]])} images, 256²), seeds "
        f"{', '.join(map(str, seeds))}, true σ. Per σ: mean "
        "PSNR (dB) gray / color, in brackets the difference to `before`. Worst: the lowest of those differences "
        "over σ and the lowest per-image difference; time: summed seconds of the calls over `before`'s "
        "(interleaved, same process); each gray / color. Pass: the acceptance rule (see the script), gray / "
        "color.",
        "", "| candidate | change | " + " | ".join(f"σ = {s}" for s in sigmas)
        + " | worst Δ mean g / c | worst Δ image g / c | time g / c | pass g / c |",
        "|---|---|" + "---:|" * (len(sigmas) + 3) + "---|",
    ]
    lines = list(head)
    for name, res in results.items():
        changes = CANDIDATES[row][name]
        change = "shipped presets" if changes is None else ", ".join(
            f"{k}={getattr(v, 'text', v)}" for k, v in changes.items()) or "—"
        cells = []
        for s in sigmas:
            g, c = summary(res["psnr"][s], "gray"), summary(res["psnr"][s], "color")
            dg, dc = g - summary(base["psnr"][s], "gray"), c - summary(base["psnr"][s], "color")
            cells.append(f"{g:.2f} / {c:.2f} ({dg:+.3f} / {dc:+.3f})")
        g, c = (verdict(res, base, bm3d, sigmas, kind) for kind in ("gray", "color"))
        lines.append(f"| {name} | {change} | " + " | ".join(cells)
                     + f" | {g[0]:+.3f} / {c[0]:+.3f} | {g[1]:+.3f} / {c[1]:+.3f} | {g[2]:.2f} / {c[2]:.2f} | "
                     + f"{'yes' if g[3] else 'no'} / {'yes' if c[3] else 'no'} |")
    if bm3d is not None and 50 in sigmas:
        cells = [f"{summary(bm3d[s], 'gray'):.2f} / {summary(bm3d[s], 'color'):.2f}" if s == 50 else "–"
                 for s in sigmas]
        lines.append("| BM3D | bm3d package, true σ | " + " | ".join(cells) + " | | | | |")
    return lines


def main():
    parser = common.arg_parser(__doc__)
    parser.add_argument("--row", choices=sorted(CANDIDATES), required=True)
    parser.add_argument("--seeds", type=int, default=2, help="noise draws per (image, σ): seeds 0 … N − 1")
    parser.add_argument("--only", nargs="+", default=None, help="candidate names (before is always run)")
    parser.add_argument("--bm3d", action="store_true", help="BM3D at σ = 50 (cached outputs)")
    parser.add_argument("--kind", choices=("all", "gray", "color"), default="all", help="images (default all)")
    parser.add_argument("--repeats", type=int, default=1, help="calls per noisy image and candidate (median time)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.set_defaults(sigmas=None)
    args = parser.parse_args()
    sigmas = tuple(args.sigmas or SIGMAS[args.row])
    names = ["before", *[n for n in (args.only or CANDIDATES[args.row]) if n != "before"]]
    unknown = [n for n in names if n not in CANDIDATES[args.row]]
    if unknown:
        parser.error(f"unknown candidates for row {args.row}: {', '.join(unknown)}")
    seeds = list(common.seeds(args.seeds))
    warm_up()
    results, bm3d = study(args.row, names, sigmas, seeds, args.bm3d, args.size, args.repeats, args.kind)
    cmd = "python -m bench.nlbayes_cheaper " + " ".join(sys.argv[1:])
    lines = table(args.row, results, bm3d, sigmas, seeds, cmd)
    print("\n".join(lines))
    if args.no_write:
        return
    with open(common.RESULTS / "nlbayes_cheaper.md", "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    path = common.RESULTS / "nlbayes_cheaper.json"
    old = json.loads(path.read_text()) if path.exists() else []
    old.append({"command": cmd, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "row": args.row,
                "seeds": seeds, "results": {n: {"seconds": {str(s): v for s, v in r["seconds"].items()},
                                                "psnr": {str(s): v for s, v in r["psnr"].items()}}
                                            for n, r in results.items()},
                "bm3d": None if bm3d is None else {str(s): v for s, v in bm3d.items()}})
    path.write_text(json.dumps(old, indent=1) + "\n")


if __name__ == "__main__":
    main()
