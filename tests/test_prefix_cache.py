"""The shared encoder prefix: computed once per clip, read by every model with the same frozen
layers, and never changing a transcript."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from flamenco_lib.prefix_cache import feature_key, shared_prefix
from flamenco_lib.transcription import transcribe


@pytest.fixture(scope="module")
def clips(real_speech):
    """Three real clips of different lengths (under 30 s each)."""
    return [real_speech[: 16000 * s] for s in (2, 4, 6)]


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
