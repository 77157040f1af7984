/* LoRA files of every accepted format, applied as styles to the tiny model: each weight the
 * engine computes (gc_param_f32) must equal W₀ + Σ w·ΔW with ΔW from naive loops written from
 * the formulas of gc-lora.h; files for another model must be refused whole. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gc-lora.h"
#include "gc-param.h"
#include "gc-safetensors.h"
#include "gc-styles.h"

#define TE_Q "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight"
#define KOHYA_TE_Q "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
#define CONV1 "model.diffusion_model.input_blocks.1.0.in_layers.2.weight"
#define KOHYA_CONV1 "lora_unet_down_blocks_0_resnets_0_conv1"
#define TO_K "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
#define PEFT_TO_K "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
#define UPSAMPLER "model.diffusion_model.output_blocks.2.1.conv.weight"
#define KOHYA_UPSAMPLER "lora_unet_up_blocks_0_upsamplers_0_conv"
#define TO_OUT "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_out.0.weight"
#define PROJ_IN "model.diffusion_model.input_blocks.1.1.proj_in.weight"
#define FF1 "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight"

typedef struct {
  gc_checkpoint *checkpoint;
  gc_styles *styles;
  gc_arena scratch;
  char *dir;
} fixture;

/* ------------------------------------------------------------------ building files */

typedef struct {
  GPtrArray *names;  /* owned */
  GArray *entries;   /* gc_st_entry */
  GPtrArray *data;   /* float arrays, owned */
} lora_builder;

static void
builder_init (lora_builder *b)
{
  b->names = g_ptr_array_new_with_free_func (g_free);
  b->entries = g_array_new (FALSE, TRUE, sizeof (gc_st_entry));
  b->data = g_ptr_array_new_with_free_func (g_free);
}

static void
builder_clear (lora_builder *b)
{
  g_ptr_array_unref (b->names);
  g_array_unref (b->entries);
  g_ptr_array_unref (b->data);
}

static int64_t
numel (int ndim, const int64_t *shape)
{
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  return n;
}

/* Adds a float32 tensor of deterministic values in about ±scale; returns its data. */
static float *
add (lora_builder *b, const char *module, const char *part, int ndim, const int64_t *shape,
     double scale)
{
  char *name = g_strconcat (module, part, NULL);
  g_ptr_array_add (b->names, name);
  gc_st_entry e = { name, GC_DTYPE_F32, ndim };
  memcpy (e.shape, shape, sizeof (int64_t) * (size_t) ndim);
  g_array_append_val (b->entries, e);
  int64_t n = numel (ndim, shape);
  float *data = g_new (float, n ? n : 1);
  GRand *rand = g_rand_new_with_seed (g_str_hash (name));
  for (int64_t i = 0; i < n; i++)
    data[i] = (float) (scale * g_rand_double_range (rand, -1, 1));
  g_rand_free (rand);
  g_ptr_array_add (b->data, data);
  return data;
}

static void
add_alpha (lora_builder *b, const char *module, float alpha)
{
  float *a = add (b, module, ".alpha", 0, NULL, 0);
  *a = alpha;
}

static char *
write_lora (fixture *f, lora_builder *b, const char *file)
{
  char *path = g_build_filename (f->dir, file, NULL);
  gc_error err = { 0 };
  if (gc_safetensors_write (path, (const gc_st_entry *) b->entries->data,
                            (const void *const *) b->data->pdata, b->entries->len, NULL, 0, &err))
    g_error ("%s", err.message);
  return path;
}

/* ------------------------------------------------------------------ checking weights */

static void
fixture_set_up (fixture *f, gconstpointer data)
{
  const char *tiny = g_getenv ("GOUACHE_TINY_MODEL");
  g_assert_nonnull (tiny);
  gc_error err = { 0 };
  if (gc_checkpoint_open (&f->checkpoint, tiny, &err) || gc_styles_new (&f->styles, f->checkpoint, &err))
    g_error ("%s", err.message);
  gc_arena_init (&f->scratch, 0);
  f->dir = g_dir_make_tmp ("test-lora-XXXXXX", NULL);
}

