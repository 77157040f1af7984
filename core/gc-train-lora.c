/* A LoRA under training: factors in one vector, applied as a style, with a gradient sink. */
#include "gc-train-lora.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gc-bake.h"
#include "gc-lora-names.h"
#include "gc-lora-private.h"
#include "gc-matmul.h"

typedef struct {
  gc_param_patch *const *slot; /* the weight's styles slot: how the sink recognises it */
  size_t module;
} slot_entry;

struct gc_train_lora {
  gc_model *model;
  gc_lora *lora;      /* owned by the model's styles while attached */
  int64_t rank;
  double alpha;
  size_t count;
  int64_t *offsets;   /* [count] start of each module's up, then down */
  float *params, *grads;
  int64_t size;
  slot_entry *slots;  /* [count] sorted by slot */
  gc_grad_sink sink;
};

static const char unet_root[] = "model.diffusion_model.";

static bool
has (const char *key, const char *part)
{
  return strstr (key, part) != NULL;
}

/* The kind of a UNet weight key (after the root), 0 for none. */
static unsigned
target_kind (const char *key)
{
  if (has (key, ".attn1.to_") || has (key, ".attn2.to_"))
    return GC_TRAIN_TARGET_ATTENTION;
  if (has (key, ".ff.net."))
    return GC_TRAIN_TARGET_FF;
  if (has (key, ".proj_in.") || has (key, ".proj_out."))
    return GC_TRAIN_TARGET_PROJ;
  if (has (key, ".in_layers.") || has (key, ".out_layers.") || has (key, ".skip_connection.")
      || has (key, ".emb_layers."))
    return GC_TRAIN_TARGET_RESNET;
  if (has (key, ".op.") || has (key, ".conv."))
    return GC_TRAIN_TARGET_SAMPLE;
  if (strncmp (key, "input_blocks.0.0.", 17) == 0 || strncmp (key, "out.", 4) == 0
      || strncmp (key, "time_embed.", 11) == 0 || strncmp (key, "label_emb.", 10) == 0)
    return GC_TRAIN_TARGET_STEM;
  return 0;
}

