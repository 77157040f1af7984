/* gouache-cli verify: runs every case of a reference file that the engine can compute and
 * compares it with the reference (relative L2 error and max abs error against the tolerances
 * of the oracle README: token ids exact, single passes 1e-4, pipelines 1e-3). */
#include "config.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gc-model.h"
#include "gc-pipeline.h"
#include "gc-rng.h"
#include "gc-safetensors.h"
#include "gouache-cli.h"

typedef struct {
  gc_model *model;
  gc_safetensors *ref;
  JsonObject *manifest;  /* "cases" of the reference's manifest */
  JsonParser *parser;
  char *ref_dir;
  GPtrArray *prompts;    /* the reference's prompts (element-type utf8); NULL if unknown */
  char *prompts_source;  /* where they came from, when not from this file's manifest */
  char **prefixes;
  GPtrArray *style_letters; /* of the LoRA styles added to the model ("a", "b"), NULL before */
  int passed, failed, skipped;
} verify_run;

/* ------------------------------------------------------------------ reporting */

static gboolean
selected (const verify_run *run, const char *name)
{
  if (run->prefixes == NULL)
    return TRUE;
  for (char **p = run->prefixes; *p; p++)
    if (g_str_has_prefix (name, *p))
      return TRUE;
  return FALSE;
}

static void
report (verify_run *run, const char *name, const float *ours, const gc_st_tensor *ref,
        double tolerance)
{
  size_t n = ref->nbytes / gc_dtype_size (ref->dtype);
  g_autofree float *expected = g_new (float, n ? n : 1);
  gc_convert_to_f32 (expected, ref->data, ref->dtype, n);
  double diff = 0, norm = 0, worst = 0;
  for (size_t i = 0; i < n; i++)
    {
      double d = (double) ours[i] - expected[i];
      diff += d * d;
      norm += (double) expected[i] * expected[i];
      worst = fmax (worst, fabs (d));
    }
  double relative = norm > 0 ? sqrt (diff / norm) : sqrt (diff);
  gboolean ok = relative <= tolerance && isfinite (relative);
  printf ("%s  %-44s rel %.2e  max %.2e  (tolerance %.0e)\n", ok ? "PASS" : "FAIL", name,
          relative, worst, tolerance);
  if (ok)
    run->passed++;
  else
    run->failed++;
}

static void
report_failure (verify_run *run, const char *name, const gc_error *err)
{
  printf ("FAIL  %-44s %s\n", name, err->message);
  run->failed++;
}

static void
skip (verify_run *run, const char *name, const char *why)
{
  printf ("SKIP  %-44s %s\n", name, why);
  run->skipped++;
}

static const gc_st_tensor *
input (const verify_run *run, const char *name)
{
  return gc_safetensors_find (run->ref, name);
}

/* A float32 copy of a reference tensor (they are float32 already, but may be unaligned). */
static float *
input_floats (const verify_run *run, const char *name, size_t *count)
{
  const gc_st_tensor *t = input (run, name);
  if (t == NULL)
    return NULL;
  size_t n = t->nbytes / gc_dtype_size (t->dtype);
  float *out = g_new (float, n ? n : 1);
  gc_convert_to_f32 (out, t->data, t->dtype, n);
  if (count)
    *count = n;
  return out;
}

/* ------------------------------------------------------------------ tokenizer and text */

static JsonObject *
object_member (JsonObject *object, const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;
  return node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static JsonArray *
prompts_of (JsonObject *cases)
{
  JsonObject *tok = object_member (cases, "tokenizer");
  JsonNode *node = tok ? json_object_get_member (tok, "prompts") : NULL;
  return node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

static GPtrArray *
strings_of (JsonArray *array)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < json_array_get_length (array); i++)
    g_ptr_array_add (out, g_strdup (json_array_get_string_element (array, i)));
  return out;
}

/* The manifests are written by Python's json module, which spells non-finite numbers NaN,
 * Infinity and -Infinity (not JSON): read them as null. */
static gboolean
parse_python_json (JsonParser *parser, const char *text, GError **error)
{
  g_autoptr (GString) clean = g_string_sized_new (strlen (text));
  gboolean in_string = FALSE;
  for (const char *p = text; *p; p++)
    {
      if (in_string)
        {
          g_string_append_c (clean, *p);
          if (*p == '\\' && p[1])
            g_string_append_c (clean, *++p);
          else if (*p == '"')
            in_string = FALSE;
          continue;
        }
      static const char *const words[] = { "-Infinity", "Infinity", "NaN" };
      gboolean replaced = FALSE;
      for (size_t w = 0; w < G_N_ELEMENTS (words) && !replaced; w++)
        if (g_str_has_prefix (p, words[w]))
          {
            g_string_append (clean, "null");
            p += strlen (words[w]) - 1;
            replaced = TRUE;
          }
      if (!replaced)
        {
          in_string = *p == '"';
          g_string_append_c (clean, *p);
        }
    }
  return json_parser_load_from_data (parser, clean->str, (gssize) clean->len, error);
}

