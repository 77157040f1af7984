/* Reading LoRA files: tensors are grouped by module (their name without the role suffix), each
 * module is matched to a weight of the model and checked against its shape, and the compact
 * factors of ΔW are kept (see gc-lora.h for the formats and formulas). */
#include "gc-lora-private.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc-lora-names.h"
#include "gc-matmul.h"

typedef enum {
  ROLE_UP, ROLE_DOWN, ROLE_MID, ROLE_ALPHA,
  ROLE_HADA_W1_A, ROLE_HADA_W1_B, ROLE_HADA_W2_A, ROLE_HADA_W2_B, ROLE_HADA_T1, ROLE_HADA_T2,
  ROLE_LOKR_W1, ROLE_LOKR_W1_A, ROLE_LOKR_W1_B,
  ROLE_LOKR_W2, ROLE_LOKR_W2_A, ROLE_LOKR_W2_B, ROLE_LOKR_T2,
  ROLE_DORA,
  N_ROLES
} role;

static const struct {
  const char *suffix;
  role role;
} suffixes[] = {
  { ".lora_up.weight", ROLE_UP },
  { ".lora_down.weight", ROLE_DOWN },
  { ".lora_mid.weight", ROLE_MID },
  { ".lora_B.weight", ROLE_UP },
  { ".lora_A.weight", ROLE_DOWN },
  { ".lora_B.default.weight", ROLE_UP },
  { ".lora_A.default.weight", ROLE_DOWN },
  { ".lora.up.weight", ROLE_UP },
  { ".lora.down.weight", ROLE_DOWN },
  { ".lora_linear_layer.up.weight", ROLE_UP },
  { ".lora_linear_layer.down.weight", ROLE_DOWN },
  { "_lora.up.weight", ROLE_UP },
  { "_lora.down.weight", ROLE_DOWN },
  { ".alpha", ROLE_ALPHA },
  { ".hada_w1_a", ROLE_HADA_W1_A },
  { ".hada_w1_b", ROLE_HADA_W1_B },
  { ".hada_w2_a", ROLE_HADA_W2_A },
  { ".hada_w2_b", ROLE_HADA_W2_B },
  { ".hada_t1", ROLE_HADA_T1 },
  { ".hada_t2", ROLE_HADA_T2 },
  { ".lokr_w1", ROLE_LOKR_W1 },
  { ".lokr_w1_a", ROLE_LOKR_W1_A },
  { ".lokr_w1_b", ROLE_LOKR_W1_B },
  { ".lokr_w2", ROLE_LOKR_W2 },
  { ".lokr_w2_a", ROLE_LOKR_W2_A },
  { ".lokr_w2_b", ROLE_LOKR_W2_B },
  { ".lokr_t2", ROLE_LOKR_T2 },
  { ".dora_scale", ROLE_DORA },
  { ".lora_magnitude_vector", ROLE_DORA },
  { ".lora_magnitude_vector.weight", ROLE_DORA },
};

enum { MODULE_MAX = 256 };

/* One tensor of the file, classified. */
typedef struct {
  char module[MODULE_MAX];
  role role;
  const gc_st_tensor *tensor;
} part;

/* The tensors of one module, by role. */
typedef struct {
  const char *name;
  const gc_st_tensor *t[N_ROLES];
  size_t count;
} group;

/* What a module is checked against. */
typedef struct {
  const gc_lora *lora;
  const gc_checkpoint *checkpoint;
  const char *module;
  const gc_st_tensor *weight; /* the model's */
  int64_t out, n, in_channels, kh, kw;
} binding;

/* ------------------------------------------------------------------ helpers */

static bool
classify (const char *name, part *p)
{
  size_t len = strlen (name);
  for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++)
    {
      size_t s = strlen (suffixes[i].suffix);
      if (len > s && len - s < MODULE_MAX && strcmp (name + len - s, suffixes[i].suffix) == 0)
        {
          memcpy (p->module, name, len - s);
          p->module[len - s] = '\0';
          p->role = suffixes[i].role;
          return true;
        }
    }
  return false;
}

static int
compare_parts (const void *a, const void *b)
{
  return strcmp (((const part *) a)->module, ((const part *) b)->module);
}

static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static const char *
base_name (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash ? slash + 1 : path;
}

static void
format_shape (char *out, size_t size, int ndim, const int64_t *shape)
{
  size_t used = (size_t) snprintf (out, size, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t) snprintf (out + used, size - used, i ? ", %" PRId64 : "%" PRId64, shape[i]);
  if (used < size)
    snprintf (out + used, size - used, "]");
}

