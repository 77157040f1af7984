/* gouache-cli train: a style (LoRA) trained on a folder of images, recorded in the run store.
 *
 * Prints the dataset report, then a progress line with the loss, the pace and the time left;
 * each validation loss gets a line of its own. Ctrl-C stops after the current step, saves the
 * state and prints how to resume. --json writes a summary for scripts and benchmarks. */
#include "config.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <sys/resource.h>

#include "gouache-cli.h"
#include "gouache-cli-runs.h"
#include "gouache-train.h"

typedef struct {
  GouacheCliProgress bar;
  char label[96];
  gint64 total;
  gboolean drawn;
  GouacheTrainStage stage;
  gint64 run;
} train_view;

static void
end_line (train_view *v)
{
  if (v->drawn)
    fputc ('\n', stderr);
  v->drawn = FALSE;
}

static void
on_stage (gpointer data, GouacheTrainStage stage, gint64 done, gint64 total)
{
  train_view *v = data;
  if (stage != v->stage)
    {
      end_line (v);
      v->stage = stage;
      if (stage == GOUACHE_TRAIN_STAGE_TRAINING)
        {
          gouache_cli_progress_start (&v->bar, v->label);
          g_snprintf (v->label, sizeof v->label, "train");
        }
      else if (stage == GOUACHE_TRAIN_STAGE_CACHING)
        gouache_cli_progress_start (&v->bar, "cache latents");
      else if (stage == GOUACHE_TRAIN_STAGE_WRITING)
        fprintf (stderr, "writing the LoRA\n");
    }
  if (stage == GOUACHE_TRAIN_STAGE_CACHING && total > 0)
    {
      gouache_cli_progress_update (&v->bar, (int) done, (int) total);
      v->drawn = TRUE;
    }
  if (stage == GOUACHE_TRAIN_STAGE_TRAINING)
    v->total = total;
}

static void
on_started (gpointer data, gint64 run, const char *report)
{
  train_view *v = data;
  end_line (v);
  v->run = run;
  fprintf (stderr, "%srun %" G_GINT64_FORMAT "\n", report, run);
}

static void
on_step (gpointer data, const gc_train_progress *p)
{
  train_view *v = data;
  g_snprintf (v->label, sizeof v->label, "train  loss %.4f  lr %.2e", p->loss, p->learning_rate);
  gouache_cli_progress_update (&v->bar, (int) p->step, (int) p->steps);
  v->drawn = TRUE;
}

static void
on_validation (gpointer data, gint64 step, double loss)
{
  train_view *v = data;
  end_line (v);
  fprintf (stderr, "validation loss after %" G_GINT64_FORMAT " steps: %.5f\n", step, loss);
}

static void
on_sample (gpointer data, gint64 step, guint index, GdkPixbuf *image, const char *path)
{
  train_view *v = data;
  end_line (v);
  fprintf (stderr, "sample %u after %" G_GINT64_FORMAT " steps: %s\n", index + 1, step, path);
}

static gint64
peak_rss_bytes (void)
{
  struct rusage usage;
  return getrusage (RUSAGE_SELF, &usage) == 0 ? (gint64) usage.ru_maxrss * 1024 : 0;
}

static gboolean
write_json (const GouacheTrainResult *r, const char *path, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "run");
  json_builder_add_int_value (b, r->run);
  json_builder_set_member_name (b, "steps");
  json_builder_add_int_value (b, r->steps);
  json_builder_set_member_name (b, "val_loss_first");
  json_builder_add_double_value (b, r->val_loss_first);
  json_builder_set_member_name (b, "val_loss_last");
  json_builder_add_double_value (b, r->val_loss_last);
  json_builder_set_member_name (b, "seconds_per_step");
  json_builder_add_double_value (b, r->seconds_per_step);
  json_builder_set_member_name (b, "peak_rss_bytes");
  json_builder_add_int_value (b, peak_rss_bytes ());
  json_builder_set_member_name (b, "output");
  json_builder_add_string_value (b, r->output_path);
  json_builder_set_member_name (b, "output_sha256");
  json_builder_add_string_value (b, r->output_hash);
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_file (gen, path, error);
}

