"""Output safety (issue #21): no writer replaces an input or an existing output it was not allowed to, a full
disk or a signal leaves one line, a documented exit code and no partial file, --jobs is capped."""

import errno
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nlmeans.io.write as nio
from nlmeans import batch
from nlmeans.cli import main
from nlmeans.io import TEMP_PREFIX, ImageIOError, read_image, write_image

ROOT = Path(__file__).resolve().parent.parent


def _one_line_error(res, code=1):
    assert res.exit_code == code, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip() and "%|" not in ln]  # not the progress bar
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


def _no_partials(folder):
    return [p.name for p in Path(folder).rglob(TEMP_PREFIX + "*")]


@pytest.fixture
def png(tmp_path, rng):
    path = tmp_path / "a.png"
    write_image(path, (rng.random((24, 20)) * 255).astype(np.uint8))
    return path


def _zarr(path, rng):
    import zarr

    arr = zarr.open_array(str(path), mode="w", shape=(24, 20), dtype=np.uint8, chunks=(8, 20))
    arr[:] = (rng.random((24, 20)) * 255).astype(np.uint8)
    return np.asarray(arr[:])


def _tree(path):
    """Every file under ``path`` (or the file itself) with its bytes: proof that nothing changed."""
    path = Path(path)
    if path.is_file():
        return {".": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# --- an output is never an input -------------------------------------------------------------------------


def _spellings(tmp_path, src):
    """The same file named otherwise: ./x, d/../x, a symlink to it, a hard link to it."""
    sub = tmp_path / "sub"
    sub.mkdir(exist_ok=True)
    os.symlink(src, tmp_path / "link.png")
    os.link(src, tmp_path / "hard.png")
    return {"dot": Path(f"{tmp_path}/./{src.name}"), "dotdot": sub / ".." / src.name,
            "symlink": tmp_path / "link.png", "hardlink": tmp_path / "hard.png"}


@pytest.mark.parametrize("spelling", ["dot", "dotdot", "symlink", "hardlink"])
@pytest.mark.parametrize("writer", ["denoise", "noise", "eval-json", "eval-csv"])
def test_no_writer_replaces_an_input_in_any_spelling(tmp_path, png, writer, spelling):
    out = _spellings(tmp_path, png)[spelling]
    before = png.read_bytes()
    evaluate = ["eval", str(png), "--sigma", "20", "--methods", "gaussian"]
    args = {
        "denoise": ["denoise", str(png), str(out), "--sigma", "10"],
        "noise": ["noise", str(png), str(out), "--sigma", "10"],
        "eval-json": [*evaluate, "--json", str(out)],
        "eval-csv": [*evaluate, "--csv", str(out)],
    }[writer]
    line = _one_line_error(CliRunner().invoke(main, [*args, "--overwrite"]))
    assert "is an input" in line, line
    assert png.read_bytes() == before
    assert _no_partials(tmp_path) == []


@pytest.mark.parametrize("spelling", ["symlink", "hardlink"])
def test_batch_never_writes_over_an_input(tmp_path, png, spelling):
    """--out-dir holding a link to an input under the output's name."""
    out = tmp_path / "out"
    out.mkdir()
    (os.symlink if spelling == "symlink" else os.link)(png, out / png.name)
    before = png.read_bytes()
    res = CliRunner().invoke(main, ["denoise", str(png), "--out-dir", str(out), "--overwrite", "--sigma", "10"])
    assert "is an input" in _one_line_error(res)
    assert png.read_bytes() == before


def test_eval_json_onto_its_input_is_refused(tmp_path, png):
    """The issue's case: ``nlmeans eval photo.png --json photo.png`` replaced the photo."""
    before = png.read_bytes()
    for option in ("--json", "--csv"):
        res = CliRunner().invoke(main, ["eval", str(png), "--sigma", "20", "--methods", "gaussian",
                                        option, str(png)])
        line = _one_line_error(res)
        assert "is an input" in line
        assert png.read_bytes() == before


def test_zarr_output_onto_its_zarr_input_is_refused(tmp_path, rng, monkeypatch):
    """``nlmeans denoise a.zarr ./a.zarr --overwrite`` replaced the input with its denoised version."""
    _zarr(tmp_path / "a.zarr", rng)
    before = _tree(tmp_path / "a.zarr")
    monkeypatch.chdir(tmp_path)
    for out in ("./a.zarr", "sub/../a.zarr"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        res = CliRunner().invoke(main, ["denoise", "a.zarr", out, "--sigma", "10", "--overwrite"])
        assert "is an input" in _one_line_error(res)
        assert _tree(tmp_path / "a.zarr") == before
    assert _no_partials(tmp_path) == []


def test_an_input_inside_the_output_zarr_folder_is_not_deleted(tmp_path, rng):
    """Replacing a .zarr output deletes the folder: refused when an input is stored in it."""
    import tifffile

    out = tmp_path / "o.zarr"
    _zarr(out, rng)
    src = out / "in.tif"
    tifffile.imwrite(src, (rng.random((24, 20)) * 255).astype(np.uint8))
    before = _tree(out)
    res = CliRunner().invoke(main, ["denoise", str(src), str(out), "--sigma", "10", "--overwrite"])
    assert "holds an input" in _one_line_error(res)
    assert _tree(out) == before


def test_overwrite_replaces_only_a_zarr_folder(tmp_path, rng):
    """--overwrite replaces a Zarr store (the denoised image is there), never another folder with files."""
    import zarr

    src = tmp_path / "in.zarr"
    _zarr(src, rng)
    other = tmp_path / "photos.zarr"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"precious")
    res = CliRunner().invoke(main, ["denoise", str(src), str(other), "--sigma", "10", "--overwrite"])
    assert "not a Zarr store" in _one_line_error(res)
    assert (other / "holiday.jpg").read_bytes() == b"precious"
    old = tmp_path / "old.zarr"
    _zarr(old, rng)
    res = CliRunner().invoke(main, ["denoise", str(src), str(old), "--sigma", "10", "--overwrite"])
    assert res.exit_code == 0, res.output
    assert zarr.open_array(str(old), mode="r").shape == (24, 20)


def test_demo_never_writes_over_its_input_nor_existing_files(tmp_path, png):
    """``nlmeans demo d/noisy.png --out-dir d`` overwrote its input; an existing denoised.png was replaced."""
    d = tmp_path
    noisy = d / "noisy.png"
    png.rename(noisy)
    before = noisy.read_bytes()
    res = CliRunner().invoke(main, ["demo", str(noisy), "--out-dir", str(d), "--sigma", "20"])
    assert "is an input" in _one_line_error(res)
    assert noisy.read_bytes() == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "denoised.png").write_bytes(b"mine")
    res = CliRunner().invoke(main, ["demo", str(noisy), "--out-dir", str(other), "--sigma", "20"])
    assert "--overwrite" in _one_line_error(res)
    assert (other / "denoised.png").read_bytes() == b"mine" and not (other / "noisy.png").exists()
    res = CliRunner().invoke(main, ["demo", str(noisy), "--out-dir", str(other), "--sigma", "20", "--overwrite"])
    assert res.exit_code == 0, res.output
    assert read_image(other / "denoised.png").data.shape == read_image(noisy).data.shape


