"""Peak memory of the command line on a 512³ uint16 volume (slab-by-slab denoising, ``--volume``).

Writes a phantom volume to disk one slice at a time (:func:`make_volume`: smooth ellipsoids on a smooth
background, a 3-D grating and a fine texture inside some of them, then Poisson noise on the photon counts
plus Gaussian read noise), runs ``nlmeans denoise IN OUT --volume`` (σ estimated, default method NL-Bayes)
under ``/usr/bin/time -v`` in a fresh process after a warm-up run (numba cache), and records the peak resident
set size, the wall and CPU time in ``bench/results/memory_volume.md``. The target is a peak RSS ≤ 3 GB.

While it runs, a line every ``--poll`` seconds goes to stdout: the peak RSS so far (``VmHWM``) and the slices
written so far (the process's written bytes over the bytes of a slice), so a run stopped early still gives a
partial measurement.

    python -m bench.memory_volume                 # 512³, 20–40 min on 2 shared cores
    python -m bench.memory_volume --size 192      # a quicker check
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from . import _common as common
from ._common import ROOT
from .memory_16k import run_timed

#: the phantom's background (photons), gain (gray levels per photon), read noise σ and offset (gray levels):
#: a dim 16-bit acquisition, noise σ ≈ 2–5 on the 0–255 scale
BACKGROUND, GAIN, READ_NOISE, OFFSET = 10.0, 200.0, 400.0, 1000.0


def _ellipsoids(rng, n_shapes):
    """(centre, semi-axes, counts) of the phantom's ellipsoids, in coordinates on [-1, 1]."""
    centres = rng.uniform(-0.6, 0.6, (n_shapes, 3))
    axes = rng.uniform(0.08, 0.35, (n_shapes, 3))
    counts = rng.uniform(5, 50, n_shapes)
    return centres, axes, counts


