/* gouache-cli preset: the presets store (gouache-preset-store.h) from the command line.
 *
 * The store is --store PATH, else $GOUACHE_PRESET_STORE, else the user's
 * ($XDG_DATA_HOME/gouache/presets.db). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "gouache-cli-styles.h"
#include "gouache-cli.h"
#include "gouache-file-hash.h"
#include "gouache-preset-store.h"

typedef struct {
  char *store, *name, *new_name, *model, *prompt, *negative, *sampler, *schedule, *thumbnail;
  char *input, *output;
  char **loras;
  int steps, width, height;
  double cfg;
  gint64 seed;
  gboolean replace;
} preset_options;

typedef int (*preset_action) (GouachePresetStore *store, preset_options *o);

static GouachePresetStore *
open_store (const preset_options *o, GError **error)
{
  g_autofree char *fallback = gouache_preset_store_default_path ();
  const char *env = g_getenv ("GOUACHE_PRESET_STORE");
  const char *path = o->store ? o->store : env && *env ? env : fallback;
  return gouache_preset_store_new (path, error);
}

static int
fail_error (GError *error)
{
  return gouache_cli_fail ("%s", error->message);
}

static gboolean
need (const char *value, const char *option, const char *action)
{
  if (value)
    return TRUE;
  gouache_cli_fail ("preset %s needs --%s (see gouache-cli preset %s --help)", action, option,
                    action);
  return FALSE;
}

/* ------------------------------------------------------------------ save */

static gboolean
add_styles (GouachePreset *preset, char **loras, GError **error)
{
  g_autoptr (GArray) styles = gouache_cli_styles_parse (loras, error);
  if (styles == NULL)
    return FALSE;
  for (guint i = 0; i < styles->len; i++)
    {
      const GouacheCliStyle *s = &g_array_index (styles, GouacheCliStyle, i);
      g_autofree char *path = g_canonicalize_filename (s->path, NULL);
      g_autofree char *hash = gouache_file_hash_lora_hash (path, NULL, error);
      if (hash == NULL)
        return FALSE;
      gouache_preset_add_style (preset, path, hash, s->weight, s->text_weight);
    }
  return TRUE;
}

/* The checkpoint file a model hash is taken of: the file itself, or a diffusers folder's UNet. */
static char *
model_hash (const char *model, GError **error)
{
  g_autofree char *unet = g_build_filename (model, "unet", "diffusion_pytorch_model.safetensors",
                                            NULL);
  return gouache_file_hash_model_hash (g_file_test (model, G_FILE_TEST_IS_DIR) ? unet : model,
                                       NULL, error);
}

static int
do_save (GouachePresetStore *store, preset_options *o)
{
  if (!need (o->name, "name", "save") || !need (o->model, "model", "save"))
    return 1;
  g_autoptr (GError) error = NULL;
  if (!g_file_test (o->model, G_FILE_TEST_EXISTS))
    return gouache_cli_fail ("model %s does not exist", o->model);
  g_autoptr (GouachePreset) p = gouache_preset_new ();
  p->name = g_strdup (o->name);
  p->model_path = g_canonicalize_filename (o->model, NULL);
  if ((p->model_sha256 = model_hash (p->model_path, &error)) == NULL
      || !add_styles (p, o->loras, &error))
    return fail_error (error);
#define TAKE(field, value) if (value) (g_free (p->field), p->field = g_strdup (value))
  TAKE (prompt, o->prompt);
  TAKE (negative_prompt, o->negative);
  TAKE (sampler, o->sampler);
  TAKE (schedule, o->schedule);
#undef TAKE
  p->steps = (guint) o->steps;
  p->cfg_scale = o->cfg;
  p->width = (guint) o->width;
  p->height = (guint) o->height;
  p->seed = o->seed;
  if (o->thumbnail)
    {
      char *data;
      gsize size;
      if (!g_file_get_contents (o->thumbnail, &data, &size, &error))
        return fail_error (error);
      p->thumbnail = g_bytes_new_take (data, size);
    }
  if (!gouache_preset_store_save (store, p, o->replace, &error))
    return fail_error (error);
  printf ("%s\n", p->name);
  return 0;
}

/* ------------------------------------------------------------------ the others */

