"""Whole recordings in, timed lines out: a cante of several minutes, with its guitar, turned into
the lines that are sung, each with its start and end time.

Three ways to cut a recording into the windows of at most 30 s that Whisper decodes
(:data:`METHODS`):

- ``vad``: a voice activity detector (silero-vad, at a threshold lower than its own for singing
  over guitar, run on overlapping pieces from a fresh state) finds where someone sings; its
  regions, cut at pauses, are the windows, so guitar falsetas between verses are never decoded.
  Sung lines are separated by breaths, so a region is usually one line or two;
- ``fixed``: consecutive 30 s windows over the whole recording, guitar included;
- ``longform``: transformers' sequential long-form decoding (Whisper's own algorithm: timestamp
  tokens say where each segment ends and where the next window starts).

Each line gets Whisper's hallucination indicators: the gzip compression ratio of its text
(above 2.4: a repetition loop), the average log-probability of its tokens, and the probability
of ``<|nocaptions|>`` (no speech) after ``<|startoftranscript|>`` in its window. As Whisper does,
a line is dropped when its own text's compression ratio is too high, or when no speech is likely
in its window and the model is unsure of the window's text (:func:`hallucination`); dropped lines
stay in the JSON output with the reason, and leave the txt / SRT / LRC files.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .audio import SAMPLE_RATE
from .errors import FlamencoError
from .metrics import COMPRESSION_RATIO_THRESHOLD, compression_ratio
from .voice import (  # noqa: F401  (the detector's settings, as recording.* for callers)
    MAX_WINDOW_S,
    VAD_CHUNK_S,
    VAD_HOP_S,
    VAD_THRESHOLD,
    voice_regions,
)

__all__ = [
    "FORMATS",
    "METHODS",
    "Line",
    "format_lines",
    "group_regions",
    "hallucination",
    "merge_regions",
    "transcribe_files",
    "transcribe_recording",
    "voice_regions",
    "write_lines",
]
logger = logging.getLogger(__name__)

METHODS = ("vad", "fixed", "longform")
FORMATS = ("txt", "srt", "lrc", "json")
LOGPROB_THRESHOLD = -1.0  # Whisper's: below this average log-probability a window is unsure...
NO_SPEECH_THRESHOLD = 0.6  # ...and with <|nocaptions|> this likely, it holds no speech
LINE_GAP_S = 0.5  # voice regions closer than this are one line (a breath inside a line)
GUARD = "per-line-1"  # how the guard judges a window's lines (song runs redo when it changes)
JOIN_S = 4.0  # lines closer than this share a window (more context), each keeping its own times;
# chosen on the 3 dev songs with zero-shot whisper-base against 0.5 (no joining) and 2.0 (README)


class RecordingError(FlamencoError, ValueError):
    """A recording that cannot be transcribed (bad method, bad format)."""


@dataclass
class Line:
    """One transcribed window: times in seconds from the start of the recording."""

    start: float
    end: float
    text: str
    compression_ratio: float | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    dropped: str | None = None  # why the hallucination guard dropped it (None: kept)


def hallucination(line: Line) -> str | None:
    """Whisper's rules: why ``line`` is probably not what was sung, or None."""
    if line.compression_ratio is not None and line.compression_ratio > COMPRESSION_RATIO_THRESHOLD:
        return f"compression ratio {line.compression_ratio:.2f} > {COMPRESSION_RATIO_THRESHOLD}"
    p, lp = line.no_speech_prob, line.avg_logprob
    if p is not None and lp is not None and p > NO_SPEECH_THRESHOLD and lp < LOGPROB_THRESHOLD:
        return f"no speech likely ({p:.2f}) and an unsure text (average log-probability {lp:.2f})"
    return None


def group_regions(
    regions: list[tuple[float, float]], *, gap_s: float = JOIN_S, max_s: float = MAX_WINDOW_S
) -> list[list[tuple[float, float]]]:
    """Consecutive regions closer than ``gap_s``, grouped while a group spans at most ``max_s``:
    each group is one window to decode, its regions the lines in it."""
    groups: list[list[tuple[float, float]]] = []
    for start, end in sorted(regions):
        if groups and start - groups[-1][-1][1] < gap_s and end - groups[-1][0][0] <= max_s:
            groups[-1].append((start, end))
        else:
            groups.append([(start, end)])
    return groups


