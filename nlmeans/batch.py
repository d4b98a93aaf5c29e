"""Denoising many files: expand inputs, plan outputs, skip finished ones, run in parallel, report failures.

An output appears only complete (``io`` writes a temporary ``.nlmeans-partial-*`` file and renames it), so
"the output exists" means "this file is done": a batch run again after an interruption skips what was
finished and redoes the rest. Temporary files left by a killed run are removed when the batch starts.
One file's failure is recorded and the batch goes on; the caller gets every failure at the end. No output is
ever an input, and an output that appears while the batch runs is not replaced without ``overwrite``
(:func:`nlmeans.io.check_output`, :func:`nlmeans.io.atomic_output`).
"""

from __future__ import annotations

import glob
import os
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._typing import StrPath
from .io import (
    EIGHT_BIT_SUFFIXES,
    PNG_SUFFIXES,
    TIFF_SUFFIXES,
    available_memory,
    check_output,
    input_set,
    one_line,
    remove_stale_partials,
)

#: files a folder given as input contributes
IMAGE_SUFFIXES = PNG_SUFFIXES + TIFF_SUFFIXES + EIGHT_BIT_SUFFIXES


@dataclass(frozen=True)
class Options:
    """What to do with each file; σ and h **on the float image's scale** (integers scaled to [0, 1]: the
    command line's 0–255 values divided by 255), as in :func:`nlmeans.denoise`."""

    sigma: float | None = None
    h: float | str | None = None  # or "auto": chosen by SURE (2-D images only)
    patch: int | None = None
    search: int | None = None
    method: str | None = None  # None: the default rule of nlmeans.denoise (NL-Bayes unless h is given)
    volume: bool = False
    video: bool = False
    temporal_radius: int = 2
    jpeg_quality: int | None = None  # JPEG outputs (None: nlmeans.io.DEFAULT_JPEG_QUALITY)


@dataclass
class Report:
    """The outcome of a batch: outputs written, outputs skipped (already complete), failures."""

    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (input path, one-line message)

    def summary(self) -> str:
        return f"{len(self.done)} denoised, {len(self.skipped)} skipped (already done), {len(self.failed)} failed"


def expand_inputs(items: Iterable[StrPath]) -> tuple[list[Path], list[str]]:
    """Files, folders (their image files, not recursive) and glob patterns, in order, without duplicates.

    Returns ``(files, missing)``: ``missing`` lists the items that named nothing.
    """
    files, missing, seen = [], [], set()
    for item in items:
        item = str(item)
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        elif path.exists():
            found = [path]
        elif glob.has_magic(item):
            found = sorted(p for p in map(Path, glob.glob(item)) if p.is_file() and not p.name.startswith("."))
        else:
            found = []
        if not found:
            missing.append(item)
        for p in found:
            key = os.path.realpath(p)
            if key not in seen:
                seen.add(key)
                files.append(p)
    return files, missing


def plan(files: Sequence[Path], out_dir: StrPath) -> list[tuple[Path, Path]]:
    """``[(input, output)]``: each output is ``out_dir / input.name``; two inputs with the same name are an
    error (one would overwrite the other), and so is an output that is an input (any of them, in any
    spelling, a symlink or a hard link: :func:`nlmeans.io.check_output`)."""
    out_dir = Path(out_dir)
    inputs = input_set(files)
    pairs, names = [], {}
    for src in files:
        dst = out_dir / src.name
        if dst.name in names:
            raise ValueError(f"inputs {names[dst.name]} and {src} have the same name; outputs in {out_dir} "
                             "would collide (denoise them into different --out-dir)")
        if inputs.is_input(dst):
            raise ValueError(f"{dst} is an input; its output in --out-dir {out_dir} would overwrite it")
        names[dst.name] = src
        pairs.append((src, dst))
    return pairs


def remove_partials(out_dir: StrPath) -> list[Path]:
    """Delete the temporary ``.nlmeans-partial-*`` files or folders killed runs left in ``out_dir``
    (:func:`nlmeans.io.remove_stale_partials`: never those of a run still writing)."""
    return remove_stale_partials(out_dir)


#: memory of one worker process before its image: interpreter, numba and the compiled kernels (measured peak
#: of a one-file run ~290 MB, 2048² gray)
WORKER_BYTES = 300 << 20
#: working memory per image value (pixels × channels): the float32 copies a denoiser holds
BYTES_PER_VALUE = 32


def _values(path):
    """About how many values (pixels × channels) ``path`` decodes to, from its header where that is cheap
    (PNG, TIFF); else ten times its size (a compressed file)."""
    try:
        if path.suffix.lower() in PNG_SUFFIXES:
            with open(path, "rb") as fh:
                head = fh.read(26)
            channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(head[25], 4)
            return int.from_bytes(head[16:20], "big") * int.from_bytes(head[20:24], "big") * channels
        if path.suffix.lower() in TIFF_SUFFIXES:
            import math

            import tifffile

            with tifffile.TiffFile(str(path)) as tif:
                return math.prod(tif.series[0].shape)
    except Exception:  # noqa: BLE001 - an estimate; unreadable files fail later with their own message
        pass
    return 10 * path.stat().st_size if path.exists() else 0


