"""Speed of nlmeans against OpenCV and scikit-image, side by side in one process.

Run from the repository root (needs the ``bench`` extra: opencv-python-headless, scikit-image)::

    python -m bench.speed                 # full run, writes bench/results/speed.json
    python -m bench.speed --runs 7 --no-large --no-memory --no-startup   # quicker
    python -m bench.speed --only-startup --runs 5   # the two start-up targets alone, bench/results/startup.json

Every method gets the same number of threads (all cores, or ``--threads``), one warm-up call, then the median of
``--runs`` timed calls (wall clock, ``time.perf_counter``), in rounds that call every method once; a method
faster than 1 s gets an untimed call right before each timed one (see ``_timed_interleaved``). Images:
``data/camera.png`` (512×512 gray), the same upscaled to 2048×2048, and ``data/astronaut.png`` (512×512 color),
with Gaussian noise σ = 20/255 (seed 0, the bench's seed policy); PSNR against the clean image. Ratios are
ours / peer (below 1: we are faster).

Besides the timings it measures (each in a fresh subprocess):

- peak memory (RSS) of denoising a 4096×4096 gray float32 image, against the budget "input + 6 image-sized
  float32 buffers + per-thread tiles";
- start-up: ``nlmeans denoise`` of a 512×512 PNG and ``nlmeans demo`` end to end, with an empty numba cache
  (compile time) and again (cached).

At the end it prints one gated line per target of issue #17 (:data:`TARGETS`: pixelwise ≤ 0.2× OpenCV on gray,
the defaults ≤ 1× OpenCV, the first ``nlmeans demo`` ≤ 6 s, the cached ``nlmeans denoise`` ≤ 1 s), ``[ok]`` or
``[MISS]``; ``--check`` makes a miss the exit status. The other ratios are printed for information.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from . import _common as common
from ._common import ROOT

SIGMA_255 = 20.0
PATCH, SEARCH = 7, 21
WARM_BELOW_S = 1.0  # cases faster than this get an untimed call right before each timed one


def _machine():
    """CPU model, core count and whether AVX-512 is there (from /proc/cpuinfo on Linux)."""
    model, flags = platform.processor() or "unknown", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "x86_64", ""):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "avx512f": " avx512f" in flags,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _steal_s():
    """CPU time the hypervisor took from this (virtual) machine so far, all CPUs, in seconds (``steal`` in
    /proc/stat; 0 where unknown). A run whose methods saw steal time was measured on a contended host."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _timed_interleaved(cases, runs):
    """Time every case ``runs`` times, round-robin: one warm-up call each, then rounds that call every case once.

    On a shared machine, load that comes and goes then hits every method alike instead of whichever happened
    to run at that moment; the order rotates each round so no case always follows the same one.

    Every timed call of a case shorter than ``WARM_BELOW_S`` directly follows an untimed call of the same case:
    after a long single-threaded method (scikit-image) the other core has idled, and a 20 ms two-thread call
    that starts on it cold is ~20 % slower (512² gray, ours: 19.7 ms back to back, 24.4 ms after 50 ms idle).
    That penalty is a few milliseconds, so it only skews short cases, and every case is timed warm alike.
    Returns ``{name: (median_s, times, last result, median process CPU s, host steal s over all runs)}``.
    """
    names = list(cases)
    outs = {}
    warm = {}
    for name in names:
        t = time.perf_counter()
        outs[name] = cases[name]()
        warm[name] = time.perf_counter() - t < WARM_BELOW_S
    times = {name: [] for name in names}
    cpu = {name: [] for name in names}
    steal = dict.fromkeys(names, 0.0)
    for k in range(runs):
        for name in names[k % len(names):] + names[:k % len(names)]:
            if warm[name]:
                cases[name]()
            s = _steal_s()
            c = time.process_time()
            t = time.perf_counter()
            outs[name] = cases[name]()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            steal[name] += _steal_s() - s
    return {name: (float(np.median(times[name])), times[name], outs[name], float(np.median(cpu[name])),
                   steal[name]) for name in names}


def _images():
    from skimage.transform import resize

    from nlmeans.io import read_image

    camera = read_image(common.DATA / "camera.png").data.astype(np.float32) / 255
    astronaut = read_image(common.DATA / "astronaut.png").data[..., :3].astype(np.float32) / 255
    large = resize(camera, (2048, 2048), order=1, anti_aliasing=False).astype(np.float32)
    return {"gray512": camera, "gray2048": large, "color512": astronaut}


