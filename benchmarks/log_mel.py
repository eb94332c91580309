"""Benchmark: this project's log_mel_spectrogram vs transformers' WhisperFeatureExtractor.

A batch of 32 real 30 s clips (tiled asterisk prompts), on the CPU, in one process:
- ours (torch, batched),
- the extractor's default path (``__call__``, torch backend when torch is installed),
- the extractor's numpy path (``_np_extract_fbank_features``).
Prints the best-of-N times, the ratios against ours, and the max abs difference.

Run: ``.venv/bin/python benchmarks/log_mel.py [--batch 32] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from transformers import WhisperFeatureExtractor

from flamenco_lib import audio as A
from flamenco_lib.data import speech


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    items = speech.prompts()
    clips = []
    for i in range(args.batch):
        # each clip: consecutive prompts tiled to 30 s, a different start per clip
        parts, n = [], 0
        j = i * 7
        while n < A.N_SAMPLES:
            y = A.load_audio(items[j % len(items)]["path"])
            parts.append(y)
            n += len(y)
            j += 1
        clips.append(np.concatenate(parts)[: A.N_SAMPLES])
    batch = np.stack(clips)
    print(f"batch: {batch.shape[0]} real clips x 30 s, torch threads: {torch.get_num_threads()}")

    fe = WhisperFeatureExtractor(feature_size=80)
    t_ours, ours = best_of(lambda: A.log_mel_spectrogram(batch).numpy(), args.repeats)
    t_default, ref = best_of(
        lambda: fe(list(batch), sampling_rate=16000, return_tensors="np").input_features,
        args.repeats,
    )
    t_numpy, ref_np = best_of(
        lambda: np.stack(fe._np_extract_fbank_features(batch, "cpu")), args.repeats
    )

    print(f"{'implementation':40s} {'seconds':>8s} {'ratio to ours':>14s} {'max |diff|':>11s}")
    for name, t, r in [
        ("flamenco_lib.audio.log_mel_spectrogram", t_ours, ours),
        ("WhisperFeatureExtractor (default path)", t_default, ref),
        ("WhisperFeatureExtractor (numpy path)", t_numpy, ref_np),
    ]:
        print(f"{name:40s} {t:8.3f} {t / t_ours:13.2f}x {np.abs(r - ours).max():11.2e}")


if __name__ == "__main__":
    main()
