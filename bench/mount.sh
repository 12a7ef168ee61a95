#!/usr/bin/env bash
# Reads through `zipllm mount` next to `zipllm restore` of the same models and `cat` of their original files, on one
# machine in one run (needs root and /dev/fuse, fusermount3, python3):
#
#   bench/mount.sh CONFIG [--threads N] [--cache-mb N] [--models org/a org/b ...] [--samples N] [--out DIR] [--cli PATH]
#
# --cli runs another build of zipllm (a native executable: an earlier build kept for a before/after) instead of ./zipllm.
# CONFIG is a config whose store holds the models (compressed beforehand): for the synthetic family,
# `mkdir -p /tmp/mountbench && cp config.json test_models.txt /tmp/mountbench/ && ./setup_test_models.sh
# /tmp/mountbench/config.json --synthetic && ./zipllm compress /tmp/mountbench/config.json`. Measured, per model
# (default: synthetic/llama-base synthetic/llama-full-ft), at --threads (default 2):
#   cat original   every file of the original folder, page cache warm (read once before)
#   restore        ./zipllm restore into a fresh folder (its own verification included)
#   mount cold     cat of every file through a fresh mount (nothing decoded yet, nothing in the kernel's cache)
#   mount warm     the same again (the kernel's page cache)
#   mmap cold      the model's largest file through a fresh mount, mmap'd and read once page by page
# and, on the first model's largest file, random 4 KiB preads (--samples of them, default 2000): latency p50/p99 on a
# fresh mount (cold), then the same offsets again (warm). Prints a table and writes DIR/mount.csv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { echo "usage: $0 CONFIG [--threads N] [--cache-mb N] [--models org/a ...] [--samples N] [--out DIR] [--cli PATH]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
config="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shift
threads=2
cache_mb=256
samples=2000
models=(synthetic/llama-base synthetic/llama-full-ft)
out=$PWD
cli="$root/zipllm"
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=${2:?}; shift 2 ;;
    --cache-mb) cache_mb=${2:?}; shift 2 ;;
    --samples) samples=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --cli) cli=$(realpath "${2:?}"); shift 2 ;;
    --models) shift; models=(); while [[ $# -gt 0 && $1 != --* ]]; do models+=("$1"); shift; done ;;
    *) usage ;;
  esac
done
[[ $EUID -eq 0 && -e /dev/fuse ]] || { echo "$0: needs root and /dev/fuse (zipllm mount uses mount(2))" >&2; exit 1; }

field() { grep -o "\"$1\": *\"[^\"]*\"" "$config" | sed 's/.*: *"\(.*\)"/\1/'; }
resolve() { [[ $1 == /* ]] && echo "$1" || echo "$(dirname "$config")/$1"; }
model_dir=$(resolve "$(field model_dir)")

"$cli" --version >/dev/null # ./zipllm builds itself (native where it can)
work=$(mktemp -d)
mnt="$work/mnt"
mkdir "$mnt"
pid=
unmount() {
  if [[ -n $pid ]]; then
    fusermount3 -u "$mnt" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
trap 'unmount; rm -rf "$work"' EXIT
# A fresh mount: nothing decoded, and nothing of it in the kernel's page cache.
mount_fresh() {
  unmount
  rm -f "$work/mount.log"
  "$cli" mount "$config" "$mnt" --threads "$threads" --cache-mb "$cache_mb" 2>"$work/mount.log" &
  pid=$!
  for _ in $(seq 600); do grep -qs "Mounted " "$work/mount.log" && return; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  cat "$work/mount.log" >&2
  exit 1
}

now() { date +%s.%N; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
timed() { local t0; t0=$(now); "$@" >/dev/null; seconds "$t0" "$(now)"; }
cat_all() { find "$1" -type f -print0 | sort -z | xargs -0 cat >/dev/null; }

csv="$out/mount.csv"
echo "model,measure,bytes,seconds,mb_per_s" >"$csv"
row() { # model measure bytes seconds
  echo "$1,$2,$3,$4,$(rate "$3" "$4")" >>"$csv"
  printf '%-28s %-14s %10.1f MB %8.3f s %8s MB/s\n' "$1" "$2" "$(awk -v b="$3" 'BEGIN { print b / 1e6 }')" "$4" "$(rate "$3" "$4")"
}

echo "store of $config; --threads $threads --cache-mb $cache_mb" >&2
for model in "${models[@]}"; do
  original="$model_dir/${model/\//_}"
  [[ -d $original ]] || { echo "no folder $original for $model" >&2; exit 1; }
  bytes=$(find "$original" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  cat_all "$original"
  row "$model" "cat original" "$bytes" "$(timed cat_all "$original")"
  row "$model" "restore" "$bytes" "$(timed "$cli" restore "$config" "$model" "$work/restored" --threads "$threads" -q)"
  rm -rf "$work/restored"
  mount_fresh
  row "$model" "mount cold" "$bytes" "$(timed cat_all "$mnt/$model")"
  row "$model" "mount warm" "$bytes" "$(timed cat_all "$mnt/$model")"
  largest=$(find "$original" -type f -printf '%s %P\n' | sort -n | tail -1 | cut -d' ' -f2-)
  mount_fresh
  size=$(stat -c %s "$original/$largest")
  row "$model" "mmap cold" "$size" "$(timed python3 -c '
import mmap, sys
with open(sys.argv[1], "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    total = 0
    for page in range(0, len(m), 4096):
        total += m[page]
' "$mnt/$model/$largest")"
done

# Random 4 KiB preads of the first model's largest file: cold (fresh mount), then warm (the same offsets again).
model=${models[0]}
original="$model_dir/${model/\//_}"
largest=$(find "$original" -type f -printf '%s %P\n' | sort -n | tail -1 | cut -d' ' -f2-)
mount_fresh
python3 - "$mnt/$model/$largest" "$original/$largest" "$samples" <<'PY' | tee -a "$out/mount.csv"
import os, random, sys, time
mounted, original, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = os.path.getsize(original)
rng = random.Random(1)
offsets = [rng.randrange(0, max(1, size - 4096)) // 4096 * 4096 for _ in range(samples)]
expected = open(original, 'rb')
fd = os.open(mounted, os.O_RDONLY)
for label in ('cold', 'warm'):
    times = []
    for offset in offsets:
        t0 = time.perf_counter_ns()
        data = os.pread(fd, 4096, offset)
        times.append(time.perf_counter_ns() - t0)
        expected.seek(offset)
        assert data == expected.read(4096), offset
    times.sort()
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))] / 1000
    print(f"pread 4KiB {label},p50_us={p(0.5):.0f},p99_us={p(0.99):.0f},samples={len(times)}")
PY
unmount
echo "wrote $csv" >&2