def _noisy(clean, seed=0):
    """Noisy float32 (not clipped, exact Gaussian) and its uint8 version (clipped, rounded)."""
    noisy = common.add_noise(clean, SIGMA_255, seed=seed).astype(np.float32)
    u8 = np.clip(np.round(noisy * 255), 0, 255).astype(np.uint8)
    return noisy, u8


def _to_unit(x):
    return x.astype(np.float32) / 255 if x.dtype == np.uint8 else x


def _tune_opencv_h(noisy_u8, clean, color):
    """OpenCV's h (0–255 scale, hColor = h for color) that gives the best PSNR, on a grid around σ."""
    import cv2

    from nlmeans import psnr

    best = None
    for k in (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3):
        h = k * SIGMA_255
        if color:
            out = cv2.fastNlMeansDenoisingColored(noisy_u8, None, h, h, PATCH, SEARCH)
        else:
            out = cv2.fastNlMeansDenoising(noisy_u8, None, h, PATCH, SEARCH)
        p = psnr(clean, _to_unit(out))
        if best is None or p > best[1]:
            best = (h, p)
    return best[0]


def _tune_ours_h(noisy, clean, axis):
    """Our h (float scale) at patch 7, search 21 that gives the best PSNR, on a grid of multiples of σ."""
    import nlmeans

    sigma = SIGMA_255 / 255
    best = None
    for k in (0.4, 0.5, 0.6, 0.7, 0.8):
        out = nlmeans.denoise(noisy, sigma, h=k * sigma, patch_size=PATCH, search_size=SEARCH, channel_axis=axis,
                              method="pixelwise")
        p = nlmeans.psnr(clean, out)
        if best is None or p > best[1]:
            best = (k * sigma, p)
    return best[0]


def _cases(noisy, u8, axis, h_cv, h_ours, sigma):
    """The timed calls for one image: ours (P7 S21 float32 and uint8, and defaults), OpenCV, scikit-image."""
    import cv2
    from skimage.restoration import denoise_nl_means

    import nlmeans

    cases = {
        "nlmeans float32 (P7 S21)": lambda: nlmeans.denoise(
            noisy, sigma, h=h_ours, patch_size=PATCH, search_size=SEARCH, channel_axis=axis, method="pixelwise"),
        "nlmeans uint8 (P7 S21)": lambda: nlmeans.denoise(
            u8, sigma, h=h_ours, patch_size=PATCH, search_size=SEARCH, channel_axis=axis, method="pixelwise"),
        "nlmeans float32 (defaults: NL-Bayes)": lambda: nlmeans.denoise(noisy, sigma, channel_axis=axis),
    }
    if axis is not None:
        cases["OpenCV fastNlMeansDenoisingColored (uint8)"] = lambda: cv2.fastNlMeansDenoisingColored(
            u8, None, h_cv, h_cv, PATCH, SEARCH)
    else:
        cases["OpenCV fastNlMeansDenoising (uint8)"] = lambda: cv2.fastNlMeansDenoising(
            u8, None, h_cv, PATCH, SEARCH)
    cases["scikit-image denoise_nl_means fast_mode"] = lambda: denoise_nl_means(
        noisy, patch_size=PATCH, patch_distance=SEARCH // 2, h=0.8 * sigma, sigma=sigma, fast_mode=True,
        channel_axis=axis)
    return cases


def bench_speed(runs, threads, large):
    import cv2
    import numba

    from nlmeans import psnr

    numba.set_num_threads(threads)
    cv2.setNumThreads(threads)
    images = _images()
    if not large:
        images.pop("gray2048")
    sigma = SIGMA_255 / 255
    rows = []
    tuned = {}  # h of OpenCV and ours, tuned on the 512×512 images (the 2048² gray one reuses the gray values)
    for name, clean in images.items():
        color = clean.ndim == 3
        axis = -1 if color else None
        noisy, u8 = _noisy(clean)
        if color not in tuned:
            tuned[color] = (_tune_opencv_h(u8, clean, color), _tune_ours_h(noisy, clean, axis))
        h_cv, h_ours = tuned[color]
        cases = _cases(noisy, u8, axis, h_cv, h_ours, sigma)
        for method, (med, times, out, cpu, steal) in _timed_interleaved(cases, runs).items():
            rows.append({
                "image": name, "shape": list(clean.shape), "method": method, "median_s": med,
                "times_s": times, "psnr": float(psnr(clean, _to_unit(np.asarray(out)))), "median_cpu_s": cpu,
                "host_steal_s": steal,
            })
            # CPU time of the whole process during the call (all its threads): about threads x wall when every
            # thread computes the whole time; less when they wait, more when another library's idle pool spins.
            # Host steal: time the hypervisor gave our virtual CPUs to others during this method's timed runs.
            print(f"  {name:9s} {method:42s} {med * 1e3:9.1f} ms  PSNR {rows[-1]['psnr']:.2f} dB  "
                  f"(process CPU {cpu * 1e3:.1f} ms, host steal {steal * 1e3:.0f} ms)", flush=True)
        print(f"  {name:9s} h (best PSNR on a grid): OpenCV {h_cv:.1f}/255, ours {255 * h_ours:.1f}/255; "
              f"scikit-image h = 0.8σ", flush=True)
        for row in rows:
            if row["image"] == name:
                row["h_255"] = (h_cv if row["method"].startswith("OpenCV") else 255 * h_ours
                                if "(P7 S21)" in row["method"] else None)
    return rows


