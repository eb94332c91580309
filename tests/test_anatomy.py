"""flamenco_lib.anatomy: sizes from configs, the 30 s window, greedy decoding by hand.

The model tests use the real offline whisper-base (fixture ``base``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flamenco_lib import anatomy as AN
from flamenco_lib import audio as A

# Parameter counts of the released checkpoints (HF ``model.num_parameters()``, tied weights once).
KNOWN_PARAMETERS = {
    "tiny": 37_760_640,
    "base": 72_593_920,
    "small": 241_734_912,
    "medium": 763_857_920,
    "large-v3": 1_543_490_560,
}


@pytest.mark.parametrize("size", ["tiny", "base", "large-v3"])
def test_parameter_counts_from_configs(size):
    counts = AN.count_parameters(AN.whisper_config(size))
    assert counts["total"] == KNOWN_PARAMETERS[size]
    assert counts["encoder"] + counts["decoder"] == counts["total"]  # the output projection is tied


def test_size_table_and_unknown_size():
    rows = {r["size"]: r for r in AN.size_table(("tiny", "large-v3"))}
    assert rows["large-v3"]["n_mels"] == 128 and rows["large-v3"]["vocab"] == 51866
    assert rows["tiny"]["ffn"] == 4 * 384
    with pytest.raises(KeyError, match="not one of"):
        AN.whisper_config("huge")


def test_place_in_window():
    clip = np.ones(SR := A.SAMPLE_RATE, dtype=np.float32)
    win = AN.place_in_window(clip, offset_s=2.0)
    assert (
        win.shape == (A.N_SAMPLES,)
        and win.sum() == SR
        and win[2 * SR] == 1
        and win[2 * SR - 1] == 0
    )
    with pytest.raises(ValueError, match="does not fit"):
        AN.place_in_window(clip, offset_s=29.5)


def test_state_difference_is_zero_for_a_shifted_copy():
    h = torch.randn(100, 8)
    shifted = torch.cat([torch.randn(5, 8), h[:95]])
    assert np.allclose(AN.state_difference(h, shifted, shift=5), 0)
    assert AN.state_difference(h, shifted, shift=5).shape == (95,)


@pytest.mark.model
def test_base_config_equals_the_real_model(base):
    _, model, _ = base
    assert AN.parameter_counts(model) == AN.count_parameters(AN.whisper_config("base"))


@pytest.mark.model
def test_greedy_loop_equals_generate(base, real_speech):
    _, model, processor = base
    feats = processor.feature_extractor(
        real_speech, sampling_rate=A.SAMPLE_RATE, return_tensors="pt"
    ).input_features
    prefix = AN.prefix_ids(processor)
    assert processor.tokenizer.convert_ids_to_tokens(prefix) == [
        "<|startoftranscript|>",
        "<|es|>",
        "<|transcribe|>",
        "<|notimestamps|>",
    ]
    steps = AN.greedy_steps(
        model, AN.encoder_states(model, feats), prefix, max_new_tokens=24, top_k=3
    )
    with torch.no_grad():
        gen = model.generate(
            feats, language="es", task="transcribe", do_sample=False, num_beams=1, max_new_tokens=24
        )[0].tolist()
    gen = gen[len(prefix) :] if gen[: len(prefix)] == prefix else gen
    eot = model.generation_config.eos_token_id
    assert [s.token for s in steps if s.token != eot] == [t for t in gen if t != eot]
    assert all(s.token == s.top_ids[0] and len(s.top_probs) == 3 for s in steps)
    assert all(a >= b for s in steps for a, b in zip(s.top_probs, s.top_probs[1:]))


@pytest.mark.model
def test_cross_attention_of_the_alignment_heads(base, real_speech):
    _, model, processor = base
    feats = processor.feature_extractor(
        real_speech[: 3 * A.SAMPLE_RATE], sampling_rate=A.SAMPLE_RATE, return_tensors="pt"
    ).input_features
    states = AN.encoder_states(model, feats)
    tokens = (
        AN.prefix_ids(processor) + processor.tokenizer(" Para", add_special_tokens=False).input_ids
    )
    before = model.config._attn_implementation
    try:
        model.set_attn_implementation("eager")
        w = AN.cross_attention(model, states, tokens)
    finally:
        model.set_attn_implementation(before)
    assert w.shape == (len(model.generation_config.alignment_heads), len(tokens), AN.ENCODER_FRAMES)
    assert np.allclose(w.sum(axis=-1), 1, atol=1e-4)
