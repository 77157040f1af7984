/* gouache-cli bench: speed and memory of each stage on a model, against the machine's own
 * sgemm rate (the floor of any implementation that multiplies matrices in float32). */
#include "config.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "gc-matmul.h"
#include "gc-pipeline.h"
#include "gc-threads.h"
#include "gouache-cli.h"
#include "gouache-cli-styles.h"

typedef struct {
  double load_s, text_s, unet_s_per_eval, unet_s_per_guided_step, unet_gflop, unet_gflops;
  double vae_decode_s, vae_gflop, vae_gflops, sgemm_gflops, peak_rss_mb;
  int64_t width, height, evaluations;
  int threads;
  GArray *styles;         /* --lora: applied before anything is timed */
  gboolean blend_latency; /* --blend-latency */
  double styles_load_s, blend_latency_s, unstyled_s_per_eval, first_styled_s, styled_s_per_eval;
} bench_result;

static double
now (void)
{
  return g_get_monotonic_time () / 1e6;
}

static double
peak_rss_mb (void)
{
  struct rusage usage;
  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0; /* kilobytes on Linux */
}

static double
median (double *values, int n)
{
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && values[j] < values[j - 1]; j--)
      {
        double t = values[j];
        values[j] = values[j - 1];
        values[j - 1] = t;
      }
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

/* Seconds per UNet evaluation of `batch` latents (median of `runs`, after one warm-up). */
static gc_status
time_unet (gc_model *m, int64_t batch, int64_t lh, int64_t lw, const float *context,
           int64_t tokens, const float *pooled, int runs, double *seconds, gc_error *err)
{
  int64_t n = batch * gc_model_get_info (m)->latent_channels * lh * lw;
  g_autofree float *x = g_new (float, n), *out = g_new (float, n);
  g_autofree float *contexts = g_new (float, batch * tokens * gc_model_get_info (m)->context_dim);
  for (int64_t i = 0; i < n; i++)
    x[i] = (float) ((i * 7919) % 2001) / 1000.0f - 1.0f;
  for (int64_t b = 0; b < batch; b++)
    memcpy (contexts + b * tokens * gc_model_get_info (m)->context_dim, context,
            sizeof (float) * tokens * gc_model_get_info (m)->context_dim);
  double timesteps[2] = { 500, 500 }, samples[16];
  /* SDXL: the pooled text and the image size, for both images */
  int64_t adm_dim = gc_unet_get_config (gc_model_unet (m))->adm_dim;
  g_autofree float *adm = adm_dim ? g_new (float, batch * adm_dim) : NULL;
  const double time_ids[6] = { lh * 8.0, lw * 8.0, 0, 0, lh * 8.0, lw * 8.0 };
  for (int64_t b = 0; adm && b < batch; b++)
    gc_size_conditioning (adm + b * adm_dim, pooled,
                          gc_text_encoder_get_config (gc_model_text_encoder2 (m))->projection,
                          adm_dim, time_ids);
  gc_unet_cond cond = { contexts, tokens, adm, NULL, NULL };
  for (int r = -1; r < runs; r++)
    {
      double t0 = now ();
      gc_status s = gc_unet_forward (gc_model_unet (m), gc_model_scratch (m), out, x, batch, lh, lw,
                                     timesteps, &cond, &gouache_cli_interrupted, err);
      if (s != GC_OK)
        return s;
      if (r >= 0)
        samples[r] = now () - t0;
      fprintf (stderr, "  UNet batch %lld: %.2f s\n", (long long) batch, now () - t0);
    }
  *seconds = median (samples, runs);
  return GC_OK;
}

