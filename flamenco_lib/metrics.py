"""Word and character error rates, their confidence intervals, and hallucination indicators.

The edit-distance alignment is jiwer's; this module adds normalisation (:mod:`flamenco_lib.text`),
per-utterance counts, a seeded bootstrap, per-group tables and the indicators of runaway
decoding that Whisper itself watches (repetition, compression ratio). Every stage of the
thesis is scored by :func:`score`; the report's tables read what it returns.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jiwer
import numpy as np
import pandas as pd

from .text import normalize as _normalize

# Whisper's decoder flags a segment whose text compresses better than this as a repetition loop.
COMPRESSION_RATIO_THRESHOLD = 2.4
BOOTSTRAP_SAMPLES = 1000  # resamples of the utterances for the 95% interval
REPEAT_NGRAM = 3  # n-gram length (words) for the repeated n-gram rate


_ACUTE = re.compile("[áéíóúÁÉÍÓÚ]")


def normalizer_for(refs: Sequence[str]) -> Callable[[str], str]:
    """The normaliser that scores hypotheses against ``refs``: :func:`flamenco_lib.text.normalize`,
    folding accents on both sides when the references are written without any (Drascula's lines
    are upper case without accents: a correct "música" must not count as an error against
    "MUSICA"). Spanish references with accents keep them: "mí" and "mi" are different words."""
    if any(_ACUTE.search(r) for r in refs):
        return _normalize
    return _fold


def _fold(text: str) -> str:
    return _normalize(text, keep_accents=False)


def _check(refs: Sequence[str], hyps: Sequence[str]) -> None:
    if isinstance(refs, str) or isinstance(hyps, str):
        raise TypeError("references and hypotheses must be lists of strings, not a single string")
    if len(refs) == 0:
        raise ValueError("no references to score: the reference list is empty")
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses: the lists must align")


def _prepare(texts: Sequence[str], normalizer: Callable[[str], str] | None) -> list[str]:
    texts = ["" if t is None else str(t) for t in texts]
    return [normalizer(t) for t in texts] if normalizer else [" ".join(t.split()) for t in texts]


def _totals(refs: list[str], hyps: list[str]) -> tuple[int, int]:
    """(word errors, reference words) over the corpus."""
    n_ref = sum(len(r.split()) for r in refs)
    if n_ref == 0:
        raise ValueError("every reference is empty after normalisation: WER is undefined")
    out = jiwer.process_words(refs, hyps)
    return out.substitutions + out.deletions + out.insertions, n_ref


def wer(refs: Sequence[str], hyps: Sequence[str], *, normalize: bool = True) -> float:
    """Corpus word error rate, ``(S + D + I) / N``, with :func:`normalizer_for` the references
    applied to both sides (``normalize=False``: only whitespace is collapsed)."""
    _check(refs, hyps)
    norm = normalizer_for(refs) if normalize else None
    r, h = _prepare(refs, norm), _prepare(hyps, norm)
    errors, n = _totals(r, h)
    return errors / n


def cer(refs: Sequence[str], hyps: Sequence[str], *, normalize: bool = True) -> float:
    """Corpus character error rate (spaces count as characters, as in jiwer)."""
    _check(refs, hyps)
    norm = normalizer_for(refs) if normalize else None
    r, h = _prepare(refs, norm), _prepare(hyps, norm)
    if sum(len(x) for x in r) == 0:
        raise ValueError("every reference is empty after normalisation: CER is undefined")
    return float(jiwer.cer(r, h))


def utterance_counts(refs: Sequence[str], hyps: Sequence[str]) -> pd.DataFrame:
    """Per-utterance ``hits, substitutions, deletions, insertions, ref_words`` (no normalisation)."""
    out = jiwer.process_words(list(refs), list(hyps))
    rows = []
    for ref, chunks in zip(refs, out.alignments):
        c = {"hits": 0, "substitutions": 0, "deletions": 0, "insertions": 0}
        for ch in chunks:
            n_ref, n_hyp = ch.ref_end_idx - ch.ref_start_idx, ch.hyp_end_idx - ch.hyp_start_idx
            if ch.type == "equal":
                c["hits"] += n_ref
            elif ch.type == "substitute":
                c["substitutions"] += n_ref
            elif ch.type == "delete":
                c["deletions"] += n_ref
            elif ch.type == "insert":
                c["insertions"] += n_hyp
        c["ref_words"] = len(ref.split())
        rows.append(c)
    return pd.DataFrame(
        rows, columns=["hits", "substitutions", "deletions", "insertions", "ref_words"]
    )


def char_errors(refs: Sequence[str], hyps: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-utterance character edit counts and reference lengths."""
    out = jiwer.process_characters(list(refs), list(hyps))
    errs = []
    for chunks in out.alignments:
        e = 0
        for ch in chunks:
            if ch.type in ("substitute", "delete"):
                e += ch.ref_end_idx - ch.ref_start_idx
            elif ch.type == "insert":
                e += ch.hyp_end_idx - ch.hyp_start_idx
        errs.append(e)
    return np.asarray(errs, dtype=np.int64), np.asarray([len(r) for r in refs], dtype=np.int64)