def merge_regions(
    regions: list[tuple[float, float]], *, gap_s: float = LINE_GAP_S, max_s: float = MAX_WINDOW_S
) -> list[tuple[float, float]]:
    """The spans of :func:`group_regions`: by default the lines (regions less than a breath
    apart, so that a word cut off by a short breath stays with its line)."""
    return [(g[0][0], g[-1][1]) for g in group_regions(regions, gap_s=gap_s, max_s=max_s)]


def fixed_windows(duration: float, *, max_s: float = MAX_WINDOW_S) -> list[tuple[float, float]]:
    """Consecutive windows of ``max_s`` seconds covering ``duration``."""
    starts = np.arange(0.0, duration, max_s)
    return [(float(s), float(min(s + max_s, duration))) for s in starts]


def _split_by_region(tokens, times, regions, tok) -> list[tuple[tuple[float, float], list[int]]]:
    """The window's tokens given to its voice regions: each word (a token starting with a space
    and those after it) goes to the region its first token's time lies in, or the nearest one."""
    out: dict[int, list[int]] = {}
    k = 0
    for j, (t, when) in enumerate(zip(tokens, times)):
        if j == 0 or tok.decode([t]).startswith(" "):  # a new word: which region?
            gaps = [max(s - when, when - e, 0.0) for s, e in regions]
            k = int(np.argmin(gaps))
        out.setdefault(k, []).append(j)
    return [(regions[k], idx) for k, idx in sorted(out.items())]


def _judged(start, end, text, avg_logprob, window_logprob, no_speech_prob) -> Line:
    """One line of a decoded window, judged by the hallucination guard on its own text's
    compression ratio (a loop in one line does not drop its neighbours) and on the window's
    no-speech evidence (``window_logprob``, ``no_speech_prob``); its text with runaway
    repetition cut."""
    from .transcription import trim_repetition

    cr = round(compression_ratio(text), 3)
    line = Line(start, end, trim_repetition(text), cr, avg_logprob, no_speech_prob)
    line.dropped = hallucination(Line(start, end, text, cr, window_logprob, no_speech_prob))
    return line


@torch.no_grad()
def _decode_windows(model, processor, audio, groups, *, language, batch_size, bar) -> list[Line]:
    """Decode each window (a group of voice regions) greedily, loops stopped, a budget per window;
    a window of several regions is split into one line per region by the tokens' times (the
    cross-attention alignment of ``generate(return_token_timestamps=True)``)."""
    from transformers import StoppingCriteriaList
    from transformers.modeling_outputs import BaseModelOutput

    from .transcription import LoopStop, token_budget

    tok = processor.tokenizer
    sot = tok.convert_tokens_to_ids("<|startoftranscript|>")
    no_speech_id = tok.convert_tokens_to_ids("<|nocaptions|>")
    device, dtype = model.device, next(model.parameters()).dtype
    lines = []
    for b in range(0, len(groups), batch_size):
        chunk = groups[b : b + batch_size]
        spans = [(g[0][0], g[-1][1]) for g in chunk]
        clips = [audio[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)] for s, e in spans]
        fe = processor.feature_extractor(
            clips, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True
        )
        enc = model.get_encoder()(fe.input_features.to(device, dtype)).last_hidden_state
        # Whisper's no-speech probability: <|nocaptions|> right after <|startoftranscript|>
        first = model(
            encoder_outputs=(enc,), decoder_input_ids=torch.full((len(chunk), 1), sot)
        ).logits[:, 0]
        no_speech = first.float().softmax(-1)[:, no_speech_id].tolist()
        budgets = [token_budget(len(c)) for c in clips]
        timed = any(len(g) > 1 for g in chunk)  # token times only where lines must be split
        out = model.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=enc),
            attention_mask=fe.attention_mask.to(device),
            language=language,
            task="transcribe",
            do_sample=False,
            num_beams=1,
            max_new_tokens=max(budgets),
            stopping_criteria=StoppingCriteriaList([LoopStop(budgets)]),
            return_dict_in_generate=True,
            output_scores=True,
            return_token_timestamps=timed,
        )
        seqs = out["sequences"]
        steps = model.compute_transition_scores(seqs, out["scores"], normalize_logits=True)
        new = seqs[:, -steps.shape[1] :]
        when = out["token_timestamps"][:, -steps.shape[1] :] if timed else None
        for i, group in enumerate(chunk):
            keep = new[i] < tok.eos_token_id  # text tokens (not the end, not the padding after it)
            window_lp = round(float(steps[i][keep].mean()) if keep.any() else 0.0, 4)
            ns = round(no_speech[i], 4)
            tokens, scores = new[i][keep].tolist(), steps[i][keep]
            if len(group) > 1 and tokens:
                times = (when[i][keep] + spans[i][0]).tolist()
                parts = _split_by_region(tokens, times, group, tok)
            else:
                parts = [((spans[i][0], spans[i][1]), list(range(len(tokens))))]
            for (s, e), idx in parts:
                text = tok.decode([tokens[j] for j in idx], skip_special_tokens=True).strip()
                lp = round(float(scores[idx].mean()), 4) if idx else 0.0
                lines.append(_judged(round(s, 3), round(e, 3), text, lp, window_lp, ns))
        bar.update(sum(e - s for s, e in spans))
    return lines


