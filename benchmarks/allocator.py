"""Benchmark: a CPU training step and an evaluation with malloc as it is, and with freed memory
kept for reuse (:func:`flamenco_lib.allocator.keep_freed_memory`).

Two variants, each in its own process (the allocator's settings are the process's), one after the
other:

- ``malloc as is``: ``FLAMENCO_KEEP_MEMORY=0``, glibc's defaults (every block over its mmap
  threshold mapped fresh and returned to the kernel when freed);
- ``freed memory kept``: what :func:`flamenco_lib.models.load_whisper` now sets.

Each times training steps of whisper-base as the ``cpu`` profile takes them
(:func:`flamenco_lib.notebook.time_train_steps`: batch 8, layers 0-1 cached, ``precision: auto``)
and the decoding of the first ``--clips`` synthetic cante test clips with zero-shot whisper-base as
``evaluate`` decodes them (batches of 8, loop stopping, bf16 where ``auto`` picks it). Prints the
median step, the decoding time, the ratio of each to ``malloc as is``, the peak resident memory,
and whether the two variants wrote the same transcripts (they must: only where memory comes from
changes).

Run: ``.venv/bin/python benchmarks/allocator.py [--steps 3] [--clips 32]`` on an idle machine
(about 3 minutes on 2 cores; needs ``make corpora`` for the clips).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = {"malloc as is": "0", "freed memory kept": "1"}


def one(steps: int, n_clips: int) -> dict:
    """Both measures in this process."""
    import torch
    from evaluate import clips

    from flamenco_lib import allocator
    from flamenco_lib.evaluation import DEFAULT_BATCH_SIZE
    from flamenco_lib.models import load_whisper
    from flamenco_lib.notebook import time_train_steps
    from flamenco_lib.training import auto_precision
    from flamenco_lib.transcription import transcribe

    precision = auto_precision()
    model, processor = load_whisper("base", device="cpu", dtype=torch.float32)
    kept = allocator.keep_freed_memory()
    audios, _ = clips(n_clips, sets=("cante",))
    bf16 = precision == "bf16"
    transcribe(model, processor, audios[:1], bf16=bf16)  # warm-up, not timed
    t0 = time.perf_counter()
    texts = transcribe(model, processor, audios, batch_size=DEFAULT_BATCH_SIZE, bf16=bf16)
    decode_s = time.perf_counter() - t0
    times, _ = time_train_steps(
        model, processor, cached_layers=2, batch_size=8, steps=steps, warmup=1, precision=precision
    )
    return {
        "kept": kept,
        "precision": precision,
        "step_s": statistics.median(times),
        "decode_s": decode_s,
        "texts": texts,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=3, help="timed training steps (after 1 warm-up)")
    ap.add_argument("--clips", type=int, default=32, help="cante test clips decoded")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a variant's process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.steps, args.clips)))
        return
    rows = {}
    for name, keep in VARIANTS.items():
        env = dict(os.environ, FLAMENCO_KEEP_MEMORY=keep)
        cmd = [sys.executable, __file__, "--one", "--steps", str(args.steps)]
        cmd += ["--clips", str(args.clips)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{name}: failed\n{out.stderr[-3000:]}")
        rows[name] = json.loads(out.stdout.strip().splitlines()[-1])
    ref = rows["malloc as is"]
    print(
        f"whisper-base, precision {ref['precision']}; training: batch 8, layers 0-1 cached, "
        f"median of {args.steps} steps; decoding: {len(ref['texts'])} cante test clips, zero-shot"
    )
    print(
        f"{'variant':20s} {'s/step':>7s} {'ratio':>6s} {'decode s':>9s} {'ratio':>6s} {'peak MB':>8s}"
    )
    for name, r in rows.items():
        print(
            f"{name:20s} {r['step_s']:7.2f} {r['step_s'] / ref['step_s']:5.2f}x "
            f"{r['decode_s']:9.1f} {r['decode_s'] / ref['decode_s']:5.2f}x {r['peak_mb']:8.0f}"
        )
    same = rows["freed memory kept"]["texts"] == ref["texts"]
    print(f"same transcripts: {same}")


if __name__ == "__main__":
    main()