@pytest.mark.parametrize("clash", ["input", "existing"])
def test_eval_plots_never_replace_inputs_or_existing_files(tmp_path, rng, clash):
    """--plots into a folder: fine unless a file it would write is an input (refused) or exists (only with
    --overwrite). Checked before the evaluation runs."""
    pytest.importorskip("matplotlib")
    d = tmp_path / "d"
    d.mkdir()
    src = d / "img.png"
    write_image(src, (rng.random((24, 24)) * 255).astype(np.uint8))
    victim = d / "psnr_vs_sigma.png"  # the name of the first plot
    if clash == "input":
        write_image(victim, (rng.random((24, 24)) * 255).astype(np.uint8))
    else:
        victim.write_bytes(b"an older plot")
    before = victim.read_bytes()
    inputs = [str(src), str(victim)] if clash == "input" else [str(src)]
    args = ["eval", *inputs, "--sigma", "20", "--methods", "gaussian", "--plots", str(d)]
    line = _one_line_error(CliRunner().invoke(main, args))
    assert ("is an input" if clash == "input" else "--overwrite") in line
    assert victim.read_bytes() == before
    res = CliRunner().invoke(main, [*args, "--overwrite"])
    if clash == "input":
        assert "is an input" in _one_line_error(res)
        assert victim.read_bytes() == before
    else:
        assert res.exit_code == 0, res.output
        assert victim.read_bytes() != before and victim.read_bytes()[:4] == b"\x89PNG"


