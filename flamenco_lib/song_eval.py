"""Whole songs scored: what :func:`flamenco_lib.recording.transcribe_recording` makes of a
recording whose sung lines and guitar falsetas are known (the song corpus,
:mod:`flamenco_lib.data.songs`).

Per song, against the lines the generator sang (:func:`score_song`):

- **WER** of the whole song: the kept lines' text, in order, against the sung lines' text;
- **hallucinated words per minute of guitar alone**: a transcribed line's words are spread evenly
  over its time span; the words that fall inside falsetas are counted, per minute of falseta;
- **line timing error**: for each sung line, the distance from its start to the nearest start of
  a transcribed line (the median is reported);
- **missed lines**: the share of sung lines that no transcribed line overlaps in time.

:func:`evaluate_songs` runs one model and one method over a split of the song corpus and writes
``song_metrics.json`` (totals and one row per song) and ``lines.jsonl`` (every transcribed line).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import FlamencoError
from .metrics import normalizer_for, utterance_counts

__all__ = [
    "alignment_runs",
    "alignment_table",
    "evaluate_alignment",
    "evaluate_songs",
    "printed_lines",
    "read_songs",
    "score_alignment",
    "score_song",
    "song_runs",
    "song_table",
    "songs_results_table",
]
logger = logging.getLogger(__name__)


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def read_songs(corpus: str | Path, split: str, max_songs: int | None = None) -> list[dict]:
    """The first ``max_songs`` (all by default) songs of ``split`` in a song corpus folder's
    ``songs.jsonl`` (:func:`flamenco_lib.data.songs.build_song_corpus`), in file order. Raises
    :class:`~flamenco_lib.errors.FlamencoError` naming the file where there is none."""
    f = Path(corpus) / "songs.jsonl"
    if not f.exists():
        raise FlamencoError(
            f"{f}: no song corpus here; build one with "
            f"`python -m flamenco_lib data songs --out {Path(corpus)}`"
        )
    songs = [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines()]
    return [s for s in songs if s["split"] == split][:max_songs]


def score_song(sung: list[dict], got: list[dict], falsetas: list[list[float]]) -> dict:
    """Scores of one song. ``sung``: the generator's lines (``text``, ``start``, ``end``);
    ``got``: the transcribed lines that were kept (``text``, ``start``, ``end``); ``falsetas``:
    [start, end] of guitar alone. Returns counts (so songs add up) and the per-song rates."""
    norm = normalizer_for([ln["text"] for ln in sung])
    ref = " ".join(norm(ln["text"]) for ln in sung).split()
    hyp = " ".join(norm(ln["text"]) for ln in got).split()
    counts = utterance_counts([" ".join(ref)], [" ".join(hyp)]).iloc[0]
    errors = int(counts["substitutions"] + counts["deletions"] + counts["insertions"])
    in_guitar = 0.0
    for ln in got:
        span = (ln["start"], ln["end"])
        n_words = len(norm(ln["text"]).split())
        length = max(span[1] - span[0], 1e-6)
        in_guitar += n_words * sum(_overlap(span, (s, e)) for s, e in falsetas) / length
    guitar_min = sum(e - s for s, e in falsetas) / 60
    timing = [min((abs(g["start"] - s["start"]) for g in got), default=np.inf) for s in sung]
    missed = sum(
        1
        for s in sung
        if not any(_overlap((s["start"], s["end"]), (g["start"], g["end"])) > 0 for g in got)
    )
    return {
        "ref_words": len(ref),
        "errors": errors,
        "wer": errors / max(len(ref), 1),
        "words_in_guitar": round(in_guitar, 3),
        "guitar_minutes": round(guitar_min, 4),
        "hallucinated_per_min": in_guitar / guitar_min if guitar_min else 0.0,
        "timing_errors": [round(float(t), 3) for t in timing],
        "median_timing_error_s": float(np.median(timing)) if timing else 0.0,
        "lines": len(sung),
        "missed": missed,
    }


def song_table(rows: list[dict], *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Totals over songs: WER (errors over reference words) with a 95% bootstrap interval over
    songs (``wer_ci``), hallucinated words per minute of all the guitar, the median line timing
    error over all lines, the share of lines missed."""
    timing = [t for r in rows for t in r["timing_errors"]]
    minutes = sum(r["guitar_minutes"] for r in rows)
    errs = np.array([r["errors"] for r in rows], dtype=float)
    words = np.array([r["ref_words"] for r in rows], dtype=float)
    ci = [0.0, 0.0]
    if len(rows):
        idx = np.random.default_rng(seed).integers(0, len(rows), size=(n_boot, len(rows)))
        boot = errs[idx].sum(1) / np.maximum(words[idx].sum(1), 1)
        ci = [float(x) for x in np.quantile(boot, [0.025, 0.975])]
    return {
        "songs": len(rows),
        "wer": sum(r["errors"] for r in rows) / max(sum(r["ref_words"] for r in rows), 1),
        "wer_ci": ci,
        "hallucinated_per_min": sum(r["words_in_guitar"] for r in rows) / minutes
        if minutes
        else 0.0,
        "median_timing_error_s": float(np.median(timing)) if timing else 0.0,
        "missed_share": sum(r["missed"] for r in rows) / max(sum(r["lines"] for r in rows), 1),
    }


