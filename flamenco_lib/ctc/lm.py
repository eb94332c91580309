"""An n-gram language model (characters or words) with interpolated Kneser-Ney smoothing.

Explained in ``notebooks/03_ctc_vs_deep_fusion.ipynb`` (the language model of shallow fusion).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

from .vocab import VOCAB, clean_text

EOS = "</s>"  # end-of-sentence token of the language model
BOS = "<s>"  # start-of-sentence padding of the language model's contexts
UNK = "<unk>"  # out-of-vocabulary word of a word-level language model


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
        cls,
        texts: Sequence[str],
        *,
        order: int = 5,
        unit: str = "char",
        discount: float = 0.75,
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
        self._totals = [
            {ctx: (sum(c.values()), len(c)) for ctx, c in level.items()} for level in self.counts
        ]

    def log_prob(self, next_token: str, context: str | Sequence[str] = ()) -> float:
        """Natural-log probability of ``next_token`` after ``context``.

        ``context``: a string of characters (char LM) or a list of words (word LM); only its
        last ``order - 1`` tokens matter, and it is padded with :data:`BOS` at the start.
        """
        ctx = list(context)
        if self.unit == "word":
            ctx = [self._tok(w) for w in ctx]
        k = self.order - 1
        ctx = ([BOS] * k + ctx)[len(ctx) :] if k else []
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
