/* LoRAs for SD 2.x and SDXL on the tiny models. Kohya files from the random generator
 * (gc-random-lora.h) have every tensor matched; each weight the engine computes equals
 * W₀ + Σ w·(alpha/rank)·up·down computed naively from the file, on the rows of OpenCLIP's
 * in_proj_weight for q, k and v, and so do the text encoders' and the UNet's outputs (against a
 * checkpoint holding the naive merge); the other names SDXL LoRAs use (diffusers paths, PEFT,
 * bias changes) land on the right weights; blends re-weight and bake; and a LoRA of one family
 * is refused on another with both families named. The module names the tests expect are
 * written here from the formats, not taken from the engine. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gc-bake.h"
#include "gc-lora.h"
#include "gc-param.h"
#include "gc-random-lora.h"
#include "gc-safetensors.h"
#include "gc-styles.h"
#include "gc-text-encoder.h"
#include "gc-unet.h"

#define UNET "model.diffusion_model."
#define TE1 "conditioner.embedders.0.transformer.text_model.encoder.layers."
#define TE2 "conditioner.embedders.1.model.transformer.resblocks."

typedef struct {
  gc_arena scratch;
  char *dir;
} fixture;

static void
fixture_set_up (fixture *f, gconstpointer data)
{
  gc_arena_init (&f->scratch, 0);
  f->dir = g_dir_make_tmp ("test-lora-families-XXXXXX", NULL);
}

static void
fixture_tear_down (fixture *f, gconstpointer data)
{
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

static gc_checkpoint *
open_checkpoint_path (const char *path)
{
  gc_checkpoint *c;
  gc_error err = { 0 };
  if (gc_checkpoint_open (&c, path, &err))
    g_error ("%s", err.message);
  return c;
}

static gc_checkpoint *
open_checkpoint (const char *variable)
{
  const char *path = g_getenv (variable);
  g_assert_nonnull (path);
  return open_checkpoint_path (path);
}

static char *
random_lora (fixture *f, const gc_checkpoint *c, int64_t rank, uint64_t seed, const char *file)
{
  char *path = g_build_filename (f->dir, file, NULL);
  gc_error err = { 0 };
  if (gc_random_lora_write (c, rank, seed, path, &err))
    g_error ("%s", err.message);
  return path;
}

static gc_lora *
open_lora (const char *path, const gc_checkpoint *c)
{
  gc_lora *lora;
  gc_error err = { 0 };
  if (gc_lora_open (&lora, path, c, &err))
    g_error ("%s", err.message);
  return lora;
}

static void
add_style (gc_styles *styles, const char *path, const gc_checkpoint *c, double weight,
           double text_weight)
{
  gc_error err = { 0 };
  if (gc_styles_add (styles, open_lora (path, c), weight, text_weight, &err))
    g_error ("%s", err.message);
}

static int64_t
numel (const gc_st_tensor *t)
{
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

static double *
values (const gc_st_tensor *t)
{
  g_autofree float *f = g_new (float, numel (t));
  gc_convert_to_f32 (f, t->data, t->dtype, (size_t) numel (t));
  double *d = g_new (double, numel (t));
  for (int64_t i = 0; i < numel (t); i++)
    d[i] = f[i];
  return d;
}

/* ------------------------------------------------------------------ the expected modules */

/* A module the generator writes: kohya name, and the rows of the checkpoint weight it changes. */
typedef struct {
  char *kohya;
  const char *key;
  int64_t row, rows, n;
  gboolean text;
} module;

static const char *const unet_layers[] = {
  ".proj_in.weight", ".proj_out.weight", ".attn1.to_q.weight", ".attn1.to_k.weight",
  ".attn1.to_v.weight", ".attn1.to_out.0.weight", ".attn2.to_q.weight", ".attn2.to_k.weight",
  ".attn2.to_v.weight", ".attn2.to_out.0.weight", ".ff.net.0.proj.weight", ".ff.net.2.weight",
};

static const char *const clip_layers[] = {
  "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
  "mlp.fc1", "mlp.fc2",
};

static char *
kohya_name (const char *prefix, const char *path)
{
  char *name = g_strconcat (prefix, path, NULL);
  g_strdelimit (name + strlen (prefix), ".", '_');
  return name;
}

/* The diffusers path of an LDM transformer path (SD 1.x and 2.x: two blocks a level). */
static char *
diffusers_path (const char *ldm)
{
  int n, used = 0;
  if (sscanf (ldm, "input_blocks.%d.1.%n", &n, &used) == 1 && used)
    return g_strdup_printf ("down_blocks.%d.attentions.%d.%s", (n - 1) / 3, (n - 1) % 3,
                            ldm + used);
  if (g_str_has_prefix (ldm, "middle_block.1."))
    return g_strdup_printf ("mid_block.attentions.0.%s", ldm + strlen ("middle_block.1."));
  if (sscanf (ldm, "output_blocks.%d.1.%n", &n, &used) == 1 && used)
    return g_strdup_printf ("up_blocks.%d.attentions.%d.%s", n / 3, n % 3, ldm + used);
  g_assert_not_reached ();
}

static void
add_module (GArray *list, char *kohya, const char *key, const gc_st_tensor *t, int64_t row,
            int64_t rows, gboolean text)
{
  module m = { kohya, key, row, rows, numel (t) / t->shape[0], text };
  g_array_append_val (list, m);
}

