"""The noise-and-evaluate experiment of Buades et al.: noise clean images, denoise with every method, measure.

Records in, tables / JSON / CSV / plots out. One record (a dict) per image × σ × seed × method::

    {"image": "camera", "sigma": 20.0, "seed": 0, "method": "tv", "psnr": 29.7, "ssim": 0.84,
     "seconds": 0.21, "params": {"weight": 0.0627}, "tuned": False, "grid_size": 1,
     "noise": "gaussian", "peak": None, "snr": None}

``sigma`` is on the 0–255 scale (the Gaussian σ, the read noise of ``"poisson-gaussian"``, the Rician σ; None
for ``"poisson"``); ``noise`` is the noise model, ``peak`` the Poisson models' peak (counts at the clean
image's 1.0) and ``snr`` the Rician SNR when given as one; ``params`` are the values passed to the method, on
the float image's scale (integer images are scaled to [0, 1]; with a non-Gaussian model, on the stabilised
image mapped onto [0, 1]); ``seconds`` is the wall time of that one call (every method warmed up first, so
numba's compilation and first-call imports are not counted). The row ``method == "noisy"`` holds the noisy
input's scores.

With a non-Gaussian model every method runs inside the same variance-stabilising transform (the generalized
Anscombe transform, or the Rician VST of :mod:`nlmeans.noise_models`): it denoises the stabilised image with
σ = 1 on the stabilised scale, and its output goes through the exact unbiased inverse before it is scored.

References
----------
.. [1] A. Buades, B. Coll and J.-M. Morel, "A review of image denoising algorithms, with a new one", Multiscale
   Model. Simul. 4(2), 2005.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from .._optional import install_hint
from .._typing import Array, ArrayLike, NoiseModel, Real, StrPath
from .._validate import (
    NOISE_MODELS,
    check_array,
    check_int,
    check_noise_model,
    check_real,
    sigma_from_255,
    to_float,
)
from ..metrics import psnr, ssim
from ..noise import add_noise
from ..noise_models import rician_sigma_for_snr, stabilise
from .registry import ALIASES, REGISTRY, available_methods, describe, get_method

#: the keys of every record, in the order of the CSV columns
RECORD_KEYS = ("image", "sigma", "seed", "method", "psnr", "ssim", "seconds", "tuned", "grid_size", "noise",
               "peak", "snr", "params")
#: file suffixes taken from a folder given as an image
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
NOISY = "noisy"

#: one result row (the keys of :data:`RECORD_KEYS`)
Record: TypeAlias = dict[str, Any]
#: what :func:`evaluate` takes as ``images``: an array, a file or folder, a list of them or of (name, array)
#: pairs, or ``{name: array}``
Images: TypeAlias = (ArrayLike | StrPath | Mapping[str, ArrayLike]
                    | Sequence[ArrayLike | StrPath | tuple[str, ArrayLike]])
#: ``methods``: "all", a comma-separated string or a list of names
Methods: TypeAlias = str | Sequence[str] | None
#: ``sigmas``, ``peaks``, ``snrs``: one level or a list
Levels: TypeAlias = Real | Sequence[Real]


# ---------------------------------------------------------------------------------------------------------------
# inputs


def image_files(paths: Iterable[StrPath]) -> list[Path]:
    """The image files named by ``paths``: files as given, folders expanded to their images (sorted)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise ValueError(f"folder {p} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            out.extend(found)
        else:
            out.append(p)
    return out


def _named_images(images):
    """``[(name, array)]`` from a dict, a path, an array, or a list of paths / arrays / (name, array) pairs."""
    from ..io import read_image

    if isinstance(images, dict):
        items = list(images.items())
    elif isinstance(images, (str, Path, np.ndarray)):
        items = [images]
    else:
        items = list(images)
    if not items:
        raise ValueError("images is empty; give at least one image (array or file)")
    named = []
    for i, item in enumerate(items):
        if isinstance(item, tuple) and len(item) == 2:
            name, arr = item
        elif isinstance(item, (str, Path)):
            files = image_files([item])
            for f in files:
                named.append((f.stem, read_image(f).data))
            continue
        else:
            name, arr = f"image{i}", item
        named.append((str(name), arr))
    names = [n for n, _ in named]
    for n in names:  # same stem from two folders: make the names unique
        if names.count(n) > 1:
            raise ValueError(f"two images are called {n!r}; pass a dict {{name: array}} to name them")
    return named


def center_crop(image: Array, size: int) -> Array:
    """The central ``size`` × ``size`` region (the whole image along a side shorter than ``size``)."""
    size = check_int(size, "crop")
    if size < 8:
        raise ValueError(f"crop must be >= 8 pixels, got {size}")
    h, w = image.shape[:2]
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(image[y0:y0 + size, x0:x0 + size])


def _check_image(name, arr):
    arr = check_array(arr, f"image {name!r}")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"image {name!r} has shape {arr.shape}; allowed: (H, W) gray or (H, W, C) with channels last"
        )
    if min(arr.shape[:2]) < 8:
        raise ValueError(f"image {name!r} of shape {arr.shape} is too small; each side needs >= 8 pixels")
    return arr


