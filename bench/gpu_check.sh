#!/usr/bin/env bash
# GPU verification, one pass: install the pinned GPU set, run the GPU-marked tests, then the training benchmark.
#
#   bash bench/gpu_check.sh [LOG_DIR] [BUDGET_S]     # from the repository root, on a CUDA machine
#
# BUDGET_S (default 3600) bounds the whole check: the tests get at most a third of it, each backend of the
# generation benchmark (vLLM, when installed, against hf) a tenth, and the training benchmark starts no
# configuration it cannot finish in what is left (skipped ones are listed as such).
#
# Online, it installs requirements-gpu.txt with pip. On a machine without internet, fill .whl/ first on one with
# internet (bash bench/offline_wheels.sh) and carry the repository over: the wheels are installed from there.
# Nothing is downloaded at run time: models are random-weight Qwen3 shapes built locally (rsft/toy.py).
# Writes LOG_DIR/{env.txt,gpu_tests.log,bench_eval_gpu.json,bench_train_gpu.md,bench_train_gpu.json,*.log}.
set -u
LOG=${1:-bench/logs}
BUDGET=${2:-3600}
mkdir -p "$LOG"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python3}

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/rsft-site .whl/*.whl \
    || { echo "installing .whl/ failed"; exit 1; }
  export PYTHONPATH=/tmp/rsft-site${PYTHONPATH:+:$PYTHONPATH}
else
  $PY -m pip install -q -r requirements-gpu.txt || { echo "pip install -r requirements-gpu.txt failed"; exit 1; }
fi

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY - <<'PYEOF'
import importlib, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "bf16", torch.cuda.is_bf16_supported())
for m in ("transformers", "peft", "accelerate", "trl", "bitsandbytes", "unsloth", "unsloth_zoo", "lm_eval", "vllm"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as e:
        print(m, "NOT IMPORTABLE:", type(e).__name__, str(e)[:300])
PYEOF
} 2>&1 | tee "$LOG/env.txt"

set -o pipefail
# Importing Unsloth patches transformers and peft for the whole process: the hf tests run first, in a process
# that never imports it, then the Unsloth ones in their own.
timeout $(( BUDGET / 6 )) $PY -m pytest -q -m gpu -k "not unsloth" -rs tests/ 2>&1 | tee "$LOG/gpu_tests.log"
hf_rc=$?
timeout $(( BUDGET / 6 )) $PY -m pytest -q -m gpu -k unsloth -rs tests/ 2>&1 | tee -a "$LOG/gpu_tests.log"
tests_rc=$(( hf_rc || $? ))
SIZE="--prompts 32 --max-new-tokens 2048"
[ "$BUDGET" -lt 1800 ] && SIZE="--prompts 8 --max-new-tokens 512"   # a short lease: a smaller generation run
$PY bench/bench_eval_gpu.py --out "$LOG" --timeout-s $(( BUDGET / 10 )) $SIZE 2>&1 | tee "$LOG/bench_eval.log"
eval_rc=$?
$PY bench/bench_train_gpu.py --out "$LOG" --deadline-s $(( BUDGET - SECONDS - 15 )) 2>&1 | tee "$LOG/bench.log"
bench_rc=$?
echo "gpu tests exit $tests_rc, generation benchmark exit $eval_rc, training benchmark exit $bench_rc; logs in $LOG"
exit $(( tests_rc || eval_rc || bench_rc ))
