#include "gc-safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gc-json.h"

enum {
  HEADER_LIMIT = 100 << 20, /* real headers are a few hundred KiB */
  NAME_SHOWN = 160,         /* characters of a tensor name quoted in a message */
};

struct gc_safetensors {
  const unsigned char *bytes;
  size_t size;
  void *mapping; /* NULL when the caller owns the bytes */
  gc_json *header;
  const unsigned char *data;
  size_t data_size;
  gc_st_tensor *tensors; /* sorted by data offset */
  size_t count;
  const gc_st_tensor **by_name; /* sorted by name, for lookups */
  const char **metadata;        /* key, value, key, value... in file order */
  size_t metadata_count;
};

/* ---- messages ---- */

static void
format_shape (char *buf, size_t size, int ndim, const int64_t *shape)
{
  size_t n = (size_t) snprintf (buf, size, "[");
  for (int i = 0; i < ndim && n < size; i++)
    n += (size_t) snprintf (buf + n, size - n, i ? ", %" PRId64 : "%" PRId64, shape[i]);
  if (n < size)
    snprintf (buf + n, size - n, "]");
}

static gc_status
tensor_error (gc_error *err, const char *name, const char *format, ...)
  __attribute__ ((format (printf, 3, 4)));

/* "tensor 'name': problem", with very long (hostile) names shortened. */
static gc_status
tensor_error (gc_error *err, const char *name, const char *format, ...)
{
  char problem[GC_ERROR_MESSAGE_MAX];
  va_list args;
  va_start (args, format);
  vsnprintf (problem, sizeof problem, format, args);
  va_end (args);
  return gc_error_set (err, GC_ERR_FORMAT, "tensor '%.*s%s': %s", NAME_SHOWN, name,
                       strlen (name) > NAME_SHOWN ? "..." : "", problem);
}

/* ---- reading ---- */

static uint64_t
read_le64 (const unsigned char *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* PyTorch checkpoints are a zip archive (torch.save since 1.6) or a bare pickle stream, which
 * starts with the PROTO opcode and a protocol number. A safetensors header begins with '{' at
 * byte 8, which neither format has there, so a header length that happens to start with the
 * same bytes is not mistaken for one. */
static bool
looks_like_pytorch (const unsigned char *b, size_t size)
{
  if (size > 8 && b[8] == '{')
    return false;
  if (size >= 4 && memcmp (b, "PK\x03\x04", 4) == 0)
    return true;
  return size >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5;
}

static gc_status
parse_dtype (const char *name, const gc_json_value *v, gc_dtype *out, gc_error *err)
{
  size_t len;
  const char *s = gc_json_string (v, &len);
  if (s == NULL)
    return tensor_error (err, name, "dtype is not a string");
  if (gc_dtype_parse (s, len, out) == 0)
    return GC_OK;
  /* Types of the safetensors format that Gouache has no use for: well-formed, but refused. */
  static const char *const known[] = { "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2",
                                       "F4", "U16", "U32", "U64", "C64" };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strlen (known[i]) == len && memcmp (known[i], s, len) == 0)
      {
        tensor_error (err, name,
                      "dtype %s is not supported (Gouache reads F16, BF16, F32, F64, I64, I32, "
                      "I16, I8, U8 and BOOL)", known[i]);
        if (err)
          err->code = GC_ERR_UNSUPPORTED;
        return GC_ERR_UNSUPPORTED;
      }
  return tensor_error (err, name, "unknown dtype '%.32s%s'", s, len > 32 ? "..." : "");
}

static gc_status
parse_shape (const char *name, const gc_json_value *v, gc_st_tensor *t, gc_error *err)
{
  if (gc_json_type_of (v) != GC_JSON_ARRAY)
    return tensor_error (err, name, "shape is not a list");
  size_t ndim = gc_json_length (v);
  if (ndim > GC_MAX_DIMS)
    return tensor_error (err, name, "shape has %zu dimensions, more than the %d supported", ndim,
                         GC_MAX_DIMS);
  t->ndim = (int) ndim;
  for (size_t i = 0; i < ndim; i++)
    {
      const gc_json_value *d = gc_json_array_at (v, i);
      int64_t dim;
      if (!gc_json_int64 (d, &dim))
        return tensor_error (err, name, "shape dimension %zu is not an integer", i);
      if (dim < 0)
        return tensor_error (err, name, "shape dimension %zu is negative (%" PRId64 ")", i, dim);
      t->shape[i] = dim;
    }
  return GC_OK;
}

