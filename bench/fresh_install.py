"""A new user's first hour: ``pip install`` the repository (not editable) into a new venv, then run every
example of README.md from a folder outside the repository, and write the transcript to docs/fresh_install.md.

    python -m bench.fresh_install [--venv DIR] [--work DIR] [--out docs/fresh_install.md]

Standard library only (it runs before anything is installed). The examples are read from README.md itself —
every ``nlmeans ...`` and ``pip install ...`` line of its bash blocks and every python block — so the run
follows the README as it is. The sample files they name (noisy.png, in.tif, stack.tif, ...) are made first in
the work folder from scikit-image's bundled images, with the installed nlmeans. A few lines need a stand-in,
listed in :data:`SUBSTITUTE` (a synopsis line, a cluster address, the package name on PyPI).
Takes ~10-20 min on 2 busy cores (the install, the first numba compilation, ``eval --tune``).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: README lines that cannot run as written, and what runs instead (why in the comment of each)
SUBSTITUTE = {
    # a synopsis, not a command: run it as two commands (the first is also the set-up's last step)
    "nlmeans demo [IMAGE] [--sigma 20] [--out-dir DIR] [--compare CMP.png]": [
        "nlmeans demo", "nlmeans demo camera.png --sigma 20 --out-dir demo-out --compare cmp.png",
    ],
    # nlmeans is not on PyPI: the extra from the same checkout
    'pip install "nlmeans[scale]"': ['pip install -q "{repo}[scale]"'],
}
#: a local scheduler and worker stand in for the README's cluster
SCHEDULER = "tcp://127.0.0.1:8786"

#: variables the python blocks use without defining them (README's snippets assume the user's own images)
PYTHON_PREAMBLE = """\
import numpy as np
import skimage.data
import nlmeans
clean = skimage.data.camera()[::2, ::2]                       # 256x256 uint8
rgb = skimage.data.astronaut()[::2, ::2]
counts = np.random.default_rng(0).poisson(clean.astype(float) / 4).astype(np.uint16)
raw = 0.5 * np.random.default_rng(1).poisson(clean / 0.5 / 8) + np.random.default_rng(2).normal(0, 2, clean.shape)
mri = np.abs(clean / 255 + 0.05 * (np.random.default_rng(3).normal(size=clean.shape)
                                  + 1j * np.random.default_rng(4).normal(size=clean.shape)))
"""

#: run after each python block: what it computed, as a REPL would show it
PYTHON_EPILOGUE = """
for _name in ("out", "used", "sigma", "est"):
    if _name in globals():
        _v = globals()[_name]
        print(_name, "=", f"ndarray {_v.shape} {_v.dtype}" if getattr(_v, "ndim", 0) else _v)
"""

#: the files the command-line examples name, made in the work folder with the installed package
MAKE_SAMPLES = """\
import numpy as np, imageio.v3 as iio, tifffile, skimage.data, nlmeans
from pathlib import Path
cam = skimage.data.camera()
photo = skimage.data.astronaut()
noisy = (np.clip(nlmeans.add_noise(cam, 20 / 255, seed=1), 0, 1) * 255).round().astype(np.uint8)
iio.imwrite("camera.png", cam)
iio.imwrite("clean.png", cam)
iio.imwrite("noisy.png", noisy)
iio.imwrite("noisy.jpg", noisy, quality=95)
iio.imwrite("photo.png", photo)
depth = np.clip(np.linspace(0, 1, 512)[None, :] * np.ones((512, 1)) * 255, 0, 255).astype(np.uint8)
iio.imwrite("depth.png", (np.clip(nlmeans.add_noise(depth, 0.05, seed=2), 0, 1) * 255).astype(np.uint8))
tifffile.imwrite("in.tif", noisy)
tifffile.imwrite("huge.tif", np.tile(noisy, (2, 2)))   # 1024x1024: the strip path is forced by --tile-rows
counts = np.random.default_rng(0).poisson(cam.astype(float) / 4).astype(np.uint16)
tifffile.imwrite("counts.tif", counts)
stack = np.stack([cam[100 + 8 * i: 228 + 8 * i, 200:328] for i in range(16)])
noisy_stack = (np.clip(nlmeans.add_noise(stack, 15 / 255, seed=3), 0, 1) * 255).astype(np.uint8)
tifffile.imwrite("stack.tif", noisy_stack, imagej=True, metadata={"axes": "ZYX"})
tifffile.imwrite("movie.tif", noisy_stack, imagej=True, metadata={"axes": "TYX"})
for folder in ("raw", "more"):
    Path(folder).mkdir(exist_ok=True)