def cap_jobs(jobs: int, files: Iterable[StrPath], *, cores: int | None = None, available: int | None = None
             ) -> tuple[int, str | None]:
    """``(jobs, note)``: ``jobs`` capped by the cores this process may use and by the available memory
    (each worker ~:data:`WORKER_BYTES` plus the working memory of the largest of ``files``); ``note`` is a
    one-line explanation when capped, else None. ``cores``/``available`` (bytes): default from the machine."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if available is None:
        available = available_memory()
    per_worker = WORKER_BYTES + BYTES_PER_VALUE * max((_values(Path(f)) for f in files), default=0)
    limit = cores if available is None else min(cores, available // per_worker)
    capped = max(1, min(jobs, limit))
    if capped == jobs:
        return jobs, None
    memory = "" if available is None else (f", {available / 2**30:.1f} GB memory available, "
                                            f"~{per_worker / 2**30:.2f} GB per worker")
    return capped, f"--jobs {jobs} capped to {capped} ({cores} cores{memory})"


def denoise_file(src: StrPath, dst: StrPath, options: Options, overwrite: bool = True) -> str:
    """Read ``src``, denoise it with ``options`` and write ``dst`` atomically (``overwrite=False``: an output
    that appeared meanwhile is not replaced, an error); returns a one-line summary.

    Runs in the worker (a local process or a Dask worker): everything it needs is in its arguments.
    """
    import numpy as np

    from .io import Image, read_image, read_metadata, read_stack, write_image, write_stack

    kw = dict(h=options.h, patch_size=options.patch, search_size=options.search)
    if options.volume or options.video:
        from .volume import denoise_video, denoise_volume

        stack = read_stack(src, kind="video" if options.video else "volume")
        axis = -1 if stack.ndim == 4 else None
        if options.video:
            out = denoise_video(stack, options.sigma, temporal_radius=options.temporal_radius,
                                method=options.method, channel_axis=axis, **kw)
        else:
            out = denoise_volume(stack, options.sigma, method=options.method, channel_axis=axis, **kw)
        write_stack(dst, np.asarray(out), overwrite=overwrite, metadata=read_metadata(src))
        return f"{src} -> {dst}"
    from ._denoise import denoise

    image = read_image(src)
    out, used = denoise(image.data, options.sigma, method=options.method, channel_axis=image.channel_axis,
                        return_settings=True, **kw)
    write_image(dst, Image(out, image.alpha, image.meta), overwrite=overwrite, jpeg_quality=options.jpeg_quality)
    return f"{src} -> {dst} ({used.method}, σ {used.sigma_255:.2f}/255)"


def _init_worker(n_threads):
    import numba

    numba.set_num_threads(n_threads)
    # The parent stops its workers (_stop_workers): Ctrl-C (sent to the whole process group) is left to it, and
    # SIGTERM raises SystemExit, which removes a temporary being written and ends an idle worker silently.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_exit)


def _worker_exit(signum, frame):
    raise SystemExit(128 + signum)


def _stop_workers(pool):
    """Interrupted (Ctrl-C, SIGTERM): drop the queued files and stop the running workers with SIGTERM, which
    they turn into an interruption that removes their temporaries; wait for them, so that none is left."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public API before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=30)
        if p.is_alive():  # still inside a long kernel call: its temporary is removed by the next run
            p.kill()


def run(pairs: Sequence[tuple[Path, Path]], options: Options, *, overwrite: bool = False, jobs: int = 1,
        client: Any = None, progress: bool = True) -> Report:
    """Denoise every ``(input, output)`` pair; returns a :class:`Report`.

    ``client``: a ``dask.distributed.Client`` (the files must be on a file system the workers share); else
    ``jobs`` local processes (each with ``cores // jobs`` numba threads), or this process when ``jobs == 1``.
    Existing outputs are skipped unless ``overwrite``.
    """
    from tqdm.auto import tqdm

    report = Report()
    todo = []
    inputs = input_set([src for src, _ in pairs])
    for src, dst in pairs:
        if dst.exists() and not overwrite:
            report.skipped.append(dst)
        else:
            try:
                check_output(dst, inputs=inputs, overwrite=True)  # never an input, whatever the caller planned
            except OSError as exc:
                report.failed.append((src, one_line(exc)))
                continue
            todo.append((src, dst))
    # disable=None: tqdm draws only on a terminal, never into logs
    bar = tqdm(total=len(pairs), initial=len(report.skipped), desc="files", unit="file",
               disable=None if progress else True)

    def record(src, dst, fn):
        try:
            fn()
            report.done.append(dst)
        except Exception as exc:  # noqa: BLE001 - one bad file does not stop the batch
            report.failed.append((src, one_line(exc)))
        bar.update()

    try:
        if client is not None:
            from dask.distributed import as_completed

            futures = {client.submit(denoise_file, src, dst, options, overwrite, pure=False): (src, dst)
                       for src, dst in todo}
            for future in as_completed(futures):
                src, dst = futures[future]
                record(src, dst, future.result)
        elif jobs > 1 and len(todo) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            threads = max(1, (os.cpu_count() or 1) // jobs)
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_init_worker, initargs=(threads,)) as pool:
                futures = {pool.submit(denoise_file, src, dst, options, overwrite): (src, dst)
                           for src, dst in todo}
                try:
                    for future in as_completed(futures):
                        src, dst = futures[future]
                        record(src, dst, future.result)
                except BaseException:
                    _stop_workers(pool)
                    raise
        else:
            for src, dst in todo:
                record(src, dst, lambda s=src, d=dst: denoise_file(s, d, options, overwrite))
    finally:
        bar.close()  # before the caller's last line (an error, "Aborted!")
    return report

