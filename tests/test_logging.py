"""The library's messages go to ``logging.getLogger("nlmeans")`` (silent by default); ``-v`` shows its INFO."""

import logging
import math

import numpy as np
import pytest
from click.testing import CliRunner

import nlmeans
from nlmeans.cli import main

LOGGER = "nlmeans"


def _messages(caplog, level=logging.DEBUG):
    return [r.getMessage() for r in caplog.records if r.name.startswith(LOGGER) and r.levelno >= level]


def _sigma_records(caplog):
    return [r for r in caplog.records if r.getMessage().startswith("sigma estimated")]


@pytest.fixture
def noisy(rng):
    clean = np.tile(np.linspace(0.2, 0.8, 48), (48, 1))
    return nlmeans.add_noise(clean, 0.08, seed=3).astype(np.float32)


def test_library_logger_has_a_null_handler_and_prints_nothing(noisy, capsys):
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger(LOGGER).handlers)
    nlmeans.denoise(noisy, h=0.05, patch_size=3, search_size=7)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_estimated_sigma_is_logged_with_the_value_used(noisy, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    _, used = nlmeans.denoise(noisy, method="pixelwise", patch_size=3, search_size=7, return_settings=True)
    (record,) = _sigma_records(caplog)
    assert record.levelno == logging.INFO and record.name == "nlmeans.presets"
    assert used.sigma_estimated and math.isclose(record.args[0], used.sigma)
    assert math.isclose(record.args[1], used.sigma_255)


def test_given_sigma_logs_no_estimate(noisy, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    nlmeans.denoise(noisy, 0.08, method="pixelwise", patch_size=3, search_size=7)
    assert not _sigma_records(caplog)
    # the parameters chosen are at DEBUG
    assert any(m.startswith("NL-means parameters: patch 3") for m in _messages(caplog))


def test_info_level_hides_debug(noisy, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    nlmeans.denoise(noisy, 0.08, method="pixelwise", patch_size=3, search_size=7)
    assert not [r for r in caplog.records if r.levelno < logging.INFO]


def test_method_fallback_is_logged(noisy, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    _, used = nlmeans.denoise(noisy, 0.08, h=0.05, patch_size=3, search_size=7, return_settings=True)
    assert used.method == "pixelwise"
    assert any(m.startswith("method: pixelwise") for m in _messages(caplog, logging.INFO))
    caplog.clear()
    nlmeans.denoise(noisy, 0.08, patch_size=3, search_size=7)  # NL-Bayes, the default: no fallback
    assert not any(m.startswith("method:") for m in _messages(caplog))


def test_strips_are_logged(noisy, caplog):
    caplog.set_level(logging.DEBUG, logger="nlmeans.tiles")
    nlmeans.denoise_tiled(noisy, 0.08, h=0.05, patch_size=3, search_size=7, tile_rows=16)
    (message,) = [m for m in _messages(caplog) if "strip(s)" in m]
    n = int(message.split()[0])
    rows = int(message.split("up to ")[1].split()[0])
    assert n == math.ceil(noisy.shape[0] / rows) and rows >= 16


def test_sure_choice_is_logged_with_the_returned_h(noisy, caplog):
    from nlmeans.sure import choose_h

    caplog.set_level(logging.INFO, logger=LOGGER)
    h, patch, _ = choose_h(noisy, 0.08, patch_size=3, search_size=7, n_evals=3)
    (record,) = [r for r in caplog.records if r.getMessage().startswith("h chosen by SURE")]
    assert math.isclose(record.args[0], h) and record.args[2] == patch


def test_volume_sigma_estimate_is_logged(caplog):
    vol = nlmeans.add_noise(np.full((6, 24, 24), 0.5), 0.05, seed=1)
    caplog.set_level(logging.INFO, logger=LOGGER)
    _, used = nlmeans.denoise_volume(vol, method="pixelwise", patch_size=3, search_size=3, return_settings=True)
    (record,) = [r for r in caplog.records if r.getMessage().startswith("sigma estimated on")]
    assert math.isclose(record.args[1], used.sigma)


def test_real_warnings_stay_warnings():
    from nlmeans.eval.experiment import _sigma_list

    with pytest.warns(UserWarning, match="0–255 scale"):
        _sigma_list([0.1])


# ---------------------------------------------------------------------------------------------------------------
# the command line


@pytest.fixture
def noisy_png(tmp_path, noisy):
    import imageio.v3 as iio

    path = tmp_path / "noisy.png"
    iio.imwrite(path, (np.clip(noisy, 0, 1) * 255).round().astype(np.uint8))
    return path


@pytest.mark.parametrize("where", ["after", "before", "none"])
def test_cli_verbose_shows_the_log_on_stderr(noisy_png, tmp_path, where):
    out = tmp_path / "out.png"
    args = ["denoise", str(noisy_png), str(out), "--patch", "3", "--search", "7"]
    args = {"after": args + ["-v"], "before": ["--verbose"] + args, "none": args}[where]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("info: sigma estimated")]
    if where == "none":
        assert not lines and "debug:" not in res.stderr
    else:
        # once: the warm-up on a crop (compilation) says nothing, the real call's estimate is shown
        assert len(lines) == 1, res.stderr
        sigma_255 = float(lines[0].split("(")[1].split()[0])
        assert f"σ = {sigma_255:.2f}/255 (estimated)" in res.stdout
        assert "debug:" not in res.stderr  # DEBUG (every SURE probe's parameters, ...) is for Python users
    logger = logging.getLogger(LOGGER)
    assert logger.level == logging.NOTSET  # the command line leaves the logger as it found it
    assert [type(h) for h in logger.handlers] == [logging.NullHandler]
