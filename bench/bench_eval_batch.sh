#!/usr/bin/env bash
# The CPU generation batch: the embedded base model on the quickstart suite's first N questions of each task
# (the quickstart preset's sampling, seed and token cap), once per batch size, the same questions each time. Appends one
# JSON line per batch size (wall seconds of the whole evaluate.py call: load, generate, grade) to
# bench/results/eval_batch.jsonl. Run it on an otherwise idle machine; the load average is recorded.
#   bash bench/bench_eval_batch.sh [N] [BATCH ...]      # default: N=64, batches 8 32 64
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-64}; shift || true
BATCHES=${*:-8 32 64}
MODEL=$(python -c "from rsft.models import resolve_model_path; print(resolve_model_path('embedded:smollm2-135m-instruct'))")
OUT=bench/results/eval_batch.jsonl
mkdir -p bench/results
for b in $BATCHES; do
  dir=$(mktemp -d)
  load=$(cut -d' ' -f1 /proc/loadavg)
  start=$(date +%s.%N)
  python evaluate.py --model "$MODEL" --suite quickstart --preset quickstart --limit "$N" --batch-size "$b" --out "$dir" >/dev/null 2>&1
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  scores=$(python - "$dir" <<'PY'
import json, sys
from pathlib import Path
print(json.dumps({json.loads(f.read_text())["task"]: json.loads(f.read_text())["value"]
                  for f in sorted(Path(sys.argv[1]).rglob("*.json")) if "value" in json.loads(f.read_text())}))
PY
)
  printf '{"batch_size": %s, "questions_per_task": %s, "wall_s": %.1f, "load_before": %s, "cores": %s, "scores": %s, "date": "%s"}\n' \
    "$b" "$N" "$wall" "$load" "$(nproc)" "$scores" "$(date -u +%FT%TZ)" | tee -a "$OUT"
  rm -rf "$dir"
done