def bootstrap_ci(
    errors: np.ndarray,
    lengths: np.ndarray,
    *,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``sum(errors) / sum(lengths)``, resampling utterances."""
    errors, lengths = np.asarray(errors, dtype=np.float64), np.asarray(lengths, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(errors), size=(n_boot, len(errors)))
    rates = errors[idx].sum(axis=1) / np.maximum(lengths[idx].sum(axis=1), 1.0)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(rates, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def paired_bootstrap(
    refs: Sequence[str],
    hyps_a: Sequence[str],
    hyps_b: Sequence[str],
    *,
    normalizer: Callable[[str], str] | None = None,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Is system B better than system A on the same utterances? The WER difference B - A with a
    *paired* percentile bootstrap interval: each resample draws utterances once and scores both
    systems on them, so the utterance-to-utterance variation that two separate intervals both
    carry cancels out. A difference whose interval excludes 0 is real at that level.

    Returns ``wer_a, wer_b, delta`` (B - A), ``delta_lo, delta_hi`` and ``p_b_better`` (the share
    of resamples where B's WER is lower), all as fractions.
    """
    _check(refs, hyps_a)
    _check(refs, hyps_b)
    normalizer = normalizer or normalizer_for(refs)
    r = _prepare(refs, normalizer)
    errs, n_words = [], None
    for hyps in (hyps_a, hyps_b):
        counts = utterance_counts(r, _prepare(hyps, normalizer))
        errs.append(
            (counts["substitutions"] + counts["deletions"] + counts["insertions"]).to_numpy(
                np.float64
            )
        )
        n_words = counts["ref_words"].to_numpy(np.float64)
    if n_words.sum() == 0:
        raise ValueError("every reference is empty after normalisation: WER is undefined")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(r), size=(n_boot, len(r)))
    denom = np.maximum(n_words[idx].sum(axis=1), 1.0)
    diffs = (errs[1][idx].sum(axis=1) - errs[0][idx].sum(axis=1)) / denom
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(diffs, [alpha, 1.0 - alpha])
    wer_a, wer_b = errs[0].sum() / n_words.sum(), errs[1].sum() / n_words.sum()
    return {
        "wer_a": float(wer_a),
        "wer_b": float(wer_b),
        "delta": float(wer_b - wer_a),
        "delta_lo": float(lo),
        "delta_hi": float(hi),
        "p_b_better": float(np.mean(diffs < 0)),
    }


def compression_ratio(text: str) -> float:
    """UTF-8 bytes over deflate-compressed bytes (Whisper's ``compression_ratio``); repetitive
    text compresses well, so a ratio above 2.4 marks a likely repetition loop."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def repeated_ngram_rate(text: str, *, n: int = REPEAT_NGRAM) -> float:
    """Share of the word n-grams of ``text`` that already occurred earlier in it (0 = none)."""
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


@dataclass(frozen=True)
class Score:
    """What :func:`score` measures; rates are fractions (0.25 = 25%)."""

    n_utterances: int
    wer: float  # normalised text
    cer: float  # normalised text
    wer_raw: float  # only whitespace collapsed
    cer_raw: float
    wer_ci: tuple[float, float]  # 95% bootstrap interval of the normalised WER
    cer_ci: tuple[float, float]
    hits: int
    substitutions: int
    deletions: int
    insertions: int
    ref_words: int
    repeated_ngram_rate: float  # mean over hypotheses
    compression_ratio: float  # mean over hypotheses
    loops: int  # hypotheses above COMPRESSION_RATIO_THRESHOLD
    accents: str  # "kept", or "folded" (references written without accents: normalizer_for)
    per_group: pd.DataFrame = field(
        repr=False
    )  # columns: field, group, n, wer, cer, wer_lo, wer_hi

    def to_dict(self) -> dict:
        """JSON-ready summary (the per-group table as a list of records)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "per_group"}
        d["wer_ci"], d["cer_ci"] = list(self.wer_ci), list(self.cer_ci)
        d["per_group"] = self.per_group.to_dict(orient="records")
        return d


