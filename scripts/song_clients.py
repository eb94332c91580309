"""The fine-tuned model in the clients people use, on whole test songs: this project's
``transcribe_recording`` (default method), transformers' ``pipeline("automatic-speech-recognition")``
with ``return_timestamps=True`` (its sequential long-form decoding; with its defaults, and with
Whisper's temperature fallback and thresholds), and faster-whisper on the
``models export-ct2`` conversion (int8, greedy, its own VAD filter). Each client's lines are scored
like notebook 11's songs (:func:`flamenco_lib.song_eval.score_song`: WER against the sung lines,
words per minute of guitar alone, median start error, lines missed), summed over the songs.

Usage (after ``make report``; paths relative to the project):
    .venv/bin/python scripts/song_clients.py [--model data/checkpoints/stage3/final] [--songs 3]
Writes the CTranslate2 conversion to ``data/e2e/ct2-<model folder>`` (anew each run); a few
minutes on 2 cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from flamenco_lib.audio import SAMPLE_RATE, load_audio
from flamenco_lib.models import export_ct2, load_whisper
from flamenco_lib.paths import data_dir
from flamenco_lib.recording import transcribe_recording
from flamenco_lib.results import to_markdown
from flamenco_lib.song_eval import read_songs, score_song, song_table


def _pipeline(path: str, *, fallback: bool = False):
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=path, device="cpu")
    # Whisper's own guard, as transformers documents it for long-form decoding: a window whose
    # text compresses over 2.4 or scores under -1 is decoded again at a higher temperature
    extra = (
        {
            "compression_ratio_threshold": 2.4,
            "logprob_threshold": -1.0,
            "no_speech_threshold": 0.6,
            "temperature": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
        }
        if fallback
        else {}
    )

    def run(audio):
        out = asr(
            {"raw": audio, "sampling_rate": SAMPLE_RATE},
            return_timestamps=True,
            generate_kwargs={"language": "es", "task": "transcribe", **extra},
        )
        lines = []
        for c in out["chunks"]:
            start, end = c["timestamp"]
            end = len(audio) / SAMPLE_RATE if end is None else end  # the last chunk may be open
            lines.append({"text": c["text"], "start": start, "end": end})
        return lines

    return run


def _faster_whisper(path: str, out: Path):
    from faster_whisper import WhisperModel

    # converted on every run (seconds): a conversion kept from an earlier model would be stale
    ct2 = export_ct2(path, out, quantization="int8")
    fw = WhisperModel(str(ct2), device="cpu", compute_type="int8")

    def run(audio):
        segments, _ = fw.transcribe(audio, language="es", beam_size=1, vad_filter=True)
        return [{"text": s.text, "start": s.start, "end": s.end} for s in segments]

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="data/checkpoints/stage3/final")
    ap.add_argument("--songs", type=int, default=3, help="the first N test songs")
    ap.add_argument("--corpus", default="data/corpora/songs")
    args = ap.parse_args()

    model, processor = load_whisper(args.model)

    def ours(audio):
        lines = transcribe_recording(model, processor, audio, progress=False)
        return [vars(ln) for ln in lines if not ln.dropped]

    ct2_dir = data_dir() / "e2e" / f"ct2-{Path(args.model).parent.name}"
    clients = {
        "project (vad)": ours,
        "transformers pipeline": _pipeline(args.model),
        "transformers pipeline, Whisper's fallback": _pipeline(args.model, fallback=True),
        "faster-whisper int8 (vad_filter)": _faster_whisper(args.model, ct2_dir),
    }
    corpus = Path(args.corpus)
    songs = read_songs(corpus, "test", args.songs)
    rows = []
    for name, run in clients.items():
        scored = []
        torch.manual_seed(0)  # the fallback samples
        for s in songs:
            got = run(load_audio(corpus / s["audio"]))
            scored.append(score_song(s["lines"], got, s["falsetas"]))
        t = song_table(scored)
        rows.append(
            {
                "client": name,
                "songs": len(scored),
                "WER %": round(100 * t["wer"], 1),
                "words / guitar min": round(t["hallucinated_per_min"], 2),
                "median timing error (s)": round(t["median_timing_error_s"], 2),
                "lines missed %": round(100 * t["missed_share"], 1),
            }
        )
    print(to_markdown(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
