"""Where someone sings: silero-vad's voice regions in a whole recording, for
:mod:`flamenco_lib.recording` (which windows to decode) and :mod:`flamenco_lib.align`.

silero-vad is a small recurrent network on 32 ms frames (its model ships in its wheel, so it
works offline). Two of its habits shape this module: its state goes deaf after some seconds of
guitar (so it runs on overlapping pieces, each from a fresh state), and importing it sets PyTorch
to one thread for the whole process (so the number of threads is put back).
"""

from __future__ import annotations

import numpy as np
import torch

from .audio import N_SAMPLES, SAMPLE_RATE

__all__ = ["VAD_CHUNK_S", "VAD_HOP_S", "VAD_THRESHOLD", "voice_regions"]

MAX_WINDOW_S = N_SAMPLES / SAMPLE_RATE  # 30 s: Whisper's window
VAD_THRESHOLD = 0.35  # silero-vad's speech probability for voice; its own 0.5 misses sung lines
# over guitar (dev songs, stage 3; README)
VAD_CHUNK_S = 10.0  # the detector runs on pieces of 10 s from a fresh state...
VAD_HOP_S = 5.0  # ...one every 5 s (voice_regions; chosen on the dev songs, README)


_VAD = None


def voice_regions(
    audio: np.ndarray,
    *,
    threshold: float = VAD_THRESHOLD,
    min_silence_s: float = 0.3,
    pad_s: float = 0.1,
    max_s: float = MAX_WINDOW_S,
    chunk_s: float = VAD_CHUNK_S,
    hop_s: float = VAD_HOP_S,
) -> list[tuple[float, float]]:
    """Where someone sings or speaks in 16 kHz ``audio``: (start, end) in seconds, by silero-vad
    (its model ships in the wheel).

    The detector is recurrent, and its state goes deaf: after a guitar falseta it often misses
    the first line sung after it, and over minutes it can stop hearing a voice at all (a test
    song: nothing heard after 100 s). So it runs on pieces of ``chunk_s`` seconds starting every
    ``hop_s`` seconds, each from a fresh state, and a moment is voice when a piece that holds it
    hears voice there (the union of the pieces' regions): every moment is heard by a detector
    started at most ``hop_s`` before it. A region over ``max_s`` is cut at its longest pause (the
    detector run again on it alone, with that limit)."""
    model = _silero()  # imports silero_vad with the threads kept
    from silero_vad import get_speech_timestamps

    def detect(piece: np.ndarray, limit: float = float("inf")) -> list[tuple[float, float]]:
        ts = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(piece, dtype=np.float32)),
            model,
            threshold=threshold,
            sampling_rate=SAMPLE_RATE,
            min_silence_duration_ms=int(1000 * min_silence_s),
            speech_pad_ms=int(1000 * pad_s),
            max_speech_duration_s=limit,
            return_seconds=True,
            time_resolution=3,
        )
        return [(float(t["start"]), float(t["end"])) for t in ts]

    found = []
    # pieces start every hop_s until one reaches the end of the audio
    last = max(len(audio) - int((chunk_s - hop_s) * SAMPLE_RATE), 1)
    for offset in range(0, last, int(hop_s * SAMPLE_RATE)):
        t0 = offset / SAMPLE_RATE
        piece = audio[offset : offset + int(chunk_s * SAMPLE_RATE)]
        found += [(t0 + s, t0 + e) for s, e in detect(piece)]
    union: list[tuple[float, float]] = []
    for start, end in sorted(found):
        if union and start - union[-1][1] <= pad_s:  # overlapping, or cut at a piece's edge
            union[-1] = (union[-1][0], max(union[-1][1], end))
        else:
            union.append((start, end))
    regions = []
    for start, end in union:
        if end - start <= max_s:
            regions.append((start, end))
            continue
        piece = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        regions += [(start + s, start + e) for s, e in detect(piece, max_s - 2 * pad_s)]
    return [(round(s, 3), round(e, 3)) for s, e in regions]


def _silero():
    """silero-vad's model, loaded once. Importing ``silero_vad`` calls
    ``torch.set_num_threads(1)`` for the whole process (every later decoding and training step
    then ran on one core); the number of threads is put back."""
    global _VAD
    if _VAD is None:
        threads = torch.get_num_threads()
        from silero_vad import load_silero_vad

        _VAD = load_silero_vad()
        torch.set_num_threads(threads)
    return _VAD
