#!/usr/bin/env bash
# Calibration of the synthetic cante corpus: zero-shot whisper-base WER on the same test clips
# spoken vs sung a cappella vs sung with guitar, palmas and reverb. The three styles share clip ids,
# seeds, voices and sung text, so only the singing and the accompaniment differ.
# Usage: bash scripts/calibrate_synth.sh [N_TEST_CLIPS]   (default 100, as in the results table)
# Corpora already built are kept, evaluations newer than their corpus are reused (about 15 min
# on 2 cores when nothing exists yet).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
N=${1:-100}
$PY -m flamenco_lib data synth --out data/corpora/cante-spoken --style spoken
$PY -m flamenco_lib data synth --out data/corpora/cante-acapella --style a-capella --splits test
$PY -m flamenco_lib data synth --out data/corpora/cante
$PY - "$N" <<'PY'
import sys
from flamenco_lib import results

sets = (("cante_spoken", "corpora/cante-spoken/manifest.jsonl", "test"),
        ("cante_acapella", "corpora/cante-acapella/manifest.jsonl", "test"),
        ("cante", "corpora/cante/manifest.jsonl", "test"))
results.evaluate_stages((("zero-shot", "base"),), sets, max_items=int(sys.argv[1]))
table = results.results_table((("zero-shot", "base"),), sets)
print("| style | zero-shot WER % [95% CI] | CER % | clips |\n|---|---|---|---|")
for key, name in (("cante_spoken", "spoken"), ("cante_acapella", "sung a cappella"), ("cante", "sung + guitar, palmas, reverb")):
    r = table.iloc[0]
    print(f"| {name} | {r[key + '_wer']:.1f} [{r[key + '_wer_lo']:.1f}, {r[key + '_wer_hi']:.1f}] | {r[key + '_cer']:.1f} | {r[key + '_n']} |")
PY