static gc_status
parse_offsets (const char *name, const gc_json_value *v, uint64_t *begin, uint64_t *end,
               gc_error *err)
{
  if (gc_json_type_of (v) != GC_JSON_ARRAY || gc_json_length (v) != 2
      || !gc_json_uint64 (gc_json_array_at (v, 0), begin)
      || !gc_json_uint64 (gc_json_array_at (v, 1), end))
    return tensor_error (err, name, "data_offsets is not a list of two non-negative integers");
  return GC_OK;
}

/* Checks that the offsets hold exactly the bytes of the shape, inside the data section. */
static gc_status
check_extent (const char *name, const gc_st_tensor *t, uint64_t begin, uint64_t end,
              size_t data_size, gc_error *err)
{
  char shape[GC_MAX_DIMS * 22 + 4];
  format_shape (shape, sizeof shape, t->ndim, t->shape);
  if (begin > end)
    return tensor_error (err, name, "data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
                         begin, end);
  if (end > data_size)
    return tensor_error (err, name,
                         "data_offsets [%" PRIu64 ", %" PRIu64 "] run past the end of the %zu-byte "
                         "data section (truncated file?)", begin, end, data_size);
  uint64_t bytes = gc_dtype_size (t->dtype);
  for (int i = 0; i < t->ndim; i++)
    if (__builtin_mul_overflow (bytes, (uint64_t) t->shape[i], &bytes))
      return tensor_error (err, name, "shape %s is too large (its size in bytes overflows)", shape);
  if (bytes != end - begin)
    return tensor_error (err, name,
                         "data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64 " bytes, but shape "
                         "%s of %s needs %" PRIu64, begin, end, end - begin, shape,
                         gc_dtype_name (t->dtype), bytes);
  return GC_OK;
}

/* One "name": {"dtype", "shape", "data_offsets"} member of the header. */
static gc_status
parse_tensor (gc_safetensors *file, const char *name, size_t name_length, const gc_json_value *v,
              gc_st_tensor *t, gc_error *err)
{
  if (strlen (name) != name_length)
    return tensor_error (err, name, "the name contains a NUL character");
  if (gc_json_type_of (v) != GC_JSON_OBJECT)
    return tensor_error (err, name, "the entry is not an object");
  static const char *const fields[] = { "dtype", "shape", "data_offsets" };
  for (size_t i = 0; i < gc_json_length (v); i++)
    {
      size_t key_length;
      const char *key = gc_json_member_key (v, i, &key_length);
      bool known = false;
      for (size_t f = 0; f < 3; f++)
        known |= strlen (fields[f]) == key_length && memcmp (fields[f], key, key_length) == 0;
      if (!known)
        return tensor_error (err, name, "unexpected field '%.40s'", key);
    }
  for (size_t f = 0; f < 3; f++)
    if (gc_json_get (v, fields[f]) == NULL)
      return tensor_error (err, name, "the field '%s' is missing", fields[f]);
  /* all members are known and all three are present: more than three means a repeated field */
  if (gc_json_length (v) != 3)
    return tensor_error (err, name, "a field is given twice");

  gc_status s = parse_dtype (name, gc_json_get (v, "dtype"), &t->dtype, err);
  if (s == GC_OK)
    s = parse_shape (name, gc_json_get (v, "shape"), t, err);
  uint64_t begin = 0, end = 0;
  if (s == GC_OK)
    s = parse_offsets (name, gc_json_get (v, "data_offsets"), &begin, &end, err);
  if (s == GC_OK)
    s = check_extent (name, t, begin, end, file->data_size, err);
  if (s != GC_OK)
    return s;
  t->name = name;
  t->data = file->data + begin;
  t->nbytes = (size_t) (end - begin);
  return GC_OK;
}

