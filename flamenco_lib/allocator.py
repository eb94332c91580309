"""Keep freed memory in the process, so a CPU training step does not wait on page faults.

glibc's ``malloc`` serves every block above its mmap threshold (32 MB at most) with a fresh
``mmap`` and gives it back to the kernel on ``free``. A whisper-base training step on the CPU
allocates and frees such blocks by the hundred (the activations of 8 clips x 1500 frames x 512 or
2048 channels, the bf16 copy and the gradient of the 51865-row token embedding, the logits), and
the kernel hands each one back as zeroed pages, in every step. On the 2-core AMD EPYC this was
a fifth to a quarter of a step (``benchmarks/allocator.py``: 0.82x; 12 steps of stage 3: 0.75x).

:func:`keep_freed_memory` asks ``malloc`` (``mallopt``) to serve large blocks from its heap and to
keep what is freed for the next step: no ``mmap``, no trimming of the heap. That is what the
allocators PyTorch's CPU tuning guide recommends (jemalloc, tcmalloc) do, without a package or an
``LD_PRELOAD``. The numbers computed do not change; the price is that the process keeps the memory
of its peak until it ends. :func:`flamenco_lib.models.load_whisper` calls it, so the notebooks,
the command line and the report all get it; ``FLAMENCO_KEEP_MEMORY=0`` in the environment leaves
``malloc`` as it is. Elsewhere than Linux with glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

__all__ = ["ENV", "keep_freed_memory"]

ENV = "FLAMENCO_KEEP_MEMORY"
# mallopt's parameters (glibc's <malloc.h>)
_M_TRIM_THRESHOLD = -1  # free memory at the heap's top beyond this goes back to the kernel
_M_TOP_PAD = -2  # extra bytes asked of the kernel each time the heap grows
_M_MMAP_MAX = -4  # how many blocks may be mmap'ed at once: 0 = none, all from the heap
_TRIM_NEVER = -1  # mallopt(3): "Setting M_TRIM_THRESHOLD to -1 disables trimming completely"
_TOP_PAD = 256 * 2**20

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Make ``malloc`` keep freed memory for reuse (once per process). True when it is set
    (now or before); False where it cannot be (not glibc) or ``FLAMENCO_KEEP_MEMORY=0``."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        log.info("%s=0: malloc left as it is", ENV)
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _TRIM_NEVER), (_M_TOP_PAD, _TOP_PAD))
    _done = all(mallopt(param, value) == 1 for param, value in settings)
    return _done
