"""Prompts: builder, cap, loss masking, and the training layout equal to generate(prompt_ids=...)."""

from __future__ import annotations

import pytest

from flamenco_lib import prompts, training


def test_lexicon_and_builder():
    texts = [
        "Ay, la pena de la fragua",
        "pena y fatigas en la fragua",
        "mi pena, mi mare",
        "la luna",
    ]
    lex = prompts.lexicon(texts, size=3)
    assert (
        lex[0] == "pena" and "fragua" in lex and "la" not in lex and "luna" not in lex
    )  # luna: once only
    assert (
        prompts.build_prompt(
            palo="soleá", previous="Le pregunté a la luna,", words=["pena", "fragua"]
        )
        == "Soleá. Le pregunté a la luna. pena, fragua."
    )
    assert prompts.build_prompt() is None


@pytest.mark.model
def test_prompt_ids_equal_the_processors_and_are_capped(base):
    processor = base[2]
    text = "Soleá. Le pregunté a la luna por qué me daba la espalda."
    assert (
        prompts.prompt_token_ids(processor.tokenizer, text)
        == processor.get_prompt_ids(text).tolist()
    )
    long = " ".join(["fatigas"] * 400)
    ids = prompts.prompt_token_ids(processor.tokenizer, long)
    assert len(ids) == prompts.MAX_PROMPT_TOKENS and ids[
        0
    ] == processor.tokenizer.convert_tokens_to_ids("<|startofprev|>")
    assert prompts.prompt_token_ids(processor.tokenizer, "  ") == []


@pytest.mark.model
def test_no_loss_on_the_prompt(base):
    tok = base[2].tokenizer
    texts = ["La luna de Triana", "mi mare"]
    plain = training.collate_labels(tok, texts)
    with_prompt = training.collate_labels(tok, texts, prompts=["Soleá. pena, fragua.", None])
    n_prompt = len(prompts.prompt_token_ids(tok, "Soleá. pena, fragua."))
    lab, dec = with_prompt["labels"], with_prompt["decoder_input_ids"]
    assert (lab[0, :n_prompt] == -100).all()  # prompt tokens and <|startoftranscript|>: no loss
    assert dec[0, n_prompt] == tok.convert_tokens_to_ids("<|startoftranscript|>")
    # what is learned after the prompt is exactly what is learned without it
    kept = lab[0][lab[0] != -100]
    assert kept.tolist() == plain["labels"][0][plain["labels"][0] != -100].tolist()
    # the unprompted row of the same batch is unchanged
    n = int((plain["labels"][1] != -100).sum())
    assert lab[1, :n].tolist() == plain["labels"][1, :n].tolist()


@pytest.mark.model
@pytest.mark.parametrize("prompt", [None, "Soleá. Le pregunté a la luna. pena, fatigas, fragua."])
def test_training_layout_equals_generate(base, real_speech, prompt):
    """The decoder sees, token for token, the same sequence in training (collator) and in
    ``generate(prompt_ids=...)``: prompt, <|startoftranscript|><|es|><|transcribe|><|notimestamps|>, text."""
    _, model, processor = base
    tok = processor.tokenizer
    feats = processor.feature_extractor(
        real_speech[: 16000 * 6], sampling_rate=16000, return_tensors="pt"
    ).input_features
    fed, out = prompts.generate_decoder_input(
        model, processor, feats, prompt=prompt
    )  # the decoder's full input
    generated = [t for t in out if t < tok.convert_tokens_to_ids("<|endoftext|>")]
    text = tok.decode(generated)
    layout = training.collate_labels(tok, [text], prompts=[prompt])["decoder_input_ids"][0].tolist()
    assert fed[: len(layout)] == layout
    assert len(fed) >= len(layout) and len(generated) > 3
