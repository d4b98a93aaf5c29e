"""Progress on a terminal only, --quiet everywhere, compilation announced and not timed (#19 item 4).

The terminal cases run the real command line in a pseudo-terminal (stderr on the pty's slave) and compare
with a pipe."""

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pytest
from click.testing import CliRunner

from nlmeans.cli import main
from nlmeans.io import write_image

RNG = np.random.default_rng(4)


def _compile_for(seconds):
    """Stands for numba compiling a kernel for ``seconds``: its ``numba:compile`` event around a sleep."""
    from numba.core import event

    with event.trigger_event("numba:compile"):
        time.sleep(seconds)


def _noisy_png(path, size=64):
    clean = np.tile(np.linspace(0.2, 0.8, size), (size, 1))
    write_image(path, np.clip(np.rint((clean + RNG.normal(0, 0.08, clean.shape)) * 255), 0, 255).astype(np.uint8))


def _run(args, *, tty):
    """Run ``python -m nlmeans args``; stderr on a pseudo-terminal (``tty``) or a pipe. Returns (code,
    stdout, stderr)."""
    cmd = [sys.executable, "-m", "nlmeans", *map(str, args)]
    env = dict(os.environ, COLUMNS="120")
    if not tty:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a fresh pty is 0 wide
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + 600
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the slave side is closed (the process ended)
                data = b""
            if data:
                chunks.append(data)
                continue
        if p.poll() is not None and not ready:
            break
        if ready and not data:
            break
    out = p.stdout.read().decode()
    p.wait(timeout=60)
    os.close(master)
    return p.returncode, out, b"".join(chunks).decode(errors="replace")


@pytest.fixture
def two_files(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        _noisy_png(folder / name)
    return folder


def test_batch_bar_on_a_terminal_only(tmp_path, two_files):
    code, out, err = _run(["denoise", two_files, "--out-dir", tmp_path / "tty", "--sigma", "20"], tty=True)
    assert code == 0 and "2 denoised" in out
    assert "files:" in err and "2/2" in err  # tqdm's bar, drawn on the terminal
    code, out, err = _run(["denoise", two_files, "--out-dir", tmp_path / "pipe", "--sigma", "20"], tty=False)
    assert code == 0 and "2 denoised" in out
    assert err == ""  # nothing in logs: no bar, no carriage returns


def test_eval_bar_on_a_terminal_only(tmp_path):
    _noisy_png(tmp_path / "x.png", 32)
    args = ["eval", tmp_path / "x.png", "--sigma", "20", "--methods", "gaussian,tv"]
    code, out, err = _run(args, tty=True)
    assert code == 0 and "eval" in err and "run" in err
    code, out, err = _run(args, tty=False)
    assert code == 0 and "gaussian" in out and err == ""


def test_quiet_prints_nothing_on_success_before_or_after_the_subcommand(tmp_path, two_files):
    src = two_files / "a.png"
    cases = [
        ["denoise", src, tmp_path / "o1.png", "--sigma", "20", "--quiet"],
        ["-q", "denoise", src, tmp_path / "o2.png"],
        ["denoise", two_files, "--out-dir", tmp_path / "batch", "-q"],
        ["noise", src, tmp_path / "n.png", "--sigma", "10", "--quiet"],
        ["demo", src, "--quiet"],
        ["--quiet", "eval", src, "--sigma", "20", "--methods", "gaussian"],
    ]
    for args in cases:
        code, out, err = _run(args, tty=True)  # not even progress on a terminal
        assert code == 0 and out == "" and err == "", (args, out, err)
    assert (tmp_path / "o1.png").exists() and (tmp_path / "o2.png").exists() and (tmp_path / "n.png").exists()
    # errors still print
    code, out, err = _run(["denoise", tmp_path / "missing.png", tmp_path / "o3.png", "--quiet"], tty=False)
    assert code == 1 and "missing.png: no such file" in err


class _Tty(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


def test_ticker_draws_on_a_terminal_and_erases_itself(monkeypatch):
    from nlmeans.cli import progress

    stream = _Tty()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress.ticker("denoising x.png", delay=0.0):
        time.sleep(0.3)
    text = stream.getvalue()
    assert "\rdenoising x.png … 0 s" in text and text.endswith("\r\x1b[K")
    stream = io.StringIO()  # not a terminal: nothing
    monkeypatch.setattr(sys, "stderr", stream)
    with progress.ticker("denoising x.png", delay=0.0):
        time.sleep(0.2)
    assert stream.getvalue() == ""


def test_first_call_compilation_is_not_counted(tmp_path, monkeypatch):
    """demo warms the kernels on a corner of the image first and times only the real call."""
    import nlmeans._denoise as module

    real = module.denoise
    calls = []

    def slow_first(image, *args, **kwargs):  # stands for numba compiling on the first call
        calls.append(image.shape)
        if len(calls) == 1:
            _compile_for(1.5)
        return real(image, *args, **kwargs)

    monkeypatch.setattr(module, "denoise", slow_first)
    _noisy_png(tmp_path / "x.png", 96)
    res = CliRunner().invoke(main, ["demo", str(tmp_path / "x.png")])
    assert res.exit_code == 0, res.output
    assert calls[0] == (48, 48) and calls[1] == (96, 96)  # the warm-up on a 48×48 corner, then the image
    seconds = float(res.output.split(" s\n")[0].rsplit(", ", 1)[1])
    assert seconds < 1.0, res.output


def test_long_single_image_shows_elapsed_time_on_a_terminal(tmp_path, monkeypatch):
    """In-memory denoising (and --h auto, volumes, video) show a ticker while the call runs."""
    import nlmeans._denoise as module
    from nlmeans.cli import progress

    real = module.denoise

    def slow(image, *args, **kwargs):
        if image.shape[0] > 48:
            time.sleep(1.6)
        return real(image, *args, **kwargs)

    monkeypatch.setattr(module, "denoise", slow)
    monkeypatch.setattr(progress, "show_progress", lambda: True)  # CliRunner's stderr is no terminal
    _noisy_png(tmp_path / "x.png", 96)
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "x.png"), str(tmp_path / "o.png"), "--h", "auto"])
    assert res.exit_code == 0, res.output
    assert "\rdenoising x.png, h by SURE … 1 s" in res.stderr and res.stderr.endswith("\r\x1b[K")


