#!/usr/bin/env bash
# `make demo`, in three parts (about 8 minutes on 2 vCPUs after setup):
#  1. the emulator: the three shipped designs on mixed inference traffic, three repeats each (so the
#     report can say which differences are larger than the run-to-run spread)    -> OUT/report.html
#  2. the packet simulator: the same three designs at real 400G rates on a 50 ms slice of the same
#     workload (deterministic: one run each)                                       -> OUT/sim/report.html
#  3. the simulator at production size: topologies/production-1024-h100.yaml carrying one MoE
#     decode step of DeepSeek-V3 over 256 expert-parallel ranks                    -> OUT/production
# Re-runnable: the previous runs are removed first (the report files are overwritten).
#   usage: scripts/demo.sh [OUT]      (default OUT: demo)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-demo}"
FABRIC=".venv/bin/fabric"
if [ ! -x "$FABRIC" ]; then
    echo "error: $FABRIC not found; run 'sudo make setup' first" >&2
    exit 1
fi
DESIGNS=(topologies/leaf-spine-ecmp.yaml topologies/leaf-spine-spray.yaml topologies/scheduled-fabric.yaml)
rm -rf -- "$OUT/runs" "$OUT/sim/runs" "$OUT/production"
start=$(date +%s)
status=0
echo "== 1/3 emulator: ${#DESIGNS[@]} designs x ${REPEAT:-3} repeats, mixed inference (rates scaled by k)"
"$FABRIC" compare "${DESIGNS[@]}" --traffic traffic/mixed-inference.yaml --out "$OUT" \
    --repeat "${REPEAT:-3}" || status=$?
echo "== 2/3 packet simulator: the same designs at real rates, mixed inference 1.4 s + 50 ms"
"$FABRIC" compare "${DESIGNS[@]}" --traffic traffic/mixed-inference.yaml --engine sim --window 1.4s:50ms \
    --out "$OUT/sim" || status=$?
echo "== 3/3 packet simulator at production size: 1,024 x H100, one DeepSeek-V3 MoE decode step (EP 256)"
"$FABRIC" run --engine sim --topo topologies/production-1024-h100.yaml \
    --traffic traffic/production/moe-deepseek-v3-decode-ep256.yaml --out "$OUT/production" || status=$?
echo "demo: $(( $(date +%s) - start )) s"
echo "  emulator:   $(realpath "$OUT")/report.html (Markdown: $OUT/report.md, data: $OUT/summary.json)"
echo "  simulator:  $(realpath "$OUT")/sim/report.html"
echo "  production: fabric analyze $OUT/production; fabric cpmt $OUT/production --explain"
exit "$status"
