"""The NL-Bayes band kernel made ready for a call: only the pieces the call runs, compiled in two processes on a
cold numba cache.

A row band of the 2-D kernel is three numba functions, each compiled and cached on its own (numba links a
called jitted function's whole code into its caller's module and optimises it again there; separate pieces are
compiled once each and independently): the group search of the call's patch size
(:func:`nlmeans.kernels.nlbayes._nlb_groups5`, ``7`` or any size), the groups' estimates
(:func:`nlmeans.kernels.nlbayes._nlb_models`) and the patch sums
(:func:`nlmeans.kernels.nlbayes._nlb_patch_sums`). :func:`band_kernel` gives their compiled entry points for
the call's types. On the first call of a process it loads what numba's cache holds; when two or more pieces are
missing it starts one child process (``sys.executable``, no console window, no output) that compiles
:data:`CHILD_PIECES` into the cache while this process compiles the rest (first :data:`AHEAD`, callees of the
child's piece that the child then finds in the cache), then loads the child's pieces.
Whatever the child does not deliver (it failed, timed out, numba caches nowhere) is compiled here: the result
is the same either way. A warm cache spawns nothing. With ``NUMBA_DISABLE_JIT=1`` the pieces are the Python
functions.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

#: the pieces compiled by the child process on a cold cache: the groups' estimates are about half of the
#: compile (docs/benchmarks.md, "First run, third round")
CHILD_PIECES = ("models",)

#: callees of the child's piece that this process compiles first, while the child starts and types its piece:
#: the child then finds them in numba's cache when its typing reaches them (1.3 s of its 4.9 s), or, if this
#: process is late, compiles them itself (the same code either way)
AHEAD = ("solve", "cholesky")

#: seconds the parent waits for the child once its own pieces are compiled; then it compiles them itself
CHILD_TIMEOUT = 120.0

#: the first ``nlmeans demo``'s wall time on an empty cache as measured (docs/benchmarks.md, "First run, third
#: round"), for the command line's announcement (nlmeans.cli.progress.compiling)
FIRST_RUN_SECONDS = 5

_ready = {}
_lock = threading.Lock()


def _functions(P):
    """``{name: dispatcher}`` of the pieces a call with ``P`` × ``P`` patches runs, and of :data:`AHEAD`."""
    from .kernels import nlbayes as k

    return dict(groups=k._NLB_GROUPS.get(P, k._nlb_groups), models=k._nlb_models, sums=k._nlb_patch_sums,
                solve=k._nlb_solve, cholesky=k._nlb_cholesky)


def band_kernel(dtype, sigma_map, P):
    """The compiled pieces of an NL-Bayes row band for data of ``dtype``, a σ map or not (``sigma_map``) and
    ``P`` × ``P`` patches.

    The first call of a process for these types loads or compiles them (half of them in a child process on
    a cold cache), the others wait for it; then it is a dictionary look-up.

    Parameters
    ----------
    dtype : numpy dtype
        float32 or float64, the data's.
    sigma_map : bool
        Whether ``sigma2`` is a map (an array) rather than a scalar.
    P : int
        The patch side (5 and 7 have their own group searches, other sizes share one).

    Returns
    -------
    tuple
        ``(groups, models, sums)``: callables taking exactly the types of
        :func:`nlmeans.kernels.nlbayes._nlb_band_types` (compiled entry points, no type dispatch), or the
        Python functions with ``NUMBA_DISABLE_JIT=1``.
    """
    import numpy as np

    key = (np.dtype(dtype).str, bool(sigma_map), P if P in (5, 7) else 0)
    found = _ready.get(key)
    if found is None:
        with _lock:
            found = _ready.get(key)
            if found is None:
                found = _ready[key] = _prepare(np.dtype(dtype), bool(sigma_map), P)
    return found


def _prepare(dtype, sigma_map, P):
    """Load the pieces from numba's cache, compile what is missing (:data:`CHILD_PIECES` of it in a child
    process), and return what :func:`band_kernel` returns."""
    from .kernels.nlbayes import _nlb_band_types

    funcs = _functions(P)
    names = ("groups", "models", "sums")
    if not hasattr(funcs["models"], "compile"):  # NUMBA_DISABLE_JIT=1: the Python functions
        return tuple(funcs[name] for name in names)
    # argument types only, the key numba's cache also files a callee under when a caller's typing compiles it
    sigs = {name: tuple(sig.args) for name, sig in _nlb_band_types(dtype, sigma_map).items()}
    # a piece with no cache index at all is surely missing: its child starts before this process's first cache
    # look-up, which starts numba's code generator (0.15 s)
    away = [name for name in CHILD_PIECES if _unsaved(funcs[name])]
    child = _spawn(away, dtype, sigma_map, P) if away else None
    try:
        missing = None
        if child is None:
            missing = [name for name in names if not _load(funcs[name], sigs[name])]
            if len(missing) > 1:  # the cache has these pieces, but not for these types
                away = [name for name in missing if name in CHILD_PIECES and _caches(funcs[name])]
                child = _spawn(away, dtype, sigma_map, P) if away else None
        if child is not None:
            for name in AHEAD:
                funcs[name].compile(sigs[name])
        if missing is None:
            missing = [name for name in names if name not in away and not _load(funcs[name], sigs[name])]
        for name in missing:
            if child is None or name not in away:
                funcs[name].compile(sigs[name])
        if child is not None:
            try:
                child.wait(CHILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
    finally:  # also on Ctrl-C: no child left running, none left a zombie
        if child is not None:
            if child.poll() is None:
                child.kill()
            child.wait()
    if child is not None and child.returncode == -signal.SIGINT:
        # Ctrl-C on a terminal reaches the child (same process group); this process, compiling, may not see it
        # (numba compiles in a band thread, and the signal can land on any thread): stop as the user asked
        raise KeyboardInterrupt
    for name in away:  # what the child compiled is in the cache now; anything else is compiled here
        if not _load(funcs[name], sigs[name]):
            funcs[name].compile(sigs[name])
    return tuple(funcs[name].compile(sigs[name]) for name in names)


def _load(dispatcher, sig):
    """Whether ``dispatcher`` has ``sig`` (a tuple of argument types) compiled, after loading it from numba's
    cache if it is there (the step ``Dispatcher.compile`` takes before compiling, alone: a miss compiles
    nothing). False when numba's internals are not as expected (the caller then compiles)."""
    from numba.core.compiler_lock import global_compiler_lock

    try:
        with global_compiler_lock:
            if sig in dispatcher.overloads:
                return True
            cres = dispatcher._cache.load_overload(sig, dispatcher.targetctx)
            if cres is None:
                return False
            dispatcher.targetctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
            dispatcher.add_overload(cres)
            return True
    except Exception:  # noqa: BLE001 - another numba: compile instead
        return False