static int64_t
numel (const gc_st_tensor *t)
{
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

/* A 2-D view of a file tensor as [rows, numel / rows]. */
static gc_weight
view (const gc_st_tensor *t, int64_t rows)
{
  return (gc_weight) { t->dtype, t->data, 2, { rows, rows ? numel (t) / rows : 0 } };
}

static gc_weight
owned_view (const float *data, int64_t rows, int64_t cols)
{
  return (gc_weight) { GC_DTYPE_F32, data, 2, { rows, cols } };
}

static float *
own (gc_lora *lora, int64_t count)
{
  if (count <= 0 || (uint64_t) count > SIZE_MAX / sizeof (float) / 2)
    return NULL;
  float **grown = realloc (lora->owned, (lora->n_owned + 1) * sizeof *grown);
  if (grown == NULL)
    return NULL;
  lora->owned = grown;
  float *buffer = malloc ((size_t) count * sizeof (float));
  if (buffer)
    lora->owned[lora->n_owned++] = buffer;
  return buffer;
}

static float *
widen (const gc_st_tensor *t)
{
  float *out = malloc ((size_t) (numel (t) ? numel (t) : 1) * sizeof (float));
  if (out)
    gc_convert_to_f32 (out, t->data, t->dtype, (size_t) numel (t));
  return out;
}

static gc_status
mismatch (const binding *b, const char *what, int ndim, const int64_t *shape, gc_error *err)
{
  char have[96], want[96];
  format_shape (have, sizeof have, ndim, shape);
  format_shape (want, sizeof want, b->weight->ndim, b->weight->shape);
  return gc_error_set (err, GC_ERR_MISMATCH,
                       "%s does not fit this %s model: %s has %s %s, but the model's weight %s is "
                       "%s (a LoRA made for another model?)",
                       base_name (b->lora->path),
                       gc_family_name (gc_checkpoint_family (b->checkpoint)), b->module, what,
                       have, b->weight->name, want);
}

static gc_status
malformed (const binding *b, const char *problem, gc_error *err)
{
  return gc_error_set (err, GC_ERR_FORMAT, "%s: module %s %s", base_name (b->lora->path),
                       b->module, problem);
}

static bool
float_tensor (const gc_st_tensor *t)
{
  return t == NULL || gc_dtype_is_float (t->dtype);
}

/* ------------------------------------------------------------------ factor shapes */

/* ab = a[m, r] · b[r, n] into a buffer the LoRA owns. */
static float *
owned_product (gc_lora *lora, const float *a, const float *b, int64_t m, int64_t r, int64_t n)
{
  float *out = own (lora, m * n);
  if (out)
    gc_matmul (out, n, a, r, false, b, n, false, m, n, r, 1, 0);
  return out;
}

/* Tucker core t[r1, r2, kh·kw] with w_b[r2, in]:
 * out[i, c·kk + e] = Σ_j t[i, j, e]·w_b[j, c]. */
static float *
tucker (gc_lora *lora, const gc_st_tensor *t, const gc_st_tensor *wb, int64_t in, int64_t kk)
{
  int64_t r1 = t->shape[0], r2 = t->shape[1];
  float *tf = widen (t), *bf = widen (wb), *out = own (lora, r1 * in * kk);
  if (tf && bf && out)
    for (int64_t i = 0; i < r1; i++)
      /* [in, kk] = w_bᵀ[in, r2] · t_i[r2, kk] */
      gc_matmul (out + i * in * kk, kk, bf, in, true, tf + i * r2 * kk, kk, false, in, kk, r2, 1,
                 0);
  free (tf);
  free (bf);
  return tf && bf ? out : NULL;
}

/* [rows, cols] stored as w[cols, rows] */
static float *
transposed (gc_lora *lora, const gc_st_tensor *w, int64_t rows, int64_t cols)
{
  float *wf = widen (w), *out = own (lora, rows * cols);
  if (wf && out)
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < cols; j++)
        out[i * cols + j] = wf[j * rows + i];
  free (wf);
  return wf ? out : NULL;
}

/* a[m, r]·b[r, n] from file tensors, into an owned buffer. */
static float *
file_product (gc_lora *lora, const gc_st_tensor *a, const gc_st_tensor *b, int64_t m, int64_t r,
              int64_t n)
{
  float *af = widen (a), *bf = widen (b);
  float *out = af && bf ? owned_product (lora, af, bf, m, r, n) : NULL;
  free (af);
  free (bf);
  return out;
}

