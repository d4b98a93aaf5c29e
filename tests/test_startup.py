"""What a command's start-up loads: numba's target without ``scipy.linalg`` (nlmeans._config), and the same
BLAS answer numba itself gives."""

import json
import subprocess
import sys

import pytest

from nlmeans import _config


def _run(code):
    """``code`` in a fresh interpreter (nothing imported yet); its last line of output, parsed as JSON."""
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_kernels_load_without_importing_scipy_linalg():
    # refreshing numba's CPU target is what a cached kernel's first call does (it imports numba.np.arraymath)
    code = (
        "import json, sys; import nlmeans.kernels.nlbayes; "
        "from numba.core.registry import cpu_target; "
        "cpu_target.typing_context.refresh(); cpu_target.target_context.refresh(); "
        "import numba.np.arraymath as am, numba.np.linalg as nl; "
        "print(json.dumps(['scipy.linalg' in sys.modules, am.ensure_blas is nl.ensure_blas, "
        "nl.ensure_blas.__module__]))"
    )
    linalg_imported, same, module = _run(code)
    assert not linalg_imported
    assert same and module == "numba.np.linalg"  # numba's own check is back in place for real BLAS uses


def test_numba_sees_the_same_blas_as_without_nlmeans():
    ours = _run("import json, nlmeans._config; import numba.np.arraymath as am; print(json.dumps(am._HAVE_BLAS))")
    numbas = _run("import json; import numba.np.arraymath as am; print(json.dumps(am._HAVE_BLAS))")
    assert ours == numbas


def test_blas_code_still_compiles_and_runs_after_nlmeans():
    # a user's jitted np.dot (BLAS) in a process that loaded nlmeans first: numba imports scipy.linalg then
    code = (
        "import json, sys, numpy as np, numba, nlmeans._config\n"
        "f = numba.njit(lambda a, b: np.dot(a, b))\n"
        "a = np.arange(1.0, 6.0); b = np.arange(2.0, 7.0)\n"
        "expected = float(sum(x * y for x, y in zip(a, b)))\n"
        "print(json.dumps([float(f(a, b)), expected, 'scipy.linalg' in sys.modules]))"
    )
    got, expected, linalg_imported = _run(code)
    assert got == expected
    assert linalg_imported


def test_cython_blas_lookup(monkeypatch):
    import importlib.util

    assert _config._scipy_has_cython_blas()  # scipy is a dependency
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # as if scipy were not installed
    assert not _config._scipy_has_cython_blas()


@pytest.mark.parametrize("folder_has_module", [True, False])
def test_cython_blas_lookup_reads_the_folder(tmp_path, monkeypatch, folder_has_module):
    import importlib.machinery
    import importlib.util

    (tmp_path / "linalg").mkdir()
    if folder_has_module:  # an empty file with an extension module's name is enough for the finder
        (tmp_path / "linalg" / f"cython_blas{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    spec = importlib.machinery.ModuleSpec("scipy", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec)
    assert _config._scipy_has_cython_blas() is folder_has_module


def test_nlbayes_thread_count_does_not_start_numbas_pool():
    # the bands run on Python threads; asking numba for its count would launch its unused pool
    code = (
        "import json, numba; from numba.np.ufunc import parallel; from nlmeans import nlbayes; "
        "n = nlbayes._n_threads(); started = parallel._is_initialized; "
        "numba.set_num_threads(1); "
        "from nlmeans import _config; parallel_jit = _config.PARALLEL_JIT['parallel']; "
        "print(json.dumps([n, started, numba.config.NUMBA_NUM_THREADS, nlbayes._n_threads(), parallel_jit]))"
    )
    default, started, configured, after_set, parallel_jit = _run(code)
    assert not started
    assert default == (configured if parallel_jit else 1)  # NLMEANS_SERIAL=1: one band at a time
    assert after_set == 1  # a user's set_num_threads is still obeyed
