"""The shared encoder prefix: computed once per clip, read by every model with the same frozen
layers, and never changing a transcript; and the memo of whole encoder outputs that rows of a grid
with the same encoder share."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from flamenco_lib.prefix_cache import (
    EncoderMemo,
    encoder_key,
    feature_key,
    remembered_encoder,
    shared_prefix,
)
from flamenco_lib.transcription import transcribe


@pytest.fixture(scope="module")
def clips(real_speech):
    """Three real clips of different lengths (under 30 s each)."""
    return [real_speech[: 16000 * s] for s in (2, 4, 6)]


@pytest.mark.model
def test_cached_prefix_gives_the_same_encoder_output_and_transcripts(base, clips, tmp_path):
    _, model, processor = base
    feats = processor.feature_extractor(clips, sampling_rate=16000, return_tensors="pt")
    x = feats.input_features
    with torch.inference_mode():
        plain = model.model.encoder(x).last_hidden_state
        with shared_prefix(model, 2, tmp_path) as first:
            filled = model.model.encoder(x).last_hidden_state
        with shared_prefix(model, 2, tmp_path) as second:
            read = model.model.encoder(x).last_hidden_state
    assert (first.computed, first.read) == (3, 0)
    assert (second.computed, second.read) == (0, 3)
    assert torch.equal(plain, filled) and torch.equal(plain, read)
    assert "forward" not in vars(model.model.encoder)  # the block restored the encoder
    want = transcribe(model, processor, clips)
    with shared_prefix(model, 2, tmp_path) as stats:
        got = transcribe(model, processor, clips)
    assert got == want and stats.read == 3 and stats.computed == 0


@pytest.mark.model
def test_a_model_with_other_lower_layers_does_not_read_the_cache(base, clips, tmp_path):
    _, model, processor = base
    x = processor.feature_extractor(clips[:1], sampling_rate=16000, return_tensors="pt")
    x = x.input_features
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.model.encoder.layers[1].fc2.weight.mul_(0.5)  # a frozen layer that differs
        upper = copy.deepcopy(model)
        upper.model.encoder.layers[3].fc2.weight.mul_(0.5)  # only an upper layer differs
    with torch.inference_mode():
        with shared_prefix(model, 2, tmp_path) as a:
            model.model.encoder(x)
        with shared_prefix(other, 2, tmp_path) as b:
            got = other.model.encoder(x).last_hidden_state
        with shared_prefix(upper, 2, tmp_path) as c:
            got_upper = upper.model.encoder(x).last_hidden_state
        assert torch.equal(got, other.model.encoder(x).last_hidden_state)
        assert torch.equal(got_upper, upper.model.encoder(x).last_hidden_state)
    assert (a.computed, b.computed, b.read) == (1, 1, 0)  # its own prefix, not the base's
    assert (c.computed, c.read) == (0, 1)  # the same frozen layers: shared


def test_feature_key_tells_clips_apart():
    a = torch.zeros(80, 3000)
    b = a.clone()
    b[3, 7] = 1e-6
    assert feature_key(a) == feature_key(a.clone()) != feature_key(b)
    assert len(feature_key(torch.from_numpy(np.ones((80, 3000), np.float32)))) == 32


@pytest.mark.model
@pytest.mark.parametrize("bf16", [False, True])
def test_a_clips_encoder_output_does_not_depend_on_its_batch(base, clips, bf16):
    """What the memo relies on: a clip computed with others gives the output it gives alone."""
    _, model, processor = base
    x = processor.feature_extractor(clips, sampling_rate=16000, return_tensors="pt")
    x = x.input_features
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        together = model.model.encoder(x).last_hidden_state
        alone = [model.model.encoder(x[i : i + 1]).last_hidden_state[0] for i in range(3)]
    assert all(torch.equal(together[i], alone[i]) for i in range(3))


@pytest.mark.model
def test_remembered_encoder_outputs_give_the_same_transcripts(base, clips, tmp_path):
    _, model, processor = base
    prompts = ["soleá", None, "bulerías"]  # grouped by prompt: batches unlike the unprompted row
    want = transcribe(model, processor, clips)
    want_prompted = transcribe(model, processor, clips, prompts=prompts)
    memo = EncoderMemo()
    with shared_prefix(model, 2, tmp_path), remembered_encoder(model, memo):
        got = transcribe(model, processor, clips)
        assert (memo.hits, memo.misses, len(memo)) == (0, 3, 3)
        got_prompted = transcribe(model, processor, clips, prompts=prompts)
    assert (memo.hits, memo.misses) == (3, 3)  # the prompted row computed no encoder output
    assert got == want and got_prompted == want_prompted
    assert "forward" not in vars(model.model.encoder)  # both blocks restored the encoder
    with remembered_encoder(model, memo):  # a later block of the same model: still remembered
        assert transcribe(model, processor, clips[:1]) == want[:1]
    assert memo.hits == 4


@pytest.mark.model
def test_the_memo_tells_encoders_and_precisions_apart(base, clips):
    _, model, processor = base
    x = processor.feature_extractor(clips[:1], sampling_rate=16000, return_tensors="pt")
    x = x.input_features
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.model.encoder.layers[5].fc2.weight.mul_(0.5)  # a fine-tuned upper layer
    assert encoder_key(other.model.encoder) != encoder_key(model.model.encoder)
    assert encoder_key(copy.deepcopy(model).model.encoder) == encoder_key(model.model.encoder)
    memo = EncoderMemo()
    with torch.inference_mode():
        with remembered_encoder(model, memo):
            model.model.encoder(x)
        with remembered_encoder(other, memo):
            got = other.model.encoder(x).last_hidden_state
        with remembered_encoder(model, memo), torch.autocast("cpu", dtype=torch.bfloat16):
            model.model.encoder(x)
        assert torch.equal(got, other.model.encoder(x).last_hidden_state)
    assert (memo.hits, memo.misses, len(memo)) == (0, 3, 3)


def test_the_memo_lets_the_oldest_clips_go_beyond_its_size():
    memo = EncoderMemo(max_bytes=3 * 400)  # room for three tensors of 100 float32
    for i in range(4):
        memo.put(("enc", "none", str(i)), torch.full((100,), float(i)))
    assert memo.get(("enc", "none", "0")) is None and len(memo) == 3 and memo.bytes == 1200
    memo.get(("enc", "none", "1"))  # used again: kept over clip 2
    memo.put(("enc", "none", "4"), torch.zeros(100))
    assert memo.get(("enc", "none", "2")) is None
    assert torch.equal(memo.get(("enc", "none", "1")), torch.full((100,), 1.0))
    memo.put(("enc", "none", "big"), torch.zeros(1000))  # larger than the memo: not kept
    assert memo.get(("enc", "none", "big")) is None and len(memo) == 3
