"""The library's one base exception.

Every error the library raises on purpose (a bad file, a bad config, a missing model or corpus)
derives from :class:`FlamencoError`, so that a notebook or the command line can catch them all in
one clause and show one line instead of a traceback::

    try:
        ...
    except FlamencoError as e:
        print(e)

Each subclass also keeps the built-in base it had before (``ValueError``, ``RuntimeError``,
``FileNotFoundError``), so code that caught those still works.
"""

from __future__ import annotations


class FlamencoError(Exception):
    """Base class of every error the library raises on purpose; its message is meant for a user."""
