"""The noise-and-evaluate experiment: records, tuning, reports, plots and the `nlmeans eval` command."""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA

import nlmeans
from nlmeans.cli import main
from nlmeans.eval.experiment import (
    RECORD_KEYS,
    center_crop,
    format_table,
    read_records,
    run_experiment,
    summarize,
    write_csv,
    write_json,
)
from nlmeans.eval.plots import method_noise_image, write_plots
from nlmeans.eval.registry import REGISTRY
from nlmeans.io import write_image

FAST = ["gaussian", "tv", "nlmeans"]


@pytest.fixture(scope="module")
def small(camera, astronaut):
    return {"cam": center_crop(camera, 64), "astro": center_crop(astronaut, 64)}


@pytest.fixture(scope="module")
def records(small):
    return nlmeans.evaluate(small, [20, 30], methods=FAST, seeds=2)


def test_records_have_the_documented_keys_and_one_row_per_run(records):
    assert len(records) == 2 * 2 * 2 * (len(FAST) + 1)
    for r in records:
        assert set(RECORD_KEYS) <= set(r)
        assert r["method"] in FAST + ["noisy"] and r["sigma"] in (20, 30) and r["seed"] in (0, 1)
        assert np.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1 and r["seconds"] >= 0
        if r["method"] != "noisy":
            assert r["params"] == REGISTRY[r["method"]].params_for(r["sigma"] / 255, 1.0,
                                                                    3 if r["image"] == "astro" else 1)
            assert r["tuned"] is False and r["grid_size"] == 1


def test_noise_is_reproducible_from_the_record(records, small):
    r = next(r for r in records if r["method"] == "noisy" and r["image"] == "astro" and r["seed"] == 1)
    noisy = nlmeans.add_noise(small["astro"], r["sigma"] / 255, seed=r["seed"]).astype(np.float32)
    assert r["psnr"] == pytest.approx(nlmeans.psnr(small["astro"], noisy), abs=1e-12)
    d = next(d for d in records if d["method"] == "tv" and d["image"] == "astro" and d["seed"] == 1
             and d["sigma"] == r["sigma"])
    out = REGISTRY["tv"](noisy, r["sigma"] / 255, channel_axis=-1)
    assert d["psnr"] == pytest.approx(nlmeans.psnr(small["astro"], out), abs=1e-12)


def test_every_method_improves_on_the_noisy_input(records):
    noisy = {(r["image"], r["sigma"], r["seed"]): r["psnr"] for r in records if r["method"] == "noisy"}
    for r in records:
        assert r["psnr"] > noisy[(r["image"], r["sigma"], r["seed"])] + 1 or r["method"] == "noisy"


def test_tuning_is_an_oracle_over_the_grid(small, records):
    tuned = nlmeans.evaluate({"cam": small["cam"]}, [20], methods=["gaussian", "tv"], tune=True)
    for r in tuned:
        if r["method"] == "noisy":
            continue
        grid = REGISTRY[r["method"]].grid_for(20 / 255)
        assert r["tuned"] is True and r["grid_size"] == len(grid) and r["params"] in grid
        plain = next(p for p in records if p["method"] == r["method"] and p["image"] == "cam"
                     and p["sigma"] == 20 and p["seed"] == 0)
        assert r["psnr"] >= plain["psnr"] - 1e-12


def test_summary_ranks_by_mean_psnr_with_noisy_last(records):
    summary = summarize(records)
    assert sorted(summary) == [20, 30]
    for rows in summary.values():
        assert rows[-1]["method"] == "noisy"
        psnrs = [row["psnr"] for row in rows[:-1]]
        assert psnrs == sorted(psnrs, reverse=True)
        assert all(row["n"] == 4 for row in rows)
    text = format_table(records)
    assert "σ = 20/255" in text and "noisy input" in text and "oracle" not in text
    md = format_table(records, markdown=True)
    assert md.count("\n|---:|---|") == 2 and "| 1 | " in md


def test_json_and_csv_round_trip(records, tmp_path):
    write_json(records, tmp_path / "r.json")
    back = read_records(tmp_path / "r.json")
    assert back == json.loads(json.dumps(records))
    write_csv(records, tmp_path / "r.csv")
    rows = list(csv.DictReader(open(tmp_path / "r.csv", encoding="utf-8")))
    assert len(rows) == len(records) and list(rows[0]) == list(RECORD_KEYS)
    assert json.loads(rows[1]["params"]) == records[1]["params"]


def test_inputs_are_validated(small):
    with pytest.raises(ValueError, match="'magic' is not known"):
        nlmeans.evaluate(small, [20], methods="magic")
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        nlmeans.evaluate(small, [20], methods=FAST, seeds=0)
    with pytest.raises(ValueError, match="sigmas must be > 0"):
        nlmeans.evaluate(small, [0], methods=FAST)
    with pytest.raises(ValueError, match="too small"):
        nlmeans.evaluate({"tiny": np.zeros((4, 4))}, [20], methods=FAST)
    with pytest.warns(UserWarning, match="0–255 scale"):
        nlmeans.evaluate({"cam": small["cam"]}, [0.1], methods=["gaussian"])


