"""Every preset table in one place, and the one resolution of a call's parameters into :class:`Settings`.

Units: σ and h are on the float image's scale (integer images scaled to [0, 1]) except where a name ends in
``_255``: the 0–255 scale of the literature, ``sigma_255 = 255 * sigma / data_range``
(:func:`nlmeans._validate.sigma_to_255`). Sizes are odd side lengths in pixels. How each table was measured
is in docs/quality.md (the preset studies) and bench/ (the scripts that measured them).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace

import numpy as np

from ._validate import check_odd_size, check_real, default_data_range, sigma_to_255

log = logging.getLogger(__name__)

#: the estimators ``denoise`` offers
METHODS = ("pixelwise", "patchwise", "nlbayes")

#: what ``method=None`` (the default) runs: the best method measured on the standard set
#: (bench/results/nl_family.md); "pixelwise" instead when an option only the NL-means methods have (``h``,
#: ``guide``, ``patch_weights``, ``patch_sigma``) is given
DEFAULT_METHOD = "nlbayes"

#: the patch distances of the NL-means methods
PATCH_WEIGHTS = ("flat", "gaussian")



def resolve_method(method=None, *, h=None, guide=None, patch_weights="flat", patch_sigma=None):
    """The estimator a call runs: ``method`` checked, or for ``None`` :data:`DEFAULT_METHOD` unless an
    option only the NL-means methods have is given (then ``"pixelwise"``). One rule for every entry point."""
    if method is None:
        nlm_only = h is not None or guide is not None or patch_weights != "flat" or patch_sigma is not None
        if nlm_only:
            log.info("method: pixelwise NL-means, the default for h, guide, patch_weights or patch_sigma")
        return "pixelwise" if nlm_only else DEFAULT_METHOD
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method={method!r} is not known; allowed: {', '.join(METHODS)}")
    return method


@dataclass(frozen=True)
class Preset:
    """Parameters for one band of noise levels (σ on the 0–255 scale, upper bound inclusive)."""

    sigma_255_max: float
    patch_size: int
    search_size: int
    h_over_sigma: float


# Buades, Coll & Morel, "Non-Local Means Denoising", IPOL 2011, table of parameters.
IPOL_GRAY = (
    Preset(15, 3, 21, 0.40),
    Preset(30, 5, 21, 0.40),
    Preset(45, 7, 35, 0.35),
    Preset(75, 9, 35, 0.35),
    Preset(np.inf, 11, 35, 0.30),
)
IPOL_COLOR = (
    Preset(25, 3, 21, 0.55),
    Preset(55, 5, 35, 0.40),
    Preset(np.inf, 7, 35, 0.35),
)

# The defaults, measured on the standard set of issue #6 (6 gray and 4 color 256² crops, σ = 10, 20, 30, 50):
# for each σ the one (patch, search, h/σ) with the best mean PSNR over the set, among patch 3–9, search 21
# or 35, h/σ 0.35–1.0 (``bench/presets.py``, ``bench/results/presets.md``). Band edges sit between the
# measured σ; above σ = 50 the σ = 50 rule is kept (not measured there). Search 21 beat 35 at every σ.
DEFAULT_GRAY = (
    Preset(25, 5, 21, 0.70),
    Preset(40, 7, 21, 0.70),
    Preset(np.inf, 9, 21, 0.55),
)
DEFAULT_COLOR = (
    Preset(25, 3, 21, 0.70),
    Preset(np.inf, 5, 21, 0.55),
)

#: h used when σ is 0 (a clean image): small, so only identical patches average (float image scale)
H_FLOOR = 1e-3


def preset_for(sigma_255, n_channels=1):
    """The default preset for noise level ``sigma_255`` (0–255 scale): gray table for 1 channel, color else.

    The tables are :data:`DEFAULT_GRAY` and :data:`DEFAULT_COLOR` (measured; the IPOL 2011 table is kept as
    :data:`IPOL_GRAY` / :data:`IPOL_COLOR` for comparison).
    """
    table = DEFAULT_GRAY if n_channels == 1 else DEFAULT_COLOR
    for preset in table:
        if sigma_255 <= preset.sigma_255_max:
            return preset
    return table[-1]


def default_h(sigma, preset, data_range=1.0):
    """The default filtering parameter: ``h = preset.h_over_sigma * sigma``, at least ``H_FLOOR * data_range``."""
    return max(preset.h_over_sigma * sigma, H_FLOOR * data_range)


def fit_size(preset_size, limit):
    """The preset side length, shrunk to the largest odd size that fits the image."""
    fit = limit if limit % 2 == 1 else limit - 1
    return min(preset_size, max(fit, 1))


def default_patch_sigma(patch_size):
    """Default std (pixels) of the Gaussian patch weights: half the patch side (measured best of P/4, P/2)."""
    return patch_size / 2.0


# --- NL-Bayes ---


def nlbayes_params(sigma_255, n_channels=1):
    """Parameters for noise level ``sigma_255`` (0–255 scale) and ``n_channels``, as keyword arguments of
    :func:`nlbayes_chw` (a pair is (stage 1, stage 2)).

    Chosen by measurement on the standard set (bench/nl_family.py, 128×128 crops, gray and color;
    bench/nlbayes_presets.py, bench/high_sigma.py and bench/nlbayes_cheaper.py, 256×256 crops), not copied
    from the paper's table: up to σ = 25, patches 5×5, groups of 60 (stage 1) and 30 (stage 2), search
    windows 31×31 (stage 1) and 21×21 (stage 2), reference grid step 3; above, patches 7×7, groups of 90 and
    60, 47×47 windows in both stages, step 3. β = 1 in stage 1 and 1.2 in stage 2; homogeneous-group
    thresholds γ = 1.05 (stage 1, on the noisy group) and 0.02 (stage 2, on the basic group).

    Color (3 channels, one Gaussian model per (Y, U, V) channel): smaller stage-1 patches were both better
    and cheaper — from σ = 15 to 25 3×3 with a 17×17 stage-2 window, above σ = 25 5×5 with stage-2 groups
    of 40: +0.03 to +0.14 dB on the color means for about 0.7–0.8× the time (at σ ≤ 12 one image lost
    0.06 dB; on gray images they lose 0.1–0.4 dB). No cheaper gray setting kept the quality. The study:
    docs/quality.md, "Cheaper NL-Bayes presets"; the wider windows and finer grid above σ = 25: "High noise".
    """
    color = n_channels == 3
    if sigma_255 <= 25:
        patch, search, n_sim, step = 5, (31, 21), (60, 30), 3
        if color and sigma_255 >= 15:
            patch, search = (3, 5), (31, 17)
    else:
        patch, search, n_sim, step = 7, (47, 47), (90, 60), 3
        if color:
            patch, n_sim = (5, 7), (90, 40)
    return dict(patch_size=patch, search_size=search, n_similar=n_sim, beta=(1.0, 1.2), gamma=(1.05, 0.02),
                step=step)


def resolve_nlbayes(shape, sigma_255, n_channels=1, patch_size=None, search_size=None):
    """The NL-Bayes parameters of a call: :func:`nlbayes_params` with the sizes fitted to ``shape`` (H, W).

    ``patch_size`` and ``search_size`` (odd, at most the smaller side) replace the presets when given; a given
    size serves both stages. Returns keyword arguments of :func:`nlmeans.nlbayes.nlbayes_chw`.
    """
    params = nlbayes_params(sigma_255, n_channels)
    limit = min(shape)
    fits = f"the image's smaller side ({limit} pixels)"
    if patch_size is None:  # one size, or a pair (stage 1, stage 2)
        preset = params["patch_size"]
        params["patch_size"] = (fit_size(preset, limit) if np.ndim(preset) == 0
                                else tuple(fit_size(p, limit) for p in preset))
    else:
        params["patch_size"] = check_odd_size(patch_size, "patch_size", at_most=limit, limit_name=fits)
    if search_size is None:  # the preset is a pair (stage 1, stage 2)
        params["search_size"] = tuple(fit_size(s, limit) for s in params["search_size"])
    else:
        size = check_odd_size(search_size, "search_size", at_most=limit, limit_name=fits)
        params["search_size"] = (size, size)
    return params


# --- Poisson models at low counts ---

#: the noisy+estimate iteration of the Poisson models at low counts (Azzari & Foi 2016): (largest count level,
#: passes) rows, the first whose limit the image's count level (:func:`nlmeans.noise_models.count_level`: the
#: photon-weighted mean count, which a mostly dark image's background does not pull down) does not exceed
#: applies; above the last limit one plain pass. A pass is (λ, k): it denoises λ z + (1 − λ) x̂ (z the noisy
#: image, x̂ the previous pass's estimate) summed over k×k blocks. Below 1.2 counts the last pass stays binned
#: 2×2 (it beat a last pass at full resolution there). Measured on the gray standard set and on mostly dark
#: fluorescence-like images: docs/real-noise.md.
POISSON_ITERATION_SCHEDULES = (
    (1.2, ((1.0, 5), (0.7, 3), (0.4, 2))),
    (5.0, ((1.0, 3), (0.5, 2), (0.2, 1))),
    (16.0, ((1.0, 2), (0.5, 1))),
)
#: a pass bins by a smaller factor when its binned image would have a side below this (pixels)
POISSON_BIN_MIN_SIDE = 32


def poisson_schedule(level):
    """The passes ((λ, bin factor) pairs) of :data:`POISSON_ITERATION_SCHEDULES` for an image of this count
    level (:func:`nlmeans.noise_models.count_level`)."""
    for limit, passes in POISSON_ITERATION_SCHEDULES:
        if level <= limit:
            return passes
    return ((1.0, 1),)


def poisson_bin_factor(k, shape):
    """The bin factor ``k`` of a pass, reduced until the binned image of ``shape`` (H, W) has both sides at
    least :data:`POISSON_BIN_MIN_SIDE` (or to 1): a binned image too small to find similar patches in."""
    while k > 1 and min(-(-n // k) for n in shape) < POISSON_BIN_MIN_SIDE:
        k -= 1
    return k


#: Rician: NL-Bayes sees the stabilised image at a noise level of at least this σ (0–255 scale), i.e. its
#: high-noise row (7×7 patches, 47×47 windows, groups of 90/60) whatever the SNR. On five MRI-like images at
#: SNR 5–20 it gained +0.33 dB on average over the row the σ would select (T1 slice up to +1.38, a 58×58
#: slice −0.26): docs/real-noise.md, "Rician".
RICIAN_NLBAYES_SIGMA_255 = 30.0


#: Rician, dark regions: where the estimate x̂ is below RICIAN_DARK[1] σ the VST's inverse is steep and turns the
#: estimate's residual spread into a bias, so the result there moves (linearly in x̂ / σ, fully below
#: RICIAN_DARK[0]) to the squared-domain estimate sqrt(max(m₂ − 2σ², 0)), m₂ the mean of y² over the pixels
#: whose 3×3 patches of x̂ are alike (guided NL-means, h = RICIAN_SQUARED_H σ, RICIAN_SQUARED_SEARCH² window).
#: On five MRI-like images at SNR 5–20: +0.95 dB mean, every case gained (docs/real-noise.md, "Rician").
RICIAN_DARK = (1.0, 3.0)
RICIAN_SQUARED_H = 0.7
RICIAN_SQUARED_PATCH = 3
RICIAN_SQUARED_SEARCH = 81

#: Rician volumes: NL-Bayes runs on the stabilised volume with the video preset (:func:`nlbayes_video_params`:
#: 5×5 pixels × 3 slices, groups of 120/60), the slices as frames, this many searched on each side (None: the
#: volume preset). On four MRI-like volumes at SNR 5, 10, 20 it gained +0.52, +0.34, +0.20 dB (mean) over the
#: volume preset, on every volume and SNR; with Gaussian noise it was mixed: docs/real-noise.md, "Rician volumes".
RICIAN_VOLUME_SLICE_RADIUS = 4


def rician_presentation_scale(sigma, method):
    """The factor (≥ 1) by which the stabilised image of noise level ``sigma`` (on its [0, 1] scale) and
    its σ are multiplied before ``method`` runs: for NL-Bayes enough to reach
    :data:`RICIAN_NLBAYES_SIGMA_255`, 1 for the other methods (not measured)."""
    if method != "nlbayes" or not sigma > 0:
        return 1.0
    return max(1.0, RICIAN_NLBAYES_SIGMA_255 / 255.0 / sigma)


# --- volumes and video (pixelwise 3-D NL-means) ---

#: volumes: the search window is a cube of this side unless given (7³ = 343 offsets per voxel)
VOLUME_SEARCH = 7
#: volumes: the preset patch side is capped at this (5³ = 125 voxels per patch)
VOLUME_PATCH_MAX = 5
#: video: frames on each side of a frame that its search window spans, unless given
TEMPORAL_RADIUS = 2


def volume_sizes(preset):
    """Volumes: the 2-D preset's patch side capped at :data:`VOLUME_PATCH_MAX`; search :data:`VOLUME_SEARCH`."""
    return min(preset.patch_size, VOLUME_PATCH_MAX), VOLUME_SEARCH


