"""The ``nlmeans`` click group: every command's errors as one line, interruptions as exit 130/143.

Exit codes: 0 success, 1 runtime error (unreadable input, unwritable output, ...), 2 usage error (bad option),
130 interrupted (Ctrl-C), 143 terminated (SIGTERM); both remove the temporary files of the run.
σ and h are on the 0–255 scale on the command line, whatever the file's bit depth. Progress is drawn on
stderr only when it is a terminal; ``--quiet`` (before or after the subcommand) prints nothing on success.
Warnings are one line ("warning: ..."); ``--verbose`` adds the library's INFO log (logger ``nlmeans``: σ
estimated, the method's fallback, SURE's h, ...) as "info: ..." lines on stderr (its DEBUG records, e.g. every
SURE probe's parameters, are for Python users).
"""

from __future__ import annotations

import gc
import logging
import signal
import traceback
import warnings

import click

from ..io import Terminated, one_line, raise_on_sigterm
from . import demo, denoise, evaluate, noise, noise_level
from .options import VERBOSE_HELP
from .progress import pause_gc, resume_gc


def _show_version(ctx, param, value):
    """``--version``: the installed version, read (importlib.metadata) only when asked."""
    if value and not ctx.resilient_parsing:
        from .. import __version__

        click.echo(f"nlmeans, version {__version__}")
        ctx.exit()


class _Group(click.Group):
    """A click group that turns runtime errors into one line on stderr and exit code 1."""

    def main(self, *args, **kwargs):
        previous = raise_on_sigterm()  # SIGTERM unwinds like Ctrl-C, so temporary files are removed
        shown = warnings.showwarning
        warnings.showwarning = _one_line_warning
        logger, handler = logging.getLogger("nlmeans"), _VerboseLog()
        level = logger.level
        # every INFO record is made (a few per run) and the handler decides: --verbose is known only once the
        # subcommand's options are parsed, after this point
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        pause_gc()  # until the command's kernels are loaded (progress.warm_up) or it ends
        try:
            return super().main(*args, **kwargs)
        finally:
            resume_gc()
            logger.removeHandler(handler)
            logger.setLevel(level)
            warnings.showwarning = shown
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            # numba leaves a large graph of objects behind; the interpreter's last garbage collections walk it
            # on exit (0.15-0.2 s of a 1.4 s denoise). Frozen objects are skipped; the process ends anyway.
            gc.freeze()

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except (KeyboardInterrupt, click.Abort) as exc:
            raise _aborted(exc) from None
        except Exception as exc:  # noqa: BLE001 - every runtime error ends as one line, exit 1
            interrupt = _interrupt_behind(exc)
            if interrupt is not None:
                raise _aborted(interrupt) from None
            if ctx.obj and ctx.obj.get("verbose"):
                traceback.print_exc()
            message = one_line(exc)
            if not isinstance(exc, (ValueError, TypeError, OSError)):
                message = f"internal error ({type(exc).__name__}): {message}"
            raise click.ClickException(message) from None


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """A warning as one line on stderr ("warning: ..."), without Python's category and source line."""
    click.echo(f"warning: {one_line(message)}", err=True)


class _VerboseLog(logging.Handler):
    """The library's log records as one line each on stderr ("info: ..."), only under ``--verbose`` (given
    before or after the subcommand: both set the root context's flag)."""

    def emit(self, record):
        ctx = click.get_current_context(silent=True)
        if ctx is not None and (ctx.find_root().obj or {}).get("verbose"):
            click.echo(f"{record.levelname.lower()}: {one_line(record.getMessage())}", err=True)


def _interrupt_behind(exc):
    """The KeyboardInterrupt an exception stands for, or None: numba kernels interrupted inside a parallel
    region surface as a SystemError whose cause (or context) is the KeyboardInterrupt."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _aborted(exc):
    """One line and the exit code of an interruption: Ctrl-C 130, SIGTERM 143 (128 + the signal number)."""
    if isinstance(exc, Terminated):
        click.echo("Aborted! (terminated)", err=True)
        return click.exceptions.Exit(128 + signal.SIGTERM)
    click.echo("Aborted!", err=True)
    return click.exceptions.Exit(128 + signal.SIGINT)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")
@click.option("--verbose", "-v", is_flag=True, help=VERBOSE_HELP)
@click.option("--quiet", "-q", is_flag=True,
              help="Print nothing on success: no summary, notes or progress (errors still print).")
@click.pass_context
def main(ctx, verbose, quiet):
    """Non-Local Means and NL-Bayes image denoising.

    σ and h are given on the 0–255 scale whatever the file's bit depth. Exit codes: 0 success, 1 error,
    2 bad usage, 130 interrupted (Ctrl-C), 143 terminated.

    \b
    Examples:
      nlmeans demo
      nlmeans denoise noisy.png clean.png
      nlmeans denoise noisy.tif clean.tif --sigma 20
      nlmeans denoise noisy.png clean.png -v     # also show σ and the parameters chosen
      nlmeans noise clean.png noisy.png --sigma 20 --seed 1
      nlmeans noise-level noisy.png
      nlmeans denoise counts.tif out.tif --noise poisson --gain 1
      nlmeans eval --sigma 10,20,30 --methods nlmeans,bm3d,tv
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = ctx.obj.get("verbose", False) or verbose
    ctx.obj["quiet"] = ctx.obj.get("quiet", False) or quiet


for _command in (denoise.denoise, noise.noise, noise_level.noise_level, demo.demo, evaluate.eval_):
    main.add_command(_command)
