"""Which search finds the sung copla in the lyrics catalogue, on the dev sets: the first pass of
the catalogue prompt (a model's unprompted transcripts, :func:`flamenco_lib.evaluation.catalogue_pass`)
searched with rapidfuzz scorers and with BM25, top-1 and top-5 accuracy per scorer. Two dev sets:
the verses of the dev songs (one sung line per query) and the cante dev clips (a whole copla per
query). The dev sets choose; notebook 09's prompt grid reports on the test verses.

Usage (after ``make report``; paths relative to the data folder):
    .venv/bin/python scripts/catalogue_dev.py [--model checkpoints/stage3/final]
About a minute and a half on 2 idle cores (71 verses, 129 clips).
"""

from __future__ import annotations

import argparse
import tempfile

import pandas as pd
from rapidfuzz import fuzz, process

from flamenco_lib.catalogue import Catalogue
from flamenco_lib.data.corpus import load_corpus
from flamenco_lib.data.lyrics import default_lyrics, read_lyrics
from flamenco_lib.evaluation import catalogue_pass
from flamenco_lib.models import load_whisper
from flamenco_lib.paths import data_dir
from flamenco_lib.results import decode_in_bf16, to_markdown
from flamenco_lib.text import normalize_flamenco

SCORERS = ("token_set_ratio", "partial_ratio", "WRatio", "ratio")
DEV_SETS = {"verses (one line)": "songs", "cante clips (a copla)": "cante"}


def _norm(text: str) -> str:
    """The catalogue's normaliser: accents folded, quejíos and Andalusian spellings mapped."""
    return normalize_flamenco(text, keep_accents=False)


def accuracy(cat: Catalogue, queries: list[str], truth: list[str], search) -> tuple[float, float]:
    """Top-1 and top-5 accuracy (percent) of ``search(normalised query) -> ids, best first``."""
    hits = [search(_norm(q)) for q in queries]
    top1 = sum(h[:1] == [t] for h, t in zip(hits, truth, strict=True))
    top5 = sum(t in h[:5] for h, t in zip(hits, truth, strict=True))
    return 100 * top1 / len(truth), 100 * top5 / len(truth)


def searches(cat: Catalogue) -> dict:
    """The searches compared: rapidfuzz's scorers over the normalised coplas, and BM25."""

    def rapidfuzz(scorer):
        texts = [_norm(t) for t in cat.texts]
        return lambda q: [
            cat.ids[i] for _, _, i in process.extract(q, texts, scorer=scorer, limit=5)
        ]

    out = {f"rapidfuzz {s}": rapidfuzz(getattr(fuzz, s)) for s in SCORERS}
    out["BM25, character 4-grams"] = lambda q: [i for i, _ in cat.search(q, k=5, method="bm25")]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="checkpoints/stage3/final")
    args = p.parse_args()
    model, processor = load_whisper(str(data_dir() / args.model))
    cat = Catalogue.from_coplas(read_lyrics(default_lyrics()))
    rows = []
    for name, corpus in DEV_SETS.items():
        dev = load_corpus(data_dir() / "corpora" / corpus / "manifest.jsonl")["dev"]
        with tempfile.TemporaryDirectory() as out:
            catalogue_pass(
                model, processor, dev, out=out, progress=False, bf16=decode_in_bf16("auto")
            )
            first = pd.read_json(f"{out}/first_pass.jsonl", lines=True)
        queries, truth = list(first["hypothesis"]), list(first["copla_id"])
        print(f"{name}: {len(truth)} dev queries")
        for search, fn in searches(cat).items():
            top1, top5 = accuracy(cat, queries, truth, fn)
            rows.append({"dev set": name, "search": search, "top-1 %": top1, "top-5 %": top5})
    print(to_markdown(pd.DataFrame(rows).round(1)))


if __name__ == "__main__":
    main()
