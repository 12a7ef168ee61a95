#!/usr/bin/env bash
# zipllm serve against zipllm restore, side by side in one run, on the synthetic family (generated offline):
#   1. a full GET of the base's largest shard (curl) vs 'zipllm restore' of the base, MB/s (median of --runs);
#   2. 8 parallel downloads of the largest shard of 8 models, aggregate MB/s, and the server's peak RSS;
#   3. 64 clients downloading at once: the server's peak RSS;
#   4. latency of 4 KiB range reads at random offsets of the base's largest shard, one connection (curl --next),
#      p50/p99: cold (a fresh server, each offset's first read) and warm (the same offsets again).
# With --mirror, instead: a second 'zipllm serve --upstream' over an empty store mirrors the first; every file of every
# model is downloaded through it with curl (a model stored before the next is asked for), then downloaded again. It
# prints the upstream requests of each pass (the first server's request lines) and the bytes the mirror stored against
# a plain-file mirror (the files' sizes) and against 'zipllm compress' of the same folders; writes DIR/mirror.csv.
# Usage: bench/serve.sh [--size tiny|small|default] [--runs N] [--threads N] [--reads N] [--out DIR] [--mirror]
# Needs curl; uses ./zipllm (the native build). Writes DIR/serve.csv and prints a table.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd -P)"
size=default runs=3 threads=2 reads=300 out="" mirror=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --reads) reads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --mirror) mirror=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
zipllm="$root/zipllm"
work=$(mktemp -d)
out="${out:-$work}"
mkdir -p "$out"
server_pid=""
stop_server() { if [[ -n "$server_pid" ]]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""; fi; }
mirror_pid=""
stop_mirror() { if [[ -n "$mirror_pid" ]]; then kill -TERM "$mirror_pid" 2>/dev/null || true; wait "$mirror_pid" 2>/dev/null || true; mirror_pid=""; fi; }
trap 'stop_mirror; stop_server; rm -rf "$work/models" "$work/store" "$work/restored" "$work/mirror-models" "$work/mirror-store"' EXIT

cd "$work"
printf '{"model_dir": "models", "storage_dir": "store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json", "threads": %s}\n' "$threads" >config.json
: >test_models.txt
"$zipllm" models setup config.json --synthetic --size "$size" -q >setup.log 2>&1 || { cat setup.log >&2; exit 1; }
"$zipllm" compress config.json -q 2>compress.log || { cat compress.log >&2; exit 1; }
base=synthetic/llama-base
base_dir=models/synthetic_llama-base
shard=$(cd "$base_dir" && ls -S *.safetensors | head -1)
shard_bytes=$(stat -c %s "$base_dir/$shard")
base_bytes=$(du -sb --apparent-size "$base_dir" | cut -f1)

# Waits for the "Listening on" line of a server's stderr file and prints its port.
port_of() {
  local p
  for _ in $(seq 1 600); do
    p=$(grep -o 'Listening on http://[0-9.]*:[0-9]*' "$1" | sed 's/.*://' || true)
    [[ -n "$p" ]] && { echo "$p"; return 0; }
    sleep 0.1
  done
  echo "zipllm serve did not start: $(cat "$1")" >&2
  return 1
}
start_server() {
  "$zipllm" serve config.json --port 0 --threads "$threads" -q 2>"$work/serve.err" &
  server_pid=$!
  port=$(port_of "$work/serve.err") || exit 1
}