# --- NL-Bayes on volumes and video ---

#: NL-Bayes 3-D: reference slices per band of the parallel loop (the "already processed" mask restarts at
#: each band, bands aligned to slice 0; at least twice the slice reach search_z // 2 + patch_z // 2)
NLBAYES_BAND_SLICES = 8


def nlbayes_volume_params(sigma_255):
    """NL-Bayes on volumes: keyword arguments of :func:`nlmeans.nlbayes.nlbayes_3d_chw` for noise level
    ``sigma_255`` (0–255 scale); cubic patches and search windows (``patch_z = patch_size``,
    ``search_z = search_size``).

    Measured on the volume set of bench/volume_video.py (4 volumes 64³, σ = 10, 20, 30) by
    bench/nlbayes3d_presets.py (bench/results/nlbayes3d_presets.md): 3×3×3 patches (27 voxels), groups of 60
    (stage 1) and 30 (stage 2) in a 9×9×9 window, reference grid step 2 on every axis. Larger patches need
    groups larger than their voxel count for a regular covariance: 5×5×3 patches with groups of 200 were
    0.2–1.0 dB worse (better only on the brick stack) at 2–3.5× the time.
    """
    del sigma_255  # one set was best at every measured σ
    return dict(patch_size=3, patch_z=3, search_size=9, search_z=9, n_similar=(60, 30), beta=(1.0, 1.2),
                gamma=(1.05, 0.02), step=2, step_z=2)