static void
fixture_tear_down (fixture *f, gconstpointer data)
{
  gc_styles_free (f->styles);
  gc_checkpoint_close (f->checkpoint);
  gc_arena_free (&f->scratch);
  g_autoptr (GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *path = g_build_filename (f->dir, name, NULL);
      g_remove (path);
    }
  g_rmdir (f->dir);
  g_free (f->dir);
}

static gc_param
bind (fixture *f, const char *key)
{
  gc_param p;
  const gc_st_tensor *t = gc_checkpoint_find (f->checkpoint, key);
  g_assert_nonnull (t);
  gc_error err = { 0 };
  if (gc_param_bind (&p, f->checkpoint, key, t->ndim, t->shape, &err))
    g_error ("%s", err.message);
  return p;
}

static float *
original (fixture *f, const char *key)
{
  gc_param p = bind (f, key);
  float *w0 = g_new (float, gc_param_numel (&p));
  gc_weight_to_f32 (w0, &p.weight);
  return w0;
}

/* The engine's styled weight equals w0 + delta (relative to the largest change). */
static void
assert_weight (fixture *f, const char *key, const float *w0, const double *delta)
{
  gc_param p = bind (f, key);
  gc_arena_mark_t mark = gc_arena_mark (&f->scratch);
  const float *w = gc_param_f32 (&f->scratch, &p);
  g_assert_nonnull (w);
  double worst = 0, largest = 1e-12;
  for (int64_t i = 0; i < gc_param_numel (&p); i++)
    {
      worst = fmax (worst, fabs (w[i] - (w0[i] + delta[i])));
      largest = fmax (largest, fabs (delta[i]));
    }
  g_assert_cmpfloat (worst / largest, <, 1e-5);
  gc_arena_reset (&f->scratch, mark);
}

static gc_lora *
open_lora (fixture *f, const char *path)
{
  gc_lora *lora;
  gc_error err = { 0 };
  if (gc_lora_open (&lora, path, f->checkpoint, &err))
    g_error ("%s", err.message);
  return lora;
}

static void
add_style (fixture *f, const char *path, double weight, double text_weight)
{
  gc_error err = { 0 };
  if (gc_styles_add (f->styles, open_lora (f, path), weight, text_weight, &err))
    g_error ("%s", err.message);
}

/* delta[o, n] += c · up[o, r] · down[r, n] */
static void
naive_low_rank (double *delta, const float *up, const float *down, int64_t out, int64_t r,
                int64_t n, double c)
{
  for (int64_t o = 0; o < out; o++)
    for (int64_t j = 0; j < n; j++)
      {
        double sum = 0;
        for (int64_t k = 0; k < r; k++)
          sum += (double) up[o * r + k] * down[k * n + j];
        delta[o * n + j] += c * sum;
      }
}

/* ------------------------------------------------------------------ kohya LoRA and LoCon */

