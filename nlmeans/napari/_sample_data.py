"""File › Open Sample › nlmeans: a noisy demo image to try the widget on."""

from __future__ import annotations

#: noise of the demo image, on the 0–255 scale (the widget's σ field for 8-bit data uses the same scale)
SIGMA_255 = 25


def noisy_camera():
    """scikit-image's 512² "camera" (uint8) with Gaussian noise σ = 25 on the 0–255 scale, fixed seed.

    Returns
    -------
    list of (data, kwargs, layer type)
        One image layer, in napari's sample-data format.
    """
    import numpy as np
    from skimage import data

    from .. import add_noise

    # back to uint8 (clipped, rounded) so the demo is what a camera gives: the widget then shows σ on 0–255
    noisy = add_noise(data.camera(), SIGMA_255 / 255, seed=0, clip=True)
    noisy = np.round(noisy * 255).astype(np.uint8)
    return [(noisy, {"name": "noisy camera", "metadata": {"noise_sigma_255": SIGMA_255}}, "image")]
