"""The napari plugin of nlmeans (npe2 manifest ``napari.yaml``; install with ``pip install "nlmeans[napari]"``).

A dock widget (:class:`nlmeans.napari._widget.DenoiseWidget`, Plugins › nlmeans) that denoises an image layer
into a new layer "<name> denoised", and a noisy sample image (File › Open Sample › nlmeans). Importing this
package does not import napari; the widget module does. See docs/napari.md.
"""