static void
test_kohya_linear_and_locon (fixture *f, gconstpointer data)
{
  lora_builder b;
  builder_init (&b);
  /* linear, alpha 2 of rank 4; 3×3 conv, no alpha (scale 1); upsampler conv, alpha 0 (= rank) */
  float *up = add (&b, KOHYA_TE_Q, ".lora_up.weight", 2, (int64_t[]) { 64, 4 }, 0.1);
  float *down = add (&b, KOHYA_TE_Q, ".lora_down.weight", 2, (int64_t[]) { 4, 64 }, 0.1);
  add_alpha (&b, KOHYA_TE_Q, 2);
  float *cup = add (&b, KOHYA_CONV1, ".lora_up.weight", 4, (int64_t[]) { 32, 8, 1, 1 }, 0.1);
  float *cdown = add (&b, KOHYA_CONV1, ".lora_down.weight", 4, (int64_t[]) { 8, 32, 3, 3 }, 0.1);
  float *uup = add (&b, KOHYA_UPSAMPLER, ".lora_up.weight", 4, (int64_t[]) { 128, 2, 1, 1 }, 0.1);
  float *udown = add (&b, KOHYA_UPSAMPLER, ".lora_down.weight", 4, (int64_t[]) { 2, 128, 3, 3 }, 0.1);
  add_alpha (&b, KOHYA_UPSAMPLER, 0);
  g_autofree char *path = write_lora (f, &b, "kohya.safetensors");
  g_autofree float *q0 = original (f, TE_Q), *c0 = original (f, CONV1), *u0 = original (f, UPSAMPLER);
  add_style (f, path, 0.8, -0.5);

  gc_lora_report r = gc_lora_get_report (gc_styles_lora (f->styles, 0));
  g_assert_cmpuint (r.tensors, ==, 8);
  g_assert_cmpuint (r.applied, ==, 8);
  g_assert_cmpuint (r.text_weights, ==, 1);
  g_assert_cmpuint (r.unet_weights, ==, 2);
  g_assert_cmpuint (r.unmatched, ==, 0);

  g_autofree double *dq = g_new0 (double, 64 * 64);
  naive_low_rank (dq, up, down, 64, 4, 64, -0.5 * 2.0 / 4); /* text weight */
  assert_weight (f, TE_Q, q0, dq);
  g_autofree double *dc = g_new0 (double, 32 * 32 * 9);
  naive_low_rank (dc, cup, cdown, 32, 8, 32 * 9, 0.8);
  assert_weight (f, CONV1, c0, dc);
  g_autofree double *du = g_new0 (double, 128 * 128 * 9);
  naive_low_rank (du, uup, udown, 128, 2, 128 * 9, 0.8);
  assert_weight (f, UPSAMPLER, u0, du);
  builder_clear (&b);
}

/* LoCon with a Tucker core: ΔW[o, c, e] = Σ_i Σ_j up[o, i]·mid[i, j, e]·down[j, c]. */
static void
test_locon_tucker (fixture *f, gconstpointer data)
{
  lora_builder b;
  builder_init (&b);
  float *up = add (&b, KOHYA_CONV1, ".lora_up.weight", 4, (int64_t[]) { 32, 4, 1, 1 }, 0.2);
  float *down = add (&b, KOHYA_CONV1, ".lora_down.weight", 4, (int64_t[]) { 4, 32, 1, 1 }, 0.2);
  float *mid = add (&b, KOHYA_CONV1, ".lora_mid.weight", 4, (int64_t[]) { 4, 4, 3, 3 }, 0.2);
  add_alpha (&b, KOHYA_CONV1, 1);
  g_autofree char *path = write_lora (f, &b, "tucker.safetensors");
  g_autofree float *w0 = original (f, CONV1);
  add_style (f, path, 1.5, 1.5);
  g_autofree double *delta = g_new0 (double, 32 * 32 * 9);
  for (int o = 0; o < 32; o++)
    for (int c = 0; c < 32; c++)
      for (int e = 0; e < 9; e++)
        {
          double sum = 0;
          for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
              sum += (double) up[o * 4 + i] * mid[(i * 4 + j) * 9 + e] * down[j * 32 + c];
          delta[(o * 32 + c) * 9 + e] = 1.5 * 0.25 * sum;
        }
  assert_weight (f, CONV1, w0, delta);
  builder_clear (&b);
}

/* ------------------------------------------------------------------ other spellings */

