"""The evaluation runner: transcribe a dataset, score it, and write the results files.

Every stage of the thesis is evaluated here, with the same normaliser and decoding settings:
:func:`evaluate` writes ``predictions.jsonl`` (one line per utterance) and ``metrics.json``
(WER/CER raw and normalised against ``text`` and ``text_canonical``, bootstrap CIs, S/D/I,
per-group tables, hallucination indicators, decoding settings, model, git revision) into
``data/results/<run>/``. Notebooks and the report only read those files.

CLI: ``python -m flamenco_lib evaluate --model MODEL --manifest MANIFEST --split test --out DIR``.
Notebooks: ``06_zero_shot.ipynb`` onwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from . import metrics
from .decoding import (  # noqa: F401  (re-exported: the evaluation's decoding)
    DEFAULT_BATCH_SIZE,
    _rows,
    recording_chains,
    sequential_transcripts,
    transcribe_dataset,
)
from .errors import FlamencoError
from .paths import project_root, results_dir


class EvaluationError(FlamencoError, ValueError):
    """An evaluation that cannot run on what it was given (an empty split, say)."""


class ResultsMissing(FlamencoError, FileNotFoundError):
    """A results folder without ``metrics.json``."""


GROUP_FIELDS = ("palo", "voice", "base_voice", "voice_heldout", "style", "source", "singer")


def git_revision() -> str | None:
    """The project's git revision (with ``-dirty`` when the tree has changes), or None."""
    try:
        root = project_root()
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def score_predictions(
    rows: list[dict], hyps: list[str], *, group_fields=GROUP_FIELDS, seed: int = 0
) -> dict:
    """The metrics dictionary of ``metrics.json`` for rows (with ``text``, ``text_canonical``) and
    their hypotheses: scores against what is sung and against the written lyric, per group."""
    refs = [r["text"] for r in rows]
    canon = [r.get("text_canonical") or r["text"] for r in rows]
    groups = {
        f: [str(r.get(f)) for r in rows]
        for f in group_fields
        if any(r.get(f) is not None for r in rows) and len({str(r.get(f)) for r in rows}) > 1
    }
    sung = metrics.score(refs, hyps, groups=groups, seed=seed)
    written = metrics.score(canon, hyps, seed=seed)
    d = sung.to_dict()
    d["canonical"] = {k: v for k, v in written.to_dict().items() if k != "per_group"}
    return d


