"""Fraction-done reports from long library calls to whoever listens (the command line's ticker).

A listener is set for the calling thread's context with :func:`listening`; the library calls :func:`report`
from that same thread (never from worker threads), so reports cost nothing when nobody listens.
"""

from __future__ import annotations

import contextlib
import contextvars

_listener = contextvars.ContextVar("nlmeans_progress", default=None)


@contextlib.contextmanager
def listening(callback):
    """Within the block, :func:`report` calls ``callback(done, total, what)``."""
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)


def report(done, total, what):
    """``done`` of ``total`` parts of the step ``what`` (e.g. "NL-Bayes stage 1/2") are finished."""
    callback = _listener.get()
    if callback is not None:
        callback(done, total, what)
