"""CTC from scratch (flamenco_lib.ctc) against torch and against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from flamenco_lib import ctc


def _random_case(seed: int, *, T: int, N: int, C: int, s_max: int, repeats: bool):
    g = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(T, N, C, generator=g, dtype=torch.float64).log_softmax(-1)
    target_lengths = torch.randint(1, s_max + 1, (N,), generator=g)
    targets = torch.randint(1, C, (N, s_max), generator=g)
    if repeats:  # force repeated labels (a a) that need a blank between them
        targets[:, 1] = targets[:, 0]
    input_lengths = torch.randint(max(T - 3, 2 * s_max + 1), T + 1, (N,), generator=g)
    input_lengths[0] = T
    return log_probs, targets, input_lengths, target_lengths


CASES = [
    {"seed": 0, "T": 12, "N": 1, "C": 5, "s_max": 3, "repeats": False},
    {"seed": 1, "T": 15, "N": 4, "C": 6, "s_max": 4, "repeats": True},
    {"seed": 2, "T": 20, "N": 3, "C": 3, "s_max": 5, "repeats": True},  # 2 labels: many repeats
    {"seed": 3, "T": 9, "N": 5, "C": 8, "s_max": 2, "repeats": False},
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_ctc_loss_equals_torch_value_and_gradient(case, reduction):
    lp, targets, il, tl = _random_case(**case)
    # Gradients are compared with respect to the logits: torch's CTC backward returns the
    # gradient through the log-softmax it assumes (exp(lp) - posterior), not d loss / d lp.
    ours_in = lp.clone().requires_grad_(True)
    ref_in = lp.clone().requires_grad_(True)
    ours = ctc.ctc_loss(ours_in.log_softmax(-1), targets, il, tl, reduction=reduction)
    ref = torch.nn.functional.ctc_loss(
        ref_in.log_softmax(-1), targets, il, tl, blank=0, reduction=reduction
    )
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    weights = torch.linspace(0.5, 1.5, ours.numel(), dtype=torch.float64).reshape(ours.shape)
    (ours * weights).sum().backward()
    (ref * weights).sum().backward()
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-7, atol=1e-9)


def test_ctc_loss_concatenated_targets_and_single_utterance():
    lp, targets, il, tl = _random_case(5, T=14, N=3, C=6, s_max=4, repeats=True)
    flat = torch.cat([targets[i, : tl[i]] for i in range(3)])
    ref = torch.nn.functional.ctc_loss(lp, flat, il, tl, reduction="none")
    torch.testing.assert_close(ctc.ctc_loss(lp, flat, il, tl, reduction="none"), ref)
    one = ctc.ctc_loss(lp[: il[1], 1], targets[1, : tl[1]], il[1], tl[1], reduction="none")
    torch.testing.assert_close(one, ref[1])


def test_ctc_loss_impossible_target_is_infinite():
    lp = torch.randn(3, 1, 4, dtype=torch.float64).log_softmax(-1)
    y = torch.tensor([[1, 1, 2]])  # needs at least 4 frames (a blank between the 1s)
    assert math.isinf(float(ctc.ctc_loss(lp, y, [3], [3], reduction="none")[0]))
    assert float(ctc.ctc_loss(lp, y, [3], [3], reduction="sum", zero_infinity=True)) == 0.0
    with pytest.raises(ValueError, match="reduction"):
        ctc.ctc_loss(lp, y, [3], [3], reduction="avg")


def test_collapse_rule():
    assert ctc.collapse([1, 1, 0, 1, 2, 2, 0, 0, 3]) == [1, 1, 2, 3]
    assert ctc.collapse([1, 1, 1, 2]) == [1, 2]
    assert ctc.collapse([0, 0, 0]) == []
    assert ctc.collapse(np.array([3, 0, 3, 3])) == [3, 3]
    assert ctc.collapse([5, 5, 1], blank=5) == [1]


def test_greedy_decode_takes_the_best_frame_and_collapses():
    frames = [1, 1, 0, 2, 2, 0, 2, 0]
    lp = torch.full((len(frames), 4), -5.0)
    lp[torch.arange(len(frames)), torch.tensor(frames)] = -0.01
    assert ctc.greedy_decode(lp) == [1, 2, 2]
    batch = torch.stack([lp, lp.flip(0)], dim=1)
    assert ctc.greedy_decode(batch) == [[1, 2, 2], [2, 2, 1]]


def _brute_force(lp: np.ndarray) -> dict[tuple[int, ...], float]:
    """log p(labelling) by summing over every one of the C**T alignments."""
    T, C = lp.shape
    sums: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(C), repeat=T):
        key = tuple(ctc.collapse(path))
        score = float(sum(lp[t, c] for t, c in enumerate(path)))
        sums[key] = np.logaddexp(sums.get(key, -np.inf), score)
    return sums


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_beam_search_equals_brute_force(seed):
    T, C = 6, 3
    g = torch.Generator().manual_seed(seed)
    lp = (torch.randn(T, C, generator=g, dtype=torch.float64) * 1.5).log_softmax(-1)
    exact = _brute_force(lp.numpy())
    beams = ctc.prefix_beam_search(lp, beam=10_000, min_log_prob=None)
    best_ids, best_score = beams[0]
    want = max(exact, key=exact.get)
    assert best_ids == want
    assert best_score == pytest.approx(exact[want], abs=1e-9)
    assert len(beams) == len(exact)
    for ids, score in beams:  # every prefix probability is exact without pruning
        assert score == pytest.approx(exact[ids], abs=1e-9)
    # and it agrees with the forward algorithm
    y = torch.tensor(want)
    if len(y):
        ll = -ctc.ctc_loss(lp, y, T, len(y), reduction="none")
        assert float(ll) == pytest.approx(exact[want], abs=1e-9)


def test_beam_search_can_beat_the_best_path():
    # Blank wins frame by frame, but the alignments of "a" (a a, a -, - a) win summed.
    p = np.array([[0.55, 0.45], [0.55, 0.45]])  # classes: blank, a
    lp = torch.tensor(np.log(p))
    assert ctc.greedy_decode(lp) == []  # best path: blank blank (0.3025)
    # p("a") = 0.45*0.45 + 0.45*0.55 + 0.55*0.45 = 0.6975 > p("") = 0.3025
    assert ctc.prefix_beam_search(lp, beam=4)[0][0] == (1,)


@pytest.fixture(scope="module")
def texts():
    return ["la luna y el sol", "el sol de la mañana", "la noche y la luna", "mi mare lavaba ropa"]


@pytest.mark.parametrize(
    "unit,order", [("char", 1), ("char", 3), ("char", 5), ("word", 2), ("word", 3)]
)
def test_ngram_lm_is_normalised(texts, unit, order):
    lm = ctc.NGramLM.from_texts(texts, order=order, unit=unit)
    contexts = (
        ["", "la l", "zzq", "el sol de la"]
        if unit == "char"
        else [[], ["la"], ["la", "luna"], ["foo"]]
    )
    for context in contexts:
        dist = lm.distribution(context)
        assert set(dist) == set(lm.vocab)
        assert sum(dist.values()) == pytest.approx(1.0, abs=1e-9)
        assert min(dist.values()) > 0.0


def test_ngram_lm_prefers_what_it_saw(texts):
    lm = ctc.NGramLM.from_texts(texts, order=4, unit="char")
    assert lm.log_prob("n", "la lu") > lm.log_prob("x", "la lu")
    assert lm.perplexity(["la luna"]) < lm.perplexity(["xq zkw"])
    wlm = ctc.NGramLM.from_texts(texts, order=2, unit="word")
    assert wlm.log_prob("luna", ["la"]) > wlm.log_prob("ropa", ["la"])
    assert wlm.log_prob("nunca", ["la"]) == wlm.log_prob(ctc.UNK, ["la"])
    with pytest.raises(ValueError, match="unit"):
        ctc.NGramLM.from_texts(texts, unit="phone")


def _posteriors_for(text: str, *, seed: int = 0, noise: float = 1.0) -> torch.Tensor:
    """Noisy frame posteriors that spell ``text`` (two frames per character)."""
    g = torch.Generator().manual_seed(seed)
    ids = ctc.encode(text)
    frames = []
    for i in ids:
        frames += [i, i, ctc.BLANK]
    logits = torch.randn(len(frames), len(ctc.VOCAB), generator=g) * noise
    logits[torch.arange(len(frames)), torch.tensor(frames)] += 3.0
    return logits.log_softmax(-1)


@pytest.mark.parametrize("unit", ["char", "word"])
def test_shallow_fusion_with_zero_weight_is_plain_beam_search(texts, unit):
    lm = ctc.NGramLM.from_texts(texts, order=3, unit=unit)
    for seed in range(3):
        lp = _posteriors_for("la luna y el sol", seed=seed, noise=2.0)
        plain = ctc.prefix_beam_search(lp, beam=6)
        fused = ctc.prefix_beam_search(lp, beam=6, lm=lm, lm_weight=0.0)
        assert fused == plain
        moved = ctc.prefix_beam_search(lp, beam=6, lm=lm, lm_weight=2.0)
        assert moved != plain  # a weight changes the scores, so the test can fail


def test_shallow_fusion_repairs_a_confusion(texts):
    # The acoustics hesitate between "luna" and "lupa"; the lyrics LM knows "luna".
    lp = _posteriors_for("la luna", noise=0.0).clone()
    n, p = ctc.VOCAB.index("n"), ctc.VOCAB.index("p")
    row = (torch.tensor(ctc.encode("la luna")) == n).nonzero()[0, 0] * 3  # first frame of "n"
    for r in (row, row + 1):
        lp[r] = torch.full((len(ctc.VOCAB),), -9.0)
        lp[r, p], lp[r, n] = math.log(0.55), math.log(0.45)
    assert ctc.decode(ctc.greedy_decode(lp)) == "la lupa"
    lm = ctc.NGramLM.from_texts(texts, order=4, unit="char")
    fused = ctc.prefix_beam_search(lp, beam=8, lm=lm, lm_weight=0.5)[0][0]
    assert ctc.decode(fused) == "la luna"


def test_encode_decode_round_trip():
    assert ctc.decode(ctc.encode("¡Olé, pa'l Puerto! Marque 1.")) == "olé pal puerto marque 1"
    assert ctc.encode("a b") == [ctc.VOCAB.index("a"), ctc.VOCAB.index(" "), ctc.VOCAB.index("b")]


def test_train_ctc_reduces_the_loss():
    # Synthetic "speech": each character is a fixed random 80-dim pattern held 4-6 frames.
    rng = np.random.default_rng(0)
    patterns = torch.tensor(rng.normal(size=(len(ctc.VOCAB), 80)), dtype=torch.float32)
    words = ["sol", "luna", "mar", "son", "mal"]
    texts = [" ".join(rng.choice(words, size=2)) for _ in range(24)]
    feats = []
    for t in texts:
        rows = [patterns[i].repeat(int(rng.integers(4, 7)), 1) for i in ctc.encode(t)]
        x = torch.cat(rows) + 0.3 * torch.randn(sum(len(r) for r in rows), 80)
        feats.append(x)
    model, history = ctc.train_ctc(
        feats, texts, epochs=6, batch_size=8, lr=5e-3, hidden=32, n_layers=1, augment=False, seed=0
    )
    assert len(history) == 6 and history[-1]["step"] == 6 * 3
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    lps = ctc.ctc_log_probs(model, feats[:2])
    assert lps[0].shape == (model.output_lengths(torch.tensor(len(feats[0]))), len(ctc.VOCAB))
    assert torch.allclose(lps[0].exp().sum(-1), torch.ones(len(lps[0])), atol=1e-5)


def test_train_ctc_with_our_loss_matches_torch_loss():
    rng = np.random.default_rng(1)
    feats = [torch.tensor(rng.normal(size=(40, 80)), dtype=torch.float32) for _ in range(4)]
    texts = ["la", "sol", "mar", "son"]
    kw = {"epochs": 1, "batch_size": 4, "hidden": 16, "n_layers": 1, "augment": False, "seed": 0}
    _, h_torch = ctc.train_ctc(feats, texts, **kw)
    _, h_ours = ctc.train_ctc(
        feats, texts, loss_fn=lambda lp, y, il, tl: ctc.ctc_loss(lp, y, il, tl), **kw
    )
    assert h_ours[0]["loss"] == pytest.approx(h_torch[0]["loss"], rel=1e-4)