static void
case_tokenizer_ids (verify_run *run, const char *name, const gc_st_tensor *ref, int32_t pad_id)
{
  GPtrArray *prompts = run->prompts;
  if (prompts == NULL || ref->dtype != GC_DTYPE_I64 || ref->ndim != 2)
    return skip (run, name, "no reference file lists the prompts for it");
  const int64_t *expected = ref->data;
  guint n = prompts->len;
  int mismatches = 0;
  for (guint i = 0; i < n && i < ref->shape[0]; i++)
    {
      gc_error err = { 0 };
      int32_t *ids;
      size_t count;
      const char *prompt = g_ptr_array_index (prompts, i);
      if (gc_tokenizer_encode (gc_model_tokenizer (run->model), prompt, &ids, &count, &err))
        return report_failure (run, name, &err);
      int32_t window[GC_CONTEXT_TOKENS];
      gc_tokens_window (window, ids, count, pad_id);
      free (ids);
      for (int k = 0; k < GC_CONTEXT_TOKENS; k++)
        if (window[k] != expected[i * ref->shape[1] + k])
          {
            if (mismatches++ == 0)
              printf ("      prompt %u position %d: id %d, reference %lld\n", i, k, window[k],
                      (long long) expected[i * ref->shape[1] + k]);
          }
    }
  printf ("%s  %-44s %d of %u prompts' ids compared, %d mismatches\n",
          mismatches ? "FAIL" : "PASS", name, n, n, mismatches);
  if (mismatches)
    run->failed++;
  else
    run->passed++;
}

/* The reference's token ids as int32 windows. */
static int32_t *
reference_ids (const verify_run *run, const char *name, int64_t *windows)
{
  const gc_st_tensor *t = input (run, name);
  if (t == NULL || t->dtype != GC_DTYPE_I64 || t->ndim != 2 || t->shape[1] != GC_CONTEXT_TOKENS)
    return NULL;
  int32_t *ids = g_new (int32_t, t->shape[0] * GC_CONTEXT_TOKENS);
  for (int64_t i = 0; i < t->shape[0] * GC_CONTEXT_TOKENS; i++)
    {
      int64_t v;
      memcpy (&v, (const char *) t->data + 8 * i, 8);
      ids[i] = (int32_t) v;
    }
  *windows = t->shape[0];
  return ids;
}

static void
case_text (verify_run *run, const char *name, const gc_st_tensor *ref, gc_text_output output)
{
  int64_t windows;
  g_autofree int32_t *ids = reference_ids (run, "tokenizer.ids", &windows);
  if (ids == NULL)
    return skip (run, name, "the reference has no tokenizer.ids to encode");
  gc_text_encoder *encoder = gc_model_text_encoder (run->model);
  int64_t width = gc_text_encoder_get_config (encoder)->width;
  g_autofree float *hidden = g_new (float, windows * GC_CONTEXT_TOKENS * width);
  gc_error err = { 0 };
  if (gc_text_encoder_forward (encoder, gc_model_scratch (run->model), hidden, NULL, ids, windows,
                               output, &err))
    return report_failure (run, name, &err);
  report (run, name, hidden, ref, 1e-4);
}

/* SDXL: both encoders' penultimate states side by side (no final norm), and the second
 * encoder's pooled projection. */
static void
case_text_xl (verify_run *run, const char *name, const gc_st_tensor *ref)
{
  int64_t windows, windows2;
  g_autofree int32_t *ids = reference_ids (run, "tokenizer.ids", &windows);
  g_autofree int32_t *ids2 = reference_ids (run, "tokenizer.ids2", &windows2);
  gc_text_encoder *first = gc_model_text_encoder (run->model);
  gc_text_encoder *second = gc_model_text_encoder2 (run->model);
  if (ids == NULL || ids2 == NULL || windows != windows2 || second == NULL)
    return skip (run, name, "needs tokenizer.ids, tokenizer.ids2 and an SDXL model");
  int64_t d1 = gc_text_encoder_get_config (first)->width;
  int64_t d2 = gc_text_encoder_get_config (second)->width;
  int64_t proj = gc_text_encoder_get_config (second)->projection;
  int64_t rows = windows * GC_CONTEXT_TOKENS;
  g_autofree float *h1 = g_new (float, rows * d1), *h2 = g_new (float, rows * d2);
  g_autofree float *pooled = g_new (float, windows * proj);
  gc_text_output penultimate = { 2, FALSE };
  gc_error err = { 0 };
  gc_arena *scratch = gc_model_scratch (run->model);
  if (gc_text_encoder_forward (first, scratch, h1, NULL, ids, windows, penultimate, &err)
      || gc_text_encoder_forward (second, scratch, h2, pooled, ids2, windows, penultimate, &err))
    return report_failure (run, name, &err);
  if (strcmp (name, "text.pooled") == 0)
    return report (run, name, pooled, ref, 1e-4);
  g_autofree float *joined = g_new (float, rows * (d1 + d2));
  for (int64_t r = 0; r < rows; r++)
    {
      memcpy (joined + r * (d1 + d2), h1 + r * d1, sizeof (float) * (size_t) d1);
      memcpy (joined + r * (d1 + d2) + d1, h2 + r * d2, sizeof (float) * (size_t) d2);
    }
  report (run, name, joined, ref, 1e-4);
}

