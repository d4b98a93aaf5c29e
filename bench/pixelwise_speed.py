"""The pixelwise fast path against OpenCV: the gated lines of ``bench.speed`` for it alone, quicker.

Run from the repository root (needs the ``bench`` extra)::

    python -m bench.pixelwise_speed                 # gray 512² and 2048², ~1 min
    python -m bench.pixelwise_speed --color --runs 9

The same cases and protocol as :mod:`bench.speed` (its images, noise, h tuned on the 512² images, one process,
every method on all cores, a warm-up call, then rounds that call every case once, medians): our
``method="pixelwise"`` float32 and uint8 with patch 7, search 21 against ``cv2.fastNlMeansDenoising`` (or
``...Colored``) with the same sizes; ratios ours / OpenCV, against the 0.2 target of issue #17. Then the
1-thread CPU time of our calls (``time.process_time``, min and median), which the host's load hardly moves.
Prints only; nothing is written.
"""

from __future__ import annotations

import argparse
import os

from . import speed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="timed runs per case (median reported), default 7")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every method")
    ap.add_argument("--color", action="store_true", help="also the 512² color image")
    ap.add_argument("--no-large", action="store_true", help="skip the 2048×2048 image")
    args = ap.parse_args(argv)

    import cv2
    import numba

    numba.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    images = speed._images()
    names = ["gray512"] + ([] if args.no_large else ["gray2048"]) + (["color512"] if args.color else [])
    sigma = speed.SIGMA_255 / 255
    print(f"load average {os.getloadavg()[0]:.2f}; {args.threads} threads; median of {args.runs} runs")
    tuned = {}
    for name in names:
        clean = images[name]
        color = clean.ndim == 3
        axis = -1 if color else None
        noisy, u8 = speed._noisy(clean)
        if color not in tuned:
            tuned[color] = (speed._tune_opencv_h(u8, clean, color), speed._tune_ours_h(noisy, clean, axis))
        h_cv, h_ours = tuned[color]
        cases = speed._cases(noisy, u8, axis, h_cv, h_ours, sigma)
        cases = {k: v for k, v in cases.items() if "P7 S21" in k or k.startswith("OpenCV")}
        res = speed._timed_interleaved(cases, args.runs)
        peer = next(v[0] for k, v in res.items() if k.startswith("OpenCV"))
        for method, (med, _, _, cpu, steal) in res.items():
            ratio = f"  ours / OpenCV {med / peer:.3f}" if "P7 S21" in method else ""
            print(f"  {name:9s} {method:42s} {med * 1e3:8.1f} ms (process CPU {cpu * 1e3:6.1f} ms, "
                  f"steal {steal * 1e3:.0f} ms){ratio}", flush=True)
    for name, cpu in speed.bench_kernel_cpu(args.runs, names).items():
        print(f"  {name:9s} 1 thread, CPU time: min {cpu['min_s'] * 1e3:.1f} ms, median "
              f"{cpu['median_s'] * 1e3:.1f} ms")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