def resolve_methods(methods: Methods) -> list[str]:
    """Method names from ``"all"``, a comma-separated string or a list; ValueError names the allowed ones."""
    if methods is None or (isinstance(methods, str) and methods.strip().lower() == "all"):
        return available_methods()
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    names = list(dict.fromkeys(ALIASES.get(m, m) if isinstance(m, str) else m for m in methods))  # listed once
    if not names:
        raise ValueError("methods is empty; give at least one method name or 'all'")
    for name in names:
        m = get_method(name)
        if not m.available:
            raise ValueError(
                f"method {name!r} needs the package {m.requires!r}, which is not installed "
                f"({install_hint(m.requires)})"
            )
    return names


def _seed_list(seeds):
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        n = int(seeds)
        if n < 1:
            raise ValueError(f"seeds must be >= 1 (the number of noise draws), got {seeds}")
        return list(range(n))
    out = [check_int(s, "seeds") for s in seeds]
    if not out:
        raise ValueError("seeds is empty; give a count (e.g. 1) or a list of seeds")
    return out


def _positive_list(values, name, what="positive number"):
    if isinstance(values, (int, float, np.number)):
        values = [values]
    out = [check_real(v, name, minimum=0, strict=True) for v in values]
    if not out:
        raise ValueError(f"{name} is empty; give at least one {what}")
    return out


def _sigma_list(sigmas, name="sigmas"):
    out = _positive_list(sigmas, name, "noise level (0–255 scale)")
    if max(out) < 1:
        warnings.warn(
            f"sigmas {out} are on the 0–255 scale: these are tiny noise levels (did you mean {out[0] * 255:g}?)",
            stacklevel=3,
        )
    return out


#: which level lists each noise model needs (required, allowed); the rest are refused
_MODEL_LEVELS = {
    "gaussian": ({"sigmas"}, {"sigmas"}),
    "poisson": ({"peaks"}, {"peaks"}),
    "poisson-gaussian": ({"peaks", "sigmas"}, {"peaks", "sigmas"}),
    "rician": (set(), {"sigmas", "snrs"}),
}