/* ------------------------------------------------------------------ UNet */

/* SDXL's added conditioning from the reference's pooled row and time ids; NULL otherwise. */
static float *
reference_adm (const verify_run *run, const int *rows, int n)
{
  int64_t adm_dim = gc_unet_get_config (gc_model_unet (run->model))->adm_dim;
  const gc_st_tensor *pooled = input (run, "text.pooled");
  const gc_st_tensor *ids = input (run, "unet.time_ids");
  if (adm_dim == 0 || pooled == NULL || ids == NULL || pooled->ndim != 2)
    return NULL;
  g_autofree float *pooled_f = input_floats (run, "text.pooled", NULL);
  g_autofree float *ids_f = input_floats (run, "unet.time_ids", NULL);
  double time_ids[6];
  for (int k = 0; k < 6; k++)
    time_ids[k] = ids_f[k];
  float *adm = g_new (float, n * adm_dim);
  for (int i = 0; i < n; i++)
    gc_size_conditioning (adm + i * adm_dim, pooled_f + rows[i] * pooled->shape[1],
                          pooled->shape[1], adm_dim, time_ids);
  return adm;
}

typedef struct {
  verify_run *run;
  const char *prefix; /* "unet.act_t500." */
} activation_check;

static void
check_activation (void *ctx, const char *block, const float *data, int64_t count)
{
  activation_check *check = ctx;
  g_autofree char *name = g_strconcat (check->prefix, block, NULL);
  const gc_st_tensor *ref = input (check->run, name);
  if (ref == NULL || !selected (check->run, name))
    return;
  if ((int64_t) (ref->nbytes / gc_dtype_size (ref->dtype)) != count)
    {
      gc_error err;
      gc_error_set (&err, GC_ERR_MISMATCH, "the engine's %s has %lld values, the reference %zu",
                    block, (long long) count, ref->nbytes / gc_dtype_size (ref->dtype));
      return report_failure (check->run, name, &err);
    }
  report (check->run, name, data, ref, 1e-4);
}

/* context rows of the reference text encoding: window i of text.last_hidden (text.context for
 * SDXL) */
static float *
reference_context (const verify_run *run, const int *rows, int n, int64_t *dim)
{
  const char *name = input (run, "text.context") ? "text.context" : "text.last_hidden";
  const gc_st_tensor *t = input (run, name);
  if (t == NULL || t->ndim != 3)
    return NULL;
  *dim = t->shape[2];
  size_t window = (size_t) (t->shape[1] * t->shape[2]);
  g_autofree float *all = input_floats (run, name, NULL);
  float *out = g_new (float, window * n);
  for (int i = 0; i < n; i++)
    memcpy (out + i * window, all + rows[i] * window, window * sizeof (float));
  return out;
}

static void
case_unet (verify_run *run, const char *name, const gc_st_tensor *ref)
{
  const char *x_name = "unet.x";
  int context_rows[2] = { 0, 1 };
  int batch = 1;
  double t = 500;
  if (g_str_has_prefix (name, "unet.eps_batch2_t"))
    {
      x_name = "unet.x2", batch = 2;
      context_rows[0] = 1, context_rows[1] = 0; /* [uncond, cond] */
      t = g_ascii_strtod (name + strlen ("unet.eps_batch2_t"), NULL);
    }
  else if (g_str_has_prefix (name, "unet.eps_rect_t"))
    x_name = "unet.xr", t = g_ascii_strtod (name + strlen ("unet.eps_rect_t"), NULL);
  else if (g_str_has_prefix (name, "unet.eps_t"))
    t = g_ascii_strtod (name + strlen ("unet.eps_t"), NULL);
  const gc_st_tensor *x = input (run, x_name);
  int64_t dim;
  g_autofree float *context = reference_context (run, context_rows, batch, &dim);
  g_autofree float *adm = reference_adm (run, context_rows, batch);
  if (x == NULL || x->ndim != 4 || context == NULL)
    return skip (run, name, "its inputs are not in the reference file");
  g_autofree float *xf = input_floats (run, x_name, NULL);
  g_autofree float *out = g_new (float, ref->nbytes / 4);
  double timesteps[2] = { t, t };
  gc_unet_cond cond = { context, GC_CONTEXT_TOKENS, adm, NULL, NULL };
  gc_error err = { 0 };
  if (gc_unet_forward (gc_model_unet (run->model), gc_model_scratch (run->model), out, xf, batch,
                       x->shape[2], x->shape[3], timesteps, &cond, NULL, &err))
    return report_failure (run, name, &err);
  report (run, name, out, ref, 1e-4);
}

