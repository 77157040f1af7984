/* The style list: each weight a style changes gets a patch in its checkpoint slot (a list of
 * terms, one per style module), which gc_param_f32 applies where the weight is used and keeps,
 * in the file's precision, until a style on it changes. */
#include "gc-styles.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "gc-styles-private.h"
#include "gc-threads.h"

typedef struct {
  gc_lora *lora;
  double weight, text_weight;
} style;

typedef struct {
  const gc_lora_module *module;
  const style *style; /* stable: styles are allocated one by one */
} term;

struct gc_param_patch {
  term *terms;
  size_t count, capacity;
  const gc_checkpoint *checkpoint;
  void *kept;          /* W₀ + Σ wᵢ·ΔWᵢ as last merged, in kept_dtype; NULL until merged */
  size_t kept_bytes;
  gc_dtype kept_dtype;
  bool fresh;          /* kept matches the current weights */
};

struct gc_styles {
  const gc_checkpoint *checkpoint;
  style **list;
  size_t count;
};

/* ------------------------------------------------------------------ applying */

static float
coefficient_of (const term *t)
{
  return (float) (t->module->text ? t->style->text_weight : t->style->weight);
}

/* A plain low-rank term, folded into one product with the others on its rows. */
static bool
stacks (const term *t)
{
  return t->module->kind == GC_DELTA_LOW_RANK && !t->module->dora && coefficient_of (t) != 0;
}

bool
gc_param_patch_apply (gc_arena *scratch, const gc_param_patch *patch, float *w)
{
  gc_arena_mark_t mark = gc_arena_mark (scratch);
  bool ok = true;
  /* DoRA terms need W₀, which w holds until the first term is added (on the rows they change) */
  size_t extent = 0;
  for (size_t i = 0; i < patch->count; i++)
    {
      const gc_lora_module *m = patch->terms[i].module;
      size_t end = (size_t) ((m->row + m->out) * m->n);
      if (m->dora && coefficient_of (&patch->terms[i]) != 0 && end > extent)
        extent = end;
    }
  float *w0 = extent ? gc_arena_floats (scratch, extent) : NULL;
  if (extent)
    ok = w0 != NULL;
  if (w0)
    memcpy (w0, w, extent * sizeof (float));
  for (size_t i = 0; i < patch->count && ok; i++)
    {
      const term *t = &patch->terms[i];
      const gc_lora_module *m = t->module;
      float c = coefficient_of (t);
      if (c == 0 || stacks (t))
        continue;
      float *rows = w + m->row * m->n;
      ok = m->dora ? gc_lora_module_add_dora (scratch, m, c, w0 + m->row * m->n, rows)
                   : gc_lora_module_add_delta (scratch, m, c, rows);
    }
  /* plain low-rank terms on the same rows in one product */
  const gc_lora_module **stacked = gc_arena_alloc (scratch, patch->count * sizeof *stacked);
  float *coefficients = gc_arena_floats (scratch, patch->count);
  ok = ok && stacked && coefficients;
  for (size_t i = 0; i < patch->count && ok; i++)
    {
      const gc_lora_module *m = patch->terms[i].module;
      bool first = stacks (&patch->terms[i]);
      for (size_t k = 0; k < i && first; k++)
        first = !stacks (&patch->terms[k]) || patch->terms[k].module->row != m->row;
      if (!first)
        continue;
      size_t n_stacked = 0;
      for (size_t k = i; k < patch->count; k++)
        if (stacks (&patch->terms[k]) && patch->terms[k].module->row == m->row)
          {
            stacked[n_stacked] = patch->terms[k].module;
            coefficients[n_stacked++] = coefficient_of (&patch->terms[k]);
          }
      ok = gc_lora_modules_add_low_rank (scratch, stacked, coefficients, n_stacked,
                                         w + m->row * m->n);
    }
  gc_arena_reset (scratch, mark);
  return ok;
}

typedef struct {
  void *kept;
  float *w;
  gc_dtype dtype;
  bool keep; /* w → kept, else kept → w */
} convert_job;

static void
convert_range (void *ctx, int64_t begin, int64_t end)
{
  const convert_job *j = ctx;
  char *kept = (char *) j->kept + (size_t) begin * gc_dtype_size (j->dtype);
  if (j->keep)
    gc_convert_from_f32 (kept, j->dtype, j->w + begin, (size_t) (end - begin));
  else
    gc_convert_to_f32 (j->w + begin, kept, j->dtype, (size_t) (end - begin));
}

static void
convert (gc_param_patch *patch, float *w, size_t count, bool keep)
{
  convert_job job = { patch->kept, w, patch->kept_dtype, keep };
  gc_parallel_for ((int64_t) count, 1 << 16, convert_range, &job);
}