static void
unet_module (GArray *list, const char *key, const gc_st_tensor *t, gc_family family)
{
  gboolean targeted = FALSE;
  for (size_t i = 0; i < G_N_ELEMENTS (unet_layers); i++)
    targeted |= g_str_has_suffix (key, unet_layers[i]);
  if (!targeted)
    return;
  g_autofree char *ldm = g_strndup (key + strlen (UNET), strlen (key) - strlen (UNET) - 7);
  g_autofree char *path = family == GC_FAMILY_SDXL ? g_strdup (ldm) : diffusers_path (ldm);
  add_module (list, kohya_name ("lora_unet_", path), key, t, 0, t->shape[0], FALSE);
}

/* CLIP (Hugging Face layout) below root */
static void
clip_module (GArray *list, const char *key, const gc_st_tensor *t, const char *root,
             const char *prefix)
{
  int layer, used = 0;
  const char *rest = key + strlen (root);
  if (!g_str_has_prefix (key, root)
      || sscanf (rest, "text_model.encoder.layers.%d.%n", &layer, &used) != 1 || used == 0)
    return;
  for (size_t i = 0; i < G_N_ELEMENTS (clip_layers); i++)
    {
      g_autofree char *weight = g_strconcat (clip_layers[i], ".weight", NULL);
      if (strcmp (rest + used, weight) == 0)
        {
          g_autofree char *path = g_strndup (rest, strlen (rest) - 7);
          add_module (list, kohya_name (prefix, path), key, t, 0, t->shape[0], TRUE);
        }
    }
}

/* OpenCLIP below root, named as Hugging Face's CLIP: q, k, v are rows of in_proj_weight */
static void
open_clip_module (GArray *list, const char *key, const gc_st_tensor *t, const char *root,
                  const char *prefix)
{
  int layer, used = 0;
  const char *rest = key + strlen (root);
  if (!g_str_has_prefix (key, root)
      || sscanf (rest, "transformer.resblocks.%d.%n", &layer, &used) != 1 || used == 0)
    return;
  const char *part = rest + used;
  int64_t d = t->shape[1];
  g_autofree char *base = g_strdup_printf ("%stext_model_encoder_layers_%d_", prefix, layer);
  if (strcmp (part, "attn.in_proj_weight") == 0)
    {
      add_module (list, g_strconcat (base, "self_attn_q_proj", NULL), key, t, 0, d, TRUE);
      add_module (list, g_strconcat (base, "self_attn_k_proj", NULL), key, t, d, d, TRUE);
      add_module (list, g_strconcat (base, "self_attn_v_proj", NULL), key, t, 2 * d, d, TRUE);
    }
  else if (strcmp (part, "attn.out_proj.weight") == 0)
    add_module (list, g_strconcat (base, "self_attn_out_proj", NULL), key, t, 0, d, TRUE);
  else if (strcmp (part, "mlp.c_fc.weight") == 0)
    add_module (list, g_strconcat (base, "mlp_fc1", NULL), key, t, 0, t->shape[0], TRUE);
  else if (strcmp (part, "mlp.c_proj.weight") == 0)
    add_module (list, g_strconcat (base, "mlp_fc2", NULL), key, t, 0, t->shape[0], TRUE);
}

static void
clear_module (gpointer data)
{
  g_free (((module *) data)->kohya);
}

/* Every module kohya's trainer targets by default in the checkpoint's UNet and encoders. */
static GArray *
expected_modules (const gc_checkpoint *c)
{
  GArray *list = g_array_new (FALSE, TRUE, sizeof (module));
  g_array_set_clear_func (list, clear_module);
  gc_family family = gc_checkpoint_family (c);
  for (size_t i = 0; i < gc_checkpoint_count (c); i++)
    {
      const char *key = gc_checkpoint_key (c, i);
      const gc_st_tensor *t = gc_checkpoint_tensor (c, i);
      if (g_str_has_prefix (key, UNET))
        unet_module (list, key, t, family);
      else if (family == GC_FAMILY_SDXL)
        {
          clip_module (list, key, t, "conditioner.embedders.0.transformer.", "lora_te1_");
          open_clip_module (list, key, t, "conditioner.embedders.1.model.", "lora_te2_");
        }
      else if (family == GC_FAMILY_SD2)
        open_clip_module (list, key, t, "cond_stage_model.model.", "lora_te_");
      else
        clip_module (list, key, t, "cond_stage_model.transformer.", "lora_te_");
    }
  return list;
}

/* ------------------------------------------------------------------ naive merges */

typedef struct {
  const char *path;
  double weight, text_weight;
} style_spec;