int
gouache_cli_train (int argc, char **argv)
{
  g_autoptr (GouacheTrainRequest) r = gouache_train_request_new ();
  g_autofree char *json = NULL, *db = NULL, *lr = NULL, *alpha = NULL;
  g_autofree char *weight_decay = NULL, *gamma = NULL, *offset = NULL;
  gint64 steps = r->steps, rank = r->rank, batch = r->batch, accumulation = r->accumulation;
  gint64 warmup = r->warmup, seed = (gint64) r->seed, validate_every = r->validate_every;
  gint64 sample_every = r->sample_every, checkpoint_every = r->checkpoint_every, resume = 0;
  int resolution = r->resolution, validation_timesteps = r->validation_timesteps;
  int sample_steps = r->sample_steps, threads = 0;
  gboolean flip = FALSE;
  GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &r->model_path, "Base model (checkpoint or diffusers folder)", "CKPT" },
    { "dataset", 0, 0, G_OPTION_ARG_FILENAME, &r->dataset_path, "Folder of PNG/JPEG/WebP images with optional .txt captions", "DIR" },
    { "output", 0, 0, G_OPTION_ARG_FILENAME, &r->output_path, "The LoRA to write (.safetensors)", "FILE" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &r->name, "Style name (default: the output's file name)", "NAME" },
    { "trigger", 0, 0, G_OPTION_ARG_STRING, &r->trigger, "Trigger word: the caption of images without one, put in front of the others", "WORD" },
    { "steps", 0, 0, G_OPTION_ARG_INT64, &steps, "Optimizer steps (default 1000)", "N" },
    { "rank", 0, 0, G_OPTION_ARG_INT64, &rank, "LoRA rank (default 16)", "R" },
    { "alpha", 0, 0, G_OPTION_ARG_STRING, &alpha, "LoRA alpha (default: the rank)", "A" },
    { "lr", 0, 0, G_OPTION_ARG_STRING, &lr, "Learning rate (default 1e-4)", "X" },
    { "resolution", 0, 0, G_OPTION_ARG_INT, &resolution, "Training resolution: buckets of about PX² pixels (default 512)", "PX" },
    { "batch", 0, 0, G_OPTION_ARG_INT64, &batch, "Images per batch (default 1)", "B" },
    { "accumulation", 0, 0, G_OPTION_ARG_INT64, &accumulation, "Batches per optimizer step (default 1)", "K" },
    { "schedule", 0, 0, G_OPTION_ARG_STRING, &r->schedule, "Learning rate schedule: constant or cosine", "NAME" },
    { "warmup", 0, 0, G_OPTION_ARG_INT64, &warmup, "Warm-up steps (default 0)", "N" },
    { "weight-decay", 0, 0, G_OPTION_ARG_STRING, &weight_decay, "AdamW weight decay (default 0.01)", "X" },
    { "min-snr-gamma", 0, 0, G_OPTION_ARG_STRING, &gamma, "Min-SNR weighting γ (default 0: off; 5 is usual)", "G" },
    { "noise-offset", 0, 0, G_OPTION_ARG_STRING, &offset, "Noise offset (default 0; 0.05–0.1 for darker darks)", "X" },
    { "flip", 0, 0, G_OPTION_ARG_NONE, &flip, "Also train on mirrored images", NULL },
    { "checkpointing", 0, 0, G_OPTION_ARG_STRING, &r->checkpointing, "Gradient checkpointing: auto (when memory is short), on (least memory) or off (fastest)", "WHEN" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the run (default 0)", "S" },
    { "targets", 0, 0, G_OPTION_ARG_STRING, &r->targets, "Layers to train: attention,ff,proj,resnet,sample,stem or all", "LIST" },
    { "validate-every", 0, 0, G_OPTION_ARG_INT64, &validate_every, "Steps between validation losses (default: first and last only)", "N" },
    { "validation-timesteps", 0, 0, G_OPTION_ARG_INT, &validation_timesteps, "Noise levels per validation image (default 4)", "K" },
    { "sample", 0, 0, G_OPTION_ARG_STRING_ARRAY, &r->sample_prompts, "Prompt of sample images (repeatable)", "PROMPT" },
    { "sample-every", 0, 0, G_OPTION_ARG_INT64, &sample_every, "Steps between sample images (default: at the end)", "N" },
    { "sample-steps", 0, 0, G_OPTION_ARG_INT, &sample_steps, "Sampling steps of sample images (default 20)", "N" },
    { "checkpoint-every", 0, 0, G_OPTION_ARG_INT64, &checkpoint_every, "Steps between saved states (default 100)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all cores)", "N" },
    { "resume", 0, 0, G_OPTION_ARG_INT64, &resume, "Continue run RUN (gouache-cli runs list) from its saved state", "RUN" },
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Run store (default: ~/.local/share/gouache/runs.db)", "FILE" },
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &json, "Also write a summary as JSON", "FILE" },
    { NULL },
  };
  if (!gouache_cli_parse (&argc, &argv, "- train a style (LoRA) on a folder of images",
                          "Trains a LoRA on the UNet of MODEL from the images in DIR and writes it "
                          "to FILE as a kohya LoRA; every run is recorded (gouache-cli runs).",
                          entries))
    return 1;
  struct { const char *text, *name; double *to; } numbers[] = {
    { lr, "--lr", &r->learning_rate }, { alpha, "--alpha", &r->alpha },
    { weight_decay, "--weight-decay", &r->weight_decay }, { gamma, "--min-snr-gamma", &r->min_snr_gamma },
    { offset, "--noise-offset", &r->noise_offset },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (numbers); i++)
    {
      char *end;
      if (numbers[i].text == NULL)
        continue;
      *numbers[i].to = g_ascii_strtod (numbers[i].text, &end);
      if (*end != '\0' || end == numbers[i].text || !isfinite (*numbers[i].to))
        return gouache_cli_fail ("%s takes a number, not '%s'", numbers[i].name, numbers[i].text);
    }
  if (alpha == NULL)
    r->alpha = (double) rank;
  if (resume == 0 && (r->model_path == NULL || r->dataset_path == NULL || r->output_path == NULL))
    return gouache_cli_fail ("train needs --model, --dataset and --output (or --resume RUN)");
  r->steps = steps, r->rank = rank, r->batch = batch, r->accumulation = accumulation;
  r->warmup = warmup, r->seed = (guint64) seed, r->validate_every = validate_every;
  r->sample_every = sample_every, r->checkpoint_every = checkpoint_every, r->resume = resume;
  r->resolution = resolution, r->validation_timesteps = validation_timesteps;
  r->sample_steps = sample_steps, r->threads = threads, r->flip = flip;

  g_autoptr (GError) error = NULL;
  g_autoptr (GouacheRunStore) store = gouache_cli_open_runs (db, &error);
  if (store == NULL)
    return gouache_cli_fail ("%s", error->message);
  gouache_cli_catch_interrupt ();
  train_view view = { .stage = GOUACHE_TRAIN_STAGE_LOADING };
  GouacheTrainCallbacks callbacks = { on_stage, on_started, on_step, on_validation, on_sample, &view };
  g_autoptr (GouacheTrainResult) result = gouache_train_run (r, store, &callbacks,
                                                             &gouache_cli_interrupted, &error);
  end_line (&view);
  if (result == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          fprintf (stderr, "gouache-cli: training stopped after saving its state; continue it "
                           "with: gouache-cli train --resume %" G_GINT64_FORMAT "\n", view.run);
          return 130;
        }
      return gouache_cli_fail ("%s", error->message);
    }
  printf ("%s: %" G_GINT64_FORMAT " steps, %.2f s/step, validation loss %.5f -> %.5f (run %"
          G_GINT64_FORMAT ")\n", result->output_path, result->steps, result->seconds_per_step,
          result->val_loss_first, result->val_loss_last, result->run);
  if (json && !write_json (result, json, &error))
    return gouache_cli_fail ("cannot write %s: %s", json, error->message);
  return 0;
}