def ratios(rows):
    """ours / peer for every image: ours float32 and uint8 (P7 S21) against OpenCV and scikit-image."""
    out = []
    by = {(r["image"], r["method"]): r for r in rows}
    for image in dict.fromkeys(r["image"] for r in rows):
        peers = [m for (i, m) in by if i == image and not m.startswith("nlmeans")]
        for ours in ("nlmeans float32 (P7 S21)", "nlmeans uint8 (P7 S21)"):
            for peer in peers:
                a, b = by[(image, ours)], by[(image, peer)]
                out.append({"image": image, "ours": ours, "peer": peer,
                            "ratio": a["median_s"] / b["median_s"], "psnr_ours": a["psnr"],
                            "psnr_peer": b["psnr"]})
    return out


_MEMORY_CHILD = textwrap.dedent("""
    import json, sys, numpy as np, numba
    numba.set_num_threads(int(sys.argv[1]))
    import nlmeans
    from nlmeans._config import band_rows

    def status(key):  # kB lines of /proc/self/status, in bytes
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    kw = dict(h=0.05, patch_size=7, search_size=21, method="pixelwise")  # the fast path of issue #5
    nlmeans.denoise(np.zeros((64, 64), np.float32), 0.1, **kw)  # compile / load
    n = 4096
    img = np.random.default_rng(0).random((n, n), dtype=np.float32)
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
        fh.write("5")
    base = status("VmRSS")
    out = nlmeans.denoise(img, 0.08, **kw)
    peak = status("VmHWM")
    r, f = 10, 3
    B, Wp = band_rows(r), n + 2 * (r + f)
    tiles = numba.get_num_threads() * 4 * ((B + r) * n * 2 + 8 * Wp)
    print(json.dumps({"baseline_bytes": base, "peak_bytes": peak, "image_bytes": img.nbytes,
                      "tile_bytes": tiles}))
""")


def bench_memory(threads):
    """Peak RSS of denoising a 4096² float32 image in a fresh process, minus the RSS with the input made.

    Linux only: the peak (VmHWM) is reset through /proc/self/clear_refs once the input exists, so the numba
    compilation or cache loading before it does not count.
    """
    res = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(threads)], capture_output=True, text=True,
                         check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    m = json.loads(res.stdout.strip().splitlines()[-1])
    m["extra_bytes"] = m["peak_bytes"] - m["baseline_bytes"]
    m["budget_bytes"] = 6 * m["image_bytes"] + m["tile_bytes"]
    m["within_budget"] = m["extra_bytes"] <= m["budget_bytes"]
    return m


#: command lines timed by bench_startup: the fast path of issue #5, and the defaults (σ estimated, NL-Bayes)
STARTUP_COMMANDS = {
    "pixelwise": ["--sigma", "20", "--method", "pixelwise", "--patch", "7", "--search", "21"],
    "defaults": [],
    "demo": None,  # ``nlmeans demo`` (the cameraman, σ = 20, the defaults)
}

#: the gated targets of issue #17: (key, what, limit); ratios are ours / OpenCV's median time, times in seconds
TARGETS = [
    *((f"{image}/pixelwise/{kind}", f"{image} pixelwise {kind} (P7 S21) / OpenCV", 0.2)
      for image in ("gray512", "gray2048") for kind in ("float32", "uint8")),
    *((f"{image}/defaults", f"{image} defaults (NL-Bayes) / OpenCV", 1.0)
      for image in ("gray512", "gray2048", "color512")),
    ("startup/demo/first", "first `nlmeans demo`, empty numba cache (s)", 6.0),
    ("startup/defaults/cached", "cached `nlmeans denoise` 512² PNG, defaults (s, median)", 1.0),
]