static void
test_peft_and_diffusers_names (fixture *f, gconstpointer data)
{
  lora_builder b;
  builder_init (&b);
  float *a = add (&b, PEFT_TO_K, ".lora_A.weight", 2, (int64_t[]) { 4, 64 }, 0.1);
  float *bb = add (&b, PEFT_TO_K, ".lora_B.weight", 2, (int64_t[]) { 32, 4 }, 0.1);
  const char *te = "text_encoder.text_model.encoder.layers.0.self_attn.q_proj";
  float *tdown = add (&b, te, ".lora_linear_layer.down.weight", 2, (int64_t[]) { 2, 64 }, 0.1);
  float *tup = add (&b, te, ".lora_linear_layer.up.weight", 2, (int64_t[]) { 64, 2 }, 0.1);
  const char *proc = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out";
  float *pdown = add (&b, proc, "_lora.down.weight", 2, (int64_t[]) { 2, 32 }, 0.1);
  float *pup = add (&b, proc, "_lora.up.weight", 2, (int64_t[]) { 32, 2 }, 0.1);
  const char *ldm = "lora_unet_input_blocks_1_1_proj_in";
  float *ldown = add (&b, ldm, ".lora.down.weight", 4, (int64_t[]) { 2, 32, 1, 1 }, 0.1);
  float *lup = add (&b, ldm, ".lora.up.weight", 4, (int64_t[]) { 32, 2, 1, 1 }, 0.1);
  add (&b, "lora_unet_no_such_layer", ".lora_down.weight", 2, (int64_t[]) { 2, 2 }, 0.1);
  add (&b, "lora_unet_no_such_layer", ".lora_up.weight", 2, (int64_t[]) { 2, 2 }, 0.1);
  add (&b, PEFT_TO_K, ".diff_b", 1, (int64_t[]) { 32 }, 0.1);
  g_autofree char *path = write_lora (f, &b, "peft.safetensors");
  g_autofree float *k0 = original (f, TO_K), *q0 = original (f, TE_Q);
  g_autofree float *o0 = original (f, TO_OUT), *p0 = original (f, PROJ_IN);
  add_style (f, path, 1, 1);

  const gc_lora *lora = gc_styles_lora (f->styles, 0);
  gc_lora_report r = gc_lora_get_report (lora);
  g_assert_cmpuint (r.applied, ==, 8);
  g_assert_cmpuint (r.unmatched, ==, 3);
  g_assert_cmpstr (gc_lora_unmatched (lora, 0), ==, "lora_unet_no_such_layer.lora_down.weight");
  g_assert_cmpstr (gc_lora_unmatched (lora, 1), ==, "lora_unet_no_such_layer.lora_up.weight");
  g_assert_cmpstr (gc_lora_unmatched (lora, 2), ==, PEFT_TO_K ".diff_b");

  g_autofree double *dk = g_new0 (double, 32 * 64), *dq = g_new0 (double, 64 * 64);
  g_autofree double *dout = g_new0 (double, 32 * 32), *dp = g_new0 (double, 32 * 32);
  naive_low_rank (dk, bb, a, 32, 4, 64, 1);
  naive_low_rank (dq, tup, tdown, 64, 2, 64, 1);
  naive_low_rank (dout, pup, pdown, 32, 2, 32, 1);
  naive_low_rank (dp, lup, ldown, 32, 2, 32, 1);
  assert_weight (f, TO_K, k0, dk);
  assert_weight (f, TE_Q, q0, dq);
  assert_weight (f, TO_OUT, o0, dout);
  assert_weight (f, PROJ_IN, p0, dp);
  builder_clear (&b);
}

/* ------------------------------------------------------------------ LyCORIS */