def test_plot_paths_are_the_files_write_plots_writes(tmp_path, rng):
    pytest.importorskip("matplotlib")
    from nlmeans.eval.plots import plot_paths

    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "x y.png", (rng.random((24, 24)) * 255).astype(np.uint8))
    out = tmp_path / "plots"
    res = CliRunner().invoke(main, ["eval", str(src), "--sigma", "10,20", "--methods", "gaussian",
                                    "--plots", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in plot_paths(["x y"], [10, 20], out))


# --- existing outputs: refused without --overwrite, also when they appear while the run computes ---------


def _appears_meanwhile(monkeypatch, path, content=b"written by another run"):
    """Make ``path`` appear while the CLI computes (after its up-front check): as a second run would."""
    import nlmeans._denoise as nd  # the module (nlmeans.denoise is the function)

    real = nd.denoise

    def run_and_race(*args, **kwargs):
        result = real(*args, **kwargs)
        if str(path).endswith(".zarr"):
            Path(path).mkdir()
            (Path(path) / ".zarray").write_bytes(content)
        else:
            Path(path).write_bytes(content)
        return result

    monkeypatch.setattr(nd, "denoise", run_and_race)


@pytest.mark.parametrize("no_renameat2", [False, True])
def test_an_output_appearing_meanwhile_is_not_replaced(tmp_path, png, monkeypatch, no_renameat2):
    """Two runs to one output: the check before computing passed for both; the second to finish must not
    replace the first's file (exit 1, one line, its temporary removed). With and without renameat2 (the
    link + unlink fallback)."""
    if no_renameat2:
        monkeypatch.setattr(nio, "_libc_renameat2", lambda: None)
    out = tmp_path / "o.png"
    _appears_meanwhile(monkeypatch, out)
    res = CliRunner().invoke(main, ["denoise", str(png), str(out), "--sigma", "10"])
    assert "appeared while" in _one_line_error(res)
    assert out.read_bytes() == b"written by another run"
    assert _no_partials(tmp_path) == []


def test_a_zarr_output_appearing_meanwhile_is_not_replaced(tmp_path, rng, monkeypatch):
    import nlmeans.tiles as nt

    src = tmp_path / "in.zarr"
    _zarr(src, rng)
    out = tmp_path / "o.zarr"
    real = nt.denoise_tiled

    def race(*args, **kwargs):
        result = real(*args, **kwargs)
        out.mkdir()
        (out / "theirs").write_bytes(b"x")
        return result

    monkeypatch.setattr(nt, "denoise_tiled", race)
    res = CliRunner().invoke(main, ["denoise", str(src), str(out), "--sigma", "10"])
    assert "appeared while" in _one_line_error(res)
    assert sorted(p.name for p in out.iterdir()) == ["theirs"]
    assert _no_partials(tmp_path) == []


def test_two_real_runs_to_one_output_one_wins(tmp_path, png):
    """Two CLI processes started together on one output: exactly one exits 0, the other 1 with one line."""
    out = tmp_path / "o.png"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-c", "from nlmeans.cli import main; main(prog_name='nlmeans')",
           "denoise", str(png), str(out), "--sigma", "10", "--method", "pixelwise"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 1], results  # never both: one replaced the other
    err = next(e for c, e in results if c == 1)
    # "already exists" when the winner finished before the loser's up-front check, else caught at the rename
    assert len(err.strip().splitlines()) == 1 and ("appeared while" in err or "already exists" in err), err
    assert _no_partials(tmp_path) == []
    assert read_image(out).data.shape == (24, 20)


