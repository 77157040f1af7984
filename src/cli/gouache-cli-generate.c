/* gouache-cli generate: one image from a prompt (or from an image), written as a PNG whose
 * "parameters" text chunk carries the settings in AUTOMATIC1111's format. */
#include "config.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gc-defaults.h"
#include "gc-pipeline.h"
#include "gouache-file-hash.h"
#include "gouache-infotext.h"
#include "gouache-png.h"
#include "gouache-cli.h"
#include "gouache-cli-styles.h"

typedef struct {
  char *model, *prompt, *negative, *sampler, *schedule, *init_image, *output, *prediction;
  char **loras; /* FILE:WEIGHT[:TEXT_WEIGHT] */
  int steps, width, height, clip_skip, threads;
  double cfg, strength;
  gint64 seed;
} generate_options;

static void
on_progress (void *ctx, int step, int steps, const float *denoised, int64_t lh, int64_t lw)
{
  gouache_cli_progress_update (ctx, step + 1, steps);
}

/* Fails early, before minutes of work, if the image could not be written. */
static gboolean
output_writable (const char *path)
{
  g_autofree char *folder = g_path_get_dirname (path);
  return g_file_test (folder, G_FILE_TEST_IS_DIR) && access (folder, W_OK) == 0;
}

static char *
default_output (guint64 seed)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *stamp = g_date_time_format (now, "%Y%m%d-%H%M%S");
  return g_strdup_printf ("gouache-%s-%" G_GUINT64_FORMAT ".png", stamp, seed);
}

/* The checkpoint file a model hash is taken of: the file itself, or a diffusers folder's UNet. */
static char *
hash_source (const char *model)
{
  if (!g_file_test (model, G_FILE_TEST_IS_DIR))
    return g_strdup (model);
  return g_build_filename (model, "unet", "diffusion_pytorch_model.safetensors", NULL);
}

static char *
model_name (const char *model)
{
  g_autofree char *base = g_path_get_basename (model);
  char *dot = g_str_has_suffix (base, ".safetensors") ? strrchr (base, '.') : NULL;
  return dot ? g_strndup (base, (gsize) (dot - base)) : g_strdup (base);
}

static GouacheGenerationInfo *
describe (const generate_options *o, const gc_generate_params *p, const char *hash)
{
  GouacheGenerationInfo *info = gouache_generation_info_new ();
  info->prompt = g_strdup (p->prompt);
  info->negative_prompt = g_strdup (p->negative);
  info->steps = (guint) p->steps;
  info->sampler = g_strdup (gc_sampler_display_name (p->sampler));
  info->schedule_type = g_strdup (gc_schedule_display_name (p->schedule));
  info->cfg_scale = p->cfg;
  info->seed = p->seed;
  info->width = (guint) p->width;
  info->height = (guint) p->height;
  info->model_hash = g_strdup (hash);
  info->model_name = model_name (o->model);
  info->denoising_strength = p->init_image ? p->strength : -1;
  info->clip_skip = (guint) p->clip_skip;
  info->version = g_strdup (gouache_infotext_version ());
  return info;
}

/* Loads the init image; its size becomes the output size unless one was given (then they must
 * agree). */
static float *
load_init_image (generate_options *o, GError **error)
{
  g_autoptr (GouachePngImage) image = gouache_png_load (o->init_image, error);
  if (image == NULL)
    return NULL;
  if ((o->width && (guint) o->width != image->width) || (o->height && (guint) o->height != image->height))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s is %ux%u but --width/--height ask for %dx%d: resize the image or leave "
                   "out --width and --height",
                   o->init_image, image->width, image->height, o->width, o->height);
      return NULL;
    }
  o->width = (int) image->width;
  o->height = (int) image->height;
  return gouache_png_image_to_float (image);
}

/* Settings the user left out come from what suits the model: few-step Turbo and LCM models (or
 * an LCM-LoRA) want their own sampler, step count and no guidance. */