if (( mirror )); then
  # The upstream logs a line per request (no -q): its requests are counted from them.
  "$zipllm" serve config.json --port 0 --threads "$threads" 2>"$work/upstream.err" &
  server_pid=$!
  up_port=$(port_of "$work/upstream.err") || exit 1
  mkdir -p mirror-models
  printf '{"model_dir": "mirror-models", "storage_dir": "mirror-store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json", "threads": %s}\n' "$threads" >mirror.json
  "$zipllm" serve mirror.json --port 0 --threads "$threads" --upstream "http://127.0.0.1:$up_port" 2>"$work/mirror.err" &
  mirror_pid=$!
  mirror_url="http://127.0.0.1:$(port_of "$work/mirror.err")" || exit 1
  mapfile -t models < <(grep -v '^#' models/synthetic_models.txt | grep .)
  requests() { grep -cE '(GET|HEAD|POST) /[^ ]* [0-9]{3} ' "$work/upstream.err" || true; }
  download_all() {
    for m in "${models[@]}"; do
      folder="models/${m/\//_}"
      while IFS= read -r f; do
        curl -sf -o "$work/got" "$mirror_url/$m/resolve/main/$f" || { echo "$m/$f: download failed" >&2; exit 1; }
        cmp -s "$work/got" "$folder/$f" || { echo "$m/$f: bytes differ" >&2; exit 1; }
      done < <(cd "$folder" && find . -type f | sed 's|^\./||' | sort)
      # Stored before the next is asked for, so lineage finds its base stored.
      for _ in $(seq 1 1200); do
        curl -sf "$mirror_url/api/models?search=$m" | grep -q "\"$m\"" && ! ls -d mirror-models/.zipllm-mirror/staging/"$m"/* >/dev/null 2>&1 && break
        sleep 0.1
      done
    done
  }
  t0=$(date +%s.%N); download_all; t1=$(date +%s.%N)
  first=$(requests)
  download_all
  second=$(( $(requests) - first ))
  stop_mirror; stop_server
  # Bytes of files only (folders' own sizes left out).
  bytes_in() { find "$@" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
  plain=$(bytes_in $(for m in "${models[@]}"; do echo "models/${m/\//_}"; done))
  stored=$(bytes_in mirror-store)
  compressed=$(bytes_in store)
  {
    echo "size,models,plain_bytes,mirror_bytes,compress_bytes,first_requests,second_requests,first_seconds"
    echo "$size,${#models[@]},$plain,$stored,$compressed,$first,$second,$(awk -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f", z - a}')"
  } >"$out/mirror.csv"
  cat <<TABLE
zipllm serve --upstream, synthetic family ($size, ${#models[@]} models), --threads $threads
  first download through the mirror:  $first upstream requests, $(awk -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f", z - a}') s
  second download:                    $second upstream requests
  bytes: plain-file mirror $plain, this mirror $stored ($(awk -v s="$stored" -v p="$plain" 'BEGIN {printf "%.1f%%", 100 * s / p}')), zipllm compress $compressed
CSV: $out/mirror.csv
TABLE
  exit 0
fi
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# The server's resident set, sampled every 50 ms while a command runs; prints the peak in MB after the command's output.
peak_rss() {
  local peak=0 rss
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0)
    (( rss > peak )) && peak=$rss
    sleep 0.05
  done
  wait "$pid"
  echo "$((peak / 1024))"
}

start_server
url="http://127.0.0.1:$port"

# 1. One shard over HTTP vs restoring the model.
get_rates=() restore_rates=()
for _ in $(seq 1 "$runs"); do
  read -r bytes seconds < <(curl -s -o /dev/null -w '%{size_download} %{time_total}\n' "$url/$base/resolve/main/$shard")
  [[ "$bytes" == "$shard_bytes" ]] || { echo "GET returned $bytes of $shard_bytes bytes" >&2; exit 1; }
  get_rates+=("$(awk -v b="$bytes" -v s="$seconds" 'BEGIN {printf "%.1f", b / s / 1e6}')")
  rm -rf restored
  t0=$(date +%s.%N)
  "$zipllm" restore config.json "$base" restored --threads "$threads" -q
  t1=$(date +%s.%N)
  restore_rates+=("$(awk -v b="$base_bytes" -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f", b / (z - a) / 1e6}')")
done
get_rate=$(printf '%s\n' "${get_rates[@]}" | median)
restore_rate=$(printf '%s\n' "${restore_rates[@]}" | median)

# 2. Eight models' largest shards at once.
mapfile -t models < <(grep -v '^#' models/synthetic_models.txt | grep . | head -8)
: >urls.txt
total=0
for m in "${models[@]}"; do
  folder="models/${m/\//_}"
  s=$(cd "$folder" && ls -S *.safetensors | head -1)
  echo "$url/$m/resolve/main/$s" >>urls.txt
  total=$((total + $(stat -c %s "$folder/$s")))
done
parallel_get() { xargs -P 8 -n 1 curl -s -o /dev/null <urls.txt; }
t0=$(date +%s.%N)
rss8=$(peak_rss parallel_get)
t1=$(date +%s.%N)
parallel_rate=$(awk -v b="$total" -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f", b / (z - a) / 1e6}')

# 3. 64 clients at once (the 8 shards, 8 times over).
for _ in $(seq 1 7); do head -8 urls.txt; done >>urls.txt
many_get() { xargs -P 64 -n 1 curl -s -o /dev/null <urls.txt; }
rss64=$(peak_rss many_get)

# 4. 4 KiB ranges at random offsets, on one connection: cold (fresh server), then warm (the same offsets).
stop_server
start_server
url="http://127.0.0.1:$port"
awk -v n="$reads" -v size="$shard_bytes" -v u="$url/$base/resolve/main/$shard" 'BEGIN {
  srand(42)
  for (i = 0; i < n; i++) {
    off = int(rand() * (size - 4096))
    if (i > 0) print "next"
    printf "url = \"%s\"\nrange = \"%d-%d\"\noutput = \"/dev/null\"\nsilent\nwrite-out = \"%%{time_total}\\n\"\n", u, off, off + 4095
  }
}' >ranges.curl
latency() { curl -K ranges.curl | awk '{print $1 * 1000}' | sort -g | awk '{a[NR]=$1} END {printf "%.2f %.2f\n", a[int(NR*0.5)], a[int(NR*0.99)]}'; }
read -r cold_p50 cold_p99 < <(latency)
read -r warm_p50 warm_p99 < <(latency)
stop_server

{
  echo "size,threads,shard_bytes,get_MBps,restore_MBps,get_over_restore,parallel8_MBps,rss8_MB,rss64_MB,cold_p50_ms,cold_p99_ms,warm_p50_ms,warm_p99_ms"
  echo "$size,$threads,$shard_bytes,$get_rate,$restore_rate,$(awk -v g="$get_rate" -v r="$restore_rate" 'BEGIN {printf "%.2f", g / r}'),$parallel_rate,$rss8,$rss64,$cold_p50,$cold_p99,$warm_p50,$warm_p99"
} >"$out/serve.csv"
cat <<TABLE
zipllm serve, synthetic family ($size), --threads $threads, $(nproc) cores
  GET of the base's largest shard ($((shard_bytes / 1000000)) MB): $get_rate MB/s (median of $runs)
  zipllm restore of the base:               $restore_rate MB/s (median of $runs)
  8 shards of 8 models at once:             $parallel_rate MB/s aggregate, server peak RSS $rss8 MB
  64 downloads at once:                     server peak RSS $rss64 MB
  4 KiB random ranges, one connection:      cold p50 $cold_p50 ms, p99 $cold_p99 ms; warm p50 $warm_p50 ms, p99 $warm_p99 ms
CSV: $out/serve.csv
TABLE
