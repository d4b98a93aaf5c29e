"""Batch mode: many files, one bad file does not stop the batch, and an interrupted batch resumes."""

import signal

import numpy as np
import pytest
from click.testing import CliRunner
from interrupt import run_cli_interrupted

import nlmeans
from nlmeans import batch
from nlmeans.cli import main
from nlmeans.io import TEMP_PREFIX, read_image, write_image


def _noisy(rng, shape):
    clean = np.tile(np.linspace(0.2, 0.8, shape[1]), (shape[0], 1))
    return np.clip(np.rint((clean + rng.normal(0, 0.08, shape)) * 255), 0, 255).astype(np.uint8)


def _expected(path):
    return nlmeans.denoise(read_image(path).data, 20 / 255, patch_size=3, search_size=7)


ARGS = ["--sigma", "20", "--patch", "3", "--search", "7"]


@pytest.fixture
def inputs(tmp_path, rng):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write_image(src / f"img{i}.png", _noisy(rng, (40 + 8 * i, 50)))
    (src / "broken.png").write_bytes(b"not a png")
    return src


def test_a_bad_file_does_not_stop_the_batch_and_a_rerun_skips_finished_files(tmp_path, inputs):
    out = tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(main, ["denoise", str(inputs), "--out-dir", str(out), *ARGS])
    assert res.exit_code == 1
    assert "3 denoised, 0 skipped (already done), 1 failed" in res.output
    assert "broken.png" in res.output and "cannot read" in res.output
    for i in range(3):
        assert np.array_equal(read_image(out / f"img{i}.png").data, _expected(inputs / f"img{i}.png"))
    assert not (out / "broken.png").exists()
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    res = runner.invoke(main, ["denoise", str(inputs), "--out-dir", str(out), *ARGS])
    assert "0 denoised, 3 skipped (already done), 1 failed" in res.output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_files_folders_and_globs_and_missing_items(tmp_path, inputs):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["denoise", str(inputs / "img0.png"), str(inputs / "img[12].png"),
                                    str(tmp_path / "nothing*.png"), "--out-dir", str(out), *ARGS])
    assert "3 denoised" in res.output and "1 failed" in res.output and "nothing*.png" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png", "img2.png"]


def test_same_names_from_two_folders_are_refused(tmp_path, rng):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        write_image(tmp_path / d / "x.png", _noisy(rng, (20, 20)))
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "a"), str(tmp_path / "b"),
                                    "--out-dir", str(tmp_path / "out"), *ARGS])
    assert res.exit_code == 1 and "same name" in res.output


def test_parallel_processes_give_the_same_files(tmp_path, inputs):
    (inputs / "broken.png").unlink()
    res = CliRunner().invoke(main, ["denoise", str(inputs), "--out-dir", str(tmp_path / "out"), "--jobs", "2",
                                    *ARGS])
    assert res.exit_code == 0, res.output
    for i in range(3):
        assert np.array_equal(read_image(tmp_path / "out" / f"img{i}.png").data,
                              _expected(inputs / f"img{i}.png"))


def test_a_killed_batch_resumes(tmp_path, rng):
    """SIGKILL the CLI in the middle of writing its second output (deterministically: the child kills itself
    there, see tests/interrupt.py); the first output is complete, a partial temporary is left. The rerun
    removes the temporary, skips the finished file without touching it and denoises the rest."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        write_image(src / f"a{i}.png", _noisy(rng, (48, 40 + 4 * i)))
    args = ["denoise", src, "--out-dir", out, *ARGS]
    res = run_cli_interrupted(args, signal.SIGKILL, at_write=2)
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(TEMP_PREFIX)) == ["a0.png"]
    partial = list(out.glob(TEMP_PREFIX + "*"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0  # the half-written second output
    assert np.array_equal(read_image(out / "a0.png").data, _expected(src / "a0.png"))
    stamp = (out / "a0.png").stat().st_mtime_ns

    res = CliRunner().invoke(main, list(map(str, args)))
    assert res.exit_code == 0, res.output
    assert "removed 1 partial file(s)" in res.output
    assert "2 denoised, 1 skipped (already done), 0 failed" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["a0.png", "a1.png", "a2.png"]
    assert (out / "a0.png").stat().st_mtime_ns == stamp  # skipped, not redone
    for p in src.iterdir():
        assert np.array_equal(read_image(out / p.name).data, _expected(p))


def test_batch_on_a_local_cluster(tmp_path, inputs):
    distributed = pytest.importorskip("dask.distributed")
    (inputs / "broken.png").unlink()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster:
        res = CliRunner().invoke(main, ["denoise", str(inputs), "--out-dir", str(tmp_path / "out"),
                                        "--scheduler", cluster.scheduler_address, *ARGS])
    assert res.exit_code == 0, res.output
    for i in range(3):
        assert np.array_equal(read_image(tmp_path / "out" / f"img{i}.png").data,
                              _expected(inputs / f"img{i}.png"))


def test_expand_inputs_skips_hidden_and_non_images(tmp_path, rng):
    write_image(tmp_path / "a.png", _noisy(rng, (10, 10)))
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / (TEMP_PREFIX + "x.png")).write_bytes(b"")
    files, missing = batch.expand_inputs([tmp_path, tmp_path / "a.png"])
    assert files == [tmp_path / "a.png"] and missing == []


def test_batch_of_volumes(tmp_path, rng):
    import tifffile

    from nlmeans.volume import denoise_volume

    src = tmp_path / "in"
    src.mkdir()
    stacks = {f"v{i}.tif": (rng.random((4, 16, 18)) * 255).astype(np.uint8) for i in range(2)}
    for name, stack in stacks.items():
        tifffile.imwrite(src / name, stack, photometric="minisblack")
    res = CliRunner().invoke(main, ["denoise", str(src), "--out-dir", str(tmp_path / "out"), "--volume",
                                    "--sigma", "20", "--patch", "3", "--search", "3"])
    assert res.exit_code == 0, res.output
    for name, stack in stacks.items():
        ref = denoise_volume(stack, 20 / 255, patch_size=3, search_size=3)
        assert np.array_equal(tifffile.imread(tmp_path / "out" / name), ref)


def test_batch_with_h_auto_matches_the_single_file_call(tmp_path, rng):

    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", _noisy(rng, (32, 36)))
    res = CliRunner().invoke(main, ["denoise", str(src), "--out-dir", str(tmp_path / "out"), "--sigma", "20",
                                    "--h", "auto", "--patch", "3", "--search", "7"])
    assert res.exit_code == 0, res.output
    ref, used = nlmeans.denoise(read_image(src / "a.png").data, 20 / 255, h="auto", patch_size=3, search_size=7,
                                return_settings=True)
    assert used.sure_risk is not None
    assert np.array_equal(read_image(tmp_path / "out" / "a.png").data, ref)


@pytest.mark.parametrize("extra,batch_mode", [
    (["--volume"], False), (["--video"], False), (["--tile-rows", "32"], False),
    (["--volume"], True), (["--video"], True),  # --out-dir has no strip mode
])
def test_h_auto_is_a_usage_error_where_it_is_not_supported(tmp_path, rng, extra, batch_mode):
    import tifffile

    tifffile.imwrite(tmp_path / "in.tif", _noisy(rng, (32, 32)))
    where = ["--out-dir", str(tmp_path / "out")] if batch_mode else [str(tmp_path / "o.tif")]
    res = CliRunner().invoke(main, ["denoise", str(tmp_path / "in.tif"), *where, "--h", "auto", *extra])
    assert res.exit_code == 2, res.output
    assert "--h auto is not supported" in res.output and "unsupported operand" not in res.output
