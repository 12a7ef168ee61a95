#!/usr/bin/env bash
# Grows one folder store to many tiny models and prints, per batch, what storing one more batch costs, and at each
# measuring point what list, remove, gc and verify cost (issue 26: every operation's cost should not grow with the
# number of models stored):
#
#   bench/scale.sh [--top N] [--points "100 1000 10000"] [--batch 50] [--threads 2] [--work DIR] [--zipllm PATH]
#                  [--csv FILE]
#
# The models are tiny synthetic families (`zipllm models setup --synthetic --size tiny --seed K`, 11 models each), one
# per seed, each renamed to an org of its own (fK/..., and fKm/... for the family's my_org models; their model cards'
# base_model lines too), so the store holds many families of distinct bytes under distinct ids. They are stored 50 a
# batch (--batch) at 2 threads (--threads), in family order, base first; the families are generated as needed and that
# time is not counted. Printed for every batch: models stored after it, the compress's wall and CPU seconds (user +
# system, from /usr/bin/time -v), CPU milliseconds per model, and its peak RSS. At each point of --points (default
# 100, 1000 and --top) crossed, also, each as wall(CPU) seconds: `list`, `remove` of one model of the last batch (it
# is not stored again), `gc`, `verify` of every model, `bases` of the next 50 models; and the objects' bytes
# (apparent size). --top (default 10000) is where it stops. DIR (default a new temporary folder, removed at the
# end) keeps the models and the store; given, it is kept, and a second run on it goes on where the first stopped.
# --zipllm runs another build (say, one of an earlier commit, to measure "before"); default ./zipllm.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { echo "usage: $0 [--top N] [--points \"100 1000 10000\"] [--batch N] [--threads N] [--work DIR] [--zipllm PATH] [--csv FILE]" >&2; exit 2; }
top=10000
points=
batch=50
threads=2
work=
zipllm="$root/zipllm"
csv=
while [[ $# -gt 0 ]]; do
  case $1 in
    --top) top=${2:?}; shift 2 ;;
    --points) points=${2:?}; shift 2 ;;
    --batch) batch=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --work) work=${2:?}; shift 2 ;;
    --zipllm) zipllm=${2:?}; shift 2 ;;
    --csv) csv=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
[[ -n $points ]] || points="100 1000 $top"
[[ -x /usr/bin/time ]] || { echo "$0: needs /usr/bin/time (GNU time: apt-get install time)" >&2; exit 1; }
"$zipllm" --version >/dev/null # builds it (native where it can)

keep=1
if [[ -z $work ]]; then
  work=$(mktemp -d)
  keep=0
fi
mkdir -p "$work/models" "$work/gen"
trap '[[ $keep == 1 ]] || rm -rf "$work"' EXIT
cat >"$work/config.json" <<EOF
{ "model_dir": "models", "storage_dir": "store", "models_to_process": "batch.txt", "base_ft_path": "none.json", "threads": $threads }
EOF
queue="$work/queue.txt" # every model generated so far, in order; the first $(stored) of them are in the store
touch "$queue"
[[ -f $work/done.txt ]] || echo 0 >"$work/done.txt"

# Makes family K (seed K) under models/ as fK/... and fKm/...
family() {
  local k=$1 gen="$work/gen/$1"
  rm -rf "$gen"
  mkdir -p "$gen"
  printf '{ "model_dir": "m", "storage_dir": "s", "models_to_process": "list.txt", "base_ft_path": "base_ft.json" }\n' >"$gen/config.json"
  : >"$gen/list.txt"
  "$zipllm" models setup "$gen/config.json" --synthetic --size tiny --seed "$k" >/dev/null 2>&1
  local id folder org name new
  while read -r id; do
    [[ -z $id || $id == \#* ]] && continue
    org=${id%%/*}
    name=${id#*/}
    folder="$gen/m/${org}_${name}"
    case $org in
      synthetic) new="f$k/$name" ;;
      my_org) new="f${k}m/$name" ;;
      *) new="f$k$org/$name" ;;
    esac
    # The model card's base_model names the family's own base, as a hub's would.
    grep -rl -e 'synthetic/' -e 'my_org/' "$folder" --include='*.md' --include='*.json' 2>/dev/null \
      | xargs -r sed -i -e "s#synthetic/#f$k/#g" -e "s#my_org/#f${k}m/#g"
    mv "$folder" "$work/models/${new%%/*}_${new#*/}"
    echo "$new" >>"$queue"
  done < <(sed 's/#.*//' "$gen/m/synthetic_models.txt")
  rm -rf "$gen"
}