def target_values(rows, startup):
    """The measured value of every :data:`TARGETS` key that was measured (None for the others)."""
    by = {(r["image"], r["method"]): r["median_s"] for r in rows}
    values = dict.fromkeys(key for key, _, _ in TARGETS)
    for image in ("gray512", "gray2048", "color512"):
        peer = next((t for (i, m), t in by.items() if i == image and m.startswith("OpenCV")), None)
        if peer is None:
            continue
        for kind in ("float32", "uint8"):
            if (image, f"nlmeans {kind} (P7 S21)") in by and f"{image}/pixelwise/{kind}" in values:
                values[f"{image}/pixelwise/{kind}"] = by[(image, f"nlmeans {kind} (P7 S21)")] / peer
        values[f"{image}/defaults"] = by[(image, "nlmeans float32 (defaults: NL-Bayes)")] / peer
    if startup:
        values["startup/demo/first"] = startup["demo"]["first_run_s"]
        values["startup/defaults/cached"] = startup["defaults"]["cached_median_s"]
    return values


def print_targets(values):
    """One gated line per target, ``[ok]``, ``[MISS]`` or ``[--]`` (not measured); returns the misses."""
    print("\ntargets (issue #17), gated:")
    misses = 0
    for key, what, limit in TARGETS:
        value = values.get(key)
        if value is None:
            print(f"  [--  ] {what:58s}      not measured (see the --no-* options)")
            continue
        ok = value <= limit
        misses += not ok
        print(f"  [{'ok' if ok else 'MISS':4s}] {what:58s} {value:7.3f}  (target ≤ {limit:g})")
    measured = sum(values.get(key) is not None for key, _, _ in TARGETS)
    print(f"targets met: {measured - misses} of {measured} measured ({len(TARGETS)} in all)")
    return misses


def bench_startup(runs=4):
    """Wall time of ``nlmeans denoise`` on a 512×512 PNG and of ``nlmeans demo``, end to end in a fresh process:
    the first run with an empty numba cache (it compiles), then ``runs - 1`` cached runs; for each of
    :data:`STARTUP_COMMANDS`, each with its own cache."""
    from nlmeans.io import read_image, write_image

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clean = read_image(common.DATA / "camera.png").data
        noisy = np.clip(clean + np.random.default_rng(0).normal(0, SIGMA_255, clean.shape), 0, 255)
        write_image(tmp / "noisy.png", noisy.astype(np.uint8))
        for name, extra in STARTUP_COMMANDS.items():
            env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(tmp / f"numba-cache-{name}"))
            # bytecode written on the first run and read by the cached ones, as for an installed package
            # (with PYTHONDONTWRITEBYTECODE=1 every run compiled nlmeans's sources again: ~0.09 s of CPU)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            args = (["demo"] if name == "demo" else
                    ["denoise", str(tmp / "noisy.png"), str(tmp / "out.png"), "--overwrite", *extra])
            times, cpu = [], []
            for _ in range(runs):
                used = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "nlmeans.cli", *args], check=True, capture_output=True,
                               env=env)
                times.append(time.perf_counter() - t)
                now = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append(now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime)
            command = "nlmeans demo" if name == "demo" else "nlmeans denoise noisy.png out.png " + " ".join(extra)
            # CPU (user + system, all threads) beside the wall times: on a shared machine the wall times
            # grow with the other processes' load, the CPU times hardly
            out[name] = {"command": command.strip(), "first_run_s": times[0], "cached_runs_s": times[1:],
                         "cached_median_s": float(np.median(times[1:])), "first_run_cpu_s": cpu[0],
                         "cached_runs_cpu_s": cpu[1:], "cached_cpu_median_s": float(np.median(cpu[1:]))}
    return out


def bench_kernel_cpu(runs, names=("gray512", "color512")):
    """CPU time (``time.process_time``) of one-thread nlmeans, P7 S21 pixelwise, on the images ``names`` (of
    :func:`_images`): the kernel's cost, nearly immune to other processes' load, for comparing kernel versions on
    a busy machine."""
    import numba

    import nlmeans

    images = _images()
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    out = {}
    try:
        for name in names:
            noisy, _ = _noisy(images[name])
            axis = -1 if noisy.ndim == 3 else None

            def call(noisy=noisy, axis=axis):
                return nlmeans.denoise(noisy, SIGMA_255 / 255, h=0.6 * SIGMA_255 / 255, patch_size=PATCH,
                                       search_size=SEARCH, method="pixelwise", channel_axis=axis)

            call()
            times = []
            for _ in range(runs):
                t = time.process_time()
                call()
                times.append(time.process_time() - t)
            out[name] = {"min_s": min(times), "median_s": float(np.median(times)), "times_s": times}
    finally:
        numba.set_num_threads(before)
    return out