/* Per checkpoint key, Σ w·(alpha/rank)·up·down of the styles on the module's rows (double). */
static GHashTable *
naive_deltas (const gc_checkpoint *c, const GArray *modules, const style_spec *styles,
              size_t n_styles)
{
  GHashTable *deltas = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  for (size_t s = 0; s < n_styles; s++)
    {
      gc_safetensors *file;
      gc_error err = { 0 };
      if (gc_safetensors_open (&file, styles[s].path, &err))
        g_error ("%s", err.message);
      size_t used = 0;
      for (guint i = 0; i < modules->len; i++)
        {
          const module *m = &g_array_index (modules, module, i);
          g_autofree char *up_name = g_strconcat (m->kohya, ".lora_up.weight", NULL);
          g_autofree char *down_name = g_strconcat (m->kohya, ".lora_down.weight", NULL);
          g_autofree char *alpha_name = g_strconcat (m->kohya, ".alpha", NULL);
          const gc_st_tensor *up = gc_safetensors_find (file, up_name);
          const gc_st_tensor *down = gc_safetensors_find (file, down_name);
          const gc_st_tensor *alpha = gc_safetensors_find (file, alpha_name);
          if (up == NULL)
            continue;
          g_assert_nonnull (down);
          g_assert_nonnull (alpha);
          used += 3;
          int64_t r = down->shape[0];
          g_assert_cmpint (up->shape[0], ==, m->rows);
          g_assert_cmpint (up->shape[1], ==, r);
          g_assert_cmpint (numel (down), ==, r * m->n);
          g_autofree double *u = values (up), *dn = values (down), *a = values (alpha);
          double coefficient = (m->text ? styles[s].text_weight : styles[s].weight) * *a / r;
          double *delta = g_hash_table_lookup (deltas, m->key);
          if (delta == NULL)
            {
              delta = g_new0 (double, numel (gc_checkpoint_find (c, m->key)));
              g_hash_table_insert (deltas, (gpointer) m->key, delta);
            }
          for (int64_t o = 0; o < m->rows; o++)
            for (int64_t j = 0; j < m->n; j++)
              {
                double sum = 0;
                for (int64_t k = 0; k < r; k++)
                  sum += u[o * r + k] * dn[k * m->n + j];
                delta[(m->row + o) * m->n + j] += coefficient * sum;
              }
        }
      /* every tensor of the file is one of the expected modules' */
      g_assert_cmpuint (used, ==, gc_safetensors_count (file));
      gc_safetensors_close (file);
    }
  return deltas;
}

static float *
engine_weight (fixture *f, const gc_checkpoint *c, const char *key, int64_t *count)
{
  const gc_st_tensor *t = gc_checkpoint_find (c, key);
  g_assert_nonnull (t);
  gc_param p;
  gc_error err = { 0 };
  if (gc_param_bind (&p, c, key, t->ndim, t->shape, &err))
    g_error ("%s", err.message);
  *count = gc_param_numel (&p);
  gc_arena_mark_t mark = gc_arena_mark (&f->scratch);
  const float *w = gc_param_f32 (&f->scratch, &p);
  g_assert_nonnull (w);
  float *copy = g_memdup2 (w, sizeof (float) * (size_t) *count);
  gc_arena_reset (&f->scratch, mark);
  return copy;
}

static float *
original (const gc_checkpoint *c, const char *key)
{
  const gc_st_tensor *t = gc_checkpoint_find (c, key);
  float *w = g_new (float, numel (t));
  gc_convert_to_f32 (w, t->data, t->dtype, (size_t) numel (t));
  return w;
}

/* Each weight a module of the list targets, as the engine computes it, equals W₀ + Δ (within
 * float32 rounding of the largest change), and the untouched ones W₀ exactly. */
static void
assert_styled (fixture *f, const gc_checkpoint *c, const GArray *modules,
               const style_spec *styles, size_t n_styles)
{
  g_autoptr (GHashTable) deltas = naive_deltas (c, modules, styles, n_styles);
  for (guint i = 0; i < modules->len; i++)
    {
      const char *key = g_array_index (modules, module, i).key;
      if (i > 0 && strcmp (key, g_array_index (modules, module, i - 1).key) == 0)
        continue;
      int64_t count;
      g_autofree float *w = engine_weight (f, c, key, &count);
      g_autofree float *w0 = original (c, key);
      const double *delta = g_hash_table_lookup (deltas, key);
      double worst = 0, largest = 1e-12;
      for (int64_t k = 0; k < count; k++)
        {
          double d = delta ? delta[k] : 0;
          worst = fmax (worst, fabs (w[k] - (w0[k] + d)));
          largest = fmax (largest, fabs (d));
        }
      if (delta == NULL)
        g_assert_cmpmem (w, count * sizeof (float), w0, count * sizeof (float));
      else if (worst / largest >= 1e-5)
        g_error ("%s: the engine's weight differs from the naive merge by %g of the change", key,
                 worst / largest);
    }
}

/* ------------------------------------------------------------------ random kohya LoRAs */

static void
check_random (fixture *f, const char *variable, guint text_modules)
{
  gc_checkpoint *c = open_checkpoint (variable);
  g_autofree char *path = random_lora (f, c, 4, 1, "random.safetensors");
  g_autoptr (GArray) modules = expected_modules (c);
  guint text = 0;
  for (guint i = 0; i < modules->len; i++)
    text += g_array_index (modules, module, i).text;
  g_assert_cmpuint (text, ==, text_modules);

  gc_lora *lora = open_lora (path, c);
  gc_lora_report r = gc_lora_get_report (lora);
  g_assert_cmpuint (r.tensors, ==, 3 * modules->len);
  g_assert_cmpuint (r.applied, ==, r.tensors);
  g_assert_cmpuint (r.unmatched, ==, 0);
  g_assert_cmpuint (r.text_weights, ==, text);
  g_assert_cmpuint (r.unet_weights, ==, modules->len - text);

  gc_styles *styles;
  gc_error err = { 0 };
  g_assert_cmpint (gc_styles_new (&styles, c, &err), ==, GC_OK);
  g_assert_cmpint (gc_styles_add (styles, lora, 0.8, -0.6, &err), ==, GC_OK);
  style_spec spec = { path, 0.8, -0.6 };
  assert_styled (f, c, modules, &spec, 1);
  gc_styles_free (styles);
  gc_checkpoint_close (c);
}

