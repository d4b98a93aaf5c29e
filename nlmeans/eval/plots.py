"""Plots of an evaluation (matplotlib, the optional extra ``plot``): PSNR vs σ, montages, method noise.

Uses matplotlib's object-oriented API with the Agg canvas (``matplotlib.figure.Figure``), so it neither needs a
display nor changes the backend of the caller's pyplot session.

References
----------
.. [1] A. Buades, B. Coll and J.-M. Morel, "A review of image denoising algorithms, with a new one", Multiscale
   Model. Simul. 4(2), 2005 (method noise: the difference between the noisy and the denoised image).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from .._optional import require

NOISY = "noisy"


def _figure(width, height):
    Figure = require("matplotlib.figure", "plots").Figure
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _slug(text):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))


def _save(fig, path, overwrite=True):
    """Save a figure as PNG atomically (:func:`nlmeans.io.atomic_output`; ``overwrite=False`` never replaces
    an existing file)."""
    from ..io import atomic_output

    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


PSNR_PLOT = "psnr_vs_sigma.png"


def _stem(image, sigma):
    return f"{_slug(image)}_s{sigma:g}"


def plot_paths(images, sigmas, out_dir):
    """The files :func:`write_plots` writes into ``out_dir`` for these image names and σ values (0–255), known
    before the evaluation runs so that the command line can check them first. Two names that map to one file
    appear twice."""
    out_dir = Path(out_dir)
    paths = [out_dir / PSNR_PLOT]
    for image in images:
        for sigma in dict.fromkeys(sigmas):
            stem = _stem(image, sigma)
            paths += [out_dir / f"montage_{stem}.png", out_dir / f"method_noise_{stem}.png"]
    return paths


def _tuning_note(records):
    """(set of oracle-tuned methods, a title suffix that says which methods were tuned and which were not)."""
    tuned = {r["method"] for r in records if r["tuned"]}
    ran = {r["method"] for r in records if r["method"] != NOISY}
    if not tuned:
        return tuned, "parameters by each method's σ rule"
    if tuned == ran:
        return tuned, "* oracle-tuned parameters (picked with the clean image)"
    return tuned, "* oracle-tuned (picked with the clean image); others by their σ rule"


def psnr_vs_sigma(records, path, *, overwrite=True):
    """Mean PSNR (over images and seeds) against σ, one line per method, the noisy input dashed; with one σ,
    a bar per method (a line plot would be a column of dots). Oracle-tuned methods are marked ``*``."""
    by_method = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_method[r["method"]][r["sigma"]].append(r["psnr"])
    tuned, note = _tuning_note(records)
    sigmas = sorted({r["sigma"] for r in records})
    fig = _figure(7, 4.5)
    ax = fig.add_subplot()
    order = sorted(by_method, key=lambda m: (m == NOISY, -np.mean([np.mean(v) for v in by_method[m].values()])))

    def label(method):
        return "noisy input" if method == NOISY else method + (" *" if method in tuned else "")

    if len(sigmas) == 1:
        methods = [m for m in order if m != NOISY]
        values = [float(np.mean(by_method[m][sigmas[0]])) for m in methods]
        ax.barh(range(len(methods)), values, color=[f"C{i % 10}" for i in range(len(methods))])
        ax.set_yticks(range(len(methods)), [label(m) for m in methods], fontsize=8)
        ax.invert_yaxis()  # best on top
        for i, v in enumerate(values):
            ax.annotate(f"{v:.2f}", (v, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        low = min(values)
        if NOISY in by_method:
            noisy = float(np.mean(by_method[NOISY][sigmas[0]]))
            ax.axvline(noisy, color="0.4", linestyle="--", label=f"noisy input {noisy:.2f} dB")
            ax.legend(fontsize=8, loc="lower right")
            low = min(low, noisy)
        ax.set_xlim(low - 1.0, max(values) + 1.5)
        ax.set_xlabel("mean PSNR (dB)")
        ax.set_title(f"PSNR at σ = {sigmas[0]:g}/255 — {note}", fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
        return _save(fig, path, overwrite)
    markers = "osD^vP*Xh<>"
    for i, method in enumerate(order):
        sig = sorted(by_method[method])
        val = [np.mean(by_method[method][s]) for s in sig]
        style = (dict(color="0.4", linestyle="--") if method == NOISY
                 else dict(color=f"C{i % 10}", marker=markers[i % len(markers)], markersize=4))
        ax.plot(sig, val, label=label(method), **style)
    ax.set_xlabel("noise σ (0–255 scale)")
    ax.set_ylabel("mean PSNR (dB)")
    ax.set_title(f"PSNR vs noise level — {note}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path, overwrite)


def _display(img):
    """A float image on [0, 1] ready for imshow: clipped, gray as 2-D."""
    img = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
    return img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img


def montage(panels, path, *, ncols=None, panel_inches=2.6, suptitle=None, vrange=(0.0, 1.0), cmap="gray",
            overwrite=True):
    """Save a grid of images with titles. ``panels``: list of ``(title, image)``, images on [0, 1]
    (gray (H, W) or RGB (H, W, 3)); ``vrange`` the gray display range."""
    n = len(panels)
    ncols = ncols or min(n, 4)
    nrows = math.ceil(n / ncols)
    h, w = np.shape(panels[0][1])[:2]
    fig = _figure(ncols * panel_inches, nrows * panel_inches * h / w + 0.35 * nrows + (0.3 if suptitle else 0))
    for i, (title, img) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        img = np.asarray(img, dtype=np.float64)
        if vrange == (0.0, 1.0):
            img = _display(img)
        ax.imshow(img, cmap=cmap, vmin=vrange[0], vmax=vrange[1], interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return _save(fig, path, overwrite)


def crop_box(shape, size):
    """A central square (y0, x0, size) of at most ``size`` pixels for the montages."""
    size = min(size, shape[0], shape[1])
    return (shape[0] - size) // 2, (shape[1] - size) // 2, size


def _psnr_of(records, image, sigma, method):
    vals = [r["psnr"] for r in records if r["image"] == image and r["sigma"] == sigma and r["method"] == method]
    return vals[0] if vals else float("nan")


def method_noise_image(noisy, denoised, sigma):
    """Buades' method noise ``noisy − denoised`` mapped for display: 0.5 + diff / (4σ) (gray; color: the mean
    over channels), so ±2σ spans the gray range. σ on the image's float scale."""
    diff = np.asarray(noisy, dtype=np.float64) - np.asarray(denoised, dtype=np.float64)
    if diff.ndim == 3:
        diff = diff.mean(axis=-1)
    return np.clip(0.5 + diff / (4.0 * sigma), 0.0, 1.0)


