#include "gc-bake.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc-lora-names.h"
#include "gc-safetensors.h"
#include "gc-sha256.h"
#include "gc-styles-private.h"
#include "gc-svd.h"

enum { CONVERT_CHUNK = 1 << 20 };

/* One module of the baked LoRA, on its rows of the weight and bias (gc-lora-names.h):
 * ΔW = up[rows, rank] · down[rank, n] (rank 0 when the weight is not changed) and
 * Δb = diff_b[rows] (NULL when the bias is not changed), fp16. */
typedef struct {
  const gc_lora_target *target;
  const gc_st_tensor *weight;
  int64_t rank;
  uint16_t *up, *down, alpha, *diff_b;
} baked;

typedef struct {
  const gc_checkpoint *checkpoint;
  gc_lora_names *names;
  baked *list;
  size_t count;
  gc_arena scratch;
  double error2, norm2; /* summed over weights */
} bake;

/* Whether a style changes the target's rows of the tensor whose styles are patch. */
static bool
active (const gc_param_patch *patch, const gc_lora_target *t)
{
  for (size_t i = 0; patch && i < gc_param_patch_terms (patch); i++)
    {
      float c;
      const gc_lora_module *m = gc_param_patch_term (patch, i, &c);
      if (c != 0 && m->row == t->row)
        return true;
    }
  return false;
}