/* Seconds of one evaluation of one latent, without a warm-up. */
static gc_status
time_one_unet (gc_model *m, int64_t lh, int64_t lw, const float *context, int64_t tokens,
               double *seconds, gc_error *err)
{
  int64_t n = gc_model_get_info (m)->latent_channels * lh * lw;
  g_autofree float *x = g_new (float, n), *out = g_new (float, n);
  for (int64_t i = 0; i < n; i++)
    x[i] = (float) ((i * 7919) % 2001) / 1000.0f - 1.0f;
  double t = 500, t0 = now ();
  gc_unet_cond cond = { context, tokens, NULL, NULL, NULL };
  gc_status s = gc_unet_forward (gc_model_unet (m), gc_model_scratch (m), out, x, 1, lh, lw, &t,
                                 &cond, &gouache_cli_interrupted, err);
  *seconds = now () - t0;
  return s;
}

static void
set_all_weights (gc_styles *styles, const double *weights, double scale)
{
  for (size_t i = 0; i < gc_styles_count (styles); i++)
    gc_styles_set_weights (styles, i, scale * weights[2 * i], scale * weights[2 * i + 1], NULL);
}

/* From a weight change to a model ready to run, and what the styles cost after it. A change
 * only marks the weights it touches as stale (gc-styles.h); the first evaluation after it
 * merges them, the next ones run as without styles. Timed in rounds (so that a change in the
 * machine's load affects all alike): every style at weight 0, then back at its weight (the
 * change timed), then two evaluations. */
static gc_status
time_blend (gc_model *m, int64_t lh, int64_t lw, const float *context, int64_t tokens, int runs,
            bench_result *r, gc_error *err)
{
  gc_styles *styles = gc_model_styles (m);
  size_t n = gc_styles_count (styles);
  g_autofree double *weights = g_new (double, 2 * n);
  for (size_t i = 0; i < n; i++)
    weights[2 * i] = gc_styles_weight (styles, i), weights[2 * i + 1] = gc_styles_text_weight (styles, i);
  double change[16] = { 0 }, unstyled[16] = { 0 }, first[16] = { 0 }, next[16] = { 0 };
  gc_status s = GC_OK;
  for (int k = 0; k < runs && s == GC_OK; k++)
    {
      set_all_weights (styles, weights, 0);
      s = time_one_unet (m, lh, lw, context, tokens, &unstyled[k], err);
      double t0 = now ();
      set_all_weights (styles, weights, 1);
      change[k] = now () - t0;
      if (s == GC_OK)
        s = time_one_unet (m, lh, lw, context, tokens, &first[k], err);
      if (s == GC_OK)
        s = time_one_unet (m, lh, lw, context, tokens, &next[k], err);
      fprintf (stderr, "  UNet batch 1: %.2f s without styles, %.2f s right after a weight change, "
               "%.2f s after that\n", unstyled[k], first[k], next[k]);
    }
  r->blend_latency_s = median (change, runs);
  r->unstyled_s_per_eval = median (unstyled, runs);
  r->first_styled_s = median (first, runs);
  r->styled_s_per_eval = median (next, runs);
  return s;
}

static gc_status
apply_styles (gc_model *m, bench_result *r, gc_error *err)
{
  g_autoptr (GError) error = NULL;
  double t0 = now ();
  if (!gouache_cli_styles_apply (m, r->styles, FALSE, &error))
    return gc_error_set (err, GC_ERR_INVALID, "%s", error->message);
  r->styles_load_s = now () - t0;
  return GC_OK;
}

