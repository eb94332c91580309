"""Results files shaped into tables for the thesis figures.

Every function here only *reads* the run folders that :mod:`flamenco_lib.evaluation` writes
(``data/results/<row>__<test set>/metrics.json`` and ``predictions.jsonl``, one per row of
:data:`flamenco_lib.grid.STAGES` and test set of :data:`~flamenco_lib.grid.TEST_SETS`).
Rows or test sets without results are skipped; with no results at all a table is empty, never an
error. Rates are percentages. Notebook: ``notebooks/10_results.ipynb``; figures:
:mod:`flamenco_lib.plotting`.
"""

from __future__ import annotations

import json
from pathlib import Path

import jiwer
import pandas as pd

from .grid import PROMPT_GRID, STAGES, TEST_SETS
from .paths import results_dir
from .results import results_table, run_dir
from .text import normalize

# The printed line of a notebook section whose results do not exist yet.
NO_RESULTS = (
    "no results for this yet: run `python -m flamenco_lib results --evaluate` (after `make stages`)"
)
# jiwer's alignment chunk types and the marker format_alignment prints under each word.
OP_MARKS = {"equal": " ", "substitute": "S", "delete": "D", "insert": "I"}


def _metrics(root: Path | None = None):
    """``(row, test set, metrics dict)`` for every run that has a ``metrics.json``, in grid order."""
    for row, *_ in STAGES:
        for key, _, _ in TEST_SETS:
            f = run_dir(row, key, root=root) / "metrics.json"
            if f.exists():
                yield row, key, json.loads(f.read_text(encoding="utf-8"))


def _scores(m: dict) -> dict:
    """A run's ``n, wer, wer_lo, wer_hi, cer`` (percent) from its metrics."""
    lo, hi = m["wer_ci"]
    return {
        "n": m["n_utterances"],
        "wer": 100 * m["wer"],
        "wer_lo": 100 * lo,
        "wer_hi": 100 * hi,
        "cer": 100 * m["cer"],
    }


def runs_table(*, root: Path | None = None) -> pd.DataFrame:
    """One row per run: ``model, test_set, n, wer, wer_lo, wer_hi, cer, substitutions, deletions,
    insertions`` (percent; S, D and I of the reference words, so that they add up to the WER).
    The stage-comparison figure draws it (:func:`flamenco_lib.plotting.plot_stage_comparison`)."""
    rows = [
        {
            "model": row,
            "test_set": key,
            **_scores(m),
            **{
                k: 100 * m[k] / m["ref_words"] for k in ("substitutions", "deletions", "insertions")
            },
        }
        for row, key, m in _metrics(root)
    ]
    return pd.DataFrame(rows)


def per_palo_table(
    *, test_set: str = "cante", field: str = "palo", root: Path | None = None
) -> pd.DataFrame:
    """WER per palo (or another ``field`` of ``per_group``) per model on one test set.

    Returns a long table, one row per (model, palo): ``model, palo, n, wer, wer_lo, wer_hi``
    (percent). Runs whose metrics have no such group are skipped."""
    rows = [
        {
            "model": row,
            field: g["group"],
            "n": g["n"],
            "wer": 100 * g["wer"],
            "wer_lo": 100 * g["wer_lo"],
            "wer_hi": 100 * g["wer_hi"],
        }
        for row, key, m in _metrics(root)
        if key == test_set
        for g in m.get("per_group", [])
        if g["field"] == field
    ]
    return pd.DataFrame(rows)


REAL_VOICE_SETS = ("real_sung", "real_speech")  # the held-out speakers, sung and as recorded


def per_speaker_table(
    test_sets: tuple[str, ...] = REAL_VOICE_SETS, *, root: Path | None = None
) -> pd.DataFrame:
    """WER per speaker per model on the real-voice test sets (``per_group`` by ``singer``):
    ``model, singer, n, wer, wer_lo, wer_hi, test_set, speaker`` (percent), ``speaker`` being
    the singer's short name and the test set (``billie-jean (real_sung)``)."""
    parts = [
        per_palo_table(test_set=key, field="singer", root=root).assign(test_set=key)
        for key in test_sets
    ]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(
            columns=["model", "singer", "n", "wer", "wer_lo", "wer_hi", "test_set", "speaker"]
        )
    table = pd.concat(parts, ignore_index=True)
    short = table["singer"].astype(str).str.removeprefix("drascula-")
    return table.assign(speaker=short + " (" + table["test_set"] + ")")


