"""Run the command line in a child process that signals itself while it writes an output file.

The child wraps ``nlmeans.io.write._encode``: the first ``at_write - 1`` files are written normally; on write
number ``at_write`` half the image reaches the temporary file and then the process sends itself ``sig``
(``signal.raise_signal(sig)``, in the writing thread). The interruption thus lands at a known point of the
real write path, with no sleeps and no race against a timer: SIGKILL ends the process at once (nothing can
clean up), SIGINT raises KeyboardInterrupt from ``raise_signal`` itself, inside the write.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import os, signal, sys
import nlmeans.io.write as nio

# as on a terminal: a child started from a background job inherits SIGINT ignored, and Python then keeps it so
signal.signal(signal.SIGINT, signal.default_int_handler)

real, calls = nio._encode, []

def interrupted(tmp, suffix, arr, *rest):
    calls.append(tmp)
    if len(calls) < int(os.environ["NLMEANS_TEST_AT_WRITE"]):
        return real(tmp, suffix, arr, *rest)
    real(tmp, suffix, arr[: max(1, arr.shape[0] // 2)], *rest)  # half the image is on disk...
    # raise_signal targets this thread and checks for the handler before it returns, so KeyboardInterrupt is
    # raised right here (os.kill to the process could leave it to a later check)
    signal.raise_signal(int(os.environ["NLMEANS_TEST_SIGNAL"]))  # ...when the signal arrives
    raise AssertionError("still running after the signal")  # not reached: SIGKILL ends, SIGINT raises

nio._encode = interrupted
from nlmeans.cli import main
sys.exit(main(sys.argv[1:], prog_name="nlmeans"))
"""


def run_cli_interrupted(args, sig, *, at_write=1):
    """Run ``nlmeans ARGS`` in a child that sends itself ``sig`` during its ``at_write``-th file write;
    returns the ``subprocess.CompletedProcess`` (text stdout and stderr)."""
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""),
               NLMEANS_TEST_SIGNAL=str(int(sig)), NLMEANS_TEST_AT_WRITE=str(int(at_write)))
    # the timeout only guards against a hang; the interruption itself does not depend on time
    return subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)