static void
case_unet_activations (verify_run *run, const char *prefix)
{
  double t = g_ascii_strtod (prefix + strlen ("unet.act_t"), NULL);
  const gc_st_tensor *x = input (run, "unet.x");
  int64_t dim;
  int rows[1] = { 0 };
  g_autofree float *context = reference_context (run, rows, 1, &dim);
  if (x == NULL || context == NULL)
    return skip (run, prefix, "its inputs are not in the reference file");
  g_autofree float *xf = input_floats (run, "unet.x", NULL);
  g_autofree float *out = g_new (float, x->nbytes / 4);
  activation_check check = { run, prefix };
  gc_unet_cond cond = { context, GC_CONTEXT_TOKENS, NULL, check_activation, &check };
  gc_error err = { 0 };
  if (gc_unet_forward (gc_model_unet (run->model), gc_model_scratch (run->model), out, xf, 1,
                       x->shape[2], x->shape[3], &t, &cond, NULL, &err))
    report_failure (run, prefix, &err);
}

/* ------------------------------------------------------------------ VAE */

static void
case_vae (verify_run *run, const char *name, const gc_st_tensor *ref)
{
  gc_vae *vae = gc_model_vae (run->model);
  gc_error err = { 0 };
  g_autofree float *out = g_new (float, ref->nbytes / 4);
  if (strcmp (name, "vae.decoded") == 0)
    {
      const gc_st_tensor *z = input (run, "vae.z");
      if (z == NULL)
        return skip (run, name, "vae.z is not in the reference file");
      g_autofree float *zf = input_floats (run, "vae.z", NULL);
      if (gc_vae_decode (vae, gc_model_scratch (run->model), out, zf, z->shape[0], z->shape[2],
                         z->shape[3], NULL, &err))
        return report_failure (run, name, &err);
      return report (run, name, out, ref, 1e-4);
    }
  const gc_st_tensor *img = input (run, "vae.img");
  if (img == NULL)
    return skip (run, name, "vae.img is not in the reference file");
  g_autofree float *imgf = input_floats (run, "vae.img", NULL);
  g_autofree float *other = g_new (float, ref->nbytes / 4);
  gboolean mean = strcmp (name, "vae.enc_mean") == 0;
  if (gc_vae_encode (vae, gc_model_scratch (run->model), mean ? out : other, mean ? other : out,
                     imgf, img->shape[0], img->shape[2], img->shape[3], &err))
    return report_failure (run, name, &err);
  report (run, name, out, ref, 1e-4);
}

/* ------------------------------------------------------------------ rng */

static void
case_rng (verify_run *run, const char *name, const gc_st_tensor *ref)
{
  size_t n = ref->nbytes / 4;
  g_autofree float *out = g_new (float, n);
  gc_torch_rng rng;
  guint64 seed;
  if (g_str_has_prefix (name, "rng.seed7.") && (g_str_has_suffix (name, ".first")
                                                 || g_str_has_suffix (name, ".second")))
    {
      gc_torch_rng_seed (&rng, 7);
      gc_torch_randn (&rng, out, (int64_t) n);
      if (g_str_has_suffix (name, ".second"))
        gc_torch_randn (&rng, out, (int64_t) n);
    }
  else if (sscanf (name, "rng.seed%" G_GUINT64_FORMAT ".n", &seed) == 1)
    {
      gc_torch_rng_seed (&rng, seed);
      gc_torch_randn (&rng, out, (int64_t) n);
    }
  else
    return skip (run, name, "unknown random-number case");
  report (run, name, out, ref, 1e-6);
}

/* ------------------------------------------------------------------ pipelines */

typedef struct {
  gc_generate_params params;
  char *prompt;
  float *noise;
  float *init_image;
  gc_torch_rng generator;
} pipe_setup;

/* Finds "word<number>" in text (e.g. "manual_seed(42" or "strength 0.6"). */
static gboolean
number_after (const char *text, const char *word, double *out)
{
  const char *at = text ? strstr (text, word) : NULL;
  if (at == NULL)
    return FALSE;
  char *end;
  *out = g_ascii_strtod (at + strlen (word), &end);
  return end != at + strlen (word);
}

/* The case's description: cases.pipe (ref_tiny) or cases["pipe.NAME"] (ref_tiny_rng). */
static JsonObject *
pipe_description (const verify_run *run, const char *pipe)
{
  g_autofree char *key = g_strconcat ("pipe.", pipe, NULL);
  JsonObject *own = object_member (run->manifest, key);
  return own ? own : object_member (run->manifest, "pipe");
}