def noise_settings(noise: NoiseModel = "gaussian", sigmas: Levels | None = None, peaks: Levels | None = None,
                   snrs: Levels | None = None, *, names: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The noise settings of an experiment: one dict ``{"noise", "sigma", "peak", "snr"}`` per level.

    ``"gaussian"``: one per σ (``sigmas``, 0–255 scale). ``"poisson"``: one per peak (``peaks``, counts at
    the clean image's 1.0). ``"poisson-gaussian"``: every peak × read-noise σ (``sigmas``, 0–255 scale of the
    clean image). ``"rician"``: one per σ (``sigmas``) or per SNR (``snrs``; σ = the foreground mean / SNR,
    see :func:`nlmeans.noise_models.rician_sigma_for_snr`), not both. A list a model does not use, or a
    missing one, is a ValueError naming it (``names`` maps ``sigmas``/``peaks``/``snrs`` to the names the
    caller shows, e.g. the command line's options, and ``noise`` to a format string for the model).
    """
    names = {"sigmas": "sigmas", "peaks": "peaks", "snrs": "snrs", "noise": "noise={!r}", **(names or {})}
    noise = check_noise_model(noise)
    model = names["noise"].format(noise)
    given = {k for k, v in (("sigmas", sigmas), ("peaks", peaks), ("snrs", snrs)) if v is not None}
    required, allowed = _MODEL_LEVELS[noise]
    for k in sorted(given - allowed):
        users = [m for m, (_, ok) in _MODEL_LEVELS.items() if k in ok]
        raise ValueError(f"{names[k]} is not a parameter of {model}; it is for "
                         f"{', '.join(names['noise'].format(m) for m in users)}")
    for k in sorted(required - given):
        raise ValueError(f"{model} needs {names[k]}")
    if noise == "rician" and len(given) != 1:
        raise ValueError(f"{model} needs either {names['sigmas']} (σ, 0–255 scale) or {names['snrs']}"
                         + (", not both" if given else ""))
    sigma_list = _sigma_list(sigmas, names["sigmas"]) if sigmas is not None else [None]
    peak_list = _positive_list(peaks, names["peaks"]) if peaks is not None else [None]
    snr_list = _positive_list(snrs, names["snrs"]) if snrs is not None else [None]
    return [{"noise": noise, "sigma": s, "peak": p, "snr": r}
            for p in peak_list for s in sigma_list for r in snr_list]


def _setting_key(record):
    """The level a record belongs to in the tables: σ for Gaussian noise (as before there were models),
    else ``(noise, peak, sigma, snr)``."""
    noise = record.get("noise") or "gaussian"
    if noise == "gaussian":
        return record["sigma"]
    if noise == "rician" and record.get("snr") is not None:  # σ differs per image: one group per SNR
        return (noise, None, None, record["snr"])
    return (noise, record.get("peak"), record.get("sigma"), record.get("snr"))


def _key_order(key):
    if not isinstance(key, tuple):
        return (0, "", key, 0.0, 0.0)
    noise, peak, sigma, snr = key
    return (1 + NOISE_MODELS.index(noise), noise, peak or 0.0, sigma or 0.0, snr or 0.0)


def describe_setting(key: Any) -> str:
    """A table heading's description of a level (a key of :func:`summarize`): the model and its parameters."""
    if not isinstance(key, tuple):
        return f"σ = {key:g}/255"
    noise, peak, sigma, snr = key
    inner = "; every method on the stabilised image with σ = 1 there, then the exact unbiased inverse"
    if noise == "rician":
        level = f"SNR {snr:g} (σ = foreground mean / {snr:g})" if snr is not None else f"σ = {sigma:g}/255"
        return f"Rician noise, {level} (Rician VST{inner})"
    read = f", read noise σ = {sigma:g}/255" if noise == "poisson-gaussian" else ""
    name = "Poisson–Gaussian" if noise == "poisson-gaussian" else "Poisson"
    return f"{name} noise, peak {peak:g} counts{read} (generalized Anscombe transform{inner})"


def _draw(clean, setting, seed):
    """``(noisy, stabilised, record fields)`` for one setting and seed; ``clean`` float64 on [0, 1].

    ``noisy`` is on the clean image's scale (Poisson counts divided by the peak); ``stabilised`` is None for
    Gaussian noise, else the :class:`nlmeans.noise_models.Stabilised` image every method denoises.
    """
    noise, sigma_255, peak = setting["noise"], setting["sigma"], setting["peak"]
    fields = {"noise": noise, "peak": peak, "snr": setting["snr"], "sigma": sigma_255}
    with np.errstate(over="ignore"):
        if noise == "gaussian":
            return add_noise(clean, sigma_from_255(sigma_255), seed=seed), None, fields
        if noise == "rician":
            sigma = (sigma_from_255(sigma_255) if sigma_255 is not None
                     else rician_sigma_for_snr(clean, setting["snr"]))
            fields["sigma"] = sigma * 255.0
            noisy = add_noise(clean, sigma, noise="rician", seed=seed)
            return noisy, stabilise(noisy, "rician", sigma), fields
        # the Poisson models on counts (gain 1): the clean image times the peak, read noise σ·peak in counts
        read = 0.0 if noise == "poisson" else sigma_from_255(sigma_255) * peak
        counts = add_noise(clean * peak, read if noise == "poisson-gaussian" else None, noise=noise, seed=seed)
        return counts / peak, stabilise(counts, noise, read, 1.0), fields


# ---------------------------------------------------------------------------------------------------------------
# the experiment


def _warm_up(method_names, ndims):
    """Call every method once on a small image per dimensionality, so timings exclude numba's compilation
    and the first call's imports (scikit-image's TV: 0.6 s on its first call, 1.5 ms after)."""
    rng = np.random.default_rng(0)
    for name in method_names:
        m = REGISTRY[name]
        for ndim in sorted(ndims):
            tiny = rng.random((32, 32) if ndim == 2 else (32, 32, 3)).astype(np.float32)
            m(tiny, 0.08, channel_axis=None if ndim == 2 else -1)


def _score(clean, out, axis):
    return psnr(clean, out), ssim(clean, out, channel_axis=axis)


def _run_method(method, clean, noisy, sigma, axis, tune, finish=None):
    """Run one method (every grid point when tuning); returns (record fields, denoised image).

    ``finish`` maps the method's output to the estimate that is scored (the inverse of a stabilising
    transform); ``seconds`` is the method's call alone."""
    n_channels = 1 if axis is None else noisy.shape[-1]
    candidates = method.grid_for(sigma, 1.0, n_channels) if tune else [method.params_for(sigma, 1.0, n_channels)]
    best = None
    for params in candidates:
        start = time.perf_counter()
        out = method(noisy, sigma, channel_axis=axis, **params)
        seconds = time.perf_counter() - start
        if finish is not None:
            out = finish(out)
        score = psnr(clean, out)
        if best is None or score > best[0]:
            best = (score, seconds, params, out)
    score, seconds, params, out = best
    fields = {
        "psnr": score, "ssim": ssim(clean, out, channel_axis=axis), "seconds": seconds,
        "tuned": bool(tune and len(candidates) > 1), "grid_size": len(candidates), "params": params,
    }
    return fields, out


def run_experiment(images: Images, sigmas: Levels | None = None, methods: Methods = "all",
                   seeds: int | Sequence[int] = 1, tune: bool = False, *, crop: int | None = None,
                   progress: bool = False, keep_images: bool | Collection[tuple[str, Any]] = False,
                   noise: NoiseModel = "gaussian", peaks: Levels | None = None, snrs: Levels | None = None,
                   warming: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
                   ) -> tuple[list[Record], dict[tuple[str, Any], dict[str, Array]]]:
    """:func:`evaluate`, also returning the images of the first seed when ``keep_images`` (for plots).

    ``keep_images``: True (all), False, or a collection of ``(image name, level)`` pairs to keep, the level
    being σ (0–255) for Gaussian noise and a key of :func:`summarize` otherwise. ``warming``: a context manager
    factory around the warm-up (the command line announces compilation). Returns ``(records, gallery)``;
    ``gallery[(image, level)]`` is ``{"clean": ..., "noisy": ..., method: out}`` (float arrays on the [0, 1]
    scale).
    """
    from tqdm.auto import tqdm

    settings = noise_settings(noise, sigmas, peaks, snrs)
    named = [(n, _check_image(n, a)) for n, a in _named_images(images)]
    if crop is not None:
        named = [(n, center_crop(a, crop)) for n, a in named]
    seed_list = _seed_list(seeds)
    names = resolve_methods(methods)
    with warming():
        _warm_up(names, {a.ndim for _, a in named})

    records, gallery = [], {}
    total = len(named) * len(settings) * len(seed_list) * len(names)
    bar = tqdm(total=total, desc="eval", unit="run", disable=None if progress else True, leave=False)
    try:
        for image_name, clean in named:
            axis = None if clean.ndim == 2 else -1
            clean64 = to_float(clean, np.float64)
            for setting in settings:
                for seed in seed_list:
                    noisy, stab, fields = _draw(clean64, setting, seed)
                    with np.errstate(over="ignore"):  # too large for float32: the clear error just below
                        noisy = noisy.astype(np.float32)
                    if not np.isfinite(noisy).all():
                        raise ValueError(f"image {image_name!r} has values too large for float32 evaluation")
                    level = _setting_key(fields)
                    wanted = keep_images is True or (
                        not isinstance(keep_images, bool) and (image_name, level) in set(keep_images))
                    keep = wanted and seed == seed_list[0]
                    if keep:
                        gallery[(image_name, level)] = {"clean": to_float(clean, np.float32), NOISY: noisy}
                    base = {"image": image_name, "sigma": fields["sigma"], "seed": seed}
                    p, s = _score(clean, noisy, axis)
                    records.append({**base, "method": NOISY, "psnr": p, "ssim": s, "seconds": 0.0,
                                    "tuned": False, "grid_size": 0, **fields, "params": {}})
                    if stab is None:
                        inner, inner_sigma, finish = noisy, sigma_from_255(fields["sigma"]), None
                    else:
                        inner, inner_sigma = stab.image.astype(np.float32), stab.sigma
                        scale = 1.0 / (fields["peak"] or 1.0)  # counts back to the clean image's scale

                        def finish(out, stab=stab, scale=scale):
                            return (stab.invert(out) * scale).astype(np.float32)
                    for name in names:
                        bar.set_postfix_str(f"{image_name} {_short(level)} seed={seed} {name}", refresh=False)
                        out_fields, out = _run_method(REGISTRY[name], clean, inner, inner_sigma, axis, tune,
                                                      finish)
                        records.append({**base, "method": name, **out_fields, **fields,
                                        "params": out_fields["params"]})
                        if keep:
                            gallery[(image_name, level)][name] = to_float(out, np.float32)
                        bar.update(1)
    finally:
        bar.close()
    return records, gallery


def _short(level):
    if not isinstance(level, tuple):
        return f"σ={level:g}"
    noise, peak, sigma, snr = level
    parts = [noise] + [f"{k}={v:g}" for k, v in (("peak", peak), ("σ", sigma), ("snr", snr)) if v is not None]
    return " ".join(parts)


def evaluate(images: Images, sigmas: Levels | None = None, methods: Methods = "all",
             seeds: int | Sequence[int] = 1, tune: bool = False, *, crop: int | None = None,
             progress: bool = False, noise: NoiseModel = "gaussian", peaks: Levels | None = None,
             snrs: Levels | None = None) -> list[Record]:
    """Noise clean images, denoise them with each method, and score the results (Buades et al.'s experiment).

    Parameters
    ----------
    images : array, path, list or dict
        Clean images: (H, W) gray or (H, W, C) color arrays (channels last; uint8, uint16, float32, float64;
        integers are scaled to [0, 1], floats taken as they are with 1.0 as the full range), image files, or
        folders of image files; a dict ``{name: array}`` names them (files are named by their stem).
    sigmas : float or list of float, optional
        Noise standard deviations **on the 0–255 scale** (the scale of the literature and of the command
        line): σ = 20 adds noise of 20/255 of the full range. Required for Gaussian noise; with
        ``noise="poisson-gaussian"`` the read noise's σ, with ``noise="rician"`` the Rician σ (or give
        ``snrs``); refused with ``noise="poisson"``.
    methods : "all", str or list of str
        Names from :data:`nlmeans.methods.REGISTRY` (comma-separated string or list); ``"all"``: every method
        available here.
    seeds : int or list of int
        Number of noise draws (seeds 0 … N−1) or the seeds themselves. The noise of seed ``s`` is
        ``nlmeans.add_noise(clean, σ/255, seed=s)`` (not clipped), so any record can be reproduced.
    tune : bool
        Oracle tuning: for each image, σ and seed, run every parameter set of the method's grid and keep the
        one with the best PSNR **against the clean image** (records get ``tuned=True``). This shows each
        method at its best; it is not a usable denoiser setting.
    crop : int or None
        Use the central ``crop`` × ``crop`` region of each image.
    progress : bool
        Show a progress bar (on a terminal).
    noise : {"gaussian", "poisson", "poisson-gaussian", "rician"}
        The noise model (as in :func:`nlmeans.add_noise`). ``"poisson"``: the clean image (on [0, 1]) times
        each peak is the mean count, counts are drawn and divided by the peak again. ``"poisson-gaussian"``:
        that plus Gaussian read noise of σ (``sigmas``, 0–255 scale of the clean image), every peak × σ.
        ``"rician"``: the magnitude of the clean image plus complex Gaussian noise of σ (``sigmas``) or of the
        σ that gives each image the SNR of ``snrs``. Every method then runs inside the same variance-
        stabilising transform: it denoises the stabilised image (mapped onto [0, 1]) with σ = 1 on the
        stabilised scale, and its output goes through the exact unbiased inverse
        (:mod:`nlmeans.noise_models`) before it is scored against the clean image.
    peaks : float or list of float, optional
        The Poisson models' peaks, > 0: the mean photon count at the clean image's 1.0 (lower is noisier).
    snrs : float or list of float, optional
        Rician only: signal-to-noise ratios, > 0; σ = mean of the image's foreground (values above 5 % of its
        maximum) / SNR.

    Returns
    -------
    records : list of dict
        One per image × level × seed × method, plus a ``"noisy"`` row per image × level × seed; keys
        ``image, sigma, seed, method, psnr, ssim, seconds, tuned, grid_size, noise, peak, snr, params`` (see
        the module docstring). PSNR and SSIM use a data range of 1.0 on the [0, 1] scale.

    Raises
    ------
    ValueError
        An unknown noise model, a level list the model does not use (``peaks`` with Gaussian noise, ``sigmas``
        with ``"poisson"``, ...) or a missing one, a level ≤ 0, a Poisson model on an image with negative
        values.

    Notes
    -----
    Every method gets the same noisy float32 image (or stabilised image) and the true σ (1 on the stabilised
    scale). ``seconds`` is the wall time of the call
    (``time.perf_counter``) after a warm-up call of every method on a small image (no compilation, no
    first-call imports in it).

    References
    ----------
    .. [1] A. Buades, B. Coll and J.-M. Morel, "A review of image denoising algorithms, with a new one",
       Multiscale Model. Simul. 4(2), 2005.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> clean = np.tile(np.linspace(0, 1, 32), (32, 1))
    >>> recs = nlmeans.evaluate({"ramp": clean}, [20], methods=["gaussian"])
    >>> [r["method"] for r in recs]
    ['noisy', 'gaussian']
    >>> recs = nlmeans.evaluate({"ramp": clean}, noise="poisson", peaks=[4], methods=["gaussian"])
    >>> [(r["method"], r["noise"], r["peak"]) for r in recs]
    [('noisy', 'poisson', 4.0), ('gaussian', 'poisson', 4.0)]
    """
    return run_experiment(images, sigmas, methods, seeds, tune, crop=crop, progress=progress, noise=noise,
                          peaks=peaks, snrs=snrs)[0]


# ---------------------------------------------------------------------------------------------------------------
# summaries and reports


def _mean(values):
    return float(np.mean(values)) if values else math.nan


def summarize(records: Iterable[Record]) -> dict[Any, list[dict[str, Any]]]:
    """``{level: rows}``: per method the mean PSNR, SSIM and seconds over images and seeds, ranked by mean
    PSNR (best first), the ``"noisy"`` row last. Each row also has ``per_image`` (mean PSNR by image).

    The level is σ (0–255) for Gaussian noise, else the tuple ``(noise, peak, sigma, snr)``
    (:func:`describe_setting` says it in words)."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in records:
        groups[_setting_key(r)][r["method"]].append(r)
    out = {}
    for sigma in sorted(groups, key=_key_order):
        rows = []
        for method, recs in groups[sigma].items():
            per_image = defaultdict(list)
            for r in recs:
                per_image[r["image"]].append(r["psnr"])
            rows.append({
                "method": method,
                "psnr": _mean([r["psnr"] for r in recs]),
                "ssim": _mean([r["ssim"] for r in recs]),
                "seconds": _mean([r["seconds"] for r in recs]),
                "tuned": any(r["tuned"] for r in recs),
                "n": len(recs),
                "per_image": {k: _mean(v) for k, v in per_image.items()},
            })
        rows.sort(key=lambda row: (row["method"] == NOISY, -row["psnr"]))
        out[sigma] = rows
    return out


def format_table(records: Sequence[Record], *, markdown: bool = False, max_image_columns: int = 6) -> str:
    """The ranked table of every σ as text (for the terminal) or GitHub markdown."""
    summary = summarize(records)
    images = list(dict.fromkeys(r["image"] for r in records))
    seeds = sorted({r["seed"] for r in records})
    show_images = len(images) <= max_image_columns
    tuned = any(r["tuned"] for r in records)
    blocks = []
    for sigma, rows in summary.items():
        note = (f"{describe_setting(sigma)} — {len(images)} image(s) × {len(seeds)} seed(s); mean PSNR (dB), "
                "SSIM and time per call")
        if tuned:
            untuned = [row["method"] for row in rows if not row["tuned"] and row["method"] != NOISY]
            note += "; * = oracle-tuned: parameters picked from a grid using the clean image"
            if untuned:
                note += f" (not tuned, no grid: {', '.join(untuned)})"
        header = ["#", "method", "PSNR", "SSIM", "time s"] + (images if show_images else [])
        body = []
        rank = 0
        for row in rows:
            is_noisy = row["method"] == NOISY
            rank += 0 if is_noisy else 1
            name = "noisy input" if is_noisy else row["method"] + (" *" if row["tuned"] else "")
            cells = ["" if is_noisy else str(rank), name, f"{row['psnr']:.2f}", f"{row['ssim']:.3f}",
                     "–" if is_noisy else f"{row['seconds']:.2f}"]
            if show_images:
                cells += [f"{row['per_image'].get(i, math.nan):.2f}" for i in images]
            body.append(cells)
        if markdown:
            lines = [f"**{note}**", "", "| " + " | ".join(header) + " |",
                     "|" + "|".join("---:" if i != 1 else "---" for i in range(len(header))) + "|"]
            lines += ["| " + " | ".join(c) + " |" for c in body]
        else:
            widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]

            def fmt(cells, widths=widths):
                return "  ".join(c.ljust(w) if i == 1 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

            lines = [note, fmt(header), fmt(["-" * w for w in widths])] + [fmt(c) for c in body]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_json(records: Iterable[Record], path: StrPath, *, overwrite: bool = True) -> None:
    """Write the records as a JSON list (UTF-8), atomically (:func:`nlmeans.io.atomic_output`;
    ``overwrite=False`` never replaces an existing file)."""
    from ..io import atomic_output

    with atomic_output(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(json.dumps(_jsonable(records), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_csv(records: Iterable[Record], path: StrPath, *, overwrite: bool = True) -> None:
    """Write the records as CSV, one row each; ``params`` as a JSON object in one column. Atomically, as
    :func:`write_json`."""
    from ..io import atomic_output

    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(RECORD_KEYS)
        for r in records:
            row = [r.get(k) for k in RECORD_KEYS[:-1]] + [json.dumps(_jsonable(r["params"]), ensure_ascii=False)]
            writer.writerow(row)


def read_records(path: StrPath) -> list[Record]:
    """Records back from a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def rules_table(markdown: bool = True) -> str:
    """Every registered method with its σ rule and tuning grid (for reports)."""
    lines = ["| method | σ rule (defaults) | --tune grid |", "|---|---|---|"] if markdown else []
    for name, m in REGISTRY.items():
        grid = "; ".join(f"{k}: {'×' if not isinstance(m.params_for(20 / 255)[k], int) else ''}"
                         f"{', '.join(f'{v:g}' for v in vals)}" for k, vals in m.grid.items()) or "not tuned"
        avail = "" if m.available else " (not installed here)"
        if markdown:
            lines.append(f"| `{name}`{avail} | {m.rule_doc} | {grid} |")
        else:
            lines.append(f"{name}{avail}: {m.rule_doc}  [grid: {grid}]")
    return "\n".join(lines)


__all__ = ["RECORD_KEYS", "describe", "describe_setting", "evaluate", "format_table", "noise_settings",
           "read_records", "rules_table", "run_experiment", "summarize", "write_csv", "write_json"]