def sdi_table(*, root: Path | None = None) -> pd.DataFrame:
    """Substitutions, deletions and insertions as % of the reference words, per model and test set:
    ``model, test_set, substitutions, deletions, insertions, wer``."""
    t = runs_table(root=root)
    return (
        t[["model", "test_set", "substitutions", "deletions", "insertions", "wer"]] if len(t) else t
    )


def forgetting_table(*, root: Path | None = None) -> pd.DataFrame:
    """Cante WER against speech WER, one row per model evaluated on both (the forgetting plot):
    ``model, cante_wer, cante_wer_lo, cante_wer_hi, speech_wer, speech_wer_lo, speech_wer_hi``."""
    cols = ["model"] + [f"{k}_wer{s}" for k in ("cante", "speech") for s in ("", "_lo", "_hi")]
    t = results_table(root=root)
    if not set(cols) <= set(t.columns):
        return pd.DataFrame()
    return t[cols].dropna().reset_index(drop=True)


def prompt_grid_table(*, root: Path | None = None) -> pd.DataFrame:
    """The prompt grid of notebook 09 (:data:`flamenco_lib.grid.PROMPT_GRID`) on the verses:
    ``model, n, wer, wer_lo, wer_hi, cer`` (percent) and, for the catalogue rows, the retrieval
    accuracy of the first pass, ``top1`` and ``top5`` (percent of the lines whose copla is in
    the catalogue)."""
    rows = []
    for label, *_ in PROMPT_GRID:
        f = run_dir(label, "verses", root=root) / "metrics.json"
        if not f.exists():
            continue
        m = json.loads(f.read_text(encoding="utf-8"))
        cat = m.get("catalogue") or {}
        top = {k: 100 * cat[k] if cat.get(k) is not None else None for k in ("top1", "topk")}
        rows.append({"model": label, **_scores(m), "top1": top["top1"], "top5": top["topk"]})
    return pd.DataFrame(rows)


