#!/usr/bin/env bash
# Measures zipllm restore/compress throughput at several thread counts against the zstd CLI, and
# writes results.csv, a summary table and throughput.png (the original ZipLLM script's interface):
#
#   bench/throughput_analysis.sh --threads 1 2 4 8 --config ../config.json [--mode restore|compress|both]
#       [--models a/b c/d] [--runs 3] [--analyze-only] [--drop-cache] [--out DIR] [--memory-check]
#
# Builds the CLI and bench/ZipLlm.Throughput (Release, quietly), then runs the tool with the same
# arguments from the caller's working directory, so a relative --config or --out is the caller's.
# See bench/README.md for what each column means.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# The plot's text needs a TrueType font; Debian's fonts-dejavu-core is enough.
if ! ls /usr/share/fonts/truetype/*/*.ttf >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "throughput: no TrueType font found; installing fonts-dejavu-core for the plot's labels" >&2
  apt-get install -y -qq fonts-dejavu-core >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq fonts-dejavu-core >/dev/null 2>&1; } \
    || echo "throughput: could not install fonts-dejavu-core; the plot may have no text" >&2
fi

# Peak RSS is read through GNU time (the measured command alone; see ProcessMeter.cs): Debian's package "time".
if [[ ! -x /usr/bin/time ]] && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "throughput: /usr/bin/time not found; installing GNU time for the peak RSS figures" >&2
  apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq time >/dev/null 2>&1; } \
    || echo "throughput: could not install GNU time; peak RSS will not be measured" >&2
fi

# The CLI is measured as users run it: built by ./zipllm (native, or a .dll where native cannot be built).
"$root/zipllm" --version >/dev/null
log="$(mktemp)"
if ! dotnet build "$root/bench/ZipLlm.Throughput/ZipLlm.Throughput.csproj" -c Release --nologo -v quiet >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "throughput: build of bench/ZipLlm.Throughput failed" >&2
  exit 1
fi
rm -f "$log"

built="$root/src/ZipLlm.Cli/bin/zipllm"
cli=(--cli "$built/zipllm")
[[ -f "$built/zipllm.dll" ]] && cli=(--cli "$built/zipllm.dll")
for arg in "$@"; do [[ "$arg" == --cli ]] && cli=(); done
exec dotnet "$root/bench/ZipLlm.Throughput/bin/Release/net10.0/zipllm-throughput.dll" "${cli[@]}" "$@"
