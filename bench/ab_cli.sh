#!/usr/bin/env bash
# Two builds of the CLI side by side, alternating, on one config's store: restore of each model named, ROUNDS times,
# wall and CPU seconds (GNU time), then the medians. The store must hold the models already (compress it first).
# Usage: bench/ab_cli.sh BEFORE_CLI AFTER_CLI CONFIG ROUNDS MODEL...
#   a CLI is a command: 'dotnet path/to/zipllm.dll' or a native build's path.
set -euo pipefail
[[ $# -ge 5 ]] || { sed -n '2,5p' "$0" >&2; exit 2; }
before="$1" after="$2" config="$3" rounds="$4"
shift 4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((round = 1; round <= rounds; round++)); do
  for which in before after; do
    cli=$before; [[ $which == after ]] && cli=$after
    for model in "$@"; do
      rm -rf "$out/restored"
      /usr/bin/time -f "$which $model %e %U %S" $cli restore "$config" "$model" "$out/restored" -q 2>&1 >/dev/null | tail -1
    done
  done
done | tee "$out/runs.txt"
python3 - "$out/runs.txt" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    which, model, wall, user, system = line.split()
    runs[(model, which)].append((float(wall), float(user) + float(system)))
for (model, which), v in sorted(runs.items()):
    print(f"{model:40} {which:6} wall {statistics.median(w for w, _ in v):.3f} s  cpu {statistics.median(c for _, c in v):.3f} s  ({len(v)} runs)")
PY
