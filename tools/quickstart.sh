#!/usr/bin/env bash
# The README's first command: set everything up, then run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec build/tools/dmdr demo "$@"