def nlbayes_video_params(sigma_255, temporal_radius=None):
    """NL-Bayes on video: keyword arguments of :func:`nlmeans.nlbayes.nlbayes_3d_chw` for noise level
    ``sigma_255`` (0–255 scale); the temporal search spans ``2 temporal_radius + 1`` frames
    (default :data:`TEMPORAL_RADIUS`).

    Measured on the video set of bench/volume_video.py (3 videos of 12 frames 128², 8-bit noisy frames,
    σ = 10, 20, 30) by bench/nlbayes3d_presets.py (bench/results/nlbayes3d_presets.md): space-time patches
    of 3 frames × 5×5 pixels (75 values), groups of 120 (stage 1) and 60 (stage 2) in a 15×15 window over
    the frames searched, reference grid step 3 in space and 1 in time. Against 3×3×3 patches with groups of
    60 and 30 (step 2): +0.3 dB at σ = 10 and +0.5 dB at σ = 30 (mean PSNR over the set), ~3.5× the time.
    """
    del sigma_255
    radius = TEMPORAL_RADIUS if temporal_radius is None else temporal_radius
    return dict(patch_size=5, patch_z=3, search_size=15, search_z=2 * radius + 1, n_similar=(120, 60),
                beta=(1.0, 1.2), gamma=(1.05, 0.02), step=3, step_z=1)


