"""Type hints: every public callable fully annotated and resolvable, ``py.typed`` in the wheel, and a type
checker that accepts a correct user script and rejects a wrong argument type."""

import ast
import importlib
import inspect
import subprocess
import sys
import typing
import zipfile
from pathlib import Path

import pytest

import nlmeans
from nlmeans import _typing, _validate, presets, volume

ROOT = Path(__file__).resolve().parents[1]
#: modules whose every public function is part of the API (besides the names nlmeans exports)
API_MODULES = ["nlmeans.dask", "nlmeans.tiles", "nlmeans.batch", "nlmeans.volume", "nlmeans.sure",
               "nlmeans.eval.experiment"]


def _public_callables():
    out = {f"nlmeans.{name}": getattr(nlmeans, name) for name in nlmeans.__all__ if name != "__version__"}
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == module_name:
                out[f"{module_name}.{name}"] = obj
    return out


PUBLIC = _public_callables()


def test_the_api_is_not_empty():
    # a broken discovery would make the parametrized test below pass vacuously
    assert len(PUBLIC) > 30
    assert "nlmeans.denoise" in PUBLIC and "nlmeans.dask.denoise" in PUBLIC and "nlmeans.batch.run" in PUBLIC


@pytest.mark.parametrize("dotted", sorted(PUBLIC))
def test_public_callable_is_fully_annotated(dotted):
    fn = PUBLIC[dotted]
    hints = typing.get_type_hints(fn)  # raises if an annotation names something the module cannot resolve
    missing = [p for p in inspect.signature(fn).parameters if p not in hints]
    assert not missing, f"{dotted}: parameters without a type hint: {missing}"
    assert "return" in hints, f"{dotted}: no return annotation"


def test_dataclass_methods_annotated():
    from nlmeans.batch import Report

    assert typing.get_type_hints(Report.summary)["return"] is str


@pytest.mark.parametrize(("alias", "values"), [
    (_typing.Method, presets.METHODS),
    (_typing.VolumeMethod, volume.METHODS),
    (_typing.PatchWeights, presets.PATCH_WEIGHTS),
    (_typing.NoiseModel, _validate.NOISE_MODELS),
])
def test_literal_choices_match_the_library_constants(alias, values):
    assert set(typing.get_args(alias)) == set(values)


def test_type_checkers_see_every_lazy_name():
    """``nlmeans.__getattr__`` hides the names from static analysis; the TYPE_CHECKING block must import each
    one (else mypy types ``nlmeans.denoise`` as Any and checks nothing)."""
    tree = ast.parse((ROOT / "nlmeans" / "__init__.py").read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    imported = {a.asname or a.name for n in ast.walk(block) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert set(nlmeans._PUBLIC) | set(nlmeans._SUBMODULES) <= imported


@pytest.mark.slow
def test_wheel_ships_py_typed(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(tmp_path)],
                   check=True, capture_output=True, text=True, timeout=600)
    (wheel,) = tmp_path.glob("nlmeans-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "nlmeans/py.typed" in names
    assert "nlmeans/_typing.py" in names


GOOD = """\
import numpy as np

import nlmeans
from nlmeans.eval.experiment import Record

image = np.zeros((32, 32), np.uint8)
noisy = nlmeans.add_noise(image, 20 / 255, seed=1)
sigma: float = nlmeans.estimate_sigma(noisy)
out = nlmeans.denoise(noisy, sigma, method="pixelwise", patch_size=5, channel_axis=None)
print(out.shape, nlmeans.psnr(image, out), nlmeans.ssim(image, out))
out2, used = nlmeans.denoise(noisy, return_settings=True)
print(out2.dtype, used.sigma_255)
per_channel = nlmeans.estimate_sigma(np.zeros((32, 32, 3)), channel_axis=-1, per_channel=True)
print(per_channel.mean())
vol = nlmeans.denoise_volume(np.zeros((8, 16, 16)), 0.1, method="nlbayes")
records: list[Record] = nlmeans.evaluate({"flat": image}, [10, 20], methods="nlmeans", seeds=[0, 1])
"""

BAD = """\
import numpy as np

import nlmeans

out = nlmeans.denoise(np.zeros((32, 32)), 0.1, patch_size="7")
vol = nlmeans.denoise_volume(np.zeros((8, 16, 16)), method="patchwise")
s: str = nlmeans.psnr(np.zeros(4), np.zeros(4))
"""


@pytest.mark.slow
def test_mypy_accepts_correct_use_and_rejects_wrong_types(tmp_path):
    """One mypy run over two user scripts (~10-20 s): the correct one gets no error, each wrong line one."""
    pytest.importorskip("mypy")
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(BAD)
    # the package from this source tree (an editable install's import hook is invisible to mypy); its own
    # modules are analysed but not reported on, as for an installed package
    env = {"MYPYPATH": str(ROOT), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    mypy = [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", "--cache-dir",
            str(tmp_path / "cache"), "--no-error-summary", "--hide-error-context"]
    result = subprocess.run(mypy + ["good.py", "bad.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if e.startswith("good.py")], result.stdout
    bad_lines = {int(e.split(":")[1]) for e in errors if e.startswith("bad.py")}
    assert bad_lines == {5, 6, 7}, result.stdout
    assert result.returncode == 1


def test_mypy_is_in_the_test_extra():
    # the test above skips without mypy; the test extra must bring it so that it runs in CI
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extra = project["optional-dependencies"]
    assert any(req.startswith("mypy") for req in extra["test"])
