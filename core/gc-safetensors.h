/* gc-safetensors.h — reading and writing .safetensors files.
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON
 *   { "name": {"dtype": "F16", "shape": [4, 3], "data_offsets": [begin, end]}, ...,
 *     "__metadata__": {"key": "string value", ...} }
 * then the data section; offsets are relative to the start of the data section.
 *
 * Files from the internet are hostile until proven otherwise. The reader maps the file and
 * checks everything before handing out a single pointer: header length bounded (100 MiB) and
 * inside the file, strict JSON, known dtypes, shapes with non-negative dimensions whose
 * product × element size neither overflows nor disagrees with the offsets, offsets ordered and
 * inside the data section, no two tensors overlapping, no duplicate names, metadata values that
 * are strings. Any violation is GC_ERR_FORMAT with a message naming the tensor and the problem.
 * A 0-D tensor (shape []) holds one element. Names and metadata may not contain NUL characters
 * (they are handed out as C strings). A dtype of the format that Gouache does not read
 * (F8_E4M3, U32...) is GC_ERR_UNSUPPORTED. A PyTorch pickle (.ckpt/.pt/.pth, bare pickle or zip)
 * is recognised and refused with GC_ERR_UNSUPPORTED and a message that says why and what to use
 * instead. gc_safetensors_open puts the path in front of every message; a missing file, a
 * directory or an unreadable one is GC_ERR_IO.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gc-dtype.h"
#include "gc-error.h"
#include "gc-tensor.h"

typedef struct {
  const char *name;  /* NUL-terminated, owned by the file */
  gc_dtype dtype;
  int ndim;          /* 0 for a scalar; at most GC_MAX_DIMS */
  int64_t shape[GC_MAX_DIMS];
  const void *data;  /* inside the mapping; may be unaligned */
  size_t nbytes;
} gc_st_tensor;

typedef struct gc_safetensors gc_safetensors;

/* Maps and validates the file at path. */
gc_status gc_safetensors_open (gc_safetensors **out, const char *path, gc_error *err);

/* Validates a file image already in memory (it must stay alive until close); for tests and fuzzing. */
gc_status gc_safetensors_open_memory (gc_safetensors **out, const void *bytes, size_t size,
                                      gc_error *err);

void gc_safetensors_close (gc_safetensors *file);

size_t gc_safetensors_count (const gc_safetensors *file);

/* Tensors in the order of their data offsets. */
const gc_st_tensor *gc_safetensors_at (const gc_safetensors *file, size_t index);

/* NULL if there is no tensor of that name. */
const gc_st_tensor *gc_safetensors_find (const gc_safetensors *file, const char *name);

/* Metadata value for key, or NULL. */
const char *gc_safetensors_metadata (const gc_safetensors *file, const char *key);
size_t gc_safetensors_metadata_count (const gc_safetensors *file);
const char *gc_safetensors_metadata_key (const gc_safetensors *file, size_t index);
const char *gc_safetensors_metadata_value (const gc_safetensors *file, size_t index);

/* Bytes of the whole file, and of the data section (which starts at 8 + header length). */
size_t gc_safetensors_file_size (const gc_safetensors *file);
const void *gc_safetensors_data_section (const gc_safetensors *file, size_t *size);

/* A view of a tensor as a weight (for model code). */
gc_weight gc_st_tensor_weight (const gc_st_tensor *tensor);

/* ---- writing ----
 * The writer produces exactly the bytes that the reference tools (safetensors, sdrand.py) write:
 * tensors sorted by name, compact JSON (no spaces, ASCII with \uXXXX escapes), "__metadata__"
 * last, header padded with spaces to a multiple of 8. Data is streamed tensor by tensor in
 * name order, so files larger than memory can be written. Errors (a full disk) are reported and
 * the partial file is removed; the destination is replaced atomically (write to a temporary
 * file beside it, then rename), so an existing file is never lost to a failed write. */

typedef struct {
  const char *name;
  gc_dtype dtype;
  int ndim;
  int64_t shape[GC_MAX_DIMS];
} gc_st_entry;

typedef struct gc_safetensors_writer gc_safetensors_writer;

/* Starts writing path with the given entries (any order) and metadata pairs
 * (metadata[2i] = key, metadata[2i+1] = value; n_metadata pairs). */
gc_status gc_safetensors_writer_begin (gc_safetensors_writer **out, const char *path,
                                       const gc_st_entry *entries, size_t n_entries,
                                       const char *const *metadata, size_t n_metadata,
                                       gc_error *err);

/* The order in which tensor data must be given: entries[order[i]] is the i-th to write. */
const size_t *gc_safetensors_writer_order (const gc_safetensors_writer *writer);

/* Appends bytes of the current tensor's data (may be called several times per tensor). */
gc_status gc_safetensors_writer_write (gc_safetensors_writer *writer, const void *bytes,
                                       size_t size, gc_error *err);

/* Checks that every tensor got exactly its size, flushes, renames into place and frees the
 * writer. On failure the temporary file is removed and the destination left untouched. */
gc_status gc_safetensors_writer_finish (gc_safetensors_writer *writer, gc_error *err);

/* Abandons the file (removes the temporary file) and frees the writer. */
void gc_safetensors_writer_abort (gc_safetensors_writer *writer);

/* Convenience: writes in-memory tensors (data[i] holds entries[i]'s bytes). */
gc_status gc_safetensors_write (const char *path, const gc_st_entry *entries,
                                const void *const *data, size_t n_entries,
                                const char *const *metadata, size_t n_metadata, gc_error *err);
