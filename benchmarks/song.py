"""Benchmark: how long a whole song takes to transcribe, per method, as a real-time factor.

One synthetic song of about two minutes (:func:`flamenco_lib.data.songs.render_song`: three coplas
of a soleá between guitar falsetas), whisper-base (or ``--model``), on this machine's CPU threads:
:func:`flamenco_lib.recording.transcribe_recording` with each method (silero-vad windows, fixed
30 s windows, transformers' sequential long-form). Prints, per method, the decoding time, the
real-time factor (time over song length: below 1 is faster than listening) and the lines kept.
The first method's time includes loading silero-vad; each method runs once after a warm-up on the
first 30 s.

Run: ``.venv/bin/python benchmarks/song.py [--model base] [--seed 1]``
"""

from __future__ import annotations

import argparse
import time

import torch

from flamenco_lib import recording
from flamenco_lib.audio import SAMPLE_RATE
from flamenco_lib.data.songs import render_song
from flamenco_lib.models import load_whisper

COPLAS = [
    ["Por la calle de la Feria", "va mi niña con su pena", "y la luna la miraba"],
    ["Yo no le temo a la muerte", "que la muerte es cosa mía", "le temo a tu querer"],
    ["A la fragua de mi pena", "llevo el hierro de tu olvido", "y lo golpeo de noche"],
]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="base")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    audio, meta = render_song(COPLAS, palo="soleá", voice="es", seed=args.seed)
    minutes = len(audio) / SAMPLE_RATE / 60
    model, processor = load_whisper(args.model)
    print(
        f"song: {minutes:.2f} min, {len(meta['lines'])} sung lines, "
        f"{sum(e - s for s, e in meta['falsetas']):.0f} s of guitar alone; model {args.model}, "
        f"{torch.get_num_threads()} torch threads"
    )
    recording.transcribe_recording(model, processor, audio[: 30 * SAMPLE_RATE], progress=False)
    print(f"{'method':10s} {'seconds':>8s} {'real-time factor':>17s} {'lines':>6s}")
    for method in recording.METHODS:
        t0 = time.perf_counter()
        lines = recording.transcribe_recording(
            model, processor, audio, method=method, progress=False
        )
        dt = time.perf_counter() - t0
        kept = sum(1 for ln in lines if not ln.dropped)
        print(f"{method:10s} {dt:8.1f} {dt / (minutes * 60):17.3f} {kept:6d}")


if __name__ == "__main__":
    main()