def score(
    refs: Sequence[str],
    hyps: Sequence[str],
    *,
    groups: Mapping[str, Sequence] | None = None,
    normalizer: Callable[[str], str] | None = None,
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> Score:
    """Score hypotheses against references.

    Parameters
    ----------
    refs, hyps : sequences of str, same length
    groups : mapping of field name to per-utterance labels, optional
        E.g. ``{"palo": [...], "voice": [...]}``: one row per (field, label) in ``per_group``.
    normalizer : callable, optional
        Text normaliser for the normalised rates (default :func:`normalizer_for` the references:
        :func:`flamenco_lib.text.normalize`, accents folded when no reference has any).
    n_boot, seed : int
        Bootstrap resamples and their seed (same seed, same interval).

    Raises
    ------
    ValueError
        Empty or misaligned lists, a group whose labels do not align, all references empty.
    """
    _check(refs, hyps)
    normalizer = normalizer or normalizer_for(refs)
    raw_r, raw_h = _prepare(refs, None), _prepare(hyps, None)
    r, h = _prepare(refs, normalizer), _prepare(hyps, normalizer)
    counts = utterance_counts(r, h)
    n_ref = int(counts["ref_words"].sum())
    if n_ref == 0:
        raise ValueError("every reference is empty after normalisation: WER is undefined")
    word_err = (counts["substitutions"] + counts["deletions"] + counts["insertions"]).to_numpy()
    c_err, c_len = char_errors(r, h)
    raw_errors, _ = _totals(raw_r, raw_h)
    raw_n = sum(len(x.split()) for x in raw_r)

    per_group = []
    for name, labels in (groups or {}).items():
        labels = list(labels)
        if len(labels) != len(refs):
            raise ValueError(f"group {name!r} has {len(labels)} labels for {len(refs)} utterances")
        for label in sorted(set(labels), key=str):
            m = np.array([x == label for x in labels])
            n_words = counts["ref_words"].to_numpy()[m]
            lo, hi = bootstrap_ci(word_err[m], n_words, n_boot=n_boot, seed=seed)
            per_group.append(
                {
                    "field": name,
                    "group": label,
                    "n": int(m.sum()),
                    "wer": float(word_err[m].sum() / max(n_words.sum(), 1)),
                    "cer": float(c_err[m].sum() / max(c_len[m].sum(), 1)),
                    "wer_lo": lo,
                    "wer_hi": hi,
                }
            )
    ratios = [compression_ratio(x) for x in raw_h]
    return Score(
        n_utterances=len(refs),
        wer=float(word_err.sum() / n_ref),
        cer=float(c_err.sum() / max(c_len.sum(), 1)),
        wer_raw=raw_errors / max(raw_n, 1),
        cer_raw=float(jiwer.cer(raw_r, raw_h)) if sum(map(len, raw_r)) else float("nan"),
        wer_ci=bootstrap_ci(word_err, counts["ref_words"].to_numpy(), n_boot=n_boot, seed=seed),
        cer_ci=bootstrap_ci(c_err, c_len, n_boot=n_boot, seed=seed),
        hits=int(counts["hits"].sum()),
        substitutions=int(counts["substitutions"].sum()),
        deletions=int(counts["deletions"].sum()),
        insertions=int(counts["insertions"].sum()),
        ref_words=n_ref,
        repeated_ngram_rate=float(np.mean([repeated_ngram_rate(x) for x in raw_h])),
        compression_ratio=float(np.mean(ratios)),
        loops=int(sum(x > COMPRESSION_RATIO_THRESHOLD for x in ratios)),
        accents="folded" if normalizer is _fold else "kept",
        per_group=pd.DataFrame(
            per_group, columns=["field", "group", "n", "wer", "cer", "wer_lo", "wer_hi"]
        ),
    )
