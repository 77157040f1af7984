#include "gc-random-checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gc-dtype.h"
#include "gc-json.h"
#include "gc-safetensors.h"
#include "gc-sha256.h"
#include "gc-threads.h"

_Static_assert (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
                "tensor bytes are written in host order, which must be little-endian");

enum {
  KEYS_LIMIT = 256 << 20,
  CHUNK = 1 << 22,     /* elements generated per write: large enough to bypass the write buffer */
  GRAIN = 1 << 15,     /* elements per parallel slice */
  SCHEDULE_STEPS = 1000,
};

typedef enum { VALUE_NORM_WEIGHT, VALUE_BIAS, VALUE_EMBEDDING, VALUE_FAN_IN } value_kind;

/* What one tensor holds; values are computed the same way for every element. */
typedef struct {
  gc_dtype dtype;
  uint64_t seed;
  value_kind kind;
  double scale;            /* √(3 / fan_in) for VALUE_FAN_IN */
  const double *schedule;  /* the 1000 values of a schedule buffer, or NULL */
  bool arange;             /* integer tensors count up from 0 */
} tensor_rule;

static uint64_t
name_seed (const char *name)
{
  gc_sha256 ctx;
  unsigned char digest[32];
  gc_sha256_init (&ctx);
  gc_sha256_update (&ctx, name, strlen (name));
  gc_sha256_final (&ctx, digest);
  uint64_t seed = 0;
  for (int i = 7; i >= 0; i--)
    seed = seed << 8 | digest[i];
  return seed;
}

static double
uniform_from_seed (uint64_t seed, uint64_t index)
{
  uint64_t z = seed + index + 0x9e3779b97f4a7c15u;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  z = z ^ (z >> 31);
  /* (z >> 40) has 24 bits, so this is exact: k·2⁻²³ − 1 (converted as a signed integer, which
   * is one instruction, unlike an unsigned 64-bit one) */
  return (double) (int64_t) (z >> 40) * 0x1p-23 - 1.0;
}

double
gc_random_checkpoint_uniform (const char *name, uint64_t index)
{
  return uniform_from_seed (name_seed (name), index);
}

/* sdrand.py's is_norm_weight: the module is the dotted component before ".weight". */
static bool
is_norm_weight (const char *name)
{
  size_t n = strlen (name);
  static const char suffix[] = ".weight";
  size_t suffix_length = sizeof suffix - 1;
  if (n < suffix_length || strcmp (name + n - suffix_length, suffix) != 0)
    return false;
  size_t module_end = n - suffix_length;
  size_t module_begin = module_end;
  while (module_begin > 0 && name[module_begin - 1] != '.')
    module_begin--;
  size_t module_length = module_end - module_begin;
  const char *module = name + module_begin;
  if (module_length >= 3 && memcmp (module, "ln_", 3) == 0)
    return true;
  /* "layer_norm" contains "norm", so one search covers both of sdrand.py's other tests */
  for (size_t i = 0; i + 4 <= module_length; i++)
    if (memcmp (module + i, "norm", 4) == 0)
      return true;
  return false;
}

static bool
ends_with (const char *s, const char *suffix)
{
  size_t n = strlen (s), m = strlen (suffix);
  return n >= m && strcmp (s + n - m, suffix) == 0;
}

static value_kind
classify (const char *name, int ndim, double *scale, const int64_t *shape)
{
  *scale = 1.0;
  if (ndim <= 1 && is_norm_weight (name))
    return VALUE_NORM_WEIGHT;
  if (ndim == 1 && ends_with (name, ".bias"))
    return VALUE_BIAS;
  if (strstr (name, "token_embedding") || strstr (name, "position_embedding")
      || strstr (name, "positional_embedding"))
    return VALUE_EMBEDDING;
  int64_t fan_in = 1;
  for (int i = 1; i < ndim; i++)
    fan_in *= shape[i];
  if (fan_in > 0)
    *scale = sqrt (3.0 / (double) fan_in);
  return VALUE_FAN_IN;
}

