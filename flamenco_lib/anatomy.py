"""Whisper's anatomy, measured: the sizes of the family (configs built offline, parameters counted
without allocating a weight), encoder states of one clip at different places in the 30 s window,
the cross-attention of the alignment heads, and greedy decoding written out step by step.
Explained in ``notebooks/04_whisper_anatomy.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import tokens
from .audio import HOP_LENGTH, N_SAMPLES, SAMPLE_RATE

ENCODER_FRAMES = 1500  # encoder states per 30 s window: 3000 mel frames, conv stride 2
ENCODER_FRAME_S = 2 * HOP_LENGTH / SAMPLE_RATE  # 0.02 s of audio per encoder state
SAMPLES_PER_STATE = 2 * HOP_LENGTH  # 320 samples per encoder state

# The released sizes (Radford et al. 2022, Table 1, and the configs of openai/whisper-*):
# width d_model, layers per stack (encoder = decoder), attention heads; the feed-forward
# layer is 4 x d_model wide. large-v3 reads 128 mel bands and has one more token (<|yue|>).
WHISPER_DIMS = {
    "tiny": {"d_model": 384, "layers": 4, "heads": 6, "n_mels": 80, "vocab": 51865},
    "base": {"d_model": 512, "layers": 6, "heads": 8, "n_mels": 80, "vocab": 51865},
    "small": {"d_model": 768, "layers": 12, "heads": 12, "n_mels": 80, "vocab": 51865},
    "medium": {"d_model": 1024, "layers": 24, "heads": 16, "n_mels": 80, "vocab": 51865},
    "large-v3": {"d_model": 1280, "layers": 32, "heads": 20, "n_mels": 128, "vocab": 51866},
}


def whisper_config(size: str):
    """A ``transformers.WhisperConfig`` for a released size, built offline from :data:`WHISPER_DIMS`."""
    from transformers import WhisperConfig

    if size not in WHISPER_DIMS:
        raise KeyError(f"{size!r}: not one of {', '.join(WHISPER_DIMS)}")
    d = WHISPER_DIMS[size]
    return WhisperConfig(
        vocab_size=d["vocab"],
        num_mel_bins=d["n_mels"],
        d_model=d["d_model"],
        encoder_layers=d["layers"],
        decoder_layers=d["layers"],
        encoder_attention_heads=d["heads"],
        decoder_attention_heads=d["heads"],
        encoder_ffn_dim=4 * d["d_model"],
        decoder_ffn_dim=4 * d["d_model"],
        max_source_positions=ENCODER_FRAMES,
        max_target_positions=448,
        tie_word_embeddings=True,
    )


def count_parameters(config) -> dict:
    """Parameters of ``WhisperForConditionalGeneration(config)``, counted on the meta device
    (shapes only, no memory). The output projection is tied to the token embedding and counted
    once. Returns ``{"total", "encoder", "decoder", "token_embedding"}``."""
    from transformers import WhisperForConditionalGeneration

    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    return parameter_counts(model)


def parameter_counts(model) -> dict:
    """``{"total", "encoder", "decoder", "token_embedding"}`` of a Whisper model (real or meta);
    shared tensors are counted once, the decoder's count includes the token embedding."""
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "encoder": sum(p.numel() for p in model.model.encoder.parameters()),
        "decoder": sum(p.numel() for p in model.model.decoder.parameters()),
        "token_embedding": model.model.decoder.embed_tokens.weight.numel(),
    }


def size_table(sizes=tuple(WHISPER_DIMS)) -> list[dict]:
    """One row per size: its dimensions and its parameter counts (:func:`count_parameters`)."""
    rows = []
    for size in sizes:
        d = WHISPER_DIMS[size]
        counts = count_parameters(whisper_config(size))
        rows.append(
            {
                "size": size,
                "n_mels": d["n_mels"],
                "vocab": d["vocab"],
                "layers": d["layers"],
                "d_model": d["d_model"],
                "heads": d["heads"],
                "ffn": 4 * d["d_model"],
                "parameters": counts["total"],
                "encoder": counts["encoder"],
                "decoder": counts["decoder"],
                "token_embedding": counts["token_embedding"],
            }
        )
    return rows


# ------------------------------------------------------------------------------------------
# The 30 s window: placing a clip, encoder states, their difference
# ------------------------------------------------------------------------------------------


def place_in_window(
    audio: np.ndarray, *, offset_s: float = 0.0, length: int = N_SAMPLES
) -> np.ndarray:
    """The clip inside a window of ``length`` samples (30 s) of digital silence, starting at
    ``offset_s`` seconds: ``offset_s`` of leading zeros, the rest trailing. Shape = (length,)."""
    start = round(offset_s * SAMPLE_RATE)
    if start < 0 or start + len(audio) > length:
        raise ValueError(
            f"a {len(audio) / SAMPLE_RATE:.2f} s clip at {offset_s} s does not fit in "
            f"{length / SAMPLE_RATE:.0f} s"
        )
    out = np.zeros(length, dtype=np.float32)
    out[start : start + len(audio)] = audio
    return out