static void
apply_defaults (const generate_options *o, gc_generate_params *p, gc_model *model)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (names, g_path_get_basename (o->model));
  for (char **lora = o->loras; lora && *lora; lora++)
    g_ptr_array_add (names, g_path_get_basename (*lora));
  gc_distillation kind = gc_detect_distillation ((const char *const *) names->pdata, names->len,
                                                 gc_model_checkpoint (model));
  gc_sampling_defaults d = gc_sampling_defaults_for (gc_model_get_info (model)->family, kind);
  if (o->sampler == NULL)
    p->sampler = d.sampler;
  if (o->schedule == NULL)
    p->schedule = d.schedule;
  if (o->steps <= 0)
    p->steps = d.steps;
  if (isnan (o->cfg))
    p->cfg = d.cfg;
  if (kind != GC_DISTILL_NONE)
    fprintf (stderr, "%s model: %s, %s schedule, %d step%s, CFG %g unless set otherwise\n",
             gc_distillation_name (kind), gc_sampler_display_name (p->sampler),
             gc_schedule_cli_name (p->schedule), p->steps, p->steps == 1 ? "" : "s", p->cfg);
}

static int
run_generate (generate_options *o)
{
  gc_generate_params p = { 0 };
  gc_error err = { 0 };
  g_autoptr (GError) error = NULL;
  if ((o->sampler && gc_sampler_parse (&p.sampler, o->sampler, &err))
      || (o->schedule && gc_schedule_parse (&p.schedule, o->schedule, &err)))
    return gouache_cli_fail_core (&err);
  g_autofree float *init = NULL;
  if (o->init_image && (init = load_init_image (o, &error)) == NULL)
    return gouache_cli_fail ("%s", error->message);
  g_autoptr (GArray) styles = gouache_cli_styles_parse (o->loras, &error);
  if (styles == NULL)
    return gouache_cli_fail ("%s", error->message);
  p.prompt = o->prompt;
  p.negative = o->negative ? o->negative : "";
  p.steps = o->steps;
  p.cfg = o->cfg;
  p.seed = o->seed >= 0 ? (guint64) o->seed : g_random_int ();
  p.width = o->width ? o->width : 512;
  p.height = o->height ? o->height : 512;
  p.clip_skip = o->clip_skip;
  p.init_image = init;
  p.strength = o->strength;
  g_autofree char *output = o->output ? g_strdup (o->output) : default_output (p.seed);
  if (!output_writable (output))
    return gouache_cli_fail ("cannot write %s: its folder does not exist or is not writable",
                             output);
  if (!g_file_test (o->model, G_FILE_TEST_EXISTS))
    return gouache_cli_fail ("model %s does not exist", o->model);
  gouache_cli_set_threads (o->threads);
  g_autofree char *vocab = gouache_cli_data_file ("bpe_simple_vocab_16e6.txt.gz");
  gc_model *model;
  if (gc_model_open (&model, o->model, vocab, &err))
    return gouache_cli_fail_core (&err);
  apply_defaults (o, &p, model);
  if (gc_generate_validate (model, &p, &err))
    {
      gc_model_free (model);
      return gouache_cli_fail_core (&err);
    }
  if (!gouache_cli_styles_apply (model, styles, FALSE, &error))
    {
      gc_model_free (model);
      return gouache_cli_fail ("%s", error->message);
    }
  if (o->prediction && strcmp (o->prediction, "auto") != 0)
    gc_model_set_prediction (model, strcmp (o->prediction, "v") == 0 ? GC_PREDICTION_V
                                                                     : GC_PREDICTION_EPSILON);
  const gc_model_info *model_info = gc_model_get_info (model);
  if (model_info->family != GC_FAMILY_SD1
      || model_info->prediction_source != GC_PREDICTION_FROM_FAMILY)
    fprintf (stderr, "%s model, %s-prediction (%s)\n", gc_family_name (model_info->family),
             gc_prediction_name (model_info->prediction),
             gc_prediction_source_name (model_info->prediction_source));
  g_autofree char *source = hash_source (o->model);
  g_autofree char *hash = gouache_file_hash_model_hash (source, NULL, &error);
  if (hash == NULL)
    {
      gc_model_free (model);
      return gouache_cli_fail ("cannot hash %s: %s", source, error->message);
    }
  g_autofree float *image = g_new (float, 3 * p.width * p.height);
  GouacheCliProgress progress;
  gouache_cli_catch_interrupt ();
  gouache_cli_progress_start (&progress, "generating");
  gc_status status = gc_generate (model, &p, image, on_progress, &progress, &gouache_cli_interrupted, &err);
  gc_model_free (model);
  if (status == GC_ERR_CANCELLED)
    {
      fprintf (stderr, "\n");
      return gouache_cli_fail ("cancelled; nothing was written");
    }
  if (status != GC_OK)
    {
      fprintf (stderr, "\n");
      return gouache_cli_fail_core (&err);
    }
  gouache_cli_progress_finish (&progress);
  g_autoptr (GouacheGenerationInfo) info = describe (o, &p, hash);
  if (!gouache_cli_styles_describe (styles, info, &error))
    return gouache_cli_fail ("%s", error->message);
  g_autofree char *parameters = gouache_infotext_format (info);
  GouachePngText text[] = { { "parameters", parameters } };
  if (!gouache_png_save_float (output, image, (guint) p.width, (guint) p.height, text,
                               G_N_ELEMENTS (text), &error))
    return gouache_cli_fail ("%s", error->message);
  printf ("%s\n", output);
  return 0;
}