static double
value_of (const tensor_rule *rule, double u)
{
  /* separate products and sums, as numpy computes them (no fused multiply-add) */
  double scaled;
  switch (rule->kind)
    {
    case VALUE_NORM_WEIGHT:
      scaled = 0.1 * u;
      return 1.0 + scaled;
    case VALUE_BIAS:
      return 0.05 * u;
    case VALUE_EMBEDDING:
      return 0.5 * u;
    case VALUE_FAN_IN:
      break;
    }
  return u * rule->scale;
}

/* double → half, rounding once to nearest even (as numpy's astype(float16)); the same result as
 * gc_f64_to_f16, but in branch-free integer arithmetic: a 2 GB checkpoint converts a billion
 * random values, whose rounding direction no branch predictor can guess. */
static uint16_t
f64_to_f16_fast (double d)
{
  uint64_t bits;
  memcpy (&bits, &d, sizeof bits);
  uint16_t sign = (uint16_t) (bits >> 48 & 0x8000);
  int exponent = (int) (bits >> 52 & 0x7ff);
  if (exponent == 0x7ff)
    return sign | ((bits << 12) ? 0x7e00 : 0x7c00);
  int e = exponent - 1023;
  uint64_t m = (bits & ((UINT64_C (1) << 52) - 1)) | UINT64_C (1) << 52;
  /* keep 11 significant bits for normal halves, or whole units of 2⁻²⁴ for subnormal ones;
   * a shift of 63 leaves nothing of m (< 2⁵³), which is the underflow to zero */
  int shift = e >= -14 ? 42 : 28 - e;
  shift = shift > 63 ? 63 : shift;
  uint64_t r = (m + (UINT64_C (1) << (shift - 1)) - 1 + (m >> shift & 1)) >> shift;
  /* r includes the implicit bit, so a carry out of the mantissa moves up the exponent */
  int64_t h = (e >= -14 ? (int64_t) (e + 14) << 10 : 0) + (int64_t) r;
  return sign | (uint16_t) (h >= 0x7c00 ? 0x7c00 : h);
}

static uint16_t
f64_to_bf16 (double d)
{
  /* sdrand.py goes through float32 and rounds its bits to nearest even */
  float f = (float) d;
  uint32_t bits;
  memcpy (&bits, &f, sizeof bits);
  return (uint16_t) ((bits + 0x7fff + (bits >> 16 & 1)) >> 16);
}

typedef struct {
  const tensor_rule *rule;
  uint64_t first; /* element index of buffer[0] */
  unsigned char *buffer;
} chunk_job;

static inline double
element_value (const tensor_rule *rule, uint64_t i)
{
  return rule->schedule ? rule->schedule[i] : value_of (rule, uniform_from_seed (rule->seed, i));
}

/* One loop per dtype, so that the conversion is not chosen again for every element. */
static void
fill_range (void *ctx, int64_t begin, int64_t end)
{
  const chunk_job *job = ctx;
  const tensor_rule *rule = job->rule;
  uint64_t first = job->first;
  switch (rule->dtype)
    {
    case GC_DTYPE_I64:
      for (int64_t j = begin; j < end; j++)
        ((int64_t *) job->buffer)[j] = (int64_t) (first + (uint64_t) j);
      break;
    case GC_DTYPE_I32:
      for (int64_t j = begin; j < end; j++)
        ((int32_t *) job->buffer)[j] = (int32_t) (first + (uint64_t) j);
      break;
    case GC_DTYPE_F16:
      for (int64_t j = begin; j < end; j++)
        ((uint16_t *) job->buffer)[j] = f64_to_f16_fast (element_value (rule, first + (uint64_t) j));
      break;
    case GC_DTYPE_BF16:
      for (int64_t j = begin; j < end; j++)
        ((uint16_t *) job->buffer)[j] = f64_to_bf16 (element_value (rule, first + (uint64_t) j));
      break;
    case GC_DTYPE_F32:
      for (int64_t j = begin; j < end; j++)
        ((float *) job->buffer)[j] = (float) element_value (rule, first + (uint64_t) j);
      break;
    default:
      for (int64_t j = begin; j < end; j++)
        ((double *) job->buffer)[j] = element_value (rule, first + (uint64_t) j);
      break;
    }
}