# --- a call's parameters, resolved: one rule for every entry point ---


@dataclass(frozen=True)
class Settings:
    """What a denoise call used (``denoise(..., return_settings=True)``); σ and h on the float image's scale
    (see ``data_range``)."""

    method: str
    sigma: float
    h: float | None  # None for NL-Bayes, which has no h
    patch_size: int
    search_size: int
    guide_sigma: float | None
    data_range: float
    sigma_estimated: bool
    patch_weights: str = "flat"
    patch_sigma: float | None = None
    #: Monte-Carlo SURE estimate of the mean squared error (float scale squared) when h was chosen with
    #: ``h="auto"``; None otherwise
    sure_risk: float | None = None
    #: the NL-Bayes parameters (keyword arguments of :func:`nlmeans.nlbayes.nlbayes_chw`) when the method is
    #: "nlbayes"; None otherwise
    nlbayes: dict | None = None

    @property
    def sigma_255(self):
        """σ on the 0–255 scale."""
        return sigma_to_255(self.sigma, self.data_range)

    @property
    def h_255(self):
        """h on the 0–255 scale."""
        return None if self.h is None else sigma_to_255(self.h, self.data_range)

    def as_dict(self):
        return asdict(self)


def _preset_sizes(preset):
    return preset.patch_size, preset.search_size