static gc_status
read_alpha (const binding *b, const gc_st_tensor *t, int64_t rank, double *scale, gc_error *err)
{
  *scale = 1;
  if (t == NULL)
    return GC_OK;
  if (numel (t) != 1)
    return malformed (b, "has an alpha that is not a single number", err);
  float alpha;
  gc_convert_to_f32 (&alpha, t->data, t->dtype, 1);
  if (!(alpha == alpha) || alpha > 1e30f || alpha < -1e30f)
    return malformed (b, "has an alpha that is not a finite number", err);
  if (alpha != 0 && rank > 0)
    *scale = alpha / (double) rank;
  return GC_OK;
}

/* Shape of ΔW a factor pair [rows, …] · [r, …] makes, for messages. */
static gc_status
pair_mismatch (const binding *b, int64_t rows, int64_t cols, gc_error *err)
{
  return mismatch (b, "a change of shape", 2, (int64_t[]) { rows, cols }, err);
}

static gc_status
bind_low_rank (gc_lora *lora, const binding *b, const group *g, gc_lora_module *m, gc_error *err)
{
  const gc_st_tensor *up = g->t[ROLE_UP], *down = g->t[ROLE_DOWN], *mid = g->t[ROLE_MID];
  if (up == NULL || down == NULL)
    return malformed (b, up ? "has an up factor but no down factor" :
                         "has a down factor but no up factor", err);
  if (up->ndim < 2 || down->ndim < 2 || up->shape[1] <= 0 || down->shape[0] <= 0)
    return malformed (b, "has factors that are not matrices", err);
  int64_t r = up->shape[1], rank = down->shape[0];
  if (numel (up) != up->shape[0] * r)
    return malformed (b, "has an up factor with a kernel (it must be 1×1)", err);
  m->kind = GC_DELTA_LOW_RANK;
  if (mid)
    {
      if (up->shape[0] != b->out || numel (down) != rank * b->in_channels)
        return pair_mismatch (b, up->shape[0], numel (down) / rank, err);
      if (mid->ndim != 4 || mid->shape[0] != r || mid->shape[1] != rank || mid->shape[2] != b->kh
          || mid->shape[3] != b->kw)
        return mismatch (b, "a Tucker core of shape", mid->ndim, mid->shape, err);
      float *core = tucker (lora, mid, down, b->in_channels, b->kh * b->kw);
      if (core == NULL)
        return gc_error_set (err, GC_ERR_NOMEM, "out of memory reading %s", lora->path);
      m->b = owned_view (core, r, b->n);
    }
  else
    {
      bool kernel_fits = down->ndim == 2 || (down->ndim == 4 && down->shape[1] == b->in_channels
                                              && down->shape[2] == b->kh
                                              && down->shape[3] == b->kw);
      if (up->shape[0] != b->out || numel (down) != r * b->n || rank != r || !kernel_fits)
        return pair_mismatch (b, up->shape[0], numel (down) / rank, err);
      m->b = view (down, r);
    }
  m->a = view (up, b->out);
  return read_alpha (b, g->t[ROLE_ALPHA], rank, &m->scale, err);
}

