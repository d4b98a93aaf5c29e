"""Our defaults vs scikit-image and OpenCV NL-means at their oracle h, on the standard set (issue #6 target).

    python -m bench.preset_vs_peers [--size 256] [--sigmas 10 20 30 50]

For every image (crops, bench/_common.py) and σ (0–255 scale), noise seed 0: PSNR of
nlmeans.denoise(noisy, σ) (defaults), of skimage.restoration.denoise_nl_means (fast_mode, patch 7,
patch_distance 10, sigma given) and of OpenCV fastNlMeansDenoising[Colored] (template 7, search 21; uint8
input, so it gets the noisy image rounded and clipped), each peer at its best h over H_GRID (oracle, uses the
clean image). A quick check for the presets; the full baseline registry lives in bench/quality.py (``--standard``).
Writes bench/results/preset_vs_peers.json.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
from skimage.restoration import denoise_nl_means

import nlmeans

from . import _common as common

H_GRID_SKIMAGE = (0.4, 0.6, 0.8, 1.0, 1.2)
H_GRID_OPENCV = (0.6, 0.8, 1.0, 1.2, 1.5)


def main():
    parser = common.arg_parser(__doc__)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rows = []
    for s255 in args.sigmas:
        sigma = s255 / 255
        for name in common.names():
            clean = common.load(name, args.size)
            color = common.is_color(name)
            axis = -1 if color else None
            noisy = common.add_noise(clean, s255, seed=0)
            ours = nlmeans.psnr(clean, nlmeans.denoise(noisy.astype(np.float32), sigma, channel_axis=axis))
            sk = max(
                nlmeans.psnr(clean, denoise_nl_means(noisy, h=k * sigma, sigma=sigma, fast_mode=True,
                                                      patch_size=7, patch_distance=10, channel_axis=axis))
                for k in H_GRID_SKIMAGE
            )
            u8 = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
            if color:
                bgr = np.ascontiguousarray(u8[..., ::-1])
                runs = [cv2.fastNlMeansDenoisingColored(bgr, None, k * s255, k * s255, 7, 21)[..., ::-1]
                        for k in H_GRID_OPENCV]
            else:
                runs = [cv2.fastNlMeansDenoising(u8, None, k * s255, 7, 21) for k in H_GRID_OPENCV]
            cv = max(nlmeans.psnr(clean, np.ascontiguousarray(r)) for r in runs)
            rows.append({"image": name, "sigma": s255, "nlmeans_default": ours, "skimage_oracle": sk,
                         "opencv_oracle": cv})
            print(f"σ={s255} {name:22s} ours {ours:.2f}  skimage* {sk:.2f}  opencv* {cv:.2f}  "
                  f"margin {ours - max(sk, cv):+.2f} dB", flush=True)
    for s255 in args.sigmas:
        sel = [r for r in rows if r["sigma"] == s255]
        m = {k: np.mean([r[k] for r in sel]) for k in ("nlmeans_default", "skimage_oracle", "opencv_oracle")}
        print(f"σ={s255}: mean ours {m['nlmeans_default']:.2f}, skimage* {m['skimage_oracle']:.2f}, "
              f"opencv* {m['opencv_oracle']:.2f}; ours − best peer "
              f"{m['nlmeans_default'] - max(m['skimage_oracle'], m['opencv_oracle']):+.2f} dB")
    common.RESULTS.mkdir(exist_ok=True)
    (common.RESULTS / "preset_vs_peers.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