static gc_status
parse_metadata (gc_safetensors *file, const gc_json_value *v, gc_error *err)
{
  if (file->metadata != NULL)
    return gc_error_set (err, GC_ERR_FORMAT, "the header has two __metadata__ entries");
  if (gc_json_type_of (v) != GC_JSON_OBJECT)
    return gc_error_set (err, GC_ERR_FORMAT, "__metadata__ is not an object");
  size_t n = gc_json_length (v);
  file->metadata = calloc (2 * n + 1, sizeof *file->metadata);
  if (file->metadata == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory reading the metadata");
  for (size_t i = 0; i < n; i++)
    {
      size_t key_length, value_length;
      const char *key = gc_json_member_key (v, i, &key_length);
      const char *value = gc_json_string (gc_json_member_value (v, i), &value_length);
      if (strlen (key) != key_length)
        return gc_error_set (err, GC_ERR_FORMAT, "a __metadata__ key contains a NUL character");
      if (value == NULL)
        return gc_error_set (err, GC_ERR_FORMAT, "__metadata__ value of '%.*s' is not a string",
                             NAME_SHOWN, key);
      if (strlen (value) != value_length)
        return gc_error_set (err, GC_ERR_FORMAT,
                             "__metadata__ value of '%.*s' contains a NUL character", NAME_SHOWN,
                             key);
      for (size_t j = 0; j < i; j++)
        if (strcmp (file->metadata[2 * j], key) == 0)
          return gc_error_set (err, GC_ERR_FORMAT, "__metadata__ key '%.*s' appears twice",
                               NAME_SHOWN, key);
      file->metadata[2 * i] = key;
      file->metadata[2 * i + 1] = value;
      file->metadata_count = i + 1;
    }
  return GC_OK;
}

static int
compare_offsets (const void *a, const void *b)
{
  const gc_st_tensor *x = a, *y = b;
  if (x->data != y->data)
    return (uintptr_t) x->data < (uintptr_t) y->data ? -1 : 1;
  if (x->nbytes != y->nbytes)
    return x->nbytes < y->nbytes ? -1 : 1;
  return strcmp (x->name, y->name);
}

static int
compare_names (const void *a, const void *b)
{
  const gc_st_tensor *const *x = a, *const *y = b;
  return strcmp ((*x)->name, (*y)->name);
}

/* Sorts the tensors by offset and by name, and rejects repeated names and shared bytes. */
static gc_status
index_tensors (gc_safetensors *file, gc_error *err)
{
  if (file->count == 0)
    return GC_OK;
  qsort (file->tensors, file->count, sizeof *file->tensors, compare_offsets);
  file->by_name = malloc (file->count * sizeof *file->by_name);
  if (file->by_name == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory indexing %zu tensors", file->count);
  for (size_t i = 0; i < file->count; i++)
    file->by_name[i] = &file->tensors[i];
  qsort (file->by_name, file->count, sizeof *file->by_name, compare_names);
  for (size_t i = 1; i < file->count; i++)
    if (strcmp (file->by_name[i - 1]->name, file->by_name[i]->name) == 0)
      return tensor_error (err, file->by_name[i]->name, "the name appears twice in the header");
  /* sorted by begin, a tensor overlaps an earlier one iff it begins before their furthest end */
  const gc_st_tensor *furthest = &file->tensors[0];
  for (size_t i = 1; i < file->count; i++)
    {
      const gc_st_tensor *t = &file->tensors[i];
      const unsigned char *t_begin = t->data, *t_end = t_begin + t->nbytes;
      const unsigned char *f_end = (const unsigned char *) furthest->data + furthest->nbytes;
      if (t_begin < f_end)
        return tensor_error (err, t->name,
                             "data_offsets [%td, %td] overlap those of tensor '%.*s' [%td, %td]",
                             t_begin - file->data, t_end - file->data, NAME_SHOWN, furthest->name,
                             (const unsigned char *) furthest->data - file->data,
                             f_end - file->data);
      if (t_end > f_end)
        furthest = t;
    }
  return GC_OK;
}

static gc_status
parse_header (gc_safetensors *file, gc_error *err)
{
  const unsigned char *b = file->bytes;
  size_t size = file->size;
  if (looks_like_pytorch (b, size))
    return gc_error_set (err, GC_ERR_UNSUPPORTED,
                         "this is a PyTorch pickle checkpoint (.ckpt/.pt/.pth), not a safetensors "
                         "file; pickle files can run arbitrary code when loaded, so Gouache does "
                         "not open them. Convert it to .safetensors first");
  if (size == 0)
    return gc_error_set (err, GC_ERR_FORMAT, "the file is empty (0 bytes)");
  if (size < 8)
    return gc_error_set (err, GC_ERR_FORMAT,
                         "the file is only %zu bytes long, too short for a safetensors header "
                         "(truncated?)", size);
  uint64_t header_length = read_le64 (b);
  if (header_length > HEADER_LIMIT)
    return gc_error_set (err, GC_ERR_FORMAT,
                         "the header length %" PRIu64 " is above the 100 MiB limit; this is "
                         "not a safetensors file or it is damaged", header_length);
  if (header_length > size - 8)
    return gc_error_set (err, GC_ERR_FORMAT,
                         "the header length %" PRIu64 " runs past the end of the %zu-byte file "
                         "(truncated?)", header_length, size);
  file->data = b + 8 + header_length;
  file->data_size = size - 8 - (size_t) header_length;

  gc_status s = gc_json_parse (&file->header, (const char *) b + 8, (size_t) header_length, err);
  if (s != GC_OK)
    return gc_error_prefix (err, "header");
  const gc_json_value *root = gc_json_root (file->header);
  if (gc_json_type_of (root) != GC_JSON_OBJECT)
    return gc_error_set (err, GC_ERR_FORMAT, "the header is not a JSON object");

  size_t members = gc_json_length (root);
  file->tensors = calloc (members ? members : 1, sizeof *file->tensors);
  if (file->tensors == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory reading %zu header entries", members);
  for (size_t i = 0; i < members && s == GC_OK; i++)
    {
      size_t key_length;
      const char *key = gc_json_member_key (root, i, &key_length);
      const gc_json_value *value = gc_json_member_value (root, i);
      if (key_length == 12 && memcmp (key, "__metadata__", 12) == 0)
        s = parse_metadata (file, value, err);
      else
        s = parse_tensor (file, key, key_length, value, &file->tensors[file->count++], err);
    }
  if (s == GC_OK)
    s = index_tensors (file, err);
  return s;
}

gc_status
gc_safetensors_open_memory (gc_safetensors **out, const void *bytes, size_t size, gc_error *err)
{
  *out = NULL;
  gc_safetensors *file = calloc (1, sizeof *file);
  if (file == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  file->bytes = bytes;
  file->size = size;
  gc_status s = parse_header (file, err);
  if (s != GC_OK)
    {
      gc_safetensors_close (file);
      return s;
    }
  *out = file;
  return GC_OK;
}

gc_status
gc_safetensors_open (gc_safetensors **out, const char *path, gc_error *err)
{
  *out = NULL;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return gc_error_set (err, GC_ERR_IO, "cannot open '%s': %s", path, strerror (errno));
  struct stat st;
  if (fstat (fd, &st) != 0)
    {
      int e = errno;
      close (fd);
      return gc_error_set (err, GC_ERR_IO, "cannot read '%s': %s", path, strerror (e));
    }
  if (!S_ISREG (st.st_mode))
    {
      close (fd);
      return gc_error_set (err, GC_ERR_IO, "cannot open '%s': %s", path,
                           strerror (S_ISDIR (st.st_mode) ? EISDIR : EINVAL));
    }
  size_t size = (size_t) st.st_size;
  void *mapping = NULL;
  if (size > 0)
    {
      mapping = mmap (NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (mapping == MAP_FAILED)
        {
          int e = errno;
          close (fd);
          return gc_error_set (err, GC_ERR_IO, "cannot map '%s': %s", path, strerror (e));
        }
    }
  close (fd); /* the mapping keeps the file */
  gc_status s = gc_safetensors_open_memory (out, mapping, size, err);
  if (s != GC_OK)
    {
      if (mapping)
        munmap (mapping, size);
      return gc_error_prefix (err, "%s", path);
    }
  (*out)->mapping = mapping;
  return GC_OK;
}

void
gc_safetensors_close (gc_safetensors *file)
{
  if (file == NULL)
    return;
  if (file->mapping)
    munmap (file->mapping, file->size);
  gc_json_free (file->header);
  free (file->tensors);
  free (file->by_name);
  free (file->metadata);
  free (file);
}

size_t
gc_safetensors_count (const gc_safetensors *file)
{
  return file->count;
}

const gc_st_tensor *
gc_safetensors_at (const gc_safetensors *file, size_t index)
{
  return index < file->count ? &file->tensors[index] : NULL;
}

const gc_st_tensor *
gc_safetensors_find (const gc_safetensors *file, const char *name)
{
  size_t lo = 0, hi = file->count;
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      int c = strcmp (file->by_name[mid]->name, name);
      if (c == 0)
        return file->by_name[mid];
      if (c < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  return NULL;
}

const char *
gc_safetensors_metadata (const gc_safetensors *file, const char *key)
{
  for (size_t i = 0; i < file->metadata_count; i++)
    if (strcmp (file->metadata[2 * i], key) == 0)
      return file->metadata[2 * i + 1];
  return NULL;
}

size_t
gc_safetensors_metadata_count (const gc_safetensors *file)
{
  return file->metadata_count;
}

const char *
gc_safetensors_metadata_key (const gc_safetensors *file, size_t index)
{
  return index < file->metadata_count ? file->metadata[2 * index] : NULL;
}

const char *
gc_safetensors_metadata_value (const gc_safetensors *file, size_t index)
{
  return index < file->metadata_count ? file->metadata[2 * index + 1] : NULL;
}

size_t
gc_safetensors_file_size (const gc_safetensors *file)
{
  return file->size;
}

const void *
gc_safetensors_data_section (const gc_safetensors *file, size_t *size)
{
  if (size)
    *size = file->data_size;
  return file->data;
}

gc_weight
gc_st_tensor_weight (const gc_st_tensor *tensor)
{
  gc_weight w = { .dtype = tensor->dtype, .data = tensor->data, .ndim = tensor->ndim };
  memcpy (w.shape, tensor->shape, sizeof w.shape);
  return w;
}

/* ---- writing ---- */

enum { WRITE_BUFFER = 4 << 20 };

struct gc_safetensors_writer {
  char *path;
  char *temp_path;
  int fd;
  gc_status failed; /* sticky: once a write fails, everything after it fails the same way */
  gc_error failure;
  size_t *order;
  uint64_t total;   /* bytes of data expected */
  uint64_t written; /* bytes of data received so far */
  unsigned char *buffer;
  size_t buffered;
};

static uint64_t
entry_bytes (const gc_st_entry *e)
{
  uint64_t bytes = gc_dtype_size (e->dtype);
  for (int i = 0; i < e->ndim; i++)
    bytes *= (uint64_t) e->shape[i];
  return bytes;
}

static gc_status
check_entry (const gc_st_entry *e, gc_error *err)
{
  if (e->name == NULL)
    return gc_error_set (err, GC_ERR_INVALID, "a tensor has no name");
  if (strcmp (e->name, "__metadata__") == 0)
    return gc_error_set (err, GC_ERR_INVALID, "a tensor cannot be named __metadata__");
  if (gc_json_quote (NULL, e->name, strlen (e->name)) == SIZE_MAX)
    return gc_error_set (err, GC_ERR_INVALID, "tensor name '%.*s' is not valid UTF-8",
                         NAME_SHOWN, e->name);
  if (gc_dtype_name (e->dtype) == NULL)
    return gc_error_set (err, GC_ERR_INVALID, "tensor '%.*s' has an invalid dtype", NAME_SHOWN,
                         e->name);
  if (e->ndim < 0 || e->ndim > GC_MAX_DIMS)
    return gc_error_set (err, GC_ERR_INVALID, "tensor '%.*s' has %d dimensions", NAME_SHOWN,
                         e->name, e->ndim);
  uint64_t bytes = gc_dtype_size (e->dtype);
  for (int i = 0; i < e->ndim; i++)
    if (e->shape[i] < 0 || __builtin_mul_overflow (bytes, (uint64_t) e->shape[i], &bytes))
      return gc_error_set (err, GC_ERR_INVALID, "tensor '%.*s' has an invalid shape", NAME_SHOWN,
                           e->name);
  return GC_OK;
}

static int
compare_entry_names (const void *a, const void *b)
{
  const gc_st_entry *const *x = a, *const *y = b;
  return strcmp ((*x)->name, (*y)->name);
}

/* Fills order with the entry indices sorted by name (strcmp compares bytes as unsigned, which
 * for UTF-8 is the code point order Python sorts by). */
static bool
sort_by_name (size_t *order, const gc_st_entry *entries, size_t n)
{
  const gc_st_entry **sorted = malloc ((n ? n : 1) * sizeof *sorted);
  if (sorted == NULL)
    return false;
  for (size_t i = 0; i < n; i++)
    sorted[i] = &entries[i];
  qsort (sorted, n, sizeof *sorted, compare_entry_names);
  for (size_t i = 0; i < n; i++)
    order[i] = (size_t) (sorted[i] - entries);
  free (sorted);
  return true;
}

/* A growing string for the header. */
typedef struct {
  char *text;
  size_t length;
  size_t capacity;
} text_buffer;

static bool
text_reserve (text_buffer *t, size_t more)
{
  if (t->capacity - t->length >= more + 1)
    return true;
  size_t capacity = t->capacity ? t->capacity : 4096;
  while (capacity - t->length < more + 1)
    capacity *= 2;
  char *grown = realloc (t->text, capacity);
  if (grown == NULL)
    return false;
  t->text = grown;
  t->capacity = capacity;
  return true;
}

static bool
text_append (text_buffer *t, const char *s)
{
  size_t n = strlen (s);
  if (!text_reserve (t, n))
    return false;
  memcpy (t->text + t->length, s, n + 1);
  t->length += n;
  return true;
}

static bool
text_quote (text_buffer *t, const char *s)
{
  size_t n = gc_json_quote (NULL, s, strlen (s));
  if (!text_reserve (t, n))
    return false;
  gc_json_quote (t->text + t->length, s, strlen (s));
  t->length += n;
  t->text[t->length] = '\0';
  return true;
}

/* The header exactly as Python's json.dumps(header, separators=(",", ":")) writes it, padded
 * with spaces to a multiple of 8 bytes. */
static bool
build_header (text_buffer *t, const gc_st_entry *entries, const size_t *order, size_t n,
              const char *const *metadata, size_t n_metadata)
{
  bool ok = text_append (t, "{");
  uint64_t offset = 0;
  char number[32];
  for (size_t i = 0; i < n && ok; i++)
    {
      const gc_st_entry *e = &entries[order[i]];
      ok = (i == 0 || text_append (t, ",")) && text_quote (t, e->name)
           && text_append (t, ":{\"dtype\":\"") && text_append (t, gc_dtype_name (e->dtype))
           && text_append (t, "\",\"shape\":[");
      for (int d = 0; d < e->ndim && ok; d++)
        {
          snprintf (number, sizeof number, d ? ",%" PRId64 : "%" PRId64, e->shape[d]);
          ok = text_append (t, number);
        }
      uint64_t end = offset + entry_bytes (e);
      snprintf (number, sizeof number, "%" PRIu64, offset);
      ok = ok && text_append (t, "],\"data_offsets\":[") && text_append (t, number);
      snprintf (number, sizeof number, ",%" PRIu64 "]}", end);
      ok = ok && text_append (t, number);
      offset = end;
    }
  if (n_metadata > 0 && ok)
    {
      ok = text_append (t, n > 0 ? ",\"__metadata__\":{" : "\"__metadata__\":{");
      for (size_t i = 0; i < n_metadata && ok; i++)
        ok = (i == 0 || text_append (t, ",")) && text_quote (t, metadata[2 * i])
             && text_append (t, ":") && text_quote (t, metadata[2 * i + 1]);
      ok = ok && text_append (t, "}");
    }
  ok = ok && text_append (t, "}");
  while (ok && t->length % 8 != 0)
    ok = text_append (t, " ");
  return ok;
}

static gc_status
check_metadata (const char *const *metadata, size_t n_metadata, gc_error *err)
{
  for (size_t i = 0; i < n_metadata; i++)
    {
      const char *key = metadata[2 * i], *value = metadata[2 * i + 1];
      if (key == NULL || value == NULL)
        return gc_error_set (err, GC_ERR_INVALID, "metadata entry %zu is NULL", i);
      if (gc_json_quote (NULL, key, strlen (key)) == SIZE_MAX
          || gc_json_quote (NULL, value, strlen (value)) == SIZE_MAX)
        return gc_error_set (err, GC_ERR_INVALID, "metadata '%.*s' is not valid UTF-8",
                             NAME_SHOWN, key);
      for (size_t j = 0; j < i; j++)
        if (strcmp (metadata[2 * j], key) == 0)
          return gc_error_set (err, GC_ERR_INVALID, "metadata key '%.*s' is given twice",
                               NAME_SHOWN, key);
    }
  return GC_OK;
}

static gc_status
write_error (gc_safetensors_writer *w, int e)
{
  if (e == ENOSPC || e == EDQUOT || e == EFBIG)
    gc_error_set (&w->failure, GC_ERR_IO, "not enough disk space to write '%s' (%s)", w->path,
                  strerror (e));
  else
    gc_error_set (&w->failure, GC_ERR_IO, "cannot write '%s': %s", w->path, strerror (e));
  w->failed = GC_ERR_IO;
  /* give the space back at once: nothing can complete this file any more */
  unlink (w->temp_path);
  return GC_ERR_IO;
}

static gc_status
write_all (gc_safetensors_writer *w, const unsigned char *p, size_t size)
{
  while (size > 0)
    {
      ssize_t n = write (w->fd, p, size);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return write_error (w, n < 0 ? errno : ENOSPC);
      p += n;
      size -= (size_t) n;
    }
  return GC_OK;
}

static gc_status
flush_buffer (gc_safetensors_writer *w)
{
  gc_status s = write_all (w, w->buffer, w->buffered);
  w->buffered = 0;
  return s;
}

static gc_status
buffered_write (gc_safetensors_writer *w, const void *bytes, size_t size)
{
  const unsigned char *p = bytes;
  if (w->buffered + size > WRITE_BUFFER)
    {
      gc_status s = flush_buffer (w);
      if (s != GC_OK)
        return s;
    }
  if (size >= WRITE_BUFFER) /* large blocks go straight to the file */
    return write_all (w, p, size);
  memcpy (w->buffer + w->buffered, p, size);
  w->buffered += size;
  return GC_OK;
}

static void
writer_free (gc_safetensors_writer *w)
{
  free (w->path);
  free (w->temp_path);
  free (w->order);
  free (w->buffer);
  free (w);
}

/* Creates a new file beside path with a name no other writer uses; the mode honours the umask
 * as a plain open() of the destination would. */
static gc_status
create_temp (gc_safetensors_writer *w, gc_error *err)
{
  static _Atomic unsigned counter;
  size_t n = strlen (w->path) + 64;
  w->temp_path = malloc (n);
  if (w->temp_path == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  for (int attempt = 0; attempt < 100; attempt++)
    {
      snprintf (w->temp_path, n, "%s.tmp-%ld-%u-%ld", w->path, (long) getpid (), counter++,
                (long) time (NULL));
      w->fd = open (w->temp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (w->fd >= 0)
        return GC_OK;
      if (errno != EEXIST)
        break;
    }
  return gc_error_set (err, GC_ERR_IO, "cannot create '%s': %s", w->temp_path, strerror (errno));
}

gc_status
gc_safetensors_writer_begin (gc_safetensors_writer **out, const char *path,
                             const gc_st_entry *entries, size_t n_entries,
                             const char *const *metadata, size_t n_metadata, gc_error *err)
{
  *out = NULL;
  for (size_t i = 0; i < n_entries; i++)
    {
      gc_status s = check_entry (&entries[i], err);
      if (s != GC_OK)
        return s;
    }
  gc_status s = check_metadata (metadata, n_metadata, err);
  if (s != GC_OK)
    return s;
  gc_safetensors_writer *w = calloc (1, sizeof *w);
  if (w == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  w->fd = -1;
  w->path = strdup (path);
  w->order = malloc ((n_entries ? n_entries : 1) * sizeof *w->order);
  w->buffer = malloc (WRITE_BUFFER);
  if (w->path == NULL || w->order == NULL || w->buffer == NULL
      || !sort_by_name (w->order, entries, n_entries))
    {
      writer_free (w);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
    }
  for (size_t i = 1; i < n_entries; i++)
    if (strcmp (entries[w->order[i - 1]].name, entries[w->order[i]].name) == 0)
      {
        gc_error_set (err, GC_ERR_INVALID, "tensor name '%.*s' is given twice", NAME_SHOWN,
                      entries[w->order[i]].name);
        writer_free (w);
        return GC_ERR_INVALID;
      }
  for (size_t i = 0; i < n_entries; i++)
    if (__builtin_add_overflow (w->total, entry_bytes (&entries[i]), &w->total))
      {
        writer_free (w);
        return gc_error_set (err, GC_ERR_INVALID, "the tensors add up to more than 2^64 bytes");
      }

  text_buffer header = { 0 };
  if (!build_header (&header, entries, w->order, n_entries, metadata, n_metadata))
    {
      free (header.text);
      writer_free (w);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
    }
  s = create_temp (w, err);
  if (s == GC_OK)
    {
      unsigned char length[8];
      for (int i = 0; i < 8; i++)
        length[i] = (unsigned char) ((uint64_t) header.length >> (8 * i));
      s = buffered_write (w, length, 8);
      if (s == GC_OK)
        s = buffered_write (w, header.text, header.length);
      if (s != GC_OK)
        gc_error_set (err, s, "%s", w->failure.message);
    }
  free (header.text);
  if (s != GC_OK)
    {
      gc_safetensors_writer_abort (w);
      return s;
    }
  *out = w;
  return GC_OK;
}

const size_t *
gc_safetensors_writer_order (const gc_safetensors_writer *writer)
{
  return writer->order;
}

gc_status
gc_safetensors_writer_write (gc_safetensors_writer *writer, const void *bytes, size_t size,
                             gc_error *err)
{
  if (writer->failed != GC_OK)
    return gc_error_set (err, writer->failed, "%s", writer->failure.message);
  if (size == 0)
    return GC_OK;
  if (size > writer->total - writer->written)
    return gc_error_set (err, GC_ERR_INVALID,
                         "'%s': %zu bytes of tensor data given where %" PRIu64 " remain",
                         writer->path, size, writer->total - writer->written);
  gc_status s = buffered_write (writer, bytes, size);
  if (s != GC_OK)
    return gc_error_set (err, s, "%s", writer->failure.message);
  writer->written += size;
  return GC_OK;
}

static gc_status
finish_file (gc_safetensors_writer *w)
{
  if (w->written != w->total)
    return gc_error_set (&w->failure, GC_ERR_INVALID,
                         "'%s': only %" PRIu64 " of %" PRIu64 " bytes of tensor data were given",
                         w->path, w->written, w->total);
  gc_status s = flush_buffer (w);
  if (s != GC_OK)
    return s;
  /* the data must be on disk before the rename makes it the destination */
  if (fsync (w->fd) != 0 || close (w->fd) != 0)
    {
      w->fd = -1;
      return write_error (w, errno);
    }
  w->fd = -1;
  if (rename (w->temp_path, w->path) != 0)
    return gc_error_set (&w->failure, GC_ERR_IO, "cannot rename '%s' to '%s': %s", w->temp_path,
                         w->path, strerror (errno));
  return GC_OK;
}

gc_status
gc_safetensors_writer_finish (gc_safetensors_writer *writer, gc_error *err)
{
  gc_status s = writer->failed != GC_OK ? writer->failed : finish_file (writer);
  if (s == GC_OK)
    {
      writer_free (writer);
      return GC_OK;
    }
  gc_error_set (err, s, "%s", writer->failure.message);
  gc_safetensors_writer_abort (writer);
  return s;
}

void
gc_safetensors_writer_abort (gc_safetensors_writer *writer)
{
  if (writer == NULL)
    return;
  if (writer->fd >= 0)
    close (writer->fd);
  if (writer->temp_path)
    unlink (writer->temp_path);
  writer_free (writer);
}

gc_status
gc_safetensors_write (const char *path, const gc_st_entry *entries, const void *const *data,
                      size_t n_entries, const char *const *metadata, size_t n_metadata,
                      gc_error *err)
{
  gc_safetensors_writer *w;
  gc_status s = gc_safetensors_writer_begin (&w, path, entries, n_entries, metadata, n_metadata,
                                             err);
  if (s != GC_OK)
    return s;
  const size_t *order = gc_safetensors_writer_order (w);
  for (size_t i = 0; i < n_entries && s == GC_OK; i++)
    s = gc_safetensors_writer_write (w, data[order[i]], (size_t) entry_bytes (&entries[order[i]]),
                                     err);
  if (s != GC_OK)
    {
      gc_safetensors_writer_abort (w);
      return s;
    }
  return gc_safetensors_writer_finish (w, err);
}
