"""Peak memory of the command line on a 16384×16384 uint8 TIFF (strip-by-strip denoising).

Writes a test image to disk strip by strip (a smooth pattern plus Gaussian noise, σ = 20/255), runs
``nlmeans denoise IN OUT --sigma 20`` under ``/usr/bin/time -v`` in a fresh process, and records the peak
resident set size and the wall time in ``bench/results/memory_16k.md``. The target is a peak RSS ≤ 3 GB.

    python -m bench.memory_16k                 # 16384², about half an hour on 2 shared cores
    python -m bench.memory_16k --size 4096     # a quicker check
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import _common as common
from ._common import ROOT


def make_image(path, size, sigma_255, seed=0, rows=1024):
    """A size×size uint8 TIFF: sinusoidal pattern + Gaussian noise, written strip by strip (memmap)."""
    import tifffile

    rng = np.random.default_rng(seed)
    out = tifffile.memmap(str(path), shape=(size, size), dtype=np.uint8, photometric="minisblack",
                          bigtiff=False)
    x = np.arange(size, dtype=np.float32)
    for y0 in range(0, size, rows):
        y = np.arange(y0, min(y0 + rows, size), dtype=np.float32)[:, None]
        clean = 128 + 60 * np.sin(x / 37.0) * np.cos(y / 53.0) + 40 * ((x // 256 + y // 256) % 2 - 0.5)
        noisy = clean + rng.normal(0, sigma_255, clean.shape).astype(np.float32)
        out[y0:y0 + len(y)] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    out.flush()
    del out


def run_timed(cmd, env):
    res = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"command failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", res.stderr).group(1)
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", res.stderr).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", res.stderr).group(1))
    line = [s for s in res.stdout.splitlines() if "->" in s][-1]
    return rss_kb, wall, user, system, line


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--sigma", type=float, default=20.0, help="noise added and passed, 0–255 scale")
    parser.add_argument("--workdir", type=Path, default=None, help="where the big files go (default: a temp dir)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `nlmeans denoise` options")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        src, dst = Path(tmp) / "in.tif", Path(tmp) / "out.tif"
        t0 = time.perf_counter()
        make_image(src, args.size, args.sigma)
        print(f"wrote {src} ({args.size}² uint8) in {time.perf_counter() - t0:.1f} s", flush=True)
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        # warm the numba cache in a separate process, so the measured run does not include compilation
        warm = Path(tmp) / "warm.tif"
        make_image(warm, 256, args.sigma)
        subprocess.run([sys.executable, "-m", "nlmeans.cli", "denoise", str(warm), str(Path(tmp) / "w.tif"),
                        "--sigma", str(args.sigma), "--tile-rows", "64", *args.extra], env=env, check=True,
                       capture_output=True)
        cmd = [sys.executable, "-m", "nlmeans.cli", "denoise", str(src), str(dst), "--sigma", str(args.sigma),
               *args.extra]
        print("running:", " ".join(cmd), flush=True)
        rss_kb, wall, user, system, line = run_timed(cmd, env)
        out_bytes = dst.stat().st_size

    load = os.getloadavg()
    shown = ["nlmeans", "denoise", "in.tif", "out.tif", "--sigma", f"{args.sigma:g}", *args.extra]
    text = f"""# Peak memory: {args.size}×{args.size} uint8, strip by strip

Command (measured with `/usr/bin/time -v`, numba cache warm):

    {" ".join(shown)}

| image | peak RSS | wall time | user + system CPU | target |
|---|---|---|---|---|
| {args.size}² uint8 ({args.size * args.size / 2**20:.0f} MiB in, {out_bytes / 2**20:.0f} MiB out) | \
**{rss_kb / 2**20:.2f} GiB** ({rss_kb} kB) | {wall} | {user + system:.0f} s | ≤ 3 GB |

CLI output: `{line.replace(str(src), "in.tif").replace(str(dst), "out.tif")}`

Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average at the end
{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}), Python {platform.python_version()}; date
{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}. Regenerate with `python -m bench.memory_16k`
(`--size`, `--sigma`, `--extra ...` to vary it). The input TIFF is read through a memory map (its pages
count in the RSS too); the output is written strip by strip with ordinary writes into a preallocated file.
"""
    out = common.RESULTS / f"memory_{args.size // 1024}k.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
