#!/usr/bin/env bash
# One prepared GPU check, random weights at real sizes, one table (see eval/gpu/check.py).
#   bash eval/gpu/check.sh               # on one H200, about 6-8 minutes
#   bash eval/gpu/check.sh --cpu-smoke   # tiny models on a CPU, the same code paths
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's affectreason, installed or not
export TOKENIZERS_PARALLELISM=false
exec python "$root/eval/gpu/check.py" "$@"
