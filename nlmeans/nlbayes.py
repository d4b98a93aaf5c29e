"""NL-Bayes: the non-local Bayesian denoiser of Lebrun, Buades & Morel (2013), two stages, numba kernels."""

from __future__ import annotations

import functools
import heapq
import math
import threading
import time

import numpy as np

from . import _config
from ._compile import band_kernel
from ._progress import report
from ._threads import _aligned, _n_threads
from .kernels.nlbayes import _nlb_models_work, _nlbayes3_pass

# Orthonormal colour transform (Y, U, V rows): white noise of std σ stays white with std σ in every channel.
_YUV = np.array(
    [
        [1 / np.sqrt(3), 1 / np.sqrt(3), 1 / np.sqrt(3)],
        [1 / np.sqrt(2), 0.0, -1 / np.sqrt(2)],
        [1 / np.sqrt(6), -2 / np.sqrt(6), 1 / np.sqrt(6)],
    ]
)


def _pair(value):
    """(stage 1, stage 2) from one value or a pair."""
    return (value, value) if np.ndim(value) == 0 else tuple(value)


_thread = threading.local()


@functools.lru_cache(maxsize=8)
def _candidates(r):
    """The offsets ``(dy, dx)`` of a ``(2r + 1)²`` window's candidates in scan order, the reference left out
    (int64, read only: shared by the bands)."""
    w = 2 * r + 1
    dy, dx = np.divmod(np.arange(w * w, dtype=np.int64), w)
    keep = np.arange(w * w) != w * w // 2
    out = (dy[keep] - r, dx[keep] - r)
    for a in out:
        a.flags.writeable = False
    return out


