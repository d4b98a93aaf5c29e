"""What the napari widget adds to the time of the same ``nlmeans.denoise`` call (target: at most 10 %).

Run from the repository root under a display (needs the ``napari`` extra)::

    xvfb-run -a python -m bench.napari_overhead            # 5 rounds, writes bench/results/napari_overhead.txt
    xvfb-run -a python -m bench.napari_overhead --runs 3 --method pixelwise

Image: scikit-image's camera upscaled to 1024×1024, uint8, Gaussian noise σ = 25 on the 0–255 scale (seed 0).
Each round times, one after the other, ``nlmeans.denoise`` on the array and the widget in a real napari viewer
from the click on "Denoise" to the new layer in the viewer (worker start, progress signals, the result layer
added), once with σ given (25) and once with σ blank (estimated by both). One untimed warm-up of each first;
the median and the minimum of ``--runs`` rounds are reported (wall clock, ``time.perf_counter``; on a shared
machine the minimum is the steadier figure: other processes only ever add time).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np

RESULT = Path(__file__).resolve().parent / "results" / "napari_overhead.txt"
SIGMA_255 = 25


def noisy_image(side=1024):
    from skimage import data, transform

    import nlmeans

    clean = transform.resize(data.camera(), (side, side), order=1)
    noisy = nlmeans.add_noise(clean, SIGMA_255 / 255, seed=0, clip=True)
    return np.round(noisy * 255).astype(np.uint8)


def time_widget(app, viewer, widget, layer, sigma_text):
    """Seconds from the click on Denoise until "<name> denoised" is in the viewer; removes it again."""
    from qtpy.QtCore import QEventLoop

    name = f"{layer.name} denoised"
    widget.sigma.value = sigma_text
    # a Qt event loop that blocks until the layer arrives, as napari's own does (no polling to compete with
    # the worker's threads)
    loop = QEventLoop()

    def arrived(_event):
        loop.quit()

    viewer.layers.events.inserted.connect(arrived)
    start = time.perf_counter()
    widget.run.native.click()
    if widget._worker is None:
        raise RuntimeError(f"the widget did not start: {widget.status.value}")
    loop.exec_()
    elapsed = time.perf_counter() - start
    viewer.layers.events.inserted.disconnect(arrived)
    if name not in viewer.layers:
        raise RuntimeError(f"the widget added no layer: {widget.status.value}")
    while widget._worker is not None:  # let the worker's `finished` arrive before the next round
        app.processEvents()
        time.sleep(0.001)
    out = viewer.layers[name].data
    viewer.layers.remove(name)
    return elapsed, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed rounds (median reported)")
    parser.add_argument("--method", default=None, help="method (default: the widget's default)")
    parser.add_argument("--side", type=int, default=1024, help="image side in pixels")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results/napari_overhead.txt")
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    import nlmeans
    from nlmeans.napari._widget import DenoiseWidget

    image = noisy_image(args.side)
    viewer = napari.Viewer(show=False)
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget)
    layer = viewer.add_image(image, name="noisy")
    widget.layer.value = layer
    if args.method:
        widget.method.value = args.method
    method = widget.method.value
    app = QApplication.instance()

    cpu = platform.processor() or platform.machine()
    lines = [f"napari widget overhead: {args.side}×{args.side} uint8, σ = {SIGMA_255} (0–255), method {method}, "
             f"{args.runs} rounds; napari {napari.__version__}, {cpu}"]
    for label, sigma_text, sigma in (("σ given", str(SIGMA_255), SIGMA_255 / 255), ("σ estimated", "", None)):
        def direct(sigma=sigma):
            start = time.perf_counter()
            out = nlmeans.denoise(image, sigma, method=method)
            return time.perf_counter() - start, out

        direct()
        time_widget(app, viewer, widget, layer, sigma_text)  # warm-up
        api, gui = [], []
        for _ in range(args.runs):
            t_api, out_api = direct()
            t_gui, out_gui = time_widget(app, viewer, widget, layer, sigma_text)
            if not np.array_equal(out_api, out_gui):
                raise AssertionError("the widget's result differs from nlmeans.denoise")
            api.append(t_api)
            gui.append(t_gui)
        rounds = f"api {', '.join(f'{t:.2f}' for t in api)}; widget {', '.join(f'{t:.2f}' for t in gui)}"
        for stat in (statistics.median, min):
            a, g = stat(api), stat(gui)
            lines.append(f"  {label:12s} {stat.__name__:6s} nlmeans.denoise {a:7.3f} s   widget {g:7.3f} s   "
                         f"overhead {100 * (g / a - 1):+5.1f} %")
            print(lines[-1], flush=True)
        lines.append(f"    rounds (s): {rounds}")
    viewer.close()
    if not args.no_write:
        RESULT.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
