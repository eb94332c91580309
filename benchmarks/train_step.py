"""Benchmark: one training step of whisper-base, fp32 against bf16 autocast, on the CPU.

The step of the ``cpu`` profile (``configs/stage1.yaml``): batch 8, encoder layers ``k...`` and the
decoder trained on cached layer-``k`` activations (:class:`flamenco_lib.training.UpperWhisper`),
AdamW. Both precisions run in one process on the same inputs and labels (real lyrics); prints the
median step time of each, the ratio, and the loss of the first step in each precision (bf16 changes
the numbers a little, not the scale). ``precision: auto`` picks bf16 where this ratio is large
(native bf16: AVX512-BF16, AMX) and fp32 elsewhere.

Run: ``.venv/bin/python benchmarks/train_step.py [--k 2] [--batch 8] [--steps 4]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from flamenco_lib import training
from flamenco_lib.models import load_whisper

LYRICS = [
    "Por los caminos voy dando fatigas, como una rueda que nunca se para",
    "A la orillita del mar se peina mi morena",
    "Que me lleven a Cádiz, que allí me quiero morir",
    "De noche yo me levanto con las fatigas de siempre",
]


def time_steps(precision: str, k: int, batch: int, steps: int) -> tuple[list[float], float]:
    model, processor = load_whisper("base", device="cpu", dtype=torch.float32)
    training.freeze_lower(model, k)
    model.train()
    upper = training.UpperWhisper(model, k)
    opt = torch.optim.AdamW([p for p in upper.parameters() if p.requires_grad], lr=1e-5)
    lab = training.collate_labels(processor.tokenizer, [LYRICS[i % len(LYRICS)] for i in range(batch)])
    x = torch.randn(batch, 1500, model.config.d_model, generator=torch.Generator().manual_seed(0))
    times, first = [], None
    for _ in range(steps + 1):  # the first step warms up (allocations, kernels): not counted
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = upper(x, lab["decoder_input_ids"], lab["labels"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        first = loss.item() if first is None else first
    return times[1:], first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=2, help="cached (frozen) encoder layers")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    print(f"whisper-base step, batch {args.batch}, cached_layers {args.k}, torch threads {torch.get_num_threads()}, "
          f"precision: auto -> {training.auto_precision()}")
    rows = {p: time_steps(p, args.k, args.batch, args.steps) for p in ("fp32", "bf16")}
    ref = statistics.median(rows["fp32"][0])
    print(f"{'precision':10s} {'median s/step':>14s} {'ratio to fp32':>14s} {'first loss':>11s}")
    for p, (times, loss) in rows.items():
        med = statistics.median(times)
        print(f"{p:10s} {med:14.2f} {med / ref:13.2f}x {loss:11.4f}")


if __name__ == "__main__":
    main()
