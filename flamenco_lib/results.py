"""The stage comparison: every model evaluated on every test set, and the table the report shows.

Rows are models (zero-shot Whisper, stage 1, its spoken control, stage 2, ...), columns the test
sets of DESIGN.md: the cante test set (held-out lyrics, half of it a held-out voice), the sung
real-voice test set (real recorded speech sung by the same transform) and the speech test set
(forgetting), plus the cante test clips *spoken* (the same words and voices, not sung: how much
of the difficulty is the singing). :func:`evaluate_stages` runs what is missing (each run is a folder
``data/results/<row>__<test set>/`` written by :mod:`flamenco_lib.evaluation`);
:func:`results_table` only reads those folders.

CLI: ``python -m flamenco_lib results [--evaluate]``. Notebook: ``10_results.ipynb``.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .grid import STAGES, TEST_SETS
from .hashing import sha256_of
from .paths import data_dir, results_dir

logger = logging.getLogger(__name__)

__all__ = ["evaluate_stages", "markdown", "results_table", "run_dir", "to_markdown"]

INPUTS = "inputs.json"  # in a run folder: what the run was computed from (evaluate_stages)
# a grid row's options passed on to evaluation.evaluate_manifest (grid.PROMPT_GRID)
PROMPT_OPTIONS = ("previous", "leave_out_evaluated", "mismatched")


def _slug(label: str) -> str:
    return label.replace(",", "").replace(" ", "-")


def run_dir(row: str, test_set: str, *, root: Path | None = None) -> Path:
    """Where the evaluation of one row on one test set lives."""
    return (root or results_dir()) / f"{_slug(row)}__{test_set}"


def _model_path(model: str) -> str:
    p = data_dir() / model
    if (p / "final" / "config.json").exists():
        return str(p / "final")
    return model


def evaluate_stages(
    stages=STAGES,
    test_sets=TEST_SETS,
    *,
    max_items: int | None = None,
    force: bool = False,
    progress: bool = True,
    root: Path | None = None,
    precision: str = "auto",
    shared_layers: int | None = None,
    memo_bytes: int = 2 * 2**30,
    **eval_kwargs,
) -> list[Path]:
    """Evaluate every available model on every available test set. A run is kept when what it was
    computed from is unchanged: its ``inputs.json`` (sha256 of the manifest and of the model
    folder, ``max_items``, the prompt kinds, the version of the decoding rules) equals the current
    one; a run saved without it is kept when its ``metrics.json`` is newer than the model and the
    manifest. So a rerun picks up
    where it stopped, and a corpus rebuilt identically costs no evaluation. Models or test sets
    that are not built yet are skipped with a message. A prompted row on a test set where no clip
    has a palo (the speech set: no clip gets a prompt) is a copy of the same model's unprompted run
    when that row comes first in ``stages``. ``root``: the results folder (default
    ``data/results``). ``precision``: ``auto`` decodes under bf16 autocast where the CPU computes
    bf16 natively (:func:`decode_in_bf16`), ``bf16`` or ``fp32`` always; it is part of a run's
    inputs. On the CPU the models' shared encoder prefix is computed once per clip
    (:func:`flamenco_lib.prefix_cache.shared_prefix`, ``shared_layers`` layers, default
    :data:`~flamenco_lib.prefix_cache.SHARED_LAYERS`; 0: off), and rows that decode the same
    clips with the same encoder (a model with and without prompts, a soft prompt on its base
    model) compute each clip's encoder output once (:class:`flamenco_lib.prefix_cache.EncoderMemo`,
    in memory for this call, at most ``memo_bytes``; 0: off); neither changes a transcript. The
    first pass of a ``catalogue`` row reads the transcripts of its unprompted twin (the row before
    it with the same model and no prompt) instead of decoding the clips again.
    Returns the run folders written or kept."""
    from .catalogue import FUZZY_SCORER
    from .data.manifest import read_manifest
    from .evaluation import evaluate_manifest
    from .models import load_whisper
    from .prefix_cache import EncoderMemo
    from .transcription import DECODING

    done, memo = [], EncoderMemo(memo_bytes)
    for label, model, *opts in stages:
        opts = opts[0] if opts else {}
        path = _model_path(model)
        local = Path(path)
        if model != "base" and not local.exists():
            logger.info("results: %s: %s not trained yet, skipped", label, data_dir() / model)
            continue
        model_digest = sha256_of(local) if local.exists() else str(path)
        loaded = None
        for key, manifest, split in test_sets:
            if "sets" in opts and key not in opts["sets"]:
                continue
            man = data_dir() / manifest
            if not man.exists():
                logger.info("results: test set %s: %s not built yet, skipped", key, man)
                continue
            out = run_dir(label, key, root=root)
            metrics, saved = out / "metrics.json", out / INPUTS
            inputs = {
                "manifest": sha256_of(man),
                "model": model_digest,
                "max_items": max_items,
                "prompts": list(opts.get("prompts", ())),
                **{k: opts[k] for k in PROMPT_OPTIONS if k in opts},
                **({"search": FUZZY_SCORER} if "catalogue" in opts.get("prompts", ()) else {}),
                "decoding": DECODING,
                "precision": "bf16" if decode_in_bf16(precision) else "fp32",
            }
            if saved.exists():
                keep = json.loads(saved.read_text(encoding="utf-8")) == inputs
            else:  # saved before inputs.json existed: newer than both the model and the test set
                times = [man.stat().st_mtime] + ([local.stat().st_mtime] if local.exists() else [])
                keep = metrics.exists() and metrics.stat().st_mtime > max(times)
            if keep and metrics.exists() and not force:
                if "accents" not in json.loads(metrics.read_text(encoding="utf-8")):
                    _rescore(out)  # scored before accents were folded for unaccented references
                done.append(out)
                continue
            twin = (
                _unprompted_twin(stages, label, model, key, opts, root)
                if opts.get("prompts")
                else None
            )
            if twin is not None and not any(r.get("palo") for r in read_manifest(man)):
                _copy_run(
                    twin, out, label, prompt_kinds=opts["prompts"]
                )  # no clip gets a prompt here: the unprompted run is this run
                logger.info(
                    "results: %s on %s: no clip has a palo, so no prompt: the run of %s is this run",
                    label,
                    key,
                    twin.name,
                )
            else:
                if loaded is None:
                    loaded = load_whisper(path)
                logger.info("results: evaluating %s on %s", label, key)
                # the catalogue's first pass is the unprompted run's decoding (the control has none)
                searched = "catalogue" in opts.get("prompts", ()) and not opts.get("mismatched")
                first = _predictions(twin) if twin is not None and searched else None
                with shared_encoder_prefix(loaded[0], shared_layers, memo=memo):
                    evaluate_manifest(
                        path,
                        man,
                        split=split,
                        out=out,
                        max_items=max_items,
                        model=loaded[0],
                        processor=loaded[1],
                        progress=progress,
                        prompt_kinds=list(opts.get("prompts", ())),
                        **{k: opts[k] for k in PROMPT_OPTIONS if k in opts},
                        extra={"row": label, "test_set": key},
                        bf16=inputs["precision"] == "bf16",
                        first_pass=first,
                        **eval_kwargs,
                    )
            tmp = out / (INPUTS + ".tmp")
            tmp.write_text(json.dumps(inputs, indent=1), encoding="utf-8")
            tmp.replace(saved)
            done.append(out)
    if memo.hits:
        logger.info("results: %d clips' encoder outputs reused across rows", memo.hits)
    return done


def decode_in_bf16(precision: str) -> bool:
    """Whether an evaluation decodes under bf16 autocast: ``precision`` ``bf16`` or ``fp32``, or
    ``auto``: on a CPU that computes bf16 natively (AVX512-BF16, AMX; as training's
    ``precision: auto``), never on CUDA (the models load there in their own dtype)."""
    import torch

    from .training.config import auto_precision

    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision={precision!r}: use auto, bf16 or fp32")
    if precision != "auto":
        return precision == "bf16"
    return not torch.cuda.is_available() and auto_precision() == "bf16"


@contextmanager
def shared_encoder_prefix(model, layers: int | None = None, *, memo=None):
    """How the report decodes ``model`` within the block: on the CPU with the encoder prefix that
    the models share computed once per clip (:func:`flamenco_lib.prefix_cache.shared_prefix`,
    ``layers`` layers, default :data:`~flamenco_lib.prefix_cache.SHARED_LAYERS`) and, given a
    :class:`~flamenco_lib.prefix_cache.EncoderMemo`, whole encoder outputs kept from earlier rows
    (:func:`~flamenco_lib.prefix_cache.remembered_encoder`); elsewhere as usual."""
    from contextlib import nullcontext

    from .prefix_cache import SHARED_LAYERS, remembered_encoder, shared_prefix

    on_cpu = getattr(getattr(model, "device", None), "type", None) == "cpu"
    k = (SHARED_LAYERS if layers is None else layers) if on_cpu else 0
    remember = remembered_encoder(model, memo) if on_cpu and memo is not None else nullcontext()
    with shared_prefix(model, k), remember:
        yield


def _rescore(run: Path) -> None:
    """Score ``run`` again from its predictions (:func:`flamenco_lib.evaluation.rescore`); a run
    without usable predictions keeps its metrics, with a message."""
    from .evaluation import rescore

    try:
        rescore(run)
        logger.info("results: %s scored again from its predictions (accent rule)", run.name)
    except (OSError, KeyError, ValueError) as err:
        logger.info("results: %s not scored again (%s)", run.name, err)


def _predictions(run: Path) -> list[dict] | None:
    """``{"id", "hypothesis"}`` of each row of ``run``'s ``predictions.jsonl`` (None without one)."""
    path = run / "predictions.jsonl"
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    return [{"id": r["id"], "hypothesis": r["hypothesis"]} for r in records]