/* One Hadamard factor pair, plain ([out, r]·[r, n]) or Tucker ([r, out], [r, in], core). */
static gc_status
hadamard_pair (gc_lora *lora, const binding *b, const gc_st_tensor *wa, const gc_st_tensor *wb,
               const gc_st_tensor *t, gc_weight *a, gc_weight *bw, int64_t *rank, gc_error *err)
{
  if (wa->ndim != 2 || wb->ndim < 2 || wb->shape[0] <= 0)
    return malformed (b, "has LoHa factors that are not matrices", err);
  *rank = wb->shape[0];
  if (t == NULL)
    {
      if (wa->shape[0] != b->out || wa->shape[1] != *rank || numel (wb) != *rank * b->n)
        return pair_mismatch (b, wa->shape[0], numel (wb) / *rank, err);
      *a = view (wa, b->out);
      *bw = view (wb, *rank);
      return GC_OK;
    }
  if (t->ndim != 4 || t->shape[0] != wa->shape[0] || t->shape[1] != *rank
      || numel (wb) != *rank * b->in_channels || wa->shape[1] != b->out || t->shape[2] != b->kh
      || t->shape[3] != b->kw)
    return mismatch (b, "a LoHa Tucker core of shape", t->ndim, t->shape, err);
  float *at = transposed (lora, wa, b->out, wa->shape[0]);
  float *core = tucker (lora, t, wb, b->in_channels, b->kh * b->kw);
  if (at == NULL || core == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory reading %s", lora->path);
  *a = owned_view (at, b->out, wa->shape[0]);
  *bw = owned_view (core, t->shape[0], b->n);
  return GC_OK;
}

static gc_status
bind_hadamard (gc_lora *lora, const binding *b, const group *g, gc_lora_module *m, gc_error *err)
{
  const gc_st_tensor *const *t = g->t;
  if (!t[ROLE_HADA_W1_A] || !t[ROLE_HADA_W1_B] || !t[ROLE_HADA_W2_A] || !t[ROLE_HADA_W2_B]
      || !t[ROLE_HADA_T1] != !t[ROLE_HADA_T2])
    return malformed (b, "is an incomplete LoHa (it needs hada_w1_a/b and hada_w2_a/b)", err);
  int64_t rank, rank2;
  gc_status s;
  m->kind = GC_DELTA_HADAMARD;
  if ((s = hadamard_pair (lora, b, t[ROLE_HADA_W1_A], t[ROLE_HADA_W1_B], t[ROLE_HADA_T1], &m->a,
                          &m->b, &rank, err))
      || (s = hadamard_pair (lora, b, t[ROLE_HADA_W2_A], t[ROLE_HADA_W2_B], t[ROLE_HADA_T2],
                             &m->a2, &m->b2, &rank2, err)))
    return s;
  return read_alpha (b, t[ROLE_ALPHA], rank, &m->scale, err);
}

/* A LoKr factor: whole, a product a·b, or (for w2) a Tucker product. */
typedef struct {
  const gc_st_tensor *whole, *a, *b, *core;
  int64_t rows, cols, rank; /* of the dense factor; rank 0 when whole */
} kron_part;

/* Checks the structure of a factor and reads its dense shape, before anything is computed. */
static bool
kron_shape (kron_part *p, int64_t kk)
{
  p->rank = 0;
  if (p->whole)
    {
      if (p->whole->ndim < 2 || p->whole->shape[0] <= 0)
        return false;
      p->rows = p->whole->shape[0];
      p->cols = numel (p->whole) / p->rows;
      return true;
    }
  if (p->a == NULL || p->b == NULL || p->a->ndim != 2 || p->b->ndim < 2 || p->b->shape[0] <= 0)
    return false;
  p->rank = p->b->shape[0];
  if (p->core)
    {
      p->rows = p->a->shape[1];
      p->cols = numel (p->b) / p->rank * kk;
      return p->core->ndim == 4 && p->core->shape[0] == p->a->shape[0]
             && p->core->shape[1] == p->rank && p->core->shape[2] * p->core->shape[3] == kk;
    }
  p->rows = p->a->shape[0];
  p->cols = numel (p->b) / p->rank;
  return p->a->shape[1] == p->rank;
}

/* The dense factor [rows, cols], in a buffer the LoRA owns. */
static float *
kron_factor (gc_lora *lora, const kron_part *p, int64_t kk)
{
  if (p->whole)
    {
      float *out = own (lora, numel (p->whole));
      if (out)
        gc_convert_to_f32 (out, p->whole->data, p->whole->dtype, (size_t) numel (p->whole));
      return out;
    }
  if (p->core == NULL)
    return file_product (lora, p->a, p->b, p->rows, p->rank, p->cols);
  float *at = transposed (lora, p->a, p->rows, p->a->shape[0]);
  float *tb = tucker (lora, p->core, p->b, p->cols / kk, kk);
  return at && tb ? owned_product (lora, at, tb, p->rows, p->a->shape[0], p->cols) : NULL;
}

static bool
fits (int64_t x, int64_t y, int64_t product)
{
  int64_t p;
  return !__builtin_mul_overflow (x, y, &p) && p == product;
}

static gc_status
bind_kronecker (gc_lora *lora, const binding *b, const group *g, gc_lora_module *m,
                gc_error *err)
{
  const gc_st_tensor *const *t = g->t;
  int64_t kk = b->kh * b->kw;
  kron_part w1 = { t[ROLE_LOKR_W1], t[ROLE_LOKR_W1_A], t[ROLE_LOKR_W1_B], NULL };
  kron_part w2 = { t[ROLE_LOKR_W2], t[ROLE_LOKR_W2_A], t[ROLE_LOKR_W2_B], t[ROLE_LOKR_T2] };
  if (!kron_shape (&w1, 1) || !kron_shape (&w2, kk))
    return malformed (b, "is an incomplete or malformed LoKr", err);
  if (!fits (w1.rows, w2.rows, b->out) || !fits (w1.cols, w2.cols, b->n))
    return mismatch (b, "a Kronecker product with a second factor of shape", 2,
                     (int64_t[]) { w2.rows, w2.cols }, err);
  float *f1 = kron_factor (lora, &w1, 1), *f2 = kron_factor (lora, &w2, kk);
  if (f1 == NULL || f2 == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory reading %s", lora->path);
  m->kind = GC_DELTA_KRONECKER;
  m->a = owned_view (f1, w1.rows, w1.cols);
  m->b = owned_view (f2, w2.rows, w2.cols);
  int64_t rank = w2.rank ? w2.rank : w1.rank;
  return read_alpha (b, rank ? t[ROLE_ALPHA] : NULL, rank, &m->scale, err);
}

static gc_status
bind_dora (const binding *b, const gc_st_tensor *t, gc_lora_module *m, gc_error *err)
{
  if (t == NULL)
    return GC_OK;
  m->dora = true;
  m->dora_on_output = t->ndim >= 1 && t->shape[0] == b->out && numel (t) == b->out;
  if (!m->dora_on_output && numel (t) != b->in_channels)
    return mismatch (b, "a DoRA scale of shape", t->ndim, t->shape, err);
  m->dora_scale = view (t, 1);
  return GC_OK;
}

/* ------------------------------------------------------------------ grouping */

static gc_status
bind_module (gc_lora *lora, const gc_checkpoint *c, const group *g, const char *target,
             bool text, gc_error *err)
{
  binding b = { lora, c, g->name, gc_checkpoint_find (c, target), 0, 0, 0, 1, 1 };
  b.out = b.weight->shape[0];
  b.in_channels = b.weight->shape[1];
  if (b.weight->ndim == 4)
    b.kh = b.weight->shape[2], b.kw = b.weight->shape[3];
  b.n = b.in_channels * b.kh * b.kw;
  /* no empty factors: every partial product of a shape is then bounded by the file's size */
  for (int r = 0; r < N_ROLES; r++)
    if (r != ROLE_ALPHA && g->t[r] && (!float_tensor (g->t[r]) || numel (g->t[r]) == 0))
      return malformed (&b, "has a factor that is empty or not floating-point", err);
  gc_lora_module *m = &lora->modules[lora->n_modules];
  *m = (gc_lora_module) { .target = target, .text = text, .out = b.out, .n = b.n,
                          .in_channels = b.in_channels };
  const gc_st_tensor *const *t = g->t;
  gc_status s;
  if (t[ROLE_HADA_W1_A] || t[ROLE_HADA_W1_B] || t[ROLE_HADA_W2_A] || t[ROLE_HADA_W2_B])
    s = bind_hadamard (lora, &b, g, m, err);
  else if (t[ROLE_LOKR_W1] || t[ROLE_LOKR_W1_A] || t[ROLE_LOKR_W2] || t[ROLE_LOKR_W2_A])
    s = bind_kronecker (lora, &b, g, m, err);
  else if (t[ROLE_UP] || t[ROLE_DOWN])
    s = bind_low_rank (lora, &b, g, m, err);
  else
    s = malformed (&b, "holds no factors (only alpha or a DoRA scale)", err);
  if (s == GC_OK)
    s = bind_dora (&b, t[ROLE_DORA], m, err);
  if (s == GC_OK)
    lora->n_modules++;
  return s;
}

static gc_status
refuse_sdxl (const gc_lora *lora, gc_error *err)
{
  for (size_t i = 0; i < gc_safetensors_count (lora->file); i++)
    {
      const char *name = gc_safetensors_at (lora->file, i)->name;
      if (strncmp (name, "lora_te1_", 9) == 0 || strncmp (name, "lora_te2_", 9) == 0)
        return gc_error_set (err, GC_ERR_UNSUPPORTED,
                             "%s is an SDXL LoRA (it changes two text encoders, lora_te1_ and "
                             "lora_te2_): SDXL styles are not supported yet",
                             base_name (lora->path));
    }
  return GC_OK;
}

/* Groups the classified parts by module and binds every module that names a model weight;
 * the tensors of the others are listed as unmatched. */
static gc_status
bind_groups (gc_lora *lora, const gc_checkpoint *c, const gc_lora_names *names, part *parts,
             size_t n, gc_error *err)
{
  qsort (parts, n, sizeof *parts, compare_parts);
  for (size_t i = 0; i < n;)
    {
      size_t end = i;
      group g = { parts[i].module, { 0 }, 0 };
      bool duplicate = false;
      for (; end < n && strcmp (parts[end].module, g.name) == 0; end++, g.count++)
        {
          duplicate |= g.t[parts[end].role] != NULL;
          g.t[parts[end].role] = parts[end].tensor;
        }
      bool text;
      const char *target = gc_lora_names_find (names, g.name, &text);
      if (target && duplicate)
        return gc_error_set (err, GC_ERR_FORMAT, "%s: module %s has the same factor twice",
                             base_name (lora->path), g.name);
      if (target)
        {
          gc_status s = bind_module (lora, c, &g, target, text, err);
          if (s != GC_OK)
            return s;
          lora->report.applied += g.count;
          if (text)
            lora->report.text_weights++;
          else
            lora->report.unet_weights++;
        }
      else
        for (size_t k = i; k < end; k++)
          lora->unmatched[lora->report.unmatched++] = parts[k].tensor->name;
      i = end;
    }
  return GC_OK;
}

static gc_status
read_modules (gc_lora *lora, const gc_checkpoint *c, gc_error *err)
{
  size_t n = gc_safetensors_count (lora->file);
  lora->report.tensors = n;
  gc_lora_names *names = NULL;
  part *parts = calloc (n ? n : 1, sizeof *parts);
  lora->modules = calloc (n ? n : 1, sizeof *lora->modules);
  lora->unmatched = calloc (n ? n : 1, sizeof *lora->unmatched);
  if (parts == NULL || lora->modules == NULL || lora->unmatched == NULL)
    {
      free (parts);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory reading %s", lora->path);
    }
  size_t n_parts = 0;
  for (size_t i = 0; i < n; i++)
    {
      const gc_st_tensor *t = gc_safetensors_at (lora->file, i);
      if (classify (t->name, &parts[n_parts]))
        parts[n_parts++].tensor = t;
      else
        lora->unmatched[lora->report.unmatched++] = t->name;
    }
  gc_status s = gc_lora_names_build (&names, c, err);
  if (s == GC_OK)
    s = bind_groups (lora, c, names, parts, n_parts, err);
  gc_lora_names_free (names);
  free (parts);
  qsort (lora->unmatched, lora->report.unmatched, sizeof *lora->unmatched, compare_names);
  if (s == GC_OK && lora->n_modules == 0)
    s = gc_error_set (err, GC_ERR_MISMATCH,
                      "%s changes no weight of this %s model: none of its %zu tensors names a "
                      "layer of it (a LoRA for another kind of model?)",
                      base_name (lora->path), gc_family_name (gc_checkpoint_family (c)), n);
  return s;
}

gc_status
gc_lora_open (gc_lora **out, const char *path, const gc_checkpoint *checkpoint, gc_error *err)
{
  *out = NULL;
  gc_lora *lora = calloc (1, sizeof *lora);
  if (lora == NULL || (lora->path = strdup (path)) == NULL)
    {
      free (lora);
      return gc_error_set (err, GC_ERR_NOMEM, "out of memory opening %s", path);
    }
  lora->checkpoint = checkpoint;
  gc_status s = gc_safetensors_open (&lora->file, path, err);
  if (s == GC_OK)
    s = refuse_sdxl (lora, err);
  if (s == GC_OK)
    s = read_modules (lora, checkpoint, err);
  if (s != GC_OK)
    {
      gc_lora_free (lora);
      return s;
    }
  *out = lora;
  return GC_OK;
}

void
gc_lora_free (gc_lora *lora)
{
  if (lora == NULL)
    return;
  for (size_t i = 0; i < lora->n_owned; i++)
    free (lora->owned[i]);
  free (lora->owned);
  free (lora->modules);
  free (lora->unmatched);
  gc_safetensors_close (lora->file);
  free (lora->path);
  free (lora);
}

const char *
gc_lora_path (const gc_lora *lora)
{
  return lora->path;
}

const char *
gc_lora_metadata (const gc_lora *lora, const char *key)
{
  return gc_safetensors_metadata (lora->file, key);
}

gc_lora_report
gc_lora_get_report (const gc_lora *lora)
{
  return lora->report;
}

const char *
gc_lora_unmatched (const gc_lora *lora, size_t index)
{
  return index < lora->report.unmatched ? lora->unmatched[index] : NULL;
}