static void
test_sdxl_random (fixture *f, gconstpointer data)
{
  /* CLIP-L 2 layers and OpenCLIP 3 layers, six modules each */
  check_random (f, "GOUACHE_TINYXL_MODEL", 2 * 6 + 3 * 6);
}

static void
test_sd2_random (fixture *f, gconstpointer data)
{
  check_random (f, "GOUACHE_TINY2_MODEL", 3 * 6);
}

static void
test_sdxl_blend_and_reweight (fixture *f, gconstpointer data)
{
  gc_checkpoint *c = open_checkpoint ("GOUACHE_TINYXL_MODEL");
  g_autofree char *a = random_lora (f, c, 4, 1, "a.safetensors");
  g_autofree char *b = random_lora (f, c, 2, 2, "b.safetensors");
  g_autoptr (GArray) modules = expected_modules (c);
  gc_styles *styles;
  gc_error err = { 0 };
  g_assert_cmpint (gc_styles_new (&styles, c, &err), ==, GC_OK);
  add_style (styles, a, c, 0.7, 0.5);
  add_style (styles, b, c, -0.4, 1.25);
  style_spec specs[] = { { a, 0.7, 0.5 }, { b, -0.4, 1.25 } };
  assert_styled (f, c, modules, specs, 2);

  /* new weights are used at once, merged from W₀ again */
  g_assert_cmpint (gc_styles_set_weights (styles, 0, -2, 0.3, &err), ==, GC_OK);
  specs[0] = (style_spec) { a, -2, 0.3 };
  assert_styled (f, c, modules, specs, 2);
  g_assert_cmpint (gc_styles_set_weights (styles, 1, 0, 0, &err), ==, GC_OK);
  specs[1] = (style_spec) { b, 0, 0 };
  assert_styled (f, c, modules, specs, 2);

  /* removing every style leaves W₀ exactly */
  gc_styles_remove (styles, 0);
  assert_styled (f, c, modules, specs + 1, 1);
  gc_styles_remove (styles, 0);
  assert_styled (f, c, modules, NULL, 0);
  gc_param p;
  const char *in_proj = TE2 "0.attn.in_proj_weight";
  g_assert_cmpint (gc_param_bind (&p, c, in_proj, 2, (int64_t[]) { 384, 128 }, &err), ==, GC_OK);
  g_assert_false (gc_param_is_patched (&p));
  gc_styles_free (styles);
  gc_checkpoint_close (c);
}

/* ------------------------------------------------------------------ outputs */

typedef struct {
  GArray *text; /* every encoder's hidden states (and pooled vector) */
  GArray *unet; /* one evaluation */
} outputs;

static void
outputs_clear (outputs *o)
{
  g_array_unref (o->text);
  g_array_unref (o->unet);
}

static void
encode (fixture *f, const gc_checkpoint *c, const char *prefix, gc_activation activation,
        GArray *out)
{
  gc_text_encoder *e;
  gc_error err = { 0 };
  if (gc_text_encoder_load (&e, c, prefix, activation, &err))
    g_error ("%s", err.message);
  const gc_text_encoder_config *cfg = gc_text_encoder_get_config (e);
  int32_t ids[77];
  const int32_t words[] = { 49406, 320, 1929, 3306, 539, 8846, 49407 };
  for (int i = 0; i < 77; i++)
    ids[i] = i < (int) G_N_ELEMENTS (words) ? words[i] : 49407;
  g_autofree float *hidden = g_new (float, 77 * cfg->width);
  g_autofree float *pooled = g_new (float, cfg->projection + 1);
  if (gc_text_encoder_forward (e, &f->scratch, hidden, cfg->projection ? pooled : NULL, ids, 1,
                               (gc_text_output) { 1, true }, &err))
    g_error ("%s", err.message);
  g_array_append_vals (out, hidden, 77 * cfg->width);
  g_array_append_vals (out, pooled, cfg->projection);
  gc_text_encoder_free (e);
}

static outputs
run_model (fixture *f, const gc_checkpoint *c)
{
  outputs o = { g_array_new (FALSE, FALSE, sizeof (float)),
                g_array_new (FALSE, FALSE, sizeof (float)) };
  if (gc_checkpoint_family (c) == GC_FAMILY_SDXL)
    {
      encode (f, c, "conditioner.embedders.0.transformer.", GC_ACT_QUICK_GELU, o.text);
      encode (f, c, "conditioner.embedders.1.model.", GC_ACT_GELU, o.text);
    }
  else
    encode (f, c, "cond_stage_model.model.", GC_ACT_GELU, o.text);
  gc_unet *unet;
  gc_error err = { 0 };
  if (gc_unet_load (&unet, c, &err))
    g_error ("%s", err.message);
  const gc_unet_config *cfg = gc_unet_get_config (unet);
  int64_t side = 16, n = cfg->in_channels * side * side, tokens = 77;
  g_autofree float *x = g_new (float, n), *y = g_new (float, n);
  g_autofree float *context = g_new (float, tokens * cfg->context_dim);
  g_autofree float *adm = g_new (float, cfg->adm_dim + 1);
  for (int64_t i = 0; i < n; i++)
    x[i] = (float) sin (0.37 * (double) i);
  for (int64_t i = 0; i < tokens * cfg->context_dim; i++)
    context[i] = (float) cos (0.11 * (double) i);
  for (int64_t i = 0; i < cfg->adm_dim; i++)
    adm[i] = (float) sin (0.05 * (double) i);
  double t = 500;
  gc_unet_cond cond = { context, tokens, cfg->adm_dim ? adm : NULL, NULL, NULL };
  if (gc_unet_forward (unet, &f->scratch, y, x, 1, side, side, &t, &cond, NULL, &err))
    g_error ("%s", err.message);
  g_array_append_vals (o.unet, y, n);
  gc_unet_free (unet);
  return o;
}