static int
compare_keys (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static int
compare_slots (const void *a, const void *b)
{
  uintptr_t x = (uintptr_t) ((const slot_entry *) a)->slot;
  uintptr_t y = (uintptr_t) ((const slot_entry *) b)->slot;
  return x < y ? -1 : x > y;
}

static const slot_entry *
find_slot (const gc_train_lora *t, const gc_param *p)
{
  slot_entry key = { p->patch, 0 };
  return bsearch (&key, t->slots, t->count, sizeof *t->slots, compare_slots);
}

static bool
sink_wants (void *ctx, const gc_param *p)
{
  return p->patch != NULL && find_slot (ctx, p) != NULL;
}

/* d_up[out, r] += s·dW[out, n]·down[r, n]ᵀ;  d_down[r, n] += s·up[out, r]ᵀ·dW[out, n] */
static void
sink_accumulate (void *ctx, const gc_param *p, const float *d_w)
{
  gc_train_lora *t = ctx;
  const slot_entry *e = find_slot (t, p);
  const gc_lora_module *m = &t->lora->modules[e->module];
  int64_t out = m->out, n = m->n, r = t->rank, at = t->offsets[e->module];
  const float *up = t->params + at, *down = up + out * r;
  float *d_up = t->grads + at, *d_down = d_up + out * r;
  float s = (float) m->scale;
  gc_matmul (d_up, r, d_w, n, false, down, n, true, out, r, n, s, 1);
  gc_matmul (d_down, n, up, r, true, d_w, n, false, r, n, out, s, 1);
}

/* The keys of the targeted weights, sorted (the parameter layout does not depend on the order
 * of the file's tensors). */
static const char **
select_targets (const gc_checkpoint *c, const gc_lora_names *names, unsigned targets,
                size_t *count)
{
  size_t total = gc_checkpoint_count (c), n = 0;
  const char **keys = malloc (sizeof *keys * (total ? total : 1));
  if (keys == NULL)
    return NULL;
  size_t root = strlen (unet_root);
  for (size_t i = 0; i < total; i++)
    {
      const char *key = gc_checkpoint_key (c, i);
      const gc_st_tensor *t = gc_checkpoint_tensor (c, i);
      size_t len = strlen (key);
      if (strncmp (key, unet_root, root) != 0 || len < 7 || strcmp (key + len - 7, ".weight") != 0
          || (t->ndim != 2 && t->ndim != 4) || (target_kind (key + root) & targets) == 0
          || gc_lora_names_kohya (names, key) == NULL)
        continue;
      keys[n++] = key;
    }
  qsort (keys, n, sizeof *keys, compare_keys);
  *count = n;
  return keys;
}

static float
uniform (gc_torch_rng *rng)
{
  return (float) (gc_torch_rng_u32 (rng) & 0xFFFFFF) * (1.0f / 16777216.0f);
}

gc_status
gc_train_lora_new (gc_train_lora **out, gc_model *model, unsigned targets, int64_t rank,
                   double alpha, gc_torch_rng *rng, gc_error *err)
{
  *out = NULL;
  if (rank < 1 || rank > 1024)
    return gc_error_set (err, GC_ERR_INVALID, "a LoRA rank goes from 1 to 1024 (got %lld)",
                         (long long) rank);
  if (!(alpha > 0) || !isfinite (alpha))
    return gc_error_set (err, GC_ERR_INVALID, "a LoRA alpha must be positive (got %g)", alpha);
  const gc_checkpoint *c = gc_model_checkpoint (model);
  gc_lora_names *names;
  gc_status s = gc_lora_names_build (&names, c, err);
  if (s != GC_OK)
    return s;
  size_t count = 0;
  const char **keys = select_targets (c, names, targets, &count);
  gc_lora_names_free (names);
  gc_train_lora *t = calloc (1, sizeof *t);
  gc_lora *lora = calloc (1, sizeof *lora);
  if (keys == NULL || t == NULL || lora == NULL)
    {
      free (keys), free (t), free (lora);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory making the LoRA");
    }
  if (count == 0)
    {
      free (keys), free (t), free (lora);
      return gc_error_set (err, GC_ERR_INVALID, "no weight of this UNet is a LoRA target");
    }
  t->model = model, t->lora = lora, t->rank = rank, t->alpha = alpha, t->count = count;
  t->offsets = calloc (count, sizeof *t->offsets);
  t->slots = calloc (count, sizeof *t->slots);
  lora->modules = calloc (count, sizeof *lora->modules);
  lora->path = strdup ("(training)");
  lora->checkpoint = c;
  bool ok = t->offsets && t->slots && lora->modules && lora->path;
  for (size_t i = 0; ok && i < count; i++)
    {
      const gc_st_tensor *w = gc_checkpoint_find (c, keys[i]);
      int64_t n = 1;
      for (int d = 1; d < w->ndim; d++)
        n *= w->shape[d];
      t->offsets[i] = t->size;
      t->size += (w->shape[0] + n) * rank;
      lora->modules[i] = (gc_lora_module) {
        .target = keys[i], .kind = GC_DELTA_LOW_RANK, .out = w->shape[0], .n = n,
        .in_channels = w->shape[1], .scale = alpha / (double) rank,
      };
      t->slots[i] = (slot_entry) { gc_checkpoint_patch_slot (c, keys[i]), i };
    }
  free (keys);
  if (ok)
    {
      t->params = calloc ((size_t) t->size, sizeof (float));
      t->grads = calloc ((size_t) t->size, sizeof (float));
      ok = t->params && t->grads;
    }
  if (!ok)
    {
      gc_lora_free (lora);
      t->lora = NULL;
      gc_train_lora_free (t);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory making the LoRA");
    }
  lora->n_modules = count;
  lora->report = (gc_lora_report) { .tensors = 3 * count, .applied = 3 * count,
                                    .unet_weights = count };
  for (size_t i = 0; i < count; i++)
    {
      gc_lora_module *m = &lora->modules[i];
      float *up = t->params + t->offsets[i], *down = up + m->out * rank;
      m->a = (gc_weight) { GC_DTYPE_F32, up, 2, { m->out, rank } };
      m->b = (gc_weight) { GC_DTYPE_F32, down, 2, { rank, m->n } };
      float bound = (float) (1.0 / sqrt ((double) m->n));
      for (int64_t k = 0; k < rank * m->n; k++)
        down[k] = (2.0f * uniform (rng) - 1.0f) * bound;
    }
  qsort (t->slots, count, sizeof *t->slots, compare_slots);
  t->sink = (gc_grad_sink) { sink_wants, sink_accumulate, t };
  s = gc_styles_add (gc_model_styles (model), lora, 1.0, 1.0, err);
  if (s != GC_OK)
    {
      t->lora = NULL; /* freed by gc_styles_add */
      gc_train_lora_free (t);
      return s;
    }
  *out = t;
  return GC_OK;
}

void
gc_train_lora_free (gc_train_lora *t)
{
  if (t == NULL)
    return;
  gc_styles *styles = gc_model_styles (t->model);
  for (size_t i = 0; t->lora && i < gc_styles_count (styles); i++)
    if (gc_styles_lora (styles, i) == t->lora)
      {
        gc_styles_remove (styles, i);
        break;
      }
  free (t->offsets);
  free (t->slots);
  free (t->params);
  free (t->grads);
  free (t);
}

int64_t
gc_train_lora_rank (const gc_train_lora *t)
{
  return t->rank;
}

double
gc_train_lora_alpha (const gc_train_lora *t)
{
  return t->alpha;
}

size_t
gc_train_lora_module_count (const gc_train_lora *t)
{
  return t->count;
}

const char *
gc_train_lora_module_target (const gc_train_lora *t, size_t index)
{
  return t->lora->modules[index].target;
}

void
gc_train_lora_module_layout (const gc_train_lora *t, size_t index, int64_t *offset, int64_t *out,
                             int64_t *n)
{
  *offset = t->offsets[index];
  *out = t->lora->modules[index].out;
  *n = t->lora->modules[index].n;
}

int64_t
gc_train_lora_size (const gc_train_lora *t)
{
  return t->size;
}

float *
gc_train_lora_params (gc_train_lora *t)
{
  return t->params;
}

float *
gc_train_lora_grads (gc_train_lora *t)
{
  return t->grads;
}

void
gc_train_lora_zero_grads (gc_train_lora *t)
{
  memset (t->grads, 0, sizeof (float) * (size_t) t->size);
}

const gc_grad_sink *
gc_train_lora_sink (gc_train_lora *t)
{
  return &t->sink;
}

gc_status
gc_train_lora_write (gc_train_lora *t, const char *path, const char *const *metadata,
                     size_t n_metadata, gc_error *err)
{
  gc_styles *styles = gc_model_styles (t->model);
  if (gc_styles_count (styles) != 1 || gc_styles_lora (styles, 0) != t->lora)
    return gc_error_set (err, GC_ERR_INVALID,
                         "the trained LoRA must be the model's only style to be written");
  gc_bake_report report;
  return gc_bake_lora (gc_model_checkpoint (t->model), 0, path, metadata, n_metadata, &report,
                       err);
}