static void
test_loha (fixture *f, gconstpointer data)
{
  lora_builder b;
  builder_init (&b);
  /* plain on a linear layer, alpha 3 of rank 2 */
  float *w1a = add (&b, KOHYA_TE_Q, ".hada_w1_a", 2, (int64_t[]) { 64, 2 }, 0.3);
  float *w1b = add (&b, KOHYA_TE_Q, ".hada_w1_b", 2, (int64_t[]) { 2, 64 }, 0.3);
  float *w2a = add (&b, KOHYA_TE_Q, ".hada_w2_a", 2, (int64_t[]) { 64, 3 }, 0.3);
  float *w2b = add (&b, KOHYA_TE_Q, ".hada_w2_b", 2, (int64_t[]) { 3, 64 }, 0.3);
  add_alpha (&b, KOHYA_TE_Q, 3);
  /* Tucker on a 3×3 convolution: w_a [r, out], w_b [r, in], t [r, r, 3, 3] */
  float *t1 = add (&b, KOHYA_CONV1, ".hada_t1", 4, (int64_t[]) { 2, 2, 3, 3 }, 0.3);
  float *t2 = add (&b, KOHYA_CONV1, ".hada_t2", 4, (int64_t[]) { 2, 2, 3, 3 }, 0.3);
  float *c1a = add (&b, KOHYA_CONV1, ".hada_w1_a", 2, (int64_t[]) { 2, 32 }, 0.3);
  float *c1b = add (&b, KOHYA_CONV1, ".hada_w1_b", 2, (int64_t[]) { 2, 32 }, 0.3);
  float *c2a = add (&b, KOHYA_CONV1, ".hada_w2_a", 2, (int64_t[]) { 2, 32 }, 0.3);
  float *c2b = add (&b, KOHYA_CONV1, ".hada_w2_b", 2, (int64_t[]) { 2, 32 }, 0.3);
  g_autofree char *path = write_lora (f, &b, "loha.safetensors");
  g_autofree float *q0 = original (f, TE_Q), *c0 = original (f, CONV1);
  add_style (f, path, 0.6, 0.6);

  g_autofree double *dq = g_new0 (double, 64 * 64);
  for (int o = 0; o < 64; o++)
    for (int j = 0; j < 64; j++)
      {
        double x = 0, y = 0;
        for (int k = 0; k < 2; k++)
          x += (double) w1a[o * 2 + k] * w1b[k * 64 + j];
        for (int k = 0; k < 3; k++)
          y += (double) w2a[o * 3 + k] * w2b[k * 64 + j];
        dq[o * 64 + j] = 0.6 * 1.5 * x * y;
      }
  assert_weight (f, TE_Q, q0, dq);
  g_autofree double *dc = g_new0 (double, 32 * 32 * 9);
  for (int p = 0; p < 32; p++)
    for (int r = 0; r < 32; r++)
      for (int e = 0; e < 9; e++)
        {
          double m1 = 0, m2 = 0;
          for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
              {
                m1 += (double) t1[(i * 2 + j) * 9 + e] * c1b[j * 32 + r] * c1a[i * 32 + p];
                m2 += (double) t2[(i * 2 + j) * 9 + e] * c2b[j * 32 + r] * c2a[i * 32 + p];
              }
          dc[(p * 32 + r) * 9 + e] = 0.6 * m1 * m2;
        }
  assert_weight (f, CONV1, c0, dc);
  builder_clear (&b);
}

