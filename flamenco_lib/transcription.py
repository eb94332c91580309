"""Transcribe audio with a Whisper model: batched ``generate`` for clips up to 30 s, Whisper's
sequential long-form decoding for longer ones, optional text prompts, and a guard against
runaway repetition. Explained in ``notebooks/04_whisper_anatomy.ipynb``.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import torch

from .audio import N_SAMPLES, SAMPLE_RATE
from .tokens import greedy_decode, suppress

__all__ = ["prompt_ids", "suppress", "token_budget", "transcribe", "trim_repetition"]

MAX_TARGET_TOKENS = 448  # Whisper's decoder context
TOKENS_PER_SECOND = 8  # generous budget: Spanish speech runs at ~3-5 tokens/s
_REPEAT = re.compile(r"(\b.{2,60}?)(?:[\s,.;]*\1){3,}", flags=re.IGNORECASE)
# Two warnings that transformers' generate prints on every batch of every Whisper call, about
# settings Whisper's own generate makes (max_length next to our max_new_tokens; its suppress lists).
_GENERATE_NOISE = (
    "seem to have been set. `max_new_tokens` will take precedence",
    "Passing `generation_config` together with generation-related arguments",
)


class _DropGenerateNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(s in record.getMessage() for s in _GENERATE_NOISE)


logging.getLogger("transformers.generation.utils").addFilter(_DropGenerateNoise())


def token_budget(n_samples: int, *, prompt_tokens: int = 0) -> int:
    """New tokens allowed for a clip: 8 per second + 16, within the 448-token context."""
    budget = int(TOKENS_PER_SECOND * n_samples / SAMPLE_RATE) + 16
    return max(8, min(budget, MAX_TARGET_TOKENS // 2 - 4 - prompt_tokens, 440 - prompt_tokens))


def trim_repetition(text: str) -> str:
    """Collapse a phrase repeated four or more times in a row to one occurrence: the loop
    ("a mí, a mí, a mí, ...") that greedy decoding can fall into."""
    return _REPEAT.sub(r"\1", text).strip()


def prompt_ids(processor, prompt: str | None):
    """Token ids of a text prompt for ``generate(prompt_ids=...)`` (``<|startofprev|>`` + text)."""
    if not prompt:
        return None
    return processor.get_prompt_ids(prompt, return_tensors="pt")


@torch.no_grad()
def transcribe(
    model,
    processor,
    audios: list[np.ndarray],
    *,
    language: str | None = "es",
    task: str = "transcribe",
    prompts: list[str | None] | None = None,
    batch_size: int = 8,
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    guard: bool = True,
    soft_prompt=None,
) -> list[str]:
    """Transcripts of 16 kHz mono waveforms, in order.

    Clips up to 30 s are decoded in batches (greedy or beam); a longer clip is decoded on its own
    with Whisper's sequential long-form algorithm (timestamps, window by window), so nothing is
    cut off. ``prompts`` (one per clip, or None) go to ``generate(prompt_ids=...)``; the text
    returned excludes them. ``guard`` collapses runaway repetitions (:func:`trim_repetition`).
    ``soft_prompt`` (a :class:`flamenco_lib.soft_prompt.SoftPrompt`) decodes greedily with its
    vectors in the prompt slot instead (clips up to 30 s, no text prompts).
    """
    if prompts is not None and len(prompts) != len(audios):
        raise ValueError(f"{len(prompts)} prompts for {len(audios)} clips")
    if soft_prompt is not None:
        return _transcribe_soft(
            model,
            processor,
            audios,
            soft_prompt,
            language=language,
            batch_size=batch_size,
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            guard=guard,
            prompts=prompts,
        )
    prompts = prompts or [None] * len(audios)
    device, dtype = model.device, next(model.parameters()).dtype
    fe = processor.feature_extractor
    out: list[str | None] = [None] * len(audios)
    gen = dict(language=language, task=task, num_beams=num_beams, do_sample=False)

    short = [i for i, a in enumerate(audios) if len(a) <= N_SAMPLES]
    # a batch shares one prompt (generate takes one prompt_ids); group by prompt
    groups: dict = {}
    for i in short:
        groups.setdefault(prompts[i], []).append(i)
    for prompt, idx in groups.items():
        pids = prompt_ids(processor, prompt)
        n_prompt = 0 if pids is None else len(pids)
        for b in range(0, len(idx), batch_size):
            chunk = idx[b : b + batch_size]
            feats = fe(
                [audios[i] for i in chunk], sampling_rate=SAMPLE_RATE, return_tensors="pt"
            ).input_features
            budget = max_new_tokens or token_budget(
                max(len(audios[i]) for i in chunk), prompt_tokens=n_prompt
            )
            kwargs = dict(gen, max_new_tokens=budget)
            if pids is not None:
                kwargs["prompt_ids"] = pids.to(device)
            ids = model.generate(feats.to(device, dtype), **kwargs)
            texts = processor.batch_decode(ids, skip_special_tokens=True)
            for i, text in zip(chunk, texts):
                out[i] = _strip_prompt(text, prompt)
    for i, a in enumerate(audios):
        if out[i] is None:  # longer than 30 s: sequential long-form decoding
            feats = fe(
                a,
                sampling_rate=SAMPLE_RATE,
                return_tensors="pt",
                truncation=False,
                padding="longest",
                return_attention_mask=True,
            )
            kwargs = dict(gen, return_timestamps=True, condition_on_prev_tokens=False)
            pids = prompt_ids(processor, prompts[i])
            if pids is not None:
                kwargs["prompt_ids"] = pids.to(device)
            ids = model.generate(
                feats.input_features.to(device, dtype),
                attention_mask=feats.attention_mask.to(device),
                **kwargs,
            )
            out[i] = _strip_prompt(
                processor.batch_decode(ids, skip_special_tokens=True)[0], prompts[i]
            )
    return [trim_repetition(t) if guard else t.strip() for t in out]


def _transcribe_soft(
    model,
    processor,
    audios,
    soft,
    *,
    language,
    batch_size,
    num_beams,
    max_new_tokens,
    guard,
    prompts,
) -> list[str]:
    if num_beams != 1:
        raise ValueError("a soft prompt decodes greedily only: use num_beams=1")
    if prompts is not None and any(p for p in prompts):
        raise ValueError("a soft prompt takes the prompt slot: pass no text prompts with it")
    too_long = [i for i, a in enumerate(audios) if len(a) > N_SAMPLES]
    if too_long:
        raise ValueError(
            f"a soft prompt decodes clips of at most 30 s; clip {too_long[0]} lasts "
            f"{len(audios[too_long[0]]) / SAMPLE_RATE:.1f} s (cut it into segments)"
        )
    device, dtype = model.device, next(model.parameters()).dtype
    out = []
    for b in range(0, len(audios), batch_size):
        chunk = audios[b : b + batch_size]
        feats = processor.feature_extractor(
            chunk, sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features
        budget = max_new_tokens or token_budget(max(len(a) for a in chunk), prompt_tokens=soft.k)
        ids = greedy_decode(
            model,
            processor.tokenizer,
            feats.to(device, dtype),
            soft,
            language=language or "es",
            max_new_tokens=budget,
        )
        out += processor.batch_decode(ids, skip_special_tokens=True)
    return [trim_repetition(t) if guard else t.strip() for t in out]


def _strip_prompt(text: str, prompt: str | None) -> str:
    text = text.strip()
    if prompt and text.startswith(prompt.strip()):
        text = text[len(prompt.strip()) :]
    return text.strip()