static int
do_list (GouachePresetStore *store, preset_options *o)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) presets = gouache_preset_store_list (store, &error);
  if (presets == NULL)
    return fail_error (error);
  for (guint i = 0; i < presets->len; i++)
    printf ("%s\n", ((GouachePreset *) g_ptr_array_index (presets, i))->name);
  return 0;
}

static int
do_show (GouachePresetStore *store, preset_options *o)
{
  if (!need (o->name, "name", "show"))
    return 1;
  g_autoptr (GError) error = NULL;
  g_autoptr (GouachePreset) p = gouache_preset_store_get (store, o->name, &error);
  if (p == NULL)
    return fail_error (error);
  g_autoptr (GDateTime) updated = g_date_time_new_from_unix_local (p->updated);
  g_autofree char *when = updated ? g_date_time_format (updated, "%Y-%m-%d %H:%M:%S") : NULL;
  printf ("name       %s\nmodel      %s (%s)\n", p->name, p->model_path,
          p->model_sha256 ? p->model_sha256 : "no hash");
  for (guint i = 0; i < p->styles->len; i++)
    {
      const GouachePresetStyle *s = g_ptr_array_index (p->styles, i);
      printf ("style      %s (%s) at %g, text %g\n", s->path, s->sha256 ? s->sha256 : "no hash",
              s->weight, s->text_weight);
    }
  printf ("prompt     %s\nnegative   %s\nsampler    %s, %s schedule, %u steps, CFG %g\n"
          "size       %ux%u\nseed       %" G_GINT64_FORMAT "\nthumbnail  %s\nupdated    %s\n",
          p->prompt, p->negative_prompt, p->sampler, p->schedule, p->steps, p->cfg_scale,
          p->width, p->height, p->seed, p->thumbnail ? "yes" : "none", when ? when : "?");
  return 0;
}

static int
do_rename (GouachePresetStore *store, preset_options *o)
{
  if (!need (o->name, "name", "rename") || !need (o->new_name, "new-name", "rename"))
    return 1;
  g_autoptr (GError) error = NULL;
  return gouache_preset_store_rename (store, o->name, o->new_name, &error) ? 0 : fail_error (error);
}

static int
do_duplicate (GouachePresetStore *store, preset_options *o)
{
  if (!need (o->name, "name", "duplicate") || !need (o->new_name, "new-name", "duplicate"))
    return 1;
  g_autoptr (GError) error = NULL;
  return gouache_preset_store_duplicate (store, o->name, o->new_name, &error) ? 0
                                                                              : fail_error (error);
}

static int
do_delete (GouachePresetStore *store, preset_options *o)
{
  if (!need (o->name, "name", "delete"))
    return 1;
  g_autoptr (GError) error = NULL;
  return gouache_preset_store_delete (store, o->name, &error) ? 0 : fail_error (error);
}

static int
do_export (GouachePresetStore *store, preset_options *o)
{
  if (!need (o->output, "output", "export"))
    return 1;
  g_autoptr (GError) error = NULL;
  const char *const one[] = { o->name, NULL };
  g_autofree char *json = gouache_preset_store_export (store, o->name ? one : NULL, &error);
  if (json == NULL || !g_file_set_contents (o->output, json, -1, &error))
    return fail_error (error);
  return 0;
}

static int
do_import (GouachePresetStore *store, preset_options *o)
{
  if (!need (o->input, "input", "import"))
    return 1;
  g_autoptr (GError) error = NULL;
  g_autofree char *json = NULL;
  if (!g_file_get_contents (o->input, &json, NULL, &error))
    return fail_error (error);
  int count = gouache_preset_store_import (store, json, o->replace, &error);
  if (count < 0)
    return gouache_cli_fail ("%s: %s", o->input, error->message);
  printf ("%d presets imported\n", count);
  return 0;
}

/* ------------------------------------------------------------------ dispatch */

static const struct {
  const char *name;
  preset_action run;
  const char *summary;
} actions[] = {
  { "save", do_save, "Save a model, styles and settings under a name" },
  { "list", do_list, "Print the name of every preset, one per line" },
  { "show", do_show, "Print one preset" },
  { "rename", do_rename, "Rename a preset" },
  { "duplicate", do_duplicate, "Copy a preset under a new name" },
  { "delete", do_delete, "Delete a preset" },
  { "export", do_export, "Write a preset (or all of them) as JSON" },
  { "import", do_import, "Read presets from JSON, all or none" },
};

