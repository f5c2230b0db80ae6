#!/usr/bin/env bash
# gpu-check.sh: what a lent GPU machine is asked, in one run that fits one short lease.
#
#   0. the synthetic cohort rendered on the GPU: speed, and its difference from the CPU's rendering
#      (benchmarks/cohort_speed.py --device cuda);
#   1. the training throughput on CUDA (benchmarks/train_speed.py --cuda-only --concurrent --stacked 2 4: eager,
#      compiled, graphed, stacked);
#   2. `gpu-quick`: chapters 01, 02 and 07 on params/gpu_quick.yaml (the gpu network, a small cohort), timed
#      chapter by chapter from an empty store (benchmarks/chapter_times.py);
#   3. every chapter of the smoke profile on the GPU, several at once, to find what breaks on the CUDA path
#      (smoke numbers mean nothing; only whether each chapter runs).
#
# Usage, from the repo root on the GPU machine, with the wheels of ../shared/tools/gpu-wheels.sh in .whl:
#     bash scripts/gpu-check.sh [SECONDS]      # SECONDS: the whole run's budget (default 420)
# Everything it measures lands in $OUT (default /tmp/gpu-check): gpu.txt, cohort_speed.txt, train_speed.txt, chapter_times.csv,
# chapters.log, smoke.log and the executed notebooks of any chapter that failed (failed.tgz).
set -u -o pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
BUDGET=${1:-420}
T0=$SECONDS
left() { echo $((BUDGET - (SECONDS - T0))); }

if [ -d .whl ] && [ -z "${SKIP_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src PYTHONUNBUFFERED=1 MPLBACKEND=Agg
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  nproc
  python3 -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$OUT/gpu.txt"

echo "== 0. the cohort rendered on the GPU ($(left) s left)"
timeout 45 python3 benchmarks/cohort_speed.py params/gpu.yaml 512 --device cuda 2>&1 | tee "$OUT/cohort_speed.txt"

echo "== 1. training throughput ($(left) s left)"
timeout 170 python3 benchmarks/train_speed.py --cuda-only --concurrent --stacked 2 4 2>&1 | tee "$OUT/train_speed.txt"

echo "== 2. gpu-quick: chapters 01 02 07 on params/gpu_quick.yaml ($(left) s left)"
timeout 120 python3 benchmarks/chapter_times.py params/gpu_quick.yaml --only 01 02 07 --passes empty \
  --store /tmp/store-quick --executed /tmp/executed-quick --out "$OUT/chapter_times.csv" 2>&1 | tee "$OUT/chapters.log"

echo "== 3. every chapter on the smoke profile, four at a time ($(left) s left)"
export CMRLIB_DATA=/tmp/store-smoke/data CMRLIB_RUNS=/tmp/store-smoke/runs OMP_NUM_THREADS=3
mkdir -p /tmp/executed-smoke
end=$(( $(date +%s) + $(left) - 15 ))     # every chapter ends by then, however late xargs starts it
python3 -c "from cmrlib.book.build import toc_notebooks; from pathlib import Path; print('\n'.join(toc_notebooks(Path('.'))))" \
  | grep -v 18_claims \
  | xargs -P 4 -I{} bash -c 't0=$SECONDS; n=$(basename {}); t=$(( '"$end"' - $(date +%s) )); if [ $t -lt 10 ]; then echo "$n not started"; exit 0; fi; timeout $t python3 -m papermill -k python3 --no-progress-bar {}.ipynb /tmp/executed-smoke/$n.ipynb -p PARAMS params/smoke.yaml >/tmp/executed-smoke/$n.log 2>&1; rc=$?; echo "$n rc $rc $((SECONDS - t0)) s"' \
  2>&1 | tee "$OUT/smoke.log"
grep -h -B2 -A12 "Error\|Traceback" /tmp/executed-smoke/*.log | head -c 200000 > "$OUT/smoke_errors.txt"
failed=$(awk '$2 == "rc" && $3 != 0 {print "executed-smoke/" $1 ".ipynb"}' "$OUT/smoke.log")
[ -n "$failed" ] && tar czf "$OUT/failed.tgz" -C /tmp $failed 2>/dev/null
echo "== done in $((SECONDS - T0)) s"
