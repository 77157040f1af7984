/* gc-sha256.h — SHA-256 (FIPS 180-4), streaming.
 *
 * Model files are identified by the SHA-256 of their bytes (the "Model hash" that image
 * metadata carries is its first 10 hex digits), and the deterministic test checkpoints are
 * checked against known hashes.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gc-error.h"

typedef struct {
  uint32_t state[8];
  uint64_t length;      /* bytes hashed so far */
  unsigned char block[64];
  size_t used;          /* bytes waiting in block */
} gc_sha256;

void gc_sha256_init (gc_sha256 *ctx);
void gc_sha256_update (gc_sha256 *ctx, const void *data, size_t size);
/* Writes the 32-byte digest; ctx must be initialised again before reuse. */
void gc_sha256_final (gc_sha256 *ctx, unsigned char digest[32]);

/* digest as 64 lower-case hex digits and a NUL. */
void gc_sha256_hex (const unsigned char digest[32], char hex[65]);

/* The hex digest of the whole file at path (read in blocks, so any size works). */
gc_status gc_sha256_file (const char *path, char hex[65], gc_error *err);