/* The scaled-linear DDPM schedule in float64, as numpy computes it:
 * linspace(√0.00085, √0.012, 1000)² (start + i·step, the last element exactly stop),
 * alphas_cumprod = cumprod(1 − betas), alphas_cumprod_prev = [1, alphas_cumprod[:-1]]. */
typedef struct {
  double betas[SCHEDULE_STEPS];
  double alphas_cumprod[SCHEDULE_STEPS];
  double alphas_cumprod_prev[SCHEDULE_STEPS];
} schedule;

static void
make_schedule (schedule *s)
{
  /* Python's 0.00085 ** 0.5 is pow(), which may differ from sqrt() in the last bit */
  double start = pow (0.00085, 0.5), stop = pow (0.012, 0.5);
  double step = (stop - start) / (SCHEDULE_STEPS - 1);
  double product = 1.0;
  for (int i = 0; i < SCHEDULE_STEPS; i++)
    {
      double x = (double) i * step;
      x = x + start;
      if (i == SCHEDULE_STEPS - 1)
        x = stop;
      s->betas[i] = x * x;
      s->alphas_cumprod_prev[i] = product;
      product = product * (1.0 - s->betas[i]);
      s->alphas_cumprod[i] = product;
    }
}

static const double *
schedule_values (const schedule *s, const char *name)
{
  if (strcmp (name, "betas") == 0)
    return s->betas;
  if (strcmp (name, "alphas_cumprod") == 0)
    return s->alphas_cumprod;
  if (strcmp (name, "alphas_cumprod_prev") == 0)
    return s->alphas_cumprod_prev;
  return NULL;
}

static uint64_t
entry_numel (const gc_st_entry *e)
{
  uint64_t n = 1;
  for (int i = 0; i < e->ndim; i++)
    n *= (uint64_t) e->shape[i];
  return n;
}

static gc_status
make_rule (tensor_rule *rule, const gc_st_entry *e, const schedule *s, gc_error *err)
{
  *rule = (tensor_rule) { .dtype = e->dtype };
  rule->schedule = schedule_values (s, e->name);
  if (rule->schedule)
    {
      if (!gc_dtype_is_float (e->dtype) || entry_numel (e) != SCHEDULE_STEPS)
        return gc_error_set (err, GC_ERR_INVALID,
                             "'%s' holds the %d-step schedule: it needs a float dtype and %d "
                             "elements", e->name, SCHEDULE_STEPS, SCHEDULE_STEPS);
      return GC_OK;
    }
  rule->arange = e->dtype == GC_DTYPE_I64 || e->dtype == GC_DTYPE_I32;
  rule->seed = name_seed (e->name);
  rule->kind = classify (e->name, e->ndim, &rule->scale, e->shape);
  return GC_OK;
}

static gc_status
write_tensor (gc_safetensors_writer *w, const gc_st_entry *e, const schedule *s,
              unsigned char *buffer, gc_error *err)
{
  tensor_rule rule;
  gc_status status = make_rule (&rule, e, s, err);
  uint64_t numel = entry_numel (e);
  size_t element = gc_dtype_size (e->dtype);
  for (uint64_t first = 0; first < numel && status == GC_OK; first += CHUNK)
    {
      uint64_t n = numel - first < CHUNK ? numel - first : CHUNK;
      chunk_job job = { .rule = &rule, .first = first, .buffer = buffer };
      gc_parallel_for ((int64_t) n, GRAIN, fill_range, &job);
      status = gc_safetensors_writer_write (w, buffer, (size_t) n * element, err);
    }
  return status;
}

