"""The package's shape: a light import, no import cycles, runnable docstring examples, complete docstrings."""

import ast
import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import nlmeans

PACKAGE = Path(nlmeans.__file__).parent
#: the public functions: what ``nlmeans`` exports, plus the Dask entry point (the ``scale`` extra)
PUBLIC = [f"nlmeans.{name}" for name in nlmeans.__all__ if name != "__version__"] + ["nlmeans.dask.denoise"]
#: numpydoc checks every public docstring passes: a docstring with a summary; every parameter documented, in
#: order, none unknown; a Returns section; an Examples section (run below as a doctest)
NUMPYDOC_CHECKS = {"GL08", "SS01", "PR01", "PR02", "PR03", "RT01", "EX01"}


def _resolve(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_import_loads_no_heavy_dependency():
    code = (
        "import sys, nlmeans, nlmeans.cli; "
        "heavy = [m for m in ('numba', 'scipy', 'skimage', 'dask', 'matplotlib') if m in sys.modules]; "
        "print(heavy); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_public_names_resolve():
    for dotted in PUBLIC:
        assert callable(_resolve(dotted)), dotted


def _module_imports():
    """``{module: {sibling modules it imports, at any level}}`` for every module of the package."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
                deps.update(names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nlmeans"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("nlmeans"))
        graph[name] = deps
    modules = set(graph)

    def owner(dep):  # the package module a dotted import name lives in
        while dep and dep not in modules:
            dep = dep.rpartition(".")[0]
        return dep

    return {m: {owner(d) for d in deps if owner(d) and owner(d) != m and owner(d) != "nlmeans"}
            for m, deps in graph.items()}


def test_no_import_cycles():
    graph = _module_imports()
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                cycle = stack[stack.index(d):] + [d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("dotted", PUBLIC)
def test_docstring_examples_run(dotted):
    obj = _resolve(dotted)
    tests = doctest.DocTestFinder().find(obj, dotted, globs={})
    assert tests and any(t.examples for t in tests), f"{dotted} has no docstring examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{dotted}: {result.failed} docstring example(s) failed"


@pytest.mark.parametrize("dotted", PUBLIC)
def test_docstring_is_complete(dotted):
    from numpydoc.validate import validate

    obj = _resolve(dotted)
    errors = [(code, msg) for code, msg in validate(f"{obj.__module__}.{obj.__qualname__}")["errors"]
              if code in NUMPYDOC_CHECKS]
    assert not errors, f"{dotted}: {errors}"