@torch.no_grad()
def encoder_states(model, input_features: torch.Tensor) -> torch.Tensor:
    """The encoder's output, shape = (batch, 1500, d_model), for log-Mel input of shape
    (batch, n_mels, 3000)."""
    p = next(model.parameters())
    return model.model.encoder(input_features.to(p.device, p.dtype)).last_hidden_state


def state_difference(reference: torch.Tensor, other: torch.Tensor, *, shift: int = 0) -> np.ndarray:
    """Relative difference per frame, ``|other[t + shift] - reference[t]| / |reference[t]|``, of
    two encoder outputs (``(1500, d)`` each; ``shift``: how many states later ``other`` starts
    the same audio). Shape = (1500 - shift,)."""
    ref = reference[: reference.shape[0] - shift].float()
    oth = other[shift:].float()
    return ((oth - ref).norm(dim=-1) / ref.norm(dim=-1)).cpu().numpy()


# ------------------------------------------------------------------------------------------
# Decoding by hand
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of :func:`greedy_steps`."""

    token: int  # the chosen token id (the argmax)
    top_ids: tuple[int, ...]  # the k likeliest ids, likeliest first
    top_probs: tuple[float, ...]  # their probabilities (after the suppressions of generate)


def prefix_ids(processor, *, language: str = "es", task: str = "transcribe") -> list[int]:
    """The decoder prompt of transcription without timestamps:
    ``<|startoftranscript|> <|es|> <|transcribe|> <|notimestamps|>``."""
    return tokens.prefix_ids(processor.tokenizer, language=language, task=task)


@torch.no_grad()
def greedy_steps(
    model, states: torch.Tensor, prefix: list[int], *, max_new_tokens: int = 64, top_k: int = 5
) -> list[Step]:
    """Greedy decoding as a plain loop: call the model on the growing ``decoder_input_ids``
    (no cache), take the argmax of the last position, append it, stop at ``<|endoftext|>``.

    The same suppressions as ``model.generate`` (the generation config's ``suppress_tokens``
    always, ``begin_suppress_tokens`` at the first step) make it equal to
    ``generate(..., do_sample=False, num_beams=1)`` token for token.

    Parameters
    ----------
    states : torch.Tensor, shape = (1, n_states, d_model)
        Encoder output (:func:`encoder_states`); fewer than 1500 states amounts to masking the
        others out of the cross-attention.
    prefix : list of int
        The forced decoder prompt (:func:`prefix_ids`).

    Returns
    -------
    list of Step, the last one ``<|endoftext|>`` unless ``max_new_tokens`` ran out.
    """
    gc = model.generation_config
    eot = gc.eos_token_id
    ids = torch.tensor([prefix], device=states.device)
    steps: list[Step] = []
    for i in range(max_new_tokens):
        logits = (
            model(encoder_outputs=(states,), decoder_input_ids=ids, use_cache=False)
            .logits[0, -1]
            .float()
        )
        tokens.suppress(logits, gc, first_step=i == 0)
        probs = logits.softmax(-1)
        top = probs.topk(top_k)
        token = int(top.indices[0])
        steps.append(
            Step(token, tuple(int(t) for t in top.indices), tuple(float(p) for p in top.values))
        )
        if token == eot:
            break
        ids = torch.cat([ids, torch.tensor([[token]], device=ids.device)], dim=1)
    return steps


@torch.no_grad()
def cross_attention(model, states: torch.Tensor, tokens: list[int], *, heads=None) -> np.ndarray:
    """Cross-attention weights of the decoder reading ``tokens`` (prefix included) over the
    encoder states: shape = (n_heads_selected, n_tokens, n_states).

    ``heads``: ``[(layer, head), ...]``, default the generation config's ``alignment_heads``
    (the heads that follow the audio in time, used for word timestamps). Needs the eager
    attention (``model.set_attn_implementation("eager")``): the fused kernels return no weights.
    """
    heads = heads if heads is not None else model.generation_config.alignment_heads
    out = model(
        encoder_outputs=(states,),
        decoder_input_ids=torch.tensor([tokens], device=states.device),
        output_attentions=True,
        use_cache=False,
    )
    if out.cross_attentions is None or out.cross_attentions[0] is None:
        raise RuntimeError(
            "no attention weights: call model.set_attn_implementation('eager') first"
        )
    return np.stack(
        [out.cross_attentions[layer][0, head].float().cpu().numpy() for layer, head in heads]
    )
