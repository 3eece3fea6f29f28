// SHA-256 (FIPS 180-4), to check the weights the repository ships against their manifest
// (tools/data/manifest.h). About 60 lines: less than a dependency for one function.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "tensor/error.h"

typedef struct {
    uint32_t h[8];
    uint64_t length;        // bytes hashed so far
    unsigned char block[64];
    size_t used;            // bytes waiting in block
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, unsigned char digest[32]);

// The digest of the file at path as 64 lowercase hex digits (hex: 65 bytes) and its size ->
// 0, or -1 with err naming the file.
int sha256_file(const char *path, char hex[65], long long *size, Error *err);
