#!/usr/bin/env bash
# Gets the test models a ZipLLM config lists.
#
#   ./setup_test_models.sh [CONFIG] [--synthetic] [--size tiny|small|default] [--seed N] [--endpoint URL]
#
# CONFIG defaults to config.json. Builds the CLI (Release, quietly) and runs
# 'zipllm models setup CONFIG ...', which:
#   - downloads every model of the config's models_to_process list from the Hugging Face hub
#     (HF_TOKEN from the environment; HF_ENDPOINT overrides the hub address) into model_dir,
#     resuming partial files, and writes base_ft.json (first listed id = base, the rest its finetunes);
#   - generates a deterministic synthetic family instead when --synthetic is given, or when
#     HF_TOKEN is unset and the hub is unreachable, or when a download fails for a network reason.
#
# The synthetic family has its own ids, so synthetic mode writes them into the configured
# models_to_process file, marked by a first line '# zipllm synthetic model family'. If that file
# already held a hub list (no marker), it is first copied to '<file>.hub' (or '<file>.hub.<time>'
# when a different .hub copy exists), so nothing is lost; the next hub-mode run puts the .hub
# copy back in place before downloading.
set -euo pipefail
root="$(cd "$(dirname "$0")" && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

config="config.json"
if [[ $# -gt 0 && "$1" != -* ]]; then
  config="$1"
  shift
fi

exec "$root/zipllm" models setup "$config" "$@"