/* max |a − b| relative to max |b| */
static double
difference (const GArray *a, const GArray *b)
{
  g_assert_cmpuint (a->len, ==, b->len);
  double worst = 0, largest = 1e-30;
  for (guint i = 0; i < a->len; i++)
    {
      double x = g_array_index (a, float, i), y = g_array_index (b, float, i);
      worst = fmax (worst, fabs (x - y));
      largest = fmax (largest, fabs (y));
    }
  return worst / largest;
}

/* The checkpoint with W₀ + Δ (float32) in place of every weight Δ changes. */
static char *
write_merged (fixture *f, const gc_checkpoint *c, GHashTable *deltas)
{
  size_t count = gc_checkpoint_count (c);
  g_autofree gc_st_entry *entries = g_new0 (gc_st_entry, count);
  g_autofree const void **data = g_new0 (const void *, count);
  g_autoptr (GPtrArray) merged = g_ptr_array_new_with_free_func (g_free);
  for (size_t i = 0; i < count; i++)
    {
      const char *key = gc_checkpoint_key (c, i);
      const gc_st_tensor *t = gc_checkpoint_tensor (c, i);
      entries[i] = (gc_st_entry) { key, t->dtype, t->ndim };
      memcpy (entries[i].shape, t->shape, sizeof (int64_t) * (size_t) t->ndim);
      data[i] = t->data;
      const double *delta = g_hash_table_lookup (deltas, key);
      if (delta)
        {
          float *w = original (c, key);
          for (int64_t k = 0; k < numel (t); k++)
            w[k] = (float) (w[k] + delta[k]);
          entries[i].dtype = GC_DTYPE_F32;
          data[i] = w;
          g_ptr_array_add (merged, w);
        }
    }
  char *path = g_build_filename (f->dir, "merged.safetensors", NULL);
  gc_error err = { 0 };
  if (gc_safetensors_write (path, entries, data, count, NULL, 0, &err))
    g_error ("%s", err.message);
  return path;
}

static void
check_outputs (fixture *f, const char *variable)
{
  gc_checkpoint *c = open_checkpoint (variable);
  g_autofree char *path = random_lora (f, c, 4, 3, "outputs.safetensors");
  g_autoptr (GArray) modules = expected_modules (c);
  style_spec spec = { path, 1.5, -1.2 };
  g_autoptr (GHashTable) deltas = naive_deltas (c, modules, &spec, 1);
  g_autofree char *merged_path = write_merged (f, c, deltas);
  gc_checkpoint *merged = open_checkpoint_path (merged_path);

  outputs plain = run_model (f, c);
  gc_styles *styles;
  gc_error err = { 0 };
  g_assert_cmpint (gc_styles_new (&styles, c, &err), ==, GC_OK);
  add_style (styles, path, c, spec.weight, spec.text_weight);
  outputs styled = run_model (f, c), expected = run_model (f, merged);
  g_test_message ("text encoders: styled - naive merge %.2g, the style's change %.2g",
                  difference (styled.text, expected.text), difference (plain.text, expected.text));
  g_test_message ("UNet: styled - naive merge %.2g, the style's change %.2g",
                  difference (styled.unet, expected.unet), difference (plain.unet, expected.unet));
  g_assert_cmpfloat (difference (styled.text, expected.text), <, 1e-4);
  g_assert_cmpfloat (difference (styled.unet, expected.unet), <, 1e-4);
  g_assert_cmpfloat (difference (plain.text, expected.text), >, 1e-2);
  g_assert_cmpfloat (difference (plain.unet, expected.unet), >, 1e-2);
  outputs_clear (&plain), outputs_clear (&styled), outputs_clear (&expected);
  gc_styles_free (styles);
  gc_checkpoint_close (merged);
  gc_checkpoint_close (c);
}

static void
test_sdxl_outputs (fixture *f, gconstpointer data)
{
  check_outputs (f, "GOUACHE_TINYXL_MODEL");
}

static void
test_sd2_outputs (fixture *f, gconstpointer data)
{
  check_outputs (f, "GOUACHE_TINY2_MODEL");
}

/* ------------------------------------------------------------------ other names, biases */

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