static void
test_lokr (fixture *f, gconstpointer data)
{
  lora_builder b;
  builder_init (&b);
  /* linear [256, 32] = kron(w1 [4, 2], w2_a·w2_b [64, 16]); alpha 2 of rank 4 */
  float *w1 = add (&b, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_0_proj",
                   ".lokr_w1", 2, (int64_t[]) { 4, 2 }, 0.5);
  float *w2a = add (&b, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_0_proj",
                    ".lokr_w2_a", 2, (int64_t[]) { 64, 4 }, 0.5);
  float *w2b = add (&b, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_0_proj",
                    ".lokr_w2_b", 2, (int64_t[]) { 4, 16 }, 0.5);
  add_alpha (&b, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_0_proj", 2);
  /* 3×3 conv [32, 32, 3, 3] = kron(w1_a·w1_b [2, 4], Tucker w2 [16, 8, 3, 3]) */
  float *c1a = add (&b, KOHYA_CONV1, ".lokr_w1_a", 2, (int64_t[]) { 2, 1 }, 0.5);
  float *c1b = add (&b, KOHYA_CONV1, ".lokr_w1_b", 2, (int64_t[]) { 1, 4 }, 0.5);
  float *t2 = add (&b, KOHYA_CONV1, ".lokr_t2", 4, (int64_t[]) { 3, 3, 3, 3 }, 0.5);
  float *c2a = add (&b, KOHYA_CONV1, ".lokr_w2_a", 2, (int64_t[]) { 3, 16 }, 0.5);
  float *c2b = add (&b, KOHYA_CONV1, ".lokr_w2_b", 2, (int64_t[]) { 3, 8 }, 0.5);
  g_autofree char *path = write_lora (f, &b, "lokr.safetensors");
  g_autofree float *f0 = original (f, FF1), *c0 = original (f, CONV1);
  add_style (f, path, 1, 1);

  g_autofree double *df = g_new0 (double, 256 * 32);
  for (int row = 0; row < 256; row++)
    for (int col = 0; col < 32; col++)
      {
        double w2 = 0;
        for (int k = 0; k < 4; k++)
          w2 += (double) w2a[(row % 64) * 4 + k] * w2b[k * 16 + col % 16];
        df[row * 32 + col] = 0.5 * w1[(row / 64) * 2 + col / 16] * w2;
      }
  assert_weight (f, FF1, f0, df);
  /* no alpha: scale 1 */
  g_autofree double *dc = g_new0 (double, 32 * 32 * 9);
  for (int o = 0; o < 32; o++)
    for (int c = 0; c < 32; c++)
      for (int e = 0; e < 9; e++)
        {
          double k1 = (double) c1a[o / 16] * c1b[c / 8], k2 = 0;
          for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
              k2 += (double) t2[(i * 3 + j) * 9 + e] * c2b[j * 8 + c % 8] * c2a[i * 16 + o % 16];
          dc[(o * 32 + c) * 9 + e] = k1 * k2;
        }
  assert_weight (f, CONV1, c0, dc);
  builder_clear (&b);
}

/* DoRA: Wd = (W₀ + s·ΔW)·m / ‖W₀ + s·ΔW‖ per output row or per input channel, blended as
 * W₀ + w·(Wd − W₀). */
static void
check_dora (fixture *f, gboolean on_output)
{
  lora_builder b;
  builder_init (&b);
  float *up = add (&b, KOHYA_CONV1, ".lora_up.weight", 4, (int64_t[]) { 32, 2, 1, 1 }, 0.2);
  float *down = add (&b, KOHYA_CONV1, ".lora_down.weight", 4, (int64_t[]) { 2, 32, 3, 3 }, 0.2);
  add_alpha (&b, KOHYA_CONV1, 1);
  int64_t axis = 32;
  float *m = on_output ? add (&b, KOHYA_CONV1, ".dora_scale", 4, (int64_t[]) { 32, 1, 1, 1 }, 1)
                       : add (&b, KOHYA_CONV1, ".dora_scale", 4, (int64_t[]) { 1, 32, 1, 1 }, 1);
  g_autofree char *path = write_lora (f, &b, "dora.safetensors");
  g_autofree float *w0 = original (f, CONV1);
  add_style (f, path, 0.7, 0.7);

  int64_t n = 32 * 9;
  g_autofree double *wc = g_new0 (double, 32 * n), *norm = g_new0 (double, axis);
  naive_low_rank (wc, up, down, 32, 2, n, 0.5);
  for (int64_t i = 0; i < 32 * n; i++)
    {
      wc[i] += w0[i];
      norm[on_output ? i / n : (i % n) / 9] += wc[i] * wc[i];
    }
  g_autofree double *delta = g_new0 (double, 32 * n);
  for (int64_t i = 0; i < 32 * n; i++)
    {
      int64_t k = on_output ? i / n : (i % n) / 9;
      delta[i] = 0.7 * (wc[i] * m[k] / (sqrt (norm[k]) + 1.1920929e-7) - w0[i]);
    }
  assert_weight (f, CONV1, w0, delta);
  builder_clear (&b);
}

static void
test_dora (fixture *f, gconstpointer data)
{
  check_dora (f, TRUE);
  gc_styles_remove (f->styles, 0);
  check_dora (f, FALSE);
}

/* ------------------------------------------------------------------ blending */

static char *
simple_lora (fixture *f, const char *file, float **up, float **down)
{
  lora_builder b;
  builder_init (&b);
  float *u = add (&b, KOHYA_TE_Q, ".lora_up.weight", 2, (int64_t[]) { 64, 2 }, 0.1);
  float *d = add (&b, KOHYA_TE_Q, ".lora_down.weight", 2, (int64_t[]) { 2, 64 }, 0.1);
  *up = g_memdup2 (u, 64 * 2 * sizeof (float));
  *down = g_memdup2 (d, 2 * 64 * sizeof (float));
  char *path = write_lora (f, &b, file);
  builder_clear (&b);
  return path;
}

static void
test_blend_and_reweight (fixture *f, gconstpointer data)
{
  g_autofree float *ua = NULL, *da = NULL, *ub = NULL, *db = NULL;
  g_autofree char *a = simple_lora (f, "a.safetensors", &ua, &da);
  g_autofree char *b = simple_lora (f, "b.safetensors", &ub, &db);
  g_autofree float *w0 = original (f, TE_Q);
  add_style (f, a, 0.7, 0.7);
  add_style (f, b, 0.3, 0.3);
  g_autofree double *delta = g_new0 (double, 64 * 64);
  naive_low_rank (delta, ua, da, 64, 2, 64, 0.7);
  naive_low_rank (delta, ub, db, 64, 2, 64, 0.3);
  assert_weight (f, TE_Q, w0, delta);

  /* a new weight is used at once, from W₀ */
  gc_error err = { 0 };
  g_assert_cmpint (gc_styles_set_weights (f->styles, 0, -2, -2, &err), ==, GC_OK);
  memset (delta, 0, 64 * 64 * sizeof (double));
  naive_low_rank (delta, ua, da, 64, 2, 64, -2);
  naive_low_rank (delta, ub, db, 64, 2, 64, 0.3);
  assert_weight (f, TE_Q, w0, delta);

  /* out of range: refused, nothing changes; the next use widens the merge kept in fp16 */
  g_assert_cmpint (gc_styles_set_weights (f->styles, 1, 2.5, 0, &err), ==, GC_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "-2 to 2"));
  gc_param q = bind (f, TE_Q);
  const float *kept = gc_param_f32 (&f->scratch, &q);
  for (int i = 0; i < 64 * 64; i++)
    {
      double exact = w0[i] + delta[i];
      g_assert_cmpfloat (fabs (kept[i] - exact), <=, fabs (exact) * 0x1p-11 + 1e-6);
      g_assert_cmpfloat (kept[i], ==, gc_f16_to_f32 (gc_f32_to_f16 (kept[i]))); /* an fp16 value */
    }

  /* a text weight of its own: this text-encoder weight follows it */
  g_assert_cmpint (gc_styles_set_weights (f->styles, 1, 0.3, 1.25, &err), ==, GC_OK);
  memset (delta, 0, 64 * 64 * sizeof (double));
  naive_low_rank (delta, ua, da, 64, 2, 64, -2);
  naive_low_rank (delta, ub, db, 64, 2, 64, 1.25);
  assert_weight (f, TE_Q, w0, delta);

  /* removing every style leaves W₀ exactly */
  gc_styles_remove (f->styles, 1);
  gc_styles_remove (f->styles, 0);
  gc_param p = bind (f, TE_Q);
  g_assert_false (gc_param_is_patched (&p));
  const float *w = gc_param_f32 (&f->scratch, &p);
  g_assert_cmpmem (w, 64 * 64 * sizeof (float), w0, 64 * 64 * sizeof (float));
}

