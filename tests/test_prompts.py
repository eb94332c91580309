"""Prompts: builder, cap, loss masking, and the training layout equal to generate(prompt_ids=...)."""

from __future__ import annotations

import numpy as np
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


def test_catalogue_training_prompt_is_the_copla_or_a_near_miss():
    from flamenco_lib.data.lyrics import Copla

    coplas = [
        Copla("a1", "soleá", ("la luna", "de Triana")),
        Copla("a2", "soleá", ("mi mare", "la fragua")),
        Copla("b1", "tangos", ("por la calle",)),
        Copla("t9", "soleá", ("una copla", "de test")),
    ]
    rows = [
        {"copla_id": "a1", "palo": "soleá"},
        {"copla_id": "b1", "palo": "tangos"},
        {"copla_id": "a2", "palo": "soleá"},
        {"copla_id": None, "palo": None},  # real speech: no copla
    ]
    by_palo = prompts.training_coplas(rows, coplas)
    # the near misses are training coplas: t9, never trained on, is never shown
    assert {c.id for c in by_palo["soleá"]} == {"a1", "a2"}
    rng = np.random.default_rng(0)
    got = [prompts.catalogue_choice(rows[0], by_palo, rng) for _ in range(4000)]
    assert set(got) == {"la luna, de Triana", "mi mare, la fragua"}
    assert abs(np.mean([g == "mi mare, la fragua" for g in got]) - prompts.NEAR_MISS) < 0.03
    # alone in its palo: always the true copla; no copla: no prompt
    assert {prompts.catalogue_choice(rows[1], by_palo, rng) for _ in range(50)} == {"por la calle"}
    assert prompts.catalogue_choice(rows[3], by_palo, rng) is None
    with pytest.raises(ValueError, match="one found copla"):
        prompts.prompts_for(rows, kinds=["catalogue"])
    assert prompts.prompts_for(
        rows[:2], kinds=["palo", "catalogue"], found=["la luna, de Triana", None]
    ) == ["Soleá. la luna, de Triana.", "Tangos."]


def test_one_kind_each_gives_each_example_one_kind_it_has():
    rows = [
        {"palo": "soleá", "previous_text": "la luna de Triana"},
        {"palo": "soleá", "previous_text": None},  # the first line of a song
        {"palo": None, "previous_text": None},  # real speech: nothing to prompt with
    ]
    found = ["mi mare, la fragua", "mi mare, la fragua", None]
    rng = np.random.default_rng(0)
    draws = [
        prompts.one_kind_each(rows, kinds=["previous", "catalogue"], rng=rng, found=found)
        for _ in range(400)
    ]
    first = [d[0] for d in draws]
    # one kind at a time, never both in one prompt, each about half of the time
    assert set(first) == {"la luna de Triana.", "mi mare, la fragua."}
    assert abs(np.mean([f == "mi mare, la fragua." for f in first]) - 0.5) < 0.08
    assert {d[1] for d in draws} == {"mi mare, la fragua."}  # no previous line: the copla
    assert {d[2] for d in draws} == {None}
    # the lexicon goes to flamenco rows only, the palo names itself
    out = prompts.one_kind_each(rows, kinds=["lexicon"], rng=rng, words=["pena"])
    assert out == ["pena.", "pena.", None]
    assert prompts.one_kind_each(rows[:1], kinds=["palo"], rng=rng) == ["Soleá."]


def test_mismatched_coplas_never_give_a_row_its_own_copla():
    from flamenco_lib.catalogue import Catalogue

    cat = Catalogue(["a", "b", "c"], ["la luna", "mi mare", "la fragua"])
    rows = [{"copla_id": i} for i in "abcab" * 20]
    got = prompts.mismatched_coplas(rows, cat, seed=1)
    own = dict(zip(cat.ids, cat.texts))
    assert all(g != own[r["copla_id"]] for r, g in zip(rows, got))
    assert set(got) == set(cat.texts)  # any other copla, not one fixed text
    assert got == prompts.mismatched_coplas(rows, cat, seed=1)  # seeded
    assert got != prompts.mismatched_coplas(rows, cat, seed=2)
