"""NL-Bayes at high noise against BM3D on the standard set (issue #17, "High noise").

Each candidate is an NL-Bayes parameter rule (keyword arguments of ``nlmeans.nlbayes.nlbayes_chw`` as a function
of σ on the 0–255 scale); ``before`` is the preset this study started from, ``default`` whatever
``nlmeans.presets.nlbayes_params`` is now; the ``default_ms*`` candidates add a DCT multiscale pass that
exists only here (not in nlmeans). Every candidate and BM3D get the same float32 noisy image per
(image, σ, seed) (the bench's seed policy, bench/_common.py), the true σ, and PSNR against the clean crop.

BM3D (bm3d package, true σ, its default profile) takes seconds per image, so its outputs are cached per
(image, crop size, σ, seed) in ``--cache`` (default /tmp/nlmeans_bm3d_cache) and computed once.

    python -m bench.high_sigma [--sigmas 30 40 50 60 75] [--seeds 2] [--only NAME ...] [--bm3d-sigmas 50]
                               [--no-write]
    python -m bench.high_sigma --timing [--sigma 50] [--repeats 3]

The first form prints and appends to ``bench/results/high_sigma.md`` the mean PSNR per σ (all / gray /
color) of every candidate and of BM3D, and the per-image PSNR at σ = 50. ``--timing`` times ``before``,
``default`` and BM3D on the full 512² camera (gray) and astronaut (color) in one process, interleaved, after
a warm-up; median of ``--repeats`` runs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

import nlmeans
from nlmeans.nlbayes import nlbayes_chw
from nlmeans.presets import fit_size, nlbayes_params

from . import _common as common

CACHE = Path("/tmp/nlmeans_bm3d_cache")


def before(sigma_255, n_channels=1):
    """The preset this study started from (commit 5970820): one row above σ = 25."""
    if sigma_255 <= 25:
        patch, search, n_sim, step = 5, (31, 21), (60, 30), 3
    else:
        patch, search, n_sim, step = 7, (41, 41), (90, 60), 4
    return dict(patch_size=patch, search_size=search, n_similar=n_sim, beta=(1.0, 1.2), gamma=(1.05, 0.02),
                step=step)


def high(above=25, **changes):
    """A candidate: ``before`` with ``changes`` for σ > ``above`` (0–255 scale)."""
    def rule(sigma_255, n_channels=1):
        p = before(sigma_255, n_channels)
        if sigma_255 > above:
            p.update(changes)
        return p
    rule.changes = f"σ > {above}: " + ", ".join(f"{k}={v}" for k, v in changes.items())
    return rule


def multiscale(rule, keep=0.5):
    """A candidate: ``rule`` on the image and on its coarse scale (the lowest half of the orthonormal DCT
    frequencies on each axis, a half-size image with noise σ/2), the coarse result replacing the lowest
    ``keep`` of those frequencies of the fine one (Lebrun, Colom & Morel's multiscale idea, DCT split)."""
    def ms(sigma_255, n_channels=1):
        return rule(sigma_255, n_channels)
    ms.multiscale, ms.keep = rule, keep
    ms.changes = f"default + DCT multiscale pass (coarse σ/2, lowest {keep:g} of its frequencies)"
    return ms


CANDIDATES = {
    "before": before,
    "default": nlbayes_params,
    # the reference grid: every pixel in more groups (the paper's offset is half a patch: 3 for 7×7)
    "step3": high(step=3),
    "step2": high(step=2),
    "step3_2": high(step=(3, 2)),
    "step2_3": high(step=(2, 3)),
    "step4_3": high(step=(4, 3)),
    # the paper's gray table at σ ≥ 40: stage-2 patches 5×5, groups of 90 and 30, β₂ = 0.9
    "paper": high(patch_size=(7, 5), n_similar=(90, 30), beta=(1.0, 0.9), step=(3, 2)),
    "p7_5_n60": high(patch_size=(7, 5), n_similar=(90, 60), step=(4, 3)),
    # larger patches and groups
    "p9": high(patch_size=9, n_similar=(150, 100), step=5),
    "p9_7": high(patch_size=(9, 7), n_similar=(150, 60), step=(5, 4)),
    "n120_80": high(n_similar=(120, 80)),
    "n2_90": high(n_similar=(90, 90)),
    "n2_40": high(n_similar=(90, 40)),
    # stage 2's Wiener weight and the homogeneous thresholds
    "beta2_1.0": high(beta=(1.0, 1.0)),
    "beta2_1.4": high(beta=(1.0, 1.4)),
    "beta1_0.9": high(beta=(0.9, 1.2)),
    "gamma1_1.1": high(gamma=(1.1, 0.02)),
    "gamma2_0.05": high(gamma=(1.05, 0.05)),
    "search51": high(search_size=(51, 51)),
    "search2_31": high(search_size=(41, 31)),
    # combinations of the two that helped (finer grid, wider windows)
    "s3_w51": high(step=3, search_size=(51, 51)),
    "s3_w51_41": high(step=3, search_size=(51, 41)),
    "s3_w47": high(step=3, search_size=(47, 47)),
    "s32_w51": high(step=(3, 2), search_size=(51, 51)),
    "s2_w51": high(step=2, search_size=(51, 51)),
    "p9_7_s43": high(patch_size=(9, 7), n_similar=(150, 60), step=(4, 3)),
    "p9_7_s43_w51": high(patch_size=(9, 7), n_similar=(150, 60), step=(4, 3), search_size=(51, 51)),
    # a multiscale pass on top of the default (bench only: not in nlmeans)
    "default_ms0.5": multiscale(nlbayes_params, 0.5),
    "default_ms1": multiscale(nlbayes_params, 1.0),
}


def _dct_multiscale(ms, noisy, sigma_255):
    from scipy.fft import dctn, idctn

    fine, _ = run_nlbayes(ms.multiscale, noisy, sigma_255)
    h, w = noisy.shape[0] // 2, noisy.shape[1] // 2
    # orthonormal DCT: the h × w lowest coefficients / 2 are a half-size image with white noise of σ/2
    coarse = idctn(dctn(noisy.astype(np.float64), axes=(0, 1), norm="ortho")[:h, :w], axes=(0, 1), norm="ortho")
    coarse, _ = run_nlbayes(ms.multiscale, (coarse / 2).astype(np.float32), sigma_255 / 2)
    d = dctn(fine.astype(np.float64), axes=(0, 1), norm="ortho")
    hk, wk = int(h * ms.keep), int(w * ms.keep)
    d[:hk, :wk] = 2 * dctn(coarse.astype(np.float64), axes=(0, 1), norm="ortho")[:hk, :wk]
    return idctn(d, axes=(0, 1), norm="ortho").astype(noisy.dtype)


def chw(image):
    return image[None] if image.ndim == 2 else np.ascontiguousarray(np.moveaxis(image, -1, 0))


def hwc(value, ndim):
    return value[0] if ndim == 2 else np.moveaxis(value, 0, -1)


def fitted(params, shape):
    """``params`` with the patch and search sizes shrunk to the image (as the presets do)."""
    limit = min(shape)
    out = dict(params)
    for key in ("patch_size", "search_size"):
        v = out[key]
        out[key] = fit_size(v, limit) if np.ndim(v) == 0 else tuple(fit_size(x, limit) for x in v)
    return out


def run_nlbayes(rule, noisy, sigma_255):
    """Denoised ``noisy`` (H, W) or (H, W, 3) float32 with ``rule``'s parameters; seconds."""
    if getattr(rule, "multiscale", None) is not None:
        t0 = time.perf_counter()
        out = _dct_multiscale(rule, noisy, sigma_255)
        return out, time.perf_counter() - t0
    value = chw(noisy)
    params = fitted(rule(float(sigma_255), value.shape[0]), value.shape[1:])
    t0 = time.perf_counter()
    out = nlbayes_chw(value, sigma_255 / 255, **params)
    return hwc(out, noisy.ndim), time.perf_counter() - t0


def run_bm3d(noisy, sigma_255):
    """BM3D as bench/quality.py runs it (nlmeans.eval.registry: bm3d / bm3d_rgb, true σ); seconds."""
    from nlmeans.eval.registry import REGISTRY

    t0 = time.perf_counter()
    out = REGISTRY["bm3d"].core(noisy, sigma_255 / 255, 1.0, sigma_scale=1.0)
    return out, time.perf_counter() - t0


def bm3d_cached(name, size, sigma_255, seed, noisy, cache):
    """BM3D's output for (image, crop size, σ, seed), computed once and kept in ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{name}_{size}_s{sigma_255}_seed{seed}.npy"
    if path.exists():
        return np.load(path)
    out, _ = run_bm3d(noisy, sigma_255)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)
    return out


def warm_up():
    """Compile numba's kernels (both stages, gray and color) before anything is timed."""
    tiny = np.random.default_rng(0).random((40, 40, 3)).astype(np.float32)
    for image in (tiny[..., 0], tiny):
        run_nlbayes(lambda s, c: {**before(s, c), "search_size": (21, 21)}, image, 50)


def study(args):
    images = {n: common.load(n, args.size) for n in common.names()}
    gray = set(common.names("gray"))
    names = ["before", "default", *(n for n in (args.only or CANDIDATES) if n not in ("before", "default"))]
    warm_up()
    # psnr[method][σ][image] = mean over seeds
    bm3d_sigmas = set(args.sigmas if args.bm3d_sigmas is None else args.bm3d_sigmas)
    psnr = {m: {s: {} for s in args.sigmas} for m in names}
    if bm3d_sigmas:
        psnr["bm3d"] = {s: {} for s in args.sigmas if s in bm3d_sigmas}
    seconds = {m: {s: 0.0 for s in args.sigmas} for m in names}
    for s in args.sigmas:
        for img, clean in images.items():
            acc = {m: [] for m in psnr}
            for seed in common.seeds(args.seeds):
                noisy = common.add_noise(clean, s, seed=seed).astype(np.float32)
                if s in bm3d_sigmas:
                    den = bm3d_cached(img, args.size, s, seed, noisy, args.cache)
                    acc["bm3d"].append(nlmeans.psnr(clean, den))
                for m in names:
                    den, secs = run_nlbayes(CANDIDATES[m], noisy, s)
                    seconds[m][s] += secs
                    acc[m].append(nlmeans.psnr(clean, den) if np.isfinite(den).all() else float("nan"))
            for m, v in acc.items():
                if v:
                    psnr[m][s][img] = float(np.mean(v))
        line = "  ".join(f"{m} {np.mean(list(psnr[m][s].values())):.3f}" for m in psnr if s in psnr[m])
        print(f"σ={s}: {line}", flush=True)

    def mean(m, s, kind):
        v = psnr[m][s]
        keep = {"all": v, "gray": [k for k in v if k in gray], "color": [k for k in v if k not in gray]}[kind]
        return float(np.mean([v[k] for k in keep]))

    cmd = "python -m bench.high_sigma " + " ".join(sys.argv[1:])
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = ["", f"## {stamp} — `{cmd}`", "",
             f"Standard set ({len(images)} images, crops ≤ {args.size}²), seeds {list(common.seeds(args.seeds))}, "
             "true σ. Mean PSNR (dB) gray / color, and in brackets the gray difference to `before`; "
             "NL-Bayes seconds summed over the set and seeds (shared machine, niced: indicative).", "",
             "| candidate | change | " + " | ".join(f"σ = {s} gray / color (Δ gray)" for s in args.sigmas)
             + " | seconds at σ = " + str(args.sigmas[-1]) + " |",
             "|---|---|" + "---:|" * (len(args.sigmas) + 1)]
    for m in psnr:
        cells = []
        for s in args.sigmas:
            if s not in psnr[m]:
                cells.append("–")
                continue
            d = mean(m, s, "gray") - mean("before", s, "gray")
            cells.append(f"{mean(m, s, 'gray'):.3f} / {mean(m, s, 'color'):.3f} ({d:+.3f})")
        change = ("bm3d package, true σ" if m == "bm3d" else getattr(CANDIDATES[m], "changes", "")
                  or ("the preset before" if m == "before" else "nlmeans.presets.nlbayes_params"))
        secs = "–" if m == "bm3d" else f"{seconds[m][args.sigmas[-1]]:.1f}"
        lines.append(f"| {m} | {change} | " + " | ".join(cells) + f" | {secs} |")
    for s in args.sigmas:
        if s != 50:
            continue
        lines += ["", f"Per image at σ = {s} (mean over seeds):", "",
                  "| method | " + " | ".join(images) + " |", "|---|" + "---:|" * len(images)]
        for m in (m for m in psnr if s in psnr[m]):
            lines.append(f"| {m} | " + " | ".join(f"{psnr[m][s][k]:.2f}" for k in images) + " |")
    print("\n".join(lines))
    if not args.no_write:
        with open(common.RESULTS / "high_sigma.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        path = common.RESULTS / "high_sigma.json"
        old = json.loads(path.read_text()) if path.exists() else []
        old.append({"command": cmd, "date": stamp, "psnr": {m: {str(s): v for s, v in d.items()}
                                                            for m, d in psnr.items()},
                    "seconds": {m: {str(s): v for s, v in d.items()} for m, d in seconds.items()}})
        path.write_text(json.dumps(old, indent=1) + "\n")


def timing(args):
    """Seconds per call on full 512² images, ``before`` / ``default`` / BM3D interleaved in one process."""
    from nlmeans.io import read_image

    warm_up()
    rows = []
    for name in ("camera", "astronaut"):
        clean = read_image(common.DATA / f"{name}.png").data.astype(np.float64) / 255.0
        noisy = common.add_noise(clean, args.sigma, seed=0).astype(np.float32)
        times = {"before": [], "default": [], "bm3d": []}
        db = {}
        for _ in range(args.repeats):
            for m in ("before", "default"):
                den, secs = run_nlbayes(CANDIDATES[m], noisy, args.sigma)
                times[m].append(secs)
                db[m] = nlmeans.psnr(clean, den)
            den, secs = run_bm3d(noisy, args.sigma)
            times["bm3d"].append(secs)
            db["bm3d"] = nlmeans.psnr(clean, den)
        med = {m: float(np.median(v)) for m, v in times.items()}
        rows.append(f"| {name} {'×'.join(map(str, clean.shape))} | {med['before']:.2f} | {med['default']:.2f} | "
                    f"{med['default'] / med['before']:.2f} | {med['bm3d']:.2f} | "
                    f"{med['bm3d'] / med['default']:.1f}× | "
                    f"{db['before']:.2f} / {db['default']:.2f} / {db['bm3d']:.2f} |")
        print(rows[-1], flush=True)
    cmd = "python -m bench.high_sigma " + " ".join(sys.argv[1:])
    lines = ["", f"## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} — `{cmd}`", "",
             f"σ = {args.sigma}, seconds per call, median of {args.repeats} interleaved runs after a warm-up, "
             "one process (shared 2-core machine, niced: ratios are the meaningful part).", "",
             "| image | before s | default s | default / before | BM3D s | BM3D / default | "
             "PSNR dB before / default / BM3D (seed 0) |",
             "|---|---:|---:|---:|---:|---:|---:|", *rows]
    print("\n".join(lines))
    if not args.no_write:
        with open(common.RESULTS / "high_sigma.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


def main():
    parser = common.arg_parser(__doc__, sigmas=(30, 40, 50, 60, 75))
    parser.add_argument("--seeds", type=int, default=2, help="noise draws per (image, σ): seeds 0 … N − 1")
    parser.add_argument("--only", nargs="+", default=None, choices=list(CANDIDATES), help="candidates")
    parser.add_argument("--cache", type=Path, default=CACHE, help="BM3D output cache directory")
    parser.add_argument("--bm3d-sigmas", type=int, nargs="*", default=None,
                        help="σ at which BM3D runs too (default every σ; none: NL-Bayes only)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--timing", action="store_true", help="time before / default / BM3D on 512² images")
    parser.add_argument("--sigma", type=int, default=50, help="σ (0–255) of --timing")
    parser.add_argument("--repeats", type=int, default=3, help="runs per method of --timing")
    args = parser.parse_args()
    (timing if args.timing else study)(args)


if __name__ == "__main__":
    main()