for i in range(2):
    iio.imwrite(f"raw/r{i}.png", noisy[128 * i: 128 * i + 256, :256])
    tifffile.imwrite(f"more/m{i}.tif", noisy[:256, 128 * i: 128 * i + 256])
iio.imwrite("one.png", noisy[256:, 256:])
print("made:", ", ".join(sorted(p.name for p in Path(".").iterdir())))
"""


def readme_examples(readme: Path) -> list[tuple[str, str]]:
    """``[(kind, text)]`` in README order: ``("sh", line)`` for each ``nlmeans``/``pip install`` line of a bash
    block (comments cut), ``("python", block)`` for each python block."""
    out = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", readme.read_text(encoding="utf-8"), flags=re.S):
        if lang == "python":
            out.append(("python", body))
        elif lang == "bash":
            for line in body.splitlines():
                line = line.split(" #")[0].strip()
                if line.startswith(("nlmeans ", "pip install ", "cat ")):
                    out.append(("sh", line))
    return out


#: the options of the examples that take no value (every other ``--option`` is followed by its value)
FLAGS = {"--float", "--tune", "--volume", "--video", "--overwrite", "--verbose", "-v", "--quiet", "-q"}


def outputs_of(words: list[str]) -> list[str]:
    """The files an ``nlmeans denoise``/``noise`` line writes: its positionals after the first (none with
    ``--out-dir``, where every positional is an input). They must not exist before the line runs: the README's
    examples are independent (``clean.png`` is an output of one and the input of another)."""
    if len(words) < 2 or words[1] not in ("denoise", "noise") or "--out-dir" in words:
        return []
    positionals, skip = [], False
    for w in words[2:]:
        if skip:
            skip = False
        elif w.startswith("-"):
            skip = w not in FLAGS and "=" not in w
        else:
            positionals.append(w)
    return positionals[1:]


def _short(text: str, head: int = 12, tail: int = 4) -> str:
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    if len(lines) > head + tail + 1:
        lines = lines[:head] + [f"[... {len(lines) - head - tail} lines ...]"] + lines[-tail:]
    return "\n".join(lines)


class Transcript:
    def __init__(self, work: Path, env: dict[str, str]):
        self.work, self.env, self.entries, self.failures = work, env, [], 0

    def run(self, shown: str, argv: list[str] | str, *, shell: bool = False, timeout: int = 3600,
            cwd: Path | None = None) -> int:
        print(f"$ {shown}", flush=True)
        cwd = cwd or self.work
        start = time.perf_counter()
        res = subprocess.run(argv, cwd=cwd, env=self.env, shell=shell, capture_output=True, text=True,
                             timeout=timeout)
        seconds = time.perf_counter() - start
        text = "\n".join(line for line in (res.stdout + res.stderr).splitlines()
                         if not line.startswith("WARNING: Location"))  # this machine's pip index settings
        output = _short(text.replace(str(cwd), "$WORK").replace(str(self.work), "$WORK"))
        print(output, f"[exit {res.returncode}, {seconds:.1f} s]", sep="\n", flush=True)
        self.entries.append((shown, output, res.returncode, seconds))
        self.failures += res.returncode != 0
        return res.returncode

    def markdown(self, header: str) -> str:
        parts = [header]
        for shown, output, code, seconds in self.entries:
            block = f"$ {shown}\n{output}" if output else f"$ {shown}"
            parts.append(f"```\n{block}\n```\nexit {code} · {seconds:.1f} s\n")
        return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="the new venv (default: a new temporary folder)")
    parser.add_argument("--work", type=Path, help="the folder the examples run in (default: a new temporary one)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "fresh_install.md")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="nlmeans-fresh-"))
    venv = (args.venv or base / "venv").resolve()
    work = (args.work or base / "work").resolve()
    work.mkdir(parents=True, exist_ok=True)
    if ROOT in work.parents or work == ROOT:
        parser.error("--work must be outside the repository")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "NUMBA"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    t = Transcript(work, env)
    py = str(venv / "bin" / "python")

    t.run("python3 -m venv $VENV", [sys.executable, "-m", "venv", str(venv)])
    t.run("pip install $REPO", [py, "-m", "pip", "install", "-q", str(ROOT)])
    t.run("pip show nlmeans (installed, not editable)", f"{py} -m pip show -f nlmeans | grep -E "
          "'^(Name|Version|Location|Editable)|py.typed|camera'", shell=True)
    t.run("python -c 'import nlmeans' (from $WORK, outside the repository)",
          [py, "-c", "import nlmeans, pathlib; p = pathlib.Path(nlmeans.__file__); "
           "print(nlmeans.__version__, p.parent); assert 'site-packages' in str(p)"])
    samples = work / "samples"
    samples.mkdir(exist_ok=True)
    t.run("python - (make the README's sample files)", [py, "-c", MAKE_SAMPLES], cwd=samples)

    scheduler = worker = None
    lines = [(kind, line) for kind, text in readme_examples(ROOT / "README.md")
             for line in (SUBSTITUTE.get(text, [text]) if kind == "sh" else [text])]
    for i, (kind, line) in enumerate(lines):
        folder = work / f"{i:02d}"  # each example on a fresh copy of the samples, as if run on its own
        shutil.copytree(samples, folder)
        if kind == "python":
            code = PYTHON_PREAMBLE + line + PYTHON_EPILOGUE
            t.run("python - <<EOF\n" + line.rstrip() + "\nEOF", [py, "-c", code], cwd=folder)
        else:
            line = line.format(repo=ROOT)
            if "--scheduler" in line and scheduler is None:  # a local cluster stands in for scheduler-host
                scheduler = subprocess.Popen([str(venv / "bin" / "dask"), "scheduler", "--port", "8786",
                                              "--no-dashboard"], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)
                worker = subprocess.Popen([str(venv / "bin" / "dask"), "worker", SCHEDULER, "--nthreads", "1",
                                           "--no-dashboard"], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                time.sleep(8)
            line = line.replace("tcp://scheduler-host:8786", SCHEDULER)
            if line.startswith("cat "):  # a pipeline: through the shell, the venv first on PATH
                t.run(line, line, shell=True, cwd=folder)
                continue
            words = shlex.split(line)
            for name in outputs_of(words):
                (folder / name).unlink(missing_ok=True)
            words[0] = str(venv / "bin" / words[0])
            t.run(line, words, cwd=folder)
    for proc in (worker, scheduler):
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)

    commit = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h (%cd)", "--date=short"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    about = textwrap.fill(
        "Made by `python -m bench.fresh_install` (re-run it to refresh this file): a new venv, `pip install "
        "$REPO` (not editable), then every `nlmeans` line and every Python block of README.md, run from a new "
        "folder outside the repository (`$WORK`) on sample files made from scikit-image's bundled images; each "
        "example runs on a fresh copy of them without its output files (the README's examples are independent: "
        "clean.png is an output of one and an input of another). Stand-ins: `nlmeans demo [IMAGE] ...` (a "
        "synopsis) runs as `nlmeans demo` and `nlmeans demo camera.png --sigma 20 --out-dir demo-out --compare "
        "cmp.png`; `pip "
        "install \"nlmeans[scale]\"` installs the extra from the checkout; the cluster address is a local "
        f"`dask scheduler` and one worker ({SCHEDULER}); huge.tif is 1024² (the strip path is the same code at "
        "any size). The Python blocks run with `clean`, `rgb`, `counts`, `raw` and `mri` defined first "
        "(bench/fresh_install.py's preamble). Output is shortened to its first 12 and last 4 lines (pip's "
        "warnings about this machine's index settings left out); times are wall times on a shared 2-core "
        "machine, niced, the first numba compilation included.", width=115)
    header = (f"# A fresh install, through the README's examples\n\n{about}\n\nRepository at commit {commit}; "
              f"Python {sys.version.split()[0]}; {len(t.entries)} commands, {t.failures} with a non-zero exit.\n")
    args.out.write_text(t.markdown(header), encoding="utf-8")
    print(f"wrote {args.out} ({t.failures} failures)")
    return 1 if t.failures else 0


if __name__ == "__main__":
    sys.exit(main())