@torch.no_grad()
def _decode_longform(model, processor, audio, *, language) -> list[Line]:
    """transformers' sequential long-form decoding: its segments as lines."""
    from .transcription import trim_repetition

    fe = processor.feature_extractor
    feats = fe(
        audio,
        sampling_rate=SAMPLE_RATE,
        return_tensors="pt",
        truncation=False,
        padding="longest",
        return_attention_mask=True,
    )
    if feats.input_features.shape[-1] < 3000:  # under 30 s: one window, as generate expects
        feats = fe(
            audio, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True
        )
    out = model.generate(
        feats.input_features.to(model.device, next(model.parameters()).dtype),
        attention_mask=feats.attention_mask.to(model.device),
        language=language,
        task="transcribe",
        return_timestamps=True,
        return_segments=True,
        condition_on_prev_tokens=False,
    )
    tok = processor.tokenizer
    lines = []
    for seg in out["segments"][0]:
        raw = tok.decode(seg["tokens"], skip_special_tokens=True).strip()
        if not raw:
            continue
        line = Line(
            start=round(float(seg["start"]), 3),
            end=round(float(seg["end"]), 3),
            text=trim_repetition(raw),
            compression_ratio=round(compression_ratio(raw), 3),
        )
        line.dropped = hallucination(line)
        lines.append(line)
    return lines


def transcribe_recording(
    model,
    processor,
    audio: np.ndarray,
    *,
    method: str = "vad",
    language: str | None = "es",
    batch_size: int = 8,
    progress: bool = True,
    name: str = "recording",
    join_s: float = JOIN_S,
    vad_threshold: float = VAD_THRESHOLD,
    regions: list[tuple[float, float]] | None = None,
) -> list[Line]:
    """The lines of a 16 kHz mono recording of any length, in time order.

    ``method`` (:data:`METHODS`) says how the recording is cut into windows; ``vad`` (the default)
    decodes only where someone sings: voice regions less than :data:`LINE_GAP_S` apart are one
    line, and lines less than ``join_s`` apart share a window of at most 30 s (more context for
    the words), split back into its lines by the tokens' times; ``vad_threshold`` is the
    detector's speech probability above which a frame is voice (``regions``: its regions, when
    the caller has run :func:`voice_regions` already). Every line carries its
    indicators and, when the hallucination guard dropped it, the reason (``Line.dropped``). A
    recording where nobody sings gives no lines and a warning naming ``name``, not an error.
    """
    from tqdm.auto import tqdm

    if method not in METHODS:
        raise RecordingError(f"method {method!r}: use one of {', '.join(METHODS)}")
    duration = len(audio) / SAMPLE_RATE
    if method == "longform":
        return _decode_longform(model, processor, audio, language=language)
    if method == "vad":
        if regions is None:
            regions = voice_regions(audio, threshold=vad_threshold)
        line_regions = merge_regions(regions)
        groups = group_regions(line_regions, gap_s=join_s)
        if not groups:
            logger.warning("%s: no singing or speech found (%.1f s of audio)", name, duration)
            return []
    else:
        groups = [[w] for w in fixed_windows(duration)]
    total = sum(g[-1][1] - g[0][0] for g in groups)
    with tqdm(
        total=total, desc=name, unit="s", disable=not progress, bar_format=_BAR_FORMAT
    ) as bar:
        return _decode_windows(
            model, processor, audio, groups, language=language, batch_size=batch_size, bar=bar
        )


_BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of voice [{elapsed}<{remaining}]"
)


def _clock(t: float, *, sep: str = ",") -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def format_lines(lines: list[Line], fmt: str, *, file: str = "") -> str:
    """The kept lines as ``txt`` (one per line), ``srt`` (numbered cues), ``lrc``
    (``[mm:ss.xx]`` tags) or ``json`` (``{"file", "lines": [...]}``, every line, dropped ones
    with their reason)."""
    kept = [ln for ln in lines if not ln.dropped and ln.text]
    if fmt == "txt":
        return "".join(f"{ln.text}\n" for ln in kept)
    if fmt == "srt":
        return "\n".join(
            f"{i}\n{_clock(ln.start)} --> {_clock(ln.end)}\n{ln.text}\n"
            for i, ln in enumerate(kept, 1)
        )
    if fmt == "lrc":
        out = []
        for ln in kept:
            m, cs = divmod(int(round(ln.start * 100)), 6000)  # minutes, centiseconds
            out.append(f"[{m:02d}:{cs // 100:02d}.{cs % 100:02d}]{ln.text}\n")
        return "".join(out)
    if fmt == "json":
        doc = {"file": file, "lines": [asdict(ln) for ln in lines]}
        return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    raise RecordingError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")


def write_lines(lines: list[Line], path: str | Path, fmt: str, *, file: str = "") -> Path:
    """Write :func:`format_lines` to ``path`` atomically (an interrupted run leaves no half file
    that a rerun would take for finished)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(format_lines(lines, fmt, file=file), encoding="utf-8")
    os.replace(tmp, path)
    return path


def transcribe_files(
    paths,
    *,
    fmt: str,
    out: str | Path = ".",
    model: str = "base",
    method: str = "vad",
    language: str | None = "es",
    batch_size: int = 8,
    force: bool = False,
    progress: bool = True,
    vad_threshold: float = VAD_THRESHOLD,
) -> dict[str, str]:
    """Transcribe each recording of ``paths`` to ``<out>/<file stem>.<fmt>``. A file whose output
    exists is skipped (unless ``force``), so an interrupted run goes on where it stopped; a file
    that cannot be read is skipped and the others are written. ``vad_threshold``: as
    :func:`transcribe_recording`. Returns ``{path: error message}`` of the files that failed
    (empty: all done)."""
    if not 0.0 < vad_threshold < 1.0:
        raise RecordingError(f"vad_threshold {vad_threshold}: a probability between 0 and 1")
    from .audio import read_each
    from .models import load_whisper

    if fmt not in FORMATS:
        raise RecordingError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    target = {str(p): Path(out) / f"{Path(p).stem}.{fmt}" for p in paths}
    todo = []
    for p, dest in target.items():
        if dest.exists() and not force:
            logger.info("%s: %s exists, skipped (force to redo it)", p, dest)
        else:
            todo.append(p)
    audios, failed = read_each(todo)  # a bad file is named before the model loads
    if not audios:
        return failed
    whisper, processor = load_whisper(model)
    for p, audio in audios.items():
        lines = transcribe_recording(
            whisper,
            processor,
            audio,
            method=method,
            language=language,
            batch_size=batch_size,
            progress=progress,
            name=Path(p).name,
            vad_threshold=vad_threshold,
        )
        write_lines(lines, target[p], fmt, file=p)
        dropped = sum(1 for ln in lines if ln.dropped)
        logger.info("%s: %d lines (%d dropped) -> %s", p, len(lines) - dropped, dropped, target[p])
    return failed
