#!/usr/bin/env bash
# The README's main command, phase by phase, with wall and CPU times: train recipes/quickstart.yaml, evaluate the
# base and every checkpoint, write the report. Appends one JSON line per phase to bench/results/quickstart.jsonl and
# prints the scores. Run it on an otherwise idle machine (the load average, the CPU's model and its AMX/AVX512-BF16
# flags are recorded with each phase).
#   bash bench/bench_quickstart.sh [RECIPE]        # default recipes/quickstart.yaml; e.g. recipes/quickstart-long.yaml
#   RSFT_CPU_FLOAT32=1 bash bench/bench_quickstart.sh   # float32 throughout: the time of a CPU without AMX or
#                                                       # AVX512-BF16 (most laptops), measured on this one
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPE=${1:-recipes/quickstart.yaml}
NAME=$(basename "$RECIPE" .yaml)
RUN=runs/bench-$NAME
OUT=bench/results/quickstart.jsonl
rm -rf "$RUN" "reports/bench-$NAME"
mkdir -p bench/results

# The CPU class decides the times: AMX, AVX512-BF16 or neither change them 2-3x (README, "How long it takes").
CPU_MODEL=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
PRECISION=$([ "${RSFT_CPU_FLOAT32:-}" = 1 ] && echo "float32 (RSFT_CPU_FLOAT32=1)" || echo auto)
CPU_FLAGS=$(grep -o -w 'amx_bf16\|avx512_bf16\|avx512f\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//')
echo "CPU: $CPU_MODEL; flags: ${CPU_FLAGS:-none of amx_bf16, avx512_bf16, avx512f, avx2}; $(nproc) cores; precision $PRECISION"

phase() {  # phase NAME COMMAND...: run it, record its wall and CPU seconds (children included) and the load before
  local name=$1; shift
  local load wall user sys
  load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f "%e %U %S" -o /tmp/bench_quickstart_time "$@"
  read -r wall user sys < /tmp/bench_quickstart_time
  printf '{"recipe": "%s", "phase": "%s", "wall_s": %s, "cpu_s": %.1f, "load_before": %s, "cores": %s, "cpu": "%s", "flags": "%s", "precision": "%s", "date": "%s"}\n' \
    "$RECIPE" "$name" "$wall" "$(echo "$user + $sys" | bc)" "$load" "$(nproc)" "$CPU_MODEL" "$CPU_FLAGS" "$PRECISION" \
    "$(date -u +%FT%TZ)" | tee -a "$OUT"
}

phase train python train.py "$RECIPE" "train.output_dir=$RUN"
phase evaluate python evaluate.py "$RUN"
phase report python report.py "$RUN" --out "reports/bench-$NAME"
python - "$RUN" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
for f in sorted(run.glob("eval/*/step*/*.json")):
    r = json.loads(f.read_text())
    if "value" in r and r.get("value") is not None:
        print(f"{f.parent.name} {r['task']:<18} {100 * r['value']:5.1f}%  n={r['n']}  mean tokens {r['mean_response_tokens']}")
m = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
print(f"training: {m[-1]['step']} steps, {m[-1]['tokens_seen']:,} tokens, {m[-1]['elapsed_s']:.0f} s in the loop, "
      f"{m[-1]['tokens_seen'] / m[-1]['elapsed_s']:.0f} tokens/s, final loss {m[-1]['loss']:.3f}")
PY