def evaluate_songs(
    model,
    processor,
    corpus: str | Path,
    *,
    out: str | Path,
    split: str = "test",
    method: str = "vad",
    max_songs: int | None = None,
    progress: bool = True,
    **options,
) -> dict:
    """Transcribe the ``split`` songs of a song corpus folder with ``method``, score each
    (:func:`score_song`) and write ``song_metrics.json`` and ``lines.jsonl`` into ``out``.
    Returns the metrics: the totals of :func:`song_table`, ``seconds`` of decoding, the audio's
    ``audio_seconds`` and ``per_song``: one row per song. ``options`` (``join_s``,
    ``vad_threshold``) go to :func:`~flamenco_lib.recording.transcribe_recording`."""
    from .audio import load_audio
    from .recording import transcribe_recording

    corpus, out = Path(corpus), Path(out)
    songs = read_songs(corpus, split, max_songs)
    out.mkdir(parents=True, exist_ok=True)
    rows, seconds, audio_s = [], 0.0, 0.0
    with open(out / "lines.jsonl.tmp", "w", encoding="utf-8") as f:
        for s in songs:
            audio = load_audio(corpus / s["audio"])
            t0 = time.perf_counter()
            lines = transcribe_recording(
                model, processor, audio, method=method, progress=progress, name=s["song"], **options
            )
            seconds += time.perf_counter() - t0
            audio_s += len(audio) / 16000
            kept = [vars(ln) for ln in lines if not ln.dropped]
            for ln in lines:
                f.write(json.dumps({"song": s["song"], **vars(ln)}, ensure_ascii=False) + "\n")
            rows.append({"song": s["song"], **score_song(s["lines"], kept, s["falsetas"])})
    (out / "lines.jsonl.tmp").replace(out / "lines.jsonl")
    m = {**song_table(rows), "method": method, "split": split, "seconds": seconds}
    m.update(audio_seconds=audio_s, per_song=rows)
    tmp = out / "song_metrics.json.tmp"
    tmp.write_text(json.dumps(m, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(out / "song_metrics.json")
    logger.info(
        "songs (%s, %d): WER %.1f%%, %.1f hallucinated words per guitar minute, median timing "
        "error %.2f s, %.0f%% lines missed, real-time factor %.2f",
        method,
        len(rows),
        100 * m["wer"],
        m["hallucinated_per_min"],
        m["median_timing_error_s"],
        100 * m["missed_share"],
        seconds / max(audio_s, 1e-9),
    )
    return m


def _run_inputs(corpus: Path, model: str, split: str, max_songs) -> tuple[str, dict]:
    """The model's path and what a cached song run depends on: the songs file, the model folder,
    the split, ``max_songs``, the decoding rules and how a recording is cut into lines."""
    from . import recording
    from .hashing import sha256_of
    from .results import _model_path
    from .transcription import DECODING

    path = _model_path(model)  # a stage's final/ folder, or the model as named
    local = Path(path)
    return path, {
        "songs": sha256_of(corpus / "songs.jsonl"),
        "model": sha256_of(local) if local.exists() else path,
        "split": split,
        "max_songs": max_songs,
        "decoding": DECODING,
        "windows": {
            "vad_threshold": recording.VAD_THRESHOLD,
            "vad_chunk_s": recording.VAD_CHUNK_S,
            "vad_hop_s": recording.VAD_HOP_S,
            "line_gap_s": recording.LINE_GAP_S,
            "join_s": recording.JOIN_S,
            "guard": recording.GUARD,
        },
    }


def _kept(out: Path, inputs: dict, result: str) -> bool:
    saved = out / "inputs.json"
    return (
        (out / result).exists()
        and saved.exists()
        and json.loads(saved.read_text(encoding="utf-8")) == inputs
    )


def _trained(label: str, model: str, path: str) -> bool:
    from .paths import data_dir

    if model != "base" and not Path(path).exists():
        logger.info("songs: %s: %s not trained yet, skipped", label, data_dir() / model)
        return False
    return True


def song_runs(
    rows,
    corpus: str | Path,
    *,
    methods=("vad",),
    split: str = "test",
    max_songs: int | None = None,
    root: str | Path | None = None,
    progress: bool = True,
    name: str = "songs",
) -> list[Path]:
    """Evaluate each model of ``rows`` (``(label, model)`` as :data:`flamenco_lib.grid.STAGES`)
    with each of ``methods`` on the song corpus; each run in ``<root>/<label>__<name>-<method>/``
    (default root: the results folder; ``name`` tells song corpora apart, e.g. ``songs-real``).
    A run whose inputs (the songs file, the model folder, ``max_songs``, the decoding rules) are
    unchanged is kept; a model not trained yet is skipped
    with a message. Songs decode in fp32 (``recording`` computes its features with the model's
    own calls, which bf16 autocast would turn to bf16), with the encoder prefix the models share
    (:func:`flamenco_lib.results.shared_encoder_prefix`). Returns the run folders."""
    from .models import load_whisper
    from .paths import results_dir
    from .results import run_dir, shared_encoder_prefix

    corpus = Path(corpus)
    done = []
    for label, model, *_ in rows:
        path, inputs = _run_inputs(corpus, model, split, max_songs)
        if not _trained(label, model, path):
            continue
        loaded = None
        for method in methods:
            out = run_dir(label, f"{name}-{method}", root=Path(root) if root else results_dir())
            if not _kept(out, inputs, "song_metrics.json"):
                loaded = loaded or load_whisper(path)
                with shared_encoder_prefix(loaded[0]):
                    evaluate_songs(
                        *loaded,
                        corpus,
                        out=out,
                        split=split,
                        method=method,
                        max_songs=max_songs,
                        progress=progress,
                    )
                (out / "inputs.json").write_text(json.dumps(inputs, indent=1), encoding="utf-8")
            done.append(out)
    return done


def alignment_runs(
    rows,
    corpus: str | Path,
    *,
    split: str = "test",
    max_songs: int | None = None,
    root: str | Path | None = None,
) -> list[Path]:
    """:func:`evaluate_alignment` of each model of ``rows`` on the songs of ``split``, each in
    ``<root>/<label>__songs-align/alignment.json``, kept while its inputs are unchanged (as
    :func:`song_runs`; fp32, with the shared encoder prefix). Returns the run folders."""
    from . import align
    from .hashing import sha256_of
    from .models import load_whisper
    from .paths import results_dir
    from .results import run_dir, shared_encoder_prefix

    corpus = Path(corpus)
    done = []
    for label, model, *_ in rows:
        path, inputs = _run_inputs(corpus, model, split, max_songs)
        inputs["align.py"] = sha256_of(Path(align.__file__))  # the method is code: rerun on edit
        if not _trained(label, model, path):
            continue
        out = run_dir(label, "songs-align", root=Path(root) if root else results_dir())
        if not _kept(out, inputs, "alignment.json"):
            model_, processor = load_whisper(path)
            with shared_encoder_prefix(model_):
                m = evaluate_alignment(model_, processor, corpus, split=split, max_songs=max_songs)
            out.mkdir(parents=True, exist_ok=True)
            tmp = out / "alignment.json.tmp"
            tmp.write_text(json.dumps(m, ensure_ascii=False, indent=1), encoding="utf-8")
            tmp.replace(out / "alignment.json")
            (out / "inputs.json").write_text(json.dumps(inputs, indent=1), encoding="utf-8")
        done.append(out)
    return done


def alignment_table(runs) -> pd.DataFrame:
    """One row per run of :func:`alignment_runs`: model, songs, median start and end errors,
    the share of sung lines whose aligned start is within 0.5 s, of sung lines found, and of
    lines sung twice found twice."""
    out = []
    for run in runs:
        m = json.loads((Path(run) / "alignment.json").read_text(encoding="utf-8"))
        out.append({"model": Path(run).name.split("__songs-")[0], **alignment_row(m)})
    return pd.DataFrame(out)


def alignment_row(m: dict) -> dict:
    """The columns of :func:`alignment_table` from the totals of :func:`evaluate_alignment`."""
    return {
        "songs": m["songs"],
        "median start error (s)": m["median_start_error_s"],
        "median end error (s)": m["median_end_error_s"],
        "start within 0.5 s %": 100 * m["within_0_5_s"],
        "lines found %": 100 * m["found"],
        "repeats found twice %": 100 * m["repeated_found_twice"],
    }


def songs_results_table(runs) -> pd.DataFrame:
    """One row per run of :func:`song_runs`: model, method, songs, WER [95% interval],
    hallucinated words per guitar minute, median line timing error, share of lines missed,
    real-time factor."""
    out = []
    for run in runs:
        m = json.loads((Path(run) / "song_metrics.json").read_text(encoding="utf-8"))
        out.append(
            {
                "model": Path(run).name.split("__")[0],
                "method": m["method"],
                "songs": m["songs"],
                "WER %": 100 * m["wer"],
                "WER lo": 100 * m["wer_ci"][0],
                "WER hi": 100 * m["wer_ci"][1],
                "words / guitar min": m["hallucinated_per_min"],
                "median timing error (s)": m["median_timing_error_s"],
                "lines missed %": 100 * m["missed_share"],
                "real-time factor": m["seconds"] / max(m["audio_seconds"], 1e-9),
            }
        )
    return pd.DataFrame(out)


def printed_lines(song: dict) -> list[str]:
    """A song's lyrics as a booklet prints them: its lines' written form, in order, a line sung
    twice in a row printed once."""
    out: list[str] = []
    for ln in song["lines"]:
        if not out or ln["text_canonical"] != out[-1]:
            out.append(ln["text_canonical"])
    return out


def score_alignment(song: dict, aligned) -> dict:
    """How well :func:`flamenco_lib.align.align_lines` found a song's sung lines: for each sung
    occurrence, the aligned occurrence of the same printed line nearest in time (if any):
    start and end errors (``start_offsets``: the start errors signed, aligned - sung, positive
    when late), and whether a line sung twice was found twice."""
    printed = printed_lines(song)
    index, k = [], -1
    for j, ln in enumerate(song["lines"]):  # the printed line each sung occurrence sings
        if j == 0 or ln["text_canonical"] != song["lines"][j - 1]["text_canonical"]:
            k += 1
        index.append(k)
    starts, ends, found = [], [], 0
    for ln, k in zip(song["lines"], index):
        cands = [a for a in aligned if a.line == k]
        if not cands:
            continue
        a = min(cands, key=lambda a: abs(a.start - ln["start"]))
        found += 1
        starts.append(a.start - ln["start"])
        ends.append(abs(a.end - ln["end"]))
    repeated = [k for k in set(index) if index.count(k) > 1]
    twice = sum(1 for k in repeated if sum(a.line == k for a in aligned) >= 2)
    return {
        "printed": len(printed),
        "sung": len(index),
        "found": found,
        "start_errors": [round(abs(x), 3) for x in starts],
        "start_offsets": [round(x, 3) for x in starts],
        "end_errors": [round(x, 3) for x in ends],
        "repeated": len(repeated),
        "repeated_found_twice": twice,
    }


def evaluate_alignment(
    model, processor, corpus, *, split: str = "test", max_songs=None, **options
) -> dict:
    """:func:`flamenco_lib.align.align_lyrics` on each song of ``split`` with its printed lyrics;
    totals: median start and end error (s), share of sung lines whose start is within 0.5 s,
    share of sung lines found, share of repeated lines found twice; and ``per_song`` (with each
    song's ``aligned`` lines: printed line index, text, the label as sung, the
    transcript heard there, start, end, confidence). ``options`` go to
    :func:`~flamenco_lib.align.align_lyrics` (``vad_threshold``, ``join_s``)."""
    from .align import align_lyrics
    from .audio import load_audio

    corpus = Path(corpus)
    rows = []
    for s in read_songs(corpus, split, max_songs):
        audio = load_audio(corpus / s["audio"])
        aligned, _ = align_lyrics(
            model, processor, audio, printed_lines(s), name=s["song"], **options
        )
        lines = [
            {
                k: getattr(a, k)
                for k in ("line", "text", "sung", "heard", "start", "end", "confidence", "cover")
            }
            for a in aligned
        ]
        rows.append({"song": s["song"], **score_alignment(s, aligned), "aligned": lines})
    starts = [x for r in rows for x in r["start_errors"]]
    ends = [x for r in rows for x in r["end_errors"]]
    sung = sum(r["sung"] for r in rows)
    return {
        "songs": len(rows),
        "median_start_error_s": float(np.median(starts)) if starts else float("nan"),
        "median_end_error_s": float(np.median(ends)) if ends else float("nan"),
        "within_0_5_s": sum(x <= 0.5 for x in starts) / max(sung, 1),
        "found": sum(r["found"] for r in rows) / max(sung, 1),
        "repeated_found_twice": sum(r["repeated_found_twice"] for r in rows)
        / max(sum(r["repeated"] for r in rows), 1),
        "per_song": rows,
    }
