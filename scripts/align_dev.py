"""How the voice detector's threshold moves the alignment of printed lyrics, on the dev songs:
:func:`flamenco_lib.song_eval.evaluate_alignment` (the notebook 11 measure: median start and end
error, share of starts within 0.5 s, lines found, repeats found twice) for each model and
threshold. The dev songs choose; the test songs (notebook 11) report.

``--without-onsets``: each model and threshold aligned a second time with every line's start
left where the decoded region begins (``align_lyrics(onset_pieces=None)``), against the default
that dates it by the detector on shorter pieces (``align.ONSET_PIECES``; README, "Onsets").

``--leads``: each alignment scored again with every line's start moved earlier by these seconds
(never before the end of the line before it, nor before 0; README, "Not a late detector"), after
the signed start errors (aligned - sung; positive: late), so that a detector that hears onsets
late would show as a bias.

Usage (after ``make report``; paths relative to the project):
    .venv/bin/python scripts/align_dev.py [--models base data/checkpoints/stage3/final]
        [--thresholds 0.35 0.2 0.1] [--songs data/corpora/songs] [--leads 0 0.1 0.2 0.3]
        [--without-onsets]
A minute or two per model and threshold on 2 cores (three dev songs).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from itertools import product

import numpy as np
import pandas as pd

from flamenco_lib.align import ONSET_PIECES, Aligned
from flamenco_lib.models import load_whisper
from flamenco_lib.paths import data_dir
from flamenco_lib.results import shared_encoder_prefix, to_markdown
from flamenco_lib.song_eval import (
    alignment_row,
    evaluate_alignment,
    read_songs,
    score_alignment,
)


def lead(aligned: list[Aligned], seconds: float) -> list[Aligned]:
    """Each start ``seconds`` earlier, never before the line before ends nor before 0, never later."""
    out, prev_end = [], 0.0
    for a in sorted(aligned, key=lambda a: a.start):
        out.append(replace(a, start=min(a.start, max(a.start - seconds, prev_end, 0.0))))
        prev_end = max(prev_end, a.end)
    return out


def leads_table(songs: dict, per_song: list[dict], leads: list[float]) -> list[dict]:
    """Median start error and share within 0.5 s with every start moved earlier by each lead."""
    rows = []
    for s in leads:
        scored = [
            score_alignment(songs[r["song"]], lead([Aligned(**a) for a in r["aligned"]], s))
            for r in per_song
        ]
        starts = [x for r in scored for x in r["start_errors"]]
        sung = sum(r["sung"] for r in scored)
        rows.append(
            {
                "lead (s)": s,
                "median start error (s)": float(np.median(starts)),
                "start within 0.5 s %": 100 * sum(x <= 0.5 for x in starts) / sung,
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["base", "checkpoints/stage3/final"])
    p.add_argument("--thresholds", nargs="+", type=float, default=[0.35, 0.2, 0.1])
    p.add_argument("--songs", default=str(data_dir() / "corpora" / "songs"))
    p.add_argument("--split", default="dev")
    p.add_argument("--leads", nargs="+", type=float, default=[])
    p.add_argument("--without-onsets", action="store_true")
    args = p.parse_args()
    songs = {s["song"]: s for s in read_songs(args.songs, args.split)}
    variants = [ONSET_PIECES] + ([None] if args.without_onsets else [])
    rows, leads = [], []
    for name in args.models:
        path = name if name == "base" else str(data_dir() / name)
        model, processor = load_whisper(path)
        with shared_encoder_prefix(model):
            for threshold, pieces in product(args.thresholds, variants):
                m = evaluate_alignment(
                    model,
                    processor,
                    args.songs,
                    split=args.split,
                    vad_threshold=threshold,
                    onset_pieces=pieces,
                )
                onsets = "/".join(f"{x:g}" for x in pieces) if pieces else "none"
                row = {"model": name, "threshold": threshold, "onset pieces": onsets}
                rows.append({**row, **alignment_row(m)})
                print(pd.DataFrame(rows[-1:]).round(2).to_string(index=False), flush=True)
                if not args.leads:
                    continue
                signed = np.array([x for r in m["per_song"] for x in r["start_offsets"]])
                q1, q3 = np.percentile(signed, [25, 75])
                print(
                    f"signed start errors (s): median {np.median(signed):+.2f}, quartiles "
                    f"{q1:+.2f} {q3:+.2f}; 0.5-1.0 s late: {((signed > 0.5) & (signed <= 1)).sum()}, "
                    f"early: {((signed < -0.5) & (signed >= -1)).sum()}"
                )
                for r in leads_table(songs, m["per_song"], args.leads):
                    leads.append({**row, **r})
    print(to_markdown(pd.DataFrame(rows).round(2)))
    if leads:
        print(to_markdown(pd.DataFrame(leads).round(2)))


if __name__ == "__main__":
    main()
