"""Every command's ``--help`` has an Examples block, and every example parses (click options, files that exist)."""

import shlex

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from nlmeans.cli import main

COMMANDS = sorted(main.commands)


def _help(args):
    res = CliRunner().invoke(main, [*args, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    return res.output


def _examples(text, *, stdin=False):
    """The ``nlmeans ...`` commands of the help's Examples block, without ``# comments`` and shell plumbing
    (``cat FILE | nlmeans ... > OUT``); with ``stdin``, pairs ``(command, FILE or None)``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Examples:")
    out = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        words = shlex.split(line.split("#")[0])
        begin = words.index("nlmeans")
        source = words[1] if begin >= 3 and words[0] == "cat" and words[begin - 1] == "|" else None
        end = next((i for i in range(begin, len(words)) if words[i] in ("|", ">", ">>", "<")), len(words))
        out.append((words[begin:end], source) if stdin else words[begin:end])
    return out


def test_every_subcommand_is_covered():
    assert {"denoise", "noise", "noise-level", "demo", "eval"} <= set(COMMANDS)


@pytest.mark.parametrize("args", [[]] + [[c] for c in COMMANDS], ids=lambda a: " ".join(a) or "nlmeans")
def test_help_has_examples(args):
    examples = _examples(_help(args))
    assert examples, f"nlmeans {' '.join(args)} --help has no examples"
    for ex in examples:
        assert ex[0] == "nlmeans", ex
        if args:  # a subcommand's examples use that subcommand
            assert ex[1] == args[0], ex


def _make_samples(folder):
    """The files the examples name, as small real images, in ``folder``."""
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    # photon counts on a ramp: every noise model's estimator finds its parameters (gain 1, in gray levels)
    ramp = np.linspace(20, 230, 64)
    gray = np.clip(rng.poisson(np.tile(ramp, (64, 1))), 0, 255).astype(np.uint8)
    rgb = np.clip(rng.poisson(np.tile(ramp[:, None], (64, 1, 3))), 0, 255).astype(np.uint8)
    for name in ("noisy.png", "clean.png", "mri.png", "gray.png", "noisy.jpg"):
        iio.imwrite(folder / name, gray)
    iio.imwrite(folder / "photo.png", rgb)
    for name in ("noisy.tif", "in.tif", "huge.tif", "counts.tif", "image.tif"):
        tifffile.imwrite(folder / name, gray)
    for name in ("stack.tif", "video.tif", "frames.tif"):
        tifffile.imwrite(folder / name, np.stack([gray] * 4), photometric="minisblack")
    np.save(folder / "sigma.npy", np.linspace(5, 40, 64 * 64).reshape(64, 64))  # a σ map, 0–255 scale
    for sub in ("photos", "data"):
        (folder / sub).mkdir(exist_ok=True)
        iio.imwrite(folder / sub / "a.png", gray)
    return folder


def _parse(argv):
    """Parse ``argv`` (without the program name) as click would, down to the subcommand, without running it."""
    ctx = main.make_context("nlmeans", list(argv))
    protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args  # click < 8.2
    rest = [*protected, *ctx.args]
    if not rest:
        return ctx
    name, cmd, args = main.resolve_command(ctx, rest)
    return cmd.make_context(name, args, parent=ctx)


@pytest.mark.parametrize("args", [[]] + [[c] for c in COMMANDS], ids=lambda a: " ".join(a) or "nlmeans")
def test_examples_parse(args, tmp_path, monkeypatch):
    monkeypatch.chdir(_make_samples(tmp_path))
    for ex in _examples(_help(args)):
        ctx = _parse(ex[1:])  # raises click.UsageError / BadParameter on a wrong option or value
        assert ctx.info_name == (ex[1] if len(ex) > 1 else "nlmeans")


def test_parse_catches_a_wrong_example():
    import click

    with pytest.raises(click.UsageError):
        _parse(["denoise", "noisy.png", "out.png", "--no-such-option"])
    with pytest.raises(click.BadParameter):
        _parse(["denoise", "noisy.png", "out.png", "--patch", "4"])


#: commands whose examples are quick on the 64×64 samples (demo and eval denoise 512² images or need peers)
RUN = ("denoise", "noise", "noise-level")


@pytest.mark.slow
@pytest.mark.parametrize("command", RUN)
def test_examples_run(command, tmp_path, monkeypatch):
    for i, (ex, source) in enumerate(_examples(_help([command]), stdin=True)):
        folder = _make_samples(tmp_path / str(i))  # each in a fresh folder: outputs never collide
        for name in ex[3:]:  # after "nlmeans COMMAND INPUT": outputs, which must not exist yet
            if (folder / name).is_file():
                (folder / name).unlink()
        monkeypatch.chdir(folder)
        res = CliRunner().invoke(main, ex[1:], input=(folder / source).read_bytes() if source else None)
        assert res.exit_code == 0, f"{shlex.join(ex)}: {res.output}"
