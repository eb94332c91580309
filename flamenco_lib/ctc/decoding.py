"""CTC decoding: the collapse rule, greedy (best path) decoding and prefix beam search with
shallow fusion of an n-gram language model.

Explained in ``notebooks/03_ctc_vs_deep_fusion.ipynb`` (decoding, shallow fusion).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from .lm import EOS, NGramLM
from .loss import NEG_INF
from .vocab import BLANK, VOCAB


def collapse(ids: Sequence[int], *, blank: int = BLANK) -> list[int]:
    """The CTC collapse rule B: merge runs of the same label, then drop blanks.

    ``B(a a - a b b) = a a b``: a blank between two copies keeps both.
    """
    out, prev = [], None
    for i in np.asarray(ids).reshape(-1).tolist():
        if i != prev and i != blank:
            out.append(int(i))
        prev = i
    return out


def greedy_decode(log_probs, *, blank: int = BLANK):
    """Best path decoding: the most likely class of every frame, collapsed.

    Parameters
    ----------
    log_probs : torch.Tensor or np.ndarray, shape = (T, C), or (T, N, C) for a batch

    Returns
    -------
    list of int, or a list of them (one per utterance) for a batch.
    """
    best = torch.as_tensor(log_probs).argmax(dim=-1)
    if best.ndim == 2:
        return [collapse(best[:, n], blank=blank) for n in range(best.shape[1])]
    return collapse(best, blank=blank)


def prefix_beam_search(
    log_probs,
    *,
    beam: int = 8,
    blank: int = BLANK,
    lm: NGramLM | None = None,
    lm_weight: float = 0.0,
    word_bonus: float = 0.0,
    vocab: Sequence[str] = VOCAB,
    min_log_prob: float | None = -10.0,
    top_k: int | None = 8,
    n_best: int | None = None,
) -> list[tuple[tuple[int, ...], float]]:
    """CTC prefix beam search with optional shallow fusion of an n-gram language model.

    Every prefix (a collapsed label sequence) keeps two log-probabilities summed over all the
    alignments of the frames so far that collapse to it: ending in a blank (``p_b``) and ending
    in its last label (``p_nb``). Each frame extends every kept prefix by a blank, by a repeat
    of its last label, or by a new label; the ``beam`` best prefixes survive. Ranking score::

        log p_ctc(prefix) + lm_weight * log p_lm(prefix) + word_bonus * n_words(prefix)

    A character LM (``lm.unit == "char"``) scores every new character, a word LM each word as
    its closing space (or the end) arrives; both score the end of the sentence at the end.

    Parameters
    ----------
    log_probs : array, shape = (T, C)
        Log-softmax outputs of one utterance.
    beam : int > 0
        Prefixes kept after each frame.
    blank : int
    lm : NGramLM, optional
    lm_weight, word_bonus : float
        Shallow fusion weights (tune them on a dev split); 0 and 0 give plain beam search.
    vocab : sequence of str
        Text of each class (``vocab[blank]`` unused), to query the LM.
    min_log_prob : float or None
        Labels less likely than this in a frame are not tried (speed); None tries all.
    top_k : int or None
        At most this many of the likeliest labels are tried per frame (speed); None: all.
        With both None and a beam above the number of prefixes the search is exact.
    n_best : int, optional
        How many hypotheses to return (default: the whole final beam).

    Returns
    -------
    list of (ids, score), best first
        ``ids`` a tuple of class ids; ``score`` the ranking score above (the CTC log-probability
        of the prefix when no LM is fused).
    """
    lp = np.asarray(torch.as_tensor(log_probs).detach().cpu(), dtype=np.float64)
    if lp.ndim != 2:
        raise ValueError(f"prefix_beam_search: log_probs must be (T, C), got {lp.shape}")
    T = lp.shape[0]
    fuse = (lm is not None and lm_weight != 0.0) or word_bonus != 0.0

    def lae(a: float, b: float) -> float:  # log(exp(a) + exp(b)), scalar and fast
        if a < b:
            a, b = b, a
        return a + math.log1p(math.exp(b - a)) if b > NEG_INF / 2 else a

    # Fusion score of a prefix (cached): weight * LM log-prob + bonus * words, excluding the end.
    fusion: dict[tuple[int, ...], float] = {(): 0.0}

    def fusion_of(prefix: tuple[int, ...]) -> float:
        if prefix in fusion:
            return fusion[prefix]
        parent = fusion_of(prefix[:-1])
        text = "".join(vocab[i] for i in prefix)
        score = parent
        if lm is None or lm_weight == 0.0:
            score += word_bonus * (text[-1] == " " and len(text) > 1 and text[-2] != " ")
        elif lm.unit == "char":
            score += lm_weight * lm.log_prob(text[-1], text[:-1])
            if text[-1] == " " and len(text) > 1 and text[-2] != " ":
                score += word_bonus
        elif text[-1] == " " and len(text) > 1 and text[-2] != " ":
            words = text.split()
            score += lm_weight * lm.log_prob(words[-1], words[:-1]) + word_bonus
        fusion[prefix] = score
        return score

    def final_fusion(prefix: tuple[int, ...]) -> float:
        score = fusion_of(prefix)
        text = "".join(vocab[i] for i in prefix)
        words = text.split()
        open_word = bool(text) and text[-1] != " "
        if open_word:
            score += word_bonus
        if lm is None or lm_weight == 0.0:
            return score
        if lm.unit == "char":
            return score + lm_weight * lm.log_prob(EOS, text.rstrip())
        if open_word:
            score += lm_weight * lm.log_prob(words[-1], words[:-1])
        return score + lm_weight * lm.log_prob(EOS, words)

    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    for t in range(T):
        row = lp[t].tolist()
        order = np.argsort(-lp[t]).tolist()
        labels = [
            c for c in order if c != blank and (min_log_prob is None or row[c] >= min_log_prob)
        ]
        labels = labels[:top_k] if top_k else labels
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            total = lae(pb, pnb)
            entry = nxt[prefix]
            entry[0] = lae(entry[0], total + row[blank])
            if prefix:
                last = prefix[-1]
                entry[1] = lae(entry[1], pnb + row[last])  # repeat merged into the last label
            for c in labels:
                new = prefix + (c,)
                e = nxt[new]
                if prefix and c == prefix[-1]:
                    e[1] = lae(e[1], pb + row[c])  # a blank separated the copies
                else:
                    e[1] = lae(e[1], total + row[c])
        scored = [
            (lae(v[0], v[1]) + (fusion_of(k) if fuse else 0.0), k, v)
            for k, v in nxt.items()
            if max(v) > NEG_INF / 2  # drop impossible prefixes
        ]
        beams = {k: (v[0], v[1]) for _, k, v in heapq.nlargest(beam, scored, key=lambda x: x[0])}
    final = [(k, float(lae(*v) + (final_fusion(k) if fuse else 0.0))) for k, v in beams.items()]
    final.sort(key=lambda kv: kv[1], reverse=True)
    return final[: n_best or len(final)]
