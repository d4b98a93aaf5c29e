"""Speed of the default method (NL-Bayes) against OpenCV, its first-run compile time, and its quality.

Run from the repository root (needs the ``bench`` extra)::

    python -m bench.nlbayes_speed                    # timings (512² gray, 2048² gray, 512² color) + compile
    python -m bench.nlbayes_speed --quality          # mean PSNR of the default on the standard set, σ 10 20 30
    python -m bench.nlbayes_speed --runs 7 --threads 2 --no-compile
    python -m bench.nlbayes_speed --cpu              # one-thread process CPU per call (512² gray and color)

Timings: ``nlmeans.denoise(noisy, σ)`` (the defaults: NL-Bayes, float32) and OpenCV's
``fastNlMeansDenoising(u8, None, 20, 7, 21)`` / ``fastNlMeansDenoisingColored(u8, None, 20, 20, 7, 21)`` on the
same noisy image (σ = 20/255, seed 0; OpenCV gets it rounded to uint8), both with ``--threads`` threads, side by
side in one process: one warm-up call each, then ``--runs`` rounds calling each once, the median wall time
(``time.perf_counter``) per method. Ratio = ours / OpenCV (below 1: we are faster). Images as in
bench/speed.py: data/camera.png, the same upscaled to 2048², data/astronaut.png.

One-thread CPU (``--cpu``): the process CPU time (``time.process_time``) of one ``nlmeans.denoise`` call with
``numba.set_num_threads(1)`` on each image, minimum and median of ``--runs`` after a warm-up: nearly immune to
the other processes on the machine, where wall times are not.

Compile: a fresh subprocess with an empty ``NUMBA_CACHE_DIR`` imports nlmeans, then denoises a 64² gray image
twice with the defaults; "compile" is the first call less the second (the NL-Bayes kernels compiled for
float32), also given as the process CPU time of the first call (steadier than wall time on a loaded machine).

Quality: the default (float32 input, true σ) on the standard set (bench/_common.py, 256² crops, seed 0); mean
PSNR per σ over the set and a hash of all outputs (equal hashes: bit-identical results).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

from . import _common as common
from ._common import ROOT

SIGMA_255 = 20.0


def _images():
    from skimage.transform import resize

    from nlmeans.io import read_image

    camera = read_image(common.DATA / "camera.png").data.astype(np.float32) / 255
    astronaut = read_image(common.DATA / "astronaut.png").data[..., :3].astype(np.float32) / 255
    large = resize(camera, (2048, 2048), order=1, anti_aliasing=False).astype(np.float32)
    return {"gray512": camera, "gray2048": large, "color512": astronaut}


def _cases(noisy, u8, axis, sigma):
    """The two timed calls on one image: the default method, and OpenCV (h = σ₂₅₅, patch 7, search 21)."""
    import cv2

    import nlmeans

    h = SIGMA_255
    if axis is None:
        def peer():
            return cv2.fastNlMeansDenoising(u8, None, h, 7, 21)
    else:
        def peer():
            return cv2.fastNlMeansDenoisingColored(u8, None, h, h, 7, 21)
    return {"ours": lambda: nlmeans.denoise(noisy, sigma, channel_axis=axis), "opencv": peer}


def bench_speed(runs, threads):
    import cv2
    import numba

    import nlmeans

    numba.set_num_threads(threads)
    cv2.setNumThreads(threads)
    sigma = SIGMA_255 / 255
    rows = []
    for name, clean in _images().items():
        noisy = common.add_noise(clean, SIGMA_255, seed=0).astype(np.float32)
        u8 = np.clip(np.round(noisy * 255), 0, 255).astype(np.uint8)
        axis = -1 if clean.ndim == 3 else None
        cases = _cases(noisy, u8, axis, sigma)
        times = {k: [] for k in cases}
        outs = {k: fn() for k, fn in cases.items()}  # warm-up
        for _ in range(runs):
            for k, fn in cases.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        p_ours = nlmeans.psnr(clean, outs["ours"])
        p_cv = nlmeans.psnr(clean, outs["opencv"].astype(np.float32) / 255)
        rows.append({"image": name, "ours_s": med["ours"], "opencv_s": med["opencv"],
                     "ratio": med["ours"] / med["opencv"], "psnr_ours": p_ours, "psnr_opencv": p_cv})
        print(f"  {name:9s} ours {med['ours'] * 1e3:8.1f} ms ({p_ours:.2f} dB)   OpenCV "
              f"{med['opencv'] * 1e3:7.1f} ms ({p_cv:.2f} dB)   ratio {rows[-1]['ratio']:.2f}", flush=True)
    return rows


def bench_cpu(runs):
    import numba

    import nlmeans

    numba.set_num_threads(1)
    rows = []
    for name, clean in _images().items():
        if name == "gray2048":  # 16x the 512² call: long, and adds nothing one-threaded
            continue
        noisy = common.add_noise(clean, SIGMA_255, seed=0).astype(np.float32)
        axis = -1 if clean.ndim == 3 else None
        nlmeans.denoise(noisy, SIGMA_255 / 255, channel_axis=axis)  # warm-up
        times = []
        for _ in range(runs):
            c0 = time.process_time()
            nlmeans.denoise(noisy, SIGMA_255 / 255, channel_axis=axis)
            times.append(time.process_time() - c0)
        rows.append({"image": name, "cpu_min_s": min(times), "cpu_median_s": statistics.median(times)})
        print(f"  {name:9s} 1 thread, process CPU per call: min {min(times) * 1e3:.1f} ms, median "
              f"{statistics.median(times) * 1e3:.1f} ms", flush=True)
    return rows


_COMPILE_CHILD = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import numpy as np, numba
    numba.set_num_threads(int(sys.argv[1]))
    import nlmeans
    t1 = time.perf_counter()
    c1 = time.process_time()
    x = nlmeans.add_noise(np.full((64, 64), 0.5, np.float32), 0.08, seed=0).astype(np.float32)
    nlmeans.denoise(x, 0.08)
    t2 = time.perf_counter()
    c2 = time.process_time()
    nlmeans.denoise(x, 0.08)
    t3 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "first_s": t2 - t1, "second_s": t3 - t2, "first_cpu_s": c2 - c1}))
""")


