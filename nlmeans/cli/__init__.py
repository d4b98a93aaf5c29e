"""The ``nlmeans`` command line: one module per command, the options they share in :mod:`.options`.

- :mod:`.main`: the click group: errors as one line (exit 1), usage errors (exit 2), Ctrl-C (130) and
  SIGTERM (143) with the run's temporary files removed.
- :mod:`.options`: options shared by the commands; their callbacks convert once (σ and h from the 0–255
  scale of the command line to the float image's scale of the API), ``--method`` is a ``click.Choice`` of
  :data:`nlmeans.presets.METHODS`.
- :mod:`.denoise`, :mod:`.noise`, :mod:`.demo`, :mod:`.evaluate`: the commands.

Each command imports the library (numba, scikit-image, dask) inside its function, so ``nlmeans --help`` and
usage errors answer without loading them.
"""

from .main import main

__all__ = ["main"]
