"""'-' as INPUT and OUTPUT: standard input and output through real subprocess pipes (issue 19, item 5)."""

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from nlmeans.io import read_image

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--sigma", "10", "--patch", "3", "--search", "5"]
RNG = np.random.default_rng(7)


def _env():
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""))


def _cli(*args, stdin=None, stdout=subprocess.PIPE, cwd=None):
    return subprocess.run([sys.executable, "-m", "nlmeans", *map(str, args)], input=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, env=_env(), cwd=cwd, timeout=600)


@pytest.fixture
def noisy_png(tmp_path):
    data = RNG.integers(0, 256, (24, 28), dtype=np.uint8)
    PILImage.fromarray(data).save(tmp_path / "in.png")
    return tmp_path / "in.png"


def test_stdin_to_stdout_equals_the_file_route(tmp_path, noisy_png):
    res = _cli("denoise", "-", "-", *FAST, stdin=noisy_png.read_bytes())
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(b"\x89PNG\r\n\x1a\n")  # the image only: the summary went to stderr
    assert b"-> -" in res.stderr
    files = _cli("denoise", noisy_png, tmp_path / "out.png", *FAST)
    assert files.returncode == 0, files.stderr
    with PILImage.open(io.BytesIO(res.stdout)) as piped:
        np.testing.assert_array_equal(np.asarray(piped), read_image(tmp_path / "out.png").data)


def test_noise_piped_into_denoise(tmp_path, noisy_png):
    """``nlmeans noise in.png - | nlmeans denoise - out.png``: two processes joined by an OS pipe."""
    cmd = [sys.executable, "-m", "nlmeans"]
    first = subprocess.Popen([*cmd, "noise", str(noisy_png), "-", "--sigma", "20", "--seed", "3"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    second = subprocess.Popen([*cmd, "denoise", "-", str(tmp_path / "piped.png"), *FAST], stdin=first.stdout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    first.stdout.close()  # the second process holds the read end now
    out2, err2 = second.communicate(timeout=600)
    first.wait(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, (first.stderr.read(), err2)
    assert _cli("noise", noisy_png, tmp_path / "noisy.png", "--sigma", "20", "--seed", "3").returncode == 0
    assert _cli("denoise", tmp_path / "noisy.png", tmp_path / "files.png", *FAST).returncode == 0
    np.testing.assert_array_equal(read_image(tmp_path / "piped.png").data, read_image(tmp_path / "files.png").data)


def test_tiff_through_the_pipe_keeps_format_and_metadata(tmp_path):
    data = RNG.integers(0, 65536, (20, 22), dtype=np.uint16)
    buf = io.BytesIO()
    tifffile.imwrite(buf, data, photometric="minisblack", resolution=((600, 1), (600, 1)), resolutionunit="INCH",
                     description="through a pipe")
    res = _cli("denoise", "-", "-", *FAST, stdin=buf.getvalue())
    assert res.returncode == 0, res.stderr
    with tifffile.TiffFile(io.BytesIO(res.stdout)) as tif:  # the input's format, sniffed from its bytes
        page = tif.pages.first
        assert page.dtype == np.uint16 and page.shape == (20, 22)
        assert page.description == "through a pipe" and page.tags.valueof(282) == (600, 1)


@pytest.mark.parametrize("fmt,magic", [("jpeg", b"\xff\xd8\xff"), ("tiff", b"II*\x00"), ("bmp", b"BM")])
def test_format_option_for_stdout(noisy_png, fmt, magic):
    res = _cli("denoise", noisy_png, "-", "--format", fmt, *FAST)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(magic)
    with PILImage.open(io.BytesIO(res.stdout)) as im:
        assert im.size == (28, 24)


@pytest.mark.parametrize("data,match", [(b"", "no data"), (b"GIF89a not ours", "not a PNG, TIFF, JPEG or BMP")])
def test_bad_stdin_is_one_line(data, match):
    res = _cli("denoise", "-", "-", *FAST, stdin=data)
    assert res.returncode == 1 and res.stdout == b""
    lines = res.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in lines[0]


def test_encoding_error_leaves_nothing_on_stdout(tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", RNG.random((16, 16)).astype(np.float32))
    res = _cli("denoise", tmp_path / "f.tif", "-", "--format", "png", *FAST)  # PNG holds no floats
    assert res.returncode == 1 and res.stdout == b""
    assert "float" in res.stderr.decode()


def test_stdout_terminal_is_refused(noisy_png):
    leader, follower = pty.openpty()
    try:
        res = _cli("denoise", noisy_png, "-", *FAST, stdout=follower)
        os.set_blocking(leader, False)
        try:
            written = os.read(leader, 4096)
        except BlockingIOError:
            written = b""
    finally:
        os.close(leader)
        os.close(follower)
    assert res.returncode == 2
    assert written == b""
    err = res.stderr.decode()
    assert "terminal" in err and "Traceback" not in err


def test_dash_and_format_misuse_are_usage_errors(tmp_path, noisy_png):
    res = _cli("denoise", noisy_png, tmp_path / "o.png", "--format", "png", *FAST)
    assert res.returncode == 2 and b"--format" in res.stderr and not (tmp_path / "o.png").exists()
    res = _cli("denoise", "-", tmp_path / "o.tif", "--volume", stdin=noisy_png.read_bytes())
    assert res.returncode == 2 and b"'-'" in res.stderr
    res = _cli("denoise", "-", "--out-dir", tmp_path / "d", stdin=noisy_png.read_bytes())
    assert res.returncode == 2 and b"'-'" in res.stderr


def test_stdin_output_file_obeys_the_output_rules(tmp_path, noisy_png):
    (tmp_path / "exists.png").write_bytes(b"keep me")
    res = _cli("denoise", "-", tmp_path / "exists.png", *FAST, stdin=noisy_png.read_bytes())
    assert res.returncode == 1 and b"--overwrite" in res.stderr
    assert (tmp_path / "exists.png").read_bytes() == b"keep me"


@pytest.mark.parametrize("suffix,magic", [(".tiff", b"II*\x00"), (".jpeg", b"\xff\xd8\xff"), (".png", b"\x89PNG")])
def test_stdout_defaults_to_the_input_files_format(tmp_path, suffix, magic):
    PILImage.fromarray(RNG.integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp_path / f"in{suffix}")
    res = _cli("denoise", tmp_path / f"in{suffix}", "-", *FAST)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(magic)


def test_closed_stdout_is_one_line_error(noisy_png):
    """The reader went away (``| head -c 0``): one line on stderr, exit 1, no Python noise at exit."""
    proc = subprocess.Popen([sys.executable, "-m", "nlmeans", "noise", str(noisy_png), "-", "--sigma", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    proc.stdout.close()  # closed before the image is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 1
    assert err.strip().splitlines() == ["Error: standard output was closed before the whole image was written "
                                        "(broken pipe)"]
