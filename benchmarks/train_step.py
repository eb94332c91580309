"""Benchmark: one training step of whisper-base, fp32 against bf16 autocast, on the CPU.

The step of the ``cpu`` profile (``configs/stage1.yaml``): batch 8, encoder layers ``k...`` and the
decoder trained on cached layer-``k`` activations (:class:`flamenco_lib.training.UpperWhisper`),
AdamW (:func:`flamenco_lib.notebook.time_train_steps`, which notebook 07 also uses for its step
costs). Both precisions run in one process on the same inputs and labels (real lyrics); prints the
median step time of each, the ratio, and the loss of the first step in each precision (bf16 changes
the numbers a little, not the scale). ``precision: auto`` picks bf16 where this ratio is large
(native bf16: AVX512-BF16, AMX) and fp32 elsewhere.

Run: ``.venv/bin/python benchmarks/train_step.py [--k 2] [--batch 8] [--steps 4] [--precisions fp32
bf16]``. An estimate for a CPU with AVX2 only, on one that has more: the same command with
PyTorch's, oneDNN's and MKL's kernels held to AVX2, ``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ... --precisions fp32`` (the instructions of
such a machine; not its clock, cache or memory).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from flamenco_lib import training
from flamenco_lib.models import load_whisper
from flamenco_lib.notebook import time_train_steps


def time_steps(precision: str, k: int, batch: int, steps: int) -> tuple[list[float], float]:
    """Seconds of each of ``steps`` steps (after one warm-up step) and the first step's loss."""
    model, processor = load_whisper("base", device="cpu", dtype=torch.float32)
    return time_train_steps(
        model,
        processor,
        cached_layers=k,
        batch_size=batch,
        steps=steps,
        warmup=1,
        precision=precision,
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--k", type=int, default=2, help="cached (frozen) encoder layers")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    args = ap.parse_args()
    print(
        f"whisper-base step, batch {args.batch}, cached_layers {args.k}, torch threads {torch.get_num_threads()}, "
        f"precision: auto -> {training.auto_precision()}"
    )
    rows = {p: time_steps(p, args.k, args.batch, args.steps) for p in args.precisions}
    first = args.precisions[0]
    ref = statistics.median(rows[first][0])
    print(
        f"{'precision':10s} {'median s/step':>14s} {'ratio to ' + first:>14s} {'first loss':>11s}"
    )
    for p, (times, loss) in rows.items():
        med = statistics.median(times)
        print(f"{p:10s} {med:14.2f} {med / ref:13.2f}x {loss:11.4f}")


if __name__ == "__main__":
    main()
