"""Volumes and video: NL-Bayes 3-D beside pixelwise 3-D NL-means, BM4D (volumes) and OpenCV (video).

Run from the repository root::

    python -m bench.volume_video                 # the full tables (σ = 10, 20, 30 on the 0–255 scale)
    python -m bench.volume_video --quick         # one σ, smaller data: a smoke run
    python -m bench.volume_video --no-bm4d       # skip BM4D (the slowest column)

The test data are generated here, deterministically (no file but data/*.png is read):

Volumes (Z, Y, X) float64 in [0, 1], ``VOLUME_SIDE``³:

* ``ellipsoids``: a dark background (0.1) with five overlapping ellipsoids of intensities 0.35–0.9, a
  sinusoidal texture (amplitude 0.12, periods 6–9 voxels along three directions) inside the largest one,
  and two sharp oblique planes (half-spaces that add ±0.15): smooth areas, texture and sharp edges.
* ``shepp3d``: a 3-D Shepp–Logan-like head: the ten ellipsoids of the 3-D phantom of Kak & Slaney with
  the modified (higher-contrast) intensities, rescaled to [0, 1].
* ``camera_stack`` and ``brick_stack``: real structure: the z-th slice is the 2-D image (data/camera.png,
  data/brick.png) resampled (cubic splines) on a grid shifted by (0.35 z, 0.6 z) pixels and rotated by
  0.4° z about the crop's centre, so the structure drifts smoothly across slices as in a real stack.

Videos (T, Y, X[, 3]) float64 in [0, 1], ``VIDEO_FRAMES`` frames of ``VIDEO_SIDE``²: a standard image (camera,
brick, astronaut in colour) seen through a window moving along a known path: frame t is the image resampled
(cubic splines) on the crop grid rotated by 0.5° t and translated by (1.3 t, 0.8 t) + (0.4 sin(t), 0) pixels
(sub-pixel and integer parts, slight rotation). The noisy video is quantised to 8 bits (clipped, rounded):
what a video file holds and what OpenCV accepts; every method gets the same uint8 frames.

Noise: white Gaussian, std σ/255, ``bench._common.add_noise`` with seed 0 (the bench's seed policy for one
draw). PSNR against the clean float data on [0, 1].

Methods:

* ``pixelwise``: ``nlmeans.denoise_volume`` / ``denoise_video`` with ``method="pixelwise"`` (today's NL-means
  3-D: cubic patches / 2-D patches with temporal search, default h).
* ``nlbayes``: the same functions with their default method (NL-Bayes 3-D).
* ``bm4d`` (volumes): ``bm4d.bm4d(noisy, σ)``, the package's defaults (all stages).
* ``opencv`` (video): ``cv2.fastNlMeansDenoisingMulti`` (colour: ``...ColoredMulti`` with hColor = h),
  temporal window 5 (3 or 1 at the first and last frames, where the API needs the window inside the
  video), template 7, search 21, at the oracle h: the best PSNR over h = σ × (0.25, 0.35, 0.5, 0.75, 1,
  1.25, 1.5, 2).

Times are wall-clock seconds on this machine (each method warmed up once on a small input first, so numba's
compilation is not counted); "speed vs BM4D" is BM4D's time over NL-Bayes's, per volume.
"""

from __future__ import annotations

import argparse
import inspect
import time

import numpy as np
from scipy import ndimage

from bench._common import DATA, add_noise