def test_an_interrupt_during_the_warm_up_is_still_an_abort(tmp_path, monkeypatch):
    import nlmeans._denoise as module

    def interrupted(*args, **kwargs):  # numba surfaces Ctrl-C inside a kernel as a SystemError
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("CPUDispatcher(...) returned a result with an exception set") from exc

    monkeypatch.setattr(module, "denoise", interrupted)
    _noisy_png(tmp_path / "x.png")
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "x.png"), str(tmp_path / "o.png"), "--sigma", "9"])
    assert res.exit_code == 130 and res.stderr.strip() == "Aborted!"


def _slow_first(real, calls):
    def slow_first(image, *args, **kwargs):  # stands for numba compiling on the first call
        calls.append(np.shape(image))
        if len(calls) == 1:
            _compile_for(1.5)
        return real(image, *args, **kwargs)

    return slow_first


@pytest.mark.parametrize("route, module_name, name", [
    ([], "nlmeans._denoise", "denoise"),
    (["--noise", "rician", "--sigma", "20"], "nlmeans._denoise", "denoise"),
    (["--tile-rows", "64", "--sigma", "20"], "nlmeans.tiles", "denoise_tiled"),
])
def test_denoise_warm_up_is_announced_and_not_counted(tmp_path, monkeypatch, route, module_name, name):
    """Every in-memory route and the strips warm up on a 48×48 corner first, under the "compiling" ticker,
    and report only the real call's time."""
    import importlib

    import tifffile

    from nlmeans.cli import progress

    module = importlib.import_module(module_name)
    calls = []
    monkeypatch.setattr(module, name, _slow_first(getattr(module, name), calls))
    monkeypatch.setattr(progress, "show_progress", lambda: True)  # CliRunner's stderr is no terminal
    if "--tile-rows" in route:
        tifffile.imwrite(tmp_path / "x.tif", RNG.integers(0, 256, (96, 96), dtype=np.uint8))
        src, dst = tmp_path / "x.tif", tmp_path / "o.tif"
    else:
        _noisy_png(tmp_path / "x.png", 96)
        src, dst = tmp_path / "x.png", tmp_path / "o.png"
    res = CliRunner().invoke(main, ["denoise", str(src), str(dst), *route])
    assert res.exit_code == 0, res.output
    assert calls[0][:2] == (48, 48) and calls[-1][:2] == (96, 96)  # (the models call it again inside)
    assert "compiling kernels, first run only" in res.stderr
    seconds = float(res.output.rsplit(" s -> ", 1)[0].rsplit(" ", 1)[1])
    assert seconds < 1.0, res.output


def test_eval_warm_up_is_announced(tmp_path, monkeypatch):
    from nlmeans.cli import progress
    from nlmeans.eval import experiment

    real = experiment._warm_up

    def slow(*args):
        _compile_for(1.5)
        return real(*args)

    monkeypatch.setattr(experiment, "_warm_up", slow)
    monkeypatch.setattr(progress, "show_progress", lambda: True)
    _noisy_png(tmp_path / "x.png", 32)
    res = CliRunner().invoke(main, ["eval", str(tmp_path / "x.png"), "--sigma", "20", "--methods", "gaussian"])
    assert res.exit_code == 0, res.output
    assert "compiling kernels, first run only" in res.stderr


def test_ticker_shows_the_fraction_the_library_reports(monkeypatch):
    from nlmeans._progress import report
    from nlmeans.cli import progress

    stream = _Tty()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress.ticker("denoising x.png", delay=0.0):
        report(1, 4, "NL-Bayes stage 2/2")
        time.sleep(0.8)  # the line is redrawn every 0.5 s
    assert " s (NL-Bayes stage 2/2: 25 %)\x1b[K" in stream.getvalue()


