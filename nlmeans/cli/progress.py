"""What the command line says while it works: progress on a terminal only, nothing with ``--quiet``.

- :func:`say`: a summary line or a note (suppressed by ``--quiet``; errors never go through it).
- :func:`show_progress`: whether bars and tickers may draw: stderr is a terminal and not ``--quiet``. Logs and
  pipes get no progress text (tqdm bars are also disabled off a terminal by the library, ``disable=None``).
- :func:`ticker`: a one-line elapsed-time display on stderr for a single long call (in-memory images,
  volumes, video, ``--h auto``), redrawn twice a second from a thread (the numba kernels release the GIL),
  with the fraction done when the library reports it (NL-Bayes: its row bands, per stage; volumes in
  slabs); it appears only after ``delay`` seconds, so quick jobs print nothing, and erases itself at the end.
- :func:`warm_up`: runs the same call on a small crop first, so the first run's numba compilation is
  announced ("compiling kernels, first run only …", :func:`compiling`, shown as soon as numba starts to
  compile and only then: never on a run that loads its kernels from the cache) and not counted in the time
  the summary reports. ``nlmeans eval`` shows the same line around its own warm-up of every method.
- :func:`pause_gc` / :func:`resume_gc`: Python's cyclic garbage collector is off while a command starts (the
  library's imports and the kernels' loading), as the start-up makes only long-lived objects.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
import time

import click

from .._progress import listening

#: side of the crop :func:`warm_up` denoises: big enough for every default patch and search size to fit
WARM_UP_SIDE = 48


def quiet():
    """Whether ``--quiet`` was given (before or after the subcommand)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and (ctx.find_root().obj or {}).get("quiet"))


def say(message, *, err=False):
    """``click.echo`` unless ``--quiet``: summary lines and notes, never errors."""
    if not quiet():
        click.echo(message, err=err)


def show_progress():
    """Progress may be drawn: stderr is a terminal and ``--quiet`` is not given."""
    stream = sys.stderr
    return not quiet() and hasattr(stream, "isatty") and stream.isatty()


@contextlib.contextmanager
def ticker(label, *, delay=1.0, trigger=None):
    """``label … N s`` on stderr, updated every 0.5 s after ``delay`` seconds (or from when the
    ``threading.Event`` ``trigger`` is set, if given), while the block runs (on a terminal only; nothing
    otherwise), with ``(step: P %)`` while the library reports fractions done (:mod:`nlmeans._progress`).
    The line is erased when the block ends."""
    if not show_progress():
        yield
        return
    stream = sys.stderr
    stop = threading.Event()
    start = time.perf_counter()
    drawn = []
    done = {}

    def listen(part, total, what):
        done["text"] = f" ({what}: {100 * part // max(total, 1)} %)"

    def wait():
        """True once the line is due, False if the block ended first."""
        if trigger is None:
            return not stop.wait(delay)
        while not trigger.wait(0.05):
            if stop.is_set():
                return False
        return not stop.is_set()

    def draw():
        if not wait():
            return
        while not stop.is_set():
            stream.write(f"\r{label} … {time.perf_counter() - start:.0f} s{done.get('text', '')}\x1b[K")
            stream.flush()
            drawn.append(True)
            stop.wait(0.5)

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        with listening(listen):
            yield
    finally:
        stop.set()
        thread.join()
        if drawn:
            stream.write("\r\x1b[K")
            stream.flush()


def corner(arr):
    """A small contiguous corner of an image ``arr`` (rows and columns first, channels last), or None."""
    if arr is None:
        return None
    return arr[:WARM_UP_SIDE, :WARM_UP_SIDE].copy()


@contextlib.contextmanager
def compiling():
    """The ticker of a warm-up: "compiling kernels, first run only (~N s; …)" on a terminal from the moment
    numba starts compiling a kernel in the block (numba's ``numba:compile`` event: a cache miss; N the first
    demo's compile time as measured, :data:`nlmeans._compile.FIRST_RUN_SECONDS`). A run that loads
    every kernel from numba's cache says nothing, however long the loading takes on a busy machine. Yields
    the ``threading.Event`` that is set once numba compiles."""
    from numba.core import event

    from .._compile import FIRST_RUN_SECONDS

    started = threading.Event()

    class _Compiles(event.Listener):
        def on_start(self, ev):
            started.set()

        def on_end(self, ev):
            pass

    label = f"compiling kernels, first run only (~{FIRST_RUN_SECONDS} s; later runs load them from the cache)"
    with event.install_listener("numba:compile", _Compiles()), ticker(label, trigger=started):
        yield started


_gc_paused = []


def pause_gc():
    """Turn Python's cyclic garbage collector off for a command's start-up (until :func:`resume_gc`).

    Importing numba and loading its kernels makes about a million objects, nearly all kept to the end; the
    collector walked them over and over (0.15 s of a 1.3 s cached ``nlmeans denoise``, measured with
    ``gc.callbacks``) without finding garbage worth it. A no-op if the collector is already off."""
    if gc.isenabled():
        gc.disable()
        _gc_paused.append(True)


def resume_gc():
    """End the start-up window of :func:`pause_gc`: what exists now is frozen (left out of every later
    collection, so the long work after it does not walk numba's objects either) and the collector is on
    again. A first run's compiler garbage is frozen with the rest: collecting it took 0.5 s (283 k objects)
    and lowered no peak memory. Idempotent; only undoes its own pause."""
    if _gc_paused:
        _gc_paused.clear()
        gc.freeze()
        gc.enable()


def skip_numba_extensions():
    """Tell numba its extensions are initialised, so that loading the first kernel does not look for them.

    Before its first compilation or cache load numba runs the ``numba_extensions`` entry points of every
    installed package, found by reading the metadata of all of them: a cost that grows with the environment
    (docs/benchmarks.md, "Start-up, second round"). nlmeans's kernels take numpy arrays and numbers only and
    use no extension, and the commands that call this (denoise and demo) compile or load nothing else. The
    library (``import nlmeans``) leaves numba's behaviour alone. A no-op once numba has initialised them, or
    if numba is not imported or has no such flag."""
    entrypoints = sys.modules.get("numba.core.entrypoints")
    if entrypoints is not None and getattr(entrypoints, "_already_initialized", True) is False:
        entrypoints._already_initialized = True


def warm_up(call, *arrays, crop=corner):
    """Run ``call(*crops)`` on small pieces of ``arrays`` (``crop``; same dtype and channels, so numba
    compiles the same kernels) before the timed call, under :func:`compiling`, with numba's extension
    scan skipped (:func:`skip_numba_extensions`). Best effort: a ValueError/TypeError here is ignored, the
    real call reports it."""
    skip_numba_extensions()
    logger = logging.getLogger("nlmeans")
    level = logger.level
    logger.setLevel(logging.WARNING)  # --verbose shows the real call's choices, not the crop's
    try:
        with compiling():
            call(*(crop(a) for a in arrays))
    except (ValueError, TypeError):  # e.g. sizes too large for the crop: the real call says what is wrong
        pass  # anything else (numba's SystemError for Ctrl-C in a kernel, MemoryError) goes on up
    finally:
        logger.setLevel(level)
        resume_gc()  # the kernels are loaded: the start-up is over
