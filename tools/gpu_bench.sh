# A device check: GPU training capacity (benchmarks/gpu.py) and TD search on CUDA,
# 12 processes sharing the card (16 hard problems each at budget 1,000).  Run by the device tool.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
python3 -c "import skia" 2>/dev/null || export LD_LIBRARY_PATH=$PWD/.devlib:$LD_LIBRARY_PATH
for p in paper cpu; do timeout 60 python3 benchmarks/gpu.py --preset $p --batch-size 256 --steps 40 | tee -a $OUT/gpu_capacity.jsonl; done
export OMP_NUM_THREADS=1; mkdir -p $OUT/s; T0=$(date +%s.%N)
for s in 0 1 2 3 4 5 6 7 8 9 10 11; do
  timeout 150 python3 -m tdlib.evaluation --method td-search --testset results/testsets/csg2d_hard.jsonl --budget 1000 --seed $s --limit 16 --device cuda -o $OUT/s/td_s$s.csv --no-progress > $OUT/s/log$s.txt 2>&1 &
done
wait
echo "12 parallel TD-search processes: $(python3 -c "print(round($(date +%s.%N)-$T0,1))") s wall"
python3 - <<'PY'
import pandas as pd, glob, os
fr = [pd.read_csv(f) for f in sorted(glob.glob(os.environ['OUT'] + '/s/td_s*.csv'))]
d = pd.concat(fr); print(len(fr), 'files', len(d), 'rows')
print('solved', int(d.solved.sum()), 'of', len(d), '; expansions', int(d.spent.sum()), '; per-process expansions/s', round(d.spent.sum() / d.seconds.sum(), 1))
PY
tar czf $OUT/search.tar.gz -C $OUT s && rm -r $OUT/s