def _caches(dispatcher):
    """Whether numba saves ``dispatcher``'s compilations somewhere (a child's work is lost otherwise)."""
    cache = getattr(dispatcher, "_cache", None)
    return cache is not None and type(cache).__name__ != "NullCache"


def _unsaved(dispatcher):
    """Whether numba would save ``dispatcher``'s compilations but has no cache index for it yet (none of its
    signatures compiled): a look at one file. False when numba's internals are not as expected."""
    try:
        return _caches(dispatcher) and not os.path.exists(dispatcher._cache._cache_file._index_path)
    except AttributeError:  # another numba: the look-up in _prepare decides
        return False


def _spawn(names, dtype, sigma_map, P):
    """Start the child process compiling the pieces ``names`` into numba's cache; None if it cannot start.
    Its output goes nowhere and it opens no console window; it imports numba and the kernel module only."""
    if getattr(sys, "frozen", False):  # a frozen app's executable is the app itself, not a Python to run -c
        return None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from nlmeans._compile import _child_main; "
            "_child_main(sys.argv[2:])")
    args = [sys.executable, "-c", code, root, dtype.str, str(int(sigma_map)), str(P), *names]
    try:
        quiet = subprocess.DEVNULL
        return subprocess.Popen(args, stdin=quiet, stdout=quiet, stderr=quiet,
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except OSError:
        return None


def _child_main(argv):
    """The child process: compile the pieces ``argv[3:]`` for dtype ``argv[0]``, σ map ``argv[1]`` (0 or 1),
    patch side ``argv[2]``; numba saves them in its cache."""
    import numpy as np

    from .kernels.nlbayes import _nlb_band_types

    dtype, sigma_map, P, names = np.dtype(argv[0]), bool(int(argv[1])), int(argv[2]), argv[3:]
    funcs, sigs = _functions(P), _nlb_band_types(dtype, sigma_map)
    for name in names:
        funcs[name].compile(tuple(sigs[name].args))
