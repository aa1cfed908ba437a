#!/usr/bin/env bash
# `make demo`: compare the three shipped fabric designs on mixed inference traffic, three repeats
# each (so the report can say which differences are larger than the run-to-run spread), write the
# report, print the verdict table and where the report is (about 2.5 minutes on 2 vCPUs). Re-runnable: the previous runs in
# OUT/runs are removed first (the report files are overwritten).
#   usage: scripts/demo.sh [OUT]      (default OUT: demo)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-demo}"
FABRIC=".venv/bin/fabric"
if [ ! -x "$FABRIC" ]; then
    echo "error: $FABRIC not found; run 'sudo make setup' first" >&2
    exit 1
fi
rm -rf -- "$OUT/runs"
start=$(date +%s)
status=0
"$FABRIC" compare topologies/leaf-spine-ecmp.yaml topologies/leaf-spine-spray.yaml \
    topologies/scheduled-fabric.yaml --traffic traffic/mixed-inference.yaml --out "$OUT" \
    --repeat "${REPEAT:-3}" || status=$?
echo "demo: $(( $(date +%s) - start )) s; open $(realpath "$OUT")/report.html (Markdown: $OUT/report.md, data: $OUT/summary.json)"
exit "$status"