def align(reference: str, hypothesis: str) -> list[tuple[str, str, str]]:
    """Word-by-word alignment of two transcripts, normalised as the metrics are
    (:func:`flamenco_lib.text.normalize`), from jiwer's ``process_words``.

    Returns one ``(ref_word, hyp_word, op)`` per aligned position; ``op`` is jiwer's chunk type
    (``equal``, ``substitute``, ``delete``, ``insert``) and the missing side of a deletion or an
    insertion is ``""``."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    out = jiwer.process_words(ref, hyp)
    r, h = out.references[0], out.hypotheses[0]
    triples = []
    for c in out.alignments[0]:
        rw, hw = r[c.ref_start_idx : c.ref_end_idx], h[c.hyp_start_idx : c.hyp_end_idx]
        if c.type == "delete":
            hw = [""] * len(rw)
        elif c.type == "insert":
            rw = [""] * len(hw)
        triples += [(a, b, c.type) for a, b in zip(rw, hw)]
    return triples


# (baseline row, row, test set): the comparisons the thesis makes, each a paired bootstrap
PAIRS = (
    ("zero-shot", "stage 1", "cante"),  # what stage 1 gains
    ("stage 1, spoken control", "stage 1", "cante"),  # the part of it that is the singing
    ("stage 1", "stage 2", "cante"),  # does stage 2 keep it?
    ("zero-shot", "stage 2", "speech"),  # forgetting
    ("zero-shot", "stage 1", "real_sung"),  # real voices never heard, sung
    ("zero-shot", "stage 2", "real_sung"),
    ("zero-shot", "stage 3", "real_sung"),  # the bar of the real-voice issue (the final model)
    ("zero-shot", "stage 2", "real_speech"),  # forgetting, on speakers never heard
    ("zero-shot", "stage 3", "real_speech"),
    ("stage 2", "stage 3", "cante"),  # does training with prompts cost the unprompted model?
    ("zero-shot", "stage 3", "speech"),
    ("stage 3", "stage 3, soft prompt", "speech"),  # what the always-on soft prompt costs speech
)


# the prompt grid (notebook 09): every row against stage 2 without a prompt (the bars of the
# prompts issue), and what each prompt itself does to stage 3 (a wrong prompt must not hurt)
PROMPT_PAIRS = tuple(("stage 2", label, "verses") for label, *_ in PROMPT_GRID[1:]) + tuple(
    ("stage 3", label, "verses") for label, *_ in PROMPT_GRID[2:-1]
)


def _predictions(row: str, test_set: str, root: Path | None) -> dict[str, dict]:
    f = run_dir(row, test_set, root=root) / "predictions.jsonl"
    if not f.exists():
        return {}
    return {p["id"]: p for p in map(json.loads, f.read_text(encoding="utf-8").splitlines()) if p}


def paired_table(pairs=PAIRS, *, root: Path | None = None, seed: int = 0) -> pd.DataFrame:
    """Each comparison of ``pairs`` whose two runs exist, on the utterances both transcribed:
    ``baseline, model, test_set, n, wer_baseline, wer_model, delta, delta_lo, delta_hi,
    p_better, verdict`` (percent; ``delta`` = model - baseline with its paired 95% bootstrap
    interval, :func:`flamenco_lib.metrics.paired_bootstrap`; ``verdict``: ``better``/``worse``
    when the interval excludes 0, else ``no clear difference``)."""
    from .metrics import paired_bootstrap

    rows = []
    for base, model, key in pairs:
        a, b = _predictions(base, key, root), _predictions(model, key, root)
        ids = [i for i in a if i in b]
        if not ids:
            continue
        d = paired_bootstrap(
            [a[i]["reference"] for i in ids],
            [a[i]["hypothesis"] for i in ids],
            [b[i]["hypothesis"] for i in ids],
            seed=seed,
        )
        verdict = (
            "better"
            if d["delta_hi"] < 0
            else "worse"
            if d["delta_lo"] > 0
            else "no clear difference"
        )
        rows.append(
            {
                "baseline": base,
                "model": model,
                "test_set": key,
                "n": len(ids),
                "wer_baseline": 100 * d["wer_a"],
                "wer_model": 100 * d["wer_b"],
                "delta": 100 * d["delta"],
                "delta_lo": 100 * d["delta_lo"],
                "delta_hi": 100 * d["delta_hi"],
                "p_better": d["p_b_better"],
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


def best_and_worst(run: str | Path, n: int = 5, *, root: Path | None = None) -> pd.DataFrame:
    """The ``n`` best and ``n`` worst utterances of a run by WER, each with its alignment.

    Parameters
    ----------
    run : str or Path
        A run folder, or its name under ``root`` (``"stage-1__cante"``, see
        :func:`flamenco_lib.results.run_dir`).
    n : int > 0
        Utterances per end (a run of fewer than ``2 n`` utterances shows some twice).

    Returns
    -------
    DataFrame
        ``rank`` (``best``/``worst``), ``id``, ``palo``, ``wer`` (percent: word errors over
        normalised reference words, at least one), ``reference``, ``hypothesis``, ``alignment``
        (the list of :func:`align`); best first ascending, then worst descending by WER (ties in
        file order). Empty when the run has no ``predictions.jsonl``.
    """
    path = Path(run)
    if not path.is_dir():
        path = (root or results_dir()) / str(run)
    f = path / "predictions.jsonl"
    if not f.exists():
        return pd.DataFrame()
    preds = pd.DataFrame(
        [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    )
    if preds.empty:
        return pd.DataFrame()
    preds["alignment"] = [align(r, h) for r, h in zip(preds["reference"], preds["hypothesis"])]
    errors = preds["alignment"].map(lambda a: sum(op != "equal" for *_, op in a))
    words = preds["alignment"].map(lambda a: sum(op != "insert" for *_, op in a))
    preds["wer"] = 100 * errors / words.clip(lower=1)
    best = preds.sort_values("wer", kind="stable").head(n).assign(rank="best")
    worst = preds.sort_values("wer", ascending=False, kind="stable").head(n).assign(rank="worst")
    cols = ["rank", "id", "palo", "wer", "reference", "hypothesis", "alignment"]
    return pd.concat([best, worst]).reindex(columns=cols).reset_index(drop=True)


def format_alignment(alignment: list[tuple[str, str, str]]) -> list[str]:
    """An alignment as three monospace lines: ``REF:``, ``HYP:`` and the operation markers
    (:data:`OP_MARKS`: ``S``, ``D``, ``I``, blank for a match), one column per position.
    A missing word shows as ``*``.

    >>> print("\\n".join(format_alignment(align("la luna de triana", "la lula triana"))))
    REF: la luna de triana
    HYP: la lula ** triana
            S    D
    """
    ref, hyp, ops = ["REF:"], ["HYP:"], ["    "]
    for r, h, op in alignment:
        width = max(len(r), len(h), 1)
        ref.append((r or "*" * width).ljust(width))
        hyp.append((h or "*" * width).ljust(width))
        ops.append(OP_MARKS[op].ljust(width))
    return [" ".join(line).rstrip() for line in (ref, hyp, ops)]
