"""Whisper's decoder tokens, shared by training, transcription and the theory notebooks.

A leaf module: it imports nothing from the rest of the library, so every layer can use it.

- :func:`prefix_ids` — ``<|startoftranscript|><|es|><|transcribe|><|notimestamps|>``, the four
  tokens every transcript starts with;
- :func:`label_ids` — a transcript's own tokens (with Whisper's leading space);
- :func:`timestamp_id` — the id of a time token (``<|0.00|>`` ... ``<|30.00|>``, every 0.02 s);
- :func:`suppress` — the tokens ``generate`` never emits (the generation config's lists);
- :func:`greedy_decode` — a hand-written greedy loop, equal to ``generate`` token for token,
  that also accepts a soft prompt (learned vectors in the prompt slot, which ``generate`` cannot
  take).

Explained in ``notebooks/04_whisper_anatomy.ipynb`` (the prefix, the greedy loop) and
``notebooks/09_stage3_prompts.ipynb`` (the prompt slot).
"""

from __future__ import annotations

import torch


def prefix_ids(tokenizer, *, language: str = "es", task: str = "transcribe") -> list[int]:
    """``<|startoftranscript|><|lang|><|task|><|notimestamps|>`` as ids."""
    return tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>", "<|notimestamps|>"]
    )


TIME_STEP_S = 0.02  # Whisper's timestamp tokens: one every 20 ms of the 30 s window
MAX_TIME_S = 30.0


def timestamp_id(tokenizer, seconds: float) -> int:
    """The id of Whisper's timestamp token nearest to ``seconds`` (0 to 30): the 1501 time
    tokens ``<|0.00|>``, ``<|0.02|>``, ... ``<|30.00|>`` follow ``<|notimestamps|>`` in the
    vocabulary (the generation config's ``no_timestamps_token_id + 1`` is ``<|0.00|>``)."""
    if not 0.0 <= seconds <= MAX_TIME_S:
        raise ValueError(f"a timestamp must lie in [0, {MAX_TIME_S:g}] s, got {seconds!r}")
    first = tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1
    return first + int(round(seconds / TIME_STEP_S))


def label_ids(tokenizer, text: str) -> list[int]:
    """The text's token ids (a leading space, as Whisper writes a transcript after the prefix)."""
    return tokenizer.encode(" " + text.strip(), add_special_tokens=False)


def suppress(logits: torch.Tensor, generation_config, *, first_step: bool) -> torch.Tensor:
    """Mask (in place, to -inf) the tokens ``generate`` never emits: the generation config's
    ``suppress_tokens`` always, its ``begin_suppress_tokens`` at the first step. ``logits``:
    (..., vocab). For hand-written greedy loops that must equal ``generate`` token for token."""
    always = list(generation_config.suppress_tokens or [])
    if always:
        logits[..., always] = -torch.inf
    begin = list(generation_config.begin_suppress_tokens or [])
    if first_step and begin:
        logits[..., begin] = -torch.inf
    return logits


@torch.no_grad()
def greedy_decode(
    model,
    tokenizer,
    input_features: torch.Tensor,
    soft=None,
    *,
    language: str = "es",
    max_new_tokens: int = 100,
    stop=None,
) -> list[list[int]]:
    """Greedy transcription, optionally with a soft prompt: the generated token ids of each clip,
    without special tokens. Applies the generation config's suppress lists as ``generate`` does.

    Parameters
    ----------
    input_features : torch.Tensor, shape (batch, n_mels, 3000)
        Log-Mel features of up to 30 s each.
    soft : flamenco_lib.soft_prompt.SoftPrompt, optional
        Anything with ``decoder_embeds(model, tokenizer, ids)``: its vectors go after
        ``<|startofprev|>``, before the prefix. None: the prefix alone.
    stop : callable, optional
        A per-sequence stopping criterion as ``generate`` takes one: called after each step with
        the tokens generated so far, (batch, steps), it returns which sequences end there
        (e.g. :class:`flamenco_lib.transcription.LoopStop`).
    """
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    gc = model.generation_config
    device = input_features.device
    enc = model.model.encoder(input_features.to(next(model.parameters()).dtype)).last_hidden_state
    b = enc.shape[0]
    prefix = torch.tensor([prefix_ids(tokenizer, language=language)] * b, device=device)
    if soft is not None:
        embeds = soft.decoder_embeds(model, tokenizer, prefix)
    else:
        embeds = model.get_decoder().embed_tokens(prefix)
    out = model(encoder_outputs=(enc,), decoder_inputs_embeds=embeds, use_cache=True)
    past, logits = out.past_key_values, out.logits[:, -1]
    tokens = [[] for _ in range(b)]
    done = torch.zeros(b, dtype=torch.bool, device=device)
    steps = []
    for step in range(max_new_tokens):
        logits = suppress(logits.clone(), gc, first_step=step == 0)
        logits[:, tokenizer.convert_tokens_to_ids("<|notimestamps|>")] = -float("inf")
        nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, eot), nxt)
        for i in range(b):
            if not done[i] and nxt[i] != eot:
                tokens[i].append(int(nxt[i]))
        done |= nxt == eot
        if stop is not None:
            steps.append(nxt)
            done |= stop(torch.stack(steps, dim=1))
        if done.all():
            break
        out = model(
            encoder_outputs=(enc,),
            decoder_input_ids=nxt[:, None],
            past_key_values=past,
            use_cache=True,
        )
        past, logits = out.past_key_values, out.logits[:, -1]
    return tokens