static gc_status
run_bench (const char *model_path, bench_result *r, int runs, gc_error *err)
{
  g_autofree char *vocab = gouache_cli_data_file ("bpe_simple_vocab_16e6.txt.gz");
  fprintf (stderr, "measuring sgemm…\n");
  r->sgemm_gflops = gc_matmul_measure_gflops (1024, 2.0);
  double t0 = now ();
  gc_model *m;
  gc_status s = gc_model_open (&m, model_path, vocab, err);
  if (s != GC_OK)
    return s;
  r->load_s = now () - t0;
  if (r->styles->len > 0 && (s = apply_styles (m, r, err)) != GC_OK)
    {
      gc_model_free (m);
      return s;
    }
  const gc_model_info *info = gc_model_get_info (m);
  int64_t scale = gc_vae_downscale (gc_model_vae (m));
  int64_t lh = r->height / scale, lw = r->width / scale;
  float *context = NULL, *pooled = NULL;
  int64_t tokens = 0;
  t0 = now ();
  s = gc_encode_prompt_pooled (m, "a watercolor painting of a lighthouse at dusk, soft light", 0,
                               &context, &tokens, &pooled, err);
  r->text_s = now () - t0;
  if (s == GC_OK)
    s = time_unet (m, 1, lh, lw, context, tokens, pooled, runs, &r->unet_s_per_eval, err);
  if (s == GC_OK)
    s = time_unet (m, 2, lh, lw, context, tokens, pooled, runs, &r->unet_s_per_guided_step, err);
  if (s == GC_OK && r->blend_latency)
    s = time_blend (m, lh, lw, context, tokens, runs, r, err);
  r->unet_gflop = gc_unet_flops (gc_model_unet (m), lh, lw, tokens) / 1e9;
  r->unet_gflops = r->unet_gflop / r->unet_s_per_eval;
  g_autofree float *latent = g_new0 (float, info->latent_channels * lh * lw);
  g_autofree float *image = g_new (float, 3 * r->height * r->width);
  if (s == GC_OK)
    {
      gc_model_release_weights (m);
      t0 = now ();
      s = gc_decode_latent (m, image, latent, lh, lw, &gouache_cli_interrupted, err);
      r->vae_decode_s = now () - t0;
    }
  r->vae_gflop = gc_vae_decode_flops (gc_model_vae (m), lh, lw) / 1e9;
  r->vae_gflops = r->vae_gflop / r->vae_decode_s;
  r->peak_rss_mb = peak_rss_mb ();
  free (context);
  free (pooled);
  gc_model_free (m);
  return s;
}

static void
print_result (const bench_result *r)
{
  printf ("size                 %lldx%lld, %d threads\n", (long long) r->width,
          (long long) r->height, r->threads);
  printf ("sgemm                %.1f GFLOP/s (this machine's float32 matrix product)\n",
          r->sgemm_gflops);
  printf ("model load           %.2f s\n", r->load_s);
  printf ("text encoder         %.3f s\n", r->text_s);
  printf ("UNet                 %.2f s per evaluation, %.2f s per guided step (batch 2)\n",
          r->unet_s_per_eval, r->unet_s_per_guided_step);
  printf ("UNet rate            %.1f GFLOP/s (%.0f GFLOP per evaluation, %.0f%% of sgemm)\n",
          r->unet_gflops, r->unet_gflop, 100 * r->unet_gflops / r->sgemm_gflops);
  printf ("VAE decode           %.2f s (%.1f GFLOP/s, %.0f%% of sgemm)\n", r->vae_decode_s,
          r->vae_gflops, 100 * r->vae_gflops / r->sgemm_gflops);
  printf ("peak RSS             %.0f MB\n", r->peak_rss_mb);
  if (r->styles->len > 0)
    printf ("styles               %u opened and applied in %.3f s\n", r->styles->len,
            r->styles_load_s);
  if (r->blend_latency)
    printf ("blend latency        %.1f µs from a weight change to a ready model; the first UNet "
            "evaluation after it merges the styles (+%.2f s), the next ones take %+.2f s (%.2f s "
            "without styles)\n",
            1e6 * r->blend_latency_s, r->first_styled_s - r->unstyled_s_per_eval,
            r->styled_s_per_eval - r->unstyled_s_per_eval, r->unstyled_s_per_eval);
}