static gc_status
read_file (const char *path, char **out, size_t *size, gc_error *err)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return gc_error_set (err, GC_ERR_IO, "cannot open '%s': %s", path, strerror (errno));
  struct stat st;
  const char *problem = NULL;
  if (fstat (fd, &st) != 0)
    problem = strerror (errno);
  else if (!S_ISREG (st.st_mode))
    problem = strerror (S_ISDIR (st.st_mode) ? EISDIR : EINVAL);
  else if (st.st_size > KEYS_LIMIT)
    problem = "the file is too large for a key list";
  if (problem)
    {
      close (fd);
      return gc_error_set (err, GC_ERR_IO, "cannot read '%s': %s", path, problem);
    }
  char *text = malloc ((size_t) st.st_size + 1);
  if (text == NULL)
    {
      close (fd);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory reading '%s'", path);
    }
  size_t done = 0;
  while (done < (size_t) st.st_size)
    {
      ssize_t n = read (fd, text + done, (size_t) st.st_size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int e = n < 0 ? errno : EIO;
          free (text);
          close (fd);
          return gc_error_set (err, GC_ERR_IO, "cannot read '%s': %s", path, strerror (e));
        }
      done += (size_t) n;
    }
  close (fd);
  *out = text;
  *size = done;
  return GC_OK;
}

/* One [name, [shape...], dtype] row of the key list. */
static gc_status
parse_key (const gc_json_value *row, size_t index, gc_st_entry *e, gc_error *err)
{
  const gc_json_value *name = gc_json_array_at (row, 0);
  const gc_json_value *shape = gc_json_array_at (row, 1);
  const gc_json_value *dtype = gc_json_array_at (row, 2);
  size_t name_length, dtype_length;
  if (gc_json_length (row) != 3 || gc_json_type_of (shape) != GC_JSON_ARRAY
      || (e->name = gc_json_string (name, &name_length)) == NULL
      || strlen (e->name) != name_length
      || gc_json_string (dtype, &dtype_length) == NULL)
    return gc_error_set (err, GC_ERR_FORMAT, "tensors[%zu] is not [name, [shape...], dtype]",
                         index);
  const char *d = gc_json_string (dtype, NULL);
  if (gc_dtype_parse (d, dtype_length, &e->dtype) != 0
      || !(gc_dtype_is_float (e->dtype) || e->dtype == GC_DTYPE_I64 || e->dtype == GC_DTYPE_I32))
    return gc_error_set (err, GC_ERR_UNSUPPORTED,
                         "tensor '%s': dtype '%s' is not one of F16, BF16, F32, F64, I64, I32",
                         e->name, d);
  if (gc_json_length (shape) > GC_MAX_DIMS)
    return gc_error_set (err, GC_ERR_FORMAT, "tensor '%s' has more than %d dimensions", e->name,
                         GC_MAX_DIMS);
  e->ndim = (int) gc_json_length (shape);
  for (int i = 0; i < e->ndim; i++)
    if (!gc_json_int64 (gc_json_array_at (shape, (size_t) i), &e->shape[i]) || e->shape[i] < 0)
      return gc_error_set (err, GC_ERR_FORMAT, "tensor '%s': shape is not a list of sizes",
                           e->name);
  return GC_OK;
}

/* Python's str() of a JSON value, as sdrand.py stores metadata; *owned is set when the text
 * was allocated. */
static gc_status
metadata_text (const gc_json_value *v, const char *key, const char **text, char **owned,
               gc_error *err)
{
  *owned = NULL;
  switch (gc_json_type_of (v))
    {
    case GC_JSON_STRING:
      *text = gc_json_string (v, NULL);
      return GC_OK;
    case GC_JSON_TRUE:
      *text = "True";
      return GC_OK;
    case GC_JSON_FALSE:
      *text = "False";
      return GC_OK;
    case GC_JSON_NULL:
      *text = "None";
      return GC_OK;
    case GC_JSON_NUMBER:
      {
        int64_t i;
        uint64_t u;
        char number[24];
        if (gc_json_int64 (v, &i))
          snprintf (number, sizeof number, "%" PRId64, i);
        else if (gc_json_uint64 (v, &u))
          snprintf (number, sizeof number, "%" PRIu64, u);
        else
          break;
        *owned = strdup (number);
        *text = *owned;
        return *owned ? GC_OK : gc_error_set (err, GC_ERR_NOMEM, "out of memory");
      }
    default:
      break;
    }
  return gc_error_set (err, GC_ERR_UNSUPPORTED,
                       "metadata '%s' must be a string, an integer, true, false or null", key);
}

