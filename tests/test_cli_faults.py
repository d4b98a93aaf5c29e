"""CLI faults: corrupt inputs, bad outputs, interruption, disk errors. Each: documented exit code, one line,
no traceback, input untouched, no partial output."""

import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from interrupt import run_cli_interrupted

from nlmeans.cli import main
from nlmeans.io import TEMP_PREFIX, write_image


@pytest.fixture
def good_png(tmp_path, camera):
    path = tmp_path / "in.png"
    write_image(path, camera[:64, :64])
    return path


def _one_line_error(res, code=1):
    assert res.exit_code == code, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert "Traceback" not in res.output
    return lines[0]


def _corrupt_files(tmp_path, camera):
    files = {}
    for suffix in (".png", ".tif", ".jpg"):
        whole = tmp_path / f"whole{suffix}"
        write_image(whole, camera[:64, :64])
        data = whole.read_bytes()
        files[f"truncated{suffix}"] = data[: len(data) // 2]
        garbled = bytearray(data)
        for i in range(20, len(garbled), 7):
            garbled[i] ^= 0x5A
        files[f"corrupt{suffix}"] = bytes(garbled)
        whole.unlink()
    files["text.png"] = b"this is not an image\n"
    files["empty.png"] = b""
    files["archive.xyz"] = b"PK\x03\x04 not an image"
    out = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        out[name] = tmp_path / name
    return out


def test_corrupt_and_unsupported_inputs(tmp_path, camera):
    runner = CliRunner()
    for name, path in _corrupt_files(tmp_path, camera).items():
        before = path.read_bytes()
        out = tmp_path / f"out-{name}.png"
        res = runner.invoke(main, ["denoise", str(path), str(out), "--sigma", "10"])
        line = _one_line_error(res)
        assert str(path.name) in line and "cannot read" in line, line
        assert not out.exists()
        assert path.read_bytes() == before, f"{name} was modified"
    assert not list(tmp_path.glob(TEMP_PREFIX + "*"))


def test_truncated_png_is_an_error(tmp_path, camera):
    path = _corrupt_files(tmp_path, camera)["truncated.png"]
    line = _one_line_error(CliRunner().invoke(main, ["denoise", str(path), str(tmp_path / "o.png")]))
    assert "cannot read" in line


def test_unwritable_output_folder(tmp_path, good_png):
    if os.geteuid() == 0:
        target = Path("/proc/nlmeans-cannot-write-here.png")  # not writable even for root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "o.png"
    res = CliRunner().invoke(main, ["denoise", str(good_png), str(target), "--sigma", "10"])
    line = _one_line_error(res)
    assert str(target.parent) in line
    assert not target.exists()


def test_output_folder_is_a_file(tmp_path, good_png):
    res = CliRunner().invoke(main, ["denoise", str(good_png), str(good_png / "o.png")])
    _one_line_error(res)


def test_unsupported_output_format(tmp_path, good_png):
    line = _one_line_error(CliRunner().invoke(main, ["denoise", str(good_png), str(tmp_path / "o.gif")]))
    assert "allowed" in line


def test_disk_error_on_write_leaves_no_partial_file(tmp_path, good_png, monkeypatch):
    import nlmeans.io.write as nio

    real = nio._encode

    def full_disk(tmp, suffix, arr, *rest):
        real(tmp, suffix, arr[: arr.shape[0] // 2], *rest)  # half the bytes reach the disk...
        raise OSError(28, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(nio, "_encode", full_disk)
    out = tmp_path / "o.png"
    line = _one_line_error(CliRunner().invoke(main, ["denoise", str(good_png), str(out), "--sigma", "10"]))
    assert "No space left on device" in line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_verbose_shows_the_traceback(tmp_path):
    args = ["denoise", str(tmp_path / "missing.png"), str(tmp_path / "o.png")]
    quiet = CliRunner().invoke(main, args)
    loud = CliRunner().invoke(main, ["--verbose", *args])
    assert quiet.exit_code == loud.exit_code == 1
    assert "Traceback" not in quiet.output and "Traceback" in loud.output
    assert "no such file" in loud.output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_write_leaves_no_output(tmp_path, good_png, sig):
    """The signal lands while the output is being written (half of it on disk): see tests/interrupt.py."""
    out = tmp_path / "o.png"
    before = good_png.read_bytes()
    res = run_cli_interrupted(["denoise", good_png, out, "--sigma", "10"], sig)
    assert not out.exists()
    assert good_png.read_bytes() == before
    partial = list(tmp_path.glob(TEMP_PREFIX + "*"))
    if sig == signal.SIGINT:
        assert res.returncode == 130, res.stderr
        assert res.stderr.strip() == "Aborted!"
        assert partial == []  # cleaned up on the way out
    else:
        assert res.returncode == -signal.SIGKILL, res.stderr  # nothing can clean up after SIGKILL...
        assert len(partial) == 1 and partial[0].stat().st_size > 0  # ...but only a hidden temp file remains
