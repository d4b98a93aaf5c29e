"""eval tells the truth (#19 item 8): warmed-up timings, one row per method, readable one-σ plots, titles that
say which methods were oracle-tuned, warnings as one line."""

import time

import numpy as np
import pytest
from click.testing import CliRunner

from nlmeans.cli import main
from nlmeans.eval import experiment, plots, registry
from nlmeans.eval.registry import REGISTRY, Method

CLEAN = np.tile(np.linspace(0.1, 0.9, 32), (32, 1))


def test_every_method_is_warmed_up_before_timing(monkeypatch):
    """A plain-Python method whose first call is slow (an import, as scikit-image's TV: 0.6 s, then 1.5 ms)."""
    calls = []

    def core(x, sigma, data_range):
        calls.append(x.shape)
        if len(calls) == 1:
            time.sleep(0.5)
        return x

    slow = Method("slow_first", core, lambda s, d, n: {}, {}, "test method", jit=False)
    monkeypatch.setitem(REGISTRY, "slow_first", slow)
    records = experiment.evaluate({"ramp": CLEAN}, [20], methods=["slow_first"])
    row = next(r for r in records if r["method"] == "slow_first")
    assert len(calls) == 2 and row["seconds"] < 0.2, row


def test_the_default_nlmeans_is_listed_once():
    default = registry.DEFAULT_METHOD
    assert f"nlmeans_{default}" not in REGISTRY  # the same call as "nlmeans": one row
    assert registry.get_method(f"nlmeans_{default}") is REGISTRY["nlmeans"]  # the old name still works
    assert experiment.resolve_methods(["nlmeans", f"nlmeans_{default}"]) == ["nlmeans"]
    assert f"method={default!r}" in REGISTRY["nlmeans"].summary
    cores = [m.core for m in REGISTRY.values()]
    assert len(cores) == len(set(cores))
    # every other estimator keeps its own row
    for m in registry.METHODS:
        if m != default and m != "pixelwise":
            assert f"nlmeans_{m}" in REGISTRY


def _records(sigmas, tuned_methods=("tv",), methods=("tv", "nlmeans")):
    recs = []
    for s in sigmas:
        recs.append({"image": "a", "sigma": s, "seed": 0, "method": "noisy", "psnr": 20.0, "ssim": 0.5,
                     "seconds": 0.0, "tuned": False, "grid_size": 0, "params": {}})
        for i, m in enumerate(methods):
            recs.append({"image": "a", "sigma": s, "seed": 0, "method": m, "psnr": 28.0 + i - s / 10,
                         "ssim": 0.8, "seconds": 0.1, "tuned": m in tuned_methods, "grid_size": 3, "params": {}})
    return recs


@pytest.fixture
def saved(monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, overwrite=True: figures.append(fig) or path)
    return figures


def test_one_sigma_gives_a_bar_chart_not_a_column_of_dots(saved, tmp_path):
    pytest.importorskip("matplotlib")
    plots.psnr_vs_sigma(_records([20]), tmp_path / "p.png")
    ax = saved[-1].axes[0]
    assert len(ax.patches) == 2 and not [ln for ln in ax.lines if len(ln.get_xdata()) > 2]  # two bars
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == ["nlmeans", "tv *"]
    plots.psnr_vs_sigma(_records([10, 20, 30]), tmp_path / "q.png")
    ax = saved[-1].axes[0]
    assert len(ax.lines) == 3 and not ax.patches  # several σ: one line per method and the noisy input


def test_titles_say_which_methods_were_oracle_tuned(saved, tmp_path):
    pytest.importorskip("matplotlib")
    plots.psnr_vs_sigma(_records([10, 20], tuned_methods=("tv",)), tmp_path / "p.png")
    title = saved[-1].axes[0].get_title()
    assert "* oracle-tuned" in title and "others by their σ rule" in title
    legend = [t.get_text() for t in saved[-1].axes[0].get_legend().get_texts()]
    assert "tv *" in legend and "nlmeans" in legend
    plots.psnr_vs_sigma(_records([10, 20], tuned_methods=()), tmp_path / "p.png")
    title = saved[-1].axes[0].get_title()
    assert "oracle" not in title and "σ rule" in title
    table = experiment.format_table(_records([20], tuned_methods=("tv",)))
    assert "tv *" in table and "not tuned, no grid: nlmeans" in table


def test_warnings_are_one_line(tmp_path):
    from nlmeans.io import write_image

    write_image(tmp_path / "x.png", (CLEAN * 255).astype(np.uint8))
    res = CliRunner().invoke(main, ["eval", str(tmp_path / "x.png"), "--sigma", "0.5", "--methods", "gaussian"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines == [lines[0]] and lines[0].startswith("warning: sigmas [0.5] are on the 0–255 scale")
    assert "UserWarning" not in res.stderr and "warnings.warn" not in res.stderr