static gboolean
write_json (const bench_result *r, const char *path, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
#define NUMBER(key, value) (json_builder_set_member_name (b, key), json_builder_add_double_value (b, value))
  NUMBER ("width", r->width);
  NUMBER ("height", r->height);
  NUMBER ("threads", r->threads);
  NUMBER ("load_s", r->load_s);
  NUMBER ("text_encoder_s", r->text_s);
  NUMBER ("unet_s_per_eval", r->unet_s_per_eval);
  NUMBER ("unet_s_per_guided_step", r->unet_s_per_guided_step);
  NUMBER ("unet_gflop_per_eval", r->unet_gflop);
  NUMBER ("unet_gflops", r->unet_gflops);
  NUMBER ("vae_decode_s", r->vae_decode_s);
  NUMBER ("vae_gflops", r->vae_gflops);
  NUMBER ("sgemm_gflops", r->sgemm_gflops);
  NUMBER ("peak_rss_mb", r->peak_rss_mb);
  if (r->styles->len > 0)
    {
      NUMBER ("styles", r->styles->len);
      NUMBER ("styles_load_s", r->styles_load_s);
    }
  if (r->blend_latency)
    {
      NUMBER ("blend_latency_s", r->blend_latency_s);
      NUMBER ("unet_s_per_eval_unstyled", r->unstyled_s_per_eval);
      NUMBER ("unet_s_first_after_change", r->first_styled_s);
      NUMBER ("unet_s_per_eval_styled", r->styled_s_per_eval);
      NUMBER ("styles_merge_s", r->first_styled_s - r->unstyled_s_per_eval);
      NUMBER ("styles_s_per_eval", r->styled_s_per_eval - r->unstyled_s_per_eval);
    }
#undef NUMBER
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_file (gen, path, error);
}

int
gouache_cli_bench (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *json = NULL;
  g_auto (GStrv) loras = NULL;
  gboolean blend_latency = FALSE;
  int width = 512, height = 512, runs = 3, threads = 0;
  const GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model_path, "Checkpoint to measure", "CKPT" },
    { "width", 0, 0, G_OPTION_ARG_INT, &width, "Image width (default 512)", "W" },
    { "height", 0, 0, G_OPTION_ARG_INT, &height, "Image height (default 512)", "H" },
    { "steps", 0, 0, G_OPTION_ARG_INT, &runs, "UNet evaluations to time, after a warm-up (default 3)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all cores)", "N" },
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &json, "Also write the numbers as JSON", "FILE" },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &loras, "Apply a style before timing (repeatable)", "FILE:WEIGHT[:TEXT_WEIGHT]" },
    { "blend-latency", 0, 0, G_OPTION_ARG_NONE, &blend_latency, "Time a style weight change and what the styles cost per UNet evaluation (needs --lora)", NULL },
    { NULL },
  };
  if (!gouache_cli_parse (&argc, &argv, "— measure speed and memory",
                          "Times the text encoder, the UNet (one image and a guided pair) and "
                          "the VAE decoder, and compares the UNet's rate with this machine's "
                          "sgemm rate.",
                          entries))
    return 1;
  if (model_path == NULL)
    return gouache_cli_fail ("bench needs --model (see --help)");
  if (runs < 1 || runs > 16)
    return gouache_cli_fail ("--steps must be between 1 and 16");
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) styles = gouache_cli_styles_parse (loras, &error);
  if (styles == NULL)
    return gouache_cli_fail ("%s", error->message);
  if (blend_latency && styles->len == 0)
    return gouache_cli_fail ("--blend-latency needs at least one --lora");
  gouache_cli_set_threads (threads);
  gouache_cli_catch_interrupt ();
  bench_result r = { .width = width, .height = height, .threads = gc_threads_get (),
                     .styles = styles, .blend_latency = blend_latency };
  gc_error err = { 0 };
  if (run_bench (model_path, &r, runs, &err))
    return gouache_cli_fail_core (&err);
  print_result (&r);
  if (json && !write_json (&r, json, &error))
    return gouache_cli_fail ("cannot write %s: %s", json, error->message);
  return 0;
}
