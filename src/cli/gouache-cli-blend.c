/* gouache-cli blend: bakes a blend of styles into one LoRA (exact, or compressed to a rank),
 * or into a whole checkpoint (gc-bake.h). */
#include "config.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

#include "gc-bake.h"
#include "gouache-cli-styles.h"
#include "gouache-cli.h"
#include "gouache-file-hash.h"

typedef struct {
  char *model, *output, *merged;
  char **loras;
  int rank, threads;
} blend_options;

/* [{"name", "file", "weight", "text_weight", "hash"}, …]: where a baked file came from. */
static char *
describe_blend (GArray *styles, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_array (b);
  for (guint i = 0; i < styles->len; i++)
    {
      const GouacheCliStyle *style = &g_array_index (styles, GouacheCliStyle, i);
      g_autofree char *hash = gouache_file_hash_lora_hash (style->path, NULL, error);
      if (hash == NULL)
        return NULL;
      g_autofree char *name = gouache_cli_style_name (style->path);
      g_autofree char *file = g_path_get_basename (style->path);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, name);
      json_builder_set_member_name (b, "file");
      json_builder_add_string_value (b, file);
      json_builder_set_member_name (b, "weight");
      json_builder_add_double_value (b, style->weight);
      json_builder_set_member_name (b, "text_weight");
      json_builder_add_double_value (b, style->text_weight);
      json_builder_set_member_name (b, "hash");
      json_builder_add_string_value (b, hash);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

static int
bake_lora (const blend_options *o, gc_model *model, const char *blend)
{
  g_autofree char *output_name = gouache_cli_style_name (o->output);
  g_autofree char *model_name = g_path_get_basename (o->model);
  g_autofree char *comment = g_strdup_printf ("blend of styles baked by gouache %s",
                                              PACKAGE_VERSION);
  const char *metadata[] = { "ss_output_name", output_name, "ss_sd_model_name", model_name,
                             "ss_training_comment", comment, "gouache.blend", blend };
  gc_bake_report report;
  gc_error err = { 0 };
  if (gc_bake_lora (gc_model_checkpoint (model), o->rank, o->output, metadata,
                    G_N_ELEMENTS (metadata) / 2, &report, &err))
    return gouache_cli_fail_core (&err);
  if (o->rank == 0)
    printf ("%s: %zu weights, rank %lld, exact (the styles' factors side by side)\n", o->output,
            report.weights, (long long) report.rank);
  else
    printf ("%s: %zu weights, rank %lld, reconstruction error %.3e (relative, all weights; worst "
            "%.3e on %s)\n",
            o->output, report.weights, (long long) report.rank, report.relative_error,
            report.worst_error, report.worst_weight);
  return 0;
}

static int
bake_checkpoint (const blend_options *o, gc_model *model, const char *blend)
{
  g_autofree char *model_name = g_path_get_basename (o->model);
  const char *metadata[] = { "gouache.merged_from", model_name, "gouache.blend", blend };
  gc_error err = { 0 };
  if (gc_bake_checkpoint (gc_model_checkpoint (model), o->merged, metadata,
                          G_N_ELEMENTS (metadata) / 2, &err))
    return gouache_cli_fail_core (&err);
  printf ("%s: checkpoint with the blend baked in\n", o->merged);
  return 0;
}

static int
run_blend (const blend_options *o)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) styles = gouache_cli_styles_parse (o->loras, &error);
  if (styles == NULL)
    return gouache_cli_fail ("%s", error->message);
  g_autofree char *blend = describe_blend (styles, &error);
  if (blend == NULL)
    return gouache_cli_fail ("%s", error->message);
  gouache_cli_set_threads (o->threads);
  g_autofree char *vocab = gouache_cli_data_file ("bpe_simple_vocab_16e6.txt.gz");
  gc_error err = { 0 };
  gc_model *model;
  if (gc_model_open (&model, o->model, vocab, &err))
    return gouache_cli_fail_core (&err);
  int status = 0;
  if (!gouache_cli_styles_apply (model, styles, FALSE, &error))
    status = gouache_cli_fail ("%s", error->message);
  if (status == 0 && o->output)
    status = bake_lora (o, model, blend);
  if (status == 0 && o->merged)
    status = bake_checkpoint (o, model, blend);
  gc_model_free (model);
  return status;
}

int
gouache_cli_blend (int argc, char **argv)
{
  blend_options o = { 0 };
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &o.model, "Checkpoint the styles are for", "CKPT" },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.loras, "A style at a weight, -2..2; TEXT_WEIGHT for the text encoder (default: WEIGHT); repeatable", "FILE:WEIGHT[:TEXT_WEIGHT]" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &o.output, "Write the blend as one kohya LoRA", "OUT.safetensors" },
    { "rank", 0, 0, G_OPTION_ARG_INT, &o.rank, "Compress the LoRA to this rank by SVD and print its error (default: exact, the ranks summed)", "R" },
    { "merge-checkpoint", 0, 0, G_OPTION_ARG_FILENAME, &o.merged, "Write the checkpoint with the blend baked in (fp16)", "OUT.safetensors" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &o.threads, "CPU threads (default: all cores)", "N" },
    { NULL },
  };
  int status;
  if (!gouache_cli_parse (&argc, &argv, "— bake a blend of styles into one file",
                          "Writes one LoRA equal to the blend of the styles at their weights "
                          "(exact, or compressed to a rank), and/or a checkpoint with the blend "
                          "baked in, which other tools load as any model.",
                          entries))
    status = 1;
  else if (o.model == NULL || o.loras == NULL || (o.output == NULL && o.merged == NULL))
    status = gouache_cli_fail ("blend needs --model, --lora and --output or --merge-checkpoint "
                               "(see --help)");
  else if (o.rank < 0)
    status = gouache_cli_fail ("--rank must be positive");
  else
    status = run_blend (&o);
  g_free (o.model), g_free (o.output), g_free (o.merged);
  g_strfreev (o.loras);
  return status;
}
