"""Decoding a dataset: the transcripts of every row of a manifest split, batched, in order;
optionally with one prompt per row, or line by line through each recording with the previous
line's transcript as the prompt (:func:`sequential_transcripts`).

Used by :mod:`flamenco_lib.evaluation` (which scores what this decodes) and the benchmarks.
"""

from __future__ import annotations

import numpy as np

from .transcription import transcribe

DEFAULT_BATCH_SIZE = 8


def _rows(dataset) -> list[dict]:
    """Rows of a ``datasets.Dataset`` (decoded lazily) or a list of dicts, without the audio."""
    if hasattr(dataset, "column_names"):
        plain = dataset.with_format(None)  # without the decoding transform: metadata only
        cols = [c for c in plain.column_names if c != "audio"]
        return (
            [dict(zip(cols, vals)) for vals in zip(*(plain[c] for c in cols))] if len(plain) else []
        )
    return [{k: v for k, v in r.items() if k != "audio"} for r in dataset]


def transcribe_dataset(
    model,
    processor,
    dataset,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    language: str | None = "es",
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    prompts: list[str | None] | None = None,
    guard: bool = True,
    progress: bool = True,
    soft_prompt=None,
    bf16: bool = False,
) -> list[str]:
    """Transcripts of every row of ``dataset`` (its ``audio`` column: ``{"array", "sampling_rate"}``).

    Audio is decoded a few batches at a time (a large corpus never sits in memory at once) and
    passed to :func:`flamenco_lib.transcription.transcribe` (batched ``generate``, long-form past
    30 s, per-utterance prompts, the repetition guard; or greedy decoding with ``soft_prompt``).
    With ``prompts``, rows sharing a prompt are decoded together (one batch holds one prompt);
    the transcripts come back in the dataset's order. ``bf16``: the model under bf16 autocast.
    """
    from tqdm.auto import tqdm

    n = len(dataset)
    if prompts is not None and len(prompts) != n:
        raise ValueError(f"{len(prompts)} prompts for {n} utterances")
    # generate takes one prompt per batch: visit the rows grouped by prompt (stably), so that a
    # chunk holds few distinct prompts and its batches stay full, then restore the dataset's order
    order = list(range(n)) if prompts is None else sorted(range(n), key=lambda i: prompts[i] or "")
    chunk = batch_size * 4
    out: list[str | None] = [None] * n
    with tqdm(total=n, desc="transcribe", unit="utt", disable=not progress) as bar:
        for start in range(0, n, chunk):
            idx = order[start : start + chunk]
            if hasattr(dataset, "column_names"):
                rows = dataset[idx]["audio"]  # a list of indices: those rows, in that order
            else:
                rows = [dataset[i]["audio"] for i in idx]
            audios = [np.asarray(a["array"], dtype=np.float32) for a in rows]
            texts = transcribe(
                model,
                processor,
                audios,
                language=language,
                prompts=None if prompts is None else [prompts[i] for i in idx],
                batch_size=batch_size,
                num_beams=num_beams,
                max_new_tokens=max_new_tokens,
                guard=guard,
                soft_prompt=soft_prompt,
                bf16=bf16,
            )
            for i, text in zip(idx, texts):
                out[i] = text
            bar.update(len(idx))
    return out


def recording_chains(rows: list[dict]) -> list[list[int]]:
    """Row indices grouped by the recording they are cut from (``audio_path``; rows without a
    ``start`` are recordings of their own), each group in time order: the order in which a
    recording's lines are sung, and decoded when each line's prompt is the transcript of the one
    before it."""
    chains: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        key = str(r.get("audio_path")) if r.get("start") is not None else f"#{i}"
        chains.setdefault(key, []).append(i)
    return [sorted(c, key=lambda i: float(rows[i]["start"] or 0.0)) for c in chains.values()]


def sequential_transcripts(
    model, processor, dataset, *, make_prompt, progress: bool = True, **decode
) -> tuple[list[str], list[str | None]]:
    """Transcribe the lines of each recording in order, each prompted with
    ``make_prompt(i, previous)``: row ``i`` and the transcript of the line before it in the same
    recording (None for a first line) — Whisper's ``condition_on_previous_text``, one line per
    recording per round, the rounds batched across recordings. Returns (transcripts, prompts)."""
    from tqdm.auto import tqdm

    rows = _rows(dataset)
    chains = recording_chains(rows)
    hyps: list[str | None] = [None] * len(rows)
    prompts: list[str | None] = [None] * len(rows)
    depth = max((len(c) for c in chains), default=0)
    for r in tqdm(range(depth), desc="lines in order", unit="round", disable=not progress):
        idx = [c[r] for c in chains if len(c) > r]
        prev = {c[r]: hyps[c[r - 1]] if r else None for c in chains if len(c) > r}
        for i in idx:
            prompts[i] = make_prompt(i, prev[i])
        sub = dataset.select(idx) if hasattr(dataset, "select") else [dataset[i] for i in idx]
        texts = transcribe_dataset(
            model, processor, sub, prompts=[prompts[i] for i in idx], progress=False, **decode
        )
        for i, t in zip(idx, texts):
            hyps[i] = t
    return hyps, prompts