static void
usage (FILE *out)
{
  fprintf (out, "Usage: gouache-cli preset ACTION [OPTIONS]\n\nActions:\n");
  for (size_t i = 0; i < G_N_ELEMENTS (actions); i++)
    fprintf (out, "  %-10s %s\n", actions[i].name, actions[i].summary);
  fprintf (out, "\nRun 'gouache-cli preset ACTION --help' for the options.\n");
}

int
gouache_cli_preset (int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? 1 : 0;
    }
  size_t a = 0;
  while (a < G_N_ELEMENTS (actions) && strcmp (argv[1], actions[a].name) != 0)
    a++;
  if (a == G_N_ELEMENTS (actions))
    return gouache_cli_fail ("unknown preset action '%s' (see gouache-cli preset --help)", argv[1]);
  preset_options o = { .steps = 20, .cfg = 7, .width = 512, .height = 512, .seed = -1 };
  const GOptionEntry entries[] = {
    { "store", 0, 0, G_OPTION_ARG_FILENAME, &o.store, "Presets database (default: $GOUACHE_PRESET_STORE, else the user's)", "PATH" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &o.name, "The preset (export: default all)", "NAME" },
    { "new-name", 0, 0, G_OPTION_ARG_STRING, &o.new_name, "rename, duplicate: the new name", "NAME" },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &o.model, "save: checkpoint", "CKPT" },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.loras, "save: a style at a weight (repeatable)", "FILE:WEIGHT[:TEXT_WEIGHT]" },
    { "prompt", 'p', 0, G_OPTION_ARG_STRING, &o.prompt, "save: what to draw", "TEXT" },
    { "negative", 'n', 0, G_OPTION_ARG_STRING, &o.negative, "save: what to avoid", "TEXT" },
    { "sampler", 0, 0, G_OPTION_ARG_STRING, &o.sampler, "save: euler, euler_a (default), ddim, dpmpp_2m, heun, lcm", "NAME" },
    { "schedule", 0, 0, G_OPTION_ARG_STRING, &o.schedule, "save: default, trailing, karras, exponential", "NAME" },
    { "steps", 0, 0, G_OPTION_ARG_INT, &o.steps, "save: sampling steps (default 20)", "N" },
    { "cfg", 0, 0, G_OPTION_ARG_DOUBLE, &o.cfg, "save: guidance scale (default 7)", "SCALE" },
    { "width", 'W', 0, G_OPTION_ARG_INT, &o.width, "save: width in pixels (default 512)", "W" },
    { "height", 'H', 0, G_OPTION_ARG_INT, &o.height, "save: height in pixels (default 512)", "H" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &o.seed, "save: seed (default -1: a new one each time)", "N" },
    { "thumbnail", 0, 0, G_OPTION_ARG_FILENAME, &o.thumbnail, "save: a PNG shown with the preset", "PNG" },
    { "replace", 0, 0, G_OPTION_ARG_NONE, &o.replace, "save, import: replace presets of the same name", NULL },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &o.output, "export: JSON file to write", "FILE.json" },
    { "input", 'i', 0, G_OPTION_ARG_FILENAME, &o.input, "import: JSON file to read", "FILE.json" },
    { NULL },
  };
  g_autofree char *title = g_strdup_printf ("%s — %s", actions[a].name, actions[a].summary);
  int status;
  int sub_argc = argc - 1;
  char **sub_argv = argv + 1;
  if (!gouache_cli_parse (&sub_argc, &sub_argv, title, "Presets keep a model, its styles and "
                          "the generation settings under a name.", entries))
    status = 1;
  else
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GouachePresetStore) store = open_store (&o, &error);
      status = store ? actions[a].run (store, &o) : fail_error (error);
    }
  g_free (o.store), g_free (o.name), g_free (o.new_name), g_free (o.model), g_free (o.prompt);
  g_free (o.negative), g_free (o.sampler), g_free (o.schedule), g_free (o.thumbnail);
  g_free (o.input), g_free (o.output);
  g_strfreev (o.loras);
  return status;
}