def rescore(run: str | Path) -> dict:
    """Score a run folder again from its ``predictions.jsonl`` (no decoding) and rewrite its
    ``metrics.json``, keeping what the scores do not change (model, decoding, seconds...): for runs
    scored before a change of the scoring rules (e.g. :func:`flamenco_lib.metrics.normalizer_for`).
    Returns the new metrics."""
    run = Path(run)
    preds = [
        json.loads(x)
        for x in (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
        if x
    ]
    rows = [
        {
            "text": p["reference"],
            "text_canonical": p["reference_canonical"],
            **{f: p.get(f) for f in GROUP_FIELDS},
        }
        for p in preds
    ]
    old = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    m = {**old, **score_predictions(rows, [p["hypothesis"] for p in preds])}
    tmp = run / "metrics.json.tmp"
    tmp.write_text(json.dumps(m, ensure_ascii=False, indent=1, default=_jsonable), encoding="utf-8")
    os.replace(tmp, run / "metrics.json")
    return m


def evaluate(
    model,
    processor,
    dataset,
    *,
    out: str | Path,
    model_id: str = "",
    batch_size: int = DEFAULT_BATCH_SIZE,
    language: str | None = "es",
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    prompts: list[str | None] | None = None,
    group_fields=GROUP_FIELDS,
    extra: dict | None = None,
    progress: bool = True,
    soft_prompt=None,
    sequential_prompt=None,
    bf16: bool = False,
) -> dict:
    """Transcribe ``dataset``, score it, and write ``predictions.jsonl`` and ``metrics.json`` into ``out``.

    Returns the metrics dictionary (also in ``metrics.json``): the fields of
    :class:`flamenco_lib.metrics.Score` against ``text`` (what is sung), ``canonical`` (the same
    against ``text_canonical``), ``decoding``, ``model``, ``git``, ``n_utterances``, ``seconds``
    and whatever ``extra`` holds (e.g. the manifest and split). ``soft_prompt`` decodes with a
    learned soft prompt (:mod:`flamenco_lib.soft_prompt`). ``sequential_prompt(i, previous)``
    (instead of ``prompts``) decodes each recording's lines in order, each prompted with the
    transcript of the line before it (:func:`sequential_transcripts`). ``bf16`` decodes under
    bf16 autocast (``metrics["decoding"]["precision"]`` says which).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = _rows(dataset)
    if not rows:
        raise EvaluationError("evaluate: the dataset is empty (check the manifest and the split)")
    t0 = time.perf_counter()
    decode = dict(
        batch_size=batch_size,
        language=language,
        num_beams=num_beams,
        max_new_tokens=max_new_tokens,
        soft_prompt=soft_prompt,
        bf16=bf16,
    )
    if sequential_prompt is not None:
        hyps, prompts = sequential_transcripts(
            model, processor, dataset, make_prompt=sequential_prompt, progress=progress, **decode
        )
    else:
        hyps = transcribe_dataset(
            model, processor, dataset, prompts=prompts, progress=progress, **decode
        )
    seconds = time.perf_counter() - t0
    tmp = out / "predictions.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for i, (r, h) in enumerate(zip(rows, hyps)):
            rec = {
                "id": r.get("id"),
                "reference": r["text"],
                "reference_canonical": r.get("text_canonical") or r["text"],
                "hypothesis": h,
                "prompt": None if prompts is None else prompts[i],
            }
            rec.update({f: r.get(f) for f in group_fields if f in r})
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, out / "predictions.jsonl")
    m = score_predictions(rows, hyps, group_fields=group_fields)
    m.update(
        model=model_id,
        git=git_revision(),
        seconds=seconds,
        decoding={
            "language": language,
            "task": "transcribe",
            "num_beams": num_beams,
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
            "prompts": prompts is not None,
            "soft_prompt": None if soft_prompt is None else soft_prompt.k,
            "precision": "bf16" if bf16 else "fp32",
        },
        **(extra or {}),
    )
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(m, ensure_ascii=False, indent=1, default=_jsonable), encoding="utf-8")
    os.replace(tmp, out / "metrics.json")
    return m


def _jsonable(x):
    if isinstance(x, (np.integer, np.floating, np.bool_)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


def evaluate_manifest(
    model_name: str,
    manifest: str | Path,
    *,
    split: str = "test",
    out: str | Path | None = None,
    max_items: int | None = None,
    model=None,
    processor=None,
    prompt_kinds: list[str] | None = None,
    lexicon_size: int = 40,
    soft_prompt: str | Path | bool | None = "auto",
    catalogue: str | Path | None = None,
    catalogue_method: str = "fuzzy",
    leave_out_evaluated: bool = False,
    previous: str = "true",
    mismatched: bool = False,
    first_pass: list[dict] | None = None,
    **kwargs,
) -> dict:
    """Load a model (unless given) and a manifest's split, and :func:`evaluate` it.

    ``out`` defaults to ``data/results/<model folder>-<manifest folder>-<split>``; ``max_items``
    keeps the first rows (smoke runs). ``prompt_kinds`` (some of ``palo``, ``previous``,
    ``lexicon``, ``catalogue``) prompts every utterance (:func:`flamenco_lib.prompts.prompts_for`); the lexicon
    comes from the manifest's *train* split. ``soft_prompt``: ``"auto"`` decodes with the model
    folder's ``soft_prompt.pt`` when it has one (a stage trained with ``soft_prompt: k``), a path
    loads that soft prompt, ``None``/``False`` decodes without.

    The ``catalogue`` prompt kind decodes twice (:func:`catalogue_pass`): a first pass without a
    prompt, whose transcripts search the lyrics file ``catalogue`` (None: the project's
    coplas) with ``catalogue_method`` (``fuzzy`` or ``bm25``); the best letra is each clip's
    prompt in the second pass. ``leave_out_evaluated`` removes the evaluated rows' coplas from
    the catalogue first (a singer of new lyrics). ``metrics["catalogue"]`` holds the retrieval
    accuracy (top-1, top-5) and ``first_pass.jsonl`` each clip's first transcript and letras found.
    ``mismatched``: the control, no search; each clip's prompt is a random other copla of the
    catalogue (:func:`flamenco_lib.prompts.mismatched_coplas`). ``first_pass``: this model's
    unprompted transcripts of these rows, decoded before (``{"id", "hypothesis"}`` per row, as
    ``predictions.jsonl`` holds them): the first pass reads them instead of decoding again.

    The ``previous`` prompt kind takes the manifest's ``previous_text`` (``previous="true"``,
    the upper bound) or the model's own transcript of the line before (``previous="own"``:
    each recording's lines decoded in order, as Whisper's ``condition_on_previous_text``).
    """
    from .data.corpus import load_corpus
    from .data.manifest import ManifestError

    corpus = load_corpus(manifest)
    if split not in corpus:
        raise ManifestError(
            f"{manifest}: no rows in split {split!r} (splits here: {sorted(corpus)})"
        )
    ds = corpus[split]
    if max_items is not None:
        ds = ds.select(range(min(int(max_items), len(ds))))
    if model is None:
        from .models import load_whisper

        model, processor = load_whisper(model_name)
    if out is None:
        out = results_dir() / f"{Path(str(model_name)).name}-{Path(manifest).parent.name}-{split}"
    extra = {"manifest": str(manifest), "split": split, **kwargs.pop("extra", {})}
    soft = _soft_prompt_of(model_name, soft_prompt)
    if soft is not None:
        kwargs["soft_prompt"] = soft
        extra["soft_prompt_k"] = soft.k
    if prompt_kinds:
        from . import prompts as P

        train = _rows(corpus["train"]) if "train" in corpus else []
        words = P.lexicon([r["text"] for r in train if r.get("palo")], size=lexicon_size)
        found = None
        if "catalogue" in prompt_kinds and mismatched:
            cat, _ = _load_catalogue(catalogue)
            found = P.mismatched_coplas(_rows(ds), cat)
            extra["catalogue"] = {"mismatched": True, "coplas": len(cat)}
        elif "catalogue" in prompt_kinds:
            decode = {k: kwargs[k] for k in _PASS_KEYS if k in kwargs}
            found, extra["catalogue"] = catalogue_pass(
                model,
                processor,
                ds,
                out=out,
                catalogue=catalogue,
                method=catalogue_method,
                leave_out_evaluated=leave_out_evaluated,
                first=first_pass,
                **decode,
            )
        rows = _rows(ds)
        if previous not in ("true", "own"):
            raise ValueError(f"previous={previous!r}: use 'true' or 'own'")
        if "previous" in prompt_kinds and previous == "own":

            def own(i, text):
                row = {**rows[i], "previous_text": text}
                return P.prompts_for(
                    [row], kinds=prompt_kinds, words=words, found=found and found[i : i + 1]
                )[0]

            kwargs["sequential_prompt"] = own
        else:
            kwargs["prompts"] = P.prompts_for(rows, kinds=prompt_kinds, words=words, found=found)
        extra["prompt_kinds"], extra["lexicon"] = list(prompt_kinds), words
        extra["previous"] = previous if "previous" in prompt_kinds else None
    return evaluate(model, processor, ds, out=out, model_id=str(model_name), extra=extra, **kwargs)


_PASS_KEYS = ("batch_size", "language", "num_beams", "max_new_tokens", "progress", "bf16")


def catalogue_pass(
    model,
    processor,
    dataset,
    *,
    out: str | Path,
    catalogue: str | Path | None = None,
    method: str = "fuzzy",
    leave_out_evaluated: bool = False,
    k: int = 5,
    first: list[dict] | None = None,
    **decode,
) -> tuple[list[str | None], dict]:
    """The first pass of the ``catalogue`` prompt: transcribe ``dataset`` without a prompt,
    search the lyrics ``catalogue`` with each transcript, and return the best letra's text per
    row (None when the search finds nothing) and the retrieval summary: ``top1`` and ``topk``
    over the rows whose ``copla_id`` is in the catalogue (``n``), the catalogue's size and file.
    Writes ``first_pass.jsonl`` into ``out`` (transcript and the ``k`` letras found, per row).
    ``first``: the same model's unprompted transcripts of these rows, decoded before with the same
    settings (``{"id", "hypothesis"}`` per row, in order): used instead of decoding again when
    their ids are the rows' ids."""
    rows = _rows(dataset)
    exclude = {r.get("copla_id") for r in rows} if leave_out_evaluated else set()
    cat, path = _load_catalogue(catalogue, exclude=exclude)
    if first is not None and [f.get("id") for f in first] == [r.get("id") for r in rows]:
        first = [f["hypothesis"] for f in first]
    else:
        first = transcribe_dataset(model, processor, dataset, **decode)
    hits = [[i for i, _ in cat.search(h, k=k, method=method)] for h in first]
    present = set(cat.ids)
    truth = [r.get("copla_id") for r in rows]
    scored = [(t, h) for t, h in zip(truth, hits) if t in present]
    n = len(scored)
    summary = {
        "file": str(path),
        "method": method,
        "coplas": len(cat),
        "left_out": sorted(x for x in exclude if x),
        "n": n,
        "top1": sum(h[:1] == [t] for t, h in scored) / n if n else None,
        "topk": sum(t in h for t, h in scored) / n if n else None,
        "k": k,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "first_pass.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r, h, found in zip(rows, first, hits):
            rec = {"id": r.get("id"), "copla_id": r.get("copla_id"), "hypothesis": h}
            f.write(json.dumps({**rec, "found": found}, ensure_ascii=False) + "\n")
    os.replace(tmp, out / "first_pass.jsonl")
    return [cat.text_of(h[0]) if h else None for h in hits], summary


def _load_catalogue(catalogue: str | Path | None, *, exclude=()):
    """The lyrics file ``catalogue`` (None: the project's coplas) as a searchable
    :class:`~flamenco_lib.catalogue.Catalogue` without the coplas ``exclude``, and its path."""
    from .catalogue import Catalogue
    from .data.lyrics import default_lyrics, read_lyrics

    path = Path(catalogue) if catalogue else default_lyrics()
    return Catalogue.from_coplas(read_lyrics(path), exclude=exclude), path


def _soft_prompt_of(model_name, soft_prompt):
    from .soft_prompt import FILENAME, SoftPrompt

    if soft_prompt is None or soft_prompt is False:
        return None
    if soft_prompt == "auto":
        folder = Path(str(model_name))
        return SoftPrompt.load(folder) if (folder / FILENAME).exists() else None
    return SoftPrompt.load(soft_prompt)


def load_metrics(run: str | Path) -> dict:
    """``metrics.json`` of a run folder (a path, or a name under ``data/results``)."""
    path = Path(run)
    if not path.exists():
        path = results_dir() / str(run)
    f = path / "metrics.json" if path.is_dir() else path
    if not f.exists():
        raise ResultsMissing(
            f"{f}: no metrics.json; run `python -m flamenco_lib evaluate ... --out {path}` first"
        )
    return json.loads(f.read_text(encoding="utf-8"))