static gboolean
pipe_sampler (const char *pipe, gc_sampler *sampler, gc_schedule_type *schedule)
{
  static const struct {
    const char *name;
    gc_sampler sampler;
    gc_schedule_type schedule;
  } known[] = {
    { "ddim", GC_SAMPLER_DDIM, GC_SCHEDULE_DEFAULT },
    { "euler", GC_SAMPLER_EULER, GC_SCHEDULE_DEFAULT },
    { "euler_a", GC_SAMPLER_EULER_A, GC_SCHEDULE_DEFAULT },
    { "dpmpp2m_karras", GC_SAMPLER_DPMPP_2M, GC_SCHEDULE_KARRAS },
    { "img2img_ddim", GC_SAMPLER_DDIM, GC_SCHEDULE_DEFAULT },
    { "lcm", GC_SAMPLER_LCM, GC_SCHEDULE_DEFAULT },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (known); i++)
    if (strcmp (pipe, known[i].name) == 0)
      {
        *sampler = known[i].sampler;
        *schedule = known[i].schedule;
        return TRUE;
      }
  return FALSE;
}

static const char *
setup_pipe (verify_run *run, const char *pipe, pipe_setup *setup)
{
  gc_generate_params *p = &setup->params;
  JsonObject *description = pipe_description (run, pipe);
  if (description == NULL || !pipe_sampler (pipe, &p->sampler, &p->schedule))
    return "the manifest does not describe this pipeline";
  if (run->prompts == NULL || run->prompts->len == 0)
    return "the prompt of this pipeline is not in the reference files";
  setup->prompt = g_strdup (g_ptr_array_index (run->prompts, 0));
  p->prompt = setup->prompt;
  p->negative = "";
  p->cfg = json_object_get_double_member_with_default (description, "cfg", 7.5);
  const char *prediction = json_object_get_string_member_with_default (description,
                                                                        "prediction_type", "epsilon");
  gc_model_set_prediction (run->model, g_str_has_prefix (prediction, "v") ? GC_PREDICTION_V
                                                                          : GC_PREDICTION_EPSILON);
  p->steps = (int) json_object_get_int_member_with_default (description, "steps", 4);
  p->clip_skip = 0;
  const gc_st_tensor *noise = input (run, "pipe.noise");
  double seed = 0;
  if (noise)
    setup->noise = input_floats (run, "pipe.noise", NULL);
  else if (!number_after (json_object_get_string_member_with_default (description, "noise", ""),
                          "manual_seed(", &seed))
    return "the manifest gives neither the noise nor its seed";
  p->seed = (uint64_t) seed;
  g_autofree char *latents_name = g_strdup_printf ("pipe.%s.latents", pipe);
  const gc_st_tensor *shape = noise ? noise : input (run, latents_name);
  if (shape == NULL || shape->ndim != 4)
    return "the latent size is not in the reference file";
  int64_t scale = gc_vae_downscale (gc_model_vae (run->model));
  p->height = shape->shape[2] * scale;
  p->width = shape->shape[3] * scale;
  if (setup->noise == NULL)
    {
      /* The reference drew its starting noise with torch.randn (float32) from the seeded
       * generator, then ran diffusers in float64: the samplers' later draws are float64. */
      int64_t n = shape->shape[1] * shape->shape[2] * shape->shape[3];
      gc_torch_rng_seed (&setup->generator, p->seed);
      setup->noise = g_new (float, n);
      gc_torch_randn (&setup->generator, setup->noise, n);
      p->generator = &setup->generator;
    }
  p->noise = setup->noise;
  p->noise_dtype = GC_NOISE_F64;
  if (g_str_has_prefix (pipe, "img2img"))
    {
      g_autofree char *ts_name = g_strdup_printf ("pipe.%s.timesteps", pipe);
      const gc_st_tensor *ts = input (run, ts_name);
      const char *how = json_object_get_string_member_with_default (description, "img2img", "");
      if (!number_after (how, "strength ", &p->strength) || ts == NULL
          || (setup->init_image = input_floats (run, "pipe.init_image", NULL)) == NULL)
        return "the img2img inputs are not in the reference file";
      p->init_image = setup->init_image;
      p->steps = (int) lround ((double) ts->shape[0] / p->strength);
    }
  return NULL;
}

static void
report_pipe_outputs (verify_run *run, const char *pipe, const gc_schedule *schedule, int first,
                     const float *latent, const float *image)
{
  static const char *parts[] = { "timesteps", "sigmas", "latents", "image" };
  for (size_t k = 0; k < G_N_ELEMENTS (parts); k++)
    {
      g_autofree char *name = g_strdup_printf ("pipe.%s.%s", pipe, parts[k]);
      const gc_st_tensor *ref = input (run, name);
      if (ref == NULL || !selected (run, name))
        continue;
      size_t n = ref->nbytes / gc_dtype_size (ref->dtype);
      g_autofree float *values = g_new (float, n);
      if (k == 0)
        for (size_t i = 0; i < n; i++)
          values[i] = (float) schedule->timesteps[first + i];
      else if (k == 1)
        for (size_t i = 0; i < n; i++)
          values[i] = schedule->sigmas[first + i];
      else
        memcpy (values, k == 2 ? latent : image, n * sizeof (float));
      report (run, name, values, ref, k < 2 ? 1e-6 : 1e-3);
    }
}