def test_compiling_is_announced_when_numba_compiles_and_only_then(monkeypatch):
    """The line appears as soon as numba really compiles (a cache miss), and never for a block that only
    loads or runs compiled code, however long it takes (a cached run on a busy machine)."""
    import numba

    from nlmeans.cli import progress

    if numba.config.DISABLE_JIT:
        pytest.skip("NUMBA_DISABLE_JIT=1: numba compiles nothing")
    stream = _Tty()
    monkeypatch.setattr(sys, "stderr", stream)
    fresh = numba.njit(lambda x: x + 1)  # not cached: compiles on its first call
    with progress.compiling() as compiled:
        assert fresh(1) == 2
        time.sleep(0.3)  # the line is drawn from a thread
    assert compiled.is_set() and "\rcompiling kernels, first run only" in stream.getvalue()
    stream = _Tty()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress.compiling() as compiled:
        assert fresh(2) == 3  # compiled already
        time.sleep(1.3)  # longer than the old fixed delay of 1 s
    assert not compiled.is_set() and stream.getvalue() == ""


def test_start_up_runs_without_the_garbage_collector_and_restores_it(tmp_path, monkeypatch):
    """The collector is off from the command's start to the end of the warm-up, on for the real call, and
    as before once the command returns (also after an error)."""
    import gc

    import nlmeans._denoise as module

    real = module.denoise
    states = []

    def record(image, *args, **kwargs):
        states.append(gc.isenabled())
        return real(image, *args, **kwargs)

    monkeypatch.setattr(module, "denoise", record)
    _noisy_png(tmp_path / "x.png", 96)
    assert gc.isenabled()
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "x.png"), str(tmp_path / "o.png"), "--sigma", "20"])
    assert res.exit_code == 0, res.output
    assert states == [False, True] and gc.isenabled()  # the warm-up on the corner, then the image
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "missing.png"), str(tmp_path / "p.png")])
    assert res.exit_code == 1 and gc.isenabled()
    gc.disable()  # a caller that turned it off keeps it off
    try:
        CliRunner().invoke(main, ["denoise", str(tmp_path / "x.png"), str(tmp_path / "q.png"), "--sigma", "20"])
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.slow
def test_cached_run_on_a_terminal_says_nothing_about_compiling(tmp_path):
    """The real command line in a pseudo-terminal: once the kernels are cached (the first run compiles them
    if no other test has), a run shows no compiling line."""
    _noisy_png(tmp_path / "x.png", 96)
    args = ["denoise", tmp_path / "x.png", tmp_path / "o.png", "--overwrite"]
    assert _run(args, tty=True)[0] == 0
    code, out, err = _run(args, tty=True)
    assert code == 0 and "nlbayes" in out and "compiling" not in err


_COUNT_ENTRY_POINTS = """
import importlib.metadata as md, sys
calls = []
real = md.entry_points
md.entry_points = lambda *a, **k: calls.append(1) or real(*a, **k)
{body}
sys.stdout.write(f"\\nentry point scans: {{len(calls)}}\\n")
"""


@pytest.mark.parametrize("route", ["cli", "library"])
def test_command_line_skips_numba_extension_scan_and_the_library_does_not(tmp_path, route):
    """The command line's warm-up tells numba its extensions are initialised (no scan of every installed
    package's entry points before the first kernel loads); a Python caller's process keeps numba's scan."""
    src, dst = str(tmp_path / "x.png"), str(tmp_path / "o.png")
    _noisy_png(tmp_path / "x.png", 40)
    if route == "cli":
        body = f"from nlmeans.cli import main\nmain(['denoise', {src!r}, {dst!r}], standalone_mode=False)"
    else:
        body = f"import nlmeans; nlmeans.denoise(nlmeans.io.read_image({src!r}).data)"
    p = subprocess.run([sys.executable, "-c", _COUNT_ENTRY_POINTS.format(body=body)], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    scans = int(p.stdout.rsplit("entry point scans: ", 1)[1])
    assert scans == (0 if route == "cli" else 1), p.stdout
    if route == "cli":
        assert (tmp_path / "o.png").exists()


def test_skip_numba_extensions_only_sets_numba_flag(monkeypatch):
    import types

    from nlmeans.cli import progress

    fake = types.SimpleNamespace(_already_initialized=False)
    monkeypatch.setitem(sys.modules, "numba.core.entrypoints", fake)
    progress.skip_numba_extensions()
    assert fake._already_initialized is True
    other = types.SimpleNamespace()  # a numba without the flag: nothing is added
    monkeypatch.setitem(sys.modules, "numba.core.entrypoints", other)
    progress.skip_numba_extensions()
    assert not hasattr(other, "_already_initialized")
    monkeypatch.delitem(sys.modules, "numba.core.entrypoints")  # numba not imported: nothing to do
    progress.skip_numba_extensions()
