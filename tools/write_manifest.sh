#!/usr/bin/env bash
# Writes docs/experiments/weights.manifest: one "SIZE SHA256 PATH" line for every weights file
# the repository ships under docs/experiments (PATH relative to that folder). Run it after
# changing a shipped file; dmdr checks each file against its line when it loads it.
set -euo pipefail
cd "$(dirname "$0")/../docs/experiments"
{
    echo "# The weights this repository ships: size in bytes, SHA-256, path from this folder."
    echo "# Written by tools/write_manifest.sh; dmdr checks a listed file whenever it loads it."
    find . -name '*.safetensors' -type f | sed 's|^\./||' | LC_ALL=C sort | while read -r f; do
        printf '%s %s %s\n' "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)" "$f"
    done
} > weights.manifest.tmp
mv weights.manifest.tmp weights.manifest
echo "docs/experiments/weights.manifest: $(grep -vc '^#' weights.manifest) files"