static void
case_pipe (verify_run *run, const char *pipe)
{
  g_autofree char *label = g_strdup_printf ("pipe.%s", pipe);
  pipe_setup setup = { 0 };
  const char *problem = setup_pipe (run, pipe, &setup);
  gc_error err = { 0 };
  const gc_model_info *info = gc_model_get_info (run->model);
  int64_t scale = gc_vae_downscale (gc_model_vae (run->model));
  int64_t lh = setup.params.height / scale, lw = setup.params.width / scale;
  g_autofree float *latent = problem ? NULL : g_new (float, info->latent_channels * lh * lw);
  g_autofree float *image = problem ? NULL : g_new (float, 3 * setup.params.height * setup.params.width);
  gc_schedule schedule;
  int first = 0;
  gc_torch_rng unused_rng; /* planning draws nothing, but checks the parameters as sampling does */
  gc_sample_params plan = { .sampler = setup.params.sampler, .schedule = setup.params.schedule,
                            .steps = setup.params.steps, .prediction = info->prediction,
                            .init = setup.params.init_image ? latent : NULL,
                            .strength = setup.params.strength, .rng = &unused_rng };
  if (problem)
    skip (run, label, problem);
  else if (gc_sample_plan (&schedule, &first, &plan, &err)
           || gc_generate_latent (run->model, &setup.params, latent, NULL, NULL, NULL, &err)
           || gc_decode_latent (run->model, image, latent, lh, lw, NULL, &err))
    report_failure (run, label, &err);
  else
    report_pipe_outputs (run, pipe, &schedule, first, latent, image);
  g_free (setup.prompt);
  g_free (setup.noise);
  g_free (setup.init_image);
}

/* ------------------------------------------------------------------ LoRA styles */

/* Adds the LoRA files the manifest names (cases.lora.files: {"style_a": FILE, …}, beside the
 * reference) to the model as styles at weight 0; NULL or the reason they cannot be. */
static const char *
load_styles (verify_run *run, gc_error *err)
{
  if (run->style_letters)
    return NULL;
  JsonObject *files = object_member (object_member (run->manifest, "lora"), "files");
  if (files == NULL)
    return "the manifest names no LoRA files";
  run->style_letters = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GList) names = json_object_get_members (files);
  for (GList *l = names; l; l = l->next)
    {
      const char *member = l->data;
      const char *file = json_object_get_string_member_with_default (files, member, "");
      g_autofree char *path = g_build_filename (run->ref_dir, file, NULL);
      gc_model *m = run->model;
      gc_lora *lora;
      if (gc_lora_open (&lora, path, gc_model_checkpoint (m), err)
          || gc_styles_add (gc_model_styles (m), lora, 0, 0, err))
        return err->message;
      const char *letter = strrchr (member, '_');
      g_ptr_array_add (run->style_letters, g_strdup (letter ? letter + 1 : member));
    }
  return NULL;
}

/* The weight the case name gives a style: "a_w1.0" (style a at 1.0), "blend_a0.7_b0.3", "none". */
static double
case_weight (const char *case_name, const char *letter)
{
  g_auto (GStrv) words = g_strsplit (case_name, "_", -1);
  size_t len = strlen (letter);
  for (int i = 0; words[i]; i++)
    {
      if (strcmp (words[i], letter) == 0 && words[i + 1] && words[i + 1][0] == 'w')
        return g_ascii_strtod (words[i + 1] + 1, NULL);
      if (strncmp (words[i], letter, len) == 0 && (g_ascii_isdigit (words[i][len])
                                                   || words[i][len] == '-'))
        return g_ascii_strtod (words[i] + len, NULL);
    }
  return 0;
}

/* lora.CASE.text_last_hidden: the text encoder on prompt 0 with the case's styles;
 * lora.CASE.unet_eps_t500: the UNet on unet.x at t = 500 with the reference's text output of
 * the same case as context. */
