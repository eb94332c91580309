"""How the voice detector's threshold moves the alignment of printed lyrics, on the dev songs:
:func:`flamenco_lib.song_eval.evaluate_alignment` (the notebook 11 measure: median start and end
error, share of starts within 0.5 s, lines found, repeats found twice) for each model and
threshold. The dev songs choose; the test songs (notebook 11) report.

Usage (after ``make report``; paths relative to the project):
    .venv/bin/python scripts/align_dev.py [--models base data/checkpoints/stage3/final]
        [--thresholds 0.35 0.2 0.1] [--songs data/corpora/songs]
A minute or two per model and threshold on 2 cores (three dev songs).
"""

from __future__ import annotations

import argparse

import pandas as pd

from flamenco_lib.models import load_whisper
from flamenco_lib.paths import data_dir
from flamenco_lib.results import shared_encoder_prefix, to_markdown
from flamenco_lib.song_eval import alignment_row, evaluate_alignment


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["base", "checkpoints/stage3/final"])
    p.add_argument("--thresholds", nargs="+", type=float, default=[0.35, 0.2, 0.1])
    p.add_argument("--songs", default=str(data_dir() / "corpora" / "songs"))
    p.add_argument("--split", default="dev")
    args = p.parse_args()
    rows = []
    for name in args.models:
        path = name if name == "base" else str(data_dir() / name)
        model, processor = load_whisper(path)
        with shared_encoder_prefix(model):
            for threshold in args.thresholds:
                m = evaluate_alignment(
                    model, processor, args.songs, split=args.split, vad_threshold=threshold
                )
                rows.append({"model": name, "threshold": threshold, **alignment_row(m)})
                print(pd.DataFrame(rows[-1:]).round(2).to_string(index=False), flush=True)
    print(to_markdown(pd.DataFrame(rows).round(2)))


if __name__ == "__main__":
    main()
