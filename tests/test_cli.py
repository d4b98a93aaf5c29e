import numpy as np
import pytest
from click.testing import CliRunner

import nlmeans
from nlmeans.cli import main
from nlmeans.io import read_image, write_image


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def noisy_png(tmp_path, camera):
    noisy = nlmeans.add_noise(camera[:96, :96], 20 / 255, seed=0)
    path = tmp_path / "noisy.png"
    write_image(path, np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8))
    return path


def test_denoise_round_trip_improves_psnr(runner, tmp_path, noisy_png, camera):
    out = tmp_path / "out.png"
    res = runner.invoke(main, ["denoise", str(noisy_png), str(out), "--sigma", "20"])
    assert res.exit_code == 0, res.output
    assert "σ = 20.00/255 (given)" in res.output and "patch 5, search 31, nlbayes" in res.output
    den = read_image(out).data
    assert den.dtype == np.uint8 and den.shape == (96, 96)
    clean = camera[:96, :96]
    assert nlmeans.psnr(clean, den) > nlmeans.psnr(clean, read_image(noisy_png).data) + 3


def test_denoise_estimates_sigma_and_prints_it(runner, tmp_path, noisy_png):
    res = runner.invoke(main, ["denoise", str(noisy_png), str(tmp_path / "o.png")])
    assert res.exit_code == 0 and "(estimated)" in res.output


def test_16_bit_and_alpha_round_trip(runner, tmp_path, rng):
    data = (rng.random((40, 50, 3)) * 65535).astype(np.uint16)
    alpha = rng.integers(0, 65535, (40, 50)).astype(np.uint16)
    from nlmeans.io import Image

    write_image(tmp_path / "in.png", Image(data, alpha))
    res = runner.invoke(main, ["denoise", str(tmp_path / "in.png"), str(tmp_path / "out.png"),
                               "--sigma", "10", "--patch", "3", "--search", "7"])
    assert res.exit_code == 0, res.output
    back = read_image(tmp_path / "out.png")
    assert back.data.dtype == np.uint16 and back.data.shape == data.shape
    np.testing.assert_array_equal(back.alpha, alpha)


def test_sigma_is_on_the_255_scale_for_16_bit_files(runner, tmp_path, rng):
    data = (rng.random((40, 40)) * 65535).astype(np.uint16)
    write_image(tmp_path / "in.png", data)
    runner.invoke(main, ["denoise", str(tmp_path / "in.png"), str(tmp_path / "a.png"), "--sigma", "10",
                         "--h", "5", "--patch", "3", "--search", "5"])
    expect = nlmeans.denoise(data, 10 / 255, h=5 / 255, patch_size=3, search_size=5)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png").data, expect)


def test_noise_command(runner, tmp_path, noisy_png):
    out = tmp_path / "n.tif"
    res = runner.invoke(main, ["noise", str(noisy_png), str(out), "--sigma", "30", "--seed", "1", "--float"])
    assert res.exit_code == 0, res.output
    arr = read_image(out).data
    src = read_image(noisy_png).data / 255.0
    assert arr.dtype == np.float32 and abs((arr - src).std() * 255 - 30) < 1.5
    res = runner.invoke(main, ["noise", str(noisy_png), str(tmp_path / "n.png"), "--sigma", "30"])
    assert res.exit_code == 0 and read_image(tmp_path / "n.png").data.dtype == np.uint8


def test_version(runner):
    res = runner.invoke(main, ["--version"])
    assert res.exit_code == 0 and "nlmeans" in res.output


@pytest.mark.parametrize(
    "args,code,match",
    [
        (["--patch", "4"], 2, "odd"),
        (["--sigma", "-3"], 2, "sigma"),
        (["--h", "0"], 2, "--h"),
        (["--method", "magic"], 2, "method"),  # a usage error: --method is a choice
        (["--search", "999"], 1, "larger than"),
    ],
)
def test_bad_options(runner, tmp_path, noisy_png, args, code, match):
    res = runner.invoke(main, ["denoise", str(noisy_png), str(tmp_path / "o.png"), *args])
    assert res.exit_code == code
    assert match in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "o.png").exists()


def test_runtime_errors_are_one_line_exit_1(runner, tmp_path, noisy_png):
    (tmp_path / "fake.png").write_text("hello")
    cases = [
        [str(tmp_path / "missing.png"), str(tmp_path / "o.png")],
        [str(tmp_path / "fake.png"), str(tmp_path / "o.png")],
        [str(noisy_png), str(tmp_path / "nodir" / "o.png")],
        [str(noisy_png), str(tmp_path / "o.xyz")],
    ]
    for args in cases:
        res = runner.invoke(main, ["denoise", *args])
        assert res.exit_code == 1, (args, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error:"), res.output


def test_never_overwrites_the_input_and_refuses_existing_output(runner, tmp_path, noisy_png):
    before = noisy_png.read_bytes()
    res = runner.invoke(main, ["denoise", str(noisy_png), str(noisy_png), "--overwrite"])
    assert res.exit_code == 1 and "input" in res.output
    assert noisy_png.read_bytes() == before
    out = tmp_path / "o.png"
    out.write_bytes(b"keep me")
    res = runner.invoke(main, ["denoise", str(noisy_png), str(out)])
    assert res.exit_code == 1 and "--overwrite" in res.output and out.read_bytes() == b"keep me"
    res = runner.invoke(main, ["denoise", str(noisy_png), str(out), "--overwrite", "--sigma", "20"])
    assert res.exit_code == 0 and out.read_bytes() != b"keep me"


def test_guide_option(runner, tmp_path, noisy_png, camera):
    guide = tmp_path / "guide.png"
    write_image(guide, camera[:96, :96])
    res = runner.invoke(main, ["denoise", str(noisy_png), str(tmp_path / "g.png"), "--sigma", "20",
                               "--guide", str(guide), "--guide-sigma", "0"])
    assert res.exit_code == 0, res.output
    write_image(tmp_path / "small.png", camera[:50, :50])
    res = runner.invoke(main, ["denoise", str(noisy_png), str(tmp_path / "h.png"), "--sigma", "20",
                               "--guide", str(tmp_path / "small.png")])
    assert res.exit_code == 1 and "same" in res.output


def test_help_states_units(runner):
    res = runner.invoke(main, ["denoise", "--help"])
    assert "0–255 scale" in res.output


def test_demo_and_eval_work_from_any_folder(runner, tmp_path, monkeypatch):
    """Without IMAGE(S) they use scikit-image's bundled samples, not a data/ folder of the checkout."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(main, ["demo", "--sigma", "20"])
    assert res.exit_code == 0, res.output
    assert "camera.png (512×512 gray uint8)" in res.output and "PSNR denoised" in res.output
    res = runner.invoke(main, ["eval", "--methods", "gaussian", "--sigma", "20", "--crop", "32"])
    assert res.exit_code == 0, res.output
    assert all(name in res.output for name in ("camera", "astronaut", "brick"))


def test_python_m_nlmeans_and_verbose_after_the_subcommand(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "nlmeans", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "Usage: nlmeans" in res.stdout
    res = subprocess.run([sys.executable, "-m", "nlmeans", "denoise", str(tmp_path / "missing.png"),
                          str(tmp_path / "o.png"), "-v"], capture_output=True, text=True)
    assert res.returncode == 1 and "Traceback" in res.stderr and "no such file" in res.stderr
