"""Benchmark: the prompt grid of notebook 09 with and without the memo of encoder outputs.

The rows of :data:`flamenco_lib.grid.PROMPT_GRID` (stage 2, then stage 3 decoded eight ways: with no
prompt, the palo, the lexicon, the line before, the catalogue's copla in and out, a mismatched
copla; the soft-prompt row where ``stage3_soft`` is trained) on the first ``--verses`` lines of the
test songs, through :func:`flamenco_lib.results.evaluate_stages` as the notebook calls it:

- ``no memo``: every row computes its encoder outputs (``memo_bytes=0``: the evaluation before);
- ``memo``: rows with the same encoder weights compute each clip's encoder output once
  (:class:`flamenco_lib.prefix_cache.EncoderMemo`).

Each variant runs in its own process, into its own results folder, one after the other; the
shared encoder prefix (:mod:`flamenco_lib.prefix_cache`) is filled beforehand (untimed), as the
report's first model fills it for the others. Prints the wall time of the grid, the speed-up, the
peak resident memory, the clips whose encoder output was reused, and whether the two variants
wrote the same transcripts (they must: a clip's encoder output does not depend on its batch).

Run (after the cpu stages are trained): ``.venv/bin/python benchmarks/prompt_grid.py
[--verses 48] [--profile cpu]``. About 10 minutes on 2 cores with 48 verses.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {"no memo": 0, "memo": 2 * 2**30}


def one(variant: str, verses: int, profile: str, root: Path) -> dict:
    """Run the grid in this process; returns its measures."""
    from flamenco_lib import grid, results

    rows = grid.stage_rows(profile=profile, table=grid.PROMPT_GRID)
    hits = []

    class Count(logging.Handler):  # evaluate_stages logs the clips it reused
        def emit(self, record):
            if "encoder outputs reused" in record.getMessage():
                hits.append(record.args[0])

    logging.getLogger("flamenco_lib.results").addHandler(Count())
    logging.getLogger("flamenco_lib.results").setLevel(logging.INFO)
    t0 = time.perf_counter()
    done = results.evaluate_stages(
        rows, grid.VERSES, max_items=verses, root=root, progress=False, memo_bytes=VARIANTS[variant]
    )
    wall = time.perf_counter() - t0
    preds = {}
    for run in done:
        p = run / "predictions.jsonl"
        if p.exists():
            preds[run.name] = [json.loads(line)["hypothesis"] for line in p.open()]
    return {
        "variant": variant,
        "rows": len(done),
        "wall_s": round(wall, 1),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "reused": sum(hits),
        "predictions": preds,
    }


def fill_prefix(verses: int) -> None:
    """Compute the shared encoder prefix of the verses (untimed), as the report's first model does."""
    import torch

    from flamenco_lib import grid
    from flamenco_lib.audio import load_audio
    from flamenco_lib.data.manifest import read_manifest
    from flamenco_lib.models import load_whisper
    from flamenco_lib.paths import data_dir
    from flamenco_lib.results import decode_in_bf16, shared_encoder_prefix
    from flamenco_lib.transcription import _autocast

    _, manifest, split = grid.VERSES[0]
    man = data_dir() / manifest
    rows = [r for r in read_manifest(man) if r["split"] == split][:verses]
    model, processor = load_whisper("base")
    audios = [
        load_audio(man.parent / r["audio"], start=r.get("start"), end=r.get("end")) for r in rows
    ]
    feats = processor.feature_extractor(audios, sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode(), shared_encoder_prefix(model):
        with _autocast(model.device, decode_in_bf16("auto")):
            for b in range(0, len(rows), 8):
                model.model.encoder(feats.input_features[b : b + 8])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--verses", type=int, default=48)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one variant, print JSON
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.verses, args.profile, Path(args.root))))
        return
    fill_prefix(args.verses)
    measured = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            cmd = [sys.executable, __file__, "--one", variant, "--verses", str(args.verses)]
            cmd += ["--profile", args.profile, "--root", str(Path(tmp) / variant)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            measured.append(json.loads(out.strip().splitlines()[-1]))
            m = measured[-1]
            print(
                f"{variant}: {m['rows']} runs in {m['wall_s']} s, peak {m['peak_mb']} MB, "
                f"{m['reused']} encoder outputs reused",
                flush=True,
            )
    if len(measured) == 2:
        a, b = measured
        same = a["predictions"] == b["predictions"]
        print(f"speed-up {a['wall_s'] / b['wall_s']:.2f}x; the same transcripts: {same}")


if __name__ == "__main__":
    main()
