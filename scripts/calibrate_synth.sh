#!/usr/bin/env bash
# Calibration of the synthetic cante corpus: zero-shot whisper-base WER on the same test lyrics,
# spoken vs sung a cappella vs sung with guitar and palmas (one rendering per copla, n=336).
# The three styles share clip ids, seeds, voices and sung text, so only the singing and the
# accompaniment differ. Usage: bash scripts/calibrate_synth.sh [OUT_DIR]   (about 15 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-data/results/calibration}
for style in spoken a-capella sung; do
  "$PY" -m flamenco_lib data synth --out "$OUT/corpus-$style" --n 336 --seed 0 --style "$style"
done
for style in spoken a-capella sung; do
  "$PY" -m flamenco_lib evaluate --model base --manifest "$OUT/corpus-$style/manifest.jsonl" \
    --split test --out "$OUT/zero-shot-$style"
done
