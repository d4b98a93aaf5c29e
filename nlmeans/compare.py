"""A before/after picture of one denoising: noisy | denoised side by side at full resolution, a zoom of each
on the most textured region below, and a caption (σ on the 0–255 scale, the method, the time).

The panels show the pixels as stored: 8-bit images exactly (the left panel *is* the noisy input), others
mapped to 8 bits the same way for both panels (integers by their dtype's range, floats by the noisy image's
0.1–99.9 percentiles), so the two halves compare like for like. Text is drawn with Pillow's built-in font
(Pillow comes with imageio; :func:`nlmeans._optional.require` says how to install it if it is missing).
"""

from __future__ import annotations

import numpy as np

#: the zoom: nearest-neighbour factor and side of the region shown (pixels of the image)
ZOOM, CROP = 4, 64
GAP = 8  # pixels between panels
_BACKGROUND, _INK = 32, 235  # dark gray background, light text


def _display(arr, low, high):
    """``arr`` as uint8 RGB (H, W, 3): gray repeated, RGB kept, other channel counts shown by their first."""
    if arr.ndim == 3:
        arr = arr if arr.shape[-1] == 3 else arr[..., 0]
    if arr.dtype != np.uint8:
        scale = 255.0 / (high - low) if high > low else 0.0
        arr = np.clip(np.rint((arr.astype(np.float64) - low) * scale), 0, 255).astype(np.uint8)
    return np.repeat(arr[..., None], 3, axis=-1) if arr.ndim == 2 else arr


def _mapping(noisy):
    """The (low, high) range shown as 0…255 for non-8-bit images (see the module docstring)."""
    if noisy.dtype == np.uint8:
        return 0.0, 255.0
    if noisy.dtype.kind in "ui":
        info = np.iinfo(noisy.dtype)
        return float(info.min), float(info.max)
    finite = noisy[np.isfinite(noisy)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [0.1, 99.9])
    return float(low), float(high)


def textured_region(image, side=CROP):
    """The top-left corner (row, column) of the ``side``² region of ``image`` (H, W[, 3] uint8) with the
    largest standard deviation, on a grid of half-overlapping regions (the last row and column included)."""
    gray = image.astype(np.float64).mean(axis=-1) if image.ndim == 3 else image.astype(np.float64)
    h, w = gray.shape
    side_y, side_x = min(side, h), min(side, w)

    def starts(n, s):
        return sorted(set(range(0, n - s + 1, max(1, s // 2))) | {n - s})

    best, where = -1.0, (0, 0)
    for y in starts(h, side_y):
        for x in starts(w, side_x):
            score = float(gray[y:y + side_y, x:x + side_x].std())
            if score > best:
                best, where = score, (y, x)
    return where


def _text_lines(text, width, font):
    """``text`` broken at spaces into lines at most ``width`` pixels wide (a longer word gets a line alone)."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            trial = f"{line} {word}" if line else word
            if line and font.getlength(trial) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def compare_image(noisy, denoised, caption, *, channel_axis=None):
    """The before/after picture: noisy | denoised, a zoom of each below, the caption at the bottom.

    Parameters
    ----------
    noisy, denoised : numpy.ndarray
        The input and the output, same shape: (H, W), or (H, W, C) with ``channel_axis`` -1 (3 channels are
        shown in colour, other counts by their first channel).
    caption : str
        The text under the panels (ASCII; the built-in font has no Greek letters); ``\\n`` starts a line.
    channel_axis : int or None
        -1 when the images have channels (last), None for gray.

    Returns
    -------
    numpy.ndarray
        uint8 (height, width, 3). The noisy panel's top-left pixel is at (0, 0), the denoised panel's at
        (0, W + GAP); the zooms (``ZOOM``× nearest neighbour of the ``CROP``² region of the denoised image
        with the most texture, :func:`textured_region`) start ``GAP`` rows below; the caption names the region.
    """
    from ._optional import require

    ImageDraw = require("PIL.ImageDraw", "the --compare picture")
    ImageFont = require("PIL.ImageFont", "the --compare picture")
    PILImage = require("PIL.Image", "the --compare picture")

    noisy, denoised = np.asarray(noisy), np.asarray(denoised)
    if noisy.shape != denoised.shape:
        raise ValueError(f"noisy {noisy.shape} and denoised {denoised.shape} must have the same shape")
    if noisy.ndim != (2 if channel_axis is None else 3):
        raise ValueError(f"images of shape {noisy.shape} with channel_axis={channel_axis!r}: expected (H, W) "
                         "without a channel axis or (H, W, C) with channel_axis=-1")
    low, high = _mapping(noisy)
    left, right = _display(noisy, low, high), _display(denoised, low, high)
    h, w = left.shape[:2]
    y0, x0 = textured_region(right)
    side_y, side_x = min(CROP, h), min(CROP, w)

    def zoom(panel):
        crop = panel[y0:y0 + side_y, x0:x0 + side_x]
        return np.repeat(np.repeat(crop, ZOOM, axis=0), ZOOM, axis=1)

    zoom_left, zoom_right = zoom(left), zoom(right)
    zh, zw = zoom_left.shape[:2]
    font = ImageFont.load_default(size=13)
    width = max(2 * w + GAP, 2 * zw + GAP)
    text = (f"{caption}\nbelow: {ZOOM}x nearest-neighbour zoom of the {side_x}x{side_y} region at x {x0}, "
            f"y {y0} (the most textured)")
    lines = _text_lines(text, width - 2 * GAP, font)
    line_height = 17
    height = h + GAP + zh + GAP + line_height * len(lines) + GAP
    canvas = np.full((height, width, 3), _BACKGROUND, np.uint8)
    canvas[:h, :w], canvas[:h, w + GAP:2 * w + GAP] = left, right
    top = h + GAP
    canvas[top:top + zh, :zw], canvas[top:top + zh, zw + GAP:2 * zw + GAP] = zoom_left, zoom_right
    picture = PILImage.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    for i, line in enumerate(lines):
        draw.text((GAP, top + zh + GAP + i * line_height), line, fill=(_INK,) * 3, font=font)
    return np.asarray(picture).copy()