def bench_compile(threads):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _COMPILE_CHILD, str(threads)], env=env, cwd=ROOT,
                              capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
    res = json.loads(done.stdout.strip().splitlines()[-1])
    res["compile_s"] = res["first_s"] - res["second_s"]
    res["process_wall_s"] = wall
    print(f"  compile (empty cache): import {res['import_s']:.2f} s, first call {res['first_s']:.2f} s "
          f"(compile {res['compile_s']:.2f} s; "
          f"process CPU {res['first_cpu_s']:.2f} s), second {res['second_s'] * 1e3:.1f} ms, process {wall:.2f} s")
    return res


def bench_quality(sigmas, size):
    import nlmeans

    digest = hashlib.sha256()
    means = {}
    for s in sigmas:
        vals = []
        for name in common.names():
            clean = common.load(name, size)
            noisy = common.add_noise(clean, s, seed=0).astype(np.float32)
            out = nlmeans.denoise(noisy, s / 255, channel_axis=-1 if common.is_color(name) else None)
            digest.update(np.ascontiguousarray(out).tobytes())
            vals.append(nlmeans.psnr(clean, out))
        means[s] = float(np.mean(vals))
        print(f"  σ {s:3d}: mean PSNR {means[s]:.3f} dB over {len(vals)} images", flush=True)
    print(f"  outputs sha256 {digest.hexdigest()[:16]}")
    return means


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-compile", action="store_true", help="skip the empty-cache compile measurement")
    parser.add_argument("--quality", action="store_true", help="only the quality check on the standard set")
    parser.add_argument("--compile-only", action="store_true", help="only the empty-cache compile measurement")
    parser.add_argument("--cpu", action="store_true", help="only the one-thread CPU time per call (512² images)")
    parser.add_argument("--sigmas", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    if args.quality:
        bench_quality(args.sigmas, args.size)
        return
    if args.compile_only:
        bench_compile(args.threads)
        return
    if args.cpu:
        print(f"NL-Bayes default, 1 thread, process CPU, {args.runs} runs")
        bench_cpu(args.runs)
        return
    print(f"NL-Bayes default vs OpenCV, {args.threads} threads, median of {args.runs}")
    bench_speed(args.runs, args.threads)
    if not args.no_compile:
        bench_compile(args.threads)


if __name__ == "__main__":
    main()
