"""The NL-Bayes band's pieces on a cold numba cache (nlmeans._compile): a child process compiles part of them,
the result is the warm one; a child that fails or hangs leaves the work to this process, same result; a warm
cache starts no child. Each case runs in a fresh process with its own NUMBA_CACHE_DIR (the only way to have a
cold cache)."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

# runs nlbayes_chw on a fixed image and saves it; prints the children started: [[pieces, exit code], ...].
# argv: output .npy, dtype, then the child to use: "real", "hang" (sleeps, is timed out), "fail" (exits 3) or
# "interrupted" (stopped by SIGINT, as Ctrl-C on a terminal stops it)
SCRIPT = r"""
import json, subprocess, sys
import numpy as np
import nlmeans._compile as comp
from nlmeans.nlbayes import nlbayes_chw
from nlmeans.presets import resolve_nlbayes

out_path, dtype, mode = sys.argv[1], np.dtype(sys.argv[2]), sys.argv[3]
started = []
real_spawn = comp._spawn

def spawn(names, *args):
    if mode == "real":
        child = real_spawn(names, *args)
    else:
        code = {"hang": "import time; time.sleep(60)", "fail": "import sys; sys.exit(3)",
                # (SIGINT's default action restored first: a background job's children inherit it ignored)
                "interrupted": "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                               "os.kill(os.getpid(), signal.SIGINT)"}[mode]
        child = subprocess.Popen([sys.executable, "-c", code])
    started.append((list(names), child))
    return child

comp._spawn = spawn
if mode == "hang":
    comp.CHILD_TIMEOUT = 0.5
rng = np.random.default_rng(7)
image = np.clip(np.linspace(0, 1, 40)[None, :, None] + rng.normal(0, 0.1, (1, 40, 36)), 0, 1).astype(dtype)
out = nlbayes_chw(image, 0.1, **resolve_nlbayes((40, 36), 25.5, 1))
np.save(out_path, out)
print(json.dumps([[names, child.poll()] for names, child in started]))
"""


def _run(tmp_path, cache, dtype, mode, check=True):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop("NUMBA_DISABLE_JIT", None)
    out = tmp_path / f"out-{dtype}-{mode}-{len(list(tmp_path.iterdir()))}.npy"
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(out), dtype, mode], capture_output=True, text=True,
                         env=env, timeout=600)
    if not check:
        return res
    assert res.returncode == 0, res.stderr[-2000:]
    return np.load(out), json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cold_cache_child_compile_gives_the_warm_result(tmp_path, dtype):
    """Cold: one child compiles the groups' estimates and exits 0; warm (the same cache): no child, and the
    same result bit for bit."""
    cache = tmp_path / "cache"
    cold, started = _run(tmp_path, cache, dtype, "real")
    assert started == [[["models"], 0]]
    warm, started = _run(tmp_path, cache, dtype, "real")
    assert started == []
    np.testing.assert_array_equal(cold, warm)


def test_failed_or_hung_child_falls_back_to_this_process(tmp_path):
    """A child that exits with an error, or hangs past the timeout (then killed and reaped: an exit code, no
    zombie), delivers nothing: this process compiles the pieces itself and gives the result of a run whose
    child did its work."""
    good, _ = _run(tmp_path, tmp_path / "good", "float32", "real")
    for mode in ("fail", "hang"):
        out, started = _run(tmp_path, tmp_path / mode, "float32", mode)
        assert len(started) == 1 and started[0][0] == ["models"]
        assert started[0][1] == 3 if mode == "fail" else started[0][1] is not None
        np.testing.assert_array_equal(out, good)


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_first_run_is_announced_with_its_time_on_a_terminal_only(monkeypatch, tty):
    """On a terminal, numba's first compilation in the warm-up draws "compiling kernels, first run only (~N s;
    ...)", N the measured first-run time; in a pipe nothing."""
    import time

    import numba

    from nlmeans._compile import FIRST_RUN_SECONDS
    from nlmeans.cli import progress

    if numba.config.DISABLE_JIT:
        pytest.skip("NUMBA_DISABLE_JIT=1: numba compiles nothing")
    stream = _Stream(tty)
    monkeypatch.setattr(sys, "stderr", stream)
    fresh = numba.njit(lambda x: x * 2)  # not cached: compiles on its first call
    with progress.compiling():
        assert fresh(2) == 4
        time.sleep(0.3)  # the line is drawn from a thread
    expected = f"\rcompiling kernels, first run only (~{FIRST_RUN_SECONDS} s; later runs load them from the cache)"
    assert (expected in stream.getvalue()) == tty
    assert tty or stream.getvalue() == ""


@pytest.mark.skipif(sys.platform == "win32", reason="a signal's exit code is POSIX")
def test_a_child_stopped_by_ctrl_c_stops_the_call(tmp_path):
    """Ctrl-C on a terminal reaches the child too; a child ended by SIGINT makes the call raise
    KeyboardInterrupt (the command line then says "Aborted!") instead of compiling its piece here."""
    res = _run(tmp_path, tmp_path / "cache", "float32", "interrupted", check=False)
    assert res.returncode != 0 and "KeyboardInterrupt" in res.stderr


def test_no_child_from_a_frozen_app(monkeypatch):
    # in a frozen (PyInstaller-style) app sys.executable is the app: running it with -c would start the app again
    import nlmeans._compile as comp

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    started = []
    monkeypatch.setattr(comp.subprocess, "Popen", lambda *a, **k: started.append(a))
    assert comp._spawn(["models"], np.dtype(np.float32), False, 5) is None
    assert started == []