def write_plots(records, gallery, out_dir, *, crop=160, noise_crop=256, overwrite=True):
    """Every plot of an evaluation into ``out_dir`` (created if needed); returns the paths written (among
    :func:`plot_paths`). Each file is written atomically; ``overwrite=False`` never replaces an existing one.

    - ``psnr_vs_sigma.png``: mean PSNR against σ per method;
    - ``montage_<image>_s<σ>.png``: the same central crop (``crop`` pixels) of the clean, noisy and every
      denoised image, with PSNRs, first seed;
    - ``method_noise_<image>_s<σ>.png``: noisy − denoised for every method on the central ``noise_crop``
      pixels (Buades' criterion: a good denoiser's method noise looks like noise, not like the image),
      0.5 + diff/(4σ) on the gray scale.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [psnr_vs_sigma(records, out_dir / PSNR_PLOT, overwrite=overwrite)]
    for (image, sigma), imgs in gallery.items():
        methods = [m for m in imgs if m not in ("clean", NOISY)]
        methods.sort(key=lambda m: -_psnr_of(records, image, sigma, m))
        y0, x0, size = crop_box(imgs["clean"].shape, crop)

        def cut(a, y0=y0, x0=x0, size=size):
            return a[y0:y0 + size, x0:x0 + size]

        panels = [("clean", cut(imgs["clean"])),
                  (f"noisy  {_psnr_of(records, image, sigma, NOISY):.2f} dB", cut(imgs[NOISY]))]
        tuned, note = _tuning_note([r for r in records if r["image"] == image and r["sigma"] == sigma])
        panels += [(f"{m}{' *' if m in tuned else ''}  {_psnr_of(records, image, sigma, m):.2f} dB", cut(imgs[m]))
                   for m in methods]
        stem = _stem(image, sigma)
        paths.append(montage(panels, out_dir / f"montage_{stem}.png", overwrite=overwrite,
                             suptitle=f"{image}, σ = {sigma:g}/255, central {size}×{size} crop; {note}"))
        ny0, nx0, nsize = crop_box(imgs["clean"].shape, noise_crop)
        noise_panels = [(m, method_noise_image(imgs[NOISY][ny0:ny0 + nsize, nx0:nx0 + nsize],
                                               imgs[m][ny0:ny0 + nsize, nx0:nx0 + nsize], sigma / 255.0))
                        for m in methods]
        if noise_panels:
            paths.append(montage(noise_panels, out_dir / f"method_noise_{stem}.png", overwrite=overwrite,
                                 suptitle=f"method noise (noisy − denoised), {image}, σ = {sigma:g}/255, central "
                                          f"{nsize}×{nsize}; gray = 0, black/white = ∓2σ"))
    return paths