/* Adds a float32 tensor of deterministic values in about ±scale; returns its data. */
static float *
add (lora_builder *b, const char *prefix, const char *part, int ndim, const int64_t *shape,
     double scale)
{
  char *name = g_strconcat (prefix, part, NULL);
  g_ptr_array_add (b->names, name);
  gc_st_entry e = { name, GC_DTYPE_F32, ndim };
  memcpy (e.shape, shape, sizeof (int64_t) * (size_t) ndim);
  g_array_append_val (b->entries, e);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  float *data = g_new (float, n);
  GRand *rand = g_rand_new_with_seed (g_str_hash (name));
  for (int64_t i = 0; i < n; i++)
    data[i] = (float) (scale * g_rand_double_range (rand, -1, 1));
  g_rand_free (rand);
  g_ptr_array_add (b->data, data);
  return data;
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

/* A low-rank module: up [rows, r], down [r, n], no alpha (scale 1); returns its naive ΔW. */
typedef struct {
  const char *module, *up_part, *down_part;
  const char *key;     /* the LDM weight it must change */
  int64_t row, rows, n, r;
  gboolean text;
  gboolean conv;       /* 3×3: down [r, in, 3, 3], up [rows, r, 1, 1] */
} named_module;

static double *
add_named (lora_builder *b, const named_module *m)
{
  float *up, *down;
  if (m->conv)
    {
      up = add (b, m->module, m->up_part, 4, (int64_t[]) { m->rows, m->r, 1, 1 }, 0.2);
      down = add (b, m->module, m->down_part, 4, (int64_t[]) { m->r, m->n / 9, 3, 3 }, 0.2);
    }
  else
    {
      up = add (b, m->module, m->up_part, 2, (int64_t[]) { m->rows, m->r }, 0.2);
      down = add (b, m->module, m->down_part, 2, (int64_t[]) { m->r, m->n }, 0.2);
    }
  double *delta = g_new0 (double, m->rows * m->n);
  for (int64_t o = 0; o < m->rows; o++)
    for (int64_t j = 0; j < m->n; j++)
      for (int64_t k = 0; k < m->r; k++)
        delta[o * m->n + j] += (double) up[o * m->r + k] * down[k * m->n + j];
  return delta;
}

/* The engine's tensor equals W₀ plus coefficient·change on rows row…row + rows − 1, within
 * tolerance of the largest change. */
static void
assert_rows (fixture *f, const gc_checkpoint *c, const char *key, int64_t row, int64_t rows,
             const double *change, double coefficient, double tolerance)
{
  int64_t count;
  g_autofree float *w = engine_weight (f, c, key, &count);
  g_autofree float *w0 = original (c, key);
  int64_t n = count / gc_checkpoint_find (c, key)->shape[0];
  double worst = 0, largest = 1e-12;
  for (int64_t k = 0; k < count; k++)
    {
      int64_t o = k / n - row;
      double d = o >= 0 && o < rows ? coefficient * change[o * n + k % n] : 0;
      worst = fmax (worst, fabs (w[k] - (w0[k] + d)));
      largest = fmax (largest, fabs (d));
    }
  g_assert_cmpfloat (worst / largest, <, tolerance);
}

static void
test_sdxl_names_and_biases (fixture *f, gconstpointer data)
{
  gc_checkpoint *c = open_checkpoint ("GOUACHE_TINYXL_MODEL");
  const named_module named[] = {
    /* kohya with diffusers paths: SDXL's down_blocks.1 is LDM input_blocks 4–5 */
    { "lora_unet_down_blocks_1_attentions_0_transformer_blocks_1_attn2_to_k", ".lora_up.weight",
      ".lora_down.weight", UNET "input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight", 0,
      128, 192, 4 },
    { "lora_unet_up_blocks_0_attentions_2_proj_out", ".lora_up.weight", ".lora_down.weight",
      UNET "output_blocks.2.1.proj_out.weight", 0, 256, 256, 2 },
    { "lora_unet_mid_block_attentions_0_transformer_blocks_2_ff_net_2", ".lora_up.weight",
      ".lora_down.weight", UNET "middle_block.1.transformer_blocks.2.ff.net.2.weight", 0, 256,
      1024, 3 },
    { "lora_unet_down_blocks_2_resnets_1_conv1", ".lora_up.weight", ".lora_down.weight",
      UNET "input_blocks.8.0.in_layers.2.weight", 0, 256, 256 * 9, 2, FALSE, TRUE },
    /* PEFT */
    { "unet.up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_out.0", ".lora_B.weight",
      ".lora_A.weight", UNET "output_blocks.4.1.transformer_blocks.0.attn1.to_out.0.weight", 0,
      128, 128, 2 },
    { "text_encoder_2.text_model.encoder.layers.1.self_attn.v_proj", ".lora_B.weight",
      ".lora_A.weight", TE2 "1.attn.in_proj_weight", 256, 128, 128, 2, TRUE },
    { "text_encoder.text_model.encoder.layers.0.mlp.fc2", ".lora_B.weight", ".lora_A.weight",
      TE1 "0.mlp.fc2.weight", 0, 64, 256, 2, TRUE },
    /* kohya, beside the bias changes below */
    { "lora_te1_text_model_encoder_layers_1_self_attn_q_proj", ".lora_up.weight",
      ".lora_down.weight", TE1 "1.self_attn.q_proj.weight", 0, 64, 64, 2, TRUE },
    { "lora_te2_text_model_encoder_layers_2_mlp_fc1", ".lora_up.weight", ".lora_down.weight",
      TE2 "2.mlp.c_fc.weight", 0, 512, 128, 2, TRUE },
  };
  lora_builder b;
  builder_init (&b);
  double *changes[G_N_ELEMENTS (named)];
  for (size_t i = 0; i < G_N_ELEMENTS (named); i++)
    changes[i] = add_named (&b, &named[i]);
  /* bias changes: on k's rows of OpenCLIP's in_proj_bias (alone), on a CLIP q_proj's bias, and
   * on a layer without a bias (unmatched) */
  float *k_bias = add (&b, "lora_te2_text_model_encoder_layers_0_self_attn_k_proj", ".diff_b", 1,
                       (int64_t[]) { 128 }, 0.1);
  float *q_bias = add (&b, "lora_te1_text_model_encoder_layers_1_self_attn_q_proj", ".diff_b", 1,
                       (int64_t[]) { 64 }, 0.1);
  add (&b, "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", ".diff_b", 1,
       (int64_t[]) { 128 }, 0.1);
  g_autofree char *path = write_lora (f, &b, "names.safetensors");

  gc_lora *lora = open_lora (path, c);
  gc_lora_report r = gc_lora_get_report (lora);
  g_assert_cmpuint (r.tensors, ==, 2 * G_N_ELEMENTS (named) + 3);
  g_assert_cmpuint (r.applied, ==, r.tensors - 1);
  g_assert_cmpuint (r.unmatched, ==, 1);
  g_assert_cmpstr (gc_lora_unmatched (lora, 0), ==,
                   "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.diff_b");
  g_assert_cmpuint (r.unet_weights, ==, 5);
  g_assert_cmpuint (r.text_weights, ==, 4 + 2);
  gc_styles *styles;
  gc_error err = { 0 };
  g_assert_cmpint (gc_styles_new (&styles, c, &err), ==, GC_OK);
  g_assert_cmpint (gc_styles_add (styles, lora, 0.9, -1.5, &err), ==, GC_OK);
  for (size_t i = 0; i < G_N_ELEMENTS (named); i++)
    assert_rows (f, c, named[i].key, named[i].row, named[i].rows, changes[i],
                 named[i].text ? -1.5 : 0.9, 1e-5);
  g_autofree double *dk = g_new (double, 128), *dq = g_new (double, 64);
  for (int i = 0; i < 128; i++)
    dk[i] = k_bias[i];
  for (int i = 0; i < 64; i++)
    dq[i] = q_bias[i];
  assert_rows (f, c, TE2 "0.attn.in_proj_bias", 128, 128, dk, -1.5, 1e-5);
  assert_rows (f, c, TE1 "1.self_attn.q_proj.bias", 0, 64, dq, -1.5, 1e-5);

  /* an exact bake writes the same changes under kohya's SDXL names, q/k/v split, biases whole */
  g_autofree char *baked = g_build_filename (f->dir, "baked.safetensors", NULL);
  gc_bake_report report;
  const char *metadata[] = { "ss_output_name", "baked" };
  gc_styles_remove (styles, 0);
  add_style (styles, path, c, 1, 1);
  g_assert_cmpint (gc_bake_lora (c, 0, baked, metadata, 1, &report, &err), ==, GC_OK);
  g_assert_cmpuint (report.weights, ==, G_N_ELEMENTS (named) + 1);
  gc_safetensors *file;
  g_assert_cmpint (gc_safetensors_open (&file, baked, &err), ==, GC_OK);
  g_assert_nonnull (gc_safetensors_find (
    file, "lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k.lora_up.weight"));
  g_assert_nonnull (gc_safetensors_find (
    file, "lora_te2_text_model_encoder_layers_1_self_attn_v_proj.lora_down.weight"));
  g_assert_nonnull (gc_safetensors_find (
    file, "lora_te2_text_model_encoder_layers_0_self_attn_k_proj.diff_b"));
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_base_model_version"), ==,
                   "sdxl_base_v1-0");
  gc_safetensors_close (file);
  gc_styles_remove (styles, 0);
  add_style (styles, baked, c, 1, 1);
  gc_lora_report rb = gc_lora_get_report (gc_styles_lora (styles, 0));
  g_assert_cmpuint (rb.applied, ==, rb.tensors);
  for (size_t i = 0; i < G_N_ELEMENTS (named); i++)
    {
      int64_t count;
      g_autofree float *w = engine_weight (f, c, named[i].key, &count);
      g_autofree float *w0 = original (c, named[i].key);
      for (int64_t o = 0; o < named[i].rows; o++)
        for (int64_t j = 0; j < named[i].n; j++)
          {
            int64_t at = (named[i].row + o) * named[i].n + j;
            g_assert_cmpfloat (fabs (w[at] - w0[at] - changes[i][o * named[i].n + j]), <, 2e-3);
          }
    }
  assert_rows (f, c, TE2 "0.attn.in_proj_bias", 128, 128, dk, 1, 1e-3); /* fp16 */
  for (size_t i = 0; i < G_N_ELEMENTS (named); i++)
    g_free (changes[i]);
  gc_styles_free (styles);
  builder_clear (&b);
  gc_checkpoint_close (c);
}