def resolve_parameters(shape, sigma=None, *, h=None, patch_size=None, search_size=None, n_channels=1,
                       data_range=None, estimate=None, preset_sizes=_preset_sizes,
                       side_name="the image's smaller side"):
    """The NL-means parameters a call uses: σ, presets by σ, patch and search sizes, h; one rule for every
    entry point (:func:`nlmeans.denoise`, :mod:`nlmeans.tiles` and :mod:`nlmeans.dask`, :mod:`nlmeans.volume`).

    Parameters
    ----------
    shape : tuple of int
        The spatial sides (H, W) (a volume: (Z, Y, X)); the sizes may not exceed the smallest.
    sigma, h : float or None
        **On the float image's scale** (integers scaled to [0, 1]). ``sigma=None``: ``estimate()``.
        ``h=None``: :func:`default_h` (``h="auto"`` is resolved by the caller, :func:`nlmeans.sure.choose_h`).
    patch_size, search_size : odd int or None
        ``None``: ``preset_sizes(preset)``, shrunk to the largest odd size that fits ``shape``.
    n_channels : int
        Channels the patch distance spans (picks the gray or the color preset table).
    data_range : float or None
        Range of the float values, to read σ on the 0–255 scale; ``None``: 1.0.
    estimate : callable or None
        ``estimate() -> σ``, called only when ``sigma`` is None.
    preset_sizes : callable
        ``preset -> (patch_size, search_size)`` before shrinking; default the preset's own.
    side_name : str
        How errors name the smallest side.

    Returns
    -------
    Settings
        ``method="pixelwise"``, no guide, flat patch weights; callers replace what they use differently.
    """
    data_range = default_data_range(data_range)
    sigma_estimated = sigma is None
    sigma = estimate() if sigma_estimated else check_real(sigma, "sigma", minimum=0)
    if sigma_estimated:
        log.info("sigma estimated from the image: %.4g (%.2f on the 0-255 scale)", sigma,
                 sigma_to_255(sigma, data_range))
    preset = preset_for(sigma_to_255(sigma, data_range), n_channels)
    limit = min(shape)
    limit_name = f"{side_name} ({limit} pixels)"
    preset_patch, preset_search = preset_sizes(preset)
    if patch_size is None:
        patch_size = fit_size(preset_patch, limit)
    else:
        patch_size = check_odd_size(patch_size, "patch_size", at_most=limit, limit_name=limit_name)
    if search_size is None:
        search_size = fit_size(preset_search, limit)
    else:
        search_size = check_odd_size(search_size, "search_size", at_most=limit, limit_name=limit_name)
    if h is None:
        h = default_h(sigma, preset, data_range)
    else:
        h = check_real(h, "h", minimum=0, strict=True)
    log.debug("NL-means parameters: patch %d (preset %d), search %d (preset %d), h %.4g", patch_size, preset_patch,
              search_size, preset_search, h)
    return Settings("pixelwise", sigma, h, patch_size, search_size, None, data_range, sigma_estimated)


def check_method_options(method, *, h=None, guide=None, patch_weights="flat", patch_sigma=None):
    """``(method, patch_sigma)`` checked: the method by :func:`nlmeans.presets.resolve_method`, the patch
    distance options, and no NL-means-only option with NL-Bayes."""
    method = resolve_method(method, h=h, guide=guide, patch_weights=patch_weights, patch_sigma=patch_sigma)
    if not isinstance(patch_weights, str) or patch_weights not in PATCH_WEIGHTS:
        raise ValueError(
            f"patch_weights={patch_weights!r} is not known; allowed: {', '.join(PATCH_WEIGHTS)}"
        )
    if patch_sigma is not None:
        patch_sigma = check_real(patch_sigma, "patch_sigma", minimum=0, strict=True)
        if patch_weights != "gaussian":
            raise ValueError(f"patch_sigma={patch_sigma!r} needs patch_weights='gaussian'")
    if method == "nlbayes":
        unused = {"guide": guide is not None, "h": h is not None, "patch_weights": patch_weights != "flat"}
        for name, given in unused.items():
            if given:
                raise ValueError(f"{name} is not used by method='nlbayes'; leave it at its default")
    return method, patch_sigma


def nlmeans_settings(settings, method, patch_weights="flat", patch_sigma=None, guide_sigma=None):
    """The NL-means methods' :class:`Settings`: ``settings`` from :func:`resolve_parameters` with the method,
    the patch distance (a Gaussian's default ``patch_sigma`` from the patch size) and the guide's σ."""
    if patch_weights == "gaussian" and patch_sigma is None:
        patch_sigma = default_patch_sigma(settings.patch_size)
    return replace(settings, method=method, guide_sigma=guide_sigma, patch_weights=patch_weights,
                   patch_sigma=patch_sigma)


def nlbayes_settings(settings, shape, n_channels, patch_size=None, search_size=None):
    """NL-Bayes's :class:`Settings` from the NL-means ones (σ and its estimate, the size checks): its own
    presets (:func:`nlmeans.presets.resolve_nlbayes`) for the (H, W) ``shape``; h is None. ``patch_size`` and
    ``search_size`` as the caller gave them (None: presets). ``search_size`` records stage 1's window and
    ``patch_size`` the larger of the two stages' patches (both in ``nlbayes``)."""
    params = resolve_nlbayes(shape, sigma_to_255(settings.sigma, settings.data_range), n_channels, patch_size,
                             search_size)
    log.debug("NL-Bayes parameters: %s", params)
    return Settings("nlbayes", settings.sigma, None, int(np.max(params["patch_size"])), params["search_size"][0],
                    None, settings.data_range, settings.sigma_estimated, nlbayes=params)