# Wall seconds and, in brackets, CPU seconds (user + system) of one run of the command, its output discarded (exit
# status checked): on a loaded machine the CPU time is the figure that compares.
timed() {
  /usr/bin/time -f '%e %U %S' -o "$work/last.time" "$@" >/dev/null 2>"$work/last.err" \
    || { echo "$0: failed: $*" >&2; cat "$work/last.err" >&2; exit 1; }
  awk '{ printf "%.2f(%.2f)", $1, $2 + $3 }' "$work/last.time"
}

[[ -z $csv ]] || [[ -f $csv ]] || echo "stored,compress_wall_s,compress_cpu_s,ms_per_model,rss_mb,list_s,remove_s,gc_s,verify_s,bases_s,object_bytes,load" >"$csv"
printf '%-8s %10s %10s %9s %8s | %12s %12s %12s %13s %12s %12s  %s\n' stored "wall s" "cpu s" "ms/model" "RSS MB" "list s" "remove s" "gc s" "verify s" "bases s" "object bytes" load
done_count=$(<"$work/done.txt")
next_family=$(( $(wc -l <"$queue") / 11 ))
passed=()
for p in $points; do [[ $p -le $done_count ]] && passed+=("$p"); done
while [[ $done_count -lt $top ]]; do
  want=$(( done_count + batch ))
  [[ $want -le $top ]] || want=$top
  while [[ $(wc -l <"$queue") -lt $(( want + batch )) ]]; do
    family "$next_family"
    next_family=$(( next_family + 1 ))
  done
  sed -n "$(( done_count + 1 )),${want}p" "$queue" >"$work/batch.txt"
  /usr/bin/time -v "$zipllm" compress "$work/config.json" >/dev/null 2>"$work/time.txt" \
    || { echo "$0: compress failed" >&2; tail -20 "$work/time.txt" >&2; exit 1; }
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.2f", s }' "$work/time.txt")
  cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident/ { printf "%.0f", $2 / 1024 }' "$work/time.txt")
  count=$(( want - done_count ))
  done_count=$want
  echo "$done_count" >"$work/done.txt"
  per=$(awk -v c="$cpu" -v n="$count" 'BEGIN { printf "%.0f", 1000 * c / n }')
  list= remove= gc= verify= bases= bytes=
  point=0
  for p in $points; do
    if [[ $done_count -ge $p && ! " ${passed[*]-} " =~ " $p " ]]; then point=1; passed+=("$p"); fi
  done
  if [[ $point == 1 ]]; then
    list=$(timed "$zipllm" list "$work/config.json")
    victim=$(tail -1 "$work/batch.txt")
    remove=$(timed "$zipllm" remove "$work/config.json" "$victim")
    gc=$(timed "$zipllm" gc "$work/config.json")
    verify=$(timed "$zipllm" verify "$work/config.json" --threads "$threads")
    sed -n "$(( done_count + 1 )),$(( done_count + batch ))p" "$queue" >"$work/batch.txt"
    bases=$(timed "$zipllm" bases "$work/config.json")
    bytes=$(find "$work/store/objects" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  fi
  load=$(cut -d' ' -f1 /proc/loadavg)
  printf '%-8s %10s %10s %9s %8s | %12s %12s %12s %13s %12s %12s  %s\n' "$done_count" "$wall" "$cpu" "$per" "$rss" "${list:--}" "${remove:--}" "${gc:--}" "${verify:--}" "${bases:--}" "${bytes:--}" "$load"
  [[ -z $csv ]] || echo "$done_count,$wall,$cpu,$per,$rss,$list,$remove,$gc,$verify,$bases,$bytes,$load" >>"$csv"
done
