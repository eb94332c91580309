"""Stopping a decoding loop early: which token tails count as a loop, per-clip budgets, and the
criterion honoured the same way by ``generate`` and the hand-written greedy loop."""

from __future__ import annotations

import pytest
import torch

from flamenco_lib.transcription import LoopStop, looping, trim_repetition


def _row(*parts):
    return [t for p in parts for t in p]


def test_a_tail_repeating_one_block_is_a_loop():
    prefix = [50258, 50262, 50359, 50363]
    rows = [
        _row(prefix, [7, 8], [1, 2, 3] * 6),  # period 3, 6 repeats (16 tokens need 6 at p=3)
        _row(prefix, [7, 8], [1, 2, 3] * 5),  # 5 repeats of 3 tokens: 15 < 16, goes on
        _row(prefix, [5, 6], [1, 2] * 8),  # period 2, 8 repeats
        _row(prefix, [5, 6, 5], [2] * 15 + [9]),  # the tail itself is not periodic
        _row(prefix, list(range(100, 120)) * 4),  # a 20-token verse sung four times
        _row(prefix, list(range(100, 120)) * 3 + list(range(100, 119))),  # 3 and a bit
    ]
    n = max(map(len, rows))
    ids = torch.tensor([[0] * (n - len(r)) + r for r in rows])  # left-padded to one length
    assert looping(ids).tolist() == [True, False, True, False, True, False]


def test_a_short_interjection_is_not_a_loop():
    """'¡ay, ay, ay, ay!' is sung on purpose: two tokens four times stays under LOOP_MIN_TOKENS."""
    ids = torch.tensor([[50258, 11, 12] + [40, 41] * 4])
    assert not looping(ids).item()
    assert looping(ids, min_tokens=0).item()  # the rule without the minimum would stop it


def test_each_row_stops_at_its_own_budget():
    stop = LoopStop([2, 5])
    prefix = [50258, 50262, 50359, 50363]
    seen = []
    for k in range(1, 7):  # generate calls the criterion after each new token
        ids = torch.tensor([prefix + list(range(10, 10 + k))] * 2)
        seen.append(stop(ids, None).tolist())
    assert seen[0] == [False, False]
    assert seen[1] == [True, False]  # two tokens: the first row's budget
    assert seen[4] == [True, True]


def test_what_stops_as_a_loop_the_guard_would_cut_anyway():
    """The stopping rule agrees with the text guard: a looped tail becomes one occurrence."""
    looped = "y la luna me dijo " + "que no, " * 6
    assert trim_repetition(looped) == "y la luna me dijo que no,"


@pytest.mark.model
def test_generate_and_the_greedy_loop_honour_the_criterion_alike(base, real_speech):
    from transformers import StoppingCriteriaList

    from flamenco_lib.tokens import greedy_decode

    _, model, processor = base
    tok = processor.tokenizer
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    feats = processor.feature_extractor(
        [real_speech[: 16000 * 6], real_speech],
        sampling_rate=16000,
        return_tensors="pt",
    ).input_features
    budgets = [3, 40]
    ref = model.generate(
        feats,
        language="es",
        task="transcribe",
        max_new_tokens=40,
        stopping_criteria=StoppingCriteriaList([LoopStop(budgets)]),
    )
    ref_ids = [[t for t in row.tolist() if t < eot] for row in ref]
    ours = greedy_decode(model, tok, feats, None, max_new_tokens=40, stop=LoopStop(budgets))
    assert ours == ref_ids
    assert len(ours[0]) == 3 and len(ours[1]) > 3  # the first clip stopped at its own budget


def test_bf16_decoding_runs_the_model_only_under_autocast(base, real_speech):
    """``bf16=True`` autocasts the model, not the features (a bf16 STFT cannot go to numpy), and
    transcribes a real utterance nearly as fp32 does (benchmarks/evaluate.py measures speed)."""
    from flamenco_lib import metrics
    from flamenco_lib.transcription import transcribe

    _, model, processor = base
    fp32 = transcribe(model, processor, [real_speech])[0]
    bf16 = transcribe(model, processor, [real_speech], bf16=True)[0]
    assert bf16 and metrics.wer([fp32], [bf16]) <= 0.2, (fp32, bf16)
    assert next(model.parameters()).dtype == torch.float32  # the weights stay fp32