/* ------------------------------------------------------------------ refusals */

static gc_status
try_open (fixture *f, lora_builder *b, gc_error *err)
{
  g_autofree char *path = write_lora (f, b, "refused.safetensors");
  gc_lora *lora = NULL;
  gc_status s = gc_lora_open (&lora, path, f->checkpoint, err);
  g_assert_null (lora);
  return s;
}

static void
test_other_model_refused (fixture *f, gconstpointer data)
{
  /* an SD 1.5 text-encoder LoRA (width 768) on the tiny model (width 64); its first module
   * fits, so a half-applied LoRA would show there */
  lora_builder b;
  builder_init (&b);
  add (&b, "lora_te_text_model_encoder_layers_0_mlp_fc1", ".lora_up.weight", 2, (int64_t[]) { 256, 4 }, 0.1);
  add (&b, "lora_te_text_model_encoder_layers_0_mlp_fc1", ".lora_down.weight", 2, (int64_t[]) { 4, 64 }, 0.1);
  add (&b, KOHYA_TE_Q, ".lora_up.weight", 2, (int64_t[]) { 768, 4 }, 0.1);
  add (&b, KOHYA_TE_Q, ".lora_down.weight", 2, (int64_t[]) { 4, 768 }, 0.1);
  gc_error err = { 0 };
  g_assert_cmpint (try_open (f, &b, &err), ==, GC_ERR_MISMATCH);
  g_assert_nonnull (strstr (err.message, KOHYA_TE_Q));
  g_assert_nonnull (strstr (err.message, "[768, 768]"));
  g_assert_nonnull (strstr (err.message, "[64, 64]"));
  g_assert_nonnull (strstr (err.message, "refused.safetensors"));
  builder_clear (&b);
}

