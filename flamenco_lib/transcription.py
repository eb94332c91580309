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

__all__ = [
    "DECODING",
    "LoopStop",
    "looping",
    "prompt_ids",
    "suppress",
    "token_budget",
    "transcribe",
    "trim_repetition",
]

MAX_TARGET_TOKENS = 448  # Whisper's decoder context
TOKENS_PER_SECOND = 8  # generous budget: Spanish speech runs at ~3-5 tokens/s
# A version of the decoding rules below: results computed with other rules are not reused
# (flamenco_lib.results keeps a run only when its inputs, this included, are unchanged).
DECODING = "loop-stop-1"
# A sequence stops once its last tokens repeat one block LOOP_REPEATS times in a row, and the
# repeated tokens number at least LOOP_MIN_TOKENS (so "¡ay, ay, ay, ay!" sung on purpose goes on).
LOOP_REPEATS = 4
LOOP_MIN_TOKENS = 16
LOOP_MAX_PERIOD = 40
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


def looping(
    ids: torch.Tensor,
    *,
    repeats: int = LOOP_REPEATS,
    min_tokens: int = LOOP_MIN_TOKENS,
    max_period: int = LOOP_MAX_PERIOD,
) -> torch.Tensor:
    """Which rows of ``ids`` (batch, length) end in a loop: their last tokens are one block of
    ``p`` tokens repeated at least ``max(repeats, ceil(min_tokens / p))`` times, for some period
    ``p <= max_period``. Greedy decoding that reaches such a tail almost never leaves it before
    its token budget; :func:`trim_repetition` would collapse the repeats to one afterwards anyway.
    """
    n = ids.shape[1]
    out = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    for p in range(1, max_period + 1):
        k = max(repeats, -(-min_tokens // p))  # repeats needed at this period
        if k * p > n:
            break
        tail = ids[:, n - k * p :]
        # periodic with period p: every token equals the one p places before it
        out |= (tail[:, p:] == tail[:, :-p]).all(dim=1)
    return out


class LoopStop:
    """A ``generate`` stopping criterion, per sequence: stop a sequence that :func:`looping`
    finds in a loop, or that has used its own token budget (``budgets``: one per row, so a short
    clip batched with a long one gets its own budget, not the long clip's). A stopped sequence is
    padded while the rest of its batch goes on; the batch ends when every sequence has stopped."""

    def __init__(self, budgets: list[int] | None = None):
        self.budgets = budgets
        self.start: int | None = None  # length of the decoder prefix (prompt, special tokens)

    def __call__(self, input_ids: torch.Tensor, scores=None, **kwargs) -> torch.Tensor:
        if self.start is None:  # first call: one token generated after the prefix
            self.start = input_ids.shape[1] - 1
        stop = looping(input_ids)
        if self.budgets is not None:
            used = input_ids.shape[1] - self.start
            budgets = torch.as_tensor(self.budgets, device=input_ids.device)
            stop |= used >= budgets
        return stop


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
    early_stop: bool = True,
    bf16: bool = False,
) -> list[str]:
    """Transcripts of 16 kHz mono waveforms, in order.

    Clips up to 30 s are decoded in batches (greedy or beam); a longer clip is decoded on its own
    with Whisper's sequential long-form algorithm (timestamps, window by window), so nothing is
    cut off. ``prompts`` (one per clip, or None) go to ``generate(prompt_ids=...)``; the text
    returned excludes them. ``guard`` collapses runaway repetitions (:func:`trim_repetition`);
    with ``early_stop`` (and ``guard``) a greedy clip stops decoding as soon as it loops and at its
    own token budget (:class:`LoopStop`) instead of running to its batch's budget.
    ``soft_prompt`` (a :class:`flamenco_lib.soft_prompt.SoftPrompt`) decodes greedily with its
    vectors in the prompt slot instead (clips up to 30 s, no text prompts). ``bf16`` runs the
    model (not the features) under bf16 autocast (fast only where the CPU has native bf16:
    :func:`flamenco_lib.training.auto_precision`; ``benchmarks/evaluate.py`` measures it).
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
            early_stop=early_stop,
            bf16=bf16,
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
        # clips of similar length share a batch: a batch decodes until its longest transcript ends
        idx = sorted(idx, key=lambda i: len(audios[i]))
        for b in range(0, len(idx), batch_size):
            chunk = idx[b : b + batch_size]
            feats = fe(
                [audios[i] for i in chunk], sampling_rate=SAMPLE_RATE, return_tensors="pt"
            ).input_features
            budgets = [
                max_new_tokens or token_budget(len(audios[i]), prompt_tokens=n_prompt)
                for i in chunk
            ]
            kwargs = dict(gen, max_new_tokens=max(budgets))
            # greedy: stop loops early, each clip at its own budget (beam search decodes to the
            # budget: its hypotheses are not one row per clip)
            if guard and early_stop and num_beams == 1:
                from transformers import StoppingCriteriaList

                kwargs["stopping_criteria"] = StoppingCriteriaList([LoopStop(budgets)])
            if pids is not None:
                kwargs["prompt_ids"] = pids.to(device)
            with _autocast(device, bf16):
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
            with _autocast(device, bf16):
                ids = model.generate(
                    feats.input_features.to(device, dtype),
                    attention_mask=feats.attention_mask.to(device),
                    **kwargs,
                )
            out[i] = _strip_prompt(
                processor.batch_decode(ids, skip_special_tokens=True)[0], prompts[i]
            )
    return [trim_repetition(t) if guard else t.strip() for t in out]


def _autocast(device, enabled: bool):
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


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
    early_stop,
    bf16=False,
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
        budgets = [max_new_tokens or token_budget(len(a), prompt_tokens=soft.k) for a in chunk]
        with _autocast(device, bf16):
            ids = greedy_decode(
                model,
                processor.tokenizer,
                feats.to(device, dtype),
                soft,
                language=language or "es",
                max_new_tokens=max(budgets),
                stop=LoopStop(budgets) if guard and early_stop else None,
            )
        out += processor.batch_decode(ids, skip_special_tokens=True)
    return [trim_repetition(t) if guard else t.strip() for t in out]


def _strip_prompt(text: str, prompt: str | None) -> str:
    text = text.strip()
    if prompt and text.startswith(prompt.strip()):
        text = text[len(prompt.strip()) :]
    return text.strip()