def test_api_writers_still_replace_by_default_but_not_with_overwrite_false(tmp_path):
    from nlmeans.eval.experiment import write_csv, write_json

    out = tmp_path / "o.png"
    write_image(out, np.zeros((4, 4), np.uint8))
    write_image(out, np.ones((4, 4), np.uint8))
    assert read_image(out).data.max() == 1
    with pytest.raises(ImageIOError, match="appeared while"):
        write_image(out, np.zeros((4, 4), np.uint8), overwrite=False)
    for writer, name in ((write_json, "r.json"), (write_csv, "r.csv")):
        (tmp_path / name).write_text("keep")
        with pytest.raises(ImageIOError):
            writer([], tmp_path / name, overwrite=False)
        assert (tmp_path / name).read_text() == "keep"
    assert _no_partials(tmp_path) == []


# --- temporaries: named by host and PID, abandoned ones removed at the next run ------------------------------


def test_abandoned_partials_are_removed_at_the_next_run_live_ones_kept(tmp_path, png):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f"{nio._temp_prefix().rsplit('-', 2)[0]}-{dead}-abc.png"
        live = tmp_path / f"{nio._temp_prefix().rsplit('-', 2)[0]}-{sleeper.pid}-abc.png"
        foreign_new = tmp_path / f"{TEMP_PREFIX}zzzzzz-1-abc.png"  # another host, still being written
        foreign_old = tmp_path / f"{TEMP_PREFIX}old-format.png"
        for p in (stale, live, foreign_new, foreign_old):
            p.write_bytes(b"partial")
        old = os.stat(foreign_old).st_mtime - 2 * nio.FOREIGN_PARTIAL_SECONDS
        os.utime(foreign_old, (old, old))
        res = CliRunner().invoke(main, ["denoise", str(png), str(tmp_path / "o.png"), "--sigma", "10"])
        assert res.exit_code == 0, res.output
        assert "removed 2 partial file(s)" in res.output
        assert sorted(_no_partials(tmp_path)) == sorted([live.name, foreign_new.name])
    finally:
        sleeper.kill()
        sleeper.wait()


# --- faults: full disk -------------------------------------------------------------------------------------


def _strip_input(tmp_path, rng, shape=(600, 200)):  # 4 strips of NL-Bayes (192 rows)
    import tifffile

    src = tmp_path / "in.tif"
    tifffile.imwrite(src, (rng.random(shape) * 255).astype(np.uint8))
    return src


STRIP_ARGS = ["--tile-rows", "32", "--sigma", "10", "--patch", "3", "--search", "5"]


def test_full_disk_at_preallocation_is_one_line_before_computing(tmp_path, rng, monkeypatch):
    src = _strip_input(tmp_path, rng)
    calls = []

    def full(fd, offset, size):
        calls.append(size)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    out = tmp_path / "o.tif"
    line = _one_line_error(CliRunner().invoke(main, ["denoise", str(src), str(out), *STRIP_ARGS]))
    assert "No space left on device" in line and calls == [600 * 200]
    assert not out.exists() and _no_partials(tmp_path) == []


def test_full_disk_during_strip_writes_is_one_line(tmp_path, rng, monkeypatch):
    """No preallocation on this file system, and the disk fills up at the third strip: an OSError from an
    ordinary write (a memory-mapped output would crash the process with SIGBUS instead)."""
    src = _strip_input(tmp_path, rng)
    monkeypatch.setattr(os, "posix_fallocate",
                        lambda *a: (_ for _ in ()).throw(OSError(errno.EOPNOTSUPP, "not supported")))
    real, writes = os.pwrite, []

    def pwrite(fd, data, offset):
        writes.append(offset)
        if len(writes) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    out = tmp_path / "o.tif"
    line = _one_line_error(CliRunner().invoke(main, ["denoise", str(src), str(out), *STRIP_ARGS]))
    assert "No space left on device" in line and len(writes) == 3
    assert not out.exists() and _no_partials(tmp_path) == []


