/* Reading LoRA files: tensors are grouped by module (their name without the role suffix), each
 * module is matched to a weight of the model and checked against its shape, and the compact
 * factors of ΔW are kept (see gc-lora.h for the formats and formulas). */
#include "gc-lora-private.h"

#include <ctype.h>
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
  ROLE_DIFF, ROLE_DIFF_B,
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
  { ".diff", ROLE_DIFF },
  { ".diff_b", ROLE_DIFF_B },
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

/* What a module is checked against: rows row … row + out − 1 of the model's weight (or bias). */
typedef struct {
  const gc_lora *lora;
  const gc_checkpoint *checkpoint;
  const char *module;
  const gc_st_tensor *weight; /* the model's */
  int64_t row, out, n, in_channels, kh, kw;
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
  char have[96], want[96], rows[64] = "";
  int64_t target[GC_MAX_DIMS];
  memcpy (target, b->weight->shape, sizeof (int64_t) * (size_t) b->weight->ndim);
  target[0] = b->out;
  format_shape (have, sizeof have, ndim, shape);
  format_shape (want, sizeof want, b->weight->ndim, target);
  if (b->out != b->weight->shape[0])
    snprintf (rows, sizeof rows, " (rows %" PRId64 "-%" PRId64 ")", b->row,
              b->row + b->out - 1);
  return gc_error_set (err, GC_ERR_MISMATCH,
                       "%s does not fit this %s model: %s has %s %s, but the model's weight %s%s "
                       "is %s (a LoRA made for another model?)",
                       base_name (b->lora->path),
                       gc_family_name (gc_checkpoint_family (b->checkpoint)), b->module, what,
                       have, b->weight->name, rows, want);
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

/* A full difference of the weight (LyCORIS "full"): ΔW = diff [out, n]. */
static gc_status
bind_full (const binding *b, const gc_st_tensor *diff, gc_lora_module *m, gc_error *err)
{
  if (diff->ndim < 1 || diff->shape[0] != b->out || numel (diff) != b->out * b->n)
    return mismatch (b, "a full difference of shape", diff->ndim, diff->shape, err);
  m->kind = GC_DELTA_DENSE;
  m->a = view (diff, b->out);
  m->scale = 1;
  return GC_OK;
}

/* The module of the weight, from every factor of the group but diff_b. */
static gc_status
bind_weight (gc_lora *lora, const binding *b, const group *g, gc_lora_module *m, gc_error *err)
{
  const gc_st_tensor *const *t = g->t;
  bool low_rank = t[ROLE_UP] || t[ROLE_DOWN] || t[ROLE_MID];
  bool hadamard = t[ROLE_HADA_W1_A] || t[ROLE_HADA_W1_B] || t[ROLE_HADA_W2_A] || t[ROLE_HADA_W2_B];
  bool kronecker = t[ROLE_LOKR_W1] || t[ROLE_LOKR_W1_A] || t[ROLE_LOKR_W2] || t[ROLE_LOKR_W2_A];
  gc_status s;
  if (t[ROLE_DIFF] && (low_rank || hadamard || kronecker))
    s = malformed (b, "has both a full difference and factors", err);
  else if (t[ROLE_DIFF])
    s = bind_full (b, t[ROLE_DIFF], m, err);
  else if (hadamard)
    s = bind_hadamard (lora, b, g, m, err);
  else if (kronecker)
    s = bind_kronecker (lora, b, g, m, err);
  else if (t[ROLE_UP] || t[ROLE_DOWN])
    s = bind_low_rank (lora, b, g, m, err);
  else
    s = malformed (b, "holds no factors (only alpha or a DoRA scale)", err);
  return s == GC_OK ? bind_dora (b, t[ROLE_DORA], m, err) : s;
}

/* The module of the bias (rows row … row + out − 1 of the layer's bias): Δb = diff_b. */
static gc_status
bind_bias (const binding *weight, const gc_lora_target *target, const gc_st_tensor *diff,
           gc_lora_module *m, gc_error *err)
{
  binding b = *weight;
  b.weight = gc_checkpoint_find (b.checkpoint, target->bias);
  b.n = b.in_channels = b.kh = b.kw = 1;
  if (diff->ndim != 1 || diff->shape[0] != b.out)
    return mismatch (&b, "a bias change of shape", diff->ndim, diff->shape, err);
  *m = (gc_lora_module) { .target = target->bias, .text = target->text, .kind = GC_DELTA_DENSE,
                          .row = b.row, .out = b.out, .n = 1, .in_channels = 1, .scale = 1,
                          .a = view (diff, b.out) };
  return GC_OK;
}

/* Binds a group to the module of the model it names: the weight's change when the group has
 * factors, the bias's when it has a diff_b and the layer a bias. */
static gc_status
bind_module (gc_lora *lora, const gc_checkpoint *c, const group *g,
             const gc_lora_target *target, gc_error *err)
{
  const gc_st_tensor *const *t = g->t;
  binding b = { lora, c, g->name, gc_checkpoint_find (c, target->weight), target->row,
                target->rows, 0, 0, 1, 1 };
  b.in_channels = b.weight->shape[1];
  if (b.weight->ndim == 4)
    b.kh = b.weight->shape[2], b.kw = b.weight->shape[3];
  b.n = b.in_channels * b.kh * b.kw;
  /* no empty factors: every partial product of a shape is then bounded by the file's size */
  bool factors = false;
  for (int r = 0; r < N_ROLES; r++)
    {
      if (t[r] == NULL || r == ROLE_ALPHA || (r == ROLE_DIFF_B && target->bias == NULL))
        continue;
      if (!float_tensor (t[r]) || numel (t[r]) == 0)
        return malformed (&b, "has a factor that is empty or not floating-point", err);
      factors |= r != ROLE_DORA && r != ROLE_DIFF_B;
    }
  gc_status s = GC_OK;
  if (factors || t[ROLE_DIFF_B] == NULL)
    {
      gc_lora_module *m = &lora->modules[lora->n_modules];
      *m = (gc_lora_module) { .target = target->weight, .text = target->text, .row = b.row,
                              .out = b.out, .n = b.n, .in_channels = b.in_channels };
      if ((s = bind_weight (lora, &b, g, m, err)) == GC_OK)
        lora->n_modules++;
    }
  if (s == GC_OK && t[ROLE_DIFF_B] && target->bias)
    {
      s = bind_bias (&b, target, t[ROLE_DIFF_B], &lora->modules[lora->n_modules], err);
      if (s == GC_OK)
        lora->n_modules++;
    }
  return s;
}

/* ------------------------------------------------------------------ grouping */

/* The group of the parts (sorted by module) that starts at i; returns where the next starts. */
static size_t
gather (const part *parts, size_t n, size_t i, group *g, bool *duplicate)
{
  *g = (group) { parts[i].module, { 0 }, 0 };
  *duplicate = false;
  size_t end = i;
  for (; end < n && strcmp (parts[end].module, g->name) == 0; end++, g->count++)
    {
      *duplicate |= g->t[parts[end].role] != NULL;
      g->t[parts[end].role] = parts[end].tensor;
    }
  return end;
}

/* Groups the parts by module and binds every module that names a model weight; the tensors
 * of the others are listed as unmatched. */
static gc_status
bind_groups (gc_lora *lora, const gc_checkpoint *c, const gc_lora_names *names,
             const part *parts, size_t n, gc_error *err)
{
  for (size_t i = 0; i < n;)
    {
      group g;
      bool duplicate;
      size_t end = gather (parts, n, i, &g, &duplicate);
      const gc_lora_target *target = gc_lora_names_find (names, g.name);
      if (target && duplicate)
        return gc_error_set (err, GC_ERR_FORMAT, "%s: module %s has the same factor twice",
                             base_name (lora->path), g.name);
      if (target)
        {
          size_t first = lora->n_modules;
          gc_status s = bind_module (lora, c, &g, target, err);
          if (s != GC_OK)
            return s;
          for (size_t k = first; k < lora->n_modules; k++)
            {
              if (lora->modules[k].text)
                lora->report.text_weights++;
              else
                lora->report.unet_weights++;
            }
          bool bias_unmatched = g.t[ROLE_DIFF_B] && target->bias == NULL;
          lora->report.applied += g.count - bias_unmatched;
          if (bias_unmatched)
            lora->unmatched[lora->report.unmatched++] = g.t[ROLE_DIFF_B]->name;
        }
      else
        for (size_t k = i; k < end; k++)
          lora->unmatched[lora->report.unmatched++] = parts[k].tensor->name;
      i = end;
    }
  return GC_OK;
}

/* ------------------------------------------------------------------ families */

enum {
  SD1 = 1u << GC_FAMILY_SD1,
  SD2 = 1u << GC_FAMILY_SD2,
  SDXL = 1u << GC_FAMILY_SDXL,
  ANY = SD1 | SD2 | SDXL,
  NOT_XL = SD1 | SD2,
};

static bool
starts_with (const char *s, const char *prefix)
{
  return strncmp (s, prefix, strlen (prefix)) == 0;
}

static bool
ends_with (const char *s, const char *suffix)
{
  size_t n = strlen (s), k = strlen (suffix);
  return n >= k && strcmp (s + n - k, suffix) == 0;
}

static bool
followed_by (const char *rest, const char *word)
{
  return (*rest == '_' || *rest == '.') && starts_with (rest + 1, word);
}

/* In a module name …word_A_B… (or word.A.B): A, and B or −1; *rest is what follows them. */
static bool
block_numbers (const char *name, const char *word, int *a, int *b, const char **rest)
{
  const char *p = strstr (name, word);
  if (p == NULL)
    return false;
  int values[2] = { -1, -1 };
  p += strlen (word);
  for (int i = 0; i < 2 && (*p == '_' || *p == '.') && isdigit ((unsigned char) p[1]); i++)
    {
      int v = 0;
      for (p++; isdigit ((unsigned char) *p); p++)
        v = v < 100000 ? 10 * v + (*p - '0') : v;
      values[i] = v;
    }
  *a = values[0], *b = values[1], *rest = p;
  return values[0] >= 0;
}

/* The families whose models have a module of this name. SDXL has two text encoders
 * (lora_te1_, lora_te2_), the others one (lora_te_). SDXL's UNet has three levels, the first
 * without attention (LDM input_blocks 0–8, attention in 4, 5, 7, 8 and output_blocks 0–5;
 * diffusers down_blocks 1–2 and up_blocks 0–1), transformers of several blocks and a
 * label_emb; SD 1.x and 2.x have four levels, attention in the first three (input_blocks 1, 2,
 * 4, 5, 7, 8 and output_blocks 3–11; down_blocks 0–2 and up_blocks 1–3), one block each. */
static unsigned
name_families (const char *name)
{
  int a, b;
  const char *rest;
  if (starts_with (name, "lora_te1_") || starts_with (name, "lora_te2_")
      || starts_with (name, "text_encoder_2."))
    return SDXL;
  if (starts_with (name, "lora_te_"))
    return NOT_XL;
  if (strstr (name, "label_emb") || strstr (name, "add_embedding")
      || (block_numbers (name, "transformer_blocks", &a, &b, &rest) && a >= 1))
    return SDXL;
  bool attention = strstr (name, "transformer_blocks") || strstr (name, "proj_in")
                   || strstr (name, "proj_out");
  if (block_numbers (name, "input_blocks", &a, &b, &rest))
    return a >= 9 || (attention && b == 1 && a <= 2) ? NOT_XL : ANY;
  if (block_numbers (name, "output_blocks", &a, &b, &rest))
    return a >= 9 || (attention && b == 1 && a >= 6) ? NOT_XL
           : attention && b == 1 && a <= 2           ? SDXL
                                                     : ANY;
  if (block_numbers (name, "down_blocks", &a, &b, &rest))
    return a >= 3 || (a == 0 && followed_by (rest, "attentions")) ? NOT_XL : ANY;
  if (block_numbers (name, "up_blocks", &a, &b, &rest))
    return a >= 3 || (a == 2 && followed_by (rest, "attentions")) ? NOT_XL
           : a == 0 && followed_by (rest, "attentions")              ? SDXL
                                                                      : ANY;
  return ANY;
}

/* The families whose models have weights of the module's shapes: SD 1.x projects into and out
 * of its transformers with 1×1 convolutions, the others with linear layers; and the standard
 * widths, of the text encoder (CLIP-L 768, OpenCLIP-H 1024) and of the context the UNet's
 * cross-attention reads (768, 1024, 2048). */
static unsigned
shape_families (const group *g)
{
  const gc_st_tensor *up = g->t[ROLE_UP], *down = g->t[ROLE_DOWN];
  unsigned families = ANY;
  if ((ends_with (g->name, "proj_in") || ends_with (g->name, "proj_out"))
      && ((up && up->ndim == 4) || (down && down->ndim == 4)))
    families = SD1;
  if (starts_with (g->name, "lora_te_") && strstr (g->name, "self_attn") && up && up->ndim == 2)
    families &= up->shape[0] == 768 ? SD1 : up->shape[0] == 1024 ? SD2 : ANY;
  if (strstr (g->name, "attn2") && (ends_with (g->name, "to_k") || ends_with (g->name, "to_v"))
      && down && down->ndim == 2)
    families &= down->shape[1] == 768    ? SD1
                : down->shape[1] == 1024 ? SD2
                : down->shape[1] == 2048 ? SDXL
                                         : ANY;
  return families;
}

static const char *
families_name (unsigned families)
{
  switch (families)
    {
    case SD1: return gc_family_name (GC_FAMILY_SD1);
    case SD2: return gc_family_name (GC_FAMILY_SD2);
    case SDXL: return gc_family_name (GC_FAMILY_SDXL);
    case SD1 | SD2: return "SD 1.x or SD 2.x";
    case SD1 | SDXL: return "SD 1.x or SDXL";
    case SD2 | SDXL: return "SD 2.x or SDXL";
    }
  return "another model";
}

/* Refuses a LoRA whose module names or shapes belong to another family than the model's.
 * Modules that contradict each other leave the decision to the shapes of the model. */
static gc_status
check_family (const gc_lora *lora, const gc_checkpoint *c, const part *parts, size_t n,
              gc_error *err)
{
  unsigned families = ANY;
  bool conflict = false;
  const char *shown_by[3] = { NULL }; /* per family, the first module that excludes it */
  for (size_t i = 0; i < n;)
    {
      group g;
      bool duplicate;
      i = gather (parts, n, i, &g, &duplicate);
      unsigned f = name_families (g.name) & shape_families (&g);
      if (f == 0)
        continue;
      conflict |= (families & f) == 0;
      families &= f;
      for (int k = 0; k < 3; k++)
        if (!(f & (1u << k)) && shown_by[k] == NULL)
          shown_by[k] = g.name;
    }
  gc_family model = gc_checkpoint_family (c);
  if (conflict || (families & (1u << model)))
    return GC_OK;
  return gc_error_set (err, GC_ERR_MISMATCH,
                       "%s is a LoRA for %s, the model is %s (as its module %s shows): it "
                       "cannot be applied",
                       base_name (lora->path), families_name (families),
                       gc_family_name (model), shown_by[model]);
}

/* ------------------------------------------------------------------ opening */

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
  qsort (parts, n_parts, sizeof *parts, compare_parts);
  gc_status s = check_family (lora, c, parts, n_parts, err);
  if (s == GC_OK)
    s = gc_lora_names_build (&names, c, err);
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

static gc_lora *
new_lora (const char *path, const gc_checkpoint *checkpoint)
{
  gc_lora *lora = calloc (1, sizeof *lora);
  if (lora == NULL || (lora->path = strdup (path)) == NULL)
    {
      free (lora);
      return NULL;
    }
  lora->checkpoint = checkpoint;
  return lora;
}

/* Reads the modules of a LoRA whose file was opened with status s. */
static gc_status
finish_open (gc_lora **out, gc_lora *lora, gc_status s, gc_error *err)
{
  if (s == GC_OK)
    s = read_modules (lora, lora->checkpoint, err);
  if (s != GC_OK)
    {
      gc_lora_free (lora);
      return s;
    }
  *out = lora;
  return GC_OK;
}

gc_status
gc_lora_open (gc_lora **out, const char *path, const gc_checkpoint *checkpoint, gc_error *err)
{
  *out = NULL;
  gc_lora *lora = new_lora (path, checkpoint);
  if (lora == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory opening %s", path);
  return finish_open (out, lora, gc_safetensors_open (&lora->file, path, err), err);
}

gc_status
gc_lora_open_memory (gc_lora **out, const void *bytes, size_t size, const char *name,
                     const gc_checkpoint *checkpoint, gc_error *err)
{
  *out = NULL;
  gc_lora *lora = new_lora (name, checkpoint);
  if (lora == NULL)
    return gc_error_set (err, GC_ERR_NOMEM, "out of memory opening %s", name);
  gc_status s = gc_safetensors_open_memory (&lora->file, bytes, size, err);
  if (s != GC_OK)
    gc_error_prefix (err, "%s", name);
  return finish_open (out, lora, s, err);
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