/* ------------------------------------------------------------------ refusals */

static void
assert_refused (const char *lora_path, const gc_checkpoint *c, const char *expected)
{
  gc_lora *lora = NULL;
  gc_error err = { 0 };
  g_assert_cmpint (gc_lora_open (&lora, lora_path, c, &err), ==, GC_ERR_MISMATCH);
  g_assert_null (lora);
  g_test_message ("%s", err.message);
  if (strstr (err.message, expected) == NULL)
    g_error ("\"%s\" does not say \"%s\"", err.message, expected);
}

static void
test_other_family_refused (fixture *f, gconstpointer data)
{
  gc_checkpoint *sd1 = open_checkpoint ("GOUACHE_TINY_MODEL");
  gc_checkpoint *sd2 = open_checkpoint ("GOUACHE_TINY2_MODEL");
  gc_checkpoint *xl = open_checkpoint ("GOUACHE_TINYXL_MODEL");
  g_autofree char *lora1 = random_lora (f, sd1, 4, 1, "sd1.safetensors");
  g_autofree char *lora2 = random_lora (f, sd2, 4, 1, "sd2.safetensors");
  g_autofree char *loraxl = random_lora (f, xl, 4, 1, "sdxl.safetensors");
  assert_refused (loraxl, sd1, "sdxl.safetensors is a LoRA for SDXL, the model is SD 1.x");
  assert_refused (lora1, xl, "sd1.safetensors is a LoRA for SD 1.x, the model is SDXL");
  assert_refused (loraxl, sd2, "is a LoRA for SDXL, the model is SD 2.x");
  assert_refused (lora1, sd2, "is a LoRA for SD 1.x, the model is SD 2.x");
  assert_refused (lora2, xl, "is a LoRA for SD 1.x or SD 2.x, the model is SDXL");
  /* the tiny SD 2.x LoRA has the tiny SD 1.x model's widths: its shapes tell them apart */
  assert_refused (lora2, sd1, "does not fit this SD 1.x model");

  /* UNet-only SDXL LoRAs, by their block names (a transformer of two blocks, attention in the
   * first decoder level) */
  lora_builder b;
  builder_init (&b);
  add (&b, "lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q", ".lora_up.weight", 2,
       (int64_t[]) { 128, 4 }, 0.1);
  add (&b, "lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q", ".lora_down.weight", 2,
       (int64_t[]) { 4, 128 }, 0.1);
  g_autofree char *deep = write_lora (f, &b, "deep.safetensors");
  assert_refused (deep, sd1, "is a LoRA for SDXL, the model is SD 1.x (as its module "
                             "lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q shows)");
  builder_clear (&b);
  builder_init (&b);
  add (&b, "unet.up_blocks.0.attentions.1.proj_in", ".lora_B.weight", 2, (int64_t[]) { 256, 4 },
       0.1);
  add (&b, "unet.up_blocks.0.attentions.1.proj_in", ".lora_A.weight", 2, (int64_t[]) { 4, 256 },
       0.1);
  g_autofree char *decoder = write_lora (f, &b, "decoder.safetensors");
  assert_refused (decoder, sd2, "is a LoRA for SDXL, the model is SD 2.x");
  builder_clear (&b);

  /* the standard widths: SD 2.x's text encoder (1024) and SDXL's context (2048) */
  builder_init (&b);
  add (&b, "lora_te_text_model_encoder_layers_0_self_attn_q_proj", ".lora_up.weight", 2,
       (int64_t[]) { 1024, 4 }, 0.1);
  add (&b, "lora_te_text_model_encoder_layers_0_self_attn_q_proj", ".lora_down.weight", 2,
       (int64_t[]) { 4, 1024 }, 0.1);
  g_autofree char *wide = write_lora (f, &b, "wide.safetensors");
  assert_refused (wide, sd1, "is a LoRA for SD 2.x, the model is SD 1.x");
  builder_clear (&b);
  builder_init (&b);
  add (&b, "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k",
       ".lora_up.weight", 2, (int64_t[]) { 640, 4 }, 0.1);
  add (&b, "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k",
       ".lora_down.weight", 2, (int64_t[]) { 4, 2048 }, 0.1);
  g_autofree char *context = write_lora (f, &b, "context.safetensors");
  assert_refused (context, sd2, "is a LoRA for SDXL, the model is SD 2.x");
  builder_clear (&b);

  /* each family's LoRA still opens on its own model */
  gc_lora_free (open_lora (lora1, sd1));
  gc_lora_free (open_lora (lora2, sd2));
  gc_lora_free (open_lora (loraxl, xl));
  gc_checkpoint_close (sd1);
  gc_checkpoint_close (sd2);
  gc_checkpoint_close (xl);
}

