"""Connectionist Temporal Classification (CTC), written out by hand, and shallow fusion.

Explained in ``notebooks/03_ctc_vs_deep_fusion.ipynb``: the blank and the collapse rule, the
forward algorithm (:func:`ctc_loss`, equal to ``torch.nn.functional.ctc_loss`` in value and
gradient, tests/test_ctc.py), greedy and prefix beam search decoding, shallow fusion with an
n-gram language model (:class:`NGramLM`) and a tiny character CTC acoustic model
(:class:`TinyCTC`, :func:`train_ctc`) trained in CPU minutes, as the foil to Whisper's
encoder-decoder ("deep fusion": the decoder is a language model trained end to end).

Shapes: ``T`` frames, ``N`` utterances, ``C`` classes (blank included), ``S`` target length.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .text import normalize

BLANK = 0  # class index of the CTC blank
# The character vocabulary: blank, space, apostrophe, Spanish letters, digits (prompts say "marque 1").
VOCAB: tuple[str, ...] = ("", " ", "'", *"abcdefghijklmnopqrstuvwxyz", *"áéíóúñü", *"0123456789")
_INDEX = {c: i for i, c in enumerate(VOCAB) if i != BLANK}
NEG_INF = -1e30  # a finite "log 0": keeps autograd free of inf - inf = NaN
EOS = "</s>"  # end-of-sentence token of the language model
BOS = "<s>"  # start-of-sentence padding of the language model's contexts
UNK = "<unk>"  # out-of-vocabulary word of a word-level language model

# --------------------------------------------------------------------------------------------
# Text <-> ids
# --------------------------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """What the character model can spell: :func:`flamenco_lib.text.normalize`, then only
    characters of :data:`VOCAB` (others dropped), spaces collapsed."""
    kept = "".join(c for c in normalize(text) if c in _INDEX)
    return " ".join(kept.split())


def encode(text: str, *, vocab: Sequence[str] = VOCAB) -> list[int]:
    """Class ids of :func:`clean_text` ``(text)`` (no blanks)."""
    index = _INDEX if vocab is VOCAB else {c: i for i, c in enumerate(vocab) if c}
    return [index[c] for c in clean_text(text) if c in index]


def decode(ids: Sequence[int], *, vocab: Sequence[str] = VOCAB) -> str:
    """The text of class ids (blanks, if any, vanish); spaces collapsed."""
    return " ".join("".join(vocab[int(i)] for i in ids).split())


# --------------------------------------------------------------------------------------------
# The CTC loss: forward algorithm in log space
# --------------------------------------------------------------------------------------------


def _lse(*xs: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(torch.stack(xs), dim=0)


def _targets_2d(targets, target_lengths: torch.Tensor, n: int) -> torch.Tensor:
    """(N, S_max) padded targets from padded or concatenated (1-D) ones."""
    targets = torch.as_tensor(targets, dtype=torch.long)
    if targets.ndim == 2:
        return targets
    s_max = int(target_lengths.max()) if n else 0
    out = torch.zeros(n, max(s_max, 1), dtype=torch.long)
    offset = 0
    for i, s in enumerate(target_lengths.tolist()):
        out[i, :s] = targets[offset : offset + s]
        offset += s
    return out


def ctc_forward(
    log_probs: torch.Tensor,
    targets,
    input_lengths,
    target_lengths,
    *,
    blank: int = BLANK,
    return_alpha: bool = False,
):
    """Log-likelihood ``log p(y | x)`` of each target by the CTC forward algorithm.

    The target ``y`` (length ``S``) is extended with blanks, ``y' = (-, y1, -, y2, ..., yS, -)``
    (``2S + 1`` states). ``alpha[t, s]`` is the log-probability of all alignments of the first
    ``t + 1`` frames that end in state ``s``::

        alpha[t, s] = logsumexp(alpha[t-1, s], alpha[t-1, s-1], alpha[t-1, s-2] if allowed)
                      + log_probs[t, y'_s]

    The skip ``s-2 -> s`` is allowed unless ``y'_s`` is blank or equals ``y'_{s-2}`` (a repeated
    label needs a blank between its copies). ``log p(y|x) = logsumexp(alpha[T-1, 2S], alpha[T-1, 2S-1])``.

    Parameters
    ----------
    log_probs : torch.Tensor, shape = (T, N, C)
        Log-softmax outputs.
    targets : torch.Tensor, shape = (N, S_max) padded, or (sum(target_lengths),) concatenated
    input_lengths, target_lengths : sequence of int or torch.Tensor, shape = (N,)
    blank : int
    return_alpha : bool
        Also return every ``alpha``, shape = (T, N, 2 * S_max + 1) (for figures).

    Returns
    -------
    torch.Tensor, shape = (N,)
        ``log p(y|x)``; ``<= -1e29`` when no alignment exists (input too short).
    """
    T, N, _ = log_probs.shape
    input_lengths = torch.as_tensor(input_lengths, dtype=torch.long).reshape(N)
    target_lengths = torch.as_tensor(target_lengths, dtype=torch.long).reshape(N)
    tg = _targets_2d(targets, target_lengths, N)
    L = 2 * tg.shape[1] + 1
    ext = torch.full((N, L), blank, dtype=torch.long)
    ext[:, 1::2] = tg
    # Skips s-2 -> s: only into a label state whose label differs from the one two states back.
    skip = torch.zeros(N, L, dtype=torch.bool)
    skip[:, 3::2] = tg[:, 1:] != tg[:, :-1]
    emit = log_probs.gather(2, ext.unsqueeze(0).expand(T, N, L))  # (T, N, L)
    neg = torch.full((N, L), NEG_INF, dtype=log_probs.dtype)
    neg1 = torch.full((N, 1), NEG_INF, dtype=log_probs.dtype)
    neg2 = torch.full((N, 2), NEG_INF, dtype=log_probs.dtype)

    start = torch.zeros(N, L, dtype=torch.bool)
    start[:, 0] = True
    start[:, 1] = target_lengths > 0
    alpha = torch.where(start, emit[0], neg)
    alphas = [alpha]
    for t in range(1, T):
        stay = alpha
        step = torch.cat([neg1, alpha[:, :-1]], dim=1)
        jump = torch.where(skip, torch.cat([neg2, alpha[:, :-2]], dim=1), neg)
        new = _lse(stay, step, jump) + emit[t]
        alpha = torch.where((t < input_lengths).unsqueeze(1), new, alpha)  # frozen after the end
        if return_alpha:
            alphas.append(alpha)
    last = (2 * target_lengths).unsqueeze(1)
    end_blank = alpha.gather(1, last).squeeze(1)
    end_label = alpha.gather(1, (last - 1).clamp(min=0)).squeeze(1)
    end_label = torch.where(target_lengths > 0, end_label, torch.full_like(end_label, NEG_INF))
    ll = _lse(end_blank, end_label)
    if return_alpha:
        return ll, torch.stack(alphas)
    return ll


def ctc_loss(
    log_probs: torch.Tensor,
    targets,
    input_lengths,
    target_lengths,
    *,
    blank: int = BLANK,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> torch.Tensor:
    """CTC loss ``-log p(y | x)`` by the forward algorithm (:func:`ctc_forward`), differentiable.

    Same conventions as ``torch.nn.functional.ctc_loss``, which it equals (tests/test_ctc.py).

    Parameters
    ----------
    log_probs : torch.Tensor, shape = (T, N, C) or (T, C) for one utterance
    targets : torch.Tensor, shape = (N, S_max), (sum(target_lengths),) or (S,) for one utterance
    input_lengths, target_lengths : ints, shape = (N,) or scalars for one utterance
    blank : int
    reduction : {"none", "sum", "mean"}
        ``"mean"``: each loss divided by its target length, then averaged over the batch.
    zero_infinity : bool
        Impossible targets (input shorter than needed) give 0 instead of ``inf``.

    Returns
    -------
    torch.Tensor, shape = (N,) for ``"none"`` (scalar for one utterance), else a scalar.
    """
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"ctc_loss: reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
    single = log_probs.ndim == 2
    if single:
        log_probs = log_probs.unsqueeze(1)
        targets = torch.as_tensor(targets, dtype=torch.long).reshape(1, -1)
    elif log_probs.ndim != 3:
        raise ValueError(f"ctc_loss: log_probs must be (T, C) or (T, N, C), got {tuple(log_probs.shape)}")
    n = log_probs.shape[1]
    target_lengths = torch.as_tensor(target_lengths, dtype=torch.long).reshape(n)
    loss = -ctc_forward(log_probs, targets, input_lengths, target_lengths, blank=blank)
    impossible = loss > 1e29
    if impossible.any():
        loss = torch.where(impossible, torch.zeros_like(loss) if zero_infinity else torch.full_like(loss, math.inf), loss)
    if reduction == "none":
        return loss[0] if single else loss
    if reduction == "sum":
        return loss.sum()
    return (loss / target_lengths.clamp(min=1).to(loss.dtype)).mean()


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


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
        labels = [c for c in order if c != blank and (min_log_prob is None or row[c] >= min_log_prob)]
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


# --------------------------------------------------------------------------------------------
# An n-gram language model with interpolated Kneser-Ney smoothing
# --------------------------------------------------------------------------------------------


class NGramLM:
    """Character or word n-gram LM with interpolated Kneser-Ney smoothing (one discount).

    ``P(w | h) = max(c(h w) - d, 0) / c(h) + d * N1+(h .) / c(h) * P(w | h')``, where ``h'`` drops
    the oldest token of ``h``; the lower orders count continuations (in how many contexts a
    token follows ``h'``) instead of occurrences, and the lowest order interpolates with the
    uniform distribution over the vocabulary. An unseen context backs off entirely. Every
    ``P(. | h)`` sums to one over :attr:`vocab` (tests/test_ctc.py).

    Build one with :meth:`from_texts`.
    """

    def __init__(self, order: int, unit: str, vocab: Sequence[str], discount: float = 0.75):
        if order < 1:
            raise ValueError(f"NGramLM: order must be >= 1, got {order}")
        if unit not in ("char", "word"):
            raise ValueError(f"NGramLM: unit must be 'char' or 'word', got {unit!r}")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"NGramLM: discount must lie in (0, 1), got {discount}")
        self.order, self.unit, self.discount = order, unit, discount
        self.vocab: tuple[str, ...] = tuple(vocab)  # every token that can be predicted (EOS incl.)
        self._vocab_set = frozenset(self.vocab)
        # counts[k][context] = Counter(next token): k = len(context) = 0 .. order-1
        self.counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(order)]
        self._cache: dict[tuple, float] = {}

    @classmethod
    def from_texts(
        cls, texts: Sequence[str], *, order: int = 5, unit: str = "char", discount: float = 0.75,
        vocab: Sequence[str] | None = None,
    ) -> NGramLM:
        """Train on ``texts`` (each cleaned by :func:`clean_text`, one sentence each).

        Parameters
        ----------
        texts : sequence of str
        order : int >= 1
            n of the n-grams (context of ``order - 1`` tokens).
        unit : {"char", "word"}
        discount : float in (0, 1)
        vocab : sequence of str, optional
            Tokens to predict. Default: the characters of :data:`VOCAB` for ``"char"``; the
            training words plus :data:`UNK` for ``"word"``. :data:`EOS` is always added.
        """
        sents = [s for s in (clean_text(t) for t in texts) if s]
        if unit == "char":
            vocab = vocab or [c for c in VOCAB if c]
            seqs = [list(s) for s in sents]
        else:
            seqs = [s.split() for s in sents]
            vocab = vocab or sorted({w for s in seqs for w in s}) + [UNK]
        lm = cls(order, unit, [*dict.fromkeys([*vocab, EOS])], discount)
        lm._fit(seqs)
        return lm

    def _tok(self, token: str) -> str:
        return token if token in self._vocab_set else UNK if UNK in self._vocab_set else token

    def _fit(self, seqs: list[list[str]]) -> None:
        n = self.order
        top = self.counts[n - 1]
        for seq in seqs:
            toks = [BOS] * (n - 1) + [self._tok(x) for x in seq] + [EOS]
            for i in range(n - 1, len(toks)):
                top[tuple(toks[i - n + 1 : i])][toks[i]] += 1
        # Lower orders: continuation counts N1+(. h w) from the order above.
        for k in range(n - 2, -1, -1):
            higher, lower = self.counts[k + 1], self.counts[k]
            for ctx, nxt in higher.items():
                for w in nxt:
                    lower[ctx[1:]][w] += 1
        self._totals = [{ctx: (sum(c.values()), len(c)) for ctx, c in level.items()} for level in self.counts]

    def log_prob(self, next_token: str, context: str | Sequence[str] = ()) -> float:
        """Natural-log probability of ``next_token`` after ``context``.

        ``context``: a string of characters (char LM) or a list of words (word LM); only its
        last ``order - 1`` tokens matter, and it is padded with :data:`BOS` at the start.
        """
        ctx = list(context)
        if self.unit == "word":
            ctx = [self._tok(w) for w in ctx]
        k = self.order - 1
        ctx = ([BOS] * k + ctx)[len(ctx):] if k else []
        key = (tuple(ctx), self._tok(next_token))
        if key not in self._cache:
            self._cache[key] = math.log(max(self._prob(key[1], key[0]), 1e-300))
        return self._cache[key]

    def _prob(self, w: str, ctx: tuple) -> float:
        p = 1.0 / len(self.vocab)  # order "-1": uniform over the vocabulary
        for k in range(len(ctx) + 1):
            h = ctx[len(ctx) - k :]
            tot = self._totals[k].get(h)
            if tot is None:  # unseen context: back off entirely (keep the lower order)
                continue
            total, distinct = tot
            c = self.counts[k][h].get(w, 0)
            p = max(c - self.discount, 0.0) / total + self.discount * distinct / total * p
        return p

    def distribution(self, context: str | Sequence[str] = ()) -> dict[str, float]:
        """``P(. | context)`` over :attr:`vocab` (sums to one)."""
        return {w: math.exp(self.log_prob(w, context)) for w in self.vocab}

    def perplexity(self, texts: Sequence[str]) -> float:
        """Per-token perplexity on ``texts`` (end-of-sentence tokens included)."""
        total, n = 0.0, 0
        for t in texts:
            s = clean_text(t)
            toks = list(s) if self.unit == "char" else s.split()
            for i, w in enumerate([*toks, EOS]):
                ctx = "".join(toks[:i]) if self.unit == "char" else toks[:i]
                total -= self.log_prob(w, ctx)
                n += 1
        return math.exp(total / max(n, 1))


# --------------------------------------------------------------------------------------------
# A tiny CTC acoustic model
# --------------------------------------------------------------------------------------------


def log_mel_features(audio) -> torch.Tensor:
    """Whisper's log-Mel of one unpadded clip, each band standardised over the clip.

    Returns
    -------
    torch.Tensor, shape = (n_frames, 80), float32, with ``n_frames = n_samples // 160``.
    """
    from .audio import log_mel_spectrogram

    mel = log_mel_spectrogram(audio).T  # (T, 80)
    return (mel - mel.mean(0)) / (mel.std(0) + 1e-5)


class TinyCTC(nn.Module):
    """Log-Mel frames -> character log-probabilities: a strided convolution (``stride`` 3 turns
    100 frames per second into 33, still above the ~15 characters per second of fast Spanish
    speech) and a bidirectional GRU, then a linear layer to the classes.

    Parameters
    ----------
    n_mels : int
        Input features per frame.
    hidden : int
        Convolution channels and GRU units per direction.
    n_layers : int
        GRU layers.
    n_classes : int
        Output classes, blank included (default: ``len(VOCAB)``).
    dropout : float
    stride : int
        Input frames (10 ms) per output frame.
    """

    def __init__(self, *, n_mels: int = 80, hidden: int = 128, n_layers: int = 2,
                 n_classes: int = len(VOCAB), dropout: float = 0.15, stride: int = 3):
        super().__init__()
        self.stride = stride
        self.conv = nn.Sequential(
            nn.Conv1d(n_mels, hidden, kernel_size=5, stride=self.stride, padding=2), nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel_size=3, padding=1), nn.GELU(),
        )
        self.gru = nn.GRU(hidden, hidden, num_layers=n_layers, bidirectional=True, batch_first=True,
                          dropout=dropout if n_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, n_classes)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths + 2 * 2 - 5) // self.stride + 1

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats`` (N, T, n_mels) padded, ``lengths`` (N,) -> log-probs (T', N, C), lengths (N,)."""
        x = self.conv(feats.transpose(1, 2)).transpose(1, 2)  # (N, T', hidden)
        out_len = self.output_lengths(lengths).clamp(min=1, max=x.shape[1])
        packed = nn.utils.rnn.pack_padded_sequence(x, out_len.cpu(), batch_first=True, enforce_sorted=False)
        y, _ = self.gru(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return self.out(self.drop(y)).log_softmax(-1).transpose(0, 1), out_len


def _batch(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in feats])
    return nn.utils.rnn.pad_sequence(feats, batch_first=True), lengths


def _spec_augment(x: torch.Tensor, rng: np.random.Generator, *, n_freq: int = 2, f_width: int = 10,
                  n_time: int = 2, t_width: int = 20) -> torch.Tensor:
    """SpecAugment-style masks (zeros) on (T, F) standardised features."""
    x = x.clone()
    T, F = x.shape
    for _ in range(n_freq):
        w = int(rng.integers(0, f_width + 1))
        f0 = int(rng.integers(0, max(F - w, 1)))
        x[:, f0 : f0 + w] = 0.0
    for _ in range(n_time):
        w = int(rng.integers(0, min(t_width, T // 8) + 1))
        t0 = int(rng.integers(0, max(T - w, 1)))
        x[t0 : t0 + w] = 0.0
    return x


def train_ctc(
    feats: Sequence[torch.Tensor],
    texts: Sequence[str],
    *,
    epochs: int = 30,
    batch_size: int = 8,
    lr: float = 3e-3,
    hidden: int = 128,
    n_layers: int = 2,
    dropout: float = 0.15,
    stride: int = 3,
    augment: bool = True,
    seed: int = 0,
    max_seconds: float | None = None,
    threads: int | None = 1,
    loss_fn: Callable | None = None,
    log: Callable[[dict], None] | None = None,
) -> tuple[TinyCTC, list[dict]]:
    """Train a :class:`TinyCTC` with the CTC loss, AdamW and a one-cycle learning rate.

    Batches hold clips of similar length (sorted, then shuffled in groups); SpecAugment masks
    regularise the ~20 minutes of one voice this is meant for.

    Parameters
    ----------
    feats : sequence of torch.Tensor, shape = (T_i, 80)
        :func:`log_mel_features` of each clip.
    texts : sequence of str
        Transcripts (cleaned and encoded with :func:`encode`).
    epochs, batch_size, lr : training schedule
    hidden, n_layers, dropout, stride : :class:`TinyCTC` size
    augment : bool
        SpecAugment time and frequency masks.
    seed : int
        Initialisation, batch order and masks.
    max_seconds : float, optional
        Stop after this much wall time (a safety net; the schedule assumes ``epochs``).
    threads : int, optional
        ``torch.set_num_threads`` while training (restored after); None leaves it.
    loss_fn : callable, optional
        ``(log_probs, targets, input_lengths, target_lengths) -> mean loss``; default
        ``torch.nn.functional.ctc_loss`` (the fast C++ twin of :func:`ctc_loss`).
    log : callable, optional
        Called with each epoch's history row.

    Returns
    -------
    model : TinyCTC
        In eval mode.
    history : list of dict
        One row per epoch: ``epoch``, ``step``, ``loss`` (mean training loss), ``lr``, ``seconds``.
    """
    if len(feats) != len(texts) or not feats:
        raise ValueError(f"train_ctc: {len(feats)} feature matrices for {len(texts)} texts")
    targets = [torch.tensor(encode(t), dtype=torch.long) for t in texts]
    keep = [i for i, (f, y) in enumerate(zip(feats, targets)) if len(y) and len(f) // stride > len(y)]
    if not keep:
        raise ValueError("train_ctc: no clip is long enough for its transcript")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = TinyCTC(n_mels=feats[0].shape[1], hidden=hidden, n_layers=n_layers, dropout=dropout, stride=stride)
    order = sorted(keep, key=lambda i: len(feats[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(epochs * len(batches), 1),
                                                pct_start=0.15)
    loss_fn = loss_fn or (lambda lp, y, il, tl: nn.functional.ctc_loss(lp, y, il, tl, blank=BLANK,
                                                                        zero_infinity=True))
    history, step, t0 = [], 0, time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            total, count = 0.0, 0
            for b in rng.permutation(len(batches)):
                idx = batches[b]
                xs = [_spec_augment(feats[i], rng) if augment else feats[i] for i in idx]
                x, lengths = _batch(xs)
                lp, out_len = model(x, lengths)
                y = torch.cat([targets[i] for i in idx])
                tl = torch.tensor([len(targets[i]) for i in idx])
                loss = loss_fn(lp, y, out_len, tl)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                sched.step()
                step += 1
                total += loss.item() * len(idx)
                count += len(idx)
            row = {"epoch": epoch, "step": step, "loss": total / count, "lr": sched.get_last_lr()[0],
                   "seconds": time.perf_counter() - t0}
            history.append(row)
            if log:
                log(row)
            if max_seconds is not None and row["seconds"] > max_seconds:
                break
    finally:
        if threads:
            torch.set_num_threads(old_threads)
    return model.eval(), history


@torch.no_grad()
def ctc_log_probs(model: TinyCTC, feats: Sequence[torch.Tensor], *, batch_size: int = 16) -> list[torch.Tensor]:
    """The model's log-probabilities of each clip, shape = (T'_i, C), unpadded."""
    model.eval()
    out = []
    for i in range(0, len(feats), batch_size):
        x, lengths = _batch(list(feats[i : i + batch_size]))
        lp, out_len = model(x, lengths)
        out += [lp[: int(n), j] for j, n in enumerate(out_len)]
    return out


def transcribe_ctc(
    log_probs: Sequence[torch.Tensor],
    *,
    decoder: str = "greedy",
    beam: int = 16,
    lm: NGramLM | None = None,
    lm_weight: float = 0.0,
    word_bonus: float = 0.0,
) -> list[str]:
    """Texts of CTC outputs: ``"greedy"`` (best path) or ``"beam"`` (:func:`prefix_beam_search`,
    with shallow fusion when ``lm`` and a weight are given)."""
    if decoder == "greedy":
        return [decode(greedy_decode(lp)) for lp in log_probs]
    if decoder != "beam":
        raise ValueError(f"transcribe_ctc: decoder must be 'greedy' or 'beam', got {decoder!r}")
    return [
        decode(prefix_beam_search(lp, beam=beam, lm=lm, lm_weight=lm_weight, word_bonus=word_bonus)[0][0])
        for lp in log_probs
    ]


def tune_fusion(
    log_probs: Sequence[torch.Tensor],
    refs: Sequence[str],
    *,
    lm: NGramLM,
    lm_weights: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    word_bonuses: Sequence[float] = (0.0, 1.0, 2.0),
    beam: int = 16,
    score: Callable[[list[str], list[str]], float] | None = None,
) -> list[dict]:
    """WER of beam search on a (dev) split for every ``(lm_weight, word_bonus)`` of the grid.

    ``score(refs, hyps)`` gives the error rate (default :func:`flamenco_lib.metrics.wer`).

    Returns
    -------
    list of dict
        ``lm_weight``, ``word_bonus``, ``wer`` per grid point; pick the lowest WER (on dev,
        never on test).
    """
    from .metrics import wer

    score = score or wer
    rows = []
    for a in lm_weights:
        for b in word_bonuses:
            hyps = transcribe_ctc(log_probs, decoder="beam", beam=beam, lm=lm, lm_weight=a, word_bonus=b)
            rows.append({"lm_weight": float(a), "word_bonus": float(b), "wer": score(list(refs), hyps)})
    return rows