def _print_ratios(rat):
    print("\nratios ours / peer (median times; info, the gated targets are printed at the end):")
    for r in rat:
        print(f"  {r['image']:9s} {r['ours']:26s} / {r['peer']:42s} = {r['ratio']:.3f}   "
              f"PSNR {r['psnr_ours']:.2f} vs {r['psnr_peer']:.2f} dB")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="timed runs per case (median reported), default 7")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every method")
    ap.add_argument("--no-large", action="store_true", help="skip the 2048×2048 image")
    ap.add_argument("--no-memory", action="store_true", help="skip the 4096×4096 peak-memory run")
    ap.add_argument("--no-startup", action="store_true", help="skip the command-line start-up runs")
    ap.add_argument("--only-startup", action="store_true",
                    help="only the command-line start-up runs (a first run, then --runs cached runs) and their "
                         "two targets; writes bench/results/startup.json unless --out")
    ap.add_argument("--out", type=Path, default=None, help="default bench/results/speed.json")
    ap.add_argument("--check", action="store_true", help="exit with status 1 if a measured target is missed")
    args = ap.parse_args(argv)
    if args.only_startup:
        return _main_startup(args)

    machine = _machine()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, AVX-512: {machine['avx512f']}; "
          f"threads for every method: {args.threads}; median of {args.runs} runs after a warm-up")
    rows = bench_speed(args.runs, args.threads, not args.no_large)
    rat = ratios(rows)
    _print_ratios(rat)
    cpu = bench_kernel_cpu(args.runs)
    for name, c in cpu.items():
        print(f"{'' if name != 'gray512' else chr(10)}nlmeans {name} float32 P7 S21 pixelwise, 1 thread, "
              f"CPU time: min {c['min_s'] * 1e3:.1f} ms, median {c['median_s'] * 1e3:.1f} ms")
    result = {"kernel_cpu_1thread": cpu,
              "machine": machine, "threads": args.threads, "runs": args.runs, "sigma_255": SIGMA_255,
              "patch_size": PATCH, "search_size": SEARCH, "timings": rows, "ratios": rat,
              "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "load_average": os.getloadavg()}
    if not args.no_memory:
        mem = bench_memory(args.threads)
        result["memory_4096"] = mem
        mib = 2.0**20
        print(f"\npeak memory, 4096×4096 float32: +{mem['extra_bytes'] / mib:.0f} MiB over the input "
              f"({mem['image_bytes'] / mib:.0f} MiB); budget 6 images + tiles = "
              f"{mem['budget_bytes'] / mib:.0f} MiB -> {'within' if mem['within_budget'] else 'OVER'} budget")
    st = None
    if not args.no_startup:
        st = bench_startup()
        result["startup"] = st
        _print_startup(st)
    _finish(args, result, target_values(rows, st), common.RESULTS / "speed.json")


def _print_startup(st):
    def seconds(values):
        return ", ".join(f"{t:.2f}" for t in values)

    for v in st.values():
        print(f"start-up, {v['command']}: first run (empty cache, compiles) {v['first_run_s']:.2f} s, cached runs "
              f"{seconds(v['cached_runs_s'])} s; CPU {v['first_run_cpu_s']:.2f} s, cached "
              f"{seconds(v['cached_runs_cpu_s'])} s")


def _finish(args, result, values, default_out):
    """The gated lines, the targets in ``result``, ``result`` written as JSON; exit 1 on a miss with --check."""
    misses = print_targets(values)
    result["targets"] = [{"key": key, "what": what, "limit": limit, "value": values[key],
                          "met": None if values[key] is None else values[key] <= limit}
                         for key, what, limit in TARGETS]
    result["peak_rss_bench_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = args.out or default_out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out}")
    if args.check and misses:
        sys.exit(1)


def _main_startup(args):
    """``--only-startup``: the start-up runs (a first run, then ``--runs`` cached ones) and their targets."""
    machine = _machine()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores; load average before: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    st = bench_startup(args.runs + 1)
    _print_startup(st)
    result = {"machine": machine, "runs": args.runs, "startup": st,
              "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "load_average": os.getloadavg()}
    print(f"load average after: {', '.join(f'{v:.2f}' for v in result['load_average'])}")
    _finish(args, result, target_values([], st), common.RESULTS / "startup.json")


if __name__ == "__main__":
    main()
