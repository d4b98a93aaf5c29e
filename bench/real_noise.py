"""Real noise (issue #18): Poisson, Rician, clipped σ estimation, per-channel σ and σ maps, side by side.

    python -m bench.real_noise [--size 256] [--only TABLE ...] [--out FILE] [--no-bm4d]

One run prints every table (PSNR on the clean image's [0, 1] scale; times in seconds, each the wall time of
one call on this machine, after a warm-up call that compiles the numba kernels):

1. **Poisson** on the gray standard set (bench/_common.py): the clean crop scaled to a peak of 1, 4, 10, 30
   counts and Poisson counts drawn (``nlmeans.add_noise(clean * peak, noise="poisson", seed=0)``).
   ``nlmeans poisson``: ``denoise(counts, noise="poisson", gain=1)`` (NL-Bayes inside the GAT, exact
   unbiased inverse; up to a mean count of 16 the noisy+estimate iteration of Azzari & Foi 2016 with binned
   passes, see ``nlmeans.presets.POISSON_ITERATION_SCHEDULES``); ``(gain est.)``: the same with the gain
   estimated;
   ``one pass``: NL-Bayes once inside the GAT (``noise_models.stabilise``, what ``nlmeans eval --noise
   poisson`` runs for every method); ``gaussian path``:
   ``denoise(counts / peak)`` (σ estimated, the image divided by the peak); ``BM3D+GAT``: ``bm3d.bm3d`` with
   σ = 1 on the same GAT and the same closed-form inverse.
   **1b** (``--only poisson-schedules``, not in the default run): each schedule of passes in
   ``CANDIDATE_SCHEDULES`` forced on every image and peak, the mean PSNR per peak, beside the presets' choice
   by mean count: the study behind ``POISSON_ITERATION_SCHEDULES``.
2. **Rician** at SNR 5, 10, 20 (SNR = mean of the foreground, clean > 5 % of its maximum, over σ) on MRI-like
   images: dipy's bundled T1 coronal slice (real MRI; its own mild noise is part of the "clean" image), the
   middle b0 slice of dipy's S0_10slices and its slice 1 (128×128), the middle axial slice of dipy's
   ascm_out_test (a T1 volume already denoised by ASCM, 58×58), and a textured Shepp–Logan phantom
   (skimage's phantom with a smooth bias field and fine texture). The dipy slices keep their own size.
   ``nlmeans rician``: ``denoise(noisy, σ, noise="rician")`` (σ known);
   ``gaussian path``: ``denoise(noisy, σ)``; ``DIPY``: ``dipy.denoise.nlmeans.nlmeans(..., rician=True)`` at
   the best of an oracle grid (method classic or blockwise × (patch radius, block radius) in (1, 3), (1, 5),
   (2, 5), and classic with (1, 7), (1, 9), (1, 11)) with σ known, on the slice as a one-slice volume; its
   time is that of the best setting. ``BM3D+VST``: ``bm3d.bm3d`` with σ = 1 on the same Rician VST, mapped
   and inverted as ours (``noise_models.stabilise`` and its exact unbiased inverse): where the state of the
   art stands against DIPY on the same data.
2b. **Rician volumes** (``--only rician-volume``) at SNR 5, 10, 20 (the same SNR) on MRI-like *volumes*, 3-D as
   MRI users run DIPY: dipy's S0_10slices (the b0 volume, 10×128×128, real; its own noise is part of the
   "clean" volume), dipy's ascm_out_test (a T1 volume already denoised by ASCM, 24×58×58, negatives clipped),
   nibabel's example4d (volume 0, an EPI-like 24×128×96) and a textured 3-D Shepp–Logan-like phantom
   (ellipsoids, smooth bias field, fine texture, zero background, 32×80×80). Left out: dipy's small_64D and
   small_101D (10×10×10 and 6×10×10, too small for a 3-D window), nibabel's anatomical.nii (33×41×25 with
   negative values). ``nlmeans rician``: ``denoise_volume(noisy, σ, noise="rician")``; ``gaussian path``:
   ``denoise_volume(noisy, σ)``; ``DIPY``: ``dipy.denoise.nlmeans.nlmeans(noisy, σ, rician=True)`` on the
   whole volume, the best of classic and blockwise at (patch, block radius) (1, 3), (1, 5), (2, 5), then each
   method's block radius grown by 2 at its best patch radius while its PSNR still rises and one run takes at
   most ``DIPY_AFFORDABLE`` seconds; its time is that of the best point; ``BM4D+VST``: ``bm4d.bm4d`` through
   the same VST and inverse as ours (``--no-bm4d`` leaves it out). PSNR over the volume, peak = the clean
   maximum (1). **2c** (``--only rician-volume-presets``, not in the default run): NL-Bayes's volume preset,
   its video preset along Z (R = 2, 4 slices searched on each side) and pixelwise NL-means inside the
   Rician VST: the study behind ``presets.RICIAN_VOLUME_SLICE_RADIUS``.
1c. **Poisson volumes** (``--only poisson-volume``): fluorescence-like volumes (cells: spheres with nuclei and
   puncta; filaments: random smooth 3-D curves; both blurred by a PSF wider along Z, 24×96×96; and the textured
   3-D phantom of 2b) scaled to a peak of 1, 4, 10, 30 counts, counts drawn (seed 0): ``denoise_volume(counts,
   noise="poisson", gain=1)`` against the Gaussian path ``denoise_volume(counts / peak)`` (σ estimated).
3. **Clipped σ estimation**: every standard image, Gaussian noise σ = 10–50 rounded and clipped to uint8
   (seed 0): relative error of ``estimate_sigma``.
4. **Per-channel σ** (5, 20, 35 /255 on R, G, B) on the color set: ``denoise(noisy, [σ_R, σ_G, σ_B])`` vs the
   scalar call with the RMS σ.
5. **σ maps** on the gray set: halves (left σ = 10, right 40 /255; the issue's target: ≥ the scalar-σ call
   + 0.5 dB) and a smooth left-to-right gradient 5 → 40 /255 (where the per-level route interpolates between
   4 levels). Pixelwise NL-means with the map in the kernel (``denoise(noisy, map, method="pixelwise")``),
   through the per-level route (``sigma_arrays.denoise_sigma_array(..., in_kernel=False)``) and the scalar
   call with the map's RMS σ; NL-Bayes (the default method) with the map in its kernel
   (``denoise(noisy, map)``), through the per-level route and its scalar call.

``--only`` re-runs some tables and replaces just their sections in ``--out``, keeping the others.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import numpy as np

import nlmeans
from nlmeans.noise_models import gat, gat_inverse, rician_sigma_for_snr, stabilise

from . import _common as common

PEAKS = (1, 4, 10, 30)
SNRS = (5, 10, 20)
CLIP_SIGMAS = (10, 20, 30, 50)
CHANNEL_SIGMAS = (5, 20, 35)
MAP_SIGMAS = (10, 40)
GRADIENT_SIGMAS = (5, 40)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _psnr(clean, est):
    return nlmeans.psnr(clean, np.asarray(est, dtype=np.float64), data_range=1.0)


def _row(cells, widths):
    return "| " + " | ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)) + " |"


def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [_row(header, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [_row(r, widths) for r in rows]
    return "\n".join(lines)


def poisson_table(size):
    import bm3d

    rows, sums = [], {}
    for name in common.names("gray"):
        clean = common.load(name, size)
        for peak in PEAKS:
            counts = nlmeans.add_noise(clean * peak, noise="poisson", seed=0)
            ours, t_ours = _timed(lambda c=counts: nlmeans.denoise(c, noise="poisson", gain=1.0))
            est = nlmeans.denoise(counts, noise="poisson")
            st = stabilise(counts, "poisson", 0.0, 1.0)
            once = st.invert(nlmeans.denoise(st.image, st.sigma))
            gauss, t_gauss = _timed(lambda c=counts, p=peak: nlmeans.denoise(c / p))
            ref, t_bm3d = _timed(lambda c=counts: gat_inverse(bm3d.bm3d(gat(c), sigma_psd=1.0)))
            vals = [_psnr(clean, ours / peak), _psnr(clean, est / peak), _psnr(clean, once / peak),
                    _psnr(clean, gauss), _psnr(clean, ref / peak)]
            for k, v in enumerate(vals + [t_ours, t_bm3d]):
                sums.setdefault((peak, k), []).append(v)
            rows.append([name, peak, *(f"{v:.2f}" for v in vals), f"{vals[0] - vals[3]:+.2f}",
                         f"{vals[0] - vals[4]:+.2f}", f"{t_ours:.2f}", f"{t_gauss:.2f}", f"{t_bm3d:.2f}"])
            print(_row(rows[-1], [1] * len(rows[-1])), flush=True)
    mean_rows = []
    for peak in PEAKS:
        m = [float(np.mean(sums[(peak, k)])) for k in range(7)]
        mean_rows.append(["**mean**", peak, *(f"{v:.2f}" for v in m[:5]), f"{m[0] - m[3]:+.2f}",
                          f"{m[0] - m[4]:+.2f}", f"{m[5]:.2f}", "", f"{m[6]:.2f} ({m[6] / m[5]:.0f}×)"])
    header = ["image", "peak", "nlmeans poisson", "(gain est.)", "one pass", "gaussian path", "BM3D+GAT",
              "vs gaussian", "vs BM3D", "t nlmeans", "t gaussian", "t BM3D"]
    return _table(header, rows + mean_rows)


#: the schedules of table 1b, each forced on every image and peak: (label, passes (λ, bin factor))
CANDIDATE_SCHEDULES = (
    ("one pass", ((1.0, 1),)),
    ("λ 1, 0.5 (no binning)", ((1.0, 1), (0.5, 1))),
    ("bins 2-1, λ 1, 0.5", ((1.0, 2), (0.5, 1))),
    ("bins 2-1, λ 1, 0.8", ((1.0, 2), (0.8, 1))),
    ("bins 3-1, λ 1, 0.5", ((1.0, 3), (0.5, 1))),
    ("bins 3-1, λ 1, 0.2", ((1.0, 3), (0.2, 1))),
    ("bins 4-1, λ 1, 0.2", ((1.0, 4), (0.2, 1))),
    ("bins 3-2, λ 1, 0.5", ((1.0, 3), (0.5, 2))),
    ("bins 3-2-1, λ 1, 0.5, 0.2", ((1.0, 3), (0.5, 2), (0.2, 1))),
    ("bins 3-2-1, λ 1, 0.7, 0.4", ((1.0, 3), (0.7, 2), (0.4, 1))),
    ("bins 5-3-2, λ 1, 0.7, 0.4", ((1.0, 5), (0.7, 3), (0.4, 2))),
    ("bins 5-3-2-1, λ 1, 0.7, 0.4, 0.2", ((1.0, 5), (0.7, 3), (0.4, 2), (0.2, 1))),
)


def poisson_schedule_table(size):
    """Table 1b: each candidate schedule of passes forced on every image (whatever its mean count), mean
    PSNR over the gray set per peak, and the preset table's choice by mean count."""
    from nlmeans import presets

    images = {name: common.load(name, size) for name in common.names("gray")}
    table = presets.POISSON_ITERATION_SCHEDULES
    rows = []
    try:
        for label, passes in (*CANDIDATE_SCHEDULES, ("**presets (by mean count)**", None)):
            presets.POISSON_ITERATION_SCHEDULES = table if passes is None else ((np.inf, passes),)
            means = []
            for peak in PEAKS:
                scores = []
                for clean in images.values():
                    counts = nlmeans.add_noise(clean * peak, noise="poisson", seed=0)
                    scores.append(_psnr(clean, nlmeans.denoise(counts, noise="poisson", gain=1.0) / peak))
                means.append(f"{np.mean(scores):.2f}")
            rows.append([label, *means])
            print(_row(rows[-1], [1] * len(rows[-1])), flush=True)
    finally:
        presets.POISSON_ITERATION_SCHEDULES = table
    return _table(["passes (bin factors, λ)", *(f"peak {p}" for p in PEAKS)], rows)


