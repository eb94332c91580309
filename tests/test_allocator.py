"""flamenco_lib.allocator: freed memory is kept for reuse, so a second large allocation does not
fault its pages in again (the cost it removes from every CPU training step)."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)

# allocate and touch 256 MB, free it, then count the page faults of allocating it again
PROBE = """
import resource
import numpy as np
from flamenco_lib.allocator import keep_freed_memory
kept = keep_freed_memory()
a = np.ones(2**25); del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(2**25)
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def probe(keep: str) -> tuple[bool, int]:
    env = dict(os.environ, FLAMENCO_KEEP_MEMORY=keep)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


def test_freed_memory_is_reused_without_page_faults():
    kept, faults_kept = probe("1")
    left, faults_default = probe("0")
    assert kept and not left
    # malloc as it is: the 256 MB come back from the kernel as fresh pages (4 KiB, or 2 MiB where
    # transparent huge pages apply); kept: the same memory again, hardly a fault
    assert faults_default >= 100
    assert faults_kept * 10 < faults_default


def test_load_whisper_keeps_freed_memory(monkeypatch):
    from flamenco_lib import allocator

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    from flamenco_lib.models import ModelNotAvailable, load_whisper

    with pytest.raises(ModelNotAvailable):  # the call comes before the model is looked for
        load_whisper("no-such-size")
    assert calls == [1]