VOLUME_SIDE = 64
VIDEO_SIDE = 128
VIDEO_FRAMES = 12
SIGMAS_255 = (10, 20, 30)
OPENCV_H_FACTORS = (0.25, 0.35, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def _read_png(name):
    from nlmeans.io import read_image

    data = read_image(DATA / name).data
    return data.astype(np.float64) / 255.0


def _ellipsoid(grid, centre, radii, angle=0.0):
    """Boolean mask of an ellipsoid with ``radii`` (voxels), rotated by ``angle`` (rad) about z."""
    z, y, x = (g - c for g, c in zip(grid, centre, strict=True))
    ca, sa = np.cos(angle), np.sin(angle)
    yr, xr = ca * y + sa * x, -sa * y + ca * x
    return (z / radii[0]) ** 2 + (yr / radii[1]) ** 2 + (xr / radii[2]) ** 2 <= 1.0


def volume_ellipsoids(n=VOLUME_SIDE):
    """Ellipsoids of different intensities, a sinusoidal texture in the largest, two sharp oblique planes."""
    grid = np.mgrid[0:n, 0:n, 0:n].astype(np.float64)
    s = n / 64.0
    vol = np.full((n, n, n), 0.1)
    parts = [  # (centre, radii, angle, intensity), in 64-voxel units
        ((32, 32, 32), (26, 28, 24), 0.0, 0.45),
        ((26, 22, 36), (10, 14, 8), 0.5, 0.8),
        ((40, 40, 22), (8, 6, 12), -0.7, 0.25),
        ((30, 44, 44), (6, 6, 6), 0.0, 0.9),
        ((44, 24, 40), (5, 12, 5), 1.1, 0.6),
    ]
    big = None
    for centre, radii, angle, value in parts:
        mask = _ellipsoid(grid, [c * s for c in centre], [r * s for r in radii], angle)
        big = mask if big is None else big
        vol[mask] = value
    z, y, x = grid
    texture = 0.12 * np.sin(2 * np.pi * (x / 7.0 + y / 9.0)) * np.sin(2 * np.pi * z / 6.0)
    vol += np.where(big, texture, 0.0)
    vol += 0.15 * ((0.3 * x + 0.5 * y - 0.8 * z) > 5 * s)  # sharp oblique planes
    vol -= 0.15 * ((x - 0.4 * z) > 46 * s)
    return np.clip(vol, 0.0, 1.0)


# 3-D Shepp-Logan (Kak & Slaney's ellipsoids, modified intensities): (value, a, b, c, x0, y0, z0, phi in deg)
_SHEPP = (
    (1.0, 0.6900, 0.920, 0.810, 0.00, 0.0000, 0.00, 0.0),
    (-0.8, 0.6624, 0.874, 0.780, 0.00, -0.0184, 0.00, 0.0),
    (-0.2, 0.1100, 0.310, 0.220, 0.22, 0.0000, 0.00, -18.0),
    (-0.2, 0.1600, 0.410, 0.280, -0.22, 0.0000, 0.00, 18.0),
    (0.1, 0.2100, 0.250, 0.410, 0.00, 0.3500, -0.15, 0.0),
    (0.1, 0.0460, 0.046, 0.050, 0.00, 0.1000, 0.25, 0.0),
    (0.1, 0.0460, 0.046, 0.050, 0.00, -0.1000, 0.25, 0.0),
    (0.1, 0.0460, 0.023, 0.050, -0.08, -0.6050, 0.00, 0.0),
    (0.1, 0.0230, 0.023, 0.020, 0.00, -0.6060, 0.00, 0.0),
    (0.1, 0.0230, 0.046, 0.020, 0.06, -0.6050, 0.00, 0.0),
)


def volume_shepp_logan(n=VOLUME_SIDE):
    """A 3-D Shepp–Logan-like head on [-1, 1]³, scaled to [0, 1]."""
    c = np.linspace(-1, 1, n)
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    vol = np.zeros((n, n, n))
    for value, a, b, cc, x0, y0, z0, phi in _SHEPP:
        p = np.deg2rad(phi)
        xr = np.cos(p) * (x - x0) + np.sin(p) * (y - y0)
        yr = -np.sin(p) * (x - x0) + np.cos(p) * (y - y0)
        vol[(xr / a) ** 2 + (yr / b) ** 2 + ((z - z0) / cc) ** 2 <= 1.0] += value
    return (vol - vol.min()) / (vol.max() - vol.min())


def _warp(image, centre, angle_deg, shift, side):
    """``image`` (H, W[, C]) resampled on a ``side``² grid centred at ``centre``, rotated, shifted (cubic)."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    half = (side - 1) / 2.0
    offset = np.asarray(centre, float) + np.asarray(shift, float) - rot @ np.array([half, half])
    channels = [image] if image.ndim == 2 else [image[..., k] for k in range(image.shape[2])]
    out = [ndimage.affine_transform(ch, rot, offset=offset, output_shape=(side, side), order=3, mode="reflect")
           for ch in channels]
    return np.clip(out[0] if image.ndim == 2 else np.stack(out, axis=-1), 0.0, 1.0)


def volume_stack(name, n=VOLUME_SIDE):
    """Slices of a 2-D image drifting across z: shift (0.35 z, 0.6 z) pixels, rotation 0.4° z."""
    image = _read_png(name)
    centre = {"camera.png": (200, 250), "brick.png": (256, 256)}[name]
    return np.stack([_warp(image, centre, 0.4 * z, (0.35 * z, 0.6 * z), n) for z in range(n)])


def video(name, frames=VIDEO_FRAMES, side=VIDEO_SIDE):
    """Frames of a window moving over ``name``: rotation 0.5° t, shift (1.3 t + 0.4 sin t, 0.8 t)."""
    image = _read_png(name)
    centre = {"camera.png": (180, 240), "brick.png": (256, 256), "astronaut.png": (160, 260)}[name]
    return np.stack([_warp(image, centre, 0.5 * t, (1.3 * t + 0.4 * np.sin(t), 0.8 * t), side)
                     for t in range(frames)])


def volumes(n=VOLUME_SIDE):
    """The volume test set: name -> clean (n, n, n) float64 volume."""
    return {
        "ellipsoids": volume_ellipsoids(n),
        "shepp3d": volume_shepp_logan(n),
        "camera_stack": volume_stack("camera.png", n),
        "brick_stack": volume_stack("brick.png", n),
    }


def videos(frames=VIDEO_FRAMES, side=VIDEO_SIDE):
    """The video test set: name -> clean (T, side, side[, 3]) float64 video."""
    return {name.split(".")[0]: video(name, frames, side) for name in ("camera.png", "brick.png", "astronaut.png")}


def psnr(clean, estimate):
    return float(10 * np.log10(1.0 / np.mean((np.asarray(estimate, np.float64) - clean) ** 2)))


def quantise(noisy):
    return np.clip(np.round(noisy * 255.0), 0, 255).astype(np.uint8)


def _timed(fn, *args, **kw):
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - start


def _pixelwise_kw(fn):
    return {"method": "pixelwise"} if "method" in inspect.signature(fn).parameters else {}


def opencv_multi(frames_u8, sigma_255, h_255):
    """OpenCV's multi-frame NL-means on every frame, temporal window 5 (smaller at the ends)."""
    import cv2

    T = frames_u8.shape[0]
    color = frames_u8.ndim == 4
    imgs = [np.ascontiguousarray(f[..., ::-1]) if color else np.ascontiguousarray(f) for f in frames_u8]
    out = []
    for t in range(T):
        half = min(t, T - 1 - t, 2)
        window = 2 * half + 1
        if color:
            den = cv2.fastNlMeansDenoisingColoredMulti(imgs, t, window, None, float(h_255), float(h_255), 7, 21)
            den = den[..., ::-1]
        else:
            den = cv2.fastNlMeansDenoisingMulti(imgs, t, window, None, float(h_255), 7, 21)
        out.append(den)
    return np.stack(out).astype(np.float64) / 255.0


def _summary(rows, methods, ref):
    print(f"\nmean PSNR over the set, per σ (dB); margin = nlbayes − {ref}")
    for s in sorted({r["sigma"] for r in rows}):
        sel = [r for r in rows if r["sigma"] == s]
        means = {m: np.mean([r[m][0] for r in sel]) for m in methods}
        text = "  ".join(f"{m} {means[m]:.2f}" for m in methods)
        print(f"  σ={s:>3}: {text}")
    allm = {m: np.mean([r[m][0] for r in rows]) for m in methods}
    print("  all  : " + "  ".join(f"{m} {allm[m]:.2f}" for m in methods))
    for m in methods:
        if m != "nlbayes":
            print(f"  nlbayes − {m}: {allm['nlbayes'] - allm[m]:+.2f} dB (mean over all rows)")
    for m in methods:
        print(f"  median time {m}: {np.median([r[m][1] for r in rows]):.2f} s")


def run_volumes(sigmas, n, bm4d_on):
    import nlmeans

    print(f"\n== volumes {n}³ (float64 input)")
    methods = ["pixelwise", "nlbayes"] + (["bm4d"] if bm4d_on else [])
    print(f"{'volume':<14}{'σ':>4}{'noisy':>8}" + "".join(f"{m:>18}" for m in methods) + "   bm4d/nlb time")
    rows = []
    pk = _pixelwise_kw(nlmeans.denoise_volume)
    for name, clean in volumes(n).items():
        for s in sigmas:
            noisy = add_noise(clean, s)
            row = {"name": name, "sigma": s}
            row["pixelwise"] = _score(clean, nlmeans.denoise_volume, noisy, s / 255, **pk)
            row["nlbayes"] = _score(clean, nlmeans.denoise_volume, noisy, s / 255)
            if bm4d_on:
                import bm4d

                row["bm4d"] = _score(clean, bm4d.bm4d, noisy, s / 255)
            ratio = f"{row['bm4d'][1] / row['nlbayes'][1]:8.1f}x" if bm4d_on else ""
            cells = "".join(f"{row[m][0]:>10.2f} {row[m][1]:>6.1f}s" for m in methods)
            print(f"{name:<14}{s:>4}{psnr(clean, noisy):>8.2f}{cells}   {ratio}", flush=True)
            rows.append(row)
    _summary(rows, methods, "others")
    if bm4d_on:
        ratios = [r["bm4d"][1] / r["nlbayes"][1] for r in rows]
        print(f"  speed vs BM4D (BM4D time / NL-Bayes time): median {np.median(ratios):.1f}x, "
              f"min {min(ratios):.1f}x")
    return rows


def _score(clean, fn, *args, **kw):
    """PSNR and seconds of ``fn(*args, **kw)``; 8-bit results (from 8-bit frames) are read on [0, 1]."""
    out, seconds = _timed(fn, *args, **kw)
    if out.dtype == np.uint8:
        out = out / 255.0
    return psnr(clean, out), seconds


def run_videos(sigmas, frames, side):
    import nlmeans

    print(f"\n== videos {frames} frames of {side}² (8-bit noisy input, as video files hold)")
    methods = ["pixelwise", "nlbayes", "opencv"]
    print(f"{'video':<14}{'σ':>4}{'noisy':>8}" + "".join(f"{m:>18}" for m in methods) + "   opencv h/σ")
    rows = []
    pk = _pixelwise_kw(nlmeans.denoise_video)
    for name, clean in videos(frames, side).items():
        axis = -1 if clean.ndim == 4 else None
        for s in sigmas:
            noisy = quantise(add_noise(clean, s))
            row = {"name": name, "sigma": s}
            row["pixelwise"] = _score(clean, nlmeans.denoise_video, noisy, s / 255, channel_axis=axis, **pk)
            row["nlbayes"] = _score(clean, nlmeans.denoise_video, noisy, s / 255, channel_axis=axis)
            best = None
            for factor in OPENCV_H_FACTORS:
                out, seconds = _timed(opencv_multi, noisy, s, factor * s)
                value = psnr(clean, out)
                if best is None or value > best[0]:
                    best = (value, seconds, factor)
            row["opencv"] = best[:2]
            cells = "".join(f"{row[m][0]:>10.2f} {row[m][1]:>6.1f}s" for m in methods)
            print(f"{name:<14}{s:>4}{psnr(clean, noisy / 255.0):>8.2f}{cells}   {best[2]:.2f}", flush=True)
            rows.append(row)
    _summary(rows, methods, "others")
    return rows


def _warm_up(bm4d_on):
    """Compile numba's kernels (and import the peers) on tiny inputs so no timing counts compilation."""
    import nlmeans

    rng = np.random.default_rng(0)
    small = rng.random((12, 12, 12))
    nlmeans.denoise_volume(small, 0.1, **_pixelwise_kw(nlmeans.denoise_volume))
    nlmeans.denoise_volume(small, 0.1)
    nlmeans.denoise_video(small, 0.1, **_pixelwise_kw(nlmeans.denoise_video))
    nlmeans.denoise_video(small, 0.1)
    nlmeans.denoise_video(quantise(rng.random((6, 12, 12, 3))), 0.1, channel_axis=-1)
    nlmeans.denoise_video(quantise(rng.random((6, 12, 12))), 0.1)
    if bm4d_on:
        import bm4d

        bm4d.bm4d(small, 0.1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="σ = 20 only, 32³ volumes, 8 frames of 64²")
    parser.add_argument("--no-bm4d", action="store_true", help="skip BM4D")
    parser.add_argument("--only", choices=("volumes", "videos"), help="run one table")
    args = parser.parse_args(argv)
    sigmas = (20,) if args.quick else SIGMAS_255
    n, frames, side = (32, 8, 64) if args.quick else (VOLUME_SIDE, VIDEO_FRAMES, VIDEO_SIDE)
    _warm_up(not args.no_bm4d)
    if args.only != "videos":
        run_volumes(sigmas, n, not args.no_bm4d)
    if args.only != "volumes":
        run_videos(sigmas, frames, side)


if __name__ == "__main__":
    main()