def test_plots_are_written(small, tmp_path):
    records, gallery = run_experiment({"cam": small["cam"]}, [20, 40], ["gaussian", "tv"], keep_images=True)
    assert set(gallery) == {("cam", 20), ("cam", 40)}
    paths = write_plots(records, gallery, tmp_path / "plots")
    names = sorted(p.name for p in paths)
    assert names == ["method_noise_cam_s20.png", "method_noise_cam_s40.png", "montage_cam_s20.png",
                     "montage_cam_s40.png", "psnr_vs_sigma.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000
    mn = method_noise_image(np.full((4, 4, 3), 0.6), np.full((4, 4, 3), 0.5), 0.05)
    np.testing.assert_allclose(mn, 1.0)  # +2σ is white


# ---- the command line -------------------------------------------------------------------------------------------


@pytest.fixture
def runner():
    return CliRunner()


def test_eval_command_prints_the_table_and_writes_records(runner, tmp_path, camera, astronaut):
    write_image(tmp_path / "cam.png", center_crop(camera, 64))
    write_image(tmp_path / "astro.png", center_crop(astronaut, 64))
    args = ["eval", str(tmp_path / "cam.png"), str(tmp_path / "astro.png"), "--sigma", "15,30",
            "--methods", "gaussian,nlmeans", "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"),
            "--plots", str(tmp_path / "plots")]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "σ = 15/255" in res.output and "σ = 30/255" in res.output and "noisy input" in res.output
    recs = read_records(tmp_path / "r.json")
    assert len(recs) == 2 * 2 * 3
    assert {r["image"] for r in recs} == {"cam", "astro"} and {r["method"] for r in recs} == {
        "noisy", "gaussian", "nlmeans"}
    expect = nlmeans.evaluate({"cam": center_crop(camera, 64)}, [15], methods=["nlmeans"])
    got = [r for r in recs if r["image"] == "cam" and r["sigma"] == 15 and r["method"] != "gaussian"]
    assert [r["psnr"] for r in got] == pytest.approx([r["psnr"] for r in expect], abs=1e-12)
    # the table ranks nlmeans above gaussian at σ = 30 on these crops, as the records say
    block = res.output.split("σ = 30/255")[1]
    assert block.index("nlmeans") < block.index("gaussian")
    assert (tmp_path / "r.csv").exists() and (tmp_path / "plots" / "psnr_vs_sigma.png").exists()


def test_eval_tune_is_labelled_oracle(runner, tmp_path, camera):
    write_image(tmp_path / "cam.png", center_crop(camera, 48))
    res = runner.invoke(main, ["eval", str(tmp_path), "--sigma", "20", "--methods", "tv", "--tune"])
    assert res.exit_code == 0, res.output
    assert "oracle-tuned" in res.output and "tv *" in res.output


def test_eval_defaults_to_the_data_folder(runner, monkeypatch):
    monkeypatch.chdir(DATA.parent)
    res = runner.invoke(main, ["eval", "--sigma", "20", "--methods", "gaussian", "--crop", "32"])
    assert res.exit_code == 0, res.output
    for name in ("camera", "astronaut", "brick"):
        assert name in res.output


@pytest.mark.parametrize(
    "args,code,match",
    [
        (["--methods", "magic"], 2, "not known"),
        (["--sigma", "abc"], 2, "comma-separated"),
        (["--sigma", "-5"], 2, "positive"),
        (["--seeds", "0"], 2, "--seeds"),
    ],
)
def test_eval_usage_errors(runner, tmp_path, camera, args, code, match):
    write_image(tmp_path / "cam.png", center_crop(camera, 32))
    res = runner.invoke(main, ["eval", str(tmp_path / "cam.png"), *args])
    assert res.exit_code == code and match in res.output and "Traceback" not in res.output


def test_eval_runtime_errors_are_one_line(runner, tmp_path):
    res = runner.invoke(main, ["eval", str(tmp_path / "missing.png"), "--methods", "gaussian"])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "no such file" in lines[0]
    res = runner.invoke(main, ["eval", str(tmp_path), "--methods", "gaussian"])
    assert res.exit_code == 1 and "no image files" in res.output


def test_eval_list_shows_rules(runner):
    res = runner.invoke(main, ["eval", "--list"])
    assert res.exit_code == 0
    for name in ("gaussian", "anisotropic", "bilateral", "tv", "wiener", "wavelet", "nlmeans"):
        assert name in res.output
    assert "κ = 2.2·σ" in res.output