/* A file image in memory opens as the file does; a damaged one is refused under its name. */
static void
test_open_memory (fixture *f, gconstpointer data)
{
  gc_checkpoint *c = open_checkpoint ("GOUACHE_TINYXL_MODEL");
  g_autofree char *path = random_lora (f, c, 2, 5, "memory.safetensors");
  g_autofree char *bytes = NULL;
  gsize size;
  g_assert_true (g_file_get_contents (path, &bytes, &size, NULL));
  gc_lora *from_file = open_lora (path, c), *from_memory;
  gc_error err = { 0 };
  g_assert_cmpint (gc_lora_open_memory (&from_memory, bytes, size, "memory", c, &err), ==, GC_OK);
  gc_lora_report a = gc_lora_get_report (from_file), b = gc_lora_get_report (from_memory);
  g_assert_cmpmem (&a, sizeof a, &b, sizeof b);
  g_assert_cmpstr (gc_lora_path (from_memory), ==, "memory");
  g_assert_cmpstr (gc_lora_metadata (from_memory, "ss_base_model_version"), ==, "sdxl_base_v1-0");
  gc_lora_free (from_memory);
  gc_lora_free (from_file);
  g_assert_cmpint (gc_lora_open_memory (&from_memory, bytes, size / 2, "half", c, &err), ==,
                   GC_ERR_FORMAT);
  g_assert_null (from_memory);
  g_assert_true (g_str_has_prefix (err.message, "half: "));
  gc_checkpoint_close (c);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/core/lora/families/sdxl/random-kohya", test_sdxl_random);
  ADD ("/core/lora/families/sdxl/blend-and-reweight", test_sdxl_blend_and_reweight);
  ADD ("/core/lora/families/sdxl/outputs", test_sdxl_outputs);
  ADD ("/core/lora/families/sdxl/names-biases-bake", test_sdxl_names_and_biases);
  ADD ("/core/lora/families/sd2/random-kohya", test_sd2_random);
  ADD ("/core/lora/families/sd2/outputs", test_sd2_outputs);
  ADD ("/core/lora/families/refused", test_other_family_refused);
  ADD ("/core/lora/families/open-memory", test_open_memory);
#undef ADD
  return g_test_run ();
}