def _tiny_tmpfs_available():
    if not shutil.which("unshare") or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(["unshare", "-r", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _tiny_tmpfs_available(), reason="needs unshare and a user mount namespace (tmpfs)")
@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_a_really_full_disk_is_one_line_and_no_sigbus(tmp_path, rng, suffix):
    """A 1 MB tmpfs in a private mount namespace as the output's disk; the output needs 1.4 MB."""
    src = _strip_input(tmp_path, rng, (1200, 1200))
    full = tmp_path / "full"
    full.mkdir()
    out = full / f"o{suffix}"
    script = (f"mount -t tmpfs -o size=1m tmpfs {full} && cd {ROOT} && "
              f"{sys.executable} -c 'from nlmeans.cli import main; main(prog_name=\"nlmeans\")' "
              f"denoise {src} {out} {' '.join(STRIP_ARGS)}; code=$?; "
              f"ls -A {full}; exit $code")
    res = subprocess.run(["unshare", "-r", "-m", "sh", "-c", script], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 1, (res.returncode, res.stderr)  # SIGBUS would be 135 from sh
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and "strips:" not in ln and "%|" not in ln]
    assert len(lines) == 1 and "No space left on device" in lines[0], res.stderr
    assert res.stdout.strip() == "", res.stdout  # nothing left on the full disk: no output, no temporary


# --- faults: signals ---------------------------------------------------------------------------------------

_SIGNAL_CHILD = """
import os, signal, sys, threading, importlib
module, name = os.environ["HOOK"].rsplit(":", 1)
mod = importlib.import_module(module)
real, calls = getattr(mod, name), []
sig, at, delay = int(os.environ["SIG"]), int(os.environ["AT"]), float(os.environ["DELAY"])

def hooked(*args, **kwargs):
    calls.append(1)
    if len(calls) == at:
        if delay:  # from another thread while the main thread is inside the call (a numba kernel)
            threading.Timer(delay, os.kill, (os.getpid(), sig)).start()
        else:
            os.kill(os.getpid(), sig)
    return real(*args, **kwargs)

setattr(mod, name, hooked)
from nlmeans.cli import main
main(sys.argv[1:], prog_name="nlmeans")
"""


def _run_signalled(args, sig, hook, *, at=1, delay=0.0):
    """Run the CLI in a child that gets ``sig`` when ``hook`` (module:function) is called the ``at``-th time
    (``delay`` seconds later, from a timer thread, when > 0)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOOK=hook, SIG=str(int(sig)), AT=str(at), DELAY=str(delay))
    return subprocess.run([sys.executable, "-c", _SIGNAL_CHILD, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=900,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _last_line(stderr):
    """The last line of stderr that is not a progress bar's."""
    return [ln for ln in stderr.splitlines() if ln.strip() and "%|" not in ln][-1]


@pytest.mark.parametrize("sig,code,message", [(signal.SIGTERM, 143, "Aborted! (terminated)"),
                                              (signal.SIGINT, 130, "Aborted!")])
def test_a_signal_during_strips_removes_the_partial_output(tmp_path, rng, sig, code, message):
    """The strip output's temporary (full size) exists from the start: a signal at the third strip removes it."""
    src = _strip_input(tmp_path, rng)
    out = tmp_path / "o.tif"
    res = _run_signalled(["denoise", src, out, *STRIP_ARGS], sig, "nlmeans.tiles:denoise_strip", at=3)
    assert res.returncode == code, res.stderr
    assert _last_line(res.stderr) == message and "Traceback" not in res.stderr
    assert not out.exists() and _no_partials(tmp_path) == []


@pytest.mark.parametrize("sig,code,message", [(signal.SIGINT, 130, "Aborted!"),
                                              (signal.SIGTERM, 143, "Aborted! (terminated)")])
def test_a_signal_during_a_long_in_memory_denoise(tmp_path, rng, sig, code, message):
    """A signal one second into a patchwise denoise: "Aborted!" and 130 (Ctrl-C) or 143 (SIGTERM). (When it
    lands inside a numba kernel, numba raises SystemError from the KeyboardInterrupt: that mapping is tested
    deterministically by test_system_error_from_an_interrupt_is_an_abort.)"""
    src = tmp_path / "in.png"
    write_image(src, (rng.random((384, 384)) * 255).astype(np.uint8))
    res = _run_signalled(["denoise", src, tmp_path / "o.png", "--method", "patchwise", "--search", "41",
                          "--sigma", "20"], sig, "nlmeans._denoise:denoise", delay=1.0)
    assert res.returncode == code, res.stderr
    assert res.stderr.strip() == message, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_system_error_from_an_interrupt_is_an_abort(tmp_path, png, monkeypatch):
    import nlmeans._denoise as nd  # the module (nlmeans.denoise is the function)

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("CPUDispatcher(...) returned a result with an exception set") from exc

    monkeypatch.setattr(nd, "denoise", interrupted)
    res = CliRunner().invoke(main, ["denoise", str(png), str(tmp_path / "o.png"), "--sigma", "10"])
    assert _one_line_error(res, 130) == "Aborted!"


def test_sigterm_to_a_batch_stops_its_workers_and_leaves_no_partial(tmp_path, rng):
    """SIGTERM to the batch's parent once the first output is done: the parent stops its workers (which
    remove their temporaries), exits 143 with one line, and what is done is complete."""
    import time

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(8):
        write_image(src / f"a{i}.png", (rng.random((384, 384)) * 255).astype(np.uint8))
    args = ["denoise", str(src), "--out-dir", str(out), "--jobs", "2", "--sigma", "20", "--method", "pixelwise",
            "--patch", "7", "--search", "21"]
    proc = subprocess.Popen([sys.executable, "-c", "from nlmeans.cli import main; main(prog_name='nlmeans')",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.monotonic() + 600
    while not (out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 143, err
    assert _last_line(err) == "Aborted! (terminated)" and "Traceback" not in err
    assert _no_partials(out) == []
    done = sorted(p.name for p in out.iterdir())
    assert 0 < len(done) < 8
    for name in done:
        assert read_image(out / name).data.shape == (384, 384)


# --- --jobs capped by cores and memory ---------------------------------------------------------------------


def test_jobs_are_capped_by_cores_and_memory(tmp_path, png):
    assert batch.cap_jobs(2, [png], cores=8, available=64 << 30) == (2, None)
    jobs, note = batch.cap_jobs(16, [png], cores=4, available=64 << 30)
    assert jobs == 4 and "capped to 4" in note and "4 cores" in note
    per_worker = batch.WORKER_BYTES + batch.BYTES_PER_VALUE * 24 * 20
    jobs, note = batch.cap_jobs(8, [png], cores=8, available=3 * per_worker + 1)
    assert jobs == 3 and "GB memory available" in note
    assert batch.cap_jobs(8, [png], cores=8, available=1)[0] == 1  # never below one
    big = tmp_path / "big.png"  # a header saying 20000 × 20000 RGB: 19 GB of working memory per worker
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (20000).to_bytes(4, "big") * 2 + b"\x08\x02")
    assert batch.cap_jobs(8, [png, big], cores=8, available=32 << 30)[0] == 1


def test_cli_notes_a_capped_jobs(tmp_path, png):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    jobs = cores + 5
    out = tmp_path / "out"
    write_image(tmp_path / "b.png", read_image(png).data)
    res = CliRunner().invoke(main, ["denoise", str(png), str(tmp_path / "b.png"), "--out-dir", str(out),
                                    "--jobs", str(jobs), "--sigma", "20", "--patch", "3", "--search", "5"])
    assert res.exit_code == 0, res.output
    assert f"--jobs {jobs} capped to" in res.output
