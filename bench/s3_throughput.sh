#!/usr/bin/env bash
# Compress and restore throughput on a store in S3, next to the gateway's own single-stream PUT and GET of the
# same bytes, all on loopback against a RADOS Gateway of its own (tests/s3/rgw.sh; needs ceph-mon, ceph-osd, radosgw):
#
#   bench/s3_throughput.sh CONFIG [--threads N] [--restore org/a org/b ...] [--out DIR]
#
# CONFIG names the models (model_dir, models_to_process, base_ft_path; its storage_dir is ignored): for the
# synthetic family, `mkdir -p /tmp/s3bench && cp config.json /tmp/s3bench/ && ./setup_test_models.sh
# /tmp/s3bench/config.json --synthetic`. Measured, in this order, on one fresh gateway:
#   gateway PUT   every file of model_dir, one PUT at a time (curl, SigV4, unsigned payload), into a bucket of its own
#   gateway GET   the same objects, one GET at a time, to /dev/null; then that bucket is emptied
#   compress      ./zipllm compress into s3://zipllm-bench/store: the models' bytes over the wall time, peak RSS
#   restore       ./zipllm restore of each --restore model (default: synthetic/llama-base synthetic/llama-full-ft)
# Prints a table and writes DIR/s3_throughput.csv (DIR: the current folder by default).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { echo "usage: $0 CONFIG [--threads N] [--restore org/a ...] [--out DIR]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
config="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shift
threads=$(nproc)
restore=(synthetic/llama-base synthetic/llama-full-ft)
out=$PWD
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --restore) shift; restore=(); while [[ $# -gt 0 && $1 != --* ]]; do restore+=("$1"); shift; done ;;
    *) usage ;;
  esac
done

field() { grep -o "\"$1\": *\"[^\"]*\"" "$config" | sed 's/.*: *"\(.*\)"/\1/'; }
resolve() { [[ $1 == /* ]] && echo "$1" || echo "$(dirname "$config")/$1"; }
model_dir=$(resolve "$(field model_dir)")
[[ -d $model_dir ]] || { echo "no model_dir $model_dir: run setup_test_models.sh first" >&2; exit 1; }

"$root/zipllm" --version >/dev/null # builds it (native where it can)
work=$(mktemp -d)
rgw="$work/rgw"
trap '"$root/tests/s3/rgw.sh" stop "$rgw" >/dev/null 2>&1; rm -rf "$work"' EXIT
"$root/tests/s3/rgw.sh" start "$rgw" --owner $$ >/dev/null
set -a
# shellcheck disable=SC1091
. "$rgw/env"
set +a

sed "s|\"storage_dir\": *\"[^\"]*\"|\"storage_dir\": \"s3://zipllm-bench/store\"|" "$config" >"$work/config.json"
for name in model_dir models_to_process base_ft_path; do
  sed -i "s|\"$name\": *\"[^\"]*\"|\"$name\": \"$(resolve "$(field "$name")")\"|" "$work/config.json"
done

s3curl() { curl -sS --fail --aws-sigv4 "aws:amz:${AWS_REGION}:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"; }
now() { date +%s.%N; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

mapfile -d '' files < <(find "$model_dir" -type f -print0 | sort -z)
bytes=$(find "$model_dir" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
echo "models: $model_dir, ${#files[@]} files, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB; --threads $threads; gateway $AWS_ENDPOINT_URL_S3" >&2

s3curl -X PUT "$AWS_ENDPOINT_URL_S3/zipllm-raw" -o /dev/null
start=$(now)
i=0
for file in "${files[@]}"; do s3curl -T "$file" "$AWS_ENDPOINT_URL_S3/zipllm-raw/$((i++))" -o /dev/null; done
put_s=$(seconds "$start" "$(now)")
start=$(now)
for ((j = 0; j < i; j++)); do s3curl "$AWS_ENDPOINT_URL_S3/zipllm-raw/$j" -o /dev/null; done
get_s=$(seconds "$start" "$(now)")
for ((j = 0; j < i; j++)); do s3curl -X DELETE "$AWS_ENDPOINT_URL_S3/zipllm-raw/$j" -o /dev/null; done

measure() { # label bytes command...: wall seconds and peak RSS (kB) of the command
  local label=$1 n=$2 t0 t1
  shift 2
  t0=$(now)
  local log="$work/${label//[^a-z0-9]/_}.log"
  /usr/bin/time -f %M -o "$work/rss" "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  t1=$(now)
  echo "$label,$n,$(seconds "$t0" "$t1"),$(cat "$work/rss")"
}

{
  echo "step,bytes,seconds,peak_rss_kb"
  echo "gateway PUT (single stream),$bytes,$put_s,"
  echo "gateway GET (single stream),$bytes,$get_s,"
  measure compress "$bytes" "$root/zipllm" compress "$work/config.json" --threads "$threads"
  for model in "${restore[@]}"; do
    folder="$model_dir/${model/\//_}"
    n=$(find "$folder" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    measure "restore $model" "$n" "$root/zipllm" restore "$work/config.json" "$model" "$work/out-${model//\//_}" --threads "$threads"
    diff -r "$folder" "$work/out-${model//\//_}" >/dev/null || { echo "restore of $model differs" >&2; exit 1; }
    rm -rf "$work/out-${model//\//_}"
  done
} >"$work/results.csv"
"$root/zipllm" list "$work/config.json" | tail -1 >&2

mkdir -p "$out"
cp "$work/results.csv" "$out/s3_throughput.csv"
printf '%-40s %10s %9s %8s %12s\n' step MB seconds MB/s "peak RSS MB"
tail -n +2 "$work/results.csv" | while IFS=, read -r step n s rss; do
  printf '%-40s %10.1f %9s %8s %12s\n' "$step" "$(awk -v b="$n" 'BEGIN { print b / 1e6 }')" "$s" "$(rate "$n" "$s")" "${rss:+$((rss / 1024))}"
done
