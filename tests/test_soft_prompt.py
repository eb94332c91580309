"""Soft prompts: few parameters, save/load round trip, and decoding equal to the text prompt it
was initialised from."""

from __future__ import annotations

import pytest
import torch

from flamenco_lib.soft_prompt import SoftPrompt, greedy_decode

TEXT = "Soleá. Le pregunté a la luna. pena, fatigas, fragua."


@pytest.mark.model
def test_soft_prompt_is_small_and_round_trips(base, tmp_path):
    _, model, processor = base
    sp = SoftPrompt(16, model.config.d_model)
    n_model = sum(p.numel() for p in model.parameters())
    assert sp.embeddings.numel() / n_model < 0.01
    sp.save(tmp_path)
    back = SoftPrompt.load(tmp_path)
    assert torch.equal(back.embeddings, sp.embeddings) and back.k == 16
    with pytest.raises(FileNotFoundError, match="no soft prompt"):
        SoftPrompt.load(tmp_path / "elsewhere")


@pytest.mark.model
def test_soft_prompt_from_text_decodes_like_the_text_prompt(base, real_speech):
    _, model, processor = base
    tok = processor.tokenizer
    feats = processor.feature_extractor(
        real_speech[: 16000 * 6], sampling_rate=16000, return_tensors="pt"
    ).input_features
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    ref = model.generate(
        feats,
        language="es",
        task="transcribe",
        max_new_tokens=40,
        prompt_ids=processor.get_prompt_ids(TEXT, return_tensors="pt"),
    )
    ref_ids = [t for t in ref[0].tolist() if t < eot]
    sp = SoftPrompt.from_text(model, tok, TEXT)
    ours = greedy_decode(model, tok, feats, sp, max_new_tokens=40)[0]
    assert ours == ref_ids
    # no soft prompt: equal to plain greedy generate
    plain = [
        t
        for t in model.generate(feats, language="es", task="transcribe", max_new_tokens=40)[
            0
        ].tolist()
        if t < eot
    ]
    assert greedy_decode(model, tok, feats, None, max_new_tokens=40)[0] == plain
    # the layout: <|startofprev|>, k vectors, then the 4 prefix tokens; the vectors are trainable
    from flamenco_lib.training import prefix_ids

    emb = sp.decoder_embeds(model, tok, torch.tensor([prefix_ids(tok)]))
    assert emb.shape == (1, 1 + sp.k + 4, model.config.d_model)
    emb.sum().backward()
    assert sp.embeddings.grad is not None and sp.embeddings.grad.abs().sum() > 0