static void
case_lora (verify_run *run, const char *name, const gc_st_tensor *ref)
{
  gc_error err = { 0 };
  const char *problem = load_styles (run, &err);
  if (problem)
    return report_failure (run, name, &err);
  const char *dot = strrchr (name, '.');
  g_autofree char *case_name = g_strndup (name + 5, (gsize) (dot - name - 5));
  gc_styles *styles = gc_model_styles (run->model);
  for (guint i = 0; i < run->style_letters->len; i++)
    {
      double w = case_weight (case_name, g_ptr_array_index (run->style_letters, i));
      if (gc_styles_set_weights (styles, i, w, w, &err))
        return report_failure (run, name, &err);
    }
  if (strcmp (dot + 1, "text_last_hidden") == 0)
    case_text (run, name, ref, (gc_text_output) { gc_model_get_info (run->model)->default_clip_skip,
                                                  TRUE });
  else if (g_str_has_prefix (dot + 1, "unet_eps_t"))
    {
      g_autofree char *context_name = g_strdup_printf ("lora.%s.text_last_hidden", case_name);
      const gc_st_tensor *x = input (run, "unet.x"), *context = input (run, context_name);
      if (x == NULL || x->ndim != 4 || context == NULL)
        skip (run, name, "its inputs are not in the reference file");
      else
        {
          double t = g_ascii_strtod (dot + 1 + strlen ("unet_eps_t"), NULL);
          g_autofree float *xf = input_floats (run, "unet.x", NULL);
          g_autofree float *cf = input_floats (run, context_name, NULL);
          g_autofree float *out = g_new (float, ref->nbytes / 4);
          gc_unet_cond cond = { cf, GC_CONTEXT_TOKENS, NULL, NULL, NULL };
          if (gc_unet_forward (gc_model_unet (run->model), gc_model_scratch (run->model), out, xf,
                               1, x->shape[2], x->shape[3], &t, &cond, NULL, &err))
            report_failure (run, name, &err);
          else
            report (run, name, out, ref, 1e-4);
        }
    }
  else
    skip (run, name, "unknown LoRA case");
  for (guint i = 0; i < run->style_letters->len; i++)
    gc_styles_set_weights (styles, i, 0, 0, NULL);
}

/* ------------------------------------------------------------------ dispatch */

static void
run_case (verify_run *run, const char *name, GHashTable *groups_done)
{
  const gc_st_tensor *ref = input (run, name);
  bool xl = gc_model_text_encoder2 (run->model) != NULL;
  if (strcmp (name, "tokenizer.ids") == 0)
    return case_tokenizer_ids (run, name, ref, gc_model_get_info (run->model)->pad_id);
  if (strcmp (name, "tokenizer.ids2") == 0)
    return case_tokenizer_ids (run, name, ref, 0);
  if (xl && (strcmp (name, "text.context") == 0 || strcmp (name, "text.pooled") == 0))
    return case_text_xl (run, name, ref);
  if (strcmp (name, "text.last_hidden") == 0)
    return case_text (run, name, ref,
                      (gc_text_output) { gc_model_get_info (run->model)->default_clip_skip, TRUE });
  if (strcmp (name, "text.penultimate_normed") == 0)
    return case_text (run, name, ref, (gc_text_output) { 2, TRUE });
  if (g_str_has_prefix (name, "unet.act_t"))
    {
      /* one forward pass checks every activation of the group */
      const char *dot = strchr (name + strlen ("unet.act_t"), '.');
      g_autofree char *prefix = g_strndup (name, (gsize) (dot - name + 1));
      if (!g_hash_table_contains (groups_done, prefix))
        {
          case_unet_activations (run, prefix);
          g_hash_table_add (groups_done, g_steal_pointer (&prefix));
        }
      return;
    }
  if (g_str_has_prefix (name, "unet.eps_"))
    return case_unet (run, name, ref);
  if (g_str_has_prefix (name, "vae.decoded") || g_str_has_prefix (name, "vae.enc_"))
    return case_vae (run, name, ref);
  if (g_str_has_prefix (name, "rng."))
    return case_rng (run, name, ref);
  if (g_str_has_prefix (name, "pipe."))
    {
      const char *dot = strchr (name + 5, '.');
      if (dot == NULL)
        return; /* an input (pipe.noise, pipe.init_image) */
      g_autofree char *pipe = g_strndup (name + 5, (gsize) (dot - name - 5));
      if (!g_hash_table_contains (groups_done, pipe))
        {
          case_pipe (run, pipe);
          g_hash_table_add (groups_done, g_steal_pointer (&pipe));
        }
      return;
    }
  if (g_str_has_prefix (name, "lora."))
    return case_lora (run, name, ref);
}

static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Every selected case, in name order. */
static void
run_all_cases (verify_run *run)
{
  size_t n = gc_safetensors_count (run->ref);
  g_autofree const char **names = g_new (const char *, n + 1);
  for (size_t i = 0; i < n; i++)
    names[i] = gc_safetensors_at (run->ref, i)->name;
  qsort (names, n, sizeof *names, compare_names);
  g_autoptr (GHashTable) done = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (size_t i = 0; i < n; i++)
    if (selected (run, names[i]))
      run_case (run, names[i], done);
}

/* The prompts listed in another reference file's manifest, if that file opens. */
static GPtrArray *
sibling_prompts (const char *path, const gc_st_tensor *ids)
{
  gc_safetensors *other;
  gc_error err;
  if (gc_safetensors_open (&other, path, &err) != GC_OK)
    return NULL;
  /* with ids given, only a file whose token ids are identical encodes the same prompts */
  const gc_st_tensor *other_ids = gc_safetensors_find (other, "tokenizer.ids");
  gboolean same = ids == NULL
                   || (other_ids && other_ids->nbytes == ids->nbytes
                       && memcmp (other_ids->data, ids->data, ids->nbytes) == 0);
  g_autoptr (JsonParser) parser = json_parser_new ();
  const char *manifest = gc_safetensors_metadata (other, "manifest");
  GPtrArray *prompts = NULL;
  if (same && manifest && parse_python_json (parser, manifest, NULL)
      && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      JsonArray *list = prompts_of (object_member (json_node_get_object (json_parser_get_root (parser)),
                                                   "cases"));
      if (list)
        prompts = strings_of (list);
    }
  gc_safetensors_close (other);
  return prompts;
}

