"""Bit-identity check across refactors: sha256 of the bytes of every public entry point's output.

Uses only public API that exists since commit de13062 (``nlmeans.denoise`` and its methods and options,
``denoise_volume``, ``denoise_video``, ``denoise_tiled``, ``estimate_sigma``, every baseline of
``nlmeans.eval.registry``), on crops of the bench images, float32, float64 and uint8, gray and color, σ = 10 and
30 on the 0–255 scale, fixed seeds. Run it with one tree's package on the path, then the other's, and compare::

    PYTHONPATH=/path/to/old/tree python bench/bit_identity.py --out old.json
    python bench/bit_identity.py --out new.json --compare old.json

``--compare`` prints every entry whose hash differs (or is missing) and exits 1 if any does. About 1-3
minutes on 2 cores with a warm numba cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import time
from functools import partial

import imageio.v3 as iio
import numpy as np

import nlmeans
from nlmeans.eval import registry as methods

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"
SIGMAS_255 = (10, 30)
DTYPES = ("float32", "float64", "uint8")


def _digest(x):
    """sha256 of an output's dtype, shape and bytes (a float: its repr)."""
    if np.isscalar(x):
        return hashlib.sha256(repr(float(x)).encode()).hexdigest()
    a = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _clean(name, size):
    """A ``size`` × ``size`` crop of a bench image, float64 in [0, 1] (gray: 2-D, color: H × W × 3)."""
    img = iio.imread(DATA / f"{name}.png")
    if img.ndim == 3:
        img = img[..., :3]
    y0, x0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return img[y0:y0 + size, x0:x0 + size].astype(np.float64) / 255.0


def _noisy(clean, sigma_255, dtype, seed):
    """``clean`` plus Gaussian noise of σ (0–255 scale), as ``dtype`` (uint8: rounded and clipped)."""
    rng = np.random.default_rng(seed)
    x = clean + rng.normal(0.0, sigma_255 / 255.0, clean.shape)
    if dtype == "uint8":
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return x.astype(dtype)


def _cases():
    """(key, thunk) for every output hashed; a thunk is a ``functools.partial`` holding its own arguments."""
    images = (("camera", None), ("brick", None), ("astronaut", -1))
    for name, axis in images:
        clean = _clean(name, 72)
        for s in SIGMAS_255:
            for dt in DTYPES:
                seed = len(name) * 1000 + s * 10 + DTYPES.index(dt)  # fixed, different per case
                x = _noisy(clean, s, dt, seed)
                sig = s / 255.0
                tag = f"{name}/s{s}/{dt}"
                kw = dict(channel_axis=axis)
                for m in ("pixelwise", "patchwise", "nlbayes"):
                    yield f"denoise/{m}/{tag}", partial(nlmeans.denoise, x, sig, method=m, **kw)
                yield f"denoise/default/{tag}", partial(nlmeans.denoise, x, **kw)
                yield f"denoise/gaussian-weights/{tag}", partial(
                    nlmeans.denoise, x, sig, method="pixelwise", patch_weights="gaussian", **kw)
                yield f"denoise/patchwise-gaussian/{tag}", partial(
                    nlmeans.denoise, x, sig, method="patchwise", patch_weights="gaussian", patch_sigma=1.0, **kw)
                guide = _noisy(clean if axis is None else clean.mean(axis=-1), s / 2, dt, seed + 7)
                yield f"denoise/guided/{tag}", partial(nlmeans.denoise, x, sig, method="pixelwise", guide=guide,
                                                       **kw)
                yield f"estimate_sigma/{tag}", partial(nlmeans.estimate_sigma, x, **kw)
                yield f"denoise_tiled/{tag}", partial(nlmeans.denoise_tiled, x, sig, tile_rows=24, **kw)
        # h="auto" (SURE) runs NL-means 48 times: one small crop per image
        small = _noisy(_clean(name, 40), 20, "float32", 99)
        yield f"denoise/h-auto/{name}/s20/float32", partial(
            nlmeans.denoise, small, 20 / 255, method="pixelwise", h="auto", channel_axis=axis)
        # stacks: 6 crops of 28 × 28 (volume: Z slices; video: frames), shifted one pixel per slice
        base = _clean(name, 40)
        for dt in DTYPES:
            stack = np.stack([base[k:k + 28, k:k + 28] for k in range(6)])
            x = _noisy(stack, 20, dt, 500 + DTYPES.index(dt))
            kw = dict(channel_axis=axis)
            yield f"denoise_volume/{name}/s20/{dt}", partial(nlmeans.denoise_volume, x, 20 / 255, **kw)
            yield f"denoise_video/{name}/s20/{dt}", partial(nlmeans.denoise_video, x, 20 / 255, **kw)
    # every baseline of the registry, gray and color, σ = 10 and 30, float32 and uint8
    for name, axis in (("camera", None), ("astronaut", -1)):
        clean = _clean(name, 48)
        for s in SIGMAS_255:
            for dt in ("float32", "uint8"):
                x = _noisy(clean, s, dt, 700 + s)
                for m in methods.available_methods():
                    yield f"method/{m}/{name}/s{s}/{dt}", partial(methods.get_method(m), x, s / 255,
                                                                  channel_axis=axis)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, help="write the hashes here (JSON)")
    parser.add_argument("--compare", type=pathlib.Path, help="a JSON of an earlier run to compare with")
    args = parser.parse_args()
    t0 = time.perf_counter()
    hashes = {key: _digest(run()) for key, run in _cases()}
    report = {"nlmeans_file": nlmeans.__file__, "seconds": round(time.perf_counter() - t0, 1),
              "hashes": hashes}
    print(f"{len(hashes)} outputs hashed in {report['seconds']} s from {nlmeans.__file__}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    if args.compare:
        old = json.loads(args.compare.read_text())["hashes"]
        bad = sorted(k for k in old.keys() | hashes.keys() if old.get(k) != hashes.get(k))
        for k in bad:
            print(f"DIFFERS: {k}  old {str(old.get(k))[:12]}  new {str(hashes.get(k))[:12]}")
        print(f"{len(old.keys() & hashes.keys()) - len([k for k in bad if k in old and k in hashes])} identical, "
              f"{len(bad)} differing or missing")
        raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