def _mri_images(size):
    """name -> clean image on [0, 1] (see the module docstring)."""
    import importlib.resources

    import skimage.data
    from skimage.transform import resize

    files = importlib.resources.files("dipy") / "data" / "files"
    out = {}
    t1 = np.load(files / "t1_coronal_slice.npy").astype(np.float64)
    out["dipy_t1_slice"] = t1 / t1.max()
    import nibabel

    with importlib.resources.as_file(files / "S0_10slices.nii.gz") as path:
        s0 = np.asarray(nibabel.load(str(path)).get_fdata())[..., 0]
    out["dipy_s0_slice"] = s0[..., 5] / s0[..., 5].max()
    out["dipy_s0_slice1"] = s0[..., 1] / s0[..., 1].max()  # another level of the same head, 4 slices away
    with importlib.resources.as_file(files / "ascm_out_test.nii.gz") as path:  # a denoised T1 volume, 58×58×24
        ascm = np.asarray(nibabel.load(str(path)).get_fdata())[..., 12]
    out["dipy_ascm_slice"] = ascm / ascm.max()
    phantom = resize(skimage.data.shepp_logan_phantom(), (size, size), anti_aliasing=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(100)  # the texture is part of the clean image: a fixed draw
    from scipy.ndimage import gaussian_filter

    texture = gaussian_filter(rng.normal(size=(size, size)), 1.5)
    texture /= texture.std()
    head = phantom > 0.05
    textured = phantom * (1 + 0.25 * np.sin(2.5 * xx + 1.5 * yy)) + head * 0.04 * texture
    out["shepp_logan_textured"] = np.clip(textured, 0, None) / textured.max()
    return out


def rician_table(size):
    import bm3d
    from dipy.denoise.nlmeans import nlmeans as dipy_nlmeans

    rows, failed = [], []
    # classic's PSNR still rose from block radius 5 to 11 (T1 SNR 20: +1.3 dB), so its grid goes on to 11
    grid = [(m, p, b) for m in ("classic", "blockwise") for p, b in ((1, 3), (1, 5), (2, 5))]
    grid += [("classic", 1, 7), ("classic", 1, 9), ("classic", 1, 11)]
    for name, clean in _mri_images(size).items():
        for snr in SNRS:
            sigma = rician_sigma_for_snr(clean, snr)
            noisy = nlmeans.add_noise(clean, sigma, noise="rician", seed=0)
            ours, t_ours = _timed(lambda n=noisy, s=sigma: nlmeans.denoise(n, s, noise="rician"))
            gauss = nlmeans.denoise(noisy, sigma)
            st = stabilise(noisy, "rician", sigma)
            ref, t_bm3d = _timed(lambda st=st: st.invert(bm3d.bm3d(st.image, st.sigma)))
            best = None
            for m, p, b in grid:
                out, t = _timed(lambda n=noisy, s=sigma, m=m, p=p, b=b: dipy_nlmeans(
                    n[..., None].copy(), s, patch_radius=p, block_radius=b, rician=True, method=m)[..., 0])
                if not np.isfinite(out).all():  # DIPY's squared distances can overflow (its own warning)
                    failed.append(f"{name} SNR {snr} {m} p{p} b{b}: {np.count_nonzero(~np.isfinite(out))} NaN")
                    continue
                score = _psnr(clean, out)
                if best is None or score > best[0]:
                    best = (score, t, f"{m} p{p} b{b}")
            p_ours, p_gauss, p_bm3d = _psnr(clean, ours), _psnr(clean, gauss), _psnr(clean, ref)
            rows.append([name, snr, f"{_psnr(clean, noisy):.2f}", f"{p_ours:.2f}", f"{p_gauss:.2f}",
                         f"{best[0]:.2f} ({best[2]})", f"{p_ours - best[0]:+.2f}", f"{p_bm3d:.2f}",
                         f"{p_bm3d - best[0]:+.2f}", f"{t_ours:.2f}", f"{best[1]:.2f} ({best[1] / t_ours:.1f}×)",
                         f"{t_bm3d:.2f}"])
            print(_row(rows[-1], [1] * len(rows[-1])), flush=True)
    header = ["image", "SNR", "noisy", "nlmeans rician", "gaussian path", "DIPY best", "vs DIPY", "BM3D+VST",
              "BM3D vs DIPY", "t nlmeans", "t DIPY", "t BM3D"]
    notes = "\n\nDIPY grid points left out (non-finite output):" + "".join(f"\n- {f}" for f in failed)
    notes = notes if failed else ""
    return _table(header, rows) + notes


def _phantom_3d(shape=(32, 80, 80)):
    """A textured 3-D Shepp–Logan-like head (Z, Y, X) on [0, 1]: ellipsoids of the 3-D Shepp–Logan table
    (Kak & Slaney's intensities raised so that grey and white matter differ), a smooth bias field, fine
    texture inside the head, zero background as in MRI magnitude images."""
    from scipy.ndimage import gaussian_filter

    z, y, x = (np.linspace(-1, 1, n) for n in shape)
    z, y, x = np.meshgrid(z, y, x, indexing="ij")
    # (value, centre z, y, x, semi-axes z, y, x, rotation about z in degrees)
    ellipsoids = [(1.0, 0, 0, 0, 0.90, 0.92, 0.69, 0), (-0.6, 0, -0.0184, 0, 0.88, 0.874, 0.6624, 0),
                  (-0.2, 0, 0, 0.22, 0.41, 0.31, 0.11, -18), (-0.2, 0, 0, -0.22, 0.32, 0.41, 0.16, 18),
                  (0.25, -0.25, 0.35, 0, 0.25, 0.25, 0.21, 0), (0.2, 0.25, 0.1, 0, 0.046, 0.046, 0.046, 0),
                  (0.2, 0, -0.1, -0.08, 0.05, 0.046, 0.023, 0), (0.2, 0.1, -0.605, 0.06, 0.1, 0.023, 0.046, 0),
                  (0.3, -0.1, -0.1, 0.06, 0.04, 0.046, 0.023, 0), (0.15, 0.3, 0.4, -0.3, 0.2, 0.1, 0.15, 30)]
    vol = np.zeros(shape)
    for value, cz, cy, cx, az, ay, ax, angle in ellipsoids:
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
        vol[(u / ax) ** 2 + (v / ay) ** 2 + ((z - cz) / az) ** 2 <= 1] += value
    rng = np.random.default_rng(101)  # the texture is part of the clean volume: a fixed draw
    texture = gaussian_filter(rng.normal(size=shape), 1.2)
    texture /= texture.std()
    head = vol > 0.05
    vol = vol * (1 + 0.25 * np.sin(1.3 * x + 0.8 * y + 0.5 * z)) + head * 0.04 * texture
    vol = np.clip(vol, 0, None)
    return vol / vol.max()


def _mri_volumes():
    """name -> clean volume (Z, Y, X) on [0, 1]: the MRI volumes that ship with dipy and nibabel big enough
    for 3-D patches and windows, and the textured 3-D phantom (see ``rician_volume_table``)."""
    import importlib.resources

    import nibabel

    def nifti(package, *parts, volume=None):
        with importlib.resources.as_file(importlib.resources.files(package).joinpath(*parts)) as path:
            data = np.asarray(nibabel.load(str(path)).get_fdata(), dtype=np.float64)
        data = data if volume is None else data[..., volume]
        data = np.moveaxis(np.clip(data, 0, None), 2, 0)  # NIfTI (X, Y, Z) -> (Z, Y, X)
        return np.ascontiguousarray(data / data.max())

    return {"dipy S0_10slices (b0)": nifti("dipy", "data", "files", "S0_10slices.nii.gz", volume=0),
            "dipy ascm_out_test (T1, denoised)": nifti("dipy", "data", "files", "ascm_out_test.nii.gz"),
            "nibabel example4d (EPI, vol 0)": nifti("nibabel", "tests", "data", "example4d.nii.gz", volume=0),
            "textured 3-D phantom": _phantom_3d()}


def _dipy_volume(noisy, sigma, method, p, b):
    """DIPY's 3-D ``nlmeans(rician=True)`` on our (Z, Y, X) volume, in its (X, Y, Z) layout."""
    from dipy.denoise.nlmeans import nlmeans as dipy_nlmeans

    out = dipy_nlmeans(np.ascontiguousarray(np.moveaxis(noisy, 0, 2)), sigma, patch_radius=p, block_radius=b,
                       rician=True, method=method)
    return np.moveaxis(out, 2, 0)


#: DIPY's block radius grows past 5 while its PSNR still rises and one run takes at most this (seconds)
DIPY_AFFORDABLE = 40.0


def _dipy_best(clean, noisy, sigma, failed, label):
    """(PSNR, seconds, setting) of DIPY's best point on the grid of ``rician_volume_table``."""
    best, by_method = None, {}
    for m, p, b in [(m, p, b) for m in ("classic", "blockwise") for p, b in ((1, 3), (1, 5), (2, 5))]:
        out, t = _timed(lambda m=m, p=p, b=b: _dipy_volume(noisy, sigma, m, p, b))
        if not np.isfinite(out).all():  # DIPY's squared distances can overflow (its own warning)
            failed.append(f"{label} {m} p{p} b{b}: {np.count_nonzero(~np.isfinite(out))} NaN")
            continue
        score = _psnr(clean, out)
        by_method.setdefault(m, []).append((score, t, p, b))
        if best is None or score > best[0]:
            best = (score, t, f"{m} p{p} b{b}")
    for m, runs in by_method.items():  # larger block radii at the method's best patch radius
        score, t, p, b = max(runs)
        prev = score
        while t <= DIPY_AFFORDABLE and b < 15:
            b += 2
            out, t = _timed(lambda m=m, p=p, b=b: _dipy_volume(noisy, sigma, m, p, b))
            if not np.isfinite(out).all():
                failed.append(f"{label} {m} p{p} b{b}: {np.count_nonzero(~np.isfinite(out))} NaN")
                break
            score = _psnr(clean, out)
            if score > best[0]:
                best = (score, t, f"{m} p{p} b{b}")
            if score <= prev:
                break
            prev = score
    return best


def rician_volume_table(size, bm4d_on=True):
    """Rician volumes: ours (``denoise_volume(noisy, σ, noise="rician")``) against DIPY's 3-D
    ``nlmeans(rician=True)`` at the best point of its grid and BM4D through the same VST and inverse (see the
    module docstring; ``bm4d_on`` False leaves BM4D out); ``size`` unused."""
    del size
    rows, failed, margins = [], [], {}
    nlmeans.denoise_volume(np.random.default_rng(0).random((9, 32, 32)), 0.1, noise="rician")  # compile
    for name, clean in _mri_volumes().items():
        for snr in SNRS:
            sigma = rician_sigma_for_snr(clean, snr)
            noisy = nlmeans.add_noise(clean, sigma, noise="rician", seed=0)
            ours, t_ours = _timed(lambda n=noisy, s=sigma: nlmeans.denoise_volume(n, s, noise="rician"))
            gauss = nlmeans.denoise_volume(noisy, sigma)
            best = _dipy_best(clean, noisy, sigma, failed, f"{name} SNR {snr}")
            p_ours = _psnr(clean, ours)
            margins.setdefault(snr, []).append(p_ours - best[0])
            cells = [name, "×".join(map(str, clean.shape)), snr, f"{_psnr(clean, noisy):.2f}", f"{p_ours:.2f}",
                     f"{_psnr(clean, gauss):.2f}", f"{best[0]:.2f} ({best[2]})", f"{p_ours - best[0]:+.2f}"]
            if bm4d_on:
                import bm4d

                st = stabilise(noisy, "rician", sigma)
                ref, t_bm4d = _timed(lambda st=st: st.invert(bm4d.bm4d(st.image, st.sigma)))
                cells += [f"{_psnr(clean, ref):.2f}", f"{_psnr(clean, ref) - best[0]:+.2f}"]
            cells += [f"{t_ours:.2f}", f"{best[1]:.2f} ({best[1] / t_ours:.1f}×)"]
            rows.append(cells + ([f"{t_bm4d:.2f}"] if bm4d_on else []))
            print(_row(rows[-1], [1] * len(rows[-1])), flush=True)
    header = ["volume", "Z×Y×X", "SNR", "noisy", "nlmeans rician", "gaussian path", "DIPY best", "vs DIPY",
              *(["BM4D+VST", "BM4D vs DIPY"] if bm4d_on else []), "t nlmeans", "t DIPY (÷ ours)",
              *(["t BM4D"] if bm4d_on else [])]
    means = "\n\nMean margin over DIPY's best: " + ", ".join(
        f"SNR {snr} {np.mean(m):+.2f} dB" for snr, m in margins.items())
    notes = "\n\nDIPY grid points left out (non-finite output):" + "".join(f"\n- {f}" for f in failed)
    return _table(header, rows) + means + (notes if failed else "")


def _rician_volume(radius, method=None):
    """``denoise_volume(noisy, σ, noise="rician")`` with ``presets.RICIAN_VOLUME_SLICE_RADIUS`` set to
    ``radius`` for the call (None: NL-Bayes's volume preset; an int: its video preset along Z)."""
    from nlmeans import presets

    def run(noisy, sigma):
        kept = presets.RICIAN_VOLUME_SLICE_RADIUS
        presets.RICIAN_VOLUME_SLICE_RADIUS = radius
        try:
            return nlmeans.denoise_volume(noisy, sigma, noise="rician", method=method)
        finally:
            presets.RICIAN_VOLUME_SLICE_RADIUS = kept
    return run


#: the stack presets compared on the stabilised Rician volumes (``--only rician-volume-presets``)
RICIAN_VOLUME_CANDIDATES = {
    "volume preset": _rician_volume(None),
    "video preset, R 2": _rician_volume(2),
    "video preset, R 4": _rician_volume(4),
    "pixelwise": _rician_volume(None, "pixelwise"),
}


def rician_volume_preset_table(size):
    """Each stack preset of :data:`RICIAN_VOLUME_CANDIDATES` inside the Rician VST on every volume and SNR;
    the mean PSNR per SNR over the volumes (the choice is made on the mean, never on one volume)."""
    del size
    volumes = _mri_volumes()
    scores = {key: {snr: [] for snr in SNRS} for key in RICIAN_VOLUME_CANDIDATES}
    times = {key: 0.0 for key in RICIAN_VOLUME_CANDIDATES}
    rows = []
    for name, clean in volumes.items():
        for snr in SNRS:
            sigma = rician_sigma_for_snr(clean, snr)
            noisy = nlmeans.add_noise(clean, sigma, noise="rician", seed=0)
            cells = [name, snr]
            for key, run in RICIAN_VOLUME_CANDIDATES.items():
                out, t = _timed(lambda run=run, n=noisy, s=sigma: run(n, s))
                scores[key][snr].append(_psnr(clean, out))
                times[key] += t
                cells.append(f"{scores[key][snr][-1]:.2f}")
            rows.append(cells)
            print(_row(cells, [1] * len(cells)), flush=True)
    for snr in SNRS:
        rows.append(["**mean**", snr, *(f"{np.mean(scores[key][snr]):.2f}" for key in RICIAN_VOLUME_CANDIDATES)])
    rows.append(["**total time (s)**", "", *(f"{times[key]:.1f}" for key in RICIAN_VOLUME_CANDIDATES)])
    return _table(["volume", "SNR", *RICIAN_VOLUME_CANDIDATES], rows)


def _microscopy_volumes(shape=(24, 96, 96)):
    """name -> clean fluorescence-like volume (Z, Y, X) on [0, 1] (fixed draws): "cells" (spheres with a
    brighter nucleus and a few puncta on a dim background) and "filaments" (random smooth 3-D curves, blurred
    by a point-spread function wider along Z), plus the textured 3-D phantom."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(102)
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    cells = np.full(shape, 0.03)
    for _ in range(14):
        c = rng.uniform((3, 10, 10), (shape[0] - 3, shape[1] - 10, shape[2] - 10))
        r = rng.uniform(6, 11)
        d = ((z - c[0]) * 2.0) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2
        cells = np.maximum(cells, 0.35 * (d < r * r) + 0.45 * (d < (0.45 * r) ** 2))
    cells[tuple(rng.integers(0, n, 60) for n in shape)] = 4.0  # puncta, spread by the blur below
    cells = gaussian_filter(cells, (1.0, 0.7, 0.7))
    lines = np.zeros(shape)
    for _ in range(10):
        p = rng.uniform((0, 0, 0), shape)
        v = rng.normal(size=3)
        for _ in range(400):
            v = 0.9 * v + 0.3 * rng.normal(size=3)
            p = np.clip(p + v / np.linalg.norm(v), 0, np.array(shape) - 1)
            lines[tuple(np.round(p).astype(int))] = 1.0
    lines = gaussian_filter(lines, (1.5, 0.8, 0.8)) + 0.01
    return {"cells": cells / cells.max(), "filaments": lines / lines.max(), "textured 3-D phantom": _phantom_3d()}


def poisson_volume_table(size):
    """Poisson volumes: ``denoise_volume(counts, noise="poisson", gain=1)`` against the Gaussian path
    (``denoise_volume(counts / peak)``, σ estimated) on fluorescence-like volumes at peaks 1, 4, 10, 30;
    ``size`` unused."""
    del size
    rows = []
    for name, clean in _microscopy_volumes().items():
        for peak in PEAKS:
            counts = nlmeans.add_noise(clean * peak, noise="poisson", seed=0)
            ours, t_ours = _timed(lambda c=counts: nlmeans.denoise_volume(c, noise="poisson", gain=1.0))
            gauss, t_gauss = _timed(lambda c=counts, p=peak: nlmeans.denoise_volume(c / p))
            p_ours, p_gauss = _psnr(clean, ours / peak), _psnr(clean, gauss)
            rows.append([name, "×".join(map(str, clean.shape)), peak, f"{np.mean(clean) * peak:.2f}",
                         f"{_psnr(clean, counts / peak):.2f}", f"{p_ours:.2f}", f"{p_gauss:.2f}",
                         f"{p_ours - p_gauss:+.2f}", f"{t_ours:.2f}", f"{t_gauss:.2f}"])
            print(_row(rows[-1], [1] * len(rows[-1])), flush=True)
    return _table(["volume", "Z×Y×X", "peak", "mean count", "noisy", "nlmeans poisson", "gaussian path",
                   "gain", "t poisson", "t gaussian"], rows)


def clipped_table(size):
    rows, worst = [], 0.0
    for name in common.names():
        clean = common.load(name, size)
        axis = -1 if common.is_color(name) else None
        errs = []
        for s in CLIP_SIGMAS:
            noisy = np.clip(np.rint(common.add_noise(clean, s, 0) * 255), 0, 255).astype(np.uint8)
            errs.append(nlmeans.estimate_sigma(noisy, channel_axis=axis) * 255 / s - 1)
        worst = max(worst, *map(abs, errs))
        rows.append([name, *(f"{100 * e:+.1f}%" for e in errs)])
        print(_row(rows[-1], [1] * len(rows[-1])), flush=True)
    return _table(["image", *(f"σ={s}" for s in CLIP_SIGMAS)], rows) + f"\nworst |error|: {100 * worst:.1f}%"


def channel_table(size):
    rows = []
    sigmas = np.array(CHANNEL_SIGMAS) / 255
    ref = float(np.sqrt(np.mean(sigmas**2)))
    for name in common.names("color"):
        clean = common.load(name, size)
        noisy = clean + np.random.default_rng(0).normal(size=clean.shape) * sigmas
        per, t_per = _timed(lambda n=noisy: nlmeans.denoise(n, list(sigmas), channel_axis=-1))
        one, t_one = _timed(lambda n=noisy: nlmeans.denoise(n, ref, channel_axis=-1))
        a, b = _psnr(clean, per), _psnr(clean, one)
        rows.append([name, f"{a:.2f}", f"{b:.2f}", f"{a - b:+.2f}", f"{t_per:.2f}", f"{t_one:.2f}"])
        print(_row(rows[-1], [1] * len(rows[-1])), flush=True)
    return _table(["image", "per-channel σ", f"scalar σ={255 * ref:.1f}", "gain", "t per-channel", "t scalar"],
                  rows)


def _maps(shape):
    """The σ maps of table 5 (0–1 scale): halves at 10 and 40 /255, and a left-to-right gradient 5 → 40 /255."""
    halves = np.full(shape, MAP_SIGMAS[0] / 255)
    halves[:, shape[1] // 2 :] = MAP_SIGMAS[1] / 255
    gradient = np.tile(np.linspace(*GRADIENT_SIGMAS, shape[1]) / 255, (shape[0], 1))
    return {"halves 10/40": halves, "gradient 5→40": gradient}


def map_table(size):
    from nlmeans.sigma_arrays import denoise_sigma_array

    def per_level(noisy, smap, method):
        return denoise_sigma_array(nlmeans.denoise, noisy, None, smap, {"method": method}, in_kernel=False)

    rows, sums = [], {}
    for name in common.names("gray"):
        clean = common.load(name, size)
        for kind, smap in _maps(clean.shape).items():
            ref = float(np.sqrt(np.mean(smap**2)))
            noisy = clean + np.random.default_rng(0).normal(size=clean.shape) * smap
            runs = {  # (output, seconds)
                "kernel": _timed(lambda n=noisy, m=smap: nlmeans.denoise(n, m, method="pixelwise")),
                "levels": _timed(lambda n=noisy, m=smap: per_level(n, m, "pixelwise")),
                "scalar": _timed(lambda n=noisy, r=ref: nlmeans.denoise(n, r, method="pixelwise")),
                "nlb kernel": _timed(lambda n=noisy, m=smap: nlmeans.denoise(n, m)),
                "nlb levels": _timed(lambda n=noisy, m=smap: per_level(n, m, "nlbayes")),
                "nlb scalar": _timed(lambda n=noisy, r=ref: nlmeans.denoise(n, r)),
            }
            p = {k: _psnr(clean, out) for k, (out, _) in runs.items()}
            t = {k: sec for k, (_, sec) in runs.items()}
            vals = [p["kernel"], p["levels"], p["scalar"], p["kernel"] - p["scalar"], p["kernel"] - p["levels"],
                    p["nlb kernel"], p["nlb levels"], p["nlb scalar"], p["nlb kernel"] - p["nlb scalar"],
                    p["nlb kernel"] - p["nlb levels"]]
            times = [t["kernel"], t["levels"], t["scalar"], t["nlb kernel"], t["nlb levels"], t["nlb scalar"]]
            for k, v in enumerate(vals + times):
                sums.setdefault((kind, k), []).append(v)
            rows.append([name, kind, *_map_cells(vals, times)])
            print(_row(rows[-1], [1] * len(rows[-1])), flush=True)
    for kind in _maps((2, 2)):
        m = [float(np.mean(sums[(kind, k)])) for k in range(16)]
        rows.append(["**mean**", kind, *_map_cells(m[:10], m[10:])])
    header = ["image", "map", "pixelwise map (kernel)", "pixelwise per-level", "pixelwise scalar σ=RMS",
              "kernel − scalar (target +0.5, halves)", "kernel − per-level", "NL-Bayes map (kernel)",
              "NL-Bayes per-level", "NL-Bayes scalar", "NL-Bayes kernel − scalar", "NL-Bayes kernel − per-level",
              "t kernel", "t per-level", "t scalar", "t NL-Bayes kernel", "t NL-Bayes per-level",
              "t NL-Bayes scalar"]
    return _table(header, rows)


def _map_cells(vals, times):
    signed = {3, 4, 8, 9}
    return [f"{v:+.2f}" if k in signed else f"{v:.2f}" for k, v in enumerate(vals)] + [f"{t:.2f}" for t in times]


def _merge_sections(old, new_parts):
    """``old`` (a results file) with the ``## `` sections in ``new_parts`` replaced (others kept, new ones
    appended): ``--only`` updates its tables without dropping the rest."""
    fresh = {part.split("\n", 1)[0]: part for part in new_parts}
    chunks = old.split("\n## ")
    out = [chunks[0]]
    for chunk in chunks[1:]:
        title = "## " + chunk.split("\n", 1)[0]
        out.append(fresh.pop(title, "## " + chunk).rstrip("\n") + "\n")
    return "\n".join(out + list(fresh.values()))


#: tables run only when named in ``--only`` (studies behind a preset)
ON_REQUEST = ("poisson-schedules", "rician-volume-presets")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="crop side (default 256)")
    parser.add_argument("--out", type=Path, default=common.RESULTS / "real_noise.md", help="Markdown output")
    parser.add_argument("--only", nargs="+",
                        choices=["poisson", "poisson-schedules", "poisson-volume", "rician", "rician-volume",
                                 "rician-volume-presets", "clipped", "channels", "map"],
                        help="run only these tables (poisson-schedules and rician-volume-presets run only when "
                             "named here)")
    parser.add_argument("--no-bm4d", action="store_true", help="leave BM4D out of the Rician volume table")
    args = parser.parse_args()
    # warm-up: compile the kernels so the first timed call does not pay for it
    warm = common.load("camera", 64)
    for method in ("nlbayes", "pixelwise"):
        nlmeans.denoise(warm, 0.1, method=method)
        nlmeans.denoise(np.stack([warm] * 3, -1), 0.1, channel_axis=-1, method=method)
    for method in ("pixelwise", "nlbayes"):  # the σ-map kernels
        nlmeans.denoise(warm, _maps(warm.shape)["halves 10/40"], method=method)
    nlmeans.denoise(warm, 0.1, noise="rician")  # (its dark-region step: the guided float32 kernel)
    tables = {"poisson": ("Poisson (gray set, PSNR dB on [0, 1])", poisson_table),
              "poisson-schedules": ("Poisson schedules, each forced on every image (gray set, mean PSNR dB)",
                                    poisson_schedule_table),
              "poisson-volume": ("Poisson volumes (fluorescence-like, 3-D, PSNR dB on [0, 1])",
                                 poisson_volume_table),
              "rician": ("Rician (MRI-like, PSNR dB on [0, 1])", rician_table),
              "rician-volume": ("Rician volumes (MRI-like, 3-D, PSNR dB on [0, 1])",
                                functools.partial(rician_volume_table, bm4d_on=not args.no_bm4d)),
              "rician-volume-presets": ("Rician volumes: stack presets inside the VST (mean PSNR dB)",
                                        rician_volume_preset_table),
              "clipped": ("Clipped uint8: σ estimate's relative error", clipped_table),
              "channels": ("Per-channel σ 5, 20, 35 /255 (color set, PSNR dB)", channel_table),
              "map": ("σ maps: halves 10 and 40 /255, gradient 5 → 40 /255 (gray set, PSNR dB)", map_table)}
    head = [f"# Real noise (python -m bench.real_noise --size {args.size})\n",
            "Targets, what holds and why: [docs/real-noise.md](../../docs/real-noise.md).\n"]
    parts = []
    for key, (title, fn) in tables.items():
        if (args.only and key not in args.only) or (not args.only and key in ON_REQUEST):
            continue
        print(f"\n## {title}", flush=True)
        text = fn(args.size)
        print(text, flush=True)
        parts.append(f"## {title}\n\n{text}\n")
    if args.only and args.out.exists():  # keep the tables not re-run
        args.out.write_text(_merge_sections(args.out.read_text(), parts))
    else:
        args.out.write_text("\n".join(head + parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
