"""`nlmeans eval --noise` and `nlmeans.evaluate(noise=...)`: every method inside the same variance-stabilising
transform and exact unbiased inverse, scored against the clean image."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import nlmeans
from nlmeans.cli import main
from nlmeans.eval.experiment import center_crop, format_table
from nlmeans.eval.registry import REGISTRY
from nlmeans.io import write_image

BASELINES = ["gaussian", "tv", "wiener"]


@pytest.fixture(scope="module")
def cam(camera):
    return center_crop(camera, 64)


@pytest.fixture(scope="module")
def poisson_records(cam):
    return nlmeans.evaluate({"cam": cam}, noise="poisson", peaks=[2, 30], methods=["nlmeans", *BASELINES])


def _by(records, **want):
    return [r for r in records if all(r[k] == v for k, v in want.items())]


def _anscombe(counts):
    return 2.0 * np.sqrt(counts + 3.0 / 8.0)


def _unbiased_inverse(d):
    """Mäkitalo & Foi (2011), closed form of the exact unbiased inverse of Anscombe's transform, written out
    here from the paper (not imported from nlmeans); 0 at or below the transform of a zero count."""
    c = math.sqrt(1.5)
    x = d**2 / 4 + c / (4 * d) - 11 / (8 * d**2) + 5 * c / (8 * d**3) - 1 / 8
    return np.where(d > 2 * math.sqrt(3 / 8), np.maximum(x, 0.0), 0.0)


def test_poisson_records_name_the_model_and_every_baseline_runs(poisson_records):
    assert {r["noise"] for r in poisson_records} == {"poisson"}
    assert {r["peak"] for r in poisson_records} == {2.0, 30.0}
    assert all(r["sigma"] is None and r["snr"] is None for r in poisson_records)
    for peak in (2.0, 30.0):
        rows = {r["method"]: r["psnr"] for r in _by(poisson_records, peak=peak)}
        assert set(rows) == {"noisy", "nlmeans", *BASELINES}
        # the baselines really ran (different methods give different results) and all denoise
        assert len({round(v, 6) for v in rows.values()}) == len(rows)
        assert min(rows[m] for m in BASELINES) > rows["noisy"] + 3
    low = {r["method"]: r["psnr"] for r in _by(poisson_records, peak=2.0)}
    assert low["nlmeans"] > low["noisy"] + 8  # NL-Bayes inside the GAT at 2 counts per white pixel
    high = {r["method"]: r["psnr"] for r in _by(poisson_records, peak=30.0)}
    assert high["noisy"] > low["noisy"] + 8  # 15× more photons: a much cleaner input


def test_a_poisson_record_is_the_method_inside_the_anscombe_transform_and_its_unbiased_inverse(cam,
                                                                                             poisson_records):
    peak = 2.0
    clean = cam.astype(np.float64) / 255
    counts = nlmeans.add_noise(clean * peak, noise="poisson", seed=0)
    t = _anscombe(counts)
    lo, span = t.min(), t.max() - t.min()
    rec = _by(poisson_records, peak=peak, method="tv")[0]
    assert rec["params"]["weight"] == pytest.approx(0.8 / span)  # tv's rule at σ = 1 on the stabilised scale
    out = REGISTRY["tv"](((t - lo) / span).astype(np.float32), 1 / span)
    est = _unbiased_inverse(out.astype(np.float64) * span + lo) / peak
    assert rec["psnr"] == pytest.approx(nlmeans.psnr(clean, est, data_range=1.0), abs=1e-3)
    # the algebraic inverse (D²/4 − 3/8) is biased at low counts: the record is not that one
    biased = np.maximum((out * span + lo) ** 2 / 4 - 3 / 8, 0) / peak
    assert abs(rec["psnr"] - nlmeans.psnr(clean, biased, data_range=1.0)) > 0.1
    noisy = _by(poisson_records, peak=peak, method="noisy")[0]
    assert noisy["psnr"] == pytest.approx(nlmeans.psnr(clean, counts / peak, data_range=1.0), abs=1e-3)


def test_the_report_says_the_model_and_its_parameters(poisson_records):
    text = format_table(poisson_records)
    assert "Poisson noise, peak 2 counts" in text and "Poisson noise, peak 30 counts" in text
    assert "exact unbiased inverse" in text and "σ = 1" in text
    assert text.index("peak 2 counts") < text.index("peak 30 counts")


def test_rician_by_snr_uses_the_foreground_mean_and_beats_the_noisy_image(cam):
    records = nlmeans.evaluate({"cam": cam}, noise="rician", snrs=[4], methods=["nlmeans", "wavelet"])
    clean = cam.astype(np.float64) / 255
    sigma = clean[clean > 0.05 * clean.max()].mean() / 4
    assert {r["noise"] for r in records} == {"rician"} and {r["snr"] for r in records} == {4.0}
    assert all(r["sigma"] == pytest.approx(sigma * 255) for r in records)
    noisy = nlmeans.add_noise(clean, sigma, noise="rician", seed=0)
    rows = {r["method"]: r["psnr"] for r in records}
    assert rows["noisy"] == pytest.approx(nlmeans.psnr(clean, noisy, data_range=1.0), abs=1e-3)
    assert rows["nlmeans"] > rows["noisy"] + 4 and rows["wavelet"] > rows["noisy"] + 1
    assert "Rician noise, SNR 4" in format_table(records)
    by_sigma = nlmeans.evaluate({"cam": cam}, 20, noise="rician", methods=["wavelet"])
    assert {r["sigma"] for r in by_sigma} == {20.0} and "Rician noise, σ = 20/255" in format_table(by_sigma)


def test_poisson_gaussian_runs_every_peak_and_read_noise(cam):
    records = nlmeans.evaluate({"cam": cam}, [5, 20], noise="poisson-gaussian", peaks=[4, 16], methods=["tv"])
    assert sorted({(r["peak"], r["sigma"]) for r in records}) == [(4, 5), (4, 20), (16, 5), (16, 20)]
    noisy = {(r["peak"], r["sigma"]): r["psnr"] for r in records if r["method"] == "noisy"}
    assert noisy[(16, 5)] > noisy[(16, 20)] and noisy[(16, 5)] > noisy[(4, 5)]  # more read noise, fewer counts
    assert "read noise σ = 20/255" in format_table(records)


def test_gaussian_records_say_gaussian(cam):
    records = nlmeans.evaluate({"cam": cam}, [20], methods=["tv"])
    assert all(r["noise"] == "gaussian" and r["peak"] is None and r["snr"] is None for r in records)
    assert format_table(records).startswith("σ = 20/255")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"noise": "gaussian", "sigmas": [20], "peaks": [4]}, "peaks is not a parameter of noise='gaussian'"),
        ({"noise": "gaussian", "snrs": [4]}, "snrs is not a parameter"),
        ({"noise": "gaussian"}, "noise='gaussian' needs sigmas"),
        ({"noise": "poisson"}, "noise='poisson' needs peaks"),
        ({"noise": "poisson", "peaks": [0]}, "peaks must be > 0"),
        ({"noise": "poisson", "peaks": [4, -1]}, "peaks must be > 0"),
        ({"noise": "poisson", "peaks": [math.inf]}, "peaks"),
        ({"noise": "poisson", "peaks": []}, "peaks is empty"),
        ({"noise": "poisson", "peaks": [4], "sigmas": [5]}, "sigmas is not a parameter of noise='poisson'"),
        ({"noise": "poisson-gaussian", "peaks": [4]}, "noise='poisson-gaussian' needs sigmas"),
        ({"noise": "rician"}, "either sigmas"),
        ({"noise": "rician", "sigmas": [5], "snrs": [4]}, "not both"),
        ({"noise": "rician", "snrs": [0]}, "snrs must be > 0"),
        ({"noise": "rician", "sigmas": [5], "peaks": [4]}, "peaks is not a parameter of noise='rician'"),
        ({"noise": "speckle", "sigmas": [5]}, "allowed: 'gaussian', 'poisson'"),
    ],
)
def test_bad_combinations_are_clear_errors(cam, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nlmeans.evaluate({"cam": cam}, methods=["gaussian"], **kwargs)


def test_poisson_on_negative_values_is_an_error():
    img = np.linspace(-0.5, 1, 64 * 64).reshape(64, 64)
    with pytest.raises(ValueError, match="needs a clean image >= 0"):
        nlmeans.evaluate({"ramp": img}, noise="poisson", peaks=[4], methods=["gaussian"])


# ---------------------------------------------------------------------------------------------------------------
# the command line


@pytest.fixture(scope="module")
def cam_file(cam, tmp_path_factory):
    path = tmp_path_factory.mktemp("eval_noise") / "cam.png"
    write_image(path, cam)
    return path


def test_cli_poisson_writes_the_model_into_json_and_csv(cam_file, tmp_path):
    js, cs = tmp_path / "r.json", tmp_path / "r.csv"
    res = CliRunner().invoke(main, ["eval", str(cam_file), "--noise", "poisson", "--peak", "2,30", "--methods",
                                    "nlmeans,gaussian,tv", "--json", str(js), "--csv", str(cs)])
    assert res.exit_code == 0, res.output
    assert "Poisson noise, peak 2 counts" in res.output and "peak 30 counts" in res.output
    records = json.loads(js.read_text())
    assert len(records) == 2 * 4 and {r["noise"] for r in records} == {"poisson"}
    rows = {(r["peak"], r["method"]): r["psnr"] for r in records}
    assert rows[(2, "nlmeans")] > rows[(2, "noisy")] + 8
    assert len({rows[(2, m)] for m in ("nlmeans", "gaussian", "tv", "noisy")}) == 4
    with open(cs, newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert {row["noise"] for row in table} == {"poisson"} and {row["peak"] for row in table} == {"2.0", "30.0"}
    assert {row["sigma"] for row in table} == {""}  # the Poisson model has no σ


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--peak", "4"], "--peak is not a parameter of --noise gaussian"),
        (["--snr", "4"], "--snr is not a parameter of --noise gaussian"),
        (["--noise", "poisson"], "--noise poisson needs --peak"),
        (["--noise", "poisson", "--peak", "0"], "'--peak': needs one or more positive numbers"),
        (["--noise", "poisson", "--peak", "4,x"], "'--peak': must be comma-separated numbers"),
        (["--noise", "poisson", "--peak", "4", "--sigma", "5"], "--sigma is not a parameter of --noise poisson"),
        (["--noise", "poisson-gaussian", "--peak", "4"], "--noise poisson-gaussian needs --sigma"),
        (["--noise", "rician"], "either --sigma"),
        (["--noise", "rician", "--snr", "5", "--sigma", "5"], "not both"),
        (["--noise", "rician", "--snr", "-5"], "'--snr': needs one or more positive numbers"),
        (["--noise", "speckle"], "'--noise'"),
    ],
)
def test_cli_bad_combinations_are_one_line_usage_errors(cam_file, args, match):
    res = CliRunner().invoke(main, ["eval", str(cam_file), "--methods", "gaussian", *args])
    assert res.exit_code == 2 and match in res.output and "Traceback" not in res.output


def test_cli_refuses_plots_with_a_noise_model(cam_file, tmp_path):
    res = CliRunner().invoke(main, ["eval", str(cam_file), "--noise", "poisson", "--peak", "4", "--methods",
                                    "gaussian", "--plots", str(tmp_path / "plots")])
    assert res.exit_code == 2 and "--plots" in res.output and not (tmp_path / "plots").exists()


def test_cli_rician_in_a_real_process(cam_file, tmp_path):
    js = tmp_path / "rician.json"
    res = subprocess.run([sys.executable, "-m", "nlmeans", "eval", str(cam_file), "--noise", "rician", "--snr",
                          "5", "--methods", "nlmeans,wavelet", "--json", str(js)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "Rician noise, SNR 5" in res.stdout
    records = json.loads(js.read_text(encoding="utf-8"))
    rows = {r["method"]: r for r in records}
    assert set(rows) == {"noisy", "nlmeans", "wavelet"}
    assert all(r["noise"] == "rician" and r["snr"] == 5 for r in records)
    assert rows["nlmeans"]["psnr"] > rows["noisy"]["psnr"] + 4
    assert rows["wavelet"]["psnr"] != rows["nlmeans"]["psnr"]


# ---------------------------------------------------------------------------------------------------------------
# denoise(noise="poisson") at low counts: the noisy+estimate iteration (nlmeans.presets.poisson_schedule)


def _one_pass(counts):
    from nlmeans.noise_models import stabilise

    st = stabilise(counts, "poisson", 0.0, 1.0)
    return st.invert(nlmeans.denoise(st.image, st.sigma))


def test_poisson_at_low_counts_iterates_and_beats_one_pass(camera):
    clean = center_crop(camera, 128) / 255.0
    counts = nlmeans.add_noise(clean * 3, noise="poisson", seed=0)  # a mean count of ~1.5
    out = nlmeans.denoise(counts, noise="poisson", gain=1.0)
    once = _one_pass(counts)
    assert nlmeans.psnr(clean, out / 3, data_range=1.0) > nlmeans.psnr(clean, once / 3, data_range=1.0) + 1.0
    assert out.mean() == pytest.approx(clean.mean() * 3, rel=0.02)  # still unbiased on average


def test_poisson_at_high_counts_is_one_pass(camera):
    clean = center_crop(camera, 128) / 255.0
    counts = nlmeans.add_noise(clean * 100, noise="poisson", seed=0)  # a mean count of ~26
    np.testing.assert_array_equal(nlmeans.denoise(counts, noise="poisson", gain=1.0), _one_pass(counts))


@pytest.mark.parametrize("mean_count", [0.0, 0.5, 3.0, 3.5, 8.0, 8.5, 1e6])
def test_poisson_schedule_shortens_as_the_counts_grow(mean_count):
    from nlmeans.presets import poisson_schedule

    schedule = [lam for lam, _ in poisson_schedule(mean_count)]  # passes are (λ, bin factor)
    assert schedule[0] == 1.0 and list(schedule) == sorted(schedule, reverse=True)
    assert all(0 < lam <= 1 for lam in schedule)
    assert len(schedule) >= len(poisson_schedule(mean_count * 2 + 1))