/* Kept copies are mapped on their own, so that dropping one returns its memory to the system
 * at once (freed heap blocks of this size may stay resident). */
static void
drop_kept (gc_param_patch *patch)
{
  if (patch->kept)
    munmap (patch->kept, patch->kept_bytes);
  patch->kept = NULL;
  patch->fresh = false;
}

static bool
make_kept (gc_param_patch *patch, gc_dtype dtype, size_t count)
{
  size_t bytes = count * gc_dtype_size (dtype);
  if (patch->kept && patch->kept_bytes == bytes)
    {
      patch->kept_dtype = dtype;
      return true;
    }
  drop_kept (patch);
  void *kept = mmap (NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (kept == MAP_FAILED)
    return false;
  patch->kept = kept;
  patch->kept_bytes = bytes;
  patch->kept_dtype = dtype;
  return true;
}

static bool
any_active (const gc_param_patch *patch)
{
  for (size_t i = 0; i < patch->count; i++)
    if (coefficient_of (&patch->terms[i]) != 0)
      return true;
  return false;
}

/* The first use after a change merges exactly in float32 and keeps the result in the file's
 * precision (fp16 for fp16 checkpoints, so the kept copy takes the room of W₀'s pages, which
 * are released until the next change); later uses widen the kept copy as they would W₀. */
const float *
gc_param_patch_weight (gc_arena *scratch, gc_param_patch *patch, const gc_weight *w0)
{
  size_t count = (size_t) gc_weight_numel (w0);
  float *w = gc_arena_floats (scratch, count);
  if (w == NULL)
    return NULL;
  if (patch->fresh)
    {
      convert (patch, w, count, false);
      return w;
    }
  gc_weight_to_f32 (w, w0);
  if (!any_active (patch))
    {
      drop_kept (patch); /* W₀'s pages are in use again: the kept copy would double them */
      return w;
    }
  if (!gc_param_patch_apply (scratch, patch, w))
    return NULL;
  gc_dtype dtype = w0->dtype == GC_DTYPE_F16 || w0->dtype == GC_DTYPE_BF16 ? w0->dtype
                                                                           : GC_DTYPE_F32;
  if (make_kept (patch, dtype, count))
    {
      convert (patch, w, count, true);
      patch->fresh = true;
      gc_checkpoint_release_range (patch->checkpoint, w0->data,
                                   count * gc_dtype_size (w0->dtype));
    }
  return w;
}

size_t
gc_param_patch_terms (const gc_param_patch *patch)
{
  return patch->count;
}

const gc_lora_module *
gc_param_patch_term (const gc_param_patch *patch, size_t index, float *coefficient)
{
  *coefficient = coefficient_of (&patch->terms[index]);
  return patch->terms[index].module;
}

/* ------------------------------------------------------------------ the list */

gc_status
gc_styles_new (gc_styles **out, const gc_checkpoint *checkpoint, gc_error *err)
{
  *out = calloc (1, sizeof **out);
  if (*out == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory");
  (*out)->checkpoint = checkpoint;
  return GC_OK;
}

void
gc_styles_free (gc_styles *styles)
{
  if (styles == NULL)
    return;
  while (styles->count > 0)
    gc_styles_remove (styles, styles->count - 1);
  free (styles->list);
  free (styles);
}

static gc_param_patch **
slot_of (const gc_styles *styles, const gc_lora_module *m)
{
  return gc_checkpoint_patch_slot (styles->checkpoint, m->target);
}

/* The weights the LoRA changes in the UNet (unet) and in the text encoder (text) are merged
 * again at their next use. */
static void
mark_stale (gc_styles *styles, const gc_lora *lora, bool unet, bool text)
{
  for (size_t i = 0; i < lora->n_modules; i++)
    {
      const gc_lora_module *m = &lora->modules[i];
      gc_param_patch **slot = slot_of (styles, m);
      if (slot && *slot && (m->text ? text : unet))
        (*slot)->fresh = false;
    }
}

/* Frees the patches left without terms and clears their slots. */
static void
drop_empty_patches (gc_styles *styles, const gc_lora *lora)
{
  for (size_t i = 0; i < lora->n_modules; i++)
    {
      gc_param_patch **slot = slot_of (styles, &lora->modules[i]);
      if (slot && *slot && (*slot)->count == 0)
        {
          drop_kept (*slot);
          free ((*slot)->terms);
          free (*slot);
          *slot = NULL;
        }
    }
}

/* Makes room for one more term in every patch the LoRA needs. */
static bool
reserve_terms (gc_styles *styles, const gc_lora *lora)
{
  for (size_t i = 0; i < lora->n_modules; i++)
    {
      gc_param_patch **slot = slot_of (styles, &lora->modules[i]);
      if (*slot == NULL && (*slot = calloc (1, sizeof **slot)) == NULL)
        return false;
      gc_param_patch *p = *slot;
      p->checkpoint = styles->checkpoint;
      size_t needed = p->count + 1;
      for (size_t k = 0; k < i; k++) /* a module earlier in this LoRA on the same weight */
        needed += lora->modules[k].target == lora->modules[i].target;
      if (needed > p->capacity)
        {
          size_t capacity = needed < 4 ? 4 : 2 * needed;
          term *grown = realloc (p->terms, capacity * sizeof *grown);
          if (grown == NULL)
            return false;
          p->terms = grown;
          p->capacity = capacity;
        }
    }
  return true;
}

static gc_status
check_weights (double weight, double text_weight, gc_error *err)
{
  if (!(fabs (weight) <= GC_STYLE_WEIGHT_MAX) || !(fabs (text_weight) <= GC_STYLE_WEIGHT_MAX))
    return gc_error_set (err, GC_ERR_INVALID,
                         "style weights go from -%g to %g (got %g, text %g)", GC_STYLE_WEIGHT_MAX,
                         GC_STYLE_WEIGHT_MAX, weight, text_weight);
  return GC_OK;
}

gc_status
gc_styles_add (gc_styles *styles, gc_lora *lora, double weight, double text_weight,
               gc_error *err)
{
  gc_status s = check_weights (weight, text_weight, err);
  if (s == GC_OK && lora->checkpoint != styles->checkpoint)
    s = gc_error_set (err, GC_ERR_INVALID, "%s was opened for another model",
                      gc_lora_path (lora));
  style *st = s == GC_OK ? malloc (sizeof *st) : NULL;
  style **grown = st ? realloc (styles->list, (styles->count + 1) * sizeof *grown) : NULL;
  if (grown)
    styles->list = grown;
  if (s == GC_OK && (grown == NULL || !reserve_terms (styles, lora)))
    s = gc_error_set (err, GC_ERR_NOMEM, "out of memory adding %s", gc_lora_path (lora));
  if (s != GC_OK)
    {
      drop_empty_patches (styles, lora);
      free (st);
      gc_lora_free (lora);
      return s;
    }
  *st = (style) { lora, weight, text_weight };
  for (size_t i = 0; i < lora->n_modules; i++)
    {
      gc_param_patch *p = *slot_of (styles, &lora->modules[i]);
      p->terms[p->count++] = (term) { &lora->modules[i], st };
    }
  mark_stale (styles, lora, true, true);
  styles->list[styles->count++] = st;
  return GC_OK;
}

gc_status
gc_styles_set_weights (gc_styles *styles, size_t index, double weight, double text_weight,
                       gc_error *err)
{
  if (index >= styles->count)
    return gc_error_set (err, GC_ERR_INVALID, "there is no style %zu", index);
  gc_status s = check_weights (weight, text_weight, err);
  style *st = styles->list[index];
  if (s == GC_OK)
    {
      mark_stale (styles, st->lora, weight != st->weight, text_weight != st->text_weight);
      st->weight = weight;
      st->text_weight = text_weight;
    }
  return s;
}

void
gc_styles_remove (gc_styles *styles, size_t index)
{
  if (index >= styles->count)
    return;
  style *st = styles->list[index];
  mark_stale (styles, st->lora, true, true);
  for (size_t i = 0; i < st->lora->n_modules; i++)
    {
      gc_param_patch *p = *slot_of (styles, &st->lora->modules[i]);
      size_t kept = 0;
      for (size_t k = 0; k < p->count; k++)
        if (p->terms[k].style != st)
          p->terms[kept++] = p->terms[k];
      p->count = kept;
    }
  drop_empty_patches (styles, st->lora);
  gc_lora_free (st->lora);
  free (st);
  memmove (styles->list + index, styles->list + index + 1,
           (styles->count - index - 1) * sizeof *styles->list);
  styles->count--;
}

void
gc_styles_release (gc_styles *styles)
{
  for (size_t s = 0; s < styles->count; s++)
    {
      const gc_lora *lora = styles->list[s]->lora;
      for (size_t i = 0; i < lora->n_modules; i++)
        {
          gc_param_patch *p = *slot_of (styles, &lora->modules[i]);
          drop_kept (p);
        }
    }
}

size_t
gc_styles_count (const gc_styles *styles)
{
  return styles->count;
}

const gc_lora *
gc_styles_lora (const gc_styles *styles, size_t index)
{
  return index < styles->count ? styles->list[index]->lora : NULL;
}

double
gc_styles_weight (const gc_styles *styles, size_t index)
{
  return index < styles->count ? styles->list[index]->weight : 0;
}

double
gc_styles_text_weight (const gc_styles *styles, size_t index)
{
  return index < styles->count ? styles->list[index]->text_weight : 0;
}