typedef struct {
  gc_json *doc;
  gc_st_entry *entries;
  size_t n_entries;
  const char **metadata; /* key, value pairs */
  char **owned;          /* metadata texts made here */
  size_t n_metadata;
} key_list;

static void
key_list_free (key_list *k)
{
  for (size_t i = 0; i < k->n_metadata; i++)
    free (k->owned[i]);
  free (k->owned);
  free (k->metadata);
  free (k->entries);
  gc_json_free (k->doc);
}

static gc_status
parse_key_list (key_list *k, const char *text, size_t size, gc_error *err)
{
  gc_status s = gc_json_parse (&k->doc, text, size, err);
  if (s != GC_OK)
    return s;
  const gc_json_value *root = gc_json_root (k->doc);
  const gc_json_value *tensors = gc_json_get (root, "tensors");
  const gc_json_value *metadata = gc_json_get (root, "metadata");
  if (tensors == NULL || gc_json_type_of (tensors) != GC_JSON_ARRAY
      || (metadata && gc_json_type_of (metadata) != GC_JSON_OBJECT))
    return gc_error_set (err, GC_ERR_FORMAT,
                         "expected {\"tensors\": [[name, [shape...], dtype], ...], "
                         "\"metadata\": {...}}");
  size_t n = gc_json_length (tensors);
  size_t m = metadata ? gc_json_length (metadata) : 0;
  k->entries = calloc (n ? n : 1, sizeof *k->entries);
  k->metadata = calloc (2 * m + 1, sizeof *k->metadata);
  k->owned = calloc (m + 1, sizeof *k->owned);
  if (k->entries == NULL || k->metadata == NULL || k->owned == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    {
      const gc_json_value *row = gc_json_array_at (tensors, i);
      if (gc_json_type_of (row) != GC_JSON_ARRAY)
        return gc_error_set (err, GC_ERR_FORMAT, "tensors[%zu] is not a list", i);
      s = parse_key (row, i, &k->entries[i], err);
      if (s != GC_OK)
        return s;
      k->n_entries = i + 1;
    }
  for (size_t i = 0; i < m; i++)
    {
      k->metadata[2 * i] = gc_json_member_key (metadata, i, NULL);
      k->n_metadata = i + 1;
      s = metadata_text (gc_json_member_value (metadata, i), k->metadata[2 * i],
                         &k->metadata[2 * i + 1], &k->owned[i], err);
      if (s != GC_OK)
        return s;
    }
  return GC_OK;
}

gc_status
gc_random_checkpoint_write (const char *keys_json_path, const char *out_path, gc_error *err)
{
  char *text = NULL;
  size_t size = 0;
  gc_status s = read_file (keys_json_path, &text, &size, err);
  if (s != GC_OK)
    return s;
  key_list keys = { 0 };
  s = parse_key_list (&keys, text, size, err);
  free (text);
  if (s != GC_OK)
    {
      key_list_free (&keys);
      return gc_error_prefix (err, "%s", keys_json_path);
    }
  schedule *sched = malloc (sizeof *sched);
  unsigned char *buffer = malloc ((size_t) CHUNK * sizeof (double));
  gc_safetensors_writer *w = NULL;
  if (sched == NULL || buffer == NULL)
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  else
    {
      make_schedule (sched);
      s = gc_safetensors_writer_begin (&w, out_path, keys.entries, keys.n_entries, keys.metadata,
                                       keys.n_metadata, err);
    }
  if (s == GC_OK)
    {
      const size_t *order = gc_safetensors_writer_order (w);
      for (size_t i = 0; i < keys.n_entries && s == GC_OK; i++)
        s = write_tensor (w, &keys.entries[order[i]], sched, buffer, err);
      if (s == GC_OK)
        s = gc_safetensors_writer_finish (w, err);
      else
        gc_safetensors_writer_abort (w);
    }
  free (buffer);
  free (sched);
  key_list_free (&keys);
  return s;
}