static void
test_sdxl_refused (fixture *f, gconstpointer data)
{
  lora_builder b;
  builder_init (&b);
  add (&b, "lora_te1_text_model_encoder_layers_0_self_attn_q_proj", ".lora_up.weight", 2, (int64_t[]) { 64, 4 }, 0.1);
  add (&b, "lora_te1_text_model_encoder_layers_0_self_attn_q_proj", ".lora_down.weight", 2, (int64_t[]) { 4, 64 }, 0.1);
  gc_error err = { 0 };
  g_assert_cmpint (try_open (f, &b, &err), ==, GC_ERR_MISMATCH);
  g_assert_nonnull (strstr (err.message, "a LoRA for SDXL, the model is SD 1.x"));
  builder_clear (&b);
}

static void
test_nothing_matches_refused (fixture *f, gconstpointer data)
{
  lora_builder b;
  builder_init (&b);
  add (&b, "transformer.single_blocks.0.attn.to_q", ".lora_A.weight", 2, (int64_t[]) { 4, 64 }, 0.1);
  add (&b, "transformer.single_blocks.0.attn.to_q", ".lora_B.weight", 2, (int64_t[]) { 64, 4 }, 0.1);
  gc_error err = { 0 };
  g_assert_cmpint (try_open (f, &b, &err), ==, GC_ERR_MISMATCH);
  g_assert_nonnull (strstr (err.message, "changes no weight"));
  builder_clear (&b);
}

static void
test_malformed_refused (fixture *f, gconstpointer data)
{
  lora_builder b;
  builder_init (&b);
  add (&b, KOHYA_TE_Q, ".lora_up.weight", 2, (int64_t[]) { 64, 4 }, 0.1);
  gc_error err = { 0 };
  g_assert_cmpint (try_open (f, &b, &err), ==, GC_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "no down factor"));
  builder_clear (&b);

  builder_init (&b);
  add (&b, KOHYA_TE_Q, ".lora_up.weight", 2, (int64_t[]) { 64, 4 }, 0.1);
  add (&b, KOHYA_TE_Q, ".lora_down.weight", 2, (int64_t[]) { 4, 64 }, 0.1);
  add (&b, KOHYA_TE_Q, ".alpha", 1, (int64_t[]) { 3 }, 1);
  g_assert_cmpint (try_open (f, &b, &err), ==, GC_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "alpha"));
  builder_clear (&b);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/core/lora/kohya/linear-and-locon", test_kohya_linear_and_locon);
  ADD ("/core/lora/kohya/locon-tucker", test_locon_tucker);
  ADD ("/core/lora/names/peft-and-diffusers", test_peft_and_diffusers_names);
  ADD ("/core/lora/lycoris/loha", test_loha);
  ADD ("/core/lora/lycoris/lokr", test_lokr);
  ADD ("/core/lora/dora", test_dora);
  ADD ("/core/lora/styles/blend-and-reweight", test_blend_and_reweight);
  ADD ("/core/lora/refused/other-model", test_other_model_refused);
  ADD ("/core/lora/refused/sdxl", test_sdxl_refused);
  ADD ("/core/lora/refused/nothing-matches", test_nothing_matches_refused);
  ADD ("/core/lora/refused/malformed", test_malformed_refused);
#undef ADD
  return g_test_run ();
}