def phantom_slice(z, size, shapes):
    """Clean slice ``z`` of the phantom (photon counts, float32): a smooth background ramp, ellipsoids with
    soft edges, a grating (period ~14 voxels) inside the first ellipsoid and a fine checker texture (period
    6 voxels) inside the second."""
    centres, axes, counts = shapes
    c = np.linspace(-1, 1, size, dtype=np.float32)
    w = np.float32(c[z])
    y, x = np.meshgrid(c, c, indexing="ij")
    out = BACKGROUND * (1 + 0.3 * w + 0.2 * np.sin(2.5 * x + 1.5 * y)).astype(np.float32)
    for k, ((cz, cy, cx), (az, ay, ax), n) in enumerate(zip(centres, axes, counts, strict=True)):
        r2 = ((w - cz) / az) ** 2 + ((y - cy) / ay) ** 2 + ((x - cx) / ax) ** 2
        inside = 1 / (1 + np.exp(np.clip((np.sqrt(r2) - 1) * 40, -50, 50)))  # soft edge ~1 voxel wide
        level = np.float32(n)
        if k == 0:
            level = level * (1 + 0.25 * np.sin(2 * np.pi * (z / 14 + np.arange(size)[:, None] / 17
                                                            + np.arange(size)[None, :] / 11)))
        elif k == 1:
            ii, jj = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
            level = level * (1 + 0.15 * (((ii // 3 + jj // 3 + z // 3) % 2) * 2 - 1))
        out = out + (level * inside).astype(np.float32)
    return out


def make_volume(path, size, seed=0, n_shapes=12):
    """A size³ uint16 multi-page TIFF, written one slice at a time: GAIN · Poisson(counts) + N(OFFSET,
    READ_NOISE²), rounded and clipped to [0, 65535]."""
    import tifffile

    rng = np.random.default_rng(seed)
    shapes = _ellipsoids(rng, n_shapes)

    def slices():
        for z in range(size):
            clean = phantom_slice(z, size, shapes)
            noisy = GAIN * rng.poisson(clean).astype(np.float32) + rng.normal(OFFSET, READ_NOISE, clean.shape)
            yield np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)

    tifffile.imwrite(str(path), data=slices(), shape=(size, size, size), dtype=np.uint16,
                     photometric="minisblack")


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _watch(parent, slice_bytes, every, stop, log):
    """Print the peak RSS so far and the slices written so far of ``parent``'s descendants every ``every``
    seconds until ``stop`` is set."""
    start = time.perf_counter()
    while not stop.wait(every):
        todo, peak, written = list(_children(parent)), 0, 0
        while todo:
            pid = todo.pop()
            todo += _children(pid)
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                io = Path(f"/proc/{pid}/io").read_text()
            except OSError:
                continue
            peak = max(peak, int(next(s for s in status.splitlines() if s.startswith("VmHWM")).split()[1]))
            written += int(next(s for s in io.splitlines() if s.startswith("wchar")).split()[1])
        elapsed = time.perf_counter() - start
        done = written / slice_bytes
        log(f"  {elapsed:7.0f} s: peak RSS so far {peak / 2**20:.2f} GiB, ~{done:.0f} slices written "
            f"({done / max(elapsed, 1):.3f} slices/s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workdir", type=Path, default=None, help="where the big files go (default: a temp dir)")
    parser.add_argument("--poll", type=float, default=60.0, help="seconds between progress lines")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `nlmeans denoise` options")
    args = parser.parse_args()

    def log(message):
        print(message, flush=True)

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        src, dst = Path(tmp) / "vol.tif", Path(tmp) / "out.tif"
        t0 = time.perf_counter()
        make_volume(src, args.size)
        log(f"wrote {src} ({args.size}³ uint16, {src.stat().st_size / 2**20:.0f} MiB) in "
            f"{time.perf_counter() - t0:.1f} s")
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        # warm the numba cache in a separate process (slabs too), so the measured run does not compile
        warm = Path(tmp) / "warm.tif"
        make_volume(warm, 40)
        subprocess.run([sys.executable, "-m", "nlmeans.cli", "denoise", str(warm), str(Path(tmp) / "w.tif"),
                        "--volume", "--slab-slices", "10", *args.extra], env=env, check=True, capture_output=True)
        cmd = [sys.executable, "-m", "nlmeans.cli", "denoise", str(src), str(dst), "--volume", *args.extra]
        log("running: " + " ".join(cmd))
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(os.getpid(), args.size * args.size * 2, args.poll, stop,
                                                        log), daemon=True)
        watcher.start()
        try:
            rss_kb, wall, user, system, line = run_timed(cmd, env)
        finally:
            stop.set()
        out_bytes = dst.stat().st_size

    load = os.getloadavg()
    shown = ["nlmeans", "denoise", "vol.tif", "out.tif", "--volume", *args.extra]
    n = args.size
    how = "Above 64 M values the command goes slab by slab on its own" if n**3 > 1 << 26 else \
        "Slab by slab as `--extra` says"
    how += (":\neach slab reads its pages of the TIFF plus a halo of slices and writes its slices into the "
            "preallocated\noutput TIFF, renamed into place at the end.")
    text = f"""# Peak memory: {n}³ uint16 volume, slab by slab

Command (measured with `/usr/bin/time -v`, numba cache warm, run under `nice -n 19`):

    {" ".join(shown)}

| volume | peak RSS | wall time | user + system CPU | target |
|---|---|---|---|---|
| {n}³ uint16 ({n**3 * 2 / 2**20:.0f} MiB in, {out_bytes / 2**20:.0f} MiB out) | \
**{rss_kb / 2**20:.2f} GiB** ({rss_kb} kB) | {wall} | {user + system:.0f} s | ≤ 3 GB |

CLI output: `{line.replace(str(src), "vol.tif").replace(str(dst), "out.tif")}`

Phantom (`bench/memory_volume.py`, `make_volume`, seed 0): 12 ellipsoids with soft edges (5–50 photons
above a smooth background ramp of about {BACKGROUND:g} photons), a 3-D grating inside the first and a checker
texture (period 6 voxels) inside the second; Poisson noise on the photon counts, times a gain of {GAIN:g}
gray levels per photon, plus Gaussian read noise (σ = {READ_NOISE:g}) around an offset of {OFFSET:g}, rounded
to uint16. σ is estimated by the command (8 slices). {how}

Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average at the end
{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}), Python {platform.python_version()}; date
{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}. Regenerate with `python -m bench.memory_volume`
(`--size`, `--extra ...` to vary it).
"""
    out = common.RESULTS / ("memory_volume.md" if n == 512 else f"memory_volume_{n}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
