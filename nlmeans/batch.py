"""Denoising many files: expand inputs, plan outputs, skip finished ones, run in parallel, report failures.

An output appears only complete (``io`` writes a temporary ``.nlmeans-partial-*`` file and renames it), so
"the output exists" means "this file is done": a batch run again after an interruption skips what was
finished and redoes the rest. Temporary files left by a killed run are removed when the batch starts.
One file's failure is recorded and the batch goes on; the caller gets every failure at the end.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from .io import EIGHT_BIT_SUFFIXES, PNG_SUFFIXES, TEMP_PREFIX, TIFF_SUFFIXES, one_line

#: files a folder given as input contributes
IMAGE_SUFFIXES = PNG_SUFFIXES + TIFF_SUFFIXES + EIGHT_BIT_SUFFIXES


@dataclass(frozen=True)
class Options:
    """What to do with each file; σ and h **on the 0–255 scale** (as on the command line)."""

    sigma: float | None = None
    h: float | str | None = None  # or "auto": chosen by SURE (2-D images only)
    patch: int | None = None
    search: int | None = None
    method: str = "pixelwise"
    volume: bool = False
    video: bool = False
    temporal_radius: int = 2


@dataclass
class Report:
    """The outcome of a batch: outputs written, outputs skipped (already complete), failures."""

    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (input path, one-line message)

    def summary(self):
        return f"{len(self.done)} denoised, {len(self.skipped)} skipped (already done), {len(self.failed)} failed"


def expand_inputs(items):
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


def plan(files, out_dir):
    """``[(input, output)]``: each output is ``out_dir / input.name``; two inputs with the same name are an
    error (one would overwrite the other), and so is an input inside ``out_dir`` that would be its own output."""
    out_dir = Path(out_dir)
    pairs, names = [], {}
    for src in files:
        dst = out_dir / src.name
        if dst.name in names:
            raise ValueError(f"inputs {names[dst.name]} and {src} have the same name; outputs in {out_dir} "
                             "would collide (denoise them into different --out-dir)")
        if dst.exists() and os.path.samefile(dst, src):
            raise ValueError(f"{src} is inside --out-dir {out_dir}; its output would overwrite it")
        names[dst.name] = src
        pairs.append((src, dst))
    return pairs


def remove_partials(out_dir):
    """Delete the temporary ``.nlmeans-partial-*`` files or folders a killed run left in ``out_dir``."""
    import shutil

    removed = []
    for p in Path(out_dir).glob(TEMP_PREFIX + "*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def denoise_file(src, dst, options):
    """Read ``src``, denoise it with ``options`` and write ``dst`` atomically; returns a one-line summary.

    Runs in the worker (a local process or a Dask worker): everything it needs is in its arguments.
    """
    import numpy as np

    from .io import Image, read_image, read_stack, write_image, write_stack

    def scale(v):  # "auto" (h by SURE) passes through
        return v if v is None or isinstance(v, str) else v / 255.0

    kw = dict(h=scale(options.h), patch_size=options.patch, search_size=options.search)
    if options.volume or options.video:
        from .volume import denoise_video, denoise_volume

        stack = read_stack(src)
        axis = -1 if stack.ndim == 4 else None
        if options.video:
            out = denoise_video(stack, scale(options.sigma), temporal_radius=options.temporal_radius,
                                channel_axis=axis, **kw)
        else:
            out = denoise_volume(stack, scale(options.sigma), channel_axis=axis, **kw)
        write_stack(dst, np.asarray(out))
        return f"{src} -> {dst}"
    from .denoise import run_denoise

    image = read_image(src)
    out, used = run_denoise(image.data, scale(options.sigma), method=options.method,
                            channel_axis=image.channel_axis, **kw)
    write_image(dst, Image(out, image.alpha))
    return f"{src} -> {dst} (σ {used.sigma_255:.2f}/255)"


def _init_worker(n_threads):
    import numba

    numba.set_num_threads(n_threads)


def run(pairs, options, *, overwrite=False, jobs=1, client=None, progress=True):
    """Denoise every ``(input, output)`` pair; returns a :class:`Report`.

    ``client``: a ``dask.distributed.Client`` (the files must be on a file system the workers share); else
    ``jobs`` local processes (each with ``cores // jobs`` numba threads), or this process when ``jobs == 1``.
    Existing outputs are skipped unless ``overwrite``.
    """
    from tqdm.auto import tqdm

    report = Report()
    todo = []
    for src, dst in pairs:
        if dst.exists() and not overwrite:
            report.skipped.append(dst)
        else:
            todo.append((src, dst))
    bar = tqdm(total=len(pairs), initial=len(report.skipped), desc="files", unit="file", disable=not progress)

    def record(src, dst, fn):
        try:
            fn()
            report.done.append(dst)
        except Exception as exc:  # noqa: BLE001 - one bad file does not stop the batch
            report.failed.append((src, one_line(exc)))
        bar.update()

    if client is not None:
        from dask.distributed import as_completed

        futures = {client.submit(denoise_file, src, dst, options, pure=False): (src, dst) for src, dst in todo}
        for future in as_completed(futures):
            src, dst = futures[future]
            record(src, dst, future.result)
    elif jobs > 1 and len(todo) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(threads,)) as pool:
            futures = {pool.submit(denoise_file, src, dst, options): (src, dst) for src, dst in todo}
            for future in as_completed(futures):
                src, dst = futures[future]
                record(src, dst, future.result)
    else:
        for src, dst in todo:
            record(src, dst, lambda s=src, d=dst: denoise_file(s, d, options))
    bar.close()
    return report