static int64_t
cols_of (const gc_st_tensor *t)
{
  int64_t n = 1;
  for (int i = 1; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

static uint16_t *
to_f16 (const float *src, int64_t count)
{
  uint16_t *out = malloc (sizeof (uint16_t) * (size_t) (count ? count : 1));
  if (out)
    gc_convert_from_f32 (out, GC_DTYPE_F16, src, (size_t) count);
  return out;
}

/* ------------------------------------------------------------------ exact: stacked factors */

static gc_status
stack_factors (const gc_param_patch *patch, baked *b, gc_error *err)
{
  int64_t out = b->target->rows, n = cols_of (b->weight), rank = 0;
  for (size_t i = 0; i < gc_param_patch_terms (patch); i++)
    {
      float c;
      const gc_lora_module *m = gc_param_patch_term (patch, i, &c);
      if (c == 0 || m->row != b->target->row)
        continue;
      if (m->kind != GC_DELTA_LOW_RANK || m->dora)
        return gc_error_set (err, GC_ERR_UNSUPPORTED,
                             "%s changes %s as a LoHa, LoKr, full difference or DoRA, whose "
                             "factors do not stack: bake the blend with a rank",
                             b->target->kohya, b->weight->name);
      rank += m->a.shape[1];
    }
  float *up = malloc (sizeof (float) * (size_t) (out * rank));
  float *down = malloc (sizeof (float) * (size_t) (rank * n));
  gc_status s = up && down ? GC_OK : gc_error_set (err, GC_ERR_NOMEM, "out of memory baking");
  int64_t at = 0;
  for (size_t i = 0; s == GC_OK && i < gc_param_patch_terms (patch); i++)
    {
      float c;
      const gc_lora_module *m = gc_param_patch_term (patch, i, &c);
      if (c == 0 || m->row != b->target->row)
        continue;
      int64_t r = m->a.shape[1];
      float *a = malloc (sizeof (float) * (size_t) (out * r));
      if (a == NULL)
        {
          s = gc_error_set (err, GC_ERR_NOMEM, "out of memory baking");
          break;
        }
      gc_weight_to_f32 (a, &m->a);
      gc_weight_to_f32 (down + at * n, &m->b);
      double coefficient = c * m->scale, root = sqrt (fabs (coefficient));
      for (int64_t o = 0; o < out; o++)
        for (int64_t j = 0; j < r; j++)
          up[o * rank + at + j] = (float) (copysign (root, coefficient) * a[o * r + j]);
      for (int64_t j = at * n; j < (at + r) * n; j++)
        down[j] = (float) (down[j] * root);
      at += r;
      free (a);
    }
  if (s == GC_OK)
    {
      b->rank = rank;
      b->up = to_f16 (up, out * rank);
      b->down = to_f16 (down, rank * n);
      if (b->up == NULL || b->down == NULL)
        s = gc_error_set (err, GC_ERR_NOMEM, "out of memory baking");
    }
  free (up);
  free (down);
  return s;
}

/* ------------------------------------------------------------------ rank R: SVD of the sum */

/* out[count] = (W₀ + Σ wᵢ·ΔWᵢ) − W₀ of the tensor t whose styles are patch. */
static bool
change_of (bake *bk, const gc_param_patch *patch, const gc_st_tensor *t, float *out,
           int64_t count)
{
  gc_weight w0 = gc_st_tensor_weight (t);
  float *base = malloc (sizeof (float) * (size_t) count);
  bool ok = base != NULL;
  if (ok)
    {
      gc_weight_to_f32 (base, &w0);
      memcpy (out, base, sizeof (float) * (size_t) count);
      ok = gc_param_patch_apply (&bk->scratch, patch, out);
    }
  for (int64_t i = 0; ok && i < count; i++)
    out[i] -= base[i];
  free (base);
  return ok;
}

static gc_status
compress (bake *bk, const gc_param_patch *patch, baked *b, int64_t rank, double *relative,
          gc_error *err)
{
  int64_t out = b->target->rows, n = cols_of (b->weight);
  int64_t k = rank < out ? rank : out;
  k = k < n ? k : n;
  float *d = malloc (sizeof (float) * (size_t) (b->weight->shape[0] * n));
  float *u = malloc (sizeof (float) * (size_t) (out * k)), *sv = malloc (sizeof (float) * k);
  float *vt = malloc (sizeof (float) * (size_t) (k * n));
  gc_status s = d && u && sv && vt ? GC_OK
                                    : gc_error_set (err, GC_ERR_NOMEM, "out of memory baking");
  if (s == GC_OK && !change_of (bk, patch, b->weight, d, b->weight->shape[0] * n))
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory baking");
  const float *rows = d ? d + b->target->row * n : NULL;
  double norm2 = 0, tail = 0;
  for (int64_t i = 0; s == GC_OK && i < out * n; i++)
    norm2 += (double) rows[i] * rows[i];
  if (s == GC_OK)
    s = gc_svd_truncated (u, sv, vt, &tail, rows, out, n, k, err);
  if (s == GC_OK)
    {
      for (int64_t i = 0; i < k; i++)
        {
          float root = sqrtf (sv[i]);
          for (int64_t o = 0; o < out; o++)
            u[o * k + i] *= root;
          for (int64_t c = 0; c < n; c++)
            vt[i * n + c] *= root;
        }
      b->rank = k;
      b->up = to_f16 (u, out * k);
      b->down = to_f16 (vt, k * n);
      if (b->up == NULL || b->down == NULL)
        s = gc_error_set (err, GC_ERR_NOMEM, "out of memory baking");
      bk->error2 += tail;
      bk->norm2 += norm2;
      *relative = norm2 > 0 ? sqrt (tail / norm2) : 0;
    }
  free (d), free (u), free (sv), free (vt);
  return s;
}

/* ------------------------------------------------------------------ biases */

/* The change of the target's rows of its bias, exact at any rank. */
static gc_status
bias_change (bake *bk, const gc_param_patch *patch, baked *b, gc_error *err)
{
  const gc_st_tensor *t = gc_checkpoint_find (bk->checkpoint, b->target->bias);
  float *d = malloc (sizeof (float) * (size_t) t->shape[0]);
  if (d && change_of (bk, patch, t, d, t->shape[0]))
    b->diff_b = to_f16 (d + b->target->row, b->target->rows);
  free (d);
  return b->diff_b ? GC_OK : gc_error_set (err, GC_ERR_NOMEM, "out of memory baking");
}

/* ------------------------------------------------------------------ writing */

static void
shape_factors (const baked *b, gc_st_entry *up, gc_st_entry *down)
{
  const gc_st_tensor *w = b->weight;
  up->dtype = down->dtype = GC_DTYPE_F16;
  up->ndim = down->ndim = w->ndim;
  up->shape[0] = b->target->rows;
  up->shape[1] = down->shape[0] = b->rank;
  for (int i = 1; i < w->ndim; i++)
    down->shape[i] = w->shape[i];
  for (int i = 2; i < w->ndim; i++)
    up->shape[i] = 1;
}

static int
compare_entries (const void *a, const void *b)
{
  return strcmp ((*(const gc_st_entry *const *) a)->name, (*(const gc_st_entry *const *) b)->name);
}

/* SHA-256 of the data section the writer will produce (tensors in name order). */
static void
data_hash (const gc_st_entry *entries, const void *const *data, size_t n, char hex[65])
{
  const gc_st_entry **sorted = malloc (sizeof *sorted * (n ? n : 1));
  gc_sha256 ctx;
  gc_sha256_init (&ctx);
  if (sorted)
    {
      for (size_t i = 0; i < n; i++)
        sorted[i] = &entries[i];
      qsort (sorted, n, sizeof *sorted, compare_entries);
      for (size_t i = 0; i < n; i++)
        {
          size_t index = (size_t) (sorted[i] - entries), bytes = 2;
          for (int d = 0; d < sorted[i]->ndim; d++)
            bytes *= (size_t) sorted[i]->shape[d];
          gc_sha256_update (&ctx, data[index], bytes);
        }
    }
  unsigned char digest[32];
  gc_sha256_final (&ctx, digest);
  gc_sha256_hex (digest, hex);
  free (sorted);
}

static const char *
base_model_version (gc_family family)
{
  switch (family)
    {
    case GC_FAMILY_SD1: return "sd_v1";
    case GC_FAMILY_SD2: return "sd_v2";
    case GC_FAMILY_SDXL: return "sdxl_base_v1-0";
    }
  return "sd_v1";
}

/* Names the tensor of module kohya with suffix part as entry used. */
static bool
name_entry (char **names, gc_st_entry *entries, size_t used, const char *kohya,
            const char *part)
{
  size_t len = strlen (kohya) + strlen (part) + 1;
  if ((names[used] = malloc (len)) == NULL)
    return false;
  snprintf (names[used], len, "%s%s", kohya, part);
  entries[used].name = names[used];
  return true;
}

static gc_status
write_lora (const bake *bk, const char *path, const char *const *metadata, size_t n_metadata,
            int64_t max_rank, gc_error *err)
{
  size_t n = 4 * bk->count, used = 0;
  gc_st_entry *entries = calloc (n, sizeof *entries);
  const void **data = calloc (n, sizeof *data);
  char **names = calloc (n, sizeof *names);
  const char **meta = calloc (2 * n_metadata + 12, sizeof *meta);
  bool ok = entries && data && names && meta;
  for (size_t i = 0; ok && i < bk->count; i++)
    {
      const baked *b = &bk->list[i];
      const char *kohya = b->target->kohya;
      if (b->rank > 0)
        {
          shape_factors (b, &entries[used], &entries[used + 1]);
          entries[used + 2].dtype = GC_DTYPE_F16;
          data[used] = b->up, data[used + 1] = b->down, data[used + 2] = &b->alpha;
          ok = name_entry (names, entries, used, kohya, ".lora_up.weight")
               && name_entry (names, entries, used + 1, kohya, ".lora_down.weight")
               && name_entry (names, entries, used + 2, kohya, ".alpha");
          used += 3;
        }
      if (ok && b->diff_b)
        {
          entries[used] = (gc_st_entry) { NULL, GC_DTYPE_F16, 1, { b->target->rows } };
          data[used] = b->diff_b;
          ok = name_entry (names, entries, used++, kohya, ".diff_b");
        }
    }
  gc_status s = ok ? GC_OK : gc_error_set (err, GC_ERR_NOMEM, "out of memory writing %s", path);
  if (s == GC_OK)
    {
      char dim[32], hash[65];
      gc_family family = gc_checkpoint_family (bk->checkpoint);
      snprintf (dim, sizeof dim, "%lld", (long long) max_rank);
      data_hash (entries, data, used, hash);
      for (size_t i = 0; i < 2 * n_metadata; i++)
        meta[i] = metadata[i];
      const char *computed[] = {
        "ss_network_module", "networks.lora", "ss_network_dim", dim, "ss_network_alpha", dim,
        "ss_base_model_version", base_model_version (family),
        "ss_v2", family == GC_FAMILY_SD2 ? "True" : "False", "sshs_model_hash", hash,
      };
      memcpy (meta + 2 * n_metadata, computed, sizeof computed);
      s = gc_safetensors_write (path, entries, data, used, meta, n_metadata + 6, err);
    }
  for (size_t i = 0; names && i < n; i++)
    free (names[i]);
  free (names), free (entries), free (data), free (meta);
  return s;
}

/* The module of target, when a style changes its rows of the weight or of the bias. */
static gc_status
bake_module (bake *bk, const gc_lora_target *t, int64_t rank, gc_bake_report *report,
             gc_error *err)
{
  const gc_checkpoint *c = bk->checkpoint;
  const gc_param_patch *weight = *gc_checkpoint_patch_slot (c, t->weight);
  const gc_param_patch *bias = t->bias ? *gc_checkpoint_patch_slot (c, t->bias) : NULL;
  if (!active (weight, t) && !active (bias, t))
    return GC_OK;
  baked *b = &bk->list[bk->count++];
  b->target = t;
  b->weight = gc_checkpoint_find (c, t->weight);
  double relative = 0;
  gc_status s = GC_OK;
  if (active (weight, t))
    s = rank == 0 ? stack_factors (weight, b, err)
                  : compress (bk, weight, b, rank, &relative, err);
  if (s == GC_OK && active (bias, t))
    s = bias_change (bk, bias, b, err);
  b->alpha = gc_f32_to_f16 ((float) b->rank);
  report->rank = b->rank > report->rank ? b->rank : report->rank;
  if (relative > report->worst_error)
    {
      report->worst_error = relative;
      snprintf (report->worst_weight, sizeof report->worst_weight, "%s", t->weight);
    }
  return s;
}

gc_status
gc_bake_lora (const gc_checkpoint *c, int64_t rank, const char *path,
              const char *const *metadata, size_t n_metadata, gc_bake_report *report,
              gc_error *err)
{
  memset (report, 0, sizeof *report);
  if (rank < 0)
    return gc_error_set (err, GC_ERR_INVALID, "a rank must be positive (got %lld)",
                         (long long) rank);
  bake bk = { .checkpoint = c };
  gc_arena_init (&bk.scratch, 0);
  gc_status s = gc_lora_names_build (&bk.names, c, err);
  size_t count = s == GC_OK ? gc_lora_names_count (bk.names) : 0;
  if (s == GC_OK && (bk.list = calloc (count ? count : 1, sizeof *bk.list)) == NULL)
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory baking");
  for (size_t i = 0; s == GC_OK && i < count; i++)
    s = bake_module (&bk, gc_lora_names_at (bk.names, i), rank, report, err);
  if (s == GC_OK && bk.count == 0)
    s = gc_error_set (err, GC_ERR_INVALID, "no style is active: there is nothing to bake");
  if (s == GC_OK)
    s = write_lora (&bk, path, metadata, n_metadata, report->rank, err);
  report->weights = bk.count;
  report->relative_error = bk.norm2 > 0 ? sqrt (bk.error2 / bk.norm2) : 0;
  for (size_t i = 0; i < bk.count; i++)
    free (bk.list[i].up), free (bk.list[i].down), free (bk.list[i].diff_b);
  free (bk.list);
  gc_lora_names_free (bk.names);
  gc_arena_free (&bk.scratch);
  return s;
}

/* ------------------------------------------------------------------ whole checkpoint */

static bool
model_weight (const char *key, const gc_st_tensor *t)
{
  static const char *const roots[] = { "model.diffusion_model.", "first_stage_model.",
                                       "cond_stage_model.", "conditioner." };
  for (size_t i = 0; i < sizeof roots / sizeof *roots; i++)
    if (strncmp (key, roots[i], strlen (roots[i])) == 0)
      return gc_dtype_is_float (t->dtype);
  return false;
}

/* Writes count values of src (any float dtype, or float32 when src_f32) as fp16, in chunks. */
static gc_status
write_f16 (gc_safetensors_writer *writer, const void *src, gc_dtype dtype, int64_t count,
           float *f32, uint16_t *f16, gc_error *err)
{
  size_t element = gc_dtype_size (dtype);
  for (int64_t at = 0; at < count; at += CONVERT_CHUNK)
    {
      size_t n = (size_t) (count - at < CONVERT_CHUNK ? count - at : CONVERT_CHUNK);
      gc_convert_to_f32 (f32, (const char *) src + (size_t) at * element, dtype, n);
      gc_convert_from_f32 (f16, GC_DTYPE_F16, f32, n);
      gc_status s = gc_safetensors_writer_write (writer, f16, n * sizeof *f16, err);
      if (s != GC_OK)
        return s;
    }
  return GC_OK;
}

static gc_status
write_tensor (gc_safetensors_writer *writer, const gc_checkpoint *c, size_t index,
              const gc_st_entry *entry, gc_arena *scratch, float *f32, uint16_t *f16,
              gc_error *err)
{
  const gc_st_tensor *t = gc_checkpoint_tensor (c, index);
  const gc_param_patch *patch = *gc_checkpoint_patch_slot (c, gc_checkpoint_key (c, index));
  if (patch == NULL && entry->dtype == t->dtype)
    return gc_safetensors_writer_write (writer, t->data, t->nbytes, err);
  if (patch == NULL)
    return write_f16 (writer, t->data, t->dtype, (int64_t) (t->nbytes / gc_dtype_size (t->dtype)),
                      f32, f16, err);
  gc_weight w0 = gc_st_tensor_weight (t);
  int64_t count = gc_weight_numel (&w0);
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  float *w = gc_arena_floats (scratch, (size_t) count);
  gc_status s = GC_OK;
  if (w)
    gc_weight_to_f32 (w, &w0);
  if (w == NULL || !gc_param_patch_apply (scratch, patch, w))
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory merging %s", t->name);
  else
    s = write_f16 (writer, w, GC_DTYPE_F32, count, f32, f16, err);
  gc_arena_reset (scratch, mark);
  return s;
}

/* An OpenCLIP encoder read from a diffusers folder has Hugging Face names (separate q, k, v)
 * under its LDM root: no single-file checkpoint stores it so, and no tool would load one. */
static bool
open_clip_in_hf_names (const gc_checkpoint *c)
{
  return gc_checkpoint_find (c, "cond_stage_model.model.text_model.embeddings."
                                "token_embedding.weight")
         || gc_checkpoint_find (c, "conditioner.embedders.1.model.text_model.embeddings."
                                   "token_embedding.weight");
}

gc_status
gc_bake_checkpoint (const gc_checkpoint *c, const char *path, const char *const *metadata,
                    size_t n_metadata, gc_error *err)
{
  if (open_clip_in_hf_names (c))
    return gc_error_set (err, GC_ERR_UNSUPPORTED,
                         "cannot write %s: this %s model is a diffusers folder, and its OpenCLIP "
                         "text encoder has no single-file form here; bake the blend as a LoRA "
                         "instead",
                         path, gc_family_name (gc_checkpoint_family (c)));
  size_t count = gc_checkpoint_count (c);
  gc_st_entry *entries = calloc (count ? count : 1, sizeof *entries);
  float *f32 = malloc (sizeof (float) * CONVERT_CHUNK);
  uint16_t *f16 = malloc (sizeof (uint16_t) * CONVERT_CHUNK);
  if (entries == NULL || f32 == NULL || f16 == NULL)
    {
      free (entries), free (f32), free (f16);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory writing %s", path);
    }
  for (size_t i = 0; i < count; i++)
    {
      const gc_st_tensor *t = gc_checkpoint_tensor (c, i);
      const char *key = gc_checkpoint_key (c, i);
      entries[i] = (gc_st_entry) { key, model_weight (key, t) ? GC_DTYPE_F16 : t->dtype, t->ndim };
      memcpy (entries[i].shape, t->shape, sizeof t->shape);
    }
  gc_safetensors_writer *writer;
  gc_arena scratch;
  gc_arena_init (&scratch, 0);
  gc_status s = gc_safetensors_writer_begin (&writer, path, entries, count, metadata, n_metadata,
                                             err);
  if (s == GC_OK)
    {
      const size_t *order = gc_safetensors_writer_order (writer);
      for (size_t k = 0; s == GC_OK && k < count; k++)
        s = write_tensor (writer, c, order[k], &entries[order[k]], &scratch, f32, f16, err);
      if (s == GC_OK)
        s = gc_safetensors_writer_finish (writer, err);
      else
        gc_safetensors_writer_abort (writer);
    }
  gc_arena_free (&scratch);
  free (entries), free (f32), free (f16);
  return s;
}
