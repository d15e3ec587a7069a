#!/usr/bin/env bash
# `bash bench/issue19-rows.sh [OUTDIR]` (default /tmp/issue19-rows), after `npm run build`, with nothing else of
# ours running: issue 19's rows as docs/performance.md reports them, about 17 minutes on 2 vCPUs. For each of cnn,
# conv, softmax, "mlp forward" and layer_norm, `bench/run.js --systems kiln,tfjs,ort --runs 3` and `bench/ranges.js`
# (OUTDIR/PREFIX.md); softmax again with glibc's malloc thresholds raised (softmax-malloc.md: fresh 1 MB results
# then reuse the heap instead of faulting in new pages); `bench/threads.js` paired (threads-paired.md) and one
# process per configuration (threads.md), with and without a busy loop. OUTDIR/start, loads and end: times and
# load averages.
set -u
cd "$(dirname "$0")/.."
out=${1:-/tmp/issue19-rows}
mkdir -p "$out"
{ date -u; cat /proc/loadavg; } > "$out/start"
for P in cnn conv softmax "mlp forward" layer_norm; do
  f=$(echo "$P" | tr ' ' _)
  node bench/run.js --only "$P" --systems kiln,tfjs,ort --runs 3 --json "$out/$f.json" > "$out/$f.log" 2>&1
  node bench/ranges.js "$out/$f.json" > "$out/$f.md" 2>&1
  cat /proc/loadavg >> "$out/loads"
done
MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=1073741824 node bench/run.js --only softmax --systems kiln,tfjs,ort --runs 3 --json "$out/softmax-malloc.json" > "$out/softmax-malloc.log" 2>&1
node bench/ranges.js "$out/softmax-malloc.json" > "$out/softmax-malloc.md" 2>&1
node bench/threads.js --paired 20 --rounds 3 --simd both --modes free,busy > "$out/threads-paired.md" 2>&1
node bench/threads.js --rounds 3 --simd both --modes free,busy > "$out/threads.md" 2>&1
{ date -u; cat /proc/loadavg; } > "$out/end"
