"""The layout rule of nlmeans/kernels/: each kernel file is one numba cache unit.

numba's on-disk cache does not notice edits to compiled code imported from another file (numba#1833), so a
kernel file may import nothing from its sibling kernel files (see the docstring of :mod:`nlmeans.kernels`).
"""

import ast
import importlib
import pathlib

import pytest

import nlmeans.kernels

KERNELS = pathlib.Path(nlmeans.kernels.__file__).parent
KERNEL_FILES = sorted(p for p in KERNELS.glob("*.py") if p.name != "__init__.py")
#: what a kernel file may import: the compiler, numpy, the standard library, and the numba settings
ALLOWED_TOP = {"__future__", "numpy", "numba", "llvmlite", "operator", "math"}
ALLOWED_NLMEANS = {"nlmeans._config"}


def _imports(path):
    """(module, names) of every import in ``path``, relative ones resolved against ``nlmeans.kernels``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = ["nlmeans", "kernels"][: 3 - node.level] if node.level <= 2 else []
                module = ".".join(parts + ([node.module] if node.module else []))
            else:
                module = node.module
            found.append((module, tuple(alias.name for alias in node.names)))
    return found


def test_there_are_kernel_files():
    assert {p.stem for p in KERNEL_FILES} >= {"pixelwise", "offsets", "nlbayes"}


@pytest.mark.parametrize("path", KERNEL_FILES, ids=lambda p: p.name)
def test_kernel_file_imports_nothing_from_its_siblings(path):
    for module, names in _imports(path):
        if module.startswith("nlmeans"):
            assert module in ALLOWED_NLMEANS, (
                f"{path.name} imports {names or module} from {module}: a kernel file may import from no other "
                "nlmeans module but nlmeans._config (numba's cache would not see edits there, numba#1833)")
        else:
            assert module.split(".")[0] in ALLOWED_TOP, f"{path.name} imports {module}"


def test_the_rule_catches_a_sibling_import(tmp_path):
    """Guard the checker itself: relative and absolute sibling imports are both seen as nlmeans modules."""
    fake = tmp_path / "fake.py"
    fake.write_text("from .pixelwise import _vload\nfrom nlmeans.kernels.offsets import _nlm_3d\n"
                    "from .. import kernels\nfrom .._config import JIT\n")
    modules = [m for m, _ in _imports(fake)]
    assert modules == ["nlmeans.kernels.pixelwise", "nlmeans.kernels.offsets", "nlmeans", "nlmeans._config"]
    assert [m in ALLOWED_NLMEANS for m in modules] == [False, False, False, True]


def test_the_package_init_imports_no_kernel():
    """``import nlmeans.kernels`` (for :func:`weight_constants`) compiles nothing and loads no numba."""
    for module, _ in _imports(KERNELS / "__init__.py"):
        assert not module.startswith("nlmeans"), module
        assert module.split(".")[0] not in ("numba", "llvmlite"), module


def test_copied_constants_agree():
    """The fast exponential's numbers are written in both files that compile it; the copies must agree."""
    pixelwise = importlib.import_module("nlmeans.kernels.pixelwise")
    offsets = importlib.import_module("nlmeans.kernels.offsets")
    for name in ("_P2", "_ROUND_MAGIC", "_LOG2E"):
        assert getattr(pixelwise, name) == getattr(offsets, name), name