def _grid_count(lo, hi, step, last):
    """How many of ``lo, ..., hi - 1`` are multiples of ``step`` or ``last``: the reference grid's rows (or
    columns) there."""
    count = len(range(-(-lo // step) * step, hi, step))
    return count + (1 if lo <= last < hi and last % step else 0)


def _scratch(name, n, shape, dtype):
    """``(n, *shape)`` work array ``name`` of this thread, not initialised: the first ``n`` of one kept from
    band to band (grown when too short; fresh arrays of a band's size fault their pages in on every band).
    The band threads of :func:`_run_stages` end with the call, and their arrays with them."""
    a = getattr(_thread, name, None)
    if a is None or a.shape[1:] != shape or a.shape[0] < n or a.dtype != dtype:
        a = _aligned((n, *shape), dtype, zeros=False)
        setattr(_thread, name, a)
    return a[:n]


def _nlb_band(noisy, basic, stage, b0, b1, f, r, n_sim, step, sigma2, beta, gamma):
    """One row band of an NL-Bayes stage on padded ``(C, H + 2 pad, W + 2 pad)`` arrays, ``pad = r + f``.

    ``stage`` 1: groups and model from ``noisy`` (``basic`` unused, pass ``noisy``); 2: groups, covariance and
    homogeneity test from ``basic``, the mean from the noisy patches, applied to the noisy patches. Processes
    the reference patches whose centre row lies in ``[b0, b1)`` with the band's own "already processed" mask;
    returns the band's sums ``(num, den)``, ``num[c, y - b0 + pad, x + pad]`` (rows reach ``pad`` beyond the
    band). ``sigma2``: the noise variance, or a σ map: the padded ``(H + 2 pad, W + 2 pad)`` patch mean of σ²
    at each patch centre (see :func:`nlbayes_chw`).

    The band's pieces, each a numba function compiled and cached on its own (:func:`nlmeans._compile.band_kernel`;
    all ``nogil``): the patch sums of the homogeneity test (:func:`nlmeans.kernels.nlbayes._nlb_patch_sums`),
    the band's groups (:func:`nlmeans.kernels.nlbayes._nlb_groups5`, ``7`` or any size), their estimates
    (:func:`nlmeans.kernels.nlbayes._nlb_models`), the pixel counts. The groups' work arrays are made here
    (made in the kernel they cost numba's compilation of ``np.zeros``/``np.empty``; the estimates' stay in
    :func:`~nlmeans.kernels.nlbayes._nlb_models`, whose loops run faster on arrays it made), the large ones
    kept for the thread's next band (:func:`_scratch`): the patch sums are only read where they were
    written (every member patch lies inside the padded image) and the groups only up to their number.
    """
    dtype = noisy.dtype
    # the compiled pieces are called through their entry points, without numba's dispatch (which would check
    # the types): contiguous arrays, scalars and a σ map of the data's dtype, exactly their signatures
    noisy, basic = np.ascontiguousarray(noisy), np.ascontiguousarray(basic, dtype=dtype)
    sigma2 = np.ascontiguousarray(sigma2, dtype=dtype) if np.ndim(sigma2) else dtype.type(sigma2)
    beta, gamma = dtype.type(beta), dtype.type(gamma)
    pad = r + f
    P = 2 * f + 1
    C, Hp, Wp = noisy.shape
    H, W = Hp - 2 * pad, Wp - 2 * pad
    rows = b1 - b0 + 2 * pad
    groups, models, sums = band_kernel(dtype, np.ndim(sigma2) > 0, P)
    search = noisy if stage == 1 else basic  # groups are found on channel 0 of this image
    # patch sums (float64) for the homogeneity test, indexed by the patch's first pixel as den: s1, s2 of the
    # model patches (stage 1 noisy, stage 2 basic), m1 of the noisy ones (the flat value)
    s1, s2 = _scratch("s1", C, (rows, Wp), np.float64), _scratch("s2", C, (rows, Wp), np.float64)
    m1 = _scratch("m1", C, (rows, Wp), np.float64) if stage == 2 else s1
    if gamma > 0:
        if stage == 2:
            scratch = _aligned((rows, Wp), np.float64, zeros=False)
            for c in range(C):
                sums(noisy, c, b0, P, m1[c], scratch)
        for c in range(C):
            sums(search, c, b0, P, s1[c], s2[c])
    # the grid's references in the band (every step-th row and column and the last ones): room for each group
    n_refs = _grid_count(b0, b1, step, H - 1) * _grid_count(0, W, step, W - 1)
    refs = _scratch("refs", n_refs, (3,), np.int64)
    goy = _scratch("goy", n_refs, (n_sim,), np.int32)
    gox = _scratch("gox", n_refs, (n_sim,), np.int32)
    # one count per patch at its first pixel, offset by P - 1 rows and columns of zeros: the patch sums of
    # these counts are then the number of patches covering each pixel (one add per patch instead of P²; exact
    # integers, the same values as adding 1 per pixel)
    counts = _aligned((1, rows + P - 1, Wp + P - 1), dtype)
    w = 2 * r + 1
    n_cand = w * w - 1
    K = groups(search, sigma2, stage, b0, b1, f, r, n_sim, step, np.zeros((b1 - b0, W), dtype=np.bool_), counts,
               _scratch("dist", n_cand + 16, (), dtype),  # spare values for whole-vector rows (window distances)
               _scratch("work", n_cand, (), dtype), _scratch("idx", n_cand, (), np.int64), *_candidates(r),
               _scratch("drow", (w + 15) // 16 * 16, (), dtype), refs, goy, gox)
    num = _aligned((C, rows, Wp), dtype)
    models(noisy, basic, stage, b0, f, r, n_sim, sigma2, beta, gamma, K, refs, goy, gox, s1, s2, m1, num,
           _aligned(_nlb_models_work(f, n_sim), dtype))
    den = _aligned((rows, Wp), np.float64, zeros=False)
    sums(counts, 0, 0, P, den, s2[0])
    return num, den


def _nlbayes_pass(noisy, basic, stage, f, r, n_sim, step, sigma2, beta, gamma, band_rows, out, what="NL-Bayes"):
    """One NL-Bayes stage on padded ``(C, H + 2 pad, W + 2 pad)`` arrays, ``pad = r + f``, into ``out``
    ``(C, H, W)`` (estimates falling in the padding are dropped); returns ``out``. ``stage``, ``basic`` as in
    :func:`_nlb_band`; the bands run as in :func:`_run_stages`."""
    spec = dict(noisy=noisy, basic=basic, stage=stage, f=f, r=r, n_sim=n_sim, step=step, sigma2=sigma2, beta=beta,
                gamma=gamma, what=what)
    out[...] = _run_stages([spec], out.shape, band_rows)
    return out


class _Stage:
    """The state of one stage in :func:`_run_stages`: its inputs, the image-wide sums, which rows are final."""

    def __init__(self, spec, shape, dtype, band_rows):
        self.__dict__.update(spec)
        C, H, W = shape
        self.pad = pad = self.r + self.f
        self.B = B = max(band_rows, 2 * pad, 1)
        self.starts = list(range(0, H, B))
        self.cost = [0.0] * len(self.starts)  # each band's thread CPU time, once done
        self.gnum = np.zeros((C, H, W), dtype=dtype)
        self.gden = np.zeros((H, W), dtype=dtype)
        self.out = np.empty((C, H, W), dtype=dtype)
        # how many bands still have to add their sums to each row: at 0 the row is final
        self.cover = np.zeros(H, dtype=np.int64)
        for b0 in self.starts:
            self.cover[max(b0 - pad, 0):min(b0 + B + pad, H)] += 1
        self.reported = 0
        self.feeds = None


def _run_stages(specs, shape, band_rows):
    """NL-Bayes stages (``specs``: dicts of :func:`_nlb_band`'s arguments: ``noisy``
    padded by this stage's ``pad = r + f``, ``basic`` padded likewise, or None for the previous stage's result;
    ``stage``, ``f``, ``r``, ``n_sim``, ``step``, ``sigma2``, ``beta``, ``gamma``; ``what`` for the progress
    reports) on ``shape`` ``(C, H, W)``; returns the last stage's ``(C, H, W)`` result.

    Each stage runs in bands of ``max(band_rows, 2 pad)`` reference rows aligned to row 0, on threads (the
    kernel releases the GIL), each band adding its sums into the image-wide ones under a lock. A band reaches
    ``pad`` rows beyond itself and is at least ``2 pad`` rows high, so every pixel gets at most two bands' sums,
    and ``(0 + a) + b`` is ``(0 + b) + a`` exactly: the result does not depend on the number of threads nor on
    the order. A row is divided by its count as soon as its last band is in, and a band of the next stage
    starts as soon as every row of the earlier result it reads (padding included) is final: no barrier and no
    serial step between the stages. A free thread takes a band of the earliest stage first (stage 1 in row
    order), then of the later stage the one whose stage-1 band at the same rows took longest: the long bands
    start early and the short ones fill the end, so neither core waits long for the other at the end.
    Python threads instead of a numba ``prange``: no parallel-loop compilation (it took longer than the band
    itself). The bands done are reported to a listener (:func:`nlmeans._progress.report`, each stage's
    ``what``) from the calling thread.
    """
    C, H, W = shape
    dtype = specs[0]["noisy"].dtype
    stages = [_Stage(spec, shape, dtype, band_rows) for spec in specs]
    for prev, st in zip(stages, stages[1:], strict=False):
        if st.basic is None:  # filled row by row from prev's result: np.pad's reflection, as an index map
            st.basic = np.empty(st.noisy.shape, dtype=dtype)
            st.src_rows = np.pad(np.arange(H), st.pad, mode="reflect")
            st.src_cols = np.pad(np.arange(W), st.pad, mode="reflect")
            st.filled = np.zeros(H + 2 * st.pad, dtype=np.bool_)
            st.final = np.zeros(H, dtype=np.bool_)
            st.waiting = list(st.starts)
            prev.feeds = st
    cond = threading.Condition()
    ready = [(0, 0.0, b0) for b0 in stages[0].starts]  # a heap of (stage index, -cost estimate, b0)
    heapq.heapify(ready)

    def band(k, b0):
        st = stages[k]
        pad = st.pad
        b1 = min(b0 + st.B, H)
        t0 = time.thread_time()
        num, den = _nlb_band(st.noisy, st.basic, st.stage, b0, b1, st.f, st.r, st.n_sim, st.step, st.sigma2,
                             st.beta, st.gamma)
        st.cost[b0 // st.B] = time.thread_time() - t0
        y0, y1 = max(b0 - pad, 0), min(b1 + pad, H)
        # silent overflow, as the kernel's own sums (numpy's error state is per thread, and the callers check
        # the result: nlbayes_checked)
        with cond, np.errstate(over="ignore", invalid="ignore"):
            st.gnum[:, y0:y1] += num[:, y0 - b0 + pad:y1 - b0 + pad, pad:pad + W]
            st.gden[y0:y1] += den[y0 - b0 + pad:y1 - b0 + pad, pad:pad + W]
            st.cover[y0:y1] -= 1
            rows = y0 + np.flatnonzero(st.cover[y0:y1] == 0)
            if rows.size:
                st.out[:, rows] = st.gnum[:, rows] / st.gden[rows]
                if st.feeds is not None:
                    for nb0 in _feed(st.feeds, st.out, rows):
                        estimate = st.cost[min(nb0 // st.B, len(st.starts) - 1)]
                        heapq.heappush(ready, (k + 1, -estimate, nb0))
                        cond.notify()

    n_bands = sum(len(st.starts) for st in stages)
    workers = min(_n_threads(), n_bands)
    if workers <= 1:
        while ready:
            k, _, b0 = heapq.heappop(ready)
            band(k, b0)
            _reported(stages[k])
        return stages[-1].out
    done, errors, stop = [], [], []

    def worker():
        while True:
            with cond:
                while not ready and not stop:
                    cond.wait()
                if stop:
                    return
                k, _, b0 = heapq.heappop(ready)
            try:
                band(k, b0)
            except BaseException as exc:  # handed to the calling thread, which raises it
                with cond:
                    errors.append(exc)
                    cond.notify_all()
                return
            with cond:
                done.append(k)
                cond.notify_all()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    try:
        heard = 0
        while heard < n_bands:
            with cond:
                while len(done) == heard and not errors:
                    cond.wait()
                if errors:
                    raise errors[0]
                new = done[heard:]
            for k in new:
                _reported(stages[k])
            heard += len(new)
    finally:
        with cond:
            stop.append(True)
            cond.notify_all()
        for t in threads:
            t.join()
    return stages[-1].out


def _feed(st, prev_out, rows):
    """The rows ``rows`` of the previous stage's result ``prev_out`` are final: copy them into stage ``st``'s
    padded ``basic`` (every padded row they are the source of); returns the bands of ``st`` (their first rows)
    that can start now: all the rows they read (with the patch sums' ``2 f`` beyond) are there."""
    st.final[rows] = True
    p = np.flatnonzero(~st.filled & st.final[st.src_rows])
    st.basic[:, p] = prev_out[:, st.src_rows[p]][:, :, st.src_cols]
    st.filled[p] = True
    hi = st.filled.shape[0]
    start = [b0 for b0 in st.waiting if st.filled[b0:min(b0 + st.B + 2 * st.pad + 2 * st.f, hi)].all()]
    st.waiting = [b0 for b0 in st.waiting if b0 not in start]
    return start


def _reported(st):
    """One more band of stage ``st`` is done: tell the listener."""
    st.reported += 1
    report(st.reported, len(st.starts), st.what)


def nlbayes_chw(value, sigma, *, patch_size, search_size, n_similar, beta, gamma, step, stages=2):
    """NL-Bayes on a channel-first float array ``(C, H, W)`` (no validation); σ on the array's scale.

    ``patch_size``, ``search_size`` and ``step``: one value for both stages or a pair (stage 1, stage 2);
    ``n_similar``, ``beta`` and ``gamma`` are pairs (stage 1, stage 2).

    Stage 1: for every reference patch (centres on a grid of ``min(step, patch_size)`` pixels, the last
    row and column included, skipping centres already estimated as members of an earlier group of the same
    row band), the reference and its ``n_similar[0] - 1`` nearest patches in the search window (squared
    distance on the first channel) form a group; with its empirical mean μ and covariance C every patch P
    of the group is estimated as μ + (C − β₁σ²I) C⁻¹ (P − μ), or as the group's mean pixel value when the
    group's variance is at most γ₁σ² (a homogeneous area). Stage 2: groups of ``n_similar[1]`` found on the
    basic (stage-1) image; the covariance C̃ of the basic patches gives μ + C̃ (C̃ + β₂σ²I)⁻¹ (P − μ) for
    the noisy patches, μ their mean (homogeneous if the basic group's variance is at most γ₂σ²). Each
    stage averages all the estimates of a pixel with equal weights.

    Three channels are turned into an orthonormal (Y, U, V) first (the noise stays white with std σ) and
    back at the end; groups are found on Y; every channel gets its own Gaussian model. Boundary: numpy
    ``reflect`` padding. Returns a new ``(C, H, W)`` array of the input's dtype.

    ``sigma`` may be an ``(H, W)`` map of σ per pixel, the same for every channel (the orthonormal transform
    keeps a pixel's noise std σ_p in Y, U and V). With σ̄² the mean of σ² over a patch: stage 1's squared
    distance to a candidate q loses ``P² σ̄_q²`` (its noise's expected share; the reference's is the same for
    every candidate), so groups gather patches alike in signal, and each group uses the mean σ̄² of its
    patches where σ² enters (homogeneity test, β σ², the Wiener step), in both stages. A constant map gives
    the scalar result bit for bit.

    References
    ----------
    .. [1] M. Lebrun, A. Buades and J.-M. Morel, "A nonlocal Bayesian image denoising algorithm", SIAM J.
       Imaging Sciences 6(3), 2013.
    .. [2] M. Lebrun, A. Buades and J.-M. Morel, "Implementation of the Non-Local Bayes (NL-Bayes) image
       denoising algorithm", Image Processing On Line 3, 2013.
    """
    dtype = value.dtype.type
    if not np.any(sigma):  # both stages are then the identity (X - 0 · ...); skip the singular covariances
        return np.array(value, dtype=dtype, copy=True)
    C = value.shape[0]
    yuv = C == 3
    v = np.einsum("ij,jhw->ihw", _YUV.astype(dtype), value) if yuv else value
    v = np.ascontiguousarray(v, dtype=dtype)
    patches, sizes, steps = (_pair(x) for x in (patch_size, search_size, step))
    s2 = dtype(sigma * sigma) if np.ndim(sigma) == 0 else None
    if s2 is None:
        from .nlm import patch_mean
    specs = []
    for stage in range(1, stages + 1):
        f = int(patches[stage - 1]) // 2
        # a grid no wider than a patch: every pixel lies in a reference patch
        step = min(int(steps[stage - 1]), 2 * f + 1)
        r = sizes[stage - 1] // 2
        widths = ((0, 0), (r + f, r + f), (r + f, r + f))
        if np.ndim(sigma):  # the patch mean of σ² at every padded patch centre (the kernel's sigma2 map)
            s2 = patch_mean(np.pad(np.square(sigma), r + f, mode="reflect"), 2 * f + 1).astype(dtype)
        same = specs and specs[-1]["r"] + specs[-1]["f"] == r + f
        vp = specs[-1]["noisy"] if same else np.pad(v, widths, mode="reflect")
        specs.append(dict(noisy=vp, basic=vp if stage == 1 else None, stage=stage, f=f, r=r,
                          n_sim=int(n_similar[stage - 1]), step=int(step), sigma2=s2, beta=dtype(beta[stage - 1]),
                          gamma=dtype(gamma[stage - 1]), what=f"NL-Bayes stage {stage}/{stages}"))
    out = _run_stages(specs, v.shape, _config.BAND_ROWS)
    if yuv:
        out = np.einsum("ji,jhw->ihw", _YUV.astype(dtype), out)
    return np.ascontiguousarray(out, dtype=dtype)


#: σ outside [2^-24, 2^24] is brought inside by a power of two (see :func:`nlbayes_checked`)
SIGMA_SAFE_EXPONENT = 24


def nlbayes_checked(value, sigma, params, run=None, level=None):
    """``run(value, sigma, **params)`` (default :func:`nlbayes_chw` with ``params`` from
    :func:`nlmeans.presets.resolve_nlbayes`; or :func:`nlbayes_3d_chw`) on data of any scale, refusing a
    result that overflowed. ``level``: the σ that picks the scale below (default the largest of ``sigma``;
    slabs of a σ map pass the whole map's).

    NL-Bayes is scale-equivariant, but float32 is not: σ² underflows for tiny data (1e-30: σ² = 0, no
    denoising) and covariances overflow for huge data. So a σ outside [2^-24, 2^24] is first scaled into that
    range by a power of two, which is exact, and the result scaled back; the scale depends on σ alone, so
    strips reproduce it, and data in the usual ranges is untouched. When that scaling would take the data past
    the float range (σ tiny next to the data, not the data tiny), the plain run is used.
    """
    run = nlbayes_chw if run is None else run
    scale = 1.0
    level = float(np.max(sigma)) if level is None else float(level)  # a σ map: scaled by its largest σ
    if level > 0:
        exponent = math.frexp(level)[1]
        if abs(exponent) > SIGMA_SAFE_EXPONENT:
            # the factor itself must be a normal number of the data's dtype (float32: 2^±126)
            limit = 100 if value.dtype == np.float32 else 1000
            scale = math.ldexp(1.0, max(-limit, min(limit, exponent)))
    if scale != 1.0 and value.size:
        # a σ far below the data (1e-300 on [0, 1]) would scale the data past the float range: the data are
        # not tiny then, only σ, and the plain run is the right one. (This looks at the values, so strips
        # could decide differently from the whole image only when σ is below ~1e-16 of their values.)
        safe = math.sqrt(float(np.finfo(value.dtype).max)) * 1e-6
        if float(np.abs(value).max()) / scale > safe:
            scale = 1.0
    with np.errstate(all="ignore"):  # overflow is caught just below
        if scale == 1.0:
            out = run(value, sigma, **params)
        else:
            dtype = value.dtype.type
            out = run(value / dtype(scale), sigma / scale, **params) * dtype(scale)
    if not np.isfinite(out).all():
        raise ValueError(
            f"NL-Bayes overflowed on this image (values up to {float(np.abs(value).max()):.3g} in "
            f"{value.dtype}); pass float64 input, rescale it, or use method='pixelwise'"
        )
    return out


def stage_bands(params, band_rows=_config.BAND_ROWS):
    """``[(B, pad, step), ...]`` per stage as :func:`nlbayes_chw` runs them: rows per band of the kernel
    (bands aligned to row 0, the "already processed" mask restarted in each), the rows a band reads beyond
    its own (``pad = r + f``) and the reference grid step. :mod:`nlmeans.tiles` derives strip halos from it."""
    patches, sizes, steps = _pair(params["patch_size"]), _pair(params["search_size"]), _pair(params["step"])
    out = []
    for patch, size, step in zip(patches, sizes, steps, strict=True):
        f, r = int(patch) // 2, int(size) // 2
        out.append((max(band_rows, 2 * (r + f), 1), r + f, min(int(step), 2 * f + 1)))
    return out


def nlbayes_3d_chw(value, sigma, *, patch_size, patch_z, search_size, search_z, n_similar, beta, gamma, step,
                   step_z, video, band_slices=8, stages=2):
    """NL-Bayes on a channel-first float stack ``(C, Z, H, W)``: a volume, or a video (Z = time); σ on the
    array's scale (no validation).

    Patches are ``patch_z × patch_size × patch_size`` (slices × rows × columns), the search window
    ``search_z × search_size × search_size``; every size and ``step``, ``step_z`` (the reference grid along
    the rows/columns and along the slices) may be a pair (stage 1, stage 2); ``n_similar``, ``beta`` and
    ``gamma`` are pairs. The two stages are those of :func:`nlbayes_chw` with 3-D patches. ``video=False``:
    ``reflect`` padding on all three axes (candidates may be centred in the padding, as in 2-D); ``video=True``:
    the search window is cut at the first and last frame (candidates are centred in existing frames), patches
    still reach ``reflect``-padded frames beyond them. Reference slices are cut into bands of ``band_slices``
    (at least twice the slice reach ``search_z // 2 + patch_z // 2``) aligned to slice 0, the "already
    processed" mask restarting at each band. Returns a new ``(C, Z, H, W)`` array of the input's dtype.

    ``sigma`` may be a ``(Z, H, W)`` map of σ per voxel, the same for every channel: the σ map of
    :func:`nlbayes_chw` with 3-D patches, σ̄² the mean of σ² over a ``patch_z × patch_size × patch_size``
    patch (stage 1's distance to a candidate q loses ``D σ̄_q²``, D the patch's voxel count, less the
    reference's; each group uses its patches' mean σ̄²). A constant map gives the scalar result bit for bit;
    an all-zero map runs the kernel (as a slab of a larger map must).

    References
    ----------
    .. [1] P. Arias and J.-M. Morel, "Video denoising via empirical Bayesian estimation of space-time
       patches", J. Math. Imaging and Vision 60(1), 2018.
    """
    dtype = value.dtype.type
    if np.ndim(sigma) == 0 and sigma == 0:
        return np.array(value, dtype=dtype, copy=True)
    yuv = value.shape[0] == 3
    v = np.einsum("ij,j...->i...", _YUV.astype(dtype), value) if yuv else value
    v = np.ascontiguousarray(v, dtype=dtype)
    patches, patches_z, sizes, sizes_z, steps, steps_z = (
        _pair(x) for x in (patch_size, patch_z, search_size, search_z, step, step_z))
    s2 = dtype(sigma * sigma) if np.ndim(sigma) == 0 else None
    if s2 is None:
        from .nlm import patch_mean
    out = v
    basic = None
    for k in range(stages):
        f, fz = int(patches[k]) // 2, int(patches_z[k]) // 2
        r, rz = int(sizes[k]) // 2, int(sizes_z[k]) // 2
        # grids no wider than a patch: every voxel lies in a reference patch
        st, st_z = min(int(steps[k]), 2 * f + 1), min(int(steps_z[k]), 2 * fz + 1)
        zpad = fz if video else rz + fz
        widths = ((0, 0), (zpad, zpad), (r + f, r + f), (r + f, r + f))
        if np.ndim(sigma):  # the patch mean of σ² at every padded patch centre (the kernel's sigma2 map)
            s2 = patch_mean(np.pad(np.square(sigma, dtype=np.float64), widths[1:], mode="reflect"),
                            (2 * fz + 1, 2 * f + 1, 2 * f + 1)).astype(dtype)
        vp = np.pad(v, widths, mode="reflect")
        bp = vp if basic is None else np.pad(basic, widths, mode="reflect")
        out = np.empty(v.shape, dtype=dtype)
        _nlbayes3_pass(vp, bp, k + 1, zpad, fz, f, rz, r, bool(video), int(n_similar[k]), st, st_z, s2,
                       dtype(beta[k]), dtype(gamma[k]), int(band_slices), out)
        basic = out
    if yuv:
        out = np.einsum("ji,j...->i...", _YUV.astype(dtype), out)
    return np.ascontiguousarray(out, dtype=dtype)