def _unprompted_twin(
    stages, label: str, model: str, key: str, opts: dict, root: Path | None = None
) -> Path | None:
    """The run folder of the row before ``label`` in ``stages`` with the same model and no prompts
    (already evaluated on ``key`` by this call), or None."""
    for other, other_model, *o in stages:
        if other == label:
            return None
        o = o[0] if o else {}
        if other_model == model and not o.get("prompts") and key in o.get("sets", (key,)):
            run = run_dir(other, key, root=root)
            return run if (run / "metrics.json").exists() else None
    return None


def _copy_run(src: Path, dest: Path, label: str, *, prompt_kinds) -> None:
    """``src``'s predictions and metrics as the run of row ``label`` (``same_as`` names the source);
    ``prompt_kinds`` and ``decoding.prompts`` say what row ``label`` asked for, like a run decoded
    for it would."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "predictions.jsonl", dest / "predictions.jsonl")
    m = json.loads((src / "metrics.json").read_text(encoding="utf-8"))
    m.update(row=label, same_as=src.name)
    m["prompt_kinds"] = list(prompt_kinds)
    m["decoding"] = {**m.get("decoding", {}), "prompts": bool(prompt_kinds)}
    tmp = dest / "metrics.json.tmp"
    tmp.write_text(json.dumps(m, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(dest / "metrics.json")


def results_table(stages=STAGES, test_sets=TEST_SETS, *, root: Path | None = None) -> pd.DataFrame:
    """One row per model with results: WER/CER and 95% CIs (percent) per test set, plus the WER
    against the written lyric on the cante set. Reads ``metrics.json`` files only."""
    rows = []
    for label, *_ in stages:
        row = {"model": label}
        for key, _, _ in test_sets:
            f = run_dir(label, key, root=root) / "metrics.json"
            if not f.exists():
                continue
            m = json.loads(f.read_text(encoding="utf-8"))
            row[f"{key}_wer"] = 100 * m["wer"]
            row[f"{key}_wer_lo"], row[f"{key}_wer_hi"] = (100 * x for x in m["wer_ci"])
            row[f"{key}_cer"] = 100 * m["cer"]
            row[f"{key}_n"] = m["n_utterances"]
            if key == "cante":
                row["cante_wer_written"] = 100 * m["canonical"]["wer"]
                for g in m.get("per_group", []):
                    if g["field"] == "voice_heldout":
                        name = "heldout_voice" if str(g["group"]) == "True" else "seen_voice"
                        row[f"cante_wer_{name}"] = 100 * g["wer"]
        if len(row) > 1:
            rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """The table as Markdown, WERs as ``value [lo, hi]``."""
    if table.empty:
        return "(no results yet: python -m flamenco_lib results --evaluate)"
    out = pd.DataFrame({"model": table["model"]})
    for key, _, _ in TEST_SETS:
        if f"{key}_wer" in table:
            out[f"{key} WER % [95% CI]"] = [
                "" if pd.isna(w) else f"{w:.1f} [{lo:.1f}, {hi:.1f}]"
                for w, lo, hi in zip(
                    table[f"{key}_wer"], table[f"{key}_wer_lo"], table[f"{key}_wer_hi"]
                )
            ]
            out[f"{key} CER %"] = table[f"{key}_cer"].map(
                lambda x: "" if pd.isna(x) else f"{x:.1f}"
            )
    for col, name in (
        ("cante_wer_heldout_voice", "cante WER, held-out voice"),
        ("cante_wer_seen_voice", "cante WER, seen voices"),
    ):
        if col in table:
            out[name] = table[col].map(lambda x: "" if pd.isna(x) else f"{x:.1f}")
    return to_markdown(out)


def to_markdown(df: pd.DataFrame) -> str:
    """A DataFrame as a GitHub Markdown table (no extra dependency); a missing value is an empty
    cell, not ``nan``."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += [
        "| "
        + " | ".join("" if v is None or (isinstance(v, float) and v != v) else str(v) for v in row)
        + " |"
        for row in df.itertuples(index=False)
    ]
    return "\n".join(lines)
