#!/usr/bin/env bash
# Same seed, same numbers: run the whole report twice from empty data folders and compare the
# tables (report/tables/*.csv, *.md) of the two runs byte for byte.
#
#   bash scripts/reproduce_twice.sh [PROFILE] [WORKDIR]
#
# PROFILE: smoke (default; about 6 min per run on 2 cores), cpu or gpu (hours on a CPU).
# WORKDIR: where the two runs live (default: a new temporary folder); run-1/ and run-2/ each
# hold a data/ and a report/ folder. Only this machine's whisper-base is shared (linked, not
# rebuilt). Exit status 0 when every table is identical, 1 otherwise (the differences printed).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-smoke}
WORKDIR=${2:-$(mktemp -d -t cante-reproduce-XXXX)}
PY=${PY:-.venv/bin/python}
[[ -x $PY ]] || PY=python3

BASE=$("$PY" -c "from flamenco_lib import models; print(models.build_offline_base(verbose=False))")
for run in run-1 run-2; do
  mkdir -p "$WORKDIR/$run/data/models" "$WORKDIR/$run/report"
  ln -sfn "$BASE" "$WORKDIR/$run/data/models/$(basename "$BASE")"
  echo "reproduce: $run of the $PROFILE report in $WORKDIR/$run"
  start=$(date +%s)
  FLAMENCO_DATA="$WORKDIR/$run/data" FLAMENCO_REPORT="$WORKDIR/$run/report" \
    "$PY" -m flamenco_lib report --profile "$PROFILE"
  echo "reproduce: $run took $(( $(date +%s) - start )) s"
done

if [[ ! -f $WORKDIR/run-1/report/tables/results.csv ]]; then
  echo "reproduce: run-1 wrote no results table: nothing to compare" >&2
  exit 1
fi
tables=$(cd "$WORKDIR/run-1/report/tables" && ls)
echo "reproduce: comparing $(echo "$tables" | wc -w) tables: $(echo $tables)"
if diff -r "$WORKDIR/run-1/report/tables" "$WORKDIR/run-2/report/tables"; then
  echo "reproduce: identical tables in both runs"
else
  echo "reproduce: the tables differ (above)" >&2
  exit 1
fi
