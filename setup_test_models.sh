#!/usr/bin/env bash
# Gets the test models a ZipLLM config lists.
#
#   ./setup_test_models.sh [CONFIG] [--synthetic] [--size tiny|small|default] [--seed N] [--endpoint URL]
#
# CONFIG defaults to config.json. Builds the CLI (./zipllm) and runs 'zipllm models setup CONFIG ...', which:
#   - downloads every model of the config's models_to_process list from the Hugging Face hub
#     (HF_TOKEN from the environment; HF_ENDPOINT overrides the hub address) into model_dir,
#     resuming partial files, and writes base_ft.json (first listed id = base, the rest its finetunes);
#     a download that fails is an error (exit 4), with or without a token;
#   - generates a deterministic synthetic family instead only when --synthetic is given, or when HF_TOKEN
#     is unset and the hub cannot be reached, and then says so in a banner on stderr.
#
# The synthetic family has its own ids. Its list is written beside the models, as model_dir/synthetic_models.txt,
# and stands in for the configured list (which is never rewritten) for as long as that list is unchanged:
# compress reads it instead, and says so. The next setup that downloads the configured list deletes it.
set -euo pipefail
root="$(cd "$(dirname "$0")" && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

config="config.json"
if [[ $# -gt 0 && "$1" != -* ]]; then
  config="$1"
  shift
fi

exec "$root/zipllm" models setup "$config" "$@"