int
gouache_cli_generate (int argc, char **argv)
{
  generate_options o = { .steps = 0, .cfg = NAN, .seed = -1, .strength = 0.75 };
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &o.model, "Checkpoint (.safetensors or diffusers folder)", "CKPT" },
    { "prompt", 'p', 0, G_OPTION_ARG_STRING, &o.prompt, "What to draw; (word:1.3) and [word] change emphasis, BREAK starts a new chunk", "TEXT" },
    { "negative", 'n', 0, G_OPTION_ARG_STRING, &o.negative, "What to avoid", "TEXT" },
    { "sampler", 0, 0, G_OPTION_ARG_STRING, &o.sampler, "euler, euler_a, ddim, dpmpp_2m, heun, lcm (default: euler_a; lcm for LCM models)", "NAME" },
    { "schedule", 0, 0, G_OPTION_ARG_STRING, &o.schedule, "default, trailing, karras, exponential (default: default; trailing for Turbo)", "NAME" },
    { "steps", 0, 0, G_OPTION_ARG_INT, &o.steps, "Sampling steps (default 20; 1 for Turbo, 4 for LCM models)", "N" },
    { "cfg", 0, 0, G_OPTION_ARG_DOUBLE, &o.cfg, "Guidance scale (default 7, 5 for SDXL; 1 = none, for Turbo and LCM)", "SCALE" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &o.seed, "Seed (default: random)", "N" },
    { "width", 'W', 0, G_OPTION_ARG_INT, &o.width, "Width in pixels (default 512)", "W" },
    { "height", 'H', 0, G_OPTION_ARG_INT, &o.height, "Height in pixels (default 512)", "H" },
    { "init-image", 0, 0, G_OPTION_ARG_FILENAME, &o.init_image, "Start from this PNG (image to image)", "PNG" },
    { "strength", 0, 0, G_OPTION_ARG_DOUBLE, &o.strength, "How much of the init image to repaint, 0..1 (default 0.75)", "S" },
    { "clip-skip", 0, 0, G_OPTION_ARG_INT, &o.clip_skip, "Use the text encoder's output this many layers from the end (default: the model's)", "N" },
    { "prediction", 0, 0, G_OPTION_ARG_STRING, &o.prediction, "What the model predicts: auto (default: metadata, else a probe), epsilon or v", "KIND" },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.loras, "Apply a style (LoRA) at a weight, -2..2 (default 1); TEXT_WEIGHT for the text encoder (default: WEIGHT); repeatable", "FILE:WEIGHT[:TEXT_WEIGHT]" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &o.threads, "CPU threads (default: all cores)", "N" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &o.output, "PNG to write (default: gouache-DATE-SEED.png)", "FILE" },
    { NULL },
  };
  if (!gouache_cli_parse (&argc, &argv, "— draw an image",
                          "Draws an image with Stable Diffusion and writes it as a PNG that "
                          "carries its settings (readable by other tools).",
                          entries))
    return 1;
  int status;
  if (o.model == NULL || o.prompt == NULL)
    status = gouache_cli_fail ("generate needs --model and --prompt (see --help)");
  else
    {
      if (o.prediction && strcmp (o.prediction, "auto") != 0 && strcmp (o.prediction, "epsilon") != 0
          && strcmp (o.prediction, "v") != 0)
        status = gouache_cli_fail ("unknown --prediction '%s': use auto, epsilon or v", o.prediction);
      else
        status = run_generate (&o);
    }
  g_free (o.model), g_free (o.prompt), g_free (o.negative), g_free (o.sampler);
  g_free (o.schedule), g_free (o.init_image), g_free (o.output), g_free (o.prediction);
  g_strfreev (o.loras);
  return status;
}
