"""A lyrics catalogue searched with a first-pass transcript: which letra is being sung?

Singers mostly sing traditional letras that collections print. A first, unprompted transcript of
a clip is noisy, but usually close enough to find its copla in a catalogue (the project's
``coplas.tsv`` or the user's own lyrics file); the copla found can then be the prompt of a second
pass (stage 3's ``catalogue`` prompt). Two ways to search, to be compared by retrieval accuracy:

- ``fuzzy``: rapidfuzz's ``partial_ratio`` between the normalised transcript and each copla: the
  similarity of the shorter text to its best-matching piece of the longer one, so that one sung
  line finds the copla it is part of, and a whole copla with repeats and quejíos still holds its
  letra. Chosen on the dev sets (first-pass transcripts of stage 3, 336 coplas): one line per
  query, top-1 71.8% with ``token_set_ratio`` (the words of either text in the other), 74.6% with
  ``bm25``, 88.7% with ``partial_ratio``; whole coplas 98.4%, 98.4%, 100%;
- ``bm25``: Okapi BM25 over character 4-grams of the normalised words (padded with spaces), so
  that a misrecognised word ("querer" / "quere") still shares most of its n-grams.

:func:`retrieval_accuracy` gives top-1 and top-k accuracy against the true copla ids.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from .text import normalize_flamenco

__all__ = ["METHODS", "Catalogue", "retrieval_accuracy"]

METHODS = ("fuzzy", "bm25")
# rapidfuzz.fuzz's scorer of the fuzzy method (part of a catalogue run's inputs)
FUZZY_SCORER = "partial_ratio"
NGRAM = 4
BM25_K1, BM25_B = 1.2, 0.75


def _norm(text: str) -> str:
    """The normaliser of the written lyric: accents folded, quejíos and Andalusian spellings
    mapped (a sung "ay, queré" matches the printed "querer")."""
    return normalize_flamenco(text, keep_accents=False)


def _ngrams(text: str, n: int = NGRAM) -> list[str]:
    out = []
    for word in text.split():
        w = f" {word} "
        out += [w[i : i + n] for i in range(max(1, len(w) - n + 1))]
    return out


@dataclass
class Catalogue:
    """Coplas to search: ``ids`` and ``texts`` in the same order (e.g. from
    :func:`flamenco_lib.data.lyrics.read_lyrics`: ``Catalogue.from_coplas(coplas)``)."""

    ids: list[str]
    texts: list[str]
    _norm: list[str] = field(init=False, repr=False)
    _df: Counter = field(init=False, repr=False)
    _tf: list[Counter] = field(init=False, repr=False)
    _avg: float = field(init=False, repr=False)

    def __post_init__(self):
        if len(self.ids) != len(self.texts):
            raise ValueError(f"{len(self.ids)} ids for {len(self.texts)} texts")
        self._norm = [_norm(t) for t in self.texts]
        self._tf = [Counter(_ngrams(t)) for t in self._norm]
        self._df = Counter(g for tf in self._tf for g in tf)
        self._avg = sum(sum(tf.values()) for tf in self._tf) / max(len(self._tf), 1)

    @classmethod
    def from_coplas(cls, coplas, *, exclude=()) -> Catalogue:
        """A catalogue of :class:`~flamenco_lib.data.lyrics.Copla` objects, without the ids in
        ``exclude`` (e.g. the test coplas: what a singer of new lyrics gets)."""
        kept = [c for c in coplas if c.id not in set(exclude)]
        return cls([c.id for c in kept], [c.text for c in kept])

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, *, k: int = 5, method: str = "fuzzy") -> list[tuple[str, float]]:
        """The ``k`` best coplas for ``query`` as ``(id, score)``, best first (higher is better)."""
        if method not in METHODS:
            raise ValueError(f"method {method!r}: use one of {', '.join(METHODS)}")
        q = _norm(query)
        if not q or not self.ids:
            return []
        if method == "fuzzy":
            from rapidfuzz import fuzz, process

            hits = process.extract(q, self._norm, scorer=getattr(fuzz, FUZZY_SCORER), limit=k)
            return [(self.ids[i], float(score)) for _, score, i in hits]
        n = len(self._tf)
        grams = Counter(_ngrams(q))
        scores = []
        for tf in self._tf:
            length = sum(tf.values())
            s = 0.0
            for g, qf in grams.items():
                f = tf.get(g, 0)
                if f:
                    idf = math.log(1 + (n - self._df[g] + 0.5) / (self._df[g] + 0.5))
                    norm = f + BM25_K1 * (1 - BM25_B + BM25_B * length / self._avg)
                    s += qf * idf * f * (BM25_K1 + 1) / norm
            scores.append(s)
        best = sorted(range(n), key=lambda i: (-scores[i], i))[:k]
        return [(self.ids[i], scores[i]) for i in best]

    def text_of(self, copla_id: str) -> str:
        return self.texts[self.ids.index(copla_id)]


def retrieval_accuracy(
    catalogue: Catalogue, queries: list[str], true_ids: list[str], *, k: int = 5, method="fuzzy"
) -> dict:
    """Share of queries whose true copla is the best hit (``top1``) and among the ``k`` best
    (``topk``), over the queries whose copla is in the catalogue (``n``)."""
    present = set(catalogue.ids)
    pairs = [(q, t) for q, t in zip(queries, true_ids) if t in present]
    hits = [[i for i, _ in catalogue.search(q, k=k, method=method)] for q, _ in pairs]
    n = len(pairs)
    return {
        "method": method,
        "n": n,
        "top1": sum(h[:1] == [t] for h, (_, t) in zip(hits, pairs)) / n if n else 0.0,
        "topk": sum(t in h for h, (_, t) in zip(hits, pairs)) / n if n else 0.0,
        "k": k,
    }
