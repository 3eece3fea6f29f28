// The manifest of the weights the repository ships (docs/experiments/weights.manifest): one
// line per file, "SIZE SHA256 PATH", PATH relative to the manifest's folder; '#' starts a
// comment. A weights file is checked against it whenever a command loads one, so a file cut
// short by a failed download or checkout, or replaced by a Git LFS pointer, is named with how
// to restore it instead of failing later as a bad safetensors file.
#pragma once

#include <stdbool.h>

#include "tensor/error.h"

#define MANIFEST_NAME "weights.manifest"

// Checks the file at path against the manifest of the tree it lies in (weights.manifest in
// its folder or up to 8 folders above): 0 when that manifest lists it with its size and
// SHA-256, or when no manifest lists it (*listed false, when given); -1 with err naming the
// file, what differs and how to restore it.
int manifest_check(const char *path, bool *listed, Error *err);

// Checks every file the manifest at manifest_path lists (missing, resized or changed files
// are errors naming them) -> the number of files, or -1 with err.
int manifest_check_all(const char *manifest_path, Error *err);
