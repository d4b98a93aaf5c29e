"""Make docs/napari.png: the widget in a real napari window, the noisy sample and its denoised layer side by side.

Run from the repository root under a display (needs the ``napari`` extra)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/napari_screenshot.py
"""

from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).resolve().parent / "napari.png"


def main():
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 820)
    (noisy,) = viewer.open_sample("nlmeans", "noisy_camera")
    _, widget = viewer.window.add_plugin_dock_widget("nlmeans", "Denoise (NL-Bayes / NL-means)")
    widget.layer.value = noisy
    app = QApplication.instance()
    widget.estimate.native.click()
    while widget._worker is not None:
        app.processEvents()
    widget.run.native.click()
    while widget._worker is not None:
        app.processEvents()
    grid = getattr(getattr(viewer, "canvas", None), "grid", None) or viewer.grid  # napari >= 0.9: canvas.grid
    grid.enabled = True  # before | after
    viewer.layers.selection.active = viewer.layers[f"{noisy.name} denoised"]
    viewer.reset_view()
    for _ in range(20):
        app.processEvents()
    viewer.screenshot(str(OUT), canvas_only=False)
    print(f"wrote {OUT}: {widget.status.value}")
    viewer.close()


if __name__ == "__main__":
    main()
