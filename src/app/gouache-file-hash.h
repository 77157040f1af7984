/* gouache-file-hash.h: SHA-256 hashes of model files, cached across runs
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Image settings name the checkpoint by "Model hash" (the first 10 hex digits of the file's
 * SHA-256) and each LoRA by its short hash (the first 12 of kohya's "addnet" hash: the SHA-256
 * of a safetensors file's tensor data, after the 8-byte length and the JSON header), as
 * AUTOMATIC1111 does. Hashing a 2 GB checkpoint takes seconds, so full hashes are kept in
 * $XDG_CACHE_HOME/gouache/hashes.ini, one group per file (its file:// URI) with the size,
 * modification time in nanoseconds and inode they were computed for; a file whose size, time
 * or inode changed is hashed again.
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
  GOUACHE_FILE_HASH_SHA256, /* the whole file */
  GOUACHE_FILE_HASH_ADDNET, /* a safetensors file after its 8 + N header bytes */
} GouacheFileHashKind;

/* Files are read in blocks of this many bytes; the cancellable is checked between blocks. */
#define GOUACHE_FILE_HASH_BLOCK_SIZE (1024 * 1024)

char *gouache_file_hash_compute    (const char           *path,
                                    GouacheFileHashKind   kind,
                                    GCancellable         *cancellable,
                                    GError              **error);
char *gouache_file_hash_get        (const char           *path,
                                    GouacheFileHashKind   kind,
                                    GCancellable         *cancellable,
                                    GError              **error);
char *gouache_file_hash_model_hash (const char           *path,
                                    GCancellable         *cancellable,
                                    GError              **error);
char *gouache_file_hash_lora_hash  (const char           *path,
                                    GCancellable         *cancellable,
                                    GError              **error);

G_END_DECLS
