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

import contextlib
import errno
import shutil


class FlamencoError(Exception):
    """Base class of every error the library raises on purpose; its message is meant for a user."""


class DiskFullError(FlamencoError, OSError):
    """A model or checkpoint could not be written for lack of disk space."""


@contextlib.contextmanager
def room_to_write(folder, what: str, *, cleanup=None, min_free: int = 2**30):
    """Turn a write into ``folder`` that fails for lack of space (``ENOSPC``, or torch's
    ``RuntimeError: ... unexpected pos`` with less than ``min_free`` bytes left) into a
    :class:`DiskFullError` naming the folder, what was being written and the fix, after deleting
    ``cleanup`` (the half-written temporary folder); any other error passes unchanged. What was
    written before (an earlier checkpoint) is left as it was."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        free = shutil.disk_usage(folder).free
        if getattr(err, "errno", None) != errno.ENOSPC and free >= min_free:
            raise
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
            free = shutil.disk_usage(folder).free
        raise DiskFullError(
            f"{folder}: no room to write {what} ({free / 1e6:.0f} MB free). Free some space "
            "(`make clean-cache` deletes the caches and the checkpoints of finished runs) and "
            "run again with --resume: the checkpoints written before are kept"
        ) from err
