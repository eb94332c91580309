"""How the library reports progress: ``logging`` for messages, tqdm for progress bars.

Every module logs to ``logging.getLogger(__name__)`` (a child of ``"flamenco_lib"``) and never
configures logging when imported. Whoever runs the work decides what is shown: the command line
and the notebooks call :func:`show_messages`, which prints the library's INFO messages as plain
lines on stdout (a notebook shows them under the cell, papermill keeps them in the executed copy).
Without it, Python's default applies: warnings and errors on stderr, nothing else.
"""

from __future__ import annotations

import logging
import sys

LOGGER = "flamenco_lib"
_HANDLER_NAME = "flamenco_lib.show_messages"


def show_messages(level: int = logging.INFO, *, stream=None) -> logging.Logger:
    """Print the library's messages at ``level`` and above as plain lines (idempotent).

    Parameters
    ----------
    level : int
        ``logging.INFO`` (the default: what is trained, skipped, evaluated) or
        ``logging.WARNING`` (problems only).
    stream : file-like, optional
        Where to write; default ``sys.stdout`` as it is at the time of each message (a notebook
        replaces it per cell).

    Returns
    -------
    logging.Logger
        The ``flamenco_lib`` logger.
    """
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = _StdoutHandler(stream)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    handler.stream_override = stream
    return logger


class _StdoutHandler(logging.StreamHandler):
    """A stream handler that looks ``sys.stdout`` up at each message (Jupyter swaps it)."""

    def __init__(self, stream=None):
        super().__init__(stream or sys.stdout)
        self.stream_override = stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self.stream_override or sys.stdout
        super().emit(record)