/* The prompts behind the reference: its own manifest's list; else those of a reference beside
 * it with identical token ids; else those of the reference its descriptions name
 * ("… of ref_tiny"). */
static void
find_prompts (verify_run *run, const char *manifest_text)
{
  JsonArray *own = prompts_of (run->manifest);
  if (own)
    {
      run->prompts = strings_of (own);
      return;
    }
  const gc_st_tensor *ids = input (run, "tokenizer.ids");
  g_autoptr (GDir) dir = ids ? g_dir_open (run->ref_dir, 0, NULL) : NULL;
  for (const char *entry; dir && (entry = g_dir_read_name (dir)) && run->prompts == NULL;)
    if (g_str_has_prefix (entry, "ref_") && g_str_has_suffix (entry, ".safetensors"))
      {
        g_autofree char *path = g_build_filename (run->ref_dir, entry, NULL);
        if ((run->prompts = sibling_prompts (path, ids)))
          run->prompts_source = g_strdup (entry);
      }
  const char *mention = run->prompts ? NULL : strstr (manifest_text, "of ref_");
  if (mention)
    {
      mention += strlen ("of ");
      g_autofree char *stem = g_strndup (mention, strspn (mention, "abcdefghijklmnopqrstuvwxyz0123456789_"));
      g_autofree char *file = g_strconcat (stem, ".safetensors", NULL);
      g_autofree char *path = g_build_filename (run->ref_dir, file, NULL);
      if ((run->prompts = sibling_prompts (path, NULL)))
        run->prompts_source = g_steal_pointer (&file);
    }
  if (run->prompts_source)
    printf ("      prompts from %s\n", run->prompts_source);
}

static gboolean
load_manifest (verify_run *run, const char *reference)
{
  const char *text = gc_safetensors_metadata (run->ref, "manifest");
  run->parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  if (text == NULL || !parse_python_json (run->parser, text, &error)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (run->parser)))
    {
      gouache_cli_fail ("%s has no readable manifest in its metadata: not a reference file",
                        reference);
      return FALSE;
    }
  JsonObject *root = json_node_get_object (json_parser_get_root (run->parser));
  run->manifest = object_member (root, "cases");
  if (run->manifest == NULL)
    {
      gouache_cli_fail ("%s: the manifest lists no cases", reference);
      return FALSE;
    }
  return TRUE;
}

int
gouache_cli_verify (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *reference = NULL, *cases = NULL;
  int threads = 0;
  const GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model_path, "Checkpoint to check", "CKPT" },
    { "reference", 0, 0, G_OPTION_ARG_FILENAME, &reference, "Reference outputs", "REF.safetensors" },
    { "cases", 0, 0, G_OPTION_ARG_STRING, &cases, "Only cases starting with these prefixes",
      "PREFIX,..." },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all cores)", "N" },
    { NULL },
  };
  if (!gouache_cli_parse (&argc, &argv, "— check the engine against reference outputs",
                          "Runs every case of a reference file that the engine can compute and "
                          "prints its error against the tolerances of the oracle.",
                          entries))
    return 1;
  if (model_path == NULL || reference == NULL)
    return gouache_cli_fail ("verify needs --model and --reference (see --help)");
  gouache_cli_set_threads (threads);
  verify_run run = { 0 };
  gc_error err = { 0 };
  if (gc_safetensors_open (&run.ref, reference, &err))
    return gouache_cli_fail_core (&err);
  int status = 1;
  g_autofree char *vocab = gouache_cli_data_file ("bpe_simple_vocab_16e6.txt.gz");
  if (!load_manifest (&run, reference))
    ;
  else if (gc_model_open (&run.model, model_path, vocab, &err))
    gouache_cli_fail_core (&err);
  else
    {
      run.ref_dir = g_path_get_dirname (reference);
      run.prefixes = cases ? g_strsplit (cases, ",", -1) : NULL;
      find_prompts (&run, gc_safetensors_metadata (run.ref, "manifest"));
      run_all_cases (&run);
      if (run.skipped)
        printf ("%d skipped\n", run.skipped);
      printf ("%d passed, %d failed\n", run.passed, run.failed);
      status = run.failed > 0 || run.passed == 0 ? 1 : 0;
    }
  gc_model_free (run.model);
  gc_safetensors_close (run.ref);
  g_clear_object (&run.parser);
  g_free (run.ref_dir);
  g_free (run.prompts_source);
  g_clear_pointer (&run.prompts, g_ptr_array_unref);
  g_strfreev (run.prefixes);
  g_clear_pointer (&run.style_letters, g_ptr_array_unref);
  return status;
}
